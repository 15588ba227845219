"""The service's side of activation: GET /segments, GET /segments/{name}/members, the customer's segments in
the 360 view, and the live path on /events (`activation.live`).

Everything reads the membership database the batch refresh writes (`data/activation/membership.sqlite`); a
workspace that has none yet answers empty lists, and the live path starts once a refresh has written one.
Paging is validated here, not by FastAPI, so a bad offset or limit is a documented 400 with a message.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from activation.live import LiveSegments, categories
from activation.membership import counts_of, members_of, segments_of
from activation.run import declarations
from activation.segments import Plan
from activation.settings import ActivationSettings, membership_db
from activation.store import connect, counters
from activation.triggers import TriggerSpec
from serving import metrics
from tessera.core.errors import InputError
from tessera.core.settings import Workspace

log = logging.getLogger(__name__)
MAX_OFFSET = 1_000_000_000
MAX_LIMIT = 1000
COUNTED = (
    "entries",
    "exits",
    "decided",
    "sent",
    "retried",
    "dead_lettered",
    "suppressed_consent",
    "suppressed_cap",
)


class SegmentInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    rule: str
    live: bool
    members: int


class SegmentList(BaseModel):
    model_config = ConfigDict(frozen=True)

    segments: list[SegmentInfo]


class SegmentMembers(BaseModel):
    model_config = ConfigDict(frozen=True)

    segment: str
    total: int
    offset: int
    limit: int
    customer_ids: list[str]


class BadPage(ValueError):
    """An offset or limit out of range (answered 400)."""


class UnknownSegment(LookupError):
    """A segment segments.yaml does not declare (answered 404)."""


def page_bound(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    """A paging parameter as an int within [low, high], else BadPage naming it."""
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
        raise BadPage(f"{name} must be a whole number between {low} and {high}, got {raw[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise BadPage(f"{name} must be between {low} and {high}, got {value}")
    return value


class Segments:
    """The declared segments and the membership database of a served workspace."""

    def __init__(self, workspace: Workspace, settings: ActivationSettings) -> None:
        self.workspace = workspace
        self.path = membership_db(workspace)
        self.plan: Plan | None = None
        self.triggers: tuple[TriggerSpec, ...] = ()
        try:
            self.plan, self.triggers = declarations(settings)
        except InputError as exc:  # the service still serves everything else; said once, at start
            log.error("segments are off: %s", exc)
        self._live: LiveSegments | None = None
        if self.exposition not in metrics.extra_text:
            metrics.extra_text.append(self.exposition)
        self._lock = threading.Lock()
        self._local = threading.local()

    def _con(self) -> Any | None:
        if not self.path.exists():
            return None
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = connect(self.path)
        return con

    def listing(self) -> SegmentList:
        if self.plan is None:
            return SegmentList(segments=[])
        con = self._con()
        counts = counts_of(con) if con is not None else {}
        return SegmentList(
            segments=[
                SegmentInfo(
                    name=s.name,
                    description=s.spec.description,
                    rule=" ".join(s.spec.rule.split()),
                    live=s.rule.live,
                    members=counts.get(s.name, 0),
                )
                for s in self.plan.segments
            ]
        )

    def members(self, name: str, offset: str | None, limit: str | None) -> SegmentMembers:
        if self.plan is None or self.plan.get(name) is None:
            raise UnknownSegment(f"unknown segment {name[:100]!r}")
        first = page_bound("offset", offset, 0, 0, MAX_OFFSET)
        size = page_bound("limit", limit, 100, 1, MAX_LIMIT)
        con = self._con()
        total, ids = members_of(con, name, first, size) if con is not None else (0, [])
        return SegmentMembers(segment=name, total=total, offset=first, limit=size, customer_ids=ids)

    def exposition(self) -> bytes:
        """Activation's counters in Prometheus' text format (entries, exits, sent, retried, dead-lettered,
        suppressed by consent or by cap), from the membership database every process counts into."""
        con = self._con()
        found = counters(con) if con is not None else {}
        lines = [
            "# HELP tessera_activation_total Segment entries and exits, activations decided, sent, retried, "
            "dead-lettered, suppressed by consent or by a frequency cap",
            "# TYPE tessera_activation_total counter",
            *(f'tessera_activation_total{{kind="{kind}"}} {found.get(kind, 0)}' for kind in COUNTED),
        ]
        return ("\n".join(lines) + "\n").encode()

    def of_customer(self, customer_id: str) -> list[str]:
        con = self._con()
        return segments_of(con, customer_id) if con is not None else []

    def on_event(
        self, customer_id: str, event_type: str, skus: list[str], at: datetime, now: datetime
    ) -> None:
        """The live path; a failure is logged (the event itself is stored) and the next refresh catches up."""
        if self.plan is None or not self.plan.live:
            return
        try:
            with self._lock:  # one writer per process; SQLite serialises the processes
                if self._live is None:
                    if not self.path.exists():
                        return
                    self._live = LiveSegments(self.path, self.plan, self.triggers, categories(self.workspace))
                self._live.on_event(customer_id, event_type, skus, at, now)
        except Exception:
            log.exception("live segments of an event failed; the next refresh will recompute them")
