"""Who the customers are, and the 360 view's history: golden records, source identities, orders, interactions.

Ids and aliases are held in memory (every request resolves an id), and so is the 360 view's history
(`History`): both are part of the service's snapshot, reloaded when their files are rewritten.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.identity.ids import follow_alias
from serving.schemas import Consent, GoldenRecord, Interaction, Order, OrderLine, SourceIdentity
from tessera.core.settings import Workspace

PURPOSES = ("email", "sms", "personalisation", "profiling")
INTERACTION_COLUMNS = tuple(Interaction.model_fields)


_PLAIN = frozenset({str, int, bool, datetime, date, type(None)})  # what Arrow's to_pylist gives, as is


def _clean(value: Any) -> Any:
    """A value read from Parquet as plain Python: missing values as None, arrays as lists."""
    kind = type(value)
    if kind in _PLAIN:  # the common case first: one set look-up
        return value
    if kind is float:
        return None if value != value else value  # NaN is missing
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

    def forget(self, customer_ids: set[str] | frozenset[str]) -> None:
        """Drop customers and every alias to or from them at once (an erasure): new collections replace the old
        ones in one assignment each, so a request reading them meanwhile sees either."""
        self.ids = self.ids - set(customer_ids)
        self.aliases = {
            a: c for a, c in self.aliases.items() if a not in customer_ids and c not in customer_ids
        }


def sells_products(workspace: Workspace) -> bool:
    """Whether any sale line names a product: without one there is nothing to recommend, ever."""
    path = workspace.profile / "orders.parquet"
    if not path.exists():
        return True  # not profiled yet: the recommender may still come
    with duckdb.connect() as con:
        found = con.execute(
            "SELECT 1 FROM read_parquet(?) WHERE line_type = 'sale' AND sku IS NOT NULL LIMIT 1", [str(path)]
        ).fetchone()
    return found is not None


def sorted_by_customer(
    con: duckdb.DuckDBPyConnection, select: str, path: Path, then_by: str = ""
) -> ByCustomer:
    """`SELECT ...` over the rows of a Parquet file that have a customer (`file_row_number` may be used), sorted by
    customer, then by `then_by`."""
    query = f"{select} FROM read_parquet(?, file_row_number = true) WHERE customer_id IS NOT NULL"
    order = ", ".join(["customer_id", *([then_by] if then_by else [])])
    return ByCustomer(con.sql(f"{query} ORDER BY {order}", params=[str(path)]).to_arrow_table())


class ByCustomer:
    """A table's rows sorted by customer, and where each customer's rows start and stop."""

    def __init__(self, rows: pa.Table) -> None:
        self.rows = rows
        runs = pc.run_end_encode(rows.column("customer_id").combine_chunks())
        ends = runs.run_ends.to_numpy()
        starts = np.concatenate([[0], ends])[:-1]
        self.ranges = dict(
            zip(runs.values.to_pylist(), zip(starts.tolist(), ends.tolist(), strict=True), strict=True)
        )

    def of(
        self, customer_id: str, limit: int | None = None, groups: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """The customer's rows in the table's order (at most `limit`, or with `groups`, the positions where each
        group of rows starts: the rows of at most `limit` groups), values as plain Python."""
        start, stop = self.ranges.get(customer_id, (0, 0))
        if limit is not None and groups is not None:
            first = int(np.searchsorted(groups, start))
            if first + limit < len(groups):
                stop = min(stop, int(groups[first + limit]))
        elif limit is not None:
            stop = min(stop, start + limit)
        return [
            {n: _clean(v) for n, v in row.items()} for row in self.rows.slice(start, stop - start).to_pylist()
        ]


class History:
    """The 360 view's history, read into memory once per snapshot and sliced per request.

    Golden records, source identities, order lines and interactions are held sorted by customer (Arrow), so a
    request reads one customer's rows without a query; memory grows with the order history (about what the
    Parquet files hold, uncompressed). The snapshot reloads it when a profile or identity file is rewritten.
    """

    def __init__(self, workspace: Workspace) -> None:
        files = {
            "customers": workspace.profile / "customers.parquet",
            "crosswalk": workspace.identity / "crosswalk.parquet",
            "orders": workspace.profile / "orders.parquet",
            "interactions": workspace.profile / "interactions.parquet",
        }
        self.tables: dict[str, ByCustomer] = {}
        self.order_starts = np.zeros(0, dtype=np.int64)  # where each order's lines start in the orders table
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            if files["customers"].exists():
                self.tables["customers"] = sorted_by_customer(
                    con, "SELECT * EXCLUDE (file_row_number)", files["customers"], "file_row_number"
                )
            if files["crosswalk"].exists():
                self.tables["crosswalk"] = sorted_by_customer(
                    con,
                    "SELECT DISTINCT customer_id, source, record_id",
                    files["crosswalk"],
                    "source, record_id",
                )
            if files["orders"].exists():
                # Each line carries its order's time (its latest line's): orders newest first, lines in order.
                self.tables["orders"] = sorted_by_customer(
                    con,
                    "SELECT * EXCLUDE (file_row_number), "
                    "max(ordered_at) OVER (PARTITION BY customer_id, order_id, source) AS order_at",
                    files["orders"],
                    "order_at DESC, order_id, source, line_no, file_row_number",
                )
                self.order_starts = _group_starts(
                    self.tables["orders"].rows, ["customer_id", "order_id", "source"]
                )
            path = files["interactions"]
            if path.exists():
                present = {
                    r[0]
                    for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
                }
                columns = ", ".join(c if c in present else f"NULL AS {c}" for c in INTERACTION_COLUMNS)
                self.tables["interactions"] = sorted_by_customer(
                    con, f"SELECT customer_id, {columns}", path, "occurred_at DESC, file_row_number"
                )

    def forget(self, customer_ids: set[str] | frozenset[str]) -> None:
        """Make customers' rows unreachable at once (an erasure; the reload after it drops them from memory)."""
        for table in self.tables.values():
            for customer_id in customer_ids:
                table.ranges.pop(customer_id, None)

    def _rows(self, table: str, customer_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        found = self.tables.get(table)
        return [] if found is None else found.of(customer_id, limit)

    def golden_record(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's row of customers.parquet, or None."""
        rows = self._rows("customers", customer_id, 1)
        return rows[0] if rows else None

    def identities(self, customer_id: str) -> list[SourceIdentity]:
        """The source records (source, record id) merged into the customer."""
        return [
            SourceIdentity(source=str(r["source"]), record_id=str(r["record_id"]))
            for r in self._rows("crosswalk", customer_id)
            if r["record_id"] is not None
        ]

    def orders(self, customer_id: str, limit: int) -> list[Order]:
        """The latest orders of every channel, newest first, each with its lines (only their lines are read)."""
        found = self.tables.get("orders")
        if found is None:
            return []
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in found.of(customer_id, limit, self.order_starts):
            grouped[(str(row["order_id"]), str(row.get("source")))].append(row)
        return [_order(lines) for lines in grouped.values()]

    def interactions(self, customer_id: str, limit: int) -> list[Interaction]:
        """The latest web, email and service interactions, newest first."""
        return [
            Interaction(
                **{
                    k: _text(v) if k not in ("occurred_at", "satisfaction") else v
                    for k, v in r.items()
                    if k != "customer_id"
                }
            )
            for r in self._rows("interactions", customer_id, limit)
        ]


def _group_starts(rows: pa.Table, keys: list[str]) -> np.ndarray:
    """Positions where the key columns' values (as text, as the view groups them) differ from the row before."""
    present = [k for k in keys if k in rows.column_names]
    frame = rows.select(present).to_pandas().astype(object).map(str)
    changed = (frame != frame.shift()).any(axis=1).to_numpy()
    return np.flatnonzero(changed).astype(np.int64)


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
