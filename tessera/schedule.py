"""Unattended retraining: the whole chain and the gate under a lock, on a cron schedule with APScheduler.

The lock is the workspace's write lock (`tessera.core.lock`), which every writing command takes: a retrain while
another writer runs (or a writer during a retrain) is refused, not queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from tessera.core.lock import WorkspaceBusy, workspace_lock
from tessera.core.settings import Settings, Workspace
from tessera.core.timeutil import as_utc
from training.settings import TrainingSettings

if TYPE_CHECKING:  # Feast is heavy: imported only once the lock is ours
    from activation.settings import ActivationSettings
    from features.store.settings import FeatureStoreSettings

log = logging.getLogger(__name__)


# A retrain refused because another writer holds the workspace.
RetrainRunning = WorkspaceBusy


def retrain_lock(workspace: Workspace) -> AbstractContextManager[Path]:
    """Hold the workspace's write lock for a retrain; raise `RetrainRunning` if another process holds it."""
    return workspace_lock(workspace, "tessera retrain")


def retrain(
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    training_settings: TrainingSettings,
    sources: Path | None = None,
    activation_settings: ActivationSettings | None = None,
) -> dict[str, Any]:
    """Under the lock, the one pipeline (`tessera.pipeline.run`): the chain on `sources` when given, else the feature
    store rebuilt; then every model trained and gated."""
    moment = as_utc(now)
    with retrain_lock(workspace):
        from tessera.pipeline import run  # heavy imports only once the lock is ours

        summary: dict[str, Any] = {"now": moment.isoformat()}
        summary.update(
            run(sources, workspace, moment, settings, store_settings, training_settings, activation_settings)
        )
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
