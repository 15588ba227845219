"""`tessera segments list|preview|export|refresh` and `tessera triggers run`: activation from the command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from tessera.options import (
    NowOption,
    WorkspaceOption,
    now_from,
    workspace_from,
    workspace_settings,
    writes_workspace,
)

segments_app = typer.Typer(help="Segments: declared rules, membership kept current.", no_args_is_help=True)
triggers_app = typer.Typer(help="Triggers: the delivery worker.", no_args_is_help=True)
NameArgument = Annotated[str, typer.Argument(help="The segment's name (segments.yaml).")]


@segments_app.command("list")
def list_segments(workspace: WorkspaceOption = None) -> None:
    """Every declared segment with its member count (after the last refresh) and its rule."""
    from activation.membership import counts_of
    from activation.run import declarations
    from activation.settings import ActivationSettings, membership_db
    from activation.store import connect

    plan, _ = declarations(ActivationSettings())
    path = membership_db(workspace_from(workspace))
    counts = {}
    if path.exists():
        con = connect(path)
        counts = counts_of(con)
        con.close()
    for segment in plan.segments:
        shown = f"{counts[segment.name]:,}" if segment.name in counts else "0"
        typer.echo(f"{segment.name:32} {shown:>8}  {' '.join(segment.spec.rule.split())}")


@segments_app.command()
def preview(
    name: NameArgument,
    workspace: WorkspaceOption = None,
    now: NowOption = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Member ids shown.")] = 10,
) -> None:
    """Evaluate one segment now over the stored attributes, without storing anything: count and a few ids."""
    from activation.run import preview_segment
    from activation.settings import ActivationSettings

    result = preview_segment(
        workspace_from(workspace, must_exist=True), ActivationSettings(), name, now_from(now), limit
    )
    typer.echo(json.dumps(result, indent=2))


@segments_app.command()
def export(
    name: NameArgument,
    out: Annotated[Path, typer.Option("--out", help="A .csv or .parquet file.", dir_okay=False)],
    workspace: WorkspaceOption = None,
) -> None:
    """Write a segment's members (id, since, and the email of those who consented to email) for an import."""
    from activation.delivery import export_segment
    from activation.settings import ActivationSettings

    written = export_segment(workspace_from(workspace, must_exist=True), ActivationSettings(), name, out)
    typer.echo(f"{written} members of {name} -> {out}")


@segments_app.command()
@writes_workspace("tessera segments refresh", must_exist=True)
def refresh(workspace: WorkspaceOption = None, now: NowOption = None) -> None:
    """Recompute every segment's membership from the profile and the champions; store entries and exits."""
    from activation.run import refresh_segments
    from activation.settings import ActivationSettings
    from features.store.settings import FeatureStoreSettings
    from tessera.core.settings import Workspace

    settings = workspace_settings(workspace, must_exist=True)
    summary = refresh_segments(
        Workspace.from_settings(settings),
        now_from(now),
        settings,
        FeatureStoreSettings(),
        ActivationSettings(),
    )
    typer.echo(json.dumps(summary, indent=2))


@triggers_app.command("run")
def run_triggers(
    workspace: WorkspaceOption = None,
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="Stop once nothing is pending (default: run until stopped).")
    ] = False,
    now: NowOption = None,
) -> None:
    """The delivery worker: send the outbox's activations (consent, caps and quiet hours checked at send time)."""
    from activation.delivery import Worker
    from activation.settings import ActivationSettings

    moment: datetime | None = now_from(now) if now is not None else None
    worker = Worker(
        workspace_from(workspace, must_exist=True),
        ActivationSettings(),
        clock=(lambda: moment) if moment else None,
    )
    typer.echo(json.dumps(worker.run(until_empty=until_empty), indent=2))


def register(main: typer.Typer) -> None:
    """Add `segments` and `triggers` to the main `tessera` app."""
    main.add_typer(segments_app, name="segments")
    main.add_typer(triggers_app, name="triggers")
