"""`latentquant explore`: see what each latent does, in the browser.

`serve` loads one or more runs (sharing a dataset) and serves a page with one slider per latent, the decoded
image, NMI labels, a strip of dataset images to start from, the NMI heatmap, codebook usage and the run's
scores (docs/explore.md). `export` writes the same page as one self-contained file with every traversal
precomputed. Only the command line imports this package; the web framework (Flask, the `explore` extra) is
imported by `serve` alone, so `export` needs nothing beyond the core.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError
from ._state import BadRequest, RunView, open_run, open_runs, view_of

__all__ = ["BadRequest", "RunView", "create_app", "export", "export_data", "make_server", "open_run", "open_runs",
           "serve", "view_of"]


def create_app(views: list[RunView]) -> Any:
    """The Flask app serving ``views``; UserError naming the extra to install when Flask is missing."""
    try:
        from ._app import create_app as make
    except ModuleNotFoundError as e:
        if e.name in ("flask", "werkzeug"):
            raise UserError("latentquant explore needs Flask: pip install 'latentquant[explore]'") from None
        raise
    for view in views:
        view.start = view.start_code()
    return make(views)


def make_server(views: list[RunView], host: str = "127.0.0.1", port: int = 8765) -> Any:
    """A threaded WSGI server for ``views`` bound to host:port (port 0: any free port), not yet serving.

    Its ``server_port`` is the port it got; ``serve_forever()`` serves and ``shutdown()`` stops it from another
    thread. A port in use or a host that cannot be bound is a UserError.
    """
    app = create_app(views)
    from werkzeug.serving import WSGIRequestHandler
    from werkzeug.serving import make_server as werkzeug_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # a line per slider move would bury the one line that matters (the address)

    # Werkzeug reports a failed bind by printing two lines and exiting; the command line owes one line.
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return werkzeug_server(host, port, app, threaded=True, request_handler=QuietHandler)
    except (SystemExit, OSError) as e:
        reason = getattr(e, "strerror", None) or (said.getvalue().splitlines() or ["cannot bind"])[0]
        if getattr(e, "errno", None) == errno.EADDRINUSE or "in use" in said.getvalue():
            raise UserError(f"port {port} on {host} is in use: choose another with --port") from None
        raise UserError(f"cannot listen on {host}:{port}: {reason}") from None

def serve(run_dirs: list[str | Path], *, step: int | None = None, host: str = "127.0.0.1", port: int = 8765,
          num_eval: int | None = None, on_ready: Callable[[str], None] = print,
          warn: Callable[[str], None] | None = None) -> None:
    """Serve the explorer for ``run_dirs`` until interrupted; ``on_ready`` gets the one line with the address,
    ``warn`` each problem that loading worked around (a damaged newer checkpoint)."""
    views = open_runs(list(run_dirs), step, num_eval=num_eval, warn=warn)
    server = make_server(views, host, port)
    shown = f"[{host}]" if ":" in host else host
    on_ready(f"latentquant explore: http://{shown}:{server.server_port}/ ({', '.join(v.name for v in views)}; "
             "Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def export_data(view: RunView) -> dict[str, Any]:
    """The exported page's data: the run's summary, its start code and image, and for every latent j and every
    traversal value k the image of the start code with latent j set to that value."""
    start = view.start_code()
    traversals, values = [], []
    for j in range(view.num_latents):
        row = view.traversal_values(j)
        images = []
        for v in row:
            code = list(start)
            code[j] = v
            images.append(_data_uri(view.decode_png(view.check_code(code))))
        traversals.append(images)
        values.append(row)
    summary = view.summary()
    summary.update(start=start, start_image=_data_uri(view.decode_png(view.check_code(start))),
                   traversals=traversals, traversal_values=values)
    return {"runs": [summary], "strip": 0}


def export(run_dir: str | Path, out: str | Path, *, step: int | None = None, num_eval: int | None = None,
           warn: Callable[[str], None] | None = None) -> Path:
    """Write the static explorer of one run to ``out`` (atomically) and return its path."""
    from ..fsio import atomic_write_text, disk_errors
    from ._page import static_page

    out = Path(out).expanduser()
    if out.is_dir():
        raise UserError(f"{out} is a directory: give the file to write, e.g. {out / 'explore.html'}")
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: no directory {out.parent}")
    view = open_run(run_dir, step, num_eval=num_eval, warn=warn)
    page = static_page(export_data(view))
    with disk_errors(f"cannot write {out}"):
        atomic_write_text(out, page)
    return out

