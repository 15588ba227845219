"""The simulator's knobs: every rate the documentation quotes lives here, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np

DAY = 86_400

# Independent random streams per chunk, so adding draws to one step never shifts another step's draws.
STREAMS = (
    "people",
    "latent",
    "timeline",
    "baskets",
    "web",
    "email",
    "tickets",
    "consents",
    "noise",
    "holdback",
)


@dataclass(frozen=True)
class Segment:
    """A kind of customer: BG/NBD-like purchase rate and dropout, and how they shop."""

    name: str
    share: float
    rate_per_year: float  # mean of the gamma-distributed purchase rate
    rate_shape: float
    dropout_a: float  # beta(a, b): chance of becoming inactive after each purchase
    dropout_b: float


@dataclass(frozen=True)
class SimConfig:
    """Rates and sizes of the simulation; the defaults are the documented ones."""

    history_days: int = 1095
    future_days: int = 365
    chunk_people: int = 10_000
    segments: tuple[Segment, ...] = (
        Segment("weekly", 0.15, 18.0, 3.0, 1.0, 60.0),
        Segment("regular", 0.35, 6.0, 2.0, 1.2, 22.0),
        Segment("occasional", 0.35, 2.5, 1.5, 1.5, 10.0),
        Segment("one_off", 0.15, 1.0, 1.5, 2.0, 4.0),
    )
    # Channel preference: store only, online only, or a beta-distributed online share.
    store_only: float = 0.35
    online_only: float = 0.25
    # Memberships.
    crm_share: float = 0.60
    crm_duplicate: float = 0.03
    account_share: float = 0.75  # of people who order online
    guest_by_account_holder: float = 0.08  # of an account holder's online orders
    loyalty_share: float = 0.50  # of people who shop in store
    card_shown: float = 0.85  # receipts of members that carry the card
    newsletter_only: float = 0.20  # account holders outside the CRM who get the newsletter by email only
    email_consent: float = 0.70  # CRM contacts subscribed to email
    # Orders.
    return_rate_by_group: tuple[tuple[str, float], ...] = (
        ("Fashion", 0.22),
        ("Electronics", 0.08),
        ("Home", 0.06),
        ("Garden", 0.05),
        ("Toys & Games", 0.05),
        ("Beauty", 0.04),
    )
    grocery_return_rate: float = 0.035
    store_return_rate: float = 0.01
    cancel_rate: float = 0.02
    promo_rate: float = 0.12
    discontinued_share: float = 0.08
    # Engagement and churn signals.
    fade_days: int = 120
    fade_floor: float = 0.15
    after_churn_activity: float = 0.08
    order_ticket_rate: float = 0.04
    baseline_tickets_per_year: float = 0.12
    low_satisfaction_churn: float = 0.35
    campaign_every_days: int = 14
    campaign_reach: float = 0.45
    bounce_share: float = 0.02
    base_unsubscribe_years: float = 5.0
    unsubscribe_churn: float = 0.30
    pre_churn_unsubscribe: float = 0.35
    # Person noise.
    moved_share: float = 0.08
    alt_email_share: float = 0.05
    shared_email_households: float = 0.12  # of households with two or more people
    landline_households: float = 0.35
    name_typo: float = 0.025
    nickname_use: float = 0.12  # records of people whose first name has a nickname
    name_swap: float = 0.01
    email_mixed_case: float = 0.05
    email_upper: float = 0.01
    email_whitespace: float = 0.02
    dob_swap: float = 0.01
    loyalty_upper_names: float = 0.35
    # Harder shapes, all off by default (the `hard` profile below turns them on).
    wholesale_quantity: int = 4  # a wholesale buyer (segment `wholesale`) buys this many units per line...
    wholesale_extra_lines: float = 30.0  # ...and about this many lines more per basket, online only
    extra_lines_shape: float | None = None  # Pareto (Lomax) shape of extra lines per basket: a heavy tail
    extra_lines_scale: float = 2.0
    repeat_strength: float = 0.0  # pulls the chance of re-buying a habit (and an own earlier item) towards 1


WHOLESALE = Segment("wholesale", 0.005, 40.0, 4.0, 0.5, 200.0)


PROFILES = ("default", "hard")


def profile_config(profile: str = "default", months: int | None = None) -> SimConfig:
    """The settings of a named profile (docs/simulator.md), with `months` of history when given."""
    if profile not in PROFILES:
        raise ValueError(f"unknown simulator profile {profile!r}: expected one of {', '.join(PROFILES)}")
    config = SimConfig()
    if profile == "hard":
        # Wholesale buyers, heavy-tailed baskets, strong repeat buying, 9 months of history. Anonymous lines are
        # till receipts without a card; a short history holds more receipts from before people join the
        # loyalty scheme, so a slightly larger scheme keeps them at a third of the lines (measured 34%).
        scaled = tuple(replace(s, share=s.share * (1 - WHOLESALE.share)) for s in config.segments)
        config = replace(
            config,
            history_days=months_to_days(9),
            segments=(*scaled, WHOLESALE),
            extra_lines_shape=1.5,
            repeat_strength=0.5,
            loyalty_share=0.55,
        )
    return config if months is None else replace(config, history_days=months_to_days(months))


def months_to_days(months: int) -> int:
    """Days in `months` average calendar months."""
    return round(months * 365.25 / 12)


def chunk_rng(seed: int, chunk: int, stream: str) -> np.random.Generator:
    """The random generator of one stream of one chunk, independent of every other."""
    return np.random.default_rng(np.random.SeedSequence([seed, chunk, STREAMS.index(stream)]))


def global_rng(seed: int, stream: int) -> np.random.Generator:
    """A generator for things shared by all chunks (catalogue, stores, campaigns)."""
    return np.random.default_rng(np.random.SeedSequence([seed, 1_000_003, stream]))


@dataclass(frozen=True)
class Clock:
    """The simulation's time frame in epoch seconds (UTC)."""

    start: int  # first second of the exported history
    end: int  # last second of as_of: the exports stop here
    horizon: int  # last second the truth covers

    @classmethod
    def for_as_of(cls, as_of: date, config: SimConfig) -> Clock:
        """History ending with the last second of `as_of`, truth running `future_days` beyond."""
        end_dt = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=1)
        end = int(end_dt.timestamp()) - 1
        return cls(start=end + 1 - config.history_days * DAY, end=end, horizon=end + config.future_days * DAY)

    @property
    def days(self) -> int:
        """Whole days from the start of the history to the horizon."""
        return (self.horizon + 1 - self.start) // DAY
