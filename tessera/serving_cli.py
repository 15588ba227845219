"""`tessera serve`: the BentoML service on a workspace.

Mount it on the main app with `register(app)`; `app` here is the same command as a stand-alone Typer app
(`python -m tessera.serving_cli --workspace DIR --port 3000`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from tessera.options import WorkspaceOption, workspace_from


def serve(
    workspace: WorkspaceOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 3000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    now: Annotated[
        datetime | None,
        typer.Option(
            "--now", help="The service's 'current time', ISO 8601 (default: the clock; TESSERA_SERVE_NOW)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Worker processes (default: TESSERA_SERVE_WORKERS, 2)."),
    ] = None,
    poll_seconds: Annotated[
        float | None,
        typer.Option("--poll-seconds", min=0, help="Seconds between checks for new champions (0: never)."),
    ] = None,
) -> None:
    """Serve recommendations, scores, live events and the customer 360 view (BentoML) until interrupted."""
    from serving.run import serve_forever
    from tessera.core.timeutil import as_utc

    serve_forever(
        workspace_from(workspace, must_exist=True).root,
        port=port,
        host=host,
        now=as_utc(now) if now is not None else None,
        workers=workers,
        poll_seconds=poll_seconds,
    )


def register(main: typer.Typer) -> None:
    """Add `serve` to the main `tessera` app."""
    main.command()(serve)


app = typer.Typer(help="Tessera's service.", add_completion=False, pretty_exceptions_enable=False)
app.command()(serve)

if __name__ == "__main__":
    app()
