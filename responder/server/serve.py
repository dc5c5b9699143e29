"""``serve()``: every listener of a configuration file, the engine, the key log, shutdown.

Strategy: :func:`serve` is the one place that opens sockets.  It builds the
:class:`~responder.server.engine.Engine` (the core, the clock, the SA nursery),
one :class:`~responder.server.connections.ConnectionTable` shared by every
stream listener, the TLS context when a ``tls`` listener exists, and the
Wireshark :class:`~responder.server.keylog.KeyLog` when ``keylog_dir`` is set
(the TLS NSS key log then goes to ``keylog_dir/tls-keys.log``).  Each listener
gets exactly one socket: ``tcp``/``tls`` through :func:`trio.open_tcp_listeners`
on the listener's address literal, ``udp`` through
:class:`~responder.server.udp.UdpListener` (port 500 plain IKE, any other port
the non-ESP marker).  Once all are bound it reports :class:`ServerInfo`, with
the ports actually bound (port 0 works), through ``task_status``.  With
``control_path`` set it also answers operators on that Unix socket
(:mod:`responder.server.control`), and with ``web`` set it serves the web
console (:mod:`responder.server.web`, its URL in :class:`ServerInfo`).  When a
child has ``backend = "tun"`` it makes the TUN device (:mod:`responder.server.tun`)
before the listeners, so a device it cannot make stops the start.  Each lab
impairment of ``settings.config.impair`` is logged at start as one ``IMPAIRMENT
ACTIVE`` warning.

Task layout (RFC 9329 §6.1, rows A26, A28): the SA nursery
(:meth:`Engine.run`) sits beside the listeners, never under a connection, so
an IKE SA outlives the connection it came on.  Stream listeners run one task
per connection in their own nursery and catch what goes wrong there; the UDP
task survives any datagram; the engine catches what the core raises.  So a
failure in one connection or SA never ends the server.

It runs until cancelled or until ``shutdown`` is set.  Then it deletes every
established IKE SA with an INFORMATIONAL Delete and waits up to
``settings.shutdown_grace`` for the answers (RFC 9329 row A24; the
listeners still carry them), closes the streams gracefully within
``settings.shutdown_timeout`` (:meth:`ConnectionTable.aclose_all`), stops
UDP and the SA tasks, and returns.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path as FilePath

import attrs
import trio

from responder.core.errors import LocalError
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.path import Transport
from responder.server.connections import ConnectionTable
from responder.server.contracts import EventObserver
from responder.server.control import Control, serve_control
from responder.server.engine import Engine
from responder.server.history import History
from responder.server.keylog import KeyLog
from responder.server.reload import Reloader
from responder.server.settings import Listener, ServerSettings
from responder.server.streams import serve_stream_listener
from responder.server.tls import server_context
from responder.server.tun import RouteWatch, TunDevice, tun_children
from responder.server.udp import UdpListener

__all__ = ["TLS_KEYLOG_NAME", "ServerInfo", "serve"]

logger = logging.getLogger("responder.server.serve")

TLS_KEYLOG_NAME = "tls-keys.log"  #: NSS key log of the TLS listeners, inside ``keylog_dir``


@attrs.frozen
class ServerInfo:
    """What a started server reports: its listeners with the ports bound, the TLS fingerprint."""

    listeners: tuple[Listener, ...]
    tls_fingerprint: str | None
    engine: Engine
    #: Reloads the configuration (``serve(load=...)``); ``None`` when the server cannot reload.
    reloader: Reloader | None = None
    web_url: str | None = None  #: the web console's address (``http://127.0.0.1:8080/``), if it runs


async def serve(
    settings: ServerSettings,
    *,
    task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED,
    random_bytes: Callable[[int], bytes] = os.urandom,
    ke_factory: KeyExchangeFactory | None = None,
    observers: Sequence[EventObserver] = (),
    shutdown: trio.Event | None = None,
    load: Callable[[], ServerSettings] | None = None,
) -> None:
    """Serve ``settings.listeners`` until cancelled or until ``shutdown`` is set; see the module doc.

    ``load`` builds the settings again from their sources: with it the server can
    reload its configuration (``ServerInfo.reloader``, the control socket's ``reload``;
    :mod:`responder.server.reload`).
    """
    keylog = KeyLog(settings.keylog_dir) if settings.keylog_dir is not None else None  # makes the dir 0700
    history = History(settings.web.history_messages, settings.web.history_closed) if settings.web else None
    tun_users = tun_children(settings.config)
    routes = RouteWatch() if tun_users else None  # the TUN device's routes follow the Child SAs
    try:
        engine = Engine(
            settings.config,
            random_bytes,
            ke_factory,
            (*observers, *(item for item in (keylog, history, routes) if item is not None)),
            log_lines_per_source=settings.log_lines_per_source,
            log_lines_max=settings.log_lines_max,
        )
        for line in settings.config.impair.describe():  # lab impairments: never silently
            logger.warning("IMPAIRMENT ACTIVE: %s", line)
        ssl_context, fingerprint = _tls(settings)
        table = ConnectionTable(settings, earned=engine.earned)
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            if routes is not None:
                await nursery.start(TunDevice(settings.tun, engine, routes, tuple(tun_users)).run)
            bound: list[Listener] = []
            udp_listeners: list[UdpListener] = []
            for listener in settings.listeners:
                note = ""
                if listener.kind.is_stream:
                    [socket_listener] = await _open_stream_listener(listener)
                    port = int(socket_listener.socket.getsockname()[1])
                    await nursery.start(
                        serve_stream_listener,
                        socket_listener,
                        listener.kind,
                        engine,
                        table,
                        settings,
                        ssl_context if listener.kind is Transport.TLS else None,
                    )
                else:
                    udp = await UdpListener.open(
                        listener.host,
                        listener.port,
                        log_lines_max=settings.log_lines_max,
                        receive_buffer=settings.udp_receive_buffer,
                    )
                    port = udp.local[1]
                    note = " (non-ESP marker, RFC 3948)" if udp.marker else " (plain IKE)"
                    await nursery.start(udp.serve, engine)
                    udp_listeners.append(udp)
                bound.append(Listener(listener.kind, listener.host, port))
                logger.info("listening on %s%s", bound[-1], note)
            reloader = Reloader(engine, settings, load) if load is not None else None
            if settings.control_path is not None:
                control = Control(engine, table, tuple(bound), tuple(udp_listeners), reloader=reloader)
                try:
                    await nursery.start(serve_control, settings.control_path, control)
                except LocalError as error:
                    if not settings.control_optional:
                        raise
                    logger.info("no control socket: %s", error)
            web_url = None
            if settings.web is not None and history is not None:
                from responder.server.web import serve_web  # Starlette and Hypercorn: only when asked for

                control = Control(engine, table, tuple(bound), tuple(udp_listeners))
                web_url = await nursery.start(serve_web, settings.web, control, history)
            task_status.started(ServerInfo(tuple(bound), fingerprint, engine, reloader, web_url))
            if shutdown is None:
                await trio.sleep_forever()
            await shutdown.wait()
            logger.info(
                "shutting down: deleting the IKE SAs (up to %.1f s for the answers)", settings.shutdown_grace
            )
            sent, unanswered = await engine.delete_all(settings.shutdown_grace)
            logger.info(
                "shutting down: %d IKE SAs deleted, %d Deletes unanswered; closing %d connections",
                sent - unanswered,
                unanswered,
                len(table),
            )
            await table.aclose_all(trio.current_time() + settings.shutdown_timeout)
            nursery.cancel_scope.cancel()
        logger.info("stopped")
    finally:
        if keylog is not None:
            keylog.close()


async def _open_stream_listener(listener: Listener) -> list[trio.SocketListener]:
    """Exactly one listening socket for ``listener`` (its host is an address literal)."""
    sockets = await trio.open_tcp_listeners(listener.port, host=listener.host)
    if len(sockets) != 1:
        for sock in sockets:
            await sock.aclose()
        raise OSError(f"{listener}: expected one socket, got {len(sockets)}")
    return sockets


def _tls(settings: ServerSettings) -> tuple[ssl.SSLContext | None, str | None]:
    """The TLS context and certificate fingerprint, if any listener needs TLS."""
    if not any(listener.kind is Transport.TLS for listener in settings.listeners):
        return None, None
    keylog_file: FilePath | None = None
    if settings.keylog_dir is not None:
        keylog_file = settings.keylog_dir / TLS_KEYLOG_NAME
    context, fingerprint = server_context(settings.tls_cert, settings.tls_key, keylog_file)
    logger.info("TLS certificate SHA-256 fingerprint %s", fingerprint)
    return context, fingerprint
