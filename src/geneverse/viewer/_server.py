"""``geneverse explore``: a local web page over :class:`~geneverse.viewer._explorer.Explorer`.

A WSGI application (werkzeug) with a JSON API and the page's own three files, served by werkzeug's
threaded development server on 127.0.0.1 in a background thread. The server reads the file once and
never writes it; it serves nothing but its API and the assets shipped in ``viewer/explorer/``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import threading
import time
import webbrowser
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ._explorer import Explorer, UnknownGene

logger = logging.getLogger("geneverse")
#: Names of this machine that a page served on a loopback address may be reached by.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
#: Addresses that bind every interface: any Host is accepted (the user chose to expose the page).
ALL_ADDRESSES = frozenset({"0.0.0.0", "::", ""})

#: The page's files: the only paths served besides the API.
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
    "/explorer.css": ("explorer.css", "text/css; charset=utf-8"),
}
#: Content Security Policy: the page's own script and style only, nothing fetched from elsewhere.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_ROUTES = Map(
    [Rule(path, endpoint="asset") for path in ASSETS]
    + [
        Rule("/api/info", endpoint="info"),
        Rule("/api/genes", endpoint="genes"),
        Rule("/api/gene", endpoint="gene"),
        Rule("/api/similar", endpoint="similar"),
        Rule("/api/analogy", endpoint="analogy"),
        Rule("/api/pairs", endpoint="pairs"),
        Rule("/api/map", endpoint="map"),
    ]
)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, allow_nan=False), status=status, mimetype="application/json")


class ExplorerApp:
    """The WSGI application: routes to the :class:`Explorer`, JSON in and out."""

    def __init__(self, explorer: Explorer, title: str = "geneverse explore", hosts: frozenset[str] | None = None):
        self.explorer = explorer
        self.title = title
        self.hosts = hosts  # names the page may be reached by (None: any, for a server bound to all addresses)

    def __call__(self, environ: dict, start_response: Any) -> Any:
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        try:
            if self.hosts is not None and (urlsplit(f"//{request.host}").hostname or "") not in self.hosts:
                # another name that resolves here (DNS rebinding): a page elsewhere must not read the data
                raise BadRequest(f"Host {request.host!r} is not this server; open {sorted(self.hosts)[0]}.")
            endpoint, _ = _ROUTES.bind_to_environ(request.environ).match()
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
            response = getattr(self, f"_{endpoint}")(request)
        except UnknownGene as error:
            response = _json({"error": error.args[0], "matches": error.matches}, 404)
        except ValueError as error:  # the explorer's checks of the parameters
            response = _json({"error": str(error.args[0] if error.args else error)}, 400)
        except NotFound:
            response = _json({"error": f"Nothing at {request.path}; the API is under /api/ (see /api/info)."}, 404)
        except HTTPException as error:
            response = _json({"error": error.description}, error.code or 400)
        except Exception as error:  # a bug: logged with its traceback, a 500 for the page
            logger.exception("geneverse explore: %s failed", request.full_path)
            response = _json({"error": f"Internal error ({type(error).__name__}: {error}); see the server's log."}, 500)
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- routes ---------------------------------------------------------------------------------
    def _asset(self, request: Request) -> Response:
        name, mimetype = ASSETS[request.path]
        body = resources.files("geneverse.viewer").joinpath("explorer", name).read_bytes()
        return Response(body, mimetype=mimetype.split(";")[0], content_type=mimetype)

    def _info(self, request: Request) -> Response:
        explorer = self.explorer
        return _json(
            {
                "results": [
                    {
                        "title": self.title,
                        "genes": len(explorer.labels),
                        "keys": explorer.keys,
                        "default_key": explorer.default_key,
                        "example": explorer.labels[0] if len(explorer.labels) else None,
                        "programs": explorer.has_programs,
                    }
                ]
            }
        )

    def _genes(self, request: Request) -> Response:
        args = request.args
        return _json({"results": self.explorer.genes(args.get("prefix"), args.get("n"))})

    def _gene(self, request: Request) -> Response:
        return _json({"results": [self.explorer.gene(request.args.get("gene"))]})

    def _table(self, request: Request, table: Any, title: str) -> Response:
        if request.args.get("format") == "markdown":
            return Response(self.explorer.markdown(table, title), mimetype="text/markdown")
        if request.args.get("format") not in (None, "", "json"):
            raise ValueError(f"format={request.args.get('format')!r}: use json (default) or markdown.")
        return _json({"results": self.explorer.results(table)})

    def _similar(self, request: Request) -> Response:
        args = request.args
        table = self.explorer.similar(args.get("gene"), args.get("n"), args.get("key"))
        return self._table(request, table, f"similar to {args.get('gene')}")

    def _analogy(self, request: Request) -> Response:
        args = request.args
        a, b, c = (args.get(k) for k in "abc")
        table = self.explorer.analogy(a, b, c, args.get("n"), args.get("key"), args.get("method"))
        objective = " (3CosMul)" if args.get("method") == "3cosmul" else ""
        return self._table(request, table, f"analogy {a} - {b} + {c}{objective}")

    def _pairs(self, request: Request) -> Response:
        a, b = request.args.get("a"), request.args.get("b")
        table = self.explorer.pairs(a, b, request.args.get("n"), request.args.get("key"))
        return self._table(request, table, f"pairs like {a} - {b}")

    def _map(self, request: Request) -> Response:
        key = self.explorer.key(request.args.get("key"))
        payload = self.explorer.map(key, wait=0.5)
        if payload is None:  # still computing: the page asks again
            return _json({"results": [], "pending": True, "key": key}, 202)
        return _json({"results": [payload], "key": key})


def _listening_socket(host: str, port: int) -> int:
    """A socket bound to (host, port) and listening, as a descriptor that werkzeug's server takes over.

    Bound here because werkzeug exits the process (``sys.exit``) when its own bind fails.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise OSError(error.errno, f"port {port} is in use on {host}; pick another (0: any free port)") from None
        raise
    return sock.detach()


