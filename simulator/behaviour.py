"""How people shop: latent rates, BG/NBD-like purchase timelines, churn and its causes, memberships.

All times are epoch seconds (UTC). "Death" is the moment a person becomes inactive for good.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.catalogue import Catalogue
from simulator.config import DAY, Clock, SimConfig, global_rng

NEVER = np.iinfo(np.int64).max // 4
TASTE_PROFILES = 8
REPEAT_SLOTS = 16
CAUSES = np.array(["", "natural", "low_satisfaction_ticket", "unsubscribed"], dtype=object)
TICKET_REASONS = np.array(
    ["Where is my order", "Damaged item", "Return or refund", "Product question", "Account or login",
     "Loyalty points", "Complaint"],
    dtype=object,
)  # fmt: skip
# Satisfaction 1..5 distribution per reason (damaged items and complaints go worse).
SATISFACTION_P = np.array(
    [[0.12, 0.12, 0.2, 0.3, 0.26], [0.25, 0.2, 0.2, 0.2, 0.15], [0.1, 0.1, 0.2, 0.3, 0.3], [0.05, 0.05, 0.15, 0.35, 0.4],
     [0.08, 0.1, 0.2, 0.32, 0.3], [0.08, 0.1, 0.2, 0.32, 0.3], [0.35, 0.25, 0.2, 0.12, 0.08]]
)  # fmt: skip


@dataclass
class Season:
    """Daily demand factors and their cumulative sum: maps calendar time to 'operational' time."""

    day0: int
    factor: np.ndarray
    cum: np.ndarray  # cum[k] = operational time (in days) at the start of day k
    bst: np.ndarray  # whether day k is in British Summer Time

    @classmethod
    def build(cls, clock: Clock) -> Season:
        """Demand factors for every day from the start of the history to the horizon."""
        days = pd.date_range(pd.Timestamp(clock.start, unit="s"), periods=clock.days + 1, freq="D")
        doy = days.dayofyear.to_numpy().astype(float)
        f = (
            1.0
            + 0.55 * np.exp(-(((doy - 352) / 10) ** 2))  # run-up to Christmas
            + 0.25 * np.exp(-(((doy - 332) / 4) ** 2))  # Black Friday
            - 0.18 * np.exp(-(((doy - 215) / 28) ** 2))  # summer dip
            - 0.12 * np.exp(-(((doy - 12) / 9) ** 2))  # January lull
        )
        f *= np.where(days.dayofweek.to_numpy() == 5, 1.2, 1.0)
        f /= f.mean()
        local = days.tz_localize("UTC").tz_convert("Europe/London")
        bst = np.array([bool(ts.dst()) for ts in local + pd.Timedelta(hours=12)])
        return cls(clock.start, f, np.concatenate([[0.0], np.cumsum(f)]), bst)

    def operational(self, t: np.ndarray) -> np.ndarray:
        """Operational time (demand-weighted days) of calendar times."""
        d = (t - self.day0) / DAY
        k = np.clip(d.astype(np.int64), 0, len(self.factor) - 1)
        return self.cum[k] + (d - k) * self.factor[k]

    def calendar(self, u: np.ndarray) -> np.ndarray:
        """Calendar times (epoch seconds) of operational times."""
        return self.day0 + np.interp(u, self.cum, np.arange(len(self.cum)) * float(DAY))

    def local_time(self, t: np.ndarray, seconds_of_day: np.ndarray) -> np.ndarray:
        """The UTC instant of a UK wall-clock time on the (UTC) day of `t`."""
        k = np.clip((t - self.day0) // DAY, 0, len(self.bst) - 1)
        return self.day0 + k * DAY + seconds_of_day - np.where(self.bst[k], 3600, 0)


def draw_latent(rng: np.random.Generator, n: int, clock: Clock, config: SimConfig) -> pd.DataFrame:
    """Each person's hidden shopping parameters (the truth that models try to recover)."""
    segs = config.segments
    segment = rng.choice(len(segs), size=n, p=[s.share for s in segs])
    shape = np.array([s.rate_shape for s in segs])[segment]
    mean = np.array([s.rate_per_year for s in segs])[segment] / 365.0
    rate = rng.gamma(shape, mean / shape)
    dropout = rng.beta(
        np.array([s.dropout_a for s in segs])[segment], np.array([s.dropout_b for s in segs])[segment]
    )
    spend = rng.gamma(4.0, 0.25, n)
    kind = rng.random(n)
    online = np.where(
        kind < config.store_only,
        0.0,
        np.where(kind < config.store_only + config.online_only, 1.0, rng.beta(2, 2, n)),
    )
    wholesale = np.array([s.name == "wholesale" for s in segs])[segment]
    online = np.where(wholesale, 1.0, online)  # trade accounts order online
    joined = clock.start + ((clock.end - 14 * DAY - clock.start) * rng.random(n) ** 0.75).astype(np.int64)
    latent = pd.DataFrame(
        {
            "segment": np.array([s.name for s in segs], dtype=object)[segment],
            "rate": rate,
            "dropout": dropout,
            "spend": spend,
            "online_share": online,
            "joined": joined,
            "taste": rng.integers(0, TASTE_PROFILES, n),
            "repeat_q": np.clip(0.3 * np.sqrt(spend) + rng.normal(0, 0.05, n), 0.12, 0.7),
            "discovery_p": np.clip(0.22 * spend, 0.03, 0.6),
            "open_rate": rng.beta(2.0, 4.5, n),
            "web_rate": rate * (0.05 + 0.25 * online) + 0.001,
            "wholesale": wholesale,
        }
    )
    return latent


