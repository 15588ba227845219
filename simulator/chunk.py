"""One chunk of people, simulated end to end: behaviour, ids, person records, linkability and holdback."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator import noise
from simulator.baskets import build_lines, draw_returns, home_stores
from simulator.behaviour import Season, discovery_affinity, draw_latent, repeat_sets
from simulator.catalogue import Catalogue
from simulator.config import DAY, Clock, SimConfig, chunk_rng
from simulator.engagement import email_events, web_events
from simulator.lifecycle import Lifecycle, simulate_lifecycle
from simulator.linkage import components, hard_records, parts_per_person, stray_records, tokens
from simulator.people import EmailBook, make_people, permute
from simulator.records import (
    ADDR_CURRENT,
    ADDR_OLD,
    EMAIL_ALT,
    EMAIL_MAIN,
    KINDS,
    PersonIds,
    crm_ids,
    describe,
    record_ids,
)

REPAIRABLE = ("crm", "loyalty", "account", "guest", "ticket", "email_only")


@dataclass
class Counters:
    """Running numbers shared by all chunks, so order, receipt and ticket numbers never repeat."""

    web_order: int = 0
    receipt: int = 0
    ticket: int = 0
    session: int = 0
    future: int = 0

    def take(self, name: str, count: int) -> int:
        """Reserve `count` numbers of one sequence; returns the first."""
        start = getattr(self, name)
        setattr(self, name, start + count)
        return start


@dataclass
class Chunk:
    """Everything simulated for one chunk of people."""

    people: pd.DataFrame
    latent: pd.DataFrame
    life: Lifecycle
    lines: pd.DataFrame
    returns: pd.DataFrame
    sessions: pd.DataFrame
    events: pd.DataFrame
    mail: pd.DataFrame
    records: pd.DataFrame
    ids: PersonIds
    stats: dict[str, int] = field(default_factory=dict)


def simulate_chunk(
    seed: int,
    chunk: int,
    n: int,
    first_person: int,
    first_household: int,
    clock: Clock,
    season: Season,
    config: SimConfig,
    catalogue: Catalogue,
    emails: EmailBook,
    counters: Counters,
    holdback: float,
) -> Chunk:
    """Simulate `n` people (global numbers from `first_person`) and everything they did."""

    def rng(stream: str) -> np.random.Generator:
        return chunk_rng(seed, chunk, stream)

    people = make_people(rng("people"), n, first_person, first_household, clock, config, emails)
    latent_rng = rng("latent")
    latent = draw_latent(latent_rng, n, clock, config)
    repeat = repeat_sets(latent_rng, latent, seed, catalogue)
    affinity = discovery_affinity(latent_rng, n, catalogue)
    life = simulate_lifecycle(rng("timeline"), people, latent, clock, season, config)
    basket_rng = rng("baskets")
    lines = build_lines(basket_rng, life.orders, latent, repeat, affinity, catalogue, config)
    returns = draw_returns(basket_rng, life.orders, lines, catalogue, config)
    sessions, events = web_events(
        rng("web"), life.orders, lines, latent, life.members, repeat, affinity, catalogue, clock, config
    )
    mail = email_events(rng("email"), latent, life.members, catalogue, clock, config)
    ids = PersonIds.for_people(people["person"].to_numpy())
    _route(rng("tickets"), people, life, returns, lines, sessions, catalogue, clock, config, counters)
    records = _records(rng("noise"), people, life, sessions, events, mail, ids, clock, config)
    result = Chunk(people, latent, life, lines, returns, sessions, events, mail, records, ids)
    _link_and_hold(rng("holdback"), result, holdback, config)
    return result


def _ranks(values: np.ndarray) -> np.ndarray:
    """Each value's position in time order (ties in their given order): numbers follow the clock."""
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(values, kind="stable")] = np.arange(len(values))
    return rank


