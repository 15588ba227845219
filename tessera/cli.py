"""The `tessera` command line: each command parses its options, calls one function and prints a summary."""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from simulator.config import PROFILES
from tessera.core.lock import EXIT_BUSY, WorkspaceBusy, workspace_lock
from tessera.core.progress import show_progress
from tessera.core.settings import Workspace
from tessera.options import (
    NowOption,
    WorkspaceOption,
    now_from,
    workspace_settings,
    writes_workspace,
    yesterday,
)
from tessera.report import chain_summary, write_report
from tessera.training_cli import HorizonOption, echo_outcomes, settings_for

if TYPE_CHECKING:
    from tessera.core.settings import Settings
    from training.settings import TrainingSettings

app = typer.Typer(
    help="Tessera: unified customer profiles, features, models and serving for retailers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


SimProfile = StrEnum("SimProfile", [(name, name) for name in PROFILES])  # the simulator's profiles


class Shape(StrEnum):
    """What `tessera simulate` writes."""

    retailer = "retailer"
    registry = "registry"
    two_files = "two-files"


SourcesOption = Annotated[
    Path,
    typer.Option(
        "--sources", help="The sources mapping file (see docs/sources.md).", exists=True, dir_okay=False
    ),
]


@app.callback()
def configure(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Splink warns about every comparison level its training sample did not contain; that is expected.
    logging.getLogger("splink").setLevel(logging.INFO if verbose else logging.ERROR)
    # MLflow logs each model's packaging steps (and that it pickles the model, which is how it is loaded); it
    # sets its loggers' level from this variable when imported, after this.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "ERROR")
    show_progress.set(True)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder for the exports, sources.yaml and the truth.")],
    customers: Annotated[
        int,
        typer.Option(
            "--customers", min=10, help="How many people the retailer has (records, for the registry shapes)."
        ),
    ] = 1000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed gives the same files.")
    ] = 42,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Last day of the exports (YYYY-MM-DD; default: yesterday, UTC, so that `tessera run` with the "
            "clock as its now sees current data); the truth covers what follows. Same seed and day, same files.",
        ),
    ] = None,
    holdback: Annotated[
        float,
        typer.Option(
            "--holdback",
            min=0.0,
            max=0.9,
            help="Share of person records held back into exports_later/ (sources_full.yaml).",
        ),
    ] = 0.0,
    profile: Annotated[
        SimProfile,
        typer.Option(
            "--profile",
            help="default, or hard: wholesale buyers, heavy-tailed baskets, strong repeat buying, "
            "9 months of history, a third of order lines anonymous (docs/simulator.md).",
        ),
    ] = SimProfile.default,
    months: Annotated[
        int | None,
        typer.Option("--months", min=1, help="Months of history before --as-of (default: 36; hard: 9)."),
    ] = None,
    shape: Annotated[
        Shape,
        typer.Option(
            "--shape",
            help="retailer: every source system; registry: one contacts-only file with duplicates; "
            "two-files: two contacts-only systems to link (no email, phone or loyalty number).",
        ),
    ] = Shape.retailer,
    duplicates: Annotated[
        float,
        typer.Option(
            "--duplicates",
            min=0.0,
            max=0.9,
            help="Registry shapes: share of records repeating a person (registry) or of people in both files.",
        ),
    ] = 0.3,
) -> None:
    """Write a simulated retailer (or a contacts-only registry): the exports, their sources.yaml, the truth."""
    from simulator import simulate_registry, simulate_retailer
    from simulator.config import profile_config

    if shape is not Shape.retailer:
        summary = simulate_registry(
            records=customers, seed=seed, out=out, shape=shape.value, duplicates=duplicates
        )
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    summary = simulate_retailer(
        customers=customers,
        seed=seed,
        out=out,
        as_of=date.fromisoformat(as_of) if as_of else yesterday(),
        holdback=holdback,
        config=profile_config(profile.value, months),
    )
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command()
@writes_workspace("tessera ingest")
def ingest(sources: SourcesOption, workspace: WorkspaceOption = None) -> None:
    """Read every declared source into the canonical tables; quarantine rows that cannot be used."""
    from features.ingest import ingest_sources

    settings = workspace_settings(workspace)
    report = ingest_sources(sources, Workspace.from_settings(settings), settings)
    typer.echo(report.summary())


@app.command()
@writes_workspace("tessera resolve")
def resolve(
    workspace: WorkspaceOption = None,
    evaluate: Annotated[
        Path | None,
        typer.Option(
            "--evaluate",
            help="Do not resolve: score the last resolution of the workspace against a truth CSV "
            "(source, record_id, person_id). Run `tessera resolve` first.",
            exists=True,
        ),
    ] = None,
    now: NowOption = None,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train the matcher afresh instead of reusing the saved model.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Score every record again instead of only the new or changed ones."),
    ] = False,
) -> None:
    """Resolve identities: standardise, link, cluster and give every customer a stable id (or --evaluate the last run)."""
    from features.identity import evaluate_against_truth, resolve_identities

    settings = workspace_settings(workspace)
    ws = Workspace.from_settings(settings)
    if evaluate is not None:
        typer.echo(json.dumps(evaluate_against_truth(ws, evaluate), indent=2))
        return
    summary = resolve_identities(ws, now_from(now), settings, retrain=retrain, full=full)
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command()
@writes_workspace("tessera profile")
def profile(workspace: WorkspaceOption = None, now: NowOption = None) -> None:
    """Build the golden records, unified event tables and consent state, and the data-quality report."""
    from features.profile import build_profile
    from features.profile.quality import quality_report

    settings = workspace_settings(workspace)
    ws, moment = Workspace.from_settings(settings), now_from(now)
    summary = build_profile(ws, moment, settings)
    quality_report(ws, now=moment)
    typer.echo(json.dumps(summary, indent=2, default=str))
    typer.echo(f"data-quality report: {ws.reports / 'quality.md'}")


