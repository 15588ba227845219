"""`tessera features ...`: apply the Feast declarations, materialise the online store, write the catalogue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tessera import options
from tessera.core.settings import Workspace

app = typer.Typer(
    help="The Feast feature store: offline tables from the profile, the registry and the online store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
@options.writes_workspace("tessera features apply")
def apply(workspace: options.WorkspaceOption = None) -> None:
    """Write feature_store.yaml from TESSERA_FEAST_* settings and register the declarations in the registry."""
    from features.store import FeatureStoreSettings, apply_feature_store

    typer.echo(
        json.dumps(apply_feature_store(options.workspace_from(workspace), FeatureStoreSettings()), indent=2)
    )


@app.command()
@options.writes_workspace("tessera features materialize")
def materialize(
    workspace: options.WorkspaceOption = None,
    now: options.NowOption = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Load every view from the start, not from the previous run's end: after the online store "
            "was emptied (a Redis flush, a deleted online_store.db).",
        ),
    ] = False,
) -> None:
    """Recompute the offline feature tables from the profile and load the online store up to --now."""
    from features.store import FeatureStoreSettings, materialize_feature_store

    settings = options.workspace_settings(workspace)
    summary = materialize_feature_store(
        Workspace.from_settings(settings), options.now_from(now), settings, FeatureStoreSettings(), full=full
    )
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command()
def docs(
    workspace: options.WorkspaceOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default: docs/features.md).")
    ] = None,
) -> None:
    """Apply the declarations, then regenerate the feature catalogue (docs/features.md) from the registry."""
    from features.store import FeatureStoreSettings, apply_feature_store, open_store
    from features.store.catalogue import CATALOGUE, write_catalogue

    ws, store_settings = options.workspace_from(workspace), FeatureStoreSettings()
    apply_feature_store(ws, store_settings)
    typer.echo(f"feature catalogue: {write_catalogue(open_store(ws, store_settings), out or CATALOGUE)}")