def repeat_sets(
    rng: np.random.Generator, latent: pd.DataFrame, seed: int, catalogue: Catalogue
) -> np.ndarray:
    """Each person's habitual grocery products (n x REPEAT_SLOTS product indices, -1 = empty slot)."""
    products = catalogue.products
    grocery = products["grocery"].to_numpy()
    leaf = products["leaf"].to_numpy()
    profile_leaf = global_rng(seed, 2).dirichlet(np.full(len(catalogue.leaf_names), 0.7), TASTE_PROFILES)
    n = len(latent)
    out = np.full((n, REPEAT_SLOTS), -1, dtype=np.int64)
    size = np.clip(3 + rng.poisson(6 * latent["spend"].to_numpy()), 3, REPEAT_SLOTS)
    taste = latent["taste"].to_numpy()
    for p in range(TASTE_PROFILES):
        rows = np.flatnonzero(taste == p)
        w = np.where(grocery, profile_leaf[p][leaf] * products["popularity"].to_numpy(), 0.0)
        cum = np.cumsum(w / w.sum())
        out[rows] = np.minimum(np.searchsorted(cum, rng.random((len(rows), REPEAT_SLOTS))), len(cum) - 1)
    out = np.sort(out, axis=1)
    dup = np.zeros_like(out, dtype=bool)
    dup[:, 1:] = out[:, 1:] == out[:, :-1]
    out[dup] = -1
    out = -np.sort(-out, axis=1)  # valid products first
    out[np.arange(REPEAT_SLOTS)[None, :] >= size[:, None]] = -1
    return out


def discovery_affinity(rng: np.random.Generator, n: int, catalogue: Catalogue) -> np.ndarray:
    """Each person's taste over the discovery leaves, cumulated along each row (n x discovery leaves)."""
    return np.cumsum(rng.dirichlet(np.full(len(catalogue.discovery_leaves), 0.2), n), axis=1)


def purchase_times(
    rng: np.random.Generator, latent: pd.DataFrame, clock: Clock, season: Season
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD-like purchases up to the horizon: (person, day-level time, natural death time per person).

    The first purchase is at joining; repeat purchases follow a seasonal Poisson process; after each
    purchase the person becomes inactive with their dropout probability.
    """
    n = len(latent)
    joined = latent["joined"].to_numpy()
    u0 = season.operational(joined.astype(float))
    span = season.operational(np.array([float(clock.horizon)]))[0] - u0
    possible = rng.poisson(latent["rate"].to_numpy() * span)
    repeats_before_death = rng.geometric(latent["dropout"].to_numpy()) - 1
    count = np.minimum(possible, repeats_before_death)
    # The first `count` of `possible` uniform order statistics, by exponential spacings.
    person = np.repeat(np.arange(n), count)
    gaps = rng.exponential(1.0, len(person))
    csum = np.cumsum(gaps)
    ends = np.cumsum(count)
    offset = np.concatenate([[0.0], csum])[ends - count]
    within = csum - np.repeat(offset, count)
    total = np.concatenate([[0.0], csum])[ends] - offset
    tail = rng.gamma(possible - count + 1.0)
    u = np.repeat(u0, count) + np.repeat(span / (total + tail), count) * within
    times = season.calendar(u).astype(np.int64)
    person = np.concatenate([np.arange(n), person])
    times = np.concatenate([joined, times])
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, person, times)
    death = np.where(repeats_before_death < possible, last + 1, NEVER)
    return person, times, death


def time_of_day(rng: np.random.Generator, t: np.ndarray, online: np.ndarray, season: Season) -> np.ndarray:
    """Move day-level times to a plausible hour: stores 08:00-21:59 UK time, online mostly evenings."""
    n = len(t)
    store_hours = rng.choice(np.arange(8, 22), n, p=_norm([3, 5, 7, 8, 9, 8, 7, 7, 8, 9, 8, 6, 4, 3]))
    online_hours = rng.choice(np.arange(24), n, p=_norm([2, 1, 1, 1, 1, 1, 2, 4, 5, 5, 5, 5, 6, 6, 5, 5, 5, 6, 8, 9, 10, 9, 6, 3]))  # fmt: skip
    seconds = np.where(online, online_hours, store_hours) * 3600 + rng.integers(0, 3600, n)
    return season.local_time(t, seconds)


def _norm(weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def draw_tickets(
    rng: np.random.Generator,
    orders: pd.DataFrame,
    latent: pd.DataFrame,
    death: np.ndarray,
    clock: Clock,
    config: SimConfig,
) -> pd.DataFrame:
    """Support tickets before each person's (natural) inactivity: order problems plus general questions."""
    online = orders[orders["online"]]
    hit = rng.random(len(online)) < config.order_ticket_rate
    ot = online[hit]
    order_reason = rng.choice(4, len(ot), p=[0.4, 0.2, 0.25, 0.15])
    alive_until = np.minimum(death, clock.horizon)
    joined = latent["joined"].to_numpy()
    years = np.maximum(alive_until - joined, 0) / (365.0 * DAY)
    count = rng.poisson(config.baseline_tickets_per_year * years)
    person = np.repeat(np.arange(len(latent)), count)
    base_t = np.repeat(joined, count) + (rng.random(len(person)) * np.repeat(alive_until - joined, count))
    base_reason = rng.choice([3, 4, 5, 6], len(person), p=[0.3, 0.25, 0.2, 0.25])
    tickets = pd.DataFrame(
        {
            "person": np.concatenate([ot["person"].to_numpy(), person]),
            "created": np.concatenate(
                [ot["t"].to_numpy() + rng.integers(DAY, 10 * DAY, len(ot)), base_t.astype(np.int64)]
            ),
            "reason": np.concatenate([order_reason, base_reason]),
            "order": np.concatenate([ot.index.to_numpy(), np.full(len(person), -1)]),
        }
    )
    cum = np.cumsum(SATISFACTION_P, axis=1)
    u = rng.random(len(tickets))
    tickets["satisfaction"] = (u[:, None] > cum[tickets["reason"].to_numpy()]).sum(axis=1) + 1
    tickets["rated"] = rng.random(len(tickets)) < 0.7
    tickets["channel"] = rng.choice(4, len(tickets), p=[0.4, 0.3, 0.2, 0.1])  # email, phone, chat, store
    return tickets.sort_values(["person", "created"], kind="stable").reset_index(drop=True)


def final_death(
    rng: np.random.Generator,
    natural: np.ndarray,
    tickets: pd.DataFrame,
    subscribed_from: np.ndarray,
    config: SimConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inactivity from the first of: natural dropout, a bad ticket, an unsubscribe. Returns death, cause, U0."""
    n = len(natural)
    death = natural.copy()
    cause = np.where(natural < NEVER, 1, 0)
    low = tickets["rated"].to_numpy() & (tickets["satisfaction"].to_numpy() <= 2)
    trigger = low & (rng.random(len(tickets)) < config.low_satisfaction_churn)
    t_people = tickets["person"].to_numpy()[trigger]
    t_death = tickets["created"].to_numpy()[trigger] + rng.integers(3 * DAY, 60 * DAY, int(trigger.sum()))
    by_ticket = np.full(n, NEVER)
    np.minimum.at(by_ticket, t_people, t_death)
    cause = np.where(by_ticket < death, 2, cause)
    death = np.minimum(death, by_ticket)
    subscribed = subscribed_from < NEVER
    base_unsub = np.where(
        subscribed,
        subscribed_from + rng.exponential(config.base_unsubscribe_years * 365 * DAY, n).astype(np.int64),
        NEVER,
    )
    induced = subscribed & (rng.random(n) < config.unsubscribe_churn)
    by_unsub = np.where(
        induced & (base_unsub < death), base_unsub + rng.integers(7 * DAY, 90 * DAY, n), NEVER
    )
    cause = np.where(by_unsub < death, 3, cause)
    death = np.minimum(death, by_unsub)
    return death, cause, base_unsub


def engagement(t: np.ndarray, death: np.ndarray, config: SimConfig) -> np.ndarray:
    """How engaged a person is at `t`: 1 normally, fading over the months before inactivity, low after."""
    before = np.clip((death - t) / (config.fade_days * DAY), config.fade_floor, 1.0)
    return np.where(t >= death, config.after_churn_activity, before)