@app.command()
@writes_workspace("tessera run")
def run(
    sources: SourcesOption,
    workspace: WorkspaceOption = None,
    now: NowOption = None,
    horizon_days: HorizonOption = None,
) -> None:
    """Run the whole chain: ingest, resolve, profile, feature store, then train and register the models.

    A model the data cannot train is skipped with a one-line reason on stderr; the others are trained.
    """
    settings = workspace_settings(workspace)
    ws, moment = Workspace.from_settings(settings), now_from(now)
    if now is None:
        typer.echo(f"now: {moment:%Y-%m-%d %H:%M:%S} UTC, the clock (--now sets another moment)", err=True)
    summary = _run_everything(sources, ws, moment, settings, settings_for(horizon_days))
    typer.echo(json.dumps(summary, indent=2, default=str))
    echo_outcomes(summary["models"])


def _run_everything(
    sources: Path, ws: Workspace, moment: datetime, settings: Settings, training_settings: TrainingSettings
) -> dict:
    from activation.settings import ActivationSettings
    from features.store import FeatureStoreSettings
    from tessera.pipeline import run as run_pipeline

    # `demo` comes here without `run`'s lock (its service then runs unlocked); `run` holds it already.
    with workspace_lock(ws, "tessera run"):
        return run_pipeline(
            sources, ws, moment, settings, FeatureStoreSettings(), training_settings, ActivationSettings()
        )


@app.command()
def demo(
    workspace: WorkspaceOption = None,
    customers: Annotated[
        int, typer.Option("--customers", min=10, help="Size of the sample retailer.")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the sample retailer.")] = 42,
    port: Annotated[int, typer.Option("--port", help="Port of the service the demo leaves running.")] = 3000,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Leave the service running at the end.")
    ] = True,
) -> None:
    """Simulate a sample retailer, run the whole chain on it, then serve it until interrupted."""
    from simulator import simulate_retailer

    settings = workspace_settings(workspace)
    ws = Workspace.from_settings(settings)
    typer.echo(f"Simulating a retailer with {customers:,} customers into {ws.sample} ...")
    simulated = simulate_retailer(customers=customers, seed=seed, out=ws.sample)
    as_of = now_from(datetime.combine(date.fromisoformat(str(simulated["as_of"])), datetime.max.time()))
    summary = _run_everything(ws.sample / "sources.yaml", ws, as_of, settings, settings_for(None))
    typer.echo(chain_summary(summary, write_report(summary, ws.reports / "demo.json")))
    if serve:
        from serving.run import serve_forever

        serve_forever(ws.root, port=port, now=as_of)


@app.command()
@writes_workspace("tessera erase", must_exist=True)
def erase(
    customer: Annotated[
        str | None, typer.Option("--customer", help="A customer id (an alias names its survivor).")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="An email address of the person.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="A phone number of the person.")] = None,
    source_id: Annotated[
        str | None,
        typer.Option("--source-id", help="SOURCE:ID, a source's own id of one of the person's records."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Erase a person from every store (files, online store, MLflow artefacts), suppress them; print the receipt."""
    from features.store.settings import FeatureStoreSettings
    from serving.erasure import erase_person, find_person

    if sum(v is not None for v in (customer, email, phone, source_id)) != 1:
        raise typer.BadParameter("give exactly one of --customer, --email, --phone, --source-id")
    settings = workspace_settings(workspace, must_exist=True)
    ws = Workspace.from_settings(settings)
    person = find_person(ws, customer=customer, email=email, phone=phone, source_id=source_id)
    typer.echo(json.dumps(erase_person(ws, settings, FeatureStoreSettings(), person), indent=2))


def _mount_subcommands() -> None:
    from tessera import activation_cli, features_cli, serving_cli, training_cli

    app.add_typer(
        features_cli.app, name="features", help="The Feast feature store: apply, materialize, docs."
    )
    training_cli.register(app)
    serving_cli.register(app)
    activation_cli.register(app)


_mount_subcommands()


def main() -> None:
    """Entry point: input errors end with their message and exit status 2, a locked workspace with status 3."""
    from tessera.core.errors import InputError
    from tessera.core.known_warnings import ignore_known_warnings

    ignore_known_warnings()
    try:
        app()
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except WorkspaceBusy as busy:  # `demo`, which locks only its chain
        typer.echo(f"error: {busy}", err=True)
        raise SystemExit(EXIT_BUSY) from None


if __name__ == "__main__":
    main()
