"""What only the Trio shell reads: listeners, TLS files, the key log, logging, stream limits.

Strategy: :class:`ServerSettings` wraps the core's
:class:`~responder.core.config.Config` (everything the protocol decides with)
and adds what only the shell uses to run it.  Like the core's values it
checks itself when built; errors are
:class:`~responder.core.errors.ConfigError` naming the field, which the TOML
loader (:mod:`responder.config_file`) and the command line translate into
their own key or flag names.
"""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path
from typing import Any, Final

import attrs

from responder.core.config import Config, ConfigError
from responder.core.path import Transport
from responder.core.tcp_framing import MAX_LENGTH

__all__ = ["DEFAULT_LISTENERS", "LOG_LEVELS", "Listener", "ServerSettings", "TunSettings", "WebSettings"]

#: Accepted ``log_level`` values (the :mod:`logging` level names, lower case).
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


# ---------------------------------------------------------------------------
# Listeners
# ---------------------------------------------------------------------------


def _check_kind(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Transport):
        raise ConfigError(f"expected a Transport, got {type(value).__name__}", attribute.name)


def _check_host(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {type(value).__name__}", attribute.name)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not an IP address", attribute.name) from None


def _normal_host(value: object) -> object:
    """An address literal in its one canonical spelling (``::0001`` is ``::1``), so duplicates show."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass  # _check_host reports it
    return value


def _check_port(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise ConfigError(f"must be an integer in 0..65535, got {value!r}", attribute.name)


@attrs.frozen
class Listener:
    """One socket the server listens on: ``kind://host:port``.

    ``host`` is an IP address literal (IPv6 without brackets here, with them
    in the text form); port 0 lets the system pick a free port (tests).  A
    ``udp`` listener takes IKE on UDP (non-ESP marker on ports other than
    500, RFC 3948); ``tcp`` RFC 9329 TCP encapsulation; ``tls`` the same
    inside TLS (RFC 9329 Appendix A).
    """

    kind: Transport = attrs.field(validator=_check_kind)
    host: str = attrs.field(converter=_normal_host, validator=_check_host)
    port: int = attrs.field(validator=_check_port)

    @classmethod
    def parse(cls, text: str) -> Listener:
        """``tcp://127.0.0.1:4500``, ``udp://0.0.0.0:500``, ``tls://[::1]:443``."""
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        scheme, sep, rest = text.partition("://")
        kinds = ", ".join(kind.value for kind in Transport)
        if not sep:
            raise ConfigError(f"{text!r} is not KIND://HOST:PORT (KIND is one of {kinds})")
        try:
            kind = Transport(scheme.lower())
        except ValueError:
            raise ConfigError(f"{text!r}: unknown kind {scheme!r} (expected one of {kinds})") from None
        if rest.startswith("["):
            host, bracket, after = rest[1:].partition("]")
            if not bracket:
                raise ConfigError(f"{text!r}: '[' without ']'")
            if not after.startswith(":"):
                raise ConfigError(f"{text!r} has no port")
            port_text = after[1:]
            try:
                address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(host)
            except ValueError:
                raise ConfigError(f"{text!r}: {host!r} in brackets is not an IPv6 address") from None
        else:
            host, colon, port_text = rest.rpartition(":")
            if not colon:
                raise ConfigError(f"{text!r} has no port")
            if ":" in host:
                raise ConfigError(
                    f"{text!r}: an IPv6 address needs brackets ({scheme}://[{host}]:{port_text})"
                )
            try:
                address = ipaddress.IPv4Address(host)
            except ValueError:
                raise ConfigError(
                    f"{text!r}: host {host!r} is not an IPv4 address or a bracketed IPv6 address"
                ) from None
        if not (
            port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and int(port_text) <= 0xFFFF
        ):
            raise ConfigError(f"{text!r}: port {port_text!r} is not a number in 0..65535")
        return cls(kind, str(address), int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind.value}://{host}:{self.port}"


