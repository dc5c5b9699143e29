"""Where a message travels: the transport, both addresses and ports, the stream connection.

Strategy: the shell reports with every message the :class:`Path` it came on;
the core never guesses a transport or an address.  An IKE SA keeps the path of
the last valid message it received and sends its own requests there (RFC 9329
§6.1, rows A28, A36); a response goes back on the path of its request.  What
the core wants sent leaves it as an :class:`Outgoing`: an unframed IKE message
or an ESP packet with the path to send it on (the shell adds the RFC 9329
Length and the non-ESP marker, RFC 3948).
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address, IPv6Address

import attrs

__all__ = ["Outgoing", "Path", "Transport"]

IPAddress = IPv4Address | IPv6Address


class Transport(enum.Enum):
    """How a message travelled; the shell reports it, the core never guesses."""

    UDP = "udp"  #: UDP 500 (plain) or 4500 and others (non-ESP marker, RFC 3948)
    TCP = "tcp"  #: RFC 9329 TCP encapsulation
    TLS = "tls"  #: RFC 9329 inside TLS (Appendix A)

    @property
    def is_stream(self) -> bool:
        return self is not Transport.UDP


@attrs.frozen(slots=True)
class Path:
    """Where a message came from or goes to.

    ``connection`` identifies the TCP/TLS connection (an opaque number the
    shell chooses); it is ``None`` for UDP.
    """

    transport: Transport
    local_address: IPAddress
    local_port: int
    remote_address: IPAddress
    remote_port: int
    connection: int | None = None

    def describe(self) -> str:
        return f"{self.transport.value} {self.remote_address}:{self.remote_port}"


@attrs.frozen(slots=True)
class Outgoing:
    """An IKE message (unframed: no non-ESP marker, no RFC 9329 Length) or an ESP packet to send.

    ``esp`` marks an ESP packet (RFC 4303): on a stream it is framed without
    the non-ESP marker (RFC 9329 §3.2), on UDP it is sent as it is (RFC 3948 §2.1).
    """

    path: Path
    data: bytes
    esp: bool = False
    #: ESP over UDP: the outer header's traffic class octet (IPv4 TOS, IPv6 Traffic Class: DSCP
    #: and ECN) to send with; 0 leaves the socket's default (RFC 4301 §5.1.2.1, RFC 6040 §4.1).
    tos: int = 0
    #: ESP over UDP with an IPv4 outer header: the DF bit to send with; ``None``: the socket's
    #: default (RFC 4301 §8.1).
    df: bool | None = None