def _route(
    rng: np.random.Generator,
    people: pd.DataFrame,
    life: Lifecycle,
    returns: pd.DataFrame,
    lines: pd.DataFrame,
    sessions: pd.DataFrame,
    catalogue: Catalogue,
    clock: Clock,
    config: SimConfig,
    counters: Counters,
) -> None:
    """Numbers, stores, cards shown at the till, ticket references: the ids each system gives things."""
    orders, tickets, members = life.orders, life.tickets, life.members
    t, online, person = orders["t"].to_numpy(), orders["online"].to_numpy(), orders["person"].to_numpy()
    hist = t <= clock.end
    number = np.full(len(orders), -1, dtype=np.int64)
    for name, mask in (("web_order", hist & online), ("receipt", hist & ~online), ("future", ~hist)):
        idx = np.flatnonzero(mask)
        number[idx] = counters.take(name, len(idx)) + _ranks(t[idx])
    orders["number"] = number
    home = home_stores(rng, people["town"].to_numpy(), catalogue)
    elsewhere = rng.random(len(orders)) < 0.15
    orders["store"] = np.where(
        elsewhere, rng.integers(0, len(catalogue.store_towns), len(orders)), home[person]
    )
    member = t >= members["loyalty_joined"].to_numpy()[person]
    orders["card"] = ~online & member & (rng.random(len(orders)) < config.card_shown)

    order_of = lines["order"].to_numpy()[returns["line"].to_numpy()]
    returns["order"] = order_of
    returns["card"] = orders["card"].to_numpy()[order_of] & (rng.random(len(returns)) < 0.8)
    store_hist = ~online[order_of] & (returns["t"].to_numpy() <= clock.end)
    returns["number"] = -1
    returns.loc[store_hist, "number"] = counters.take("receipt", int(store_hist.sum())) + np.arange(
        int(store_hist.sum())
    )

    created = tickets["created"].to_numpy()
    tp = tickets["person"].to_numpy()
    channel = tickets["channel"].to_numpy()
    has_account = created >= members["account_created"].to_numpy()[tp]
    tickets["with_ref"] = has_account & np.isin(channel, [0, 2]) & (rng.random(len(tickets)) < 0.7)
    tickets["number"] = 400_000 + counters.take("ticket", len(tickets)) + _ranks(created)
    recent = created > clock.end - 14 * DAY
    u = rng.random(len(tickets))
    tickets["status"] = np.where(
        recent & (u < 0.5), np.where(u < 0.3, "open", "pending"), np.where(u < 0.8, "solved", "closed")
    )
    sessions["number"] = counters.take("session", len(sessions)) + _ranks(sessions["start"].to_numpy())
    sessions["anonymous"] = permute(
        3 * people["person"].to_numpy()[sessions["person"].to_numpy()] + sessions["device"].to_numpy(),
        10**10,
        31_337,
    )


