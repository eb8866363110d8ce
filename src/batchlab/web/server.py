"""``batchlab dashboard``: a read-only local web app over one store (standard library only).

Safety, by construction:
- every request opens the store with ``Store(path, create=False, read_only=True)``: SQLite's
  ``mode=ro`` (or ``immutable`` while no sweep has it open), so no statement can write and no
  file is made beside it; only GET and HEAD are answered (every other method: 405);
- the only file read besides the store is one of the page's own assets, looked up by name in
  ``ASSETS`` (a fixed table): no request parameter ever becomes a path;
- JSON only carries data; the page builds its DOM with ``textContent``, so names, configs and
  error texts from the store render as text. A Content-Security-Policy allows scripts from
  the server itself only, and requests whose Host is not this server's are refused (a web
  page elsewhere cannot read the store through DNS rebinding; a request with two Host
  headers is refused too). Every response, errors of the HTTP machinery included, carries
  the same security headers;
- it binds 127.0.0.1 unless told otherwise (``--host 0.0.0.0`` exposes it deliberately).
"""

from __future__ import annotations

import errno
import json
import math
import socket
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from batchlab.errors import BatchlabError, StoreError
from batchlab.web import asset

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# name in the URL -> (file in the package, content type); nothing else is ever served
ASSETS = {
    "/": ("web/dashboard.html", "text/html; charset=utf-8"),
    "/static/dashboard.js": ("web/dashboard.js", "text/javascript; charset=utf-8"),
    "/static/charts.js": ("web/charts.js", "text/javascript; charset=utf-8"),
    "/static/layers.js": ("web/layers.js", "text/javascript; charset=utf-8"),
    "/static/dashboard.css": ("web/dashboard.css", "text/css; charset=utf-8"),
    "/static/charts.css": ("web/charts.css", "text/css; charset=utf-8"),
    "/static/uPlot.iife.min.js": ("web/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/static/uPlot.min.css": ("web/vendor/uPlot.min.css", "text/css; charset=utf-8"),
}
MAX_STEP = 2**62  # a step beyond any run's, still an SQLite integer once 1 is subtracted
# http.server listens with a backlog of 5: 50 browsers/clients at once overflow it, and the
# kernel drops their connection attempts (retried after 1 s, 3 s, 7 s ... up to timeouts)
LISTEN_BACKLOG = max(128, socket.SOMAXCONN)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'")


class DashboardError(BatchlabError):
    """The dashboard cannot start (the port is taken, the address cannot be bound)."""


def _api(store_path: Path, route: str, query: dict[str, list[str]]) -> Any:
    """The JSON of one API route; StoreError for an unknown experiment, KeyError for a route
    that does not exist."""
    from batchlab.store import Store
    from batchlab.web import payload

    def arg(name: str) -> str:
        values = query.get(name)
        if not values:
            raise StoreError(f"parameter '{name}' is missing")
        return values[0]

    with Store(store_path, create=False, read_only=True) as store:
        if route == "experiments":
            return {"store": str(store_path), "experiments": payload.experiments(store)}
        if route == "runs":
            records = store.runs(arg("experiment"))
            return {"runs": payload.runs(records), "style": payload.style(records)}
        if route == "curves":
            since = _since(query.get("since", ["{}"])[0])
            return {"curves": payload.curves(store, store.runs(arg("experiment")), since)}
        if route == "summary":
            return payload.summary(store, arg("experiment"))
    raise KeyError(route)


def _since(text: str) -> dict[str, int]:
    """The ``since`` parameter: a JSON object run id -> last step seen. Bad input is ignored
    (the page then gets every row): text that is not JSON or nests too deep (RecursionError),
    anything but an object, and values that are not finite numbers (NaN, Infinity, 1e999);
    steps are clamped to 0..MAX_STEP."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    # clamped to SQLite's integers: 1e300 or 10**30 would overflow the query's parameter
    return {str(k): min(max(int(v), 0), MAX_STEP) for k, v in raw.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


def handler_for(store_path: Path, allowed_hosts: set[str]) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one store."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "batchlab-dashboard"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass  # a poll every 2 s would flood the terminal

        def _send(self, status: int, body: bytes, ctype: str,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser left (a reload, a closed tab): nothing to tell anyone

        def _json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json", extra)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """The base class's own errors (a bad request line, headers too long, a method
            with no ``do_`` handler: OPTIONS, TRACE, ...) as JSON with the security headers,
            instead of its bare HTML page."""
            self.close_connection = True  # the request may not have been read to its end
            if code == HTTPStatus.NOT_IMPLEMENTED:  # any method but GET/HEAD: read-only
                return self._refuse()
            self._json(code, {"error": message or HTTPStatus(code).phrase})

        def do_GET(self) -> None:  # noqa: N802 - the base class's naming
            hosts = self.headers.get_all("Host") or []
            if len(hosts) > 1:  # which one would a proxy or the browser have meant? (RFC 9112)
                return self._json(HTTPStatus.BAD_REQUEST, {"error": "more than one Host header"})
            host = (hosts[0] if hosts else "").rsplit(":", 1)[0].strip("[]")
            if allowed_hosts and host not in allowed_hosts:
                return self._json(HTTPStatus.FORBIDDEN, {"error": f"host '{host}' not served"})
            url = urlsplit(self.path)
            if url.path in ASSETS:
                name, ctype = ASSETS[url.path]
                return self._send(HTTPStatus.OK, asset(name), ctype)
            if not url.path.startswith("/api/"):
                return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            try:
                body = _api(store_path, url.path[len("/api/"):], parse_qs(url.query))
            except KeyError:
                return self._json(HTTPStatus.NOT_FOUND, {"error": "no such endpoint"})
            except BatchlabError as err:
                return self._json(HTTPStatus.NOT_FOUND, {"error": str(err)})
            except Exception as err:  # a bug of ours: answer it, never drop the connection
                sys.stderr.write(f"batchlab dashboard: {self.path}: {type(err).__name__}: {err}\n")
                return self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                                  {"error": f"internal error ({type(err).__name__}: {err})"})
            self._json(HTTPStatus.OK, body)

        do_HEAD = do_GET  # noqa: N815

        def _refuse(self) -> None:
            self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "the dashboard is read-only"},
                       {"Allow": "GET, HEAD"})

    return Handler


class DashboardServer(ThreadingHTTPServer):
    """One thread per request, with a listen backlog that holds a burst of clients."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True  # a browser's open connection never blocks Ctrl-C


