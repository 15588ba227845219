"""What `tessera demo` prints of the whole chain's summary: one short table per stage; the full JSON goes to a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(summary: dict[str, Any], path: Path) -> Path:
    """The whole summary as JSON at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str))
    return path


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _stages(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    identity, profile, store = summary["identity"], summary["profile"]["rows"], summary["feature_store"]
    applied = store["applied"]
    return [
        ("ingest", summary["ingest"]["summary"].splitlines()[0].split(": ", 1)[-1]),
        (
            "identity",
            f"{identity['source_records']:,} source records -> {identity['customers']:,} customers "
            f"({summary['quality']['identity']['duplicate_rate']:.0%} duplicates), {identity['seconds']:.0f} s",
        ),
        (
            "profile",
            ", ".join(f"{n:,} {name}" for name, n in profile.items())
            + f", {summary['profile']['seconds']:.0f} s",
        ),
        (
            "feature store",
            f"{applied['feature_views']} views, {applied['feature_services']} services, "
            f"{len(store['materialized'])} materialized to {applied['config']['online_store']}, "
            f"{sum(store['seconds'].values()):.0f} s",
        ),
    ]


def _models(models: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for name, result in models.items():
        if "skipped" in result:
            rows.append((name, "skipped", "", "", "", result["skipped"]))
            continue
        gate = result["gate"]
        rows.append(
            (
                name,
                str(result.get("candidate", "")),
                str(result["version"]),
                gate["metric"],
                f"{gate['challenger']:.3f}",
                "champion" if gate["promoted"] else f"kept v{gate['previous_champion_version']}",
            )
        )
    return rows


def _segments(segments: dict[str, Any] | None) -> list[str]:
    """One line of segment member counts (activation), when the run refreshed them."""
    if not segments:
        return []
    counts = ", ".join(f"{name} {n:,}" for name, n in segments["members"].items())
    return [f"Segments ({segments['customers']:,} customers): {counts}", ""]


def chain_summary(summary: dict[str, Any], report: Path) -> str:
    """A table of the data stages, a table of the models, and where the full report is."""
    lines = [
        *_table(("stage", "result"), _stages(summary)),
        "",
        *_table(("model", "winner", "version", "metric", "value", "registry"), _models(summary["models"])),
        "",
        *_segments(summary.get("segments")),
        f"Full report (JSON): {report}",
        f"Data-quality report: {Path(summary['reports']) / 'quality.md'}",
    ]
    return "\n".join(lines)