def _records(
    rng: np.random.Generator,
    people: pd.DataFrame,
    life: Lifecycle,
    sessions: pd.DataFrame,
    events: pd.DataFrame,
    mail: pd.DataFrame,
    ids: PersonIds,
    clock: Clock,
    config: SimConfig,
) -> pd.DataFrame:
    """Every person record the exports will hold, with how its system shows the person."""
    orders, tickets, members = life.orders, life.tickets, life.members
    end = clock.end
    hist_orders = orders[orders["t"].to_numpy() <= end]
    frames = []

    def add(
        kind: str, rows: np.ndarray, at: np.ndarray, key: np.ndarray, extra: np.ndarray | None = None,
        address_mask: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        frame = describe(rng, kind, people, rows, at, config, address_mask=address_mask)
        frame["key"] = key
        rid, token = record_ids(kind, rows, ids, extra, frame["email"].to_numpy())
        frame["record_id"], frame["id_token"] = rid, token
        frame["card"] = ids.card[rows] if kind in ("loyalty", "card") else None
        frames.append(frame)

    c_person, c_created, c_id = crm_ids(members, ids, clock)
    add("crm", c_person, c_created, np.arange(len(c_person)), c_id)
    joined = members["loyalty_joined"].to_numpy()
    loyal = np.flatnonzero(joined <= end)
    add("loyalty", loyal, joined[loyal], loyal)

    web = hist_orders[hist_orders["online"].to_numpy()]
    account_orders = web[~web["guest"].to_numpy()]
    acc_person = np.unique(account_orders["person"].to_numpy())
    moved_at = people["moved_at"].to_numpy()
    before = account_orders["t"].to_numpy() < moved_at[account_orders["person"].to_numpy()]
    flags = np.zeros(len(people), dtype=np.int64)
    np.bitwise_or.at(flags, account_orders["person"].to_numpy(), np.where(before, ADDR_OLD, ADDR_CURRENT))
    add("account", acc_person, members["account_created"].to_numpy()[acc_person], acc_person,
        address_mask=flags[acc_person])  # fmt: skip
    guests = web[web["guest"].to_numpy()]
    g_number = (20_000_000 + guests["number"].to_numpy()).astype(str).astype(object)
    add("guest", guests["person"].to_numpy(), guests["t"].to_numpy(), guests.index.to_numpy(), g_number)

    logged = sessions["logged_in"].to_numpy()[events["session"].to_numpy()]
    w_person = np.unique(events["person"].to_numpy()[logged])
    add("web", w_person, np.zeros(len(w_person), dtype=np.int64), w_person)

    newsletter = members["newsletter"].to_numpy()
    m_person = np.unique(mail["person"].to_numpy())
    via_crm = m_person[~newsletter[m_person]]
    add("email_crm", via_crm, members["subscribed_from"].to_numpy()[via_crm], via_crm)
    via_news = m_person[newsletter[m_person]]
    add("email_only", via_news, members["subscribed_from"].to_numpy()[via_news], via_news)

    card_people = np.unique(hist_orders["person"].to_numpy()[hist_orders["card"].to_numpy()])
    add("card", card_people, joined[card_people], card_people)

    t_hist = tickets[tickets["created"].to_numpy() <= end]
    ref = t_hist[t_hist["with_ref"].to_numpy()]
    r_person = np.unique(ref["person"].to_numpy())
    add("ticket_ref", r_person, members["account_created"].to_numpy()[r_person], r_person)
    plain = t_hist[~t_hist["with_ref"].to_numpy()]
    add("ticket", plain["person"].to_numpy(), plain["created"].to_numpy(), plain.index.to_numpy(),
        plain["number"].to_numpy().astype(str).astype(object))  # fmt: skip

    records = pd.DataFrame({c: np.concatenate([f[c].to_numpy() for f in frames]) for c in frames[0].columns})
    records["source"] = records["kind"].map({k: v[0] for k, v in KINDS.items()})
    # Subscribers' CRM contacts always have an email (the email tool sends to it).
    subscribed = (records["kind"] == "crm").to_numpy() & np.isin(records["person"].to_numpy(), via_crm)
    _set_email(rng, records, people, subscribed & records["email"].isna().to_numpy(), config)
    return records


def _set_email(
    rng: np.random.Generator,
    records: pd.DataFrame,
    people: pd.DataFrame,
    mask: np.ndarray,
    config: SimConfig,
    kind: np.ndarray | int = EMAIL_MAIN,
) -> None:
    """Show the person's main (or other) email on the masked records, typed afresh."""
    if not mask.any():
        return
    person = records["person"].to_numpy()[mask]
    kind = np.broadcast_to(np.asarray(kind), mask.shape)[mask]
    value = np.where(
        kind == EMAIL_ALT, people["alt_email"].to_numpy()[person], people["email"].to_numpy()[person]
    )
    records.loc[mask, "email"] = noise.emails(rng, value, config)
    records.loc[mask, "email_kind"] = kind


def _repair(rng: np.random.Generator, records: pd.DataFrame, people: pd.DataFrame, config: SimConfig) -> int:
    """Make records a careful human could not link show an email of their person's main group.

    A stray record takes the email another record of the main group shows; when no record there has one,
    both get the person's main email. Returns how many records were changed.
    """
    shared = people["shared_email"].to_numpy()
    person = records["person"].to_numpy()
    repairable = records["kind"].isin(REPAIRABLE).to_numpy()
    changed = 0
    for _ in range(3):
        outside = stray_records(person, components(len(records), tokens(records, shared)))
        stray = outside & repairable
        if not stray.any():
            break
        in_main = ~outside
        kinds = records["email_kind"].to_numpy()
        donors = in_main & repairable & (kinds > 0) & np.isin(person, person[stray])
        first = np.flatnonzero(donors)[np.unique(person[donors], return_index=True)[1]]
        donor_kind = pd.Series(kinds[first], index=person[first])
        adopt = stray & np.isin(person, person[first])
        _set_email(
            rng, records, people, adopt, config, donor_kind.reindex(person).fillna(EMAIL_MAIN).to_numpy()
        )
        rest = stray & ~adopt
        partners = in_main & repairable & np.isin(person, person[rest])
        both = rest.copy()
        both[np.flatnonzero(partners)[np.unique(person[partners], return_index=True)[1]]] = True
        _set_email(rng, records, people, both, config)
        changed += int(adopt.sum() + both.sum())
    return changed


def _sync_derived(records: pd.DataFrame, ids: PersonIds) -> None:
    """Email events show the CRM contact's address; newsletter records are keyed by their address."""
    kind = records["kind"].to_numpy()
    crm = records[
        (kind == "crm") & (records["record_id"].to_numpy() == ids.crm[records["person"].to_numpy()])
    ]
    by_person = crm.set_index("person")
    mail = np.flatnonzero(kind == "email_crm")
    person = records["person"].to_numpy()[mail]
    records.loc[mail, "email"] = by_person["email"].reindex(person).to_numpy()
    records.loc[mail, "email_kind"] = by_person["email_kind"].reindex(person).to_numpy()
    news = np.flatnonzero(kind == "email_only")
    lowered = records["email"].iloc[news].str.strip().str.lower()
    records.loc[news, "email"] = lowered.to_numpy()
    records.loc[news, "record_id"] = ("email:" + lowered).to_numpy()
    records.loc[news, "id_token"] = ("newsletter:email:" + lowered).to_numpy()


def _link_and_hold(rng: np.random.Generator, chunk: Chunk, holdback: float, config: SimConfig) -> None:
    """Repair records a careful human could not link, measure hardness, pick the held-back records."""
    records, people = chunk.records, chunk.people
    shared = people["shared_email"].to_numpy()
    person = records["person"].to_numpy()
    _sync_derived(records, chunk.ids)
    repaired = _repair(rng, records, people, config)
    _sync_derived(records, chunk.ids)
    toks = tokens(records, shared)
    labels = components(len(records), toks)
    eligible = records["kind"].map({k: v[1] for k, v in KINDS.items()}).to_numpy().astype(bool)
    share = min(1.0, holdback * len(records) / max(int(eligible.sum()), 1)) if holdback > 0 else 0.0
    held = eligible & (rng.random(len(records)) < share)
    records["held"] = held
    records["final_source"] = np.where(held, records["source"] + "_later", records["source"])
    initial_parts = parts_per_person(person, components(len(records), toks, keep=~held))
    full_parts = parts_per_person(person, labels)
    split = initial_parts[initial_parts > 1].index
    chunk.stats = {
        "records": len(records),
        "repaired_records": repaired,
        "unlinkable_records": int(stray_records(person, labels).sum()),
        "hard_records": int(hard_records(records, toks).sum()),
        "people_with_records": int(full_parts.size),
        "people_with_several_records": int((pd.Series(person).value_counts() > 1).sum()),
        "held_back_records": int(held.sum()),
        "people_split_until_holdback": int((full_parts.reindex(split) == 1).sum()),
    }
