"""Person records: which (source, record_id) exist, and how each system shows the person behind it.

A record is what ingestion will key a row by (docs/sources.md): a CRM contact, a loyalty member, a
web-shop account, one guest order, a loyalty card on receipts, a ticket without an account, and so on.
Noise is drawn once per record, so every row of a record shows the person the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator import noise
from simulator.behaviour import NEVER
from simulator.config import Clock, SimConfig
from simulator.people import ALT_CRM, ALT_LOYALTY, ALT_WEBSHOP, permute

# Record kinds, the source each lives in (before any holdback), and whether it can be held back.
KINDS = {
    "crm": ("crm_contacts", True),
    "loyalty": ("loyalty_members", True),
    "account": ("webshop_orders", False),
    "guest": ("webshop_orders", True),
    "web": ("web_events", False),
    "email_crm": ("email_events", False),
    "email_only": ("email_events", False),
    "card": ("store_receipts", False),
    "ticket_ref": ("support_tickets", False),
    "ticket": ("support_tickets", True),
}
EMAIL_NONE, EMAIL_MAIN, EMAIL_ALT = 0, 1, 2
PHONE_NONE, PHONE_MOBILE, PHONE_LANDLINE = 0, 1, 2
ADDR_CURRENT, ADDR_OLD = 1, 2


@dataclass(frozen=True)
class PersonIds:
    """Each person's ids in each system (global, unique, scrambled)."""

    webshop: np.ndarray
    crm: np.ndarray
    crm_duplicate: np.ndarray
    member: np.ndarray
    card: np.ndarray

    @classmethod
    def for_people(cls, person: np.ndarray) -> PersonIds:
        """The ids of the given global person numbers."""

        def z(values: np.ndarray, width: int) -> np.ndarray:
            return pd.Series(values).astype(str).str.zfill(width).to_numpy(dtype=object)

        return cls(
            webshop=z(1_000_000 + permute(person, 9_000_000, 12_345), 7),
            crm="C" + z(permute(2 * person, 100_000_000, 777), 8),
            crm_duplicate="C" + z(permute(2 * person + 1, 100_000_000, 777), 8),
            member="M" + z(permute(person, 100_000_000, 4_242), 8),
            card="6337" + z(permute(person, 1_000_000_000, 99_991), 9),
        )


