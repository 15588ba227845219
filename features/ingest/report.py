"""The ingestion report: per source, rows read = rows loaded + rows quarantined, why rows were rejected and
which optional values were blanked in the rows kept."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, computed_field


class BlankedField(BaseModel):
    """Values of one optional field that could not be used: blanked, their rows kept."""

    values: int = 0
    reasons: dict[str, int] = {}  # reason kind ("unparseable date") -> values
    example: str  # the first reason in full, with the value and what was expected


class SourceReport(BaseModel):
    """The accounting of one source."""

    name: str
    type: str
    read_from: list[str]  # the export files, or "query" for a SQL source
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_suppressed: int = 0  # rows of erased people (the suppression list), dropped and counted
    reasons: dict[str, int] = {}  # reason kind ("unparseable date") -> rows
    blanked: dict[str, BlankedField] = {}  # the retailer's field -> its blanked values (rows kept)
    output: str
    quarantine: str
    warnings: list[str] = []
    seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Every row read was either loaded or quarantined."""
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_suppressed

    def line(self) -> str:
        """One line for the summary."""
        reasons = ", ".join(
            f"{kind} {count:,}" for kind, count in sorted(self.reasons.items(), key=lambda kv: -kv[1])
        )
        text = (
            f"{self.name} ({self.type}): {self.rows_read:,} read, {self.rows_loaded:,} loaded, "
            f"{self.rows_quarantined:,} quarantined"
        )
        text += f", {self.rows_suppressed:,} suppressed (erased)" if self.rows_suppressed else ""
        text += f" [{reasons}]" if reasons else ""
        if self.blanked:
            fields = ", ".join(f"{field} {blanked.values:,}" for field, blanked in self.blanked.items())
            text += f"; values blanked: {fields}"
        return text + ("" if self.ok else "  <-- ROWS UNACCOUNTED FOR")

    def count_blanked(self, field: str, kind: str, values: int, example: str) -> None:
        """Add blanked values of a field to the accounting."""
        blanked = self.blanked.setdefault(field, BlankedField(example=example))
        blanked.values += values
        blanked.reasons[kind] = blanked.reasons.get(kind, 0) + values


class IngestReport(BaseModel):
    """The accounting of one ingestion run, written to `data/reports/ingest.json` and `ingest.txt`."""

    mapping: str
    started_at: datetime
    seconds: float = 0.0
    sources: list[SourceReport] = []
    removed: list[str] = []  # tables of sources the mapping no longer declares

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Rows read = rows loaded + rows quarantined for every source."""
        return all(source.ok for source in self.sources)

    def summary(self) -> str:
        """A short human-readable account of the run."""
        read = sum(s.rows_read for s in self.sources)
        loaded = sum(s.rows_loaded for s in self.sources)
        quarantined = sum(s.rows_quarantined for s in self.sources)
        lines = [
            f"ingested {len(self.sources)} source(s) from {self.mapping} in {self.seconds:.1f} s: "
            f"{read:,} rows read, {loaded:,} loaded, {quarantined:,} quarantined; "
            + ("every row accounted for" if self.ok else "ROWS UNACCOUNTED FOR")
        ]
        lines += [f"  {source.line()}" for source in self.sources]
        lines += [
            f"  warning: {source.name}: {warning}" for source in self.sources for warning in source.warnings
        ]
        lines += [f"  removed stale table {path}" for path in self.removed]
        return "\n".join(lines)
