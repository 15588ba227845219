"""The two order-line exports (web shop, store tills) and the future purchases that only the truth knows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator import fmt
from simulator.catalogue import Catalogue
from simulator.chunk import Chunk
from simulator.config import DAY, Clock

Split = tuple[pa.Table, np.ndarray]  # rows and, per row, whether its record is held back
STATUSES = np.array(["COMPLETED", "CANCELLED", "Cancelled", "RETURNED"], dtype=object)
PROMO_CODES = np.array(
    [None, None, None, None, None, None, "WELCOME10", "FREEDEL", "SPRING5", "XMAS15"], dtype=object
)


def record_index(records: pd.DataFrame, kind: str, key: np.ndarray) -> np.ndarray:
    """Position of the record of `kind` with the given keys (-1 where there is none)."""
    mine = records[records["kind"].to_numpy() == kind]
    lookup = pd.Series(mine.index.to_numpy(), index=mine["key"].to_numpy())
    return lookup.reindex(key).fillna(-1).to_numpy().astype(np.int64)


def _sales_and_returns(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    sold: np.ndarray,
    returns: pd.DataFrame,
    own: tuple[str, ...] = ("t",),
) -> dict[str, np.ndarray]:
    """The lines of the orders flagged in `sold`, then the `returns` as lines of negative quantity.

    The `own` columns (at least the time) are the order's on a sale and the return's own on a return.
    """
    sale = lines[sold[lines["order"].to_numpy()]]
    back = lines.loc[returns["line"].to_numpy()]
    both = {
        c: np.concatenate([sale[c].to_numpy(), back[c].to_numpy()]) for c in ("order", "product", "line_no")
    }
    both["quantity"] = np.concatenate([sale["quantity"].to_numpy(), -back["quantity"].to_numpy()])
    both["price"] = np.concatenate([sale["price_pence"].to_numpy(), back["price_pence"].to_numpy()])
    for c in own:
        both[c] = np.concatenate([orders[c].to_numpy()[sale["order"].to_numpy()], returns[c].to_numpy()])
    both["is_return"] = np.arange(len(sale) + len(back)) >= len(sale)
    return both


def _sorted(columns: dict[str, np.ndarray], keys: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """The columns' rows in `np.lexsort(keys)` order (last key first)."""
    order = np.lexsort(keys)
    return {name: values[order] for name, values in columns.items()}


def webshop_orders(chunk: Chunk, catalogue: Catalogue, clock: Clock, rng: np.random.Generator) -> Split:
    """Order lines of the web shop: sales (cancelled orders flagged by status) and returns as negative lines."""
    orders, lines, returns, records = chunk.life.orders, chunk.lines, chunk.returns, chunk.records
    web = orders["online"].to_numpy() & (orders["t"].to_numpy() <= clock.end)
    ret = returns[web[returns["order"].to_numpy()] & (returns["t"].to_numpy() <= clock.end)]
    x = _sales_and_returns(orders, lines, web, ret)
    x = _sorted(x, (x["line_no"], orders["number"].to_numpy()[x["order"]], x["t"]))
    order, is_return, t = x["order"], x["is_return"], x["t"]
    person = orders["person"].to_numpy()[order]
    guest = orders["guest"].to_numpy()[order]
    rec = np.where(guest, record_index(records, "guest", order), record_index(records, "account", person))
    cancelled = orders["cancelled"].to_numpy()[order] & ~is_return
    legacy = t < clock.start + 365 * DAY  # the old platform wrote statuses in title case
    status = np.select([is_return, cancelled & legacy, cancelled], [3, 2, 1], 0)
    moved_at = chunk.people["moved_at"].to_numpy()[person]
    old = (moved_at >= 0) & (t < moved_at) & (records["kind"].to_numpy()[rec] == "account")
    products = catalogue.products
    per_order = rng.integers(0, 10, int(orders.index.max()) + 1 if len(orders) else 0)
    devices = np.array(["desktop", "mobile", "mobile", "tablet", "app"], dtype=object)
    address = {}
    for col in ("street", "postcode", "city"):
        address[col] = fmt.pick(
            old.astype(int),
            [fmt.take(fmt.column(records, col), rec), fmt.take(fmt.column(records, "old_" + col), rec)],
        )
    country_pick = rng.random(len(records))
    country = np.where(country_pick < 0.85, "GB", np.where(country_pick < 0.95, "United Kingdom", "UK"))
    table = pa.table(
        {
            "OrderNo": fmt.numbers(20_000_000 + orders["number"].to_numpy()[order]),
            "LineNo": fmt.numbers(x["line_no"]),
            "CustomerId": fmt.lookup(chunk.ids.webshop, np.where(guest, -1, person)),
            "OrderDate": fmt.timestamps(t, "%Y-%m-%dT%H:%M:%SZ"),
            "Status": fmt.lookup(STATUSES, status),
            "ArticleNo": fmt.lookup(products["sku"].to_numpy(), x["product"]),
            "Description": fmt.lookup(products["name"].to_numpy(), x["product"]),
            "Qty": fmt.numbers(x["quantity"]),
            "UnitPrice": fmt.money(x["price"]),
            "Currency": fmt.lookup(np.array(["GBP"]), np.zeros(len(order), dtype=np.int64)),
            "BillingFirstName": fmt.take(fmt.column(records, "first"), rec),
            "BillingLastName": fmt.take(fmt.column(records, "last"), rec),
            "Email": fmt.take(fmt.column(records, "email"), rec),
            "Phone": fmt.take(fmt.column(records, "phone"), rec),
            "ShipStreet": address["street"],
            "ShipPostcode": address["postcode"],
            "ShipTown": address["city"],
            "ShipCountry": fmt.take(fmt.strings(country.astype(object)), rec),
            "DeviceType": fmt.lookup(devices, per_order[order] % 5),
            "PromoCode": fmt.lookup(PROMO_CODES, per_order[order]),
        }
    )
    return table, records["held"].to_numpy()[rec]


