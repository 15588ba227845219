"""The data-quality report of a run: rows per source, quarantine reasons, blanked values, null rates,
duplicate and match rates.

Written as `reports/quality.json` (for machines) and `reports/quality.md` (for people).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb

from features.ingest.quarantine import REASON_KIND
from tessera.core.canonical import SOURCE_TYPES
from tessera.core.settings import Workspace

# The fields whose emptiness a reader of the report cares about first, per source type.
KEY_FIELDS = {
    "order_lines": ["customer_ref", "sku", "unit_price", "ordered_at"],
    "contacts": ["email", "phone", "postcode", "birth_date"],
    "loyalty_members": ["loyalty_number", "email", "phone"],
    "web_events": ["customer_ref", "anonymous_id", "sku"],
    "email_events": ["customer_ref", "email", "campaign_id"],
    "support_tickets": ["customer_ref", "email", "satisfaction"],
    "consents": ["identifier", "purpose", "status"],
    "products": ["name", "category", "price"],
}


def _parquet(path: Path) -> str:
    return f"read_parquet('{path}', union_by_name = true)"


def _null_rates(con: duckdb.DuckDBPyConnection, workspace: Workspace) -> dict[str, dict]:
    tables = {}
    for source_type, columns in SOURCE_TYPES.items():
        folder = workspace.canonical_table(source_type)
        if not any(folder.glob("*.parquet")):
            continue
        names = [c.name for c in columns]
        rates = ", ".join(f"avg(({n} IS NULL)::INT) AS {n}" for n in names)
        row = con.execute(
            f"SELECT count(*) AS rows, {rates} FROM {_parquet(folder / '*.parquet')}"
        ).fetchall()[0]
        tables[source_type] = {
            "rows": row[0],
            "null_rate": {n: round(r or 0.0, 4) for n, r in zip(names, row[1:], strict=True)},
        }
    return tables


def _quarantine(con: duckdb.DuckDBPyConnection, workspace: Workspace) -> dict[str, dict[str, int]]:
    """Quarantined rows per source and reason kind (the reason up to its first quote or colon)."""
    found: dict[str, dict[str, int]] = {}
    for path in sorted(workspace.quarantine.glob("*.parquet")):
        rows = con.execute(
            f"SELECT trim(regexp_extract(reason, ?)) AS kind, count(*) FROM {_parquet(path)} GROUP BY 1 ORDER BY 2 DESC",
            [REASON_KIND.pattern],
        ).fetchall()
        found[path.stem] = dict(rows)
    return found


def _blanked(ingest: dict | None) -> dict[str, dict[str, dict]]:
    """Optional values ingestion blanked (rows kept), per source and field, from its report."""
    sources = ingest["sources"] if ingest else []
    return {source["name"]: source["blanked"] for source in sources if source.get("blanked")}


def _identity(con: duckdb.DuckDBPyConnection, workspace: Workspace) -> dict:
    crosswalk = workspace.identity / "crosswalk.parquet"
    if not crosswalk.exists():
        return {}
    records, keys, customers, multi_source = con.execute(
        f"""
        SELECT count(*), count(DISTINCT identity_key), count(DISTINCT customer_id),
               (SELECT count(*) FROM (SELECT customer_id FROM {_parquet(crosswalk)} GROUP BY customer_id
                                      HAVING count(DISTINCT source) > 1))
        FROM {_parquet(crosswalk)}
        """
    ).fetchall()[0]
    result = {
        "source_records": records,
        "identity_records": keys,
        "customers": customers,
        "duplicate_rate": round(1 - customers / keys, 4) if keys else 0.0,
        "customers_in_several_sources": round(multi_source / customers, 4) if customers else 0.0,
    }
    links = workspace.identity / "links.parquet"
    if links.exists():
        result["links_by_kind"] = dict(
            con.execute(f"SELECT kind, count(*) FROM {_parquet(links)} GROUP BY 1").fetchall()
        )
    return result


def _match_rates(con: duckdb.DuckDBPyConnection, workspace: Workspace) -> dict[str, float]:
    """Share of each event table's rows that reached a customer."""
    rates = {}
    for name in ("orders", "interactions"):
        path = workspace.profile / f"{name}.parquet"
        if path.exists():
            value = con.execute(
                f"SELECT avg((customer_id IS NOT NULL)::INT) FROM {_parquet(path)}"
            ).fetchall()[0][0]
            rates[f"{name}_with_customer"] = round(value or 0.0, 4)
    return rates


def quality_report(workspace: Workspace, now: datetime) -> dict:
    """Gather the figures of the run in `workspace` and write them as JSON and Markdown."""
    con = duckdb.connect()
    ingest_path = workspace.reports / "ingest.json"
    ingest = json.loads(ingest_path.read_text()) if ingest_path.exists() else None
    report = {
        "as_of": now.isoformat(),
        "ingest": ingest,
        "quarantine": _quarantine(con, workspace),
        "blanked": _blanked(ingest),
        "tables": _null_rates(con, workspace),
        "identity": _identity(con, workspace),
        "match_rates": _match_rates(con, workspace),
    }
    workspace.reports.mkdir(parents=True, exist_ok=True)
    (workspace.reports / "quality.json").write_text(json.dumps(report, indent=2, default=str))
    (workspace.reports / "quality.md").write_text(render_markdown(report))
    return report


def render_markdown(report: dict) -> str:
    """A readable summary of a quality report."""
    lines = [f"# Data quality, as of {report['as_of']}", "", "## Canonical tables", ""]
    lines += ["| table | rows | null rate of key fields |", "|---|---|---|"]
    for table, info in report["tables"].items():
        keys = ", ".join(
            f"{f} {info['null_rate'][f]:.1%}" for f in KEY_FIELDS.get(table, []) if f in info["null_rate"]
        )
        lines.append(f"| {table} | {info['rows']:,} | {keys} |")
    lines += ["", "## Quarantine", ""]
    if not any(report["quarantine"].values()):
        lines.append("No row was quarantined.")
    for source, reasons in report["quarantine"].items():
        if reasons:
            lines += [f"- **{source}**: " + "; ".join(f"{kind} ({n:,})" for kind, n in reasons.items())]
    if report["blanked"]:
        lines += ["", "## Blanked values (row kept, bad optional value left out)", ""]
        for source, fields in report["blanked"].items():
            counts = "; ".join(
                f"{field} {info['values']:,} ({', '.join(info['reasons'])})" for field, info in fields.items()
            )
            lines.append(f"- **{source}**: {counts}")
    identity = report["identity"]
    if identity:
        lines += ["", "## Identity", ""]
        lines += [
            f"- {identity['source_records']:,} source records, {identity['identity_records']:,} identity records, "
            f"{identity['customers']:,} customers (duplicate rate {identity['duplicate_rate']:.1%})",
            f"- customers seen in more than one source: {identity['customers_in_several_sources']:.1%}",
        ]
        if "links_by_kind" in identity:
            lines.append("- links: " + ", ".join(f"{k} {n:,}" for k, n in identity["links_by_kind"].items()))
    if report["match_rates"]:
        lines += ["", "## Match rates", ""]
        lines += [f"- {name.replace('_', ' ')}: {rate:.1%}" for name, rate in report["match_rates"].items()]
    return "\n".join(lines) + "\n"
