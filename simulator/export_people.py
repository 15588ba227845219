"""The person-centred exports: CRM contacts, loyalty members, support tickets and consents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator import fmt
from simulator.behaviour import NEVER, TICKET_REASONS
from simulator.chunk import Chunk
from simulator.config import DAY, Clock
from simulator.export_orders import Split, record_index

TICKET_CHANNELS = np.array(["Email", "Phone", "Chat", "In store"], dtype=object)
LEAD_SOURCES = np.array(["Web", "Web", "Store", "Import", "Event"], dtype=object)


def crm_contacts(chunk: Chunk, clock: Clock, rng: np.random.Generator) -> Split:
    """One row per CRM contact (duplicates of a person included), dates of birth as dd/mm/yyyy."""
    c = chunk.records[chunk.records["kind"].to_numpy() == "crm"].sort_values("at", kind="stable")
    n = len(c)
    created = c["at"].to_numpy()
    modified = np.minimum(created + (rng.exponential(200, n) * DAY).astype(np.int64), clock.end)
    female = c["gender"].to_numpy() == "F"
    salutation = np.where(
        c["gender"].isna().to_numpy(),
        None,
        np.where(female, np.where(rng.random(n) < 0.5, "Mrs", "Ms"), "Mr"),
    )
    dob = pd.Series(c["dob"].to_numpy()).dt.strftime("%d/%m/%Y").to_numpy(dtype=object)
    table = pa.table(
        {
            "ContactId": fmt.column(c, "record_id"),
            "Salutation": fmt.strings(salutation),
            "FirstName": fmt.column(c, "first"),
            "LastName": fmt.column(c, "last"),
            "Email": fmt.column(c, "email"),
            "Mobile": fmt.column(c, "phone"),
            "AddressLine1": fmt.column(c, "street"),
            "Postcode": fmt.column(c, "postcode"),
            "Town": fmt.column(c, "city"),
            "Country": fmt.where(c["street"].notna().to_numpy(), "United Kingdom", pa.nulls(n, pa.string())),
            "DateOfBirth": fmt.strings(np.where(pd.isna(dob), None, dob)),
            "Gender": fmt.column(c, "gender"),
            "CreatedDate": fmt.timestamps(created, "%Y-%m-%d %H:%M:%S"),
            "LastModifiedDate": fmt.timestamps(modified, "%Y-%m-%d %H:%M:%S"),
            "LeadSource": fmt.strings(LEAD_SOURCES[rng.integers(0, len(LEAD_SOURCES), n)]),
        }
    )
    return table, c["held"].to_numpy()


def loyalty_members(chunk: Chunk, clock: Clock) -> Split:
    """Loyalty members with native Parquet types: points from card spend, tier from points."""
    m = chunk.records[chunk.records["kind"].to_numpy() == "loyalty"].sort_values("at", kind="stable")
    orders, lines = chunk.life.orders, chunk.lines
    shown = orders["card"].to_numpy() & (orders["t"].to_numpy() <= clock.end)
    spend = lines["quantity"].to_numpy() * lines["price_pence"].to_numpy() * shown[lines["order"].to_numpy()]
    by_person = pd.Series(spend).groupby(orders["person"].to_numpy()[lines["order"].to_numpy()]).sum()
    points = np.floor(by_person.reindex(m["person"].to_numpy()).fillna(0).to_numpy() / 100.0)
    tier = np.where(points >= 2000, "Gold", np.where(points >= 500, "Silver", "Bronze")).astype(object)
    table = pa.table(
        {
            "member_id": fmt.column(m, "record_id"),
            "card_number": fmt.column(m, "card"),
            "tier": fmt.strings(tier),
            "points": pa.array(points, pa.float64()),
            "joined": pa.array(m["at"].to_numpy(), pa.timestamp("s", tz="UTC")),
            "forename": fmt.column(m, "first"),
            "surname": fmt.column(m, "last"),
            "email_address": fmt.column(m, "email"),
            "mobile_no": fmt.column(m, "phone"),
            "house_street": fmt.column(m, "street"),
            "post_code": fmt.column(m, "postcode"),
            "town": fmt.column(m, "city"),
            "dob": pa.array(m["dob"].to_numpy().astype("datetime64[D]"), pa.date32()),
            "gender": fmt.column(m, "gender"),
        }
    )
    return table, m["held"].to_numpy()


def support_tickets(chunk: Chunk, clock: Clock, rng: np.random.Generator) -> Split:
    """Tickets: with the web-shop customer number when the requester was logged in, else name and contact."""
    tickets = chunk.life.tickets
    t = tickets[tickets["created"].to_numpy() <= clock.end].sort_values("created", kind="stable")
    person = t["person"].to_numpy()
    with_ref = t["with_ref"].to_numpy()
    rec = np.where(
        with_ref,
        record_index(chunk.records, "ticket_ref", person),
        record_index(chunk.records, "ticket", t.index.to_numpy()),
    )
    records = chunk.records
    first = fmt.take(fmt.column(records, "first"), rec)
    last = fmt.take(fmt.column(records, "last"), rec)
    comma = rng.random(len(t)) < 0.03
    full = fmt.pick(comma.astype(int), [fmt.join(first, " ", last), fmt.join(last, ", ", first)])
    rated = t["rated"].to_numpy() & np.isin(t["status"].to_numpy(), ["solved", "closed"])
    order = t["order"].to_numpy()
    orders = chunk.life.orders
    order_ref = np.where(
        order >= 0, (20_000_000 + orders["number"].to_numpy()[np.maximum(order, 0)]).astype(str), None
    )
    table = pa.table(
        {
            "ticket_id": fmt.numbers(t["number"].to_numpy()),
            "created_at": fmt.timestamps(t["created"].to_numpy(), "%Y-%m-%dT%H:%M:%S+00:00"),
            "customer_number": fmt.strings(np.where(with_ref, chunk.ids.webshop[person], None)),
            "requester_name": full,
            "requester_email": fmt.take(fmt.column(records, "email"), rec),
            "requester_phone": fmt.take(fmt.column(records, "phone"), rec),
            "reason": fmt.strings(TICKET_REASONS[t["reason"].to_numpy()]),
            "channel": fmt.strings(TICKET_CHANNELS[t["channel"].to_numpy()]),
            "status": fmt.column(t, "status"),
            "csat": fmt.null_where(~rated, fmt.numbers(t["satisfaction"].to_numpy())),
            "order_ref": fmt.strings(order_ref.astype(object)),
        }
    )
    return table, records["held"].to_numpy()[rec]


def consents(chunk: Chunk, clock: Clock, rng: np.random.Generator) -> pa.Table:
    """Consent events per identifier and purpose, as the consent platform records them."""
    r, members = chunk.records, chunk.life.members
    kind = r["kind"].to_numpy()
    person = r["person"].to_numpy()
    sub_from = members["subscribed_from"].to_numpy()[person]
    unsub = members["unsubscribed"].to_numpy()[person]
    primary = (kind == "crm") & (r["record_id"].to_numpy() == chunk.ids.crm[person])
    rows: list[tuple[np.ndarray, str, np.ndarray, str, str, np.ndarray, np.ndarray]] = []

    def add(
        mask: np.ndarray,
        id_type: str,
        ident: np.ndarray,
        purpose: str,
        status: str,
        at: np.ndarray,
        origin: np.ndarray,
    ) -> None:
        rows.append((np.flatnonzero(mask), id_type, ident[mask], purpose, status, at[mask], origin[mask]))

    email = r["email"].to_numpy(dtype=object)
    has_email = r["email"].notna().to_numpy()
    at = r["at"].to_numpy()
    n = len(r)
    form = np.array(["web form", "in store", "call centre"], dtype=object)[rng.integers(0, 3, n)]
    link = np.full(n, "email link", dtype=object)
    subscribed = sub_from < NEVER
    crm_email = primary & has_email
    add(crm_email & subscribed, "EMAIL", email, "email", "opt_in", at, form)
    add(crm_email & ~subscribed & (rng.random(n) < 0.5), "EMAIL", email, "email", "opt_out", at, form)
    news = kind == "email_only"
    add(
        news,
        "EMAIL",
        email,
        "email",
        "opt_in",
        np.minimum(sub_from, NEVER - 1),
        np.full(n, "newsletter footer", dtype=object),
    )
    withdrawn = (crm_email | news) & subscribed & (unsub <= clock.end)
    add(withdrawn, "EMAIL", email, "email", "opt_out", unsub, link)
    phone = r["phone"].to_numpy(dtype=object)
    sms = primary & (r["phone_kind"].to_numpy() == 1) & (rng.random(n) < 0.3)
    add(sms, "PHONE", phone, "sms", "opt_in", at, form)
    stop = sms & (rng.random(n) < 0.1)
    add(
        stop,
        "PHONE",
        phone,
        "sms",
        "opt_out",
        np.minimum(at + (rng.exponential(300, n) * DAY).astype(np.int64), clock.end),
        np.full(n, "sms STOP", dtype=object),
    )
    account = kind == "account"
    ref = r["record_id"].to_numpy(dtype=object)
    banner = np.full(n, "cookie banner", dtype=object)
    personal = rng.random(n) < 0.75
    add(account & personal, "ACCOUNT", ref, "personalisation", "opt_in", at, banner)
    add(account & ~personal, "ACCOUNT", ref, "personalisation", "opt_out", at, banner)
    add(
        account & (rng.random(n) < 0.6),
        "ACCOUNT",
        ref,
        "profiling",
        "opt_in",
        at + 60,
        np.full(n, "account settings", dtype=object),
    )
    card = r["card"].to_numpy(dtype=object)
    add(
        (kind == "loyalty") & (rng.random(n) < 0.8),
        "CARD",
        card,
        "profiling",
        "opt_in",
        at,
        np.full(n, "store", dtype=object),
    )

    ident = np.concatenate([x[2] for x in rows])
    when = np.concatenate([x[5] for x in rows])
    order = np.lexsort((ident.astype(str), when))
    table = pa.table(
        {
            "id_type": fmt.strings(
                np.concatenate([np.full(len(x[0]), x[1], dtype=object) for x in rows])[order]
            ),
            "identifier": fmt.strings(ident[order]),
            "purpose": fmt.strings(
                np.concatenate([np.full(len(x[0]), x[3], dtype=object) for x in rows])[order]
            ),
            "status": fmt.strings(
                np.concatenate([np.full(len(x[0]), x[4], dtype=object) for x in rows])[order]
            ),
            "timestamp": fmt.timestamps(when[order], "%Y-%m-%dT%H:%M:%SZ"),
            "origin": fmt.strings(np.concatenate([x[6] for x in rows])[order]),
        }
    )
    return table
