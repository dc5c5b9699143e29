"""A responder for tests: in-process, on ephemeral ports, with trustme certificates and a client factory.

Strategy: :func:`open_lab` is an async context manager that runs
:func:`responder.server.serve` in a nursery of its own with a TCP, a TLS and a
UDP listener on 127.0.0.1 port 0 (or the transports asked for), a TLS
certificate for :data:`SERVER_NAME` from a fresh :mod:`trustme` CA, one lab
PSK that any initiator identity may use, the same certificate for IKE with
any client certificate from that CA accepted (lab certificate mode; see
:meth:`Lab.certificate_settings`), or the :class:`Config` given, and
an observer that records every event.  It yields a :class:`Lab`: where each
listener is, the credentials, the CA, the recorder, the engine, and
:meth:`Lab.client`, which establishes an IKE SA with those credentials using
the project's initiator (:mod:`responder.client`).  Leaving the block stops
the server.

The pytest plugin (:mod:`responder.pytest_plugin`, registered through the
``pytest11`` entry point) offers it as the ``ikev2_lab`` and
``ikev2_lab_factory`` fixtures; a program can use it directly.  trustme is a
test dependency: it is imported only here, when a lab opens.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from responder.client import Client, establish
from responder.core.config import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    Config,
    Credential,
    EspProposal,
    IkeProposal,
    Secret,
    TrafficSelectorPolicy,
    TrustStore,
)
from responder.core.events import Event
from responder.core.identity import Identity
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.path import Path as IkePath
from responder.core.path import Transport
from responder.core.selectors import to_selector
from responder.server import ServerInfo, serve
from responder.server.engine import Engine
from responder.server.settings import Listener, ServerSettings

__all__ = [
    "CLIENT_CERT_ID",
    "CLIENT_ID",
    "LAB_PSK",
    "SERVER_NAME",
    "EventRecorder",
    "Lab",
    "open_lab",
    "trustme_credential",
]

SERVER_NAME: Final = "responder.test"  #: the TLS certificate's name (and 127.0.0.1)
LAB_PSK: Final = "lab key for tests, never for real traffic"  #: the default PSK, for any identity
CLIENT_ID: Final = "@client.test"  #: the identity :meth:`Lab.client` uses by default
CLIENT_CERT_ID: Final = "client.test"  #: the identity of :meth:`Lab.certificate_settings` (its DNS SAN)
HOST: Final = "127.0.0.1"


@attrs.define(eq=False)
class EventRecorder:
    """An observer that keeps every event of the responder's core with the path of its SA."""

    seen: list[tuple[Event, IkePath | None]] = attrs.Factory(list)
    _changed: trio.Event = attrs.Factory(trio.Event)

    def observe(self, event: Event, path: IkePath | None) -> None:
        self.seen.append((event, path))
        self._changed.set()

    @property
    def events(self) -> list[Event]:
        return [event for event, _ in self.seen]

    def of(self, kind: type[Event]) -> list[Event]:
        """The events of one kind (``IkeSaEstablished``, ``ChildSaRefused``, ...), in order."""
        return [event for event in self.events if isinstance(event, kind)]

    async def wait_for(
        self, kind: type[Event], where: Callable[[Event], bool] = lambda _: True, timeout: float = 10.0
    ) -> Event:
        """The first event of ``kind`` (already seen or still to come) for which ``where`` holds."""
        with trio.fail_after(timeout):
            while True:
                for event in self.of(kind):
                    if where(event):
                        return event
                self._changed = trio.Event()
                await self._changed.wait()


