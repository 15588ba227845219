"""Unattended retraining: the whole chain and the gate under a lock, on a cron schedule with APScheduler.

The lock is an exclusive `flock` on `mlruns/retrain.lock`: the kernel releases it when its holder exits,
even after a crash, so a lock is never stale; a second retrain while one runs is refused, not queued.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from tessera.core.settings import Settings, Workspace
from tessera.core.timeutil import as_utc
from training.settings import TrainingSettings

if TYPE_CHECKING:  # Feast is heavy: imported only once the lock is ours
    from features.store.settings import FeatureStoreSettings

log = logging.getLogger(__name__)


class RetrainRunning(RuntimeError):
    """Another retrain holds the lock."""


def lock_path(workspace: Workspace) -> Path:
    """The workspace's retrain lock file."""
    return workspace.mlruns / "retrain.lock"


@contextmanager
def retrain_lock(workspace: Workspace) -> Iterator[Path]:
    """Hold the workspace's retrain lock for the block; raise `RetrainRunning` if another run holds it."""
    path = lock_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RetrainRunning(
                f"a retrain is already running in {workspace.root} ({holder}); not starting another"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "started": datetime.now(UTC).isoformat()}))
        handle.flush()
        yield path
    finally:
        handle.close()  # closing the file releases the lock


def retrain(
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    training_settings: TrainingSettings,
    sources: Path | None = None,
) -> dict[str, Any]:
    """Under the lock, the one pipeline (`tessera.pipeline.run`): the chain on `sources` when given, else the feature
    store rebuilt; then every model trained and gated."""
    moment = as_utc(now)
    with retrain_lock(workspace):
        from tessera.pipeline import run  # heavy imports only once the lock is ours

        summary: dict[str, Any] = {"now": moment.isoformat()}
        summary.update(run(sources, workspace, moment, settings, store_settings, training_settings))
    summary["promoted"] = {
        name: "skipped" not in result and result["gate"]["promoted"]
        for name, result in summary["models"].items()
    }
    return summary


def scheduled_job(
    workspace: Workspace,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    training_settings: TrainingSettings,
    sources: Path | None,
    clock: Callable[[], datetime] | None = None,
) -> Callable[[], dict[str, Any] | None]:
    """The function the scheduler calls: a retrain as of the clock's time; a refused lock is logged, not raised."""
    clock = clock or (lambda: datetime.now(UTC))

    def job() -> dict[str, Any] | None:
        try:
            result = retrain(workspace, clock(), settings, store_settings, training_settings, sources)
        except RetrainRunning as refused:
            log.warning("%s", refused)
            return None
        log.info("retrained: %s", result["promoted"])
        return result

    return job


def build_scheduler(
    workspace: Workspace,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    training_settings: TrainingSettings,
    sources: Path | None = None,
) -> BlockingScheduler:
    """A blocking scheduler running `retrain` on `training_settings.retrain_cron` (UTC); one run at a time, missed
    runs merged."""
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        scheduled_job(workspace, settings, store_settings, training_settings, sources),
        CronTrigger.from_crontab(training_settings.retrain_cron, timezone=UTC),
        id="retrain",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler
