"""One chunk's life story: purchases, tickets, churn and the memberships people take out on the way."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.behaviour import (
    NEVER,
    Season,
    draw_tickets,
    final_death,
    purchase_times,
    time_of_day,
)
from simulator.config import DAY, Clock, SimConfig


@dataclass
class Lifecycle:
    """Orders (history and future), tickets, death and memberships of one chunk of people."""

    orders: pd.DataFrame  # person, t, online, guest, cancelled
    tickets: pd.DataFrame  # person, created, reason, order, satisfaction, rated, channel
    members: pd.DataFrame  # per person: death, cause, crm/account/loyalty/newsletter times, unsubscribed


def first_time(person: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """The earliest `t` per person (NEVER when none)."""
    out = np.full(n, NEVER, dtype=np.int64)
    np.minimum.at(out, person, t)
    return out


def simulate_lifecycle(
    rng: np.random.Generator,
    people: pd.DataFrame,
    latent: pd.DataFrame,
    clock: Clock,
    season: Season,
    config: SimConfig,
) -> Lifecycle:
    """Purchases, churn and memberships, consistent with each other."""
    n = len(latent)
    online_share = latent["online_share"].to_numpy()
    joined = latent["joined"].to_numpy()
    person, t, natural = purchase_times(rng, latent, clock, season)
    online = rng.random(len(person)) < online_share[person]
    t = time_of_day(rng, t, online, season)
    orders = pd.DataFrame({"person": person, "t": t, "online": online})
    orders = orders.sort_values(["person", "t"], kind="stable").reset_index(drop=True)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, orders["person"].to_numpy(), orders["t"].to_numpy())
    natural = np.where(natural < NEVER, last + 1, NEVER)  # inactive right after the last purchase

    # The CRM knows people from their first contact; more of those who shop online.
    crm = rng.random(n) < np.where(online_share > 0, config.crm_share + 0.15, config.crm_share - 0.15)
    crm_created = np.where(crm, joined + rng.integers(0, 30 * DAY, n), NEVER)
    subscribed_crm = crm & (rng.random(n) < config.email_consent)
    subscribed_from = np.where(subscribed_crm, crm_created, NEVER)

    tickets = draw_tickets(rng, orders, latent, natural, clock, config)
    death, cause, base_unsub = final_death(rng, natural, tickets, subscribed_from, config)

    alive = orders["t"].to_numpy() < death[orders["person"].to_numpy()]
    new_index = np.cumsum(alive) - 1
    order_ref = tickets["order"].to_numpy()
    about_kept_order = (order_ref >= 0) & alive[np.maximum(order_ref, 0)]
    keep = (tickets["created"].to_numpy() < death[tickets["person"].to_numpy()]) | about_kept_order
    keep &= (order_ref < 0) | about_kept_order
    tickets = tickets[keep].reset_index(drop=True)
    tickets["order"] = np.where(tickets["order"] >= 0, new_index[np.maximum(tickets["order"], 0)], -1)
    orders = orders[alive].reset_index(drop=True)

    op, ot, oo = orders["person"].to_numpy(), orders["t"].to_numpy(), orders["online"].to_numpy()
    wants_account = rng.random(n) < config.account_share
    account_created = np.where(wants_account, first_time(op[oo], ot[oo], n), NEVER)
    has_account_then = ot >= account_created[op]
    first_account_order = ot == account_created[op]
    guest = oo & ~(
        has_account_then & (first_account_order | (rng.random(len(orders)) >= config.guest_by_account_holder))
    )
    orders["guest"] = guest
    orders["cancelled"] = oo & (rng.random(len(orders)) < config.cancel_rate) & ~first_account_order

    first_store = first_time(op[~oo], ot[~oo], n)
    wants_card = rng.random(n) < config.loyalty_share
    sign_up_later = rng.random(n) < 0.4
    loyalty_joined = np.where(
        wants_card & (first_store < NEVER),
        first_store + np.where(sign_up_later, rng.exponential(45 * DAY, n).astype(np.int64), 0),
        NEVER,
    )
    newsletter = (
        ~crm
        & (account_created < NEVER)
        & ~people["shared_email"].to_numpy()
        & (rng.random(n) < config.newsletter_only)
    )
    newsletter_from = np.where(newsletter, account_created + rng.integers(0, 60 * DAY, n), NEVER)
    sub_from = np.minimum(subscribed_from, newsletter_from)
    base_unsub = np.where(
        newsletter,
        newsletter_from + rng.exponential(config.base_unsubscribe_years * 365 * DAY, n).astype(np.int64),
        base_unsub,
    )
    pre_churn = (death < NEVER) & (rng.random(n) < config.pre_churn_unsubscribe)
    pre_churn_time = death - rng.integers(0, 60 * DAY, n)
    unsubscribed = np.where(
        pre_churn & (pre_churn_time > sub_from), np.minimum(base_unsub, pre_churn_time), base_unsub
    )
    unsubscribed = np.where(sub_from < NEVER, unsubscribed, NEVER)

    crm_dup = crm & (rng.random(n) < config.crm_duplicate)
    members = pd.DataFrame(
        {
            "death": death,
            "cause": cause,
            "crm_created": crm_created,
            "crm_dup_created": np.where(crm_dup, crm_created + rng.integers(60 * DAY, 700 * DAY, n), NEVER),
            "account_created": account_created,
            "loyalty_joined": loyalty_joined,
            "subscribed_from": sub_from,
            "newsletter": newsletter,
            "unsubscribed": unsubscribed,
        }
    )
    return Lifecycle(orders=orders, tickets=tickets, members=members)
