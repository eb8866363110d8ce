"""``batchlab dashboard``: a read-only web app over the store, left open while a sweep runs."""

from __future__ import annotations

from typing import Annotated

import typer

from batchlab.cli.common import DEFAULT_STORE, StoreOpt, app


@app.command()
def dashboard(
    store: StoreOpt = DEFAULT_STORE,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(
        "--host", help="Address to bind. The default serves this machine only; 0.0.0.0 exposes "
        "the store to your network (read-only, no login).")] = "127.0.0.1",
) -> None:
    """A live, read-only web dashboard of the store's experiments, runs and learning curves
    (open the URL it prints; Ctrl-C stops it)."""
    from batchlab.web.server import serve  # the standard library's http.server: cheap to import

    serve(store, host, port)