#: Listeners of a file without ``responder.listen`` (and of ``ikev2-responder`` with no
#: arguments): RFC 9329 TCP and UDP with the non-ESP marker on port 4500 (RFC 9329 §2, row A3;
#: RFC 3948), loopback only, so nothing is exposed and no privilege is needed.
DEFAULT_LISTENERS: Final = (
    Listener(Transport.TCP, "127.0.0.1", 4500),
    Listener(Transport.UDP, "127.0.0.1", 4500),
)


# ---------------------------------------------------------------------------
# The file's settings
# ---------------------------------------------------------------------------


def _check_listeners(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(item, Listener) for item in value):
        raise ConfigError("expected a tuple of Listener", attribute.name)
    if not value:
        raise ConfigError("needs at least one listener", attribute.name)
    seen: dict[tuple[bool, str, int], Listener] = {}
    for index, listener in enumerate(value):
        key = (listener.kind.is_stream, listener.host, listener.port)
        earlier = seen.get(key)
        if earlier is not None and listener.port != 0:
            what = "repeats" if earlier == listener else "needs the same TCP port as"
            raise ConfigError(f"{listener} {what} {earlier}", f"{attribute.name}[{index}]")
        if listener.kind.is_stream and listener.port != 0:
            # A listening TCP socket on the wildcard address holds the port for every
            # address of its family: binding another one fails (EADDRINUSE), so say so now.
            address = ipaddress.ip_address(listener.host)
            for other in seen.values():
                other_address = ipaddress.ip_address(other.host)
                if (
                    other.kind.is_stream
                    and other.port == listener.port
                    and other_address.version == address.version
                    and address.is_unspecified != other_address.is_unspecified
                ):
                    raise ConfigError(
                        f"{listener} overlaps {other}: a TCP port on the wildcard address "
                        "covers every address of its family",
                        f"{attribute.name}[{index}]",
                    )
        seen[key] = listener


def _optional_path(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Path):
        raise ConfigError(f"expected a Path, got {type(value).__name__}", attribute.name)


def _count(minimum: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"expected an integer, got {type(value).__name__}", attribute.name)
        if value < minimum:
            raise ConfigError(f"must be at least {minimum}, got {value}", attribute.name)

    return check


def _seconds(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, float):
        raise ConfigError(f"expected a float, got {type(value).__name__}", attribute.name)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"must be a finite number of seconds > 0, got {value}", attribute.name)


def _seconds_or_zero(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, float):
        raise ConfigError(f"expected a float, got {type(value).__name__}", attribute.name)
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"must be a finite number of seconds >= 0, got {value}", attribute.name)


def _check_log_level(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in LOG_LEVELS:
        raise ConfigError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}", attribute.name)


# ---------------------------------------------------------------------------
# The web console
# ---------------------------------------------------------------------------


@attrs.frozen
class WebSettings:
    """The web console (:mod:`responder.server.web`): where it listens, what it keeps.

    It has no authentication and shows every SA's identities and exchanges,
    so a ``host`` that is not a loopback address needs ``allow_remote``.
    ``history_messages`` is how many messages of each IKE SA its ladder keeps
    (the latest), ``history_closed`` how many closed IKE SAs stay on show.
    """

    host: str = attrs.field(default="127.0.0.1", converter=_normal_host, validator=_check_host)
    port: int = attrs.field(default=8080, validator=_check_port)
    allow_remote: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    history_messages: int = attrs.field(default=100, validator=_count(1))
    history_closed: int = attrs.field(default=50, validator=_count(0))

    def __attrs_post_init__(self) -> None:
        if not self.allow_remote and not ipaddress.ip_address(self.host).is_loopback:
            raise ConfigError(
                f"{self.host} is not a loopback address, and the console has no authentication "
                "(it shows every SA): set web.allow_remote = true to serve it there",
                "host",
            )

    @classmethod
    def parse(cls, text: str, like: WebSettings | None = None, **more: Any) -> WebSettings:
        """``127.0.0.1:8080`` or ``[::1]:8080`` (port 0: any free port); the other fields are ``more``'s,
        else ``like``'s (``--web`` keeps what the file's ``[web]`` says beside ``listen``)."""
        if like is not None:
            more = {**attrs.asdict(like), **more}
            del more["host"], more["port"]
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        if "://" in text:
            raise ConfigError(f"{text!r}: give HOST:PORT without a scheme, as in 127.0.0.1:8080")
        try:
            listener = Listener.parse(f"tcp://{text}")
        except ConfigError as error:
            raise ConfigError(error.message.replace(repr(f"tcp://{text}"), repr(text))) from None
        return cls(listener.host, listener.port, **more)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


