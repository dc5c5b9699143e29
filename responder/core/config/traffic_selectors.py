"""Traffic selectors of local policy, in strongSwan's notation (RFC 7296 §3.13.1).

Strategy: a :class:`TrafficSelectorPolicy` is one range of addresses with an
IP protocol (0: any) and a port range, written as strongSwan writes it
(``10.0.0.0/24``, ``192.0.2.1-192.0.2.9[tcp/443]``, ``::/0[icmpv6]``); ``str()``
parses back to an equal value.  Narrowing the peer's selectors against these
is :mod:`responder.core.selectors`' job.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final, TypeAlias

import attrs

from responder.core.errors import ConfigError
from responder.core.validation import ascii_number, check_text, instance_of, is_int

__all__ = ["ANY_IPV4", "ANY_IPV6", "TrafficSelectorPolicy"]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


_PROTOCOL_NAMES: Final = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
}
_PROTOCOL_OF_NUMBER: Final = {number: name for name, number in reversed(_PROTOCOL_NAMES.items())}


def _check_end_address(
    instance: TrafficSelectorPolicy, attribute: attrs.Attribute[Any], value: object
) -> None:
    if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise ConfigError(f"expected an IP address, got {type(value).__name__}", attribute.name)
    if value.version != instance.start_address.version:
        raise ConfigError("start and end addresses are of different IP versions", attribute.name)
    if int(value) < int(instance.start_address):
        raise ConfigError(f"{value} is below start_address {instance.start_address}", attribute.name)


def _uint(limit: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not is_int(value) or not 0 <= value <= limit:  # type: ignore[operator]
            raise ConfigError(f"must be an integer in 0..{limit}, got {value!r}", attribute.name)

    return check


def _check_end_port(instance: TrafficSelectorPolicy, attribute: attrs.Attribute[Any], value: object) -> None:
    _uint(0xFFFF)(instance, attribute, value)
    assert isinstance(value, int)
    if value < instance.start_port:
        raise ConfigError(f"{value} is below start_port {instance.start_port}", attribute.name)
    if instance.ip_protocol == 0 and (instance.start_port, value) != (0, 0xFFFF):
        raise ConfigError(
            "ports need a protocol (RFC 7296 §3.13.1: protocol 0 means all ports)", "ip_protocol"
        )


def _parse_port_range(text: str, original: str) -> tuple[int, int]:
    if text in ("", "%any"):
        return 0, 0xFFFF
    low, dash, high = text.partition("-")
    start = ascii_number(low)
    end = ascii_number(high) if dash else start
    if start is None or end is None:
        raise ConfigError(f"selector {original!r}: port {text!r} is not a number or range")
    if not (0 <= start <= end <= 0xFFFF):
        raise ConfigError(f"selector {original!r}: port range {text!r} is not within 0..65535 and ordered")
    return start, end


@attrs.frozen
class TrafficSelectorPolicy:
    """A range of traffic a Child SA may carry: addresses, IP protocol (0 = any), ports.

    Policy ranges are always ordered; the OPAQUE port form (65535..0) is
    something only peers send.  ICMP type and code travel in the ports as one
    16-bit number (RFC 7296 §3.13.1); give them that way.
    """

    start_address: IPAddress = attrs.field(
        validator=instance_of((ipaddress.IPv4Address, ipaddress.IPv6Address), "an IP address")
    )
    end_address: IPAddress = attrs.field(validator=_check_end_address)
    ip_protocol: int = attrs.field(default=0, validator=_uint(0xFF))
    start_port: int = attrs.field(default=0, validator=_uint(0xFFFF))
    end_port: int = attrs.field(default=0xFFFF, validator=_check_end_port)

    @property
    def version(self) -> int:
        return self.start_address.version

    @classmethod
    def any(cls, version: int) -> TrafficSelectorPolicy:
        """Every address of one IP version, any protocol and port."""
        return ANY_IPV4 if version == 4 else ANY_IPV6

    @classmethod
    def host(cls, address: IPAddress) -> TrafficSelectorPolicy:
        """One address, any protocol and port (a leased virtual IP, say)."""
        return cls(address, address)

    @classmethod
    def parse(cls, text: str) -> TrafficSelectorPolicy:
        """strongSwan's selector syntax.

        The address part is ``net/prefix`` (host bits must be zero), one
        address, or ``first-last``; an optional ``[proto]``, ``[proto/port]``
        or ``[proto/low-high]`` follows, where ``proto`` is a name (``tcp``,
        ``udp``, ``icmp``, ``icmpv6``, ...), a number or ``%any`` and the port
        may be ``%any``.
        """
        check_text(text)
        if not isinstance(text, str):
            raise ConfigError(f"expected a string, got {type(text).__name__}")
        match = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[([^\]]*)\])?\s*", text)
        if match is None:
            raise ConfigError(f"selector {text!r} is not 'addresses' or 'addresses[proto/port]'")
        addresses, extra = match.group(1), match.group(2)
        try:
            if "/" in addresses:
                network = ipaddress.ip_network(addresses)
                start: IPAddress = network.network_address
                end: IPAddress = network.broadcast_address
            elif "-" in addresses:
                low, _dash, high = addresses.partition("-")
                start, end = ipaddress.ip_address(low), ipaddress.ip_address(high)
            else:
                start = end = ipaddress.ip_address(addresses)
        except ValueError as exc:
            raise ConfigError(f"selector {text!r}: {exc}") from None
        protocol, start_port, end_port = 0, 0, 0xFFFF
        if extra is not None:
            proto_text, _slash, port_text = extra.strip().partition("/")
            proto_text = proto_text.strip().lower()
            if proto_text in ("", "%any", "any"):
                protocol = 0
            elif proto_text in _PROTOCOL_NAMES:
                protocol = _PROTOCOL_NAMES[proto_text]
            elif (number := ascii_number(proto_text)) is not None and number <= 0xFF:
                protocol = number
            else:
                raise ConfigError(f"selector {text!r}: unknown protocol {proto_text!r}")
            start_port, end_port = _parse_port_range(port_text.strip().lower(), text)
            if protocol == 0 and (start_port, end_port) != (0, 0xFFFF):
                raise ConfigError(f"selector {text!r}: a port needs a protocol")
        if start.version != end.version:
            raise ConfigError(f"selector {text!r}: range mixes IPv4 and IPv6")
        if int(end) < int(start):
            raise ConfigError(f"selector {text!r}: range runs backwards")
        return cls(start, end, protocol, start_port, end_port)

    def __str__(self) -> str:
        start, end = self.start_address, self.end_address
        if isinstance(start, ipaddress.IPv4Address) and isinstance(end, ipaddress.IPv4Address):
            networks: list[Any] = list(ipaddress.summarize_address_range(start, end))
        elif isinstance(start, ipaddress.IPv6Address) and isinstance(end, ipaddress.IPv6Address):
            networks = list(ipaddress.summarize_address_range(start, end))
        else:  # pragma: no cover - excluded by the validators
            networks = []
        text = str(networks[0]) if len(networks) == 1 else f"{start}-{end}"
        if self.ip_protocol == 0:
            return text
        proto = _PROTOCOL_OF_NUMBER.get(self.ip_protocol, str(self.ip_protocol))
        if (self.start_port, self.end_port) == (0, 0xFFFF):
            return f"{text}[{proto}]"
        ports = (
            str(self.start_port) if self.start_port == self.end_port else f"{self.start_port}-{self.end_port}"
        )
        return f"{text}[{proto}/{ports}]"


ANY_IPV4: Final = TrafficSelectorPolicy(ipaddress.IPv4Address(0), ipaddress.IPv4Address(2**32 - 1))
ANY_IPV6: Final = TrafficSelectorPolicy(
    ipaddress.IPv6Address("::"), ipaddress.IPv6Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
)