def _pick(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(mask, a, b).astype(object)


def _email_choice(
    people: pd.DataFrame, rows: np.ndarray, alt_system: int, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    use_alt = people["alt_system"].to_numpy()[rows] == alt_system
    value = _pick(use_alt, people["alt_email"].to_numpy()[rows], people["email"].to_numpy()[rows])
    kind = np.where(use_alt, EMAIL_ALT, EMAIL_MAIN)
    return np.where(present, value, None).astype(object), np.where(present, kind, EMAIL_NONE)


def _phone_choice(
    rng: np.random.Generator, people: pd.DataFrame, rows: np.ndarray, mobile_p: float, landline_p: float
) -> tuple[np.ndarray, np.ndarray]:
    mobile = people["mobile"].to_numpy()[rows]
    landline = people["landline"].to_numpy()[rows]
    u = rng.random(len(rows))
    use_mobile = (u < mobile_p) & (mobile != None)  # noqa: E711
    use_land = ~use_mobile & (u < mobile_p + landline_p) & (landline != None)  # noqa: E711
    value = np.where(use_mobile, mobile, np.where(use_land, landline, None)).astype(object)
    return value, np.select([use_mobile, use_land], [PHONE_MOBILE, PHONE_LANDLINE], PHONE_NONE)


def _birth_dates(
    rng: np.random.Generator, people: pd.DataFrame, rows: np.ndarray, shown: float, config: SimConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Birth dates as a system holds them (some missing, some day/month swapped), and which are right."""
    has_dob = rng.random(len(rows)) < shown
    true = people["birth_day"].to_numpy()[rows]
    typed = noise.birth_dates(rng, true, config.dob_swap)
    return np.where(has_dob, typed, np.datetime64("NaT")), has_dob & (typed == true.astype("datetime64[D]"))


def describe(
    rng: np.random.Generator,
    kind: str,
    people: pd.DataFrame,
    rows: np.ndarray,
    at: np.ndarray,
    config: SimConfig,
    *,
    address_mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """How one system shows the given people (rows = person positions, at = when the record was made)."""
    n = len(rows)
    p = people
    first, last, nick = (
        p["first"].to_numpy()[rows],
        p["last"].to_numpy()[rows],
        p["nickname"].to_numpy()[rows],
    )
    moved_at = p["moved_at"].to_numpy()[rows]
    before_move = (moved_at >= 0) & (at < moved_at)
    out = pd.DataFrame({"person": rows, "kind": kind})
    has_name = np.ones(n, dtype=bool)
    dob_ok = np.zeros(n, dtype=bool)
    dob = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    gender = np.full(n, None, dtype=object)
    old_address = before_move
    if kind == "crm":
        f, ln, _ = noise.names(rng, first, last, nick, config)
        email, email_kind = _email_choice(p, rows, ALT_CRM, rng.random(n) < 0.95)
        phone, phone_kind = _phone_choice(rng, p, rows, 0.75, 0.15)
        show_addr = rng.random(n) < 0.92
        old_address = before_move & (rng.random(n) < 0.6)  # the CRM often misses a move
        dob, dob_ok = _birth_dates(rng, p, rows, 0.9, config)
        gender = np.where(rng.random(n) < 0.85, p["gender"].to_numpy()[rows], None)
    elif kind == "loyalty":
        f, ln, _ = noise.names(
            rng, first, last, nick, config, accents_lost=1.0, upper=config.loyalty_upper_names
        )
        email, email_kind = _email_choice(p, rows, ALT_LOYALTY, rng.random(n) < 0.8)
        phone, phone_kind = _phone_choice(rng, p, rows, 0.7, 0.1)
        show_addr = rng.random(n) < 0.85
        old_address = before_move & (rng.random(n) < 0.8)  # nobody tells the loyalty program
        dob, dob_ok = _birth_dates(rng, p, rows, 0.95, config)
        gender = np.where(
            rng.random(n) < 0.7, np.where(p["gender"].to_numpy()[rows] == "F", "Female", "Male"), None
        )
    elif kind in ("account", "ticket_ref", "email_only"):
        f, ln, _ = noise.names(rng, first, last, nick, config, lower=0.03, swap=False)
        email, email_kind = _email_choice(p, rows, ALT_WEBSHOP, np.ones(n, dtype=bool))
        phone, phone_kind = _phone_choice(rng, p, rows, 0.85, 0.1)
        show_addr = np.ones(n, dtype=bool) if kind == "account" else np.zeros(n, dtype=bool)
        if kind != "account":
            phone, phone_kind = np.full(n, None, dtype=object), np.zeros(n, dtype=np.int64)
        if kind == "email_only":
            has_name[:] = False
    elif kind == "guest":
        f, ln, _ = noise.names(rng, first, last, nick, config, accents_lost=0.3, lower=0.04)
        email, email_kind = _email_choice(p, rows, -1, np.ones(n, dtype=bool))
        phone, phone_kind = _phone_choice(rng, p, rows, 0.85, 0.1)
        show_addr = np.ones(n, dtype=bool)
    elif kind == "ticket":
        f, ln, _ = noise.names(rng, first, last, nick, config, accents_lost=0.5, lower=0.05)
        by_phone = rng.random(n) < 0.4
        email, email_kind = _email_choice(p, rows, -1, ~by_phone | (rng.random(n) < 0.3))
        phone, phone_kind = _phone_choice(rng, p, rows, 0.8, 0.2)
        keep_phone = by_phone | (rng.random(n) < 0.3)
        phone = np.where(keep_phone, phone, None).astype(object)
        phone_kind = np.where(keep_phone, phone_kind, PHONE_NONE)
        show_addr = np.zeros(n, dtype=bool)
    else:  # web, email_crm, card: no person columns; they link by their ids alone
        f = ln = email = phone = np.full(n, None, dtype=object)
        email_kind = phone_kind = np.zeros(n, dtype=np.int64)
        has_name[:] = False
        show_addr = np.zeros(n, dtype=bool)

    out["first"], out["last"] = np.where(has_name, f, None), np.where(has_name, ln, None)
    out["email"] = noise.emails(rng, email, config) if kind != "email_only" else email
    out["email_kind"] = email_kind
    out["phone"] = noise.phones(rng, phone, p["dial_len"].to_numpy()[rows], phone_kind == PHONE_MOBILE)
    out["phone_kind"] = phone_kind
    cur = (p["street"].to_numpy()[rows], p["postcode"].to_numpy()[rows], p["city"].to_numpy()[rows])
    old = (
        p["old_street"].to_numpy()[rows],
        p["old_postcode"].to_numpy()[rows],
        p["old_city"].to_numpy()[rows],
    )
    abbreviate = {"crm": 0.05, "loyalty": 0.1, "guest": 0.15, "account": 0.1}.get(kind, 0.0)
    upper = config.loyalty_upper_names if kind == "loyalty" else 0.0
    for prefix, (street, postcode, city) in (("", cur), ("old_", old)):
        out[prefix + "street"] = noise.streets(rng, np.where(show_addr, street, None), abbreviate, upper)
        out[prefix + "postcode"] = noise.postcodes(rng, np.where(show_addr, postcode, None), 0.08, 0.03)
        out[prefix + "city"] = np.where(show_addr, city, None)
    if address_mask is not None:
        addr = address_mask
    else:
        addr = np.where(show_addr, np.where(old_address, ADDR_OLD, ADDR_CURRENT), 0)
    if kind != "account":
        # A single-moment record shows one address: move the chosen one into the main columns.
        use_old = addr == ADDR_OLD
        for col in ("street", "postcode", "city"):
            out[col] = np.where(use_old, out["old_" + col], out[col])
    out["addr"] = addr
    out["has_name"] = has_name
    out["dob"] = dob
    out["dob_ok"] = dob_ok
    out["gender"] = gender
    out["at"] = at
    return out


def record_ids(
    kind: str, rows: np.ndarray, ids: PersonIds, extra: np.ndarray | None, email: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The record_id ingestion computes for these records, and the identity token (`<namespace>:<id>`)."""
    if kind == "crm":
        rid = extra.astype(object)
        return rid, "crm:" + rid
    if kind == "email_crm":
        return ids.crm[rows], "crm:" + ids.crm[rows]
    if kind == "loyalty":
        return ids.member[rows], "loyalty:" + ids.member[rows]
    if kind in ("account", "web", "ticket_ref"):
        return ids.webshop[rows], "webshop:" + ids.webshop[rows]
    if kind == "guest":
        rid = "order:" + extra.astype(object)
        return rid, "guest:" + rid
    if kind == "ticket":
        rid = "ticket:" + extra.astype(object)
        return rid, "ticket:" + rid
    if kind == "card":
        return "card:" + ids.card[rows], "card:" + ids.card[rows]
    if kind == "email_only":
        rid = "email:" + pd.Series(email, dtype=object).str.strip().str.lower().to_numpy(dtype=object)
        return rid, "newsletter:" + rid
    raise ValueError(f"unknown record kind {kind!r}")


def crm_ids(members: pd.DataFrame, ids: PersonIds, clock: Clock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CRM contacts that exist by the end of the exports: person, created time, contact id."""
    created = members["crm_created"].to_numpy()
    dup = members["crm_dup_created"].to_numpy()
    a = np.flatnonzero(created <= clock.end)
    b = np.flatnonzero((dup <= clock.end) & (dup < NEVER))
    person = np.concatenate([a, b])
    return person, np.concatenate([created[a], dup[b]]), np.concatenate([ids.crm[a], ids.crm_duplicate[b]])