# ---------------------------------------------------------------------------
# The TUN device
# ---------------------------------------------------------------------------

#: The longest interface name Linux takes (IFNAMSIZ 16 with its NUL).
IFNAME_MAX: Final = 15


def _check_ifname(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {type(value).__name__}", attribute.name)
    if not 1 <= len(value.encode("utf-8", "replace")) <= IFNAME_MAX:
        raise ConfigError(f"an interface name has 1 to {IFNAME_MAX} octets, got {value!r}", attribute.name)
    if value in (".", "..") or any(c in value for c in "/:%") or not value.isprintable() or " " in value:
        raise ConfigError(f"{value!r} is not an interface name (no '/', ':', '%' or spaces)", attribute.name)


def _interfaces(value: object) -> object:
    """Addresses with their prefix (``10.99.0.1/24``) as :mod:`ipaddress` interfaces."""
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                try:
                    item = ipaddress.ip_interface(item.strip())
                except ValueError as exc:
                    raise ConfigError(str(exc), f"addresses[{index}]") from None
            items.append(item)
        return tuple(items)
    return value


def _check_interfaces(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    kinds = (ipaddress.IPv4Interface, ipaddress.IPv6Interface)
    if not isinstance(value, tuple) or not all(isinstance(item, kinds) for item in value):
        raise ConfigError("expected a tuple of IP interfaces (address/prefix)", attribute.name)
    for index, item in enumerate(value):
        if item.ip.is_multicast or item.ip.is_unspecified or item.ip.is_loopback:
            raise ConfigError(f"{item} cannot be a device's address", f"{attribute.name}[{index}]")
        if value.index(item) != index:
            raise ConfigError(f"{item} repeats", f"{attribute.name}[{index}]")


@attrs.frozen
class TunSettings:
    """The TUN device of the ``tun`` backend (:mod:`responder.server.tun`): one per responder,
    shared by every child with ``backend = "tun"``, made only when such a child exists.

    ``name`` is the interface name, ``addresses`` the device's own addresses
    with their prefixes (``10.99.0.1/24``, ``fd99::1/64``; none is fine: the
    routes to the peers' inner addresses are what the host needs), ``mtu`` its
    MTU: what the host sends through it becomes ESP with up to about 70 octets
    more (outer IP, UDP or TCP, ESP header, IV, padding, ICV), so it stays below
    the path's MTU by that much (IPv6 on the device needs at least 1280, RFC 8200 §5).
    """

    name: str = attrs.field(default="ikev2r0", validator=_check_ifname)
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = attrs.field(
        default=(), converter=_interfaces, validator=_check_interfaces
    )
    mtu: int = attrs.field(default=1400, validator=_count(68))

    def __attrs_post_init__(self) -> None:
        if self.mtu > 0xFFFF:
            raise ConfigError(f"must be at most 65535, got {self.mtu}", "mtu")
        if self.mtu < 1280 and any(item.version == 6 for item in self.addresses):
            raise ConfigError(
                f"an IPv6 address needs an MTU of at least 1280 (RFC 8200 §5), got {self.mtu}", "mtu"
            )


@attrs.frozen
class ServerSettings:
    """What the server runs with: the core's :class:`Config` plus what only the Trio shell reads.

    ``tls_cert``/``tls_key`` (PEM files, both or neither) serve the ``tls``
    listeners; without them a ``tls`` listener presents a self-signed
    certificate made at start (its fingerprint is logged and printed).
    ``keylog_dir`` set makes the server write Wireshark key tables there.
    Connection limits: ``connections_max`` streams in all,
    ``connections_per_source`` per remote address, ``buffer_per_connection``
    octets buffered per stream (at least one maximal RFC 9329 frame);
    ``prefix_timeout`` to receive the "IKETCP" prefix, ``first_frame_timeout``
    to receive the first whole frame after it; ``slow_reader_timeout`` for a
    full send queue to make room before the connection is closed as a peer
    that does not read; on shutdown, ``shutdown_grace``
    for the peers to answer the Delete of each IKE SA (RFC 9329 row A24, 0 to
    send the Deletes without waiting) and then ``shutdown_timeout`` for the
    streams to close before they are cut; all in seconds.  What peers can
    make us log at will (lines about IKE SAs that have not authenticated,
    drops, limit hits) is rate-limited: ``log_lines_per_source`` lines per 10
    seconds per source address and ``log_lines_max`` in all.  The RFC 9329
    §6.1 rules for connections that carry no live IKE SA or corrupt input are
    the core's (:class:`~responder.core.config.Limits`).  ``tun`` is the TUN
    device of children with ``backend = "tun"`` (:class:`TunSettings`).
    """

    config: Config = attrs.field(factory=Config, validator=attrs.validators.instance_of(Config))
    listeners: tuple[Listener, ...] = attrs.field(default=DEFAULT_LISTENERS, validator=_check_listeners)
    tls_cert: Path | None = attrs.field(default=None, validator=_optional_path)
    tls_key: Path | None = attrs.field(default=None, validator=_optional_path)
    keylog_dir: Path | None = attrs.field(default=None, validator=_optional_path)
    #: The control socket (:mod:`responder.server.control`); ``None``: none.
    control_path: Path | None = attrs.field(default=None, validator=_optional_path)
    #: The CLI's default socket: if it cannot be made, the server runs without one (logged).
    control_optional: bool = False
    log_level: str = attrs.field(default="info", validator=_check_log_level)
    connections_max: int = attrs.field(default=1000, validator=_count(1))
    connections_per_source: int = attrs.field(default=20, validator=_count(1))
    buffer_per_connection: int = attrs.field(default=131072, validator=_count(MAX_LENGTH))
    #: SO_RCVBUF of each UDP socket, in octets (``SO_RCVBUFFORCE`` when root); 0: the system's default.
    udp_receive_buffer: int = attrs.field(default=4 << 20, validator=_count(0))
    prefix_timeout: float = attrs.field(default=5.0, validator=_seconds)
    first_frame_timeout: float = attrs.field(default=10.0, validator=_seconds)
    shutdown_timeout: float = attrs.field(default=5.0, validator=_seconds)
    shutdown_grace: float = attrs.field(default=2.0, validator=_seconds_or_zero)
    slow_reader_timeout: float = attrs.field(default=10.0, validator=_seconds)
    log_lines_per_source: int = attrs.field(default=20, validator=_count(1))
    log_lines_max: int = attrs.field(default=200, validator=_count(1))
    #: The web console (``--web HOST:PORT``, ``[web]``); ``None``: none.
    web: WebSettings | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(WebSettings))
    )
    #: The TUN device of children with ``backend = "tun"`` (``[tun]``).
    tun: TunSettings = attrs.field(factory=TunSettings, validator=attrs.validators.instance_of(TunSettings))

    def __attrs_post_init__(self) -> None:
        if self.connections_per_source > self.connections_max:
            raise ConfigError(
                f"{self.connections_per_source} exceeds connections_max ({self.connections_max})",
                "connections_per_source",
            )
        if self.tls_key is None and self.tls_cert is not None:
            raise ConfigError("missing: a TLS certificate needs its private key", "tls_key")
        if self.tls_cert is None and self.tls_key is not None:
            raise ConfigError("missing: a TLS private key needs its certificate", "tls_cert")