def store_receipts(chunk: Chunk, catalogue: Catalogue, clock: Clock) -> Split:
    """Till receipts: mostly anonymous, some with a loyalty card; returns are receipts numbered RT..."""
    orders, lines, returns = chunk.life.orders, chunk.lines, chunk.returns
    store = ~orders["online"].to_numpy() & (orders["t"].to_numpy() <= clock.end)
    # A till return is a receipt of its own: its own time, number and card.
    ret = returns[returns["number"].to_numpy() >= 0]
    x = _sales_and_returns(orders, lines, store, ret, ("t", "number", "card"))
    x = _sorted(x, (x["number"], x["t"]))
    order, is_return, number, product = x["order"], x["is_return"], x["number"], x["product"]
    person = orders["person"].to_numpy()[order]
    store_no = fmt.numbers(orders["store"].to_numpy()[order] + 101, 4)
    receipt = fmt.join(fmt.where(is_return, "RT", ""), store_no, "-", fmt.numbers(number, 8))
    payments = np.array(["CARD", "CONTACTLESS", "CONTACTLESS", "CASH", "CARD", "REFUND"], dtype=object)
    products = catalogue.products
    table = pa.table(
        {
            "ReceiptNo": receipt,
            "StoreNo": store_no,
            "TillNo": fmt.numbers(1 + orders["number"].to_numpy()[order] % 7),
            "Date": fmt.timestamps(x["t"], "%d/%m/%Y %H:%M", "Europe/London"),
            "CardNo": fmt.lookup(chunk.ids.card, np.where(x["card"], person, -1)),
            "ArticleNo": fmt.lookup(products["sku"].to_numpy(), product),
            "ArticleText": fmt.lookup(products["name"].to_numpy(), product),
            "Qty": fmt.numbers(np.abs(x["quantity"])),  # a till return is a receipt of positive quantities
            "Price": fmt.money(x["price"], ","),
            "LineTotal": fmt.money(x["quantity"] * x["price"], ","),
            "Payment": fmt.lookup(payments, np.where(is_return, 5, number % 5)),
        }
    )
    return table, np.zeros(len(order), dtype=bool)


def future_orders(chunk: Chunk, catalogue: Catalogue, clock: Clock) -> pa.Table:
    """What each person buys (and returns) after the exports end: the truth for churn, CLTV and next product."""
    orders, lines, returns = chunk.life.orders, chunk.lines, chunk.returns
    future = (orders["t"].to_numpy() > clock.end) & ~orders["cancelled"].to_numpy()
    ret = returns[(returns["t"].to_numpy() > clock.end) & (returns["t"].to_numpy() <= clock.horizon)]
    x = _sales_and_returns(orders, lines, future, ret)
    x = _sorted(x, (orders["number"].to_numpy()[x["order"]], x["t"]))
    order, qty = x["order"], x["quantity"]
    online = orders["online"].to_numpy()[order]
    hist = orders["t"].to_numpy()[order] <= clock.end
    number = orders["number"].to_numpy()[order]
    # Orders placed before as_of keep their export number; later ones get truth-only ids (W.../S...).
    order_id = fmt.pick(
        np.where(hist, 0, 2) + np.where(online, 0, 1),
        [
            fmt.numbers(20_000_000 + number),
            fmt.join("store-", fmt.numbers(number)),
            fmt.join("W", fmt.numbers(90_000_000 + number)),
            fmt.join("S", fmt.numbers(90_000_000 + number)),
        ],
    )
    return pa.table(
        {
            "person_id": fmt.lookup(chunk.people["person_id"].to_numpy(), orders["person"].to_numpy()[order]),
            "order_id": order_id,
            "ordered_at": pa.array(x["t"], pa.timestamp("s", tz="UTC")),
            "sku": fmt.lookup(catalogue.products["sku"].to_numpy(), x["product"]),
            "quantity": pa.array(qty, pa.int64()),
            "unit_price": pa.array(x["price"] / 100.0, pa.float64()),
            "channel": fmt.lookup(np.array(["online", "store"]), np.where(online, 0, 1)),
            "line_type": fmt.lookup(np.array(["sale", "return"]), (qty < 0).astype(np.int64)),
        }
    )
