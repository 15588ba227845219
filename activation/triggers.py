"""triggers.yaml: what a membership change sets off, and the rules checked at send time.

A trigger fires on entry to or exit from a segment (an event pattern, "abandoned cart after N hours", is a
segment with event functions, whose entry is the pattern firing). The activations it decides go to the
outbox in the same transaction as the membership change (`activation.store`); the delivery worker
(`activation.delivery`) checks at send time the purpose's consent, the frequency cap per customer and
channel, and the quiet hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activation.segments import NAME, Plan, read_declarations
from tessera.core.errors import InputError

Purpose = Literal["email", "sms", "personalisation"]
Destination = Literal["rabbitmq", "webhook", "file"]


class Cap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max: int = Field(ge=1)
    per_hours: float = Field(gt=0)


class QuietHours(BaseModel):
    """Hours of the day (UTC) when nothing is sent: from `start` up to `end`, across midnight if start > end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(ge=0, le=23)
    end: int = Field(ge=0, le=23)

    def holds(self, moment: datetime) -> bool:
        hour = moment.hour
        if self.start <= self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def ends(self, moment: datetime) -> datetime:
        """The first moment after `moment` outside the quiet hours."""
        end = moment.replace(hour=self.end, minute=0, second=0, microsecond=0)
        return end if end > moment else end + timedelta(days=1)


class TriggerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    on_entry: str | None = None
    on_exit: str | None = None
    purpose: Purpose
    destination: Destination
    routing_key: str | None = None  # rabbitmq (default: activation.<name>)
    url: str | None = None  # webhook
    cap: Cap | None = None
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _one_event(self) -> TriggerSpec:
        if (self.on_entry is None) == (self.on_exit is None):
            raise ValueError(f"trigger {self.name!r}: give exactly one of on_entry, on_exit")
        if self.destination == "webhook" and not self.url:
            raise ValueError(f"trigger {self.name!r}: a webhook needs its url")
        return self

    @property
    def segment(self) -> str:
        return self.on_entry or self.on_exit  # type: ignore[return-value]

    @property
    def kind(self) -> str:
        return "entry" if self.on_entry else "exit"

    @property
    def channel(self) -> str:
        """What the cap counts per customer: the purpose's channel."""
        return self.purpose


class TriggersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    triggers: list[TriggerSpec] = []


def load_triggers(path: Path, plan: Plan) -> tuple[TriggerSpec, ...]:
    """triggers.yaml, checked against the declared segments; an error names the file and the trigger."""
    triggers = read_declarations(path, TriggersFile, "TESSERA_ACTIVATION_TRIGGERS").triggers
    for trigger in triggers:
        if plan.get(trigger.segment) is None:
            raise InputError(f"{path}: trigger {trigger.name!r} names unknown segment {trigger.segment!r}")
    return tuple(triggers)


def idempotency_key(trigger: str, customer_id: str, kind: str, segment: str, at: str) -> str:
    """One key per trigger and membership change: a retry of the same activation carries the same key."""
    return f"{trigger}:{segment}:{kind}:{customer_id}:{at}"
