"""The truth behind the exports: who every record really is, and each person's hidden attributes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator import fmt
from simulator.behaviour import CAUSES, NEVER
from simulator.chunk import Chunk
from simulator.config import Clock


def identity_rows(chunk: Chunk) -> pa.Table:
    """`source, record_id, person_id` for every person record (held-back ones under their `_later` source)."""
    r = chunk.records
    frame = pd.DataFrame(
        {
            "source": r["final_source"].to_numpy(dtype=object),
            "record_id": r["record_id"].to_numpy(dtype=object),
            "person_id": chunk.people["person_id"].to_numpy(dtype=object)[r["person"].to_numpy()],
        }
    ).sort_values(["source", "record_id"], kind="stable")
    return pa.Table.from_pandas(frame, preserve_index=False)


def _timestamps(values: np.ndarray, until: int) -> pa.Array:
    values = np.asarray(values, dtype=np.int64)
    return pa.array(
        values, pa.timestamp("s", tz="UTC"), mask=(values >= NEVER) | (values > until) | (values < 0)
    )


def persons(chunk: Chunk, clock: Clock) -> pa.Table:
    """One row per person: true attributes, household, latent behaviour, churn, and their ids per system."""
    p, latent, members = chunk.people, chunk.latent, chunk.life.members
    orders, lines = chunk.life.orders, chunk.lines
    n = len(p)
    person = orders["person"].to_numpy()
    hist = orders["t"].to_numpy() <= clock.end
    fut = ~hist & ~orders["cancelled"].to_numpy()
    before = np.bincount(person[hist], minlength=n)
    after = np.bincount(person[fut], minlength=n)
    value = lines["quantity"].to_numpy() * lines["price_pence"].to_numpy() * fut[lines["order"].to_numpy()]
    revenue = np.bincount(person[lines["order"].to_numpy()], weights=value, minlength=n) / 100.0
    death = members["death"].to_numpy()
    end = clock.end

    def exists(times: np.ndarray, ids: np.ndarray) -> pa.Array:
        return fmt.strings(np.where(np.asarray(times) <= end, ids, None))

    def plus(e164: pd.Series) -> pa.Array:
        return fmt.strings(np.where(e164.isna(), None, "+" + e164.fillna("")).astype(object))

    return pa.table(
        {
            "person_id": fmt.column(p, "person_id"),
            "household_id": fmt.ids("H", p["household"].to_numpy() + 1, 7),
            "first_name": fmt.column(p, "first"),
            "last_name": fmt.column(p, "last"),
            "nickname": fmt.column(p, "nickname"),
            "gender": fmt.column(p, "gender"),
            "birth_date": pa.array(p["birth_day"].to_numpy().astype("datetime64[D]"), pa.date32()),
            "email": fmt.column(p, "email"),
            "email_shared_in_household": pa.array(p["shared_email"].to_numpy()),
            "other_email": fmt.column(p, "alt_email"),
            "other_email_used_by": fmt.strings(
                np.array([None, "crm_contacts", "loyalty_members", "webshop_orders"], dtype=object)[
                    p["alt_system"].to_numpy()
                ]
            ),
            "mobile": plus(p["mobile"]),
            "landline": plus(p["landline"]),
            "street": fmt.column(p, "street"),
            "postcode": fmt.column(p, "postcode"),
            "city": fmt.column(p, "city"),
            "moved_at": _timestamps(p["moved_at"].to_numpy(), end),
            "old_street": fmt.column(p, "old_street"),
            "old_postcode": fmt.column(p, "old_postcode"),
            "old_city": fmt.column(p, "old_city"),
            "segment": fmt.column(latent, "segment"),
            "purchase_rate_per_year": pa.array(latent["rate"].to_numpy() * 365.0),
            "dropout_probability": pa.array(latent["dropout"].to_numpy()),
            "spend_level": pa.array(latent["spend"].to_numpy()),
            "online_share": pa.array(latent["online_share"].to_numpy()),
            "joined_at": _timestamps(latent["joined"].to_numpy(), end),
            "churned_at": _timestamps(death, clock.horizon),
            "churn_cause": fmt.strings(
                np.where(death <= clock.horizon, CAUSES[members["cause"].to_numpy()], None)
            ),
            "active_at_as_of": pa.array(death > end),
            "orders_before_as_of": pa.array(before, pa.int64()),
            "orders_after_as_of": pa.array(after, pa.int64()),
            "revenue_after_as_of": pa.array(revenue),
            "webshop_customer_id": exists(members["account_created"].to_numpy(), chunk.ids.webshop),
            "crm_contact_id": exists(members["crm_created"].to_numpy(), chunk.ids.crm),
            "loyalty_member_id": exists(members["loyalty_joined"].to_numpy(), chunk.ids.member),
            "loyalty_card": exists(members["loyalty_joined"].to_numpy(), chunk.ids.card),
        }
    )


def anonymous_ids(chunk: Chunk) -> pa.Table:
    """Which person each web cookie (`anonymous_id`) belongs to: the truth for session stitching."""
    s = chunk.sessions
    pairs = (
        pd.DataFrame({"anonymous": s["anonymous"].to_numpy(), "person": s["person"].to_numpy()})
        .drop_duplicates()
        .sort_values("anonymous")
    )
    return pa.table(
        {
            "anonymous_id": fmt.join("anon-", fmt.numbers(pairs["anonymous"].to_numpy(), 10)),
            "person_id": fmt.strings(
                chunk.people["person_id"].to_numpy(dtype=object)[pairs["person"].to_numpy()]
            ),
        }
    )