def make_server(store_path: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> DashboardServer:
    """A server over ``store_path`` bound to ``host:port`` (port 0: any free port). The store
    is checked first (it must exist and be a batchlab store: StoreError otherwise);
    DashboardError when the address cannot be bound."""
    from batchlab.store import Store

    with Store(store_path, create=False, read_only=True):
        pass
    local = {"127.0.0.1", "localhost", "::1"}
    # bound to a loopback address: only requests naming it are served (DNS rebinding);
    # bound to all interfaces, the user chose to expose it and names vary
    allowed = local | {host} if host in local else set()
    try:
        server = DashboardServer((host, port), handler_for(store_path, allowed))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise DashboardError(
                f"port {port} on {host} is already in use (another dashboard or program "
                "listens there); pass another one with --port N, or stop the other program.") from None
        raise DashboardError(f"cannot listen on {host}:{port}: {err.strerror}. Pass another "
                             "--host or --port.") from None
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"


def serve(store_path: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          out: TextIO = sys.stdout, ready: Callable[[str], None] | None = None) -> None:
    """Serve until Ctrl-C, then close the socket and return (no traceback)."""
    server = make_server(store_path, host, port)
    url = url_of(server)
    exposed = (" (listening on every interface: anyone who can reach this machine can read "
               "the store)" if host not in ("127.0.0.1", "localhost", "::1") else "")
    out.write(f"batchlab dashboard of {store_path} at {url}{exposed}; Ctrl-C stops it.\n")
    out.flush()
    if ready is not None:
        ready(url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        out.write("dashboard stopped.\n")
    finally:
        server.server_close()
