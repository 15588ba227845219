"""Who the customers are, and the 360 view's history: golden records, source identities, orders, interactions.

Ids and aliases are held in memory (every request resolves an id); everything else is read per request from
the profile's Parquet files with DuckDB, filtered to the one customer, so the service's memory does not grow
with the order history and a rebuilt profile is seen at once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from features.identity.ids import follow_alias
from features.settings import Workspace
from serving.schemas import Consent, GoldenRecord, Interaction, Order, OrderLine, SourceIdentity

PURPOSES = ("email", "sms", "personalisation", "profiling")
INTERACTION_COLUMNS = tuple(Interaction.model_fields)


def _clean(value: Any) -> Any:
    """A value read from Parquet as plain Python: missing values as None, arrays as lists."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_clean(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Directory:
    """Live customer ids and merged-away aliases, read once from the identity and profile files."""

    def __init__(self, customer_ids: set[str], aliases: dict[str, str]) -> None:
        self.ids = customer_ids
        self.aliases = aliases

    @classmethod
    def load(cls, workspace: Workspace) -> Directory:
        """The golden records' ids (the identity step's when there is no profile yet) and every alias."""
        customers = workspace.profile / "customers.parquet"
        if not customers.exists():
            customers = workspace.identity / "customers.parquet"
        ids = (
            set(pd.read_parquet(customers, columns=["customer_id"])["customer_id"].astype(str))
            if customers.exists()
            else set()
        )
        path = workspace.identity / "aliases.parquet"
        aliases = pd.read_parquet(path, columns=["alias_id", "customer_id"]) if path.exists() else None
        mapping = (
            {}
            if aliases is None
            else dict(zip(aliases["alias_id"].astype(str), aliases["customer_id"].astype(str), strict=True))
        )
        return cls(ids, mapping)

    def resolve(self, any_id: str) -> str | None:
        """The live customer an id stands for: itself, the customer it was merged into, or None."""
        return follow_alias(self.ids, self.aliases, any_id)


class History:
    """Per-customer reads of the profile tables (one DuckDB connection; a cursor per request)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")

    def close(self) -> None:
        self._con.close()

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self._con.cursor()
        try:
            result = cursor.execute(sql, params)
            names = [d[0] for d in result.description]
            return [{n: _clean(v) for n, v in zip(names, row, strict=True)} for row in result.fetchall()]
        finally:
            cursor.close()

    def _file(self, folder: Path, name: str) -> str | None:
        path = folder / f"{name}.parquet"
        return str(path) if path.exists() else None

    def sells_products(self) -> bool:
        """Whether any sale line names a product: without one there is nothing to recommend, ever."""
        path = self._file(self.workspace.profile, "orders")
        if path is None:
            return True  # not profiled yet: the recommender may still come
        rows = self._rows(
            "SELECT 1 AS found FROM read_parquet(?) WHERE line_type = 'sale' AND sku IS NOT NULL LIMIT 1",
            [path],
        )
        return bool(rows)

    def golden_record(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's row of customers.parquet, or None."""
        path = self._file(self.workspace.profile, "customers")
        if path is None:
            return None
        rows = self._rows("SELECT * FROM read_parquet(?) WHERE customer_id = ? LIMIT 1", [path, customer_id])
        return rows[0] if rows else None

    def identities(self, customer_id: str) -> list[SourceIdentity]:
        """The source records (source, record id) merged into the customer."""
        path = self._file(self.workspace.identity, "crosswalk")
        if path is None:
            return []
        rows = self._rows(
            "SELECT DISTINCT source, record_id FROM read_parquet(?) WHERE customer_id = ? ORDER BY 1, 2",
            [path, customer_id],
        )
        return [
            SourceIdentity(source=str(r["source"]), record_id=str(r["record_id"]))
            for r in rows
            if r["record_id"] is not None
        ]

    def orders(self, customer_id: str, limit: int) -> list[Order]:
        """The latest orders of every channel, newest first, each with its lines."""
        path = self._file(self.workspace.profile, "orders")
        if path is None:
            return []
        rows = self._rows(
            "WITH lines AS (SELECT * FROM read_parquet(?) WHERE customer_id = ?), "
            "recent AS (SELECT order_id, source, max(ordered_at) AS placed_at FROM lines GROUP BY ALL ORDER BY placed_at DESC LIMIT ?) "
            "SELECT lines.*, recent.placed_at AS order_at FROM lines JOIN recent USING (order_id, source) "
            "ORDER BY order_at DESC, order_id, line_no",
            [path, customer_id, limit],
        )
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            grouped[(str(row["order_id"]), str(row.get("source")))].append(row)
        return [_order(lines) for lines in grouped.values()]

    def interactions(self, customer_id: str, limit: int) -> list[Interaction]:
        """The latest web, email and service interactions, newest first."""
        path = self._file(self.workspace.profile, "interactions")
        if path is None:
            return []
        present = {r["column_name"] for r in self._rows("DESCRIBE SELECT * FROM read_parquet(?)", [path])}
        columns = ", ".join(c if c in present else f"NULL AS {c}" for c in INTERACTION_COLUMNS)
        rows = self._rows(
            f"SELECT {columns} FROM read_parquet(?) WHERE customer_id = ? ORDER BY occurred_at DESC LIMIT ?",
            [path, customer_id, limit],
        )
        return [
            Interaction(
                **{k: _text(v) if k not in ("occurred_at", "satisfaction") else v for k, v in r.items()}
            )
            for r in rows
        ]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _order(lines: list[dict[str, Any]]) -> Order:
    first = lines[0]
    return Order(
        order_id=str(first["order_id"]),
        ordered_at=first["order_at"],
        channel=_text(first.get("channel")),
        source=_text(first.get("source")),
        store_id=_text(first.get("store_id")),
        currency=_text(first.get("currency")),
        total=float(sum(line.get("amount") or 0.0 for line in lines)),
        lines=[
            OrderLine(
                sku=_text(line.get("sku")),
                product_name=_text(line.get("product_name")),
                quantity=line.get("quantity"),
                unit_price=line.get("unit_price"),
                amount=line.get("amount"),
                line_type=_text(line.get("line_type")),
            )
            for line in lines
        ],
    )


def golden_record(row: dict[str, Any]) -> GoldenRecord:
    """The documented golden-record fields of a customers.parquet row (absent columns stay empty)."""
    fields = {name: row.get(name) for name in GoldenRecord.model_fields if row.get(name) is not None}
    for name in ("loyalty_number", "postcode", "phone", "gender"):
        if name in fields:
            fields[name] = str(fields[name])
    if isinstance(fields.get("birth_date"), datetime):
        fields["birth_date"] = fields["birth_date"].date()
    if "n_orders" in fields:
        fields["n_orders"] = int(fields["n_orders"])
    return GoldenRecord(**fields)


def consent(row: dict[str, Any]) -> Consent:
    """Consent per purpose from a golden record, and whether a consent record decided it."""
    return Consent(
        **{purpose: row.get(f"consent_{purpose}") for purpose in PURPOSES},
        recorded={
            p: bool(row[f"consent_{p}_recorded"])
            for p in PURPOSES
            if row.get(f"consent_{p}_recorded") is not None
        },
    )
