"""The live web console (``--web HOST:PORT``): the SA table, each SA's ladder, ``/metrics``.

Strategy: an ASGI application (:func:`console_app`, built with Starlette,
which runs on Trio through AnyIO) served by Hypercorn's Trio worker
(:func:`serve_web`) inside the server's nursery, so it shares the engine's
Trio run and reads the live objects directly, with no lock and no copy:

* ``/`` (``console.html``, ``console.js``, ``console.css``, shipped in
  ``responder/server/web_static/``, no build step and nothing fetched from
  elsewhere): one page that asks ``/api/state`` every second and the
  selected SA's ``/api/sas/SPI``, and draws them;
* ``/api/state``: the control socket's ``status`` and ``list-sas`` answers
  (:class:`~responder.server.control.Control`, the same code; at most
  :data:`SAS_SHOWN` SAs, asked every second), the closed IKE
  SAs still kept and the refused IKE_SA_INIT requests
  (:class:`~responder.server.history.History`);
* ``/api/sas/SPI`` (our SPI in hex): that SA's ``list-sas`` view, if it is
  still held, and its ladder;
* ``/metrics``: :func:`~responder.server.metrics.render_metrics`.

It only reads: nothing on it changes the responder (``terminate`` stays on
the control socket, whose 0600 mode says who may).  It has no
authentication, so :class:`~responder.server.settings.WebSettings` refuses an
address other than loopback unless ``allow_remote`` is set, and on loopback
a request must name a loopback host in its ``Host`` header (a web page
elsewhere cannot rebind a name of its own to 127.0.0.1 and read the SAs).
Every answer says ``Cache-Control: no-store``; the page's
``Content-Security-Policy`` allows only its own scripts and styles.

Shutdown: the server's nursery cancels it with everything else; a
console left open in a browser then stops updating, and says so.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from responder.core.errors import LocalError
from responder.server.control import Control, sa_view
from responder.server.history import History
from responder.server.metrics import CONTENT_TYPE, render_metrics
from responder.server.settings import WebSettings

__all__ = ["SAS_SHOWN", "STATIC", "console_app", "serve_web"]

logger = logging.getLogger("responder.server.web")
_http_logger = logging.getLogger("responder.server.web.http")
# Hypercorn announces its sockets ("... (CTRL + C to quit)"); serve_web says it in its own words.
_http_logger.addFilter(lambda record: not str(record.msg).startswith("Running on"))

#: The page's files: name -> media type.
STATIC: Final = {
    "console.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
_LOOPBACK_NAMES: Final = ("localhost", "127.0.0.1", "::1", "[::1]")
REFUSALS_SHOWN: Final = 20  #: refused IKE_SA_INIT requests on the page, newest first
SAS_SHOWN: Final = 500  #: IKE SAs in /api/state (oldest first; ``status`` counts them all)


def _static(name: str) -> bytes:
    return (resources.files("responder.server") / "web_static" / name).read_bytes()


def console_app(
    control: Control, history: History, settings: WebSettings, wall_clock: Callable[[], float] = time.time
) -> Starlette:
    """The console as an ASGI application (see the module docstring)."""
    pages = {name: (_static(name), media) for name, media in STATIC.items()}

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "console.html")
        if name not in pages:
            return Response("not found\n", 404, headers=_HEADERS, media_type="text/plain")
        body, media = pages[name]
        return Response(body, headers=_HEADERS, media_type=media)

    async def state(_request: Request) -> Response:
        return JSONResponse(
            {
                "now": wall_clock(),
                "status": control.status(),
                "sas": control.list_sas(SAS_SHOWN),
                "closed": [record.summary() for record in history.closed_records()],
                "refusals": history.refusals()[:REFUSALS_SHOWN],
            },
            headers=_HEADERS,
        )

    async def one_sa(request: Request) -> Response:
        text = request.path_params["spi"]
        try:
            local_spi = bytes.fromhex(text)
        except ValueError:
            local_spi = b""
        sa = control.engine.sa(local_spi) if local_spi else None
        record = history.record(local_spi) if local_spi else None
        if sa is None and record is None:
            return JSONResponse({"error": f"no IKE SA {text!r}"}, 404, headers=_HEADERS)
        esp = control.engine.stats.esp_per_sa.get(local_spi, 0)
        view = sa_view(sa, control.clock(), esp, control.engine.esp_sa) if sa is not None else None
        return JSONResponse(
            {"now": wall_clock(), "sa": view, "ladder": record.ladder() if record is not None else None},
            headers=_HEADERS,
        )

    async def metrics(_request: Request) -> Response:
        return Response(render_metrics(control, history), headers=_HEADERS, media_type=CONTENT_TYPE)

    middleware = []
    if not settings.allow_remote:
        hosts = sorted({*_LOOPBACK_NAMES, settings.host, f"[{settings.host}]"})
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    routes = [
        Route("/", page),
        Route("/api/state", state),
        Route("/api/sas/{spi}", one_sa),
        Route("/metrics", metrics),
        Route("/{name}", page),
    ]
    return Starlette(routes=routes, middleware=middleware)


async def serve_web(
    settings: WebSettings,
    control: Control,
    history: History,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the console on ``settings``' address until cancelled; reports its URL through ``task_status``.

    A socket that cannot be bound is a :class:`LocalError` naming the address.
    """
    config = HypercornConfig()
    config.bind = [str(settings)]
    config.accesslog = None
    config.errorlog = _http_logger
    config.graceful_timeout = 1.0
    app: Any = console_app(control, history, settings)
    async with trio.open_nursery() as nursery:
        try:
            binds: list[str] = await nursery.start(functools.partial(hypercorn_serve, app, config))
        except* OSError as group:
            error: BaseException = group
            while isinstance(error, BaseExceptionGroup):  # Hypercorn's nurseries nest it
                error = error.exceptions[0]
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise LocalError(f"web console on {settings}: {reason}") from None
        url = binds[0] + "/"
        logger.info("web console on %s", url)
        task_status.started(url)
