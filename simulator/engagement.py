"""Web sessions and email campaigns: the behaviour around purchases, fading before people leave."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.baskets import DISCOVERY, pick_in_leaf, pick_leaf
from simulator.behaviour import NEVER, engagement
from simulator.catalogue import Catalogue
from simulator.config import DAY, Clock, SimConfig

PAGE_VIEW, PRODUCT_VIEW, SEARCH, ADD, REMOVE, CHECKOUT = range(6)
SENT, OPEN, CLICK, UNSUBSCRIBE, BOUNCE = range(5)


def _part(
    session: np.ndarray, etype: int, product: np.ndarray | int, step: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events of one type in the given sessions: a product per event (or one code for all) and their step."""
    n = len(session)
    return session, np.full(n, etype), np.broadcast_to(product, n), np.full(n, step, dtype=float)


def _sessions_to_events(
    rng: np.random.Generator,
    session_person: np.ndarray,
    session_start: np.ndarray,
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> pd.DataFrame:
    """Events from (session, type, product, step) parts; each step is a little after the previous."""
    session = np.concatenate([p[0] for p in parts])
    etype = np.concatenate([p[1] for p in parts])
    product = np.concatenate([p[2] for p in parts])
    step = np.concatenate([p[3] for p in parts])
    events = pd.DataFrame({"session": session, "type": etype, "product": product, "step": step})
    events = events.sort_values(["session", "step", "type"], kind="stable").reset_index(drop=True)
    seq = events.groupby("session").cumcount().to_numpy()
    gaps = rng.integers(5, 90, len(events))
    offsets = pd.Series(gaps).groupby(events["session"].to_numpy()).cumsum().to_numpy()
    events["t"] = session_start[events["session"].to_numpy()] + offsets
    events["person"] = session_person[events["session"].to_numpy()]
    events["seq"] = seq
    return events


def web_events(
    rng: np.random.Generator,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    latent: pd.DataFrame,
    members: pd.DataFrame,
    repeat: np.ndarray,
    affinity: np.ndarray,
    catalogue: Catalogue,
    clock: Clock,
    config: SimConfig,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Web sessions (person, start, logged_in, device, kind) and their events, up to the end of the exports."""
    n = len(latent)
    death = members["death"].to_numpy()
    # Browsing: a Poisson process thinned by engagement, so visits fade before a person leaves.
    start = np.maximum(latent["joined"].to_numpy() - 20 * DAY, clock.start)
    span = clock.end - start
    count = rng.poisson(latent["web_rate"].to_numpy() * span / DAY)
    b_person = np.repeat(np.arange(n), count)
    b_t = np.repeat(start, count) + (rng.random(len(b_person)) * np.repeat(span, count)).astype(np.int64)
    keep = rng.random(len(b_person)) < engagement(b_t, death[b_person], config)
    b_person, b_t = b_person[keep], b_t[keep]
    # Buying online: one session per web order (cancelled ones too).
    web = orders[orders["online"].to_numpy() & (orders["t"].to_numpy() <= clock.end)]
    p_person, p_t = web["person"].to_numpy(), web["t"].to_numpy() - rng.integers(1200, 2400, len(web))
    # Research: a look at a discovery item some days before buying it (also before future purchases).
    disc = lines[lines["kind"].to_numpy() == DISCOVERY]
    look = rng.random(len(disc)) < 0.3
    disc = disc[look]
    r_person = orders["person"].to_numpy()[disc["order"].to_numpy()]
    r_t = orders["t"].to_numpy()[disc["order"].to_numpy()] - rng.integers(DAY, 10 * DAY, len(disc))
    r_keep = (r_t <= clock.end - 3600) & (r_t >= clock.start)
    r_person, r_t, r_product = r_person[r_keep], r_t[r_keep], disc["product"].to_numpy()[r_keep]

    person = np.concatenate([b_person, p_person, r_person])
    t = np.concatenate([b_t, p_t, r_t])
    kind = np.concatenate(
        [np.zeros(len(b_person)), np.ones(len(p_person)), np.full(len(r_person), 2)]
    ).astype(int)
    # Checking out with an account needs a login; otherwise people are logged in about half the time.
    account = members["account_created"].to_numpy()[person]
    logged_in = (rng.random(len(person)) < 0.55) & (t >= account)
    logged_in[kind == 1] = ~web["guest"].to_numpy()
    sessions = pd.DataFrame({"person": person, "start": t, "kind": kind, "logged_in": logged_in})
    sessions["device"] = rng.integers(0, 3, len(sessions)) * (rng.random(len(sessions)) < 0.6)

    s_idx = np.arange(len(sessions))
    parts = [_part(s_idx, PAGE_VIEW, -1, 0)]
    # Browse sessions: views of products from the person's tastes, a search, a cart now and then.
    b_idx = s_idx[kind == 0]
    views = rng.poisson(2.0, len(b_idx))
    v_session = np.repeat(b_idx, views)
    v_person = person[v_session]
    from_habits = rng.random(len(v_session)) < 0.3
    habit = repeat[v_person, rng.integers(0, 3, len(v_session))]
    explore = pick_in_leaf(rng, catalogue, pick_leaf(rng, affinity, v_person, catalogue))
    v_product = np.where(from_habits & (habit >= 0), habit, explore)
    parts.append(_part(v_session, PRODUCT_VIEW, v_product, 1))
    parts.append(_part(b_idx[rng.random(len(b_idx)) < 0.35], SEARCH, -2, 0.5))
    added = rng.random(len(v_session)) < 0.2
    parts.append(_part(v_session[added], ADD, v_product[added], 2))
    removed = added & (rng.random(len(v_session)) < 0.3)
    parts.append(_part(v_session[removed], REMOVE, v_product[removed], 3))
    parts.append(_part(b_idx[rng.random(len(b_idx)) < 0.03], CHECKOUT, -1, 4))  # abandoned
    # Purchase sessions: view and add each bought product, then start the checkout.
    p_idx = s_idx[kind == 1]
    web_lines = lines[np.isin(lines["order"].to_numpy(), web.index.to_numpy())]
    order_to_session = pd.Series(p_idx, index=web.index.to_numpy())
    l_session = order_to_session.reindex(web_lines["order"].to_numpy()).to_numpy()
    l_product = web_lines["product"].to_numpy()
    # Habitual items go into the basket straight from "buy it again"; others are looked at first.
    looked = rng.random(len(l_session)) < np.where(web_lines["kind"].to_numpy() == DISCOVERY, 0.9, 0.2)
    parts.append(_part(l_session[looked], PRODUCT_VIEW, l_product[looked], 1))
    parts.append(_part(l_session, ADD, l_product, 2))
    parts.append(_part(p_idx, CHECKOUT, -1, 4))
    # Research sessions: search, then the product.
    q_idx = s_idx[kind == 2]
    parts.append(_part(q_idx, SEARCH, -3, 0.5))
    parts.append(_part(q_idx, PRODUCT_VIEW, r_product, 1))

    events = _sessions_to_events(rng, person, t, parts)
    events = events[events["t"].to_numpy() <= clock.end].reset_index(drop=True)
    # Searches name a leaf: the browsed taste (-2) or the researched product's leaf (-3).
    leaf = catalogue.products["leaf"].to_numpy()
    research_leaf = pd.Series(leaf[r_product], index=q_idx)
    product = events["product"].to_numpy()
    chosen = np.where(product >= 0, leaf[np.maximum(product, 0)], 0)
    research = np.flatnonzero(product == -3)
    browse = np.flatnonzero((product == -1) | (product == -2))
    chosen[research] = research_leaf.reindex(events["session"].to_numpy()[research]).fillna(0).to_numpy()
    chosen[browse] = pick_leaf(rng, affinity, events["person"].to_numpy()[browse], catalogue)
    events["leaf"] = chosen
    events.loc[events["product"] < 0, "product"] = -1
    return sessions, events


def email_events(
    rng: np.random.Generator, latent: pd.DataFrame, members: pd.DataFrame, catalogue: Catalogue, clock: Clock,
    config: SimConfig,
) -> pd.DataFrame:  # fmt: skip
    """Campaign events per subscriber: sent, open, click, bounce, unsubscribe (person, campaign, t, type)."""
    times = catalogue.campaign_times
    sub_from = members["subscribed_from"].to_numpy()
    until = np.minimum(members["unsubscribed"].to_numpy(), clock.end)
    subscribed = sub_from < NEVER
    first = np.where(subscribed, np.searchsorted(times, sub_from), 0)
    last = np.where(subscribed, np.searchsorted(times, until), 0)
    count = np.maximum(last - first, 0)
    person = np.repeat(np.arange(len(latent)), count)
    campaign = np.repeat(first, count) + (np.arange(len(person)) - np.repeat(np.cumsum(count) - count, count))
    reached = rng.random(len(person)) < config.campaign_reach
    person, campaign = person[reached], campaign[reached]
    sent = times[campaign] + rng.integers(0, 3600, len(person))
    bad = rng.random(len(latent)) < config.bounce_share
    # A bad address bounces on its first send and is then dropped from the list.
    first_send = pd.Series(np.arange(len(person))).groupby(person).transform("min").to_numpy()
    keep = ~bad[person] | (np.arange(len(person)) == first_send)
    person, campaign, sent = person[keep], campaign[keep], sent[keep]
    bounced = bad[person]
    death = members["death"].to_numpy()[person]
    p_open = latent["open_rate"].to_numpy()[person] * engagement(sent, death, config)
    opened = ~bounced & (rng.random(len(person)) < p_open)
    open_t = sent + np.minimum(rng.exponential(6 * 3600, len(person)), 9 * DAY).astype(np.int64)
    clicked = opened & (rng.random(len(person)) < 0.2)
    click_t = open_t + rng.integers(5, 600, len(person))
    unsub = members["unsubscribed"].to_numpy()
    u_person = np.flatnonzero(subscribed & (unsub <= clock.end) & (unsub >= sub_from))
    u_campaign = np.maximum(np.searchsorted(times, unsub[u_person]) - 1, 0)
    frames = [
        (person, campaign, sent, SENT),
        (person[bounced], campaign[bounced], sent[bounced] + 60, BOUNCE),
        (person[opened], campaign[opened], open_t[opened], OPEN),
        (person[clicked], campaign[clicked], click_t[clicked], CLICK),
        (u_person, u_campaign, unsub[u_person], UNSUBSCRIBE),
    ]
    events = pd.DataFrame(
        {
            "person": np.concatenate([f[0] for f in frames]),
            "campaign": np.concatenate([f[1] for f in frames]),
            "t": np.concatenate([f[2] for f in frames]),
            "type": np.concatenate([np.full(len(f[0]), f[3]) for f in frames]),
        }
    )
    events = events[events["t"].to_numpy() <= clock.end]
    return events.sort_values(["t", "person", "type"], kind="stable").reset_index(drop=True)
