"""The two order-line exports (web shop, store tills) and the future purchases that only the truth knows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from features.simulate import fmt
from features.simulate.catalogue import Catalogue
from features.simulate.chunk import Chunk
from features.simulate.config import DAY, Clock

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


def _text(records: pd.DataFrame, column: str) -> pa.Array:
    """A record column as text, with one trailing null for anonymous rows (index -1)."""
    return fmt.strings(records[column].to_numpy(dtype=object))


def webshop_orders(chunk: Chunk, catalogue: Catalogue, clock: Clock, rng: np.random.Generator) -> Split:
    """Order lines of the web shop: sales (cancelled orders flagged by status) and returns as negative lines."""
    orders, lines, returns, records = chunk.life.orders, chunk.lines, chunk.returns, chunk.records
    web = orders["online"].to_numpy() & (orders["t"].to_numpy() <= clock.end)
    sale = lines[web[lines["order"].to_numpy()]]
    ret = returns[web[returns["order"].to_numpy()] & (returns["t"].to_numpy() <= clock.end)]
    ret_lines = lines.loc[ret["line"].to_numpy()]
    order = np.concatenate([sale["order"].to_numpy(), ret_lines["order"].to_numpy()])
    product = np.concatenate([sale["product"].to_numpy(), ret_lines["product"].to_numpy()])
    is_return = np.concatenate([np.zeros(len(sale), bool), np.ones(len(ret), bool)])
    qty = np.concatenate([sale["quantity"].to_numpy(), -ret_lines["quantity"].to_numpy()])
    price = np.concatenate([sale["price_pence"].to_numpy(), ret_lines["price_pence"].to_numpy()])
    line_no = np.concatenate([sale["line_no"].to_numpy(), ret_lines["line_no"].to_numpy()])
    t = np.concatenate([orders["t"].to_numpy()[sale["order"].to_numpy()], ret["t"].to_numpy()])
    sort = np.lexsort((line_no, orders["number"].to_numpy()[order], t))
    order, product, is_return, qty, price, line_no, t = (
        a[sort] for a in (order, product, is_return, qty, price, line_no, t)
    )
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
            old.astype(int), [fmt.take(_text(records, col), rec), fmt.take(_text(records, "old_" + col), rec)]
        )
    country_pick = rng.random(len(records))
    country = np.where(country_pick < 0.85, "GB", np.where(country_pick < 0.95, "United Kingdom", "UK"))
    table = pa.table(
        {
            "OrderNo": fmt.numbers(20_000_000 + orders["number"].to_numpy()[order]),
            "LineNo": fmt.numbers(line_no),
            "CustomerId": fmt.lookup(chunk.ids.webshop, np.where(guest, -1, person)),
            "OrderDate": fmt.timestamps(t, "%Y-%m-%dT%H:%M:%SZ"),
            "Status": fmt.lookup(STATUSES, status),
            "ArticleNo": fmt.lookup(products["sku"].to_numpy(), product),
            "Description": fmt.lookup(products["name"].to_numpy(), product),
            "Qty": fmt.quantity(qty),
            "UnitPrice": fmt.money(price),
            "Currency": fmt.lookup(np.array(["GBP"]), np.zeros(len(order), dtype=np.int64)),
            "BillingFirstName": fmt.take(_text(records, "first"), rec),
            "BillingLastName": fmt.take(_text(records, "last"), rec),
            "Email": fmt.take(_text(records, "email"), rec),
            "Phone": fmt.take(_text(records, "phone"), rec),
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
    sale = lines[store[lines["order"].to_numpy()]]
    ret = returns[returns["number"].to_numpy() >= 0]
    ret_lines = lines.loc[ret["line"].to_numpy()]
    order = np.concatenate([sale["order"].to_numpy(), ret_lines["order"].to_numpy()])
    is_return = np.concatenate([np.zeros(len(sale), bool), np.ones(len(ret), bool)])
    number = np.concatenate([orders["number"].to_numpy()[sale["order"].to_numpy()], ret["number"].to_numpy()])
    t = np.concatenate([orders["t"].to_numpy()[sale["order"].to_numpy()], ret["t"].to_numpy()])
    card = np.concatenate([orders["card"].to_numpy()[sale["order"].to_numpy()], ret["card"].to_numpy()])
    product = np.concatenate([sale["product"].to_numpy(), ret_lines["product"].to_numpy()])
    qty = np.concatenate([sale["quantity"].to_numpy(), ret_lines["quantity"].to_numpy()])
    price = np.concatenate([sale["price_pence"].to_numpy(), ret_lines["price_pence"].to_numpy()])
    sort = np.lexsort((number, t))
    order, is_return, number, t, card, product, qty, price = (
        a[sort] for a in (order, is_return, number, t, card, product, qty, price)
    )
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
            "Date": fmt.timestamps(t, "%d/%m/%Y %H:%M", "Europe/London"),
            "CardNo": fmt.lookup(chunk.ids.card, np.where(card, person, -1)),
            "ArticleNo": fmt.lookup(products["sku"].to_numpy(), product),
            "ArticleText": fmt.lookup(products["name"].to_numpy(), product),
            "Qty": fmt.quantity(qty),
            "Price": fmt.money(price, ","),
            "LineTotal": fmt.money(np.where(is_return, -1, 1) * qty * price, ","),
            "Payment": fmt.lookup(payments, np.where(is_return, 5, number % 5)),
        }
    )
    return table, np.zeros(len(order), dtype=bool)


def future_orders(chunk: Chunk, catalogue: Catalogue, clock: Clock) -> pa.Table:
    """What each person buys (and returns) after the exports end: the truth for churn, CLTV and next product."""
    orders, lines, returns = chunk.life.orders, chunk.lines, chunk.returns
    future = (orders["t"].to_numpy() > clock.end) & ~orders["cancelled"].to_numpy()
    sale = lines[future[lines["order"].to_numpy()]]
    ret = returns[(returns["t"].to_numpy() > clock.end) & (returns["t"].to_numpy() <= clock.horizon)]
    ret_lines = lines.loc[ret["line"].to_numpy()]
    order = np.concatenate([sale["order"].to_numpy(), ret_lines["order"].to_numpy()])
    t = np.concatenate([orders["t"].to_numpy()[sale["order"].to_numpy()], ret["t"].to_numpy()])
    qty = np.concatenate([sale["quantity"].to_numpy(), -ret_lines["quantity"].to_numpy()])
    price = np.concatenate([sale["price_pence"].to_numpy(), ret_lines["price_pence"].to_numpy()])
    product = np.concatenate([sale["product"].to_numpy(), ret_lines["product"].to_numpy()])
    online = orders["online"].to_numpy()[order]
    hist = orders["t"].to_numpy()[order] <= clock.end
    number = orders["number"].to_numpy()[order]
    sort = np.lexsort((number, t))
    order, t, qty, price, product, online, hist, number = (
        a[sort] for a in (order, t, qty, price, product, online, hist, number)
    )
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
            "ordered_at": pa.array(t, pa.timestamp("s", tz="UTC")),
            "sku": fmt.lookup(catalogue.products["sku"].to_numpy(), product),
            "quantity": pa.array(qty, pa.int64()),
            "unit_price": pa.array(price / 100.0, pa.float64()),
            "channel": fmt.lookup(np.array(["online", "store"]), np.where(online, 0, 1)),
            "line_type": fmt.lookup(np.array(["sale", "return"]), (qty < 0).astype(np.int64)),
        }
    )