@attrs.define(eq=False)
class Lab:
    """A running responder and what a test needs to talk to it."""

    info: ServerInfo
    settings: ServerSettings
    psk: Secret
    ca: Any  #: the :class:`trustme.CA` that issued the TLS certificate
    recorder: EventRecorder

    @property
    def engine(self) -> Engine:
        return self.info.engine

    def address(self, transport: Transport) -> tuple[str, int]:
        """Host and port of the listener of ``transport``."""
        for listener in self.info.listeners:
            if listener.kind is transport:
                return listener.host, listener.port
        raise LookupError(f"this lab has no {transport.value} listener")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the lab's CA (for :data:`SERVER_NAME` or 127.0.0.1)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def initiator_settings(
        self,
        *,
        identity: str = CLIENT_ID,
        ike: Sequence[str] = (),
        esp: Sequence[str] = (),
        childless: bool = False,
        **more: Any,
    ) -> InitiatorSettings:
        """What :meth:`client` proposes: the lab's PSK, ``identity``, the default proposals or
        ``ike``/``esp`` (strongSwan syntax), one Child SA for any IPv4 traffic unless ``childless``."""
        ike_proposals = tuple(IkeProposal.parse(text) for text in ike) or DEFAULT_IKE_PROPOSALS
        esp_proposals = tuple(EspProposal.parse(text) for text in esp) or DEFAULT_ESP_PROPOSALS
        anything = (to_selector(TrafficSelectorPolicy.any(4)),)
        child = None if childless else ChildRequest(esp_proposals, anything, anything)
        return InitiatorSettings(ike_proposals, Identity.parse(identity), self.psk, child=child, **more)

    def certificate_settings(self, *, identity: str = CLIENT_CERT_ID, **more: Any) -> InitiatorSettings:
        """:meth:`initiator_settings` authenticating with a fresh certificate from the lab's CA
        for ``identity`` (an FQDN, an e-mail address or an IP address: its subjectAltName),
        and checking the responder's certificate against that CA (RFC 7296 §3.8, RFC 7427)."""
        leaf = self.ca.issue_cert(identity)
        anchors = (x509.load_pem_x509_certificate(self.ca.cert_pem.bytes()),)
        more.setdefault("credential", trustme_credential(leaf))
        more.setdefault("trust", TrustStore(anchors))
        settings = self.initiator_settings(identity=identity, **more)
        return attrs.evolve(settings, psk=None)

    async def client(
        self, transport: Transport = Transport.TCP, settings: InitiatorSettings | None = None, **options: Any
    ) -> Client:
        """An IKE SA from the project's initiator over ``transport`` (TLS verified against the lab's CA).

        ``settings`` defaults to :meth:`initiator_settings`; ``options`` go to
        :func:`responder.client.establish` (``timeout``, ``random_bytes``, ...).
        The caller closes the client (``async with``).
        """
        host, port = self.address(transport)
        if transport is Transport.TLS:
            options.setdefault("ssl_context", self.ssl_context())
            options.setdefault("server_hostname", SERVER_NAME)
        return await establish(
            settings or self.initiator_settings(), Config(), transport, host, port, **options
        )


def trustme_credential(leaf: Any) -> Credential:
    """A trustme ``LeafCert`` as our :class:`Credential` (chain leaf first, its key)."""
    chain = tuple(x509.load_pem_x509_certificate(blob.bytes()) for blob in leaf.cert_chain_pems)
    key = load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    return Credential(chain, key)  # type: ignore[arg-type]


@asynccontextmanager
async def open_lab(
    directory: Path | None = None,
    *,
    transports: Sequence[Transport] = (Transport.TCP, Transport.TLS, Transport.UDP),
    config: Config | None = None,
    psk: str = LAB_PSK,
    **server_settings: Any,
) -> AsyncIterator[Lab]:
    """Run a responder for the block; see the module docstring.

    ``directory`` holds the TLS certificate and key (a temporary one by
    default).  ``config`` replaces the default :class:`Config` (then ``psk``
    is only what :meth:`Lab.client` uses); without it any identity
    authenticates with ``psk``.  ``server_settings`` are further
    :class:`ServerSettings` keys (``connections_max``, ``keylog_dir``, ...).
    """
    import trustme  # a test dependency: only when a lab opens

    secret = Secret.parse(psk)
    ca = trustme.CA()
    leaf = ca.issue_cert(SERVER_NAME, HOST)
    with tempfile.TemporaryDirectory(prefix="ikev2-lab-") as scratch:
        where = directory or Path(scratch)
        cert, key = where / "lab-cert.pem", where / "lab-key.pem"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        credential = trustme_credential(leaf)
        anchors = (x509.load_pem_x509_certificate(ca.cert_pem.bytes()),)
        default = Config(any_id_psk=secret, credential=credential, trust=TrustStore(anchors), lab_pubkey=True)
        settings = ServerSettings(
            config=config if config is not None else default,
            listeners=tuple(Listener(kind, HOST, 0) for kind in transports),
            tls_cert=cert if Transport.TLS in transports else None,
            tls_key=key if Transport.TLS in transports else None,
            **server_settings,
        )
        recorder = EventRecorder()
        async with trio.open_nursery() as nursery:
            info: ServerInfo = await nursery.start(
                lambda task_status: serve(settings, observers=(recorder,), task_status=task_status)
            )
            yield Lab(info, settings, secret, ca, recorder)
            nursery.cancel_scope.cancel()
