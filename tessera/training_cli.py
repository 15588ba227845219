"""`tessera train | score | recommend | retrain | schedule`: the models' commands.

Mount them on the main app with `register(app)`; `app` here is the same commands as a stand-alone Typer app.
Each command parses its options, calls one function in `training` and prints a short summary.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tessera.core.settings import Workspace
from tessera.options import (
    NowOption,
    WorkspaceOption,
    now_from,
    workspace_from,
    workspace_settings,
    writes_workspace,
)

HorizonOption = Annotated[
    int | None,
    typer.Option(
        "--horizon-days",
        min=7,
        help="Days after the cutoff that labels look at (default: TESSERA_TRAINING_HORIZON_DAYS, 90).",
    ),
]
OutOption = Annotated[Path, typer.Option("--out", help="Output file: .csv or .parquet.", dir_okay=False)]
SourcesOption = Annotated[
    Path | None,
    typer.Option(
        "--sources", help="Re-run the chain on this sources.yaml first.", exists=True, dir_okay=False
    ),
]


class ModelChoice(StrEnum):
    churn = "churn"
    cltv = "cltv"
    next_best_product = "next-best-product"
    all = "all"


class ScoreChoice(StrEnum):
    churn = "churn"
    cltv = "cltv"


def settings_for(horizon_days: int | None) -> Any:
    from training.settings import TrainingSettings

    return TrainingSettings() if horizon_days is None else TrainingSettings(horizon_days=horizon_days)


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    """Per model: version, the primary metric against the best baseline, and whether it became champion."""
    out: dict[str, Any] = {}
    for name, result in results.items():
        if "skipped" in result:
            out[name] = {"skipped": result["skipped"]}
            continue
        metric = result["gate"]["metric"]
        best = max((m.get(metric, float("nan")), b) for b, m in result["baselines"].items())
        out[name] = {
            "version": result["version"],
            metric: round(result["metrics"][metric], 4),
            "best_baseline": {best[1]: round(best[0], 4)},
            "champion": result["gate"]["promoted"],
            "seconds": result["seconds"],
        }
    return out


def echo_outcomes(results: dict[str, Any]) -> None:
    """On stderr, one line per skipped model and one per note on the plan (shortened labels), so stdout stays JSON."""
    for name, result in results.items():
        if "skipped" in result:
            typer.echo(f"{name} skipped: {result['skipped']}", err=True)
    for note in dict.fromkeys(result["note"] for result in results.values() if "note" in result):
        typer.echo(f"note: {note}", err=True)


@writes_workspace("tessera train", must_exist=True)
def train(
    model: Annotated[ModelChoice, typer.Argument(help="Which model to train.")],
    workspace: WorkspaceOption = None,
    now: NowOption = None,
    horizon_days: HorizonOption = None,
) -> None:
    """Train, log and register a model (or all three) in MLflow; the gate decides which version is champion."""
    from features.store.settings import FeatureStoreSettings
    from tessera.pipeline import train_all

    models = None if model is ModelChoice.all else (model.value.replace("-", "_"),)
    results = train_all(
        workspace_from(workspace, must_exist=True),
        now_from(now),
        settings_for(horizon_days),
        FeatureStoreSettings(),
        models=models,
    )
    typer.echo(json.dumps(_summary(results), indent=2))
    echo_outcomes(results)


def score(
    model: Annotated[ScoreChoice, typer.Argument(help="Which champion scores the customers.")],
    out: OutOption,
    workspace: WorkspaceOption = None,
    now: NowOption = None,
    horizon_days: HorizonOption = None,
) -> None:
    """Score every customer who consented to profiling with the champion, as of --now; CSV or Parquet by extension."""
    from features.store.settings import FeatureStoreSettings
    from training.scoring import score_customers, write_table

    settings = workspace_settings(workspace, must_exist=True)
    scores = score_customers(
        Workspace.from_settings(settings),
        model.value,
        now_from(now),
        settings,
        FeatureStoreSettings(),
        horizon_days,
    )
    write_table(scores, out)
    typer.echo(
        f"{len(scores):,} customers scored by {model.value} v{scores['model_version'].iloc[0] if len(scores) else '?'} → {out}"
    )


def recommend(
    out: OutOption,
    all_customers: Annotated[
        bool, typer.Option("--all", help="Recommend for every customer (required).")
    ] = False,
    k: Annotated[int, typer.Option("--k", min=1, help="Products per customer.")] = 10,
    exclude_purchased: Annotated[
        bool, typer.Option("--exclude-purchased", help="Leave out products the customer already bought.")
    ] = False,
    workspace: WorkspaceOption = None,
    now: NowOption = None,
    horizon_days: HorizonOption = None,
) -> None:
    """Top-k products per customer from the champion recommender, as of --now; one row per customer and rank."""
    from training.scoring import recommend_all, write_table

    if not all_customers:
        raise typer.BadParameter(
            "batch recommendations are for every customer: pass --all", param_hint="--all"
        )
    del horizon_days  # accepted for symmetry: recommendations have no horizon of their own
    settings = workspace_settings(workspace, must_exist=True)
    recommendations = recommend_all(
        Workspace.from_settings(settings), now_from(now), settings, k=k, exclude_purchased=exclude_purchased
    )
    write_table(recommendations, out)
    customers = recommendations["customer_id"].nunique()
    flagged = int((~recommendations.drop_duplicates("customer_id")["personalised"]).sum())
    typer.echo(
        f"{len(recommendations):,} recommendations for {customers:,} customers ({flagged:,} not personalised) → {out}"
    )


@writes_workspace("tessera retrain")
def retrain(
    workspace: WorkspaceOption = None,
    now: NowOption = None,
    horizon_days: HorizonOption = None,
    sources: SourcesOption = None,
) -> None:
    """Unattended: (re-run the chain,) rebuild the feature store, train all models and apply the gate, under a lock."""
    from activation.settings import ActivationSettings
    from features.store.settings import FeatureStoreSettings
    from tessera.schedule import retrain as run_retrain

    settings = workspace_settings(workspace)
    result = run_retrain(
        Workspace.from_settings(settings),
        now_from(now),
        settings,
        FeatureStoreSettings(),
        settings_for(horizon_days),
        sources,
        ActivationSettings(),
    )
    typer.echo(json.dumps(_summary(result["models"]), indent=2))
    echo_outcomes(result["models"])


def schedule(
    workspace: WorkspaceOption = None,
    horizon_days: HorizonOption = None,
    sources: SourcesOption = None,
    cron: Annotated[
        str | None,
        typer.Option("--cron", help="Cron expression, UTC (default: TESSERA_TRAINING_RETRAIN_CRON)."),
    ] = None,
) -> None:
    """Run `retrain` on a cron schedule until interrupted (APScheduler, in this process)."""
    from features.store.settings import FeatureStoreSettings
    from tessera.schedule import build_scheduler

    training_settings = settings_for(horizon_days)
    if cron is not None:
        training_settings = training_settings.model_copy(update={"retrain_cron": cron})
    settings = workspace_settings(workspace)
    scheduler = build_scheduler(
        Workspace.from_settings(settings), settings, FeatureStoreSettings(), training_settings, sources
    )
    logging.getLogger("apscheduler").setLevel(logging.INFO)
    typer.echo(f"retraining on '{training_settings.retrain_cron}' (UTC); Ctrl-C stops")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


COMMANDS = (train, score, recommend, retrain, schedule)


def register(main: typer.Typer) -> None:
    """Add the training commands to the main `tessera` app."""
    for command in COMMANDS:
        main.command()(command)


app = typer.Typer(
    help="Tessera's models: train, score, recommend, retrain.", no_args_is_help=True, add_completion=False
)
register(app)

if __name__ == "__main__":
    app()