class ExplorerServer:
    """A running explorer: ``url``, ``stop()``; also a context manager.

    Attributes
    ----------
    url
        The page's address, e.g. ``http://127.0.0.1:8765/``.
    explorer
        The :class:`~geneverse.viewer._explorer.Explorer` answering the queries.
    """

    def __init__(self, explorer: Explorer, host: str, port: int, title: str, close: Any = None):
        self.explorer = explorer
        self._close = close  # the AnnData whose file the server opened, closed by stop()
        hosts = None if host in ALL_ADDRESSES else LOOPBACK_NAMES | {host.lower()}
        self.app = ExplorerApp(explorer, title, hosts)
        descriptor = _listening_socket(host, port)
        try:
            self._server = make_server(host, port, self.app, threaded=True, fd=descriptor)
        finally:
            os.close(descriptor)  # the server holds its own duplicate
        self.host, self.port = host, self._server.socket.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="geneverse explore")
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        if self._close is not None:
            _close(self._close)
            self._close = None

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> ExplorerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ExplorerServer({self.url}, {state})"

    def _repr_html_(self) -> str:
        return f'<a href="{self.url}" target="_blank">geneverse explore: {self.url}</a>'


def explore(
    adata: Any,
    *,
    vectors_key: str | None = None,
    gene_symbols: str | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    open_browser: bool = False,
    mod: str | None = None,
    title: str | None = None,
) -> ExplorerServer:
    """Browse gene embeddings in a web page: search, neighbours, programs, the gene map, analogies, pairs.

    Starts a local server in a background thread and returns at once; the gene map is read from the
    file when :func:`geneverse.pl.gene_map` stored it, else computed once in the background (the page
    shows it when ready). The AnnData is only read. In Jupyter, the returned object shows a link.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with gene vectors in ``varm``, or the path of an ``.h5ad`` file.
    vectors_key
        The embedding shown first (default ``X_gv``); every genes x dims ``varm`` entry can be picked.
    gene_symbols
        ``var`` column of the names to show and query (e.g. symbols when ``var_names`` are Ensembl IDs).
    port
        Port to listen on (0: a free one).
    host
        Address to bind. The default serves this machine only; another address exposes the data to
        the network.
    open_browser
        Open the page in the default browser.
    mod
        Modality of a MuData.
    title
        Page title (default: the file name, or ``geneverse explore``).

    Returns
    -------
    The running server: ``.url`` is the page, ``.stop()`` ends it.

    Examples
    --------
    >>> server = gv.viewer.explore(adata)  # doctest: +SKIP
    >>> server.url  # doctest: +SKIP
    'http://127.0.0.1:54213/'
    >>> server.stop()  # doctest: +SKIP
    """
    from ._view import _load

    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535 (0: any free port), got {port!r}.")
    opened = isinstance(adata, str | Path)
    if opened:
        title = title or Path(adata).name
    adata, _, _ = _load(adata, mod, backed=True)  # a file: X stays on disk, read-only
    try:
        explorer = Explorer(adata, vectors_key=vectors_key, gene_symbols=gene_symbols)
        explorer.start_map()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the terminal
        server = ExplorerServer(explorer, host, port, title or "geneverse explore", close=adata if opened else None)
    except BaseException:
        if opened:
            _close(adata)
        raise
    if open_browser and can_open_browser():
        threading.Thread(target=lambda: (time.sleep(0.3), webbrowser.open(server.url)), daemon=True).start()
    return server


def can_open_browser() -> bool:
    """Whether a graphical browser can open here (over SSH without a display Python would start a text one)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _close(adata: Any) -> None:
    """Close the file of an AnnData read backed (the explorer's own), if any."""
    handle = getattr(adata, "file", None)
    if getattr(adata, "isbacked", False) and handle is not None:
        handle.close()
