"""The one pipeline: ingest → resolve identities → profile → quality report → feature store → train every model.

`tessera run`, `tessera demo` and `tessera retrain` (`tessera.schedule`) call `run`; `tessera train` calls
`train_all` on a built feature store. Each step reads what the previous one wrote, so any step can also run
alone from its own command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.identity import resolve_identities
from features.ingest import ingest_sources
from features.profile import build_profile
from features.profile.quality import quality_report
from features.store import build_feature_store
from features.store.settings import FeatureStoreSettings
from tessera.core.progress import track
from tessera.core.settings import Settings, Workspace
from training import tracking
from training.errors import ModelSkipped
from training.pipelines import TrainingContext, train_model
from training.probabilistic import forget_own_fits
from training.recipes import recipe_for
from training.settings import TrainingSettings

if TYPE_CHECKING:
    from activation.settings import ActivationSettings

log = logging.getLogger(__name__)


def run_chain(
    sources: Path,
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
) -> dict:
    """Run every features step on the sources declared in `sources`; each step reads what the previous one wrote."""
    ingest = ingest_sources(sources, workspace, settings)
    identity = resolve_identities(workspace, now=now, settings=settings)
    profile = build_profile(workspace, now=now, settings=settings)
    quality = quality_report(workspace, now=now)
    feature_store = build_feature_store(workspace, now, settings, store_settings)
    return {
        "workspace": str(workspace.root),
        "ingest": {"ok": ingest.ok, "summary": ingest.summary()},
        "identity": identity,
        "profile": profile,
        "quality": {"identity": quality["identity"], "match_rates": quality["match_rates"]},
        "feature_store": feature_store,
        "reports": str(workspace.reports),
    }


def train(
    workspace: Workspace,
    model: str,
    now: datetime,
    settings: TrainingSettings,
    store_settings: FeatureStoreSettings,
) -> dict[str, Any]:
    """Train, log, register and gate one model (`churn`, `cltv` or `next_best_product`)."""
    return train_all(workspace, now, settings, store_settings, models=(model,))[model]


def train_all(
    workspace: Workspace,
    now: datetime,
    settings: TrainingSettings,
    store_settings: FeatureStoreSettings,
    models: tuple[str, ...] | None = None,
    checkpoint: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the models (default: `settings.models`) as of `now` from the profile and the feature store.

    A model whose data cannot train it is recorded as `{"skipped": reason}` and the others go on; a trained
    model's result carries its cutoffs and, when the plan had to shorten the labels, a `note` saying why.
    The feature store must have been built as of `now` (`run` does it before training). `checkpoint` is passed
    to `tracking.promote` (tests kill the training there).
    """
    recipes = [recipe_for(name, settings) for name in (settings.models if models is None else models)]
    tracking.sync_champion_aliases(workspace)  # a training killed while promoting left them behind
    ctx = TrainingContext(workspace, now, settings, store_settings)
    results: dict[str, Any] = {}
    try:
        for recipe in track(recipes, "Training models"):
            log.info("training %s as of %s", recipe.name, ctx.now)
            try:
                result = train_model(recipe, ctx)
            except ModelSkipped as skipped:
                log.info("%s skipped: %s", recipe.name, skipped)
                results[recipe.name] = {"skipped": str(skipped)}
            else:
                note = {"note": ctx.cutoffs.note} if ctx.cutoffs.note else {}
                results[recipe.name] = {**result, "cutoffs": ctx.cutoffs.describe(), **note}
    finally:
        forget_own_fits()  # the cutoffs' BG/NBD fits are this run's: a scheduler's next run has other rows
    # Every model's champion moves together, once all are trained and registered: one release made current by
    # one alias move, so a training killed on the way (or during the move) leaves every champion as it was.
    tracking.promote(workspace, [r["gate"] for r in results.values() if "gate" in r], checkpoint)
    return results


def run(
    sources: Path | None,
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    training_settings: TrainingSettings,
    activation_settings: ActivationSettings | None = None,
) -> dict[str, Any]:
    """The whole flow as of `now`: the features chain on `sources` (or, without sources, the feature store
    rebuilt from the current profile), then every model trained, registered and gated, then (with
    `activation_settings`) every segment's membership refreshed from the profile and the new champions."""
    if sources is not None:
        summary = run_chain(sources, workspace, now, settings, store_settings)
    else:
        summary = {"feature_store": build_feature_store(workspace, now, settings, store_settings)}
    summary["models"] = train_all(workspace, now, training_settings, store_settings)
    if activation_settings is not None:
        from activation.run import refresh_segments

        summary["segments"] = refresh_segments(workspace, now, settings, store_settings, activation_settings)
    return summary
