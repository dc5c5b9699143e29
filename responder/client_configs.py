"""The client configurations ``ikev2-responder`` prints at start, ready to paste.

Strategy: pure functions of the bound listeners and the
:class:`~responder.cli.Invocation`.  :func:`render_start` prints, between
``=====`` lines, the listeners, the lab PSK, a **libreswan** ``ipsec.conf``
connection and ``ipsec.secrets`` line for each TCP listener (RFC 9329;
libreswan is the packaged TCP initiator), a **strongSwan** ``swanctl.conf``
connection for each UDP listener (strongSwan has no IKE over TCP), and for
TLS listeners the certificate fingerprint and how to get there (libreswan has
no TLS: a stand-in wraps its stream).  Only secrets that came from the
command line or were generated are printed; keys from the file are referred
to by their key path.  The rules the snippets follow (checked against pluto
4.10 and charon 5.9.8) are in :mod:`responder.cli`'s docstring, step 3.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import attrs

from responder import __version__
from responder.core.config import (
    LAB_PEER_NAME,
    ChildConfig,
    EspProposal,
    Identity,
    IdPatternKind,
    IkeProposal,
    PeerConfig,
    PskAuth,
    Secret,
)
from responder.core.enums import IdType
from responder.core.path import Transport
from responder.server.settings import Listener

if TYPE_CHECKING:
    from responder.cli import Invocation

__all__ = [
    "LAB_CLIENT_ID",
    "ClientView",
    "client_view",
    "libreswan_id",
    "libreswan_snippet",
    "render_start",
    "secret_text",
    "swanctl_snippet",
    "tls_note",
]

#: The identity the printed client configurations use in lab mode (any identity would do).
LAB_CLIENT_ID: Final = Identity.parse("@client.lab")

_RULE: Final = "=" * 5


def secret_text(secret: Secret) -> str:
    """The secret as libreswan's ipsec.secrets and swanctl.conf both read it: ``"text"`` or ``0x<hex>``."""
    try:
        text = secret.value.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    plain = text.isprintable() and not any(c in text for c in '"\\') and text[:2].lower() not in ("0x", "0s")
    return f'"{text}"' if text and plain else "0x" + secret.value.hex()


def libreswan_id(identity: Identity) -> str:
    """An identity in libreswan's ``leftid``/``rightid`` notation."""
    if identity.id_type is IdType.ID_FQDN:
        return "@" + identity.data.decode("utf-8", "backslashreplace")
    if identity.id_type is IdType.ID_KEY_ID:
        return "@#" + identity.data.hex()
    if identity.id_type is IdType.ID_DER_ASN1_DN:
        return _quoted(str(identity))
    return str(identity)  # user@host, IP addresses


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@attrs.frozen
class ClientView:
    """What a client needs to know to authenticate to this responder (for the printed snippets).

    ``client_id`` is the identity the client should use (``None``: one
    matching ``client_id_hint``), ``secret`` the PSK to show (``None``:
    ``secret_hint`` says where it is), ``responder_id`` the identity we
    present (``None``: the address the client connects to).
    """

    client_id: Identity | None
    client_id_hint: str
    secret: Secret | None = attrs.field(repr=False)
    secret_hint: str
    responder_id: Identity | None
    ike_proposals: tuple[IkeProposal, ...]
    esp_proposals: tuple[EspProposal, ...]


def client_view(invocation: Invocation) -> ClientView:
    """The client the snippets describe: lab mode when a lab PSK exists, else the first peer."""
    config = invocation.settings.config
    where = f" in {invocation.config_file}" if invocation.config_file is not None else ""
    peer: PeerConfig | None = None
    client_id: Identity | None = LAB_CLIENT_ID
    hint = ""
    if config.any_id_psk is not None:
        peer = config.find_peer(LAB_CLIENT_ID)
    elif config.peers:
        peer = config.peers[0]
        pattern = peer.remote_id
        if pattern.kind is IdPatternKind.EXACT and pattern.identity is not None:
            client_id = pattern.identity
        else:
            client_id, hint = None, f"<an identity matching {pattern}>"
    secret: Secret | None = None
    secret_hint = "<no PSK configured>"  # noqa: S105 - a placeholder, not a secret
    children: tuple[ChildConfig, ...] = config.lab_children
    responder_id = config.local_id
    if peer is not None:
        children = peer.children
        responder_id = peer.local_id or config.local_id
        if peer.name == LAB_PEER_NAME:
            if invocation.shown_psk is not None and peer.auth == PskAuth(invocation.shown_psk):
                secret = invocation.shown_psk
            secret_hint = f"<lab.any_id_psk{where}>"
        else:
            secret_hint = f"<peers.{peer.name}.psk{where}>"
    return ClientView(
        client_id,
        hint,
        secret,
        secret_hint,
        responder_id,
        config.ike_proposals,
        children[0].esp_proposals,
    )


def _reachable(listener: Listener) -> tuple[str, str]:
    """The address a client connects to, and a comment when it had to be guessed (wildcard)."""
    address = ipaddress.ip_address(listener.host)
    if not address.is_unspecified:
        return str(address), ""
    loopback = "127.0.0.1" if address.version == 4 else "::1"
    return loopback, f"the responder listens on every IPv{address.version} address: use the one you reach"


def _names(prefix: str, count: int) -> list[str]:
    return [prefix if index == 0 else f"{prefix}-{index + 1}" for index in range(count)]


#: The comment under ``left=%defaultroute`` in the printed libreswan connection.
_LIBRESWAN_NO_DEFAULT_ROUTE: Final = (
    "    # no default route on the client (a lab namespace)? then left=<the client's own address>"
)
#: The comment atop a printed libreswan connection to a loopback address (pluto refuses one).
_LIBRESWAN_LOOPBACK: Final = (
    '    # pluto refuses an address of its own host ("... are not usable"): serve an address it\n'
    "    # reaches from another machine or network namespace (--tcp ADDRESS:PORT) and put it in right="
)


def libreswan_snippet(listeners: Sequence[Listener], view: ClientView) -> tuple[str, str]:
    """libreswan ``ipsec.conf`` connections (one per TCP listener) and the ``ipsec.secrets`` lines."""
    tcp = [listener for listener in listeners if listener.kind is Transport.TCP]
    client = libreswan_id(view.client_id) if view.client_id is not None else view.client_id_hint
    secret = secret_text(view.secret) if view.secret is not None else view.secret_hint
    conf: list[str] = []
    secret_lines: list[str] = []
    for name, listener in zip(_names("ikev2-lab-tcp", len(tcp)), tcp, strict=True):
        address, note = _reachable(listener)
        conf.append(f"conn {name}")
        if ipaddress.ip_address(address).is_loopback:
            conf.append(_LIBRESWAN_LOOPBACK)
        conf += [
            "    ikev2=insist",
            "    enable-tcp=yes",
            f"    tcp-remoteport={listener.port}",
            "    authby=secret",
            # %defaultroute: the address of the route to the default gateway, right for most
            # clients; pluto cannot resolve it on a machine without a default route.
            "    left=%defaultroute",
            _LIBRESWAN_NO_DEFAULT_ROUTE,
            f"    leftid={client}",
            f"    right={address}" + (f"  # {note}" if note else ""),
        ]
        if view.responder_id is not None:
            conf.append(f"    rightid={libreswan_id(view.responder_id)}")
            right_id = libreswan_id(view.responder_id)
        else:
            conf.append("    # rightid: the responder identifies itself by the address you connect to")
            right_id = address
        conf += ["    auto=add", ""]
        line = f"{client} {right_id} : PSK {secret}"
        if line not in secret_lines:
            secret_lines.append(line)
    conf.append(
        "# ike=/esp=: libreswan's defaults overlap the responder's proposals; "
        "start with: ipsec auto --up " + _names("ikev2-lab-tcp", 1)[0]
    )
    return "\n".join(conf) + "\n", "\n".join(secret_lines) + "\n"


def _udp_connections(listeners: Sequence[Listener]) -> list[tuple[Listener, Listener | None]]:
    """The UDP listeners a client gets one connection each for: ``(first, floated_to)``.

    A port-500 listener and a port-4500 listener on the same address make
    *one* connection: charon starts on 500 and moves to 4500 by itself once it
    finds a NAT or uses MOBIKE (RFC 7296 §2.23), so ``floated_to`` is the
    4500 listener.  Every other UDP listener is a connection of its own.
    """
    udp = [listener for listener in listeners if listener.kind is Transport.UDP]
    partner: dict[int, int] = {}  # index of a port-500 listener -> index of its port-4500 listener
    for first, listener in enumerate(udp):
        if listener.port != 500:
            continue
        address = ipaddress.ip_address(listener.host)
        for second, other in enumerate(udp):
            if (
                other.port == 4500
                and ipaddress.ip_address(other.host) == address
                and second not in partner.values()
            ):
                partner[first] = second
                break
    floated = set(partner.values())
    return [
        (listener, udp[partner[index]] if index in partner else None)
        for index, listener in enumerate(udp)
        if index not in floated
    ]


#: charon's NAT-T port in the printed configuration when it runs on the responder's host.
_SAME_HOST_NAT_T_PORT: Final = 14500
#: Comment lines of a printed strongSwan connection to a loopback address (charon on this host).
_SWANCTL_SAME_HOST: Final = [
    "        # charon on the responder's host: ports 500/4500 may be the responder's; in strongswan.conf",
    f"        # set charon {{ port = 0  port_nat_t = {_SAME_HOST_NAT_T_PORT} }} (port = 0: any free port)",
]


def swanctl_snippet(listeners: Sequence[Listener], view: ClientView) -> str:
    """strongSwan ``swanctl.conf`` connections and their secret.

    One connection per UDP listener, except that a 500 + 4500 pair on one
    address is one connection (see :func:`_udp_connections`); each
    connection's child has a name of its own (``lab``, ``lab-2``, ...) so that
    ``swanctl --initiate --child NAME`` picks exactly one.
    """
    connections = _udp_connections(listeners)
    client = _quoted(str(view.client_id)) if view.client_id is not None else view.client_id_hint
    names = _names("ikev2-lab-udp", len(connections))
    children = _names("lab", len(connections))
    lines = ["connections {"]
    for name, child, (listener, floated_to) in zip(names, children, connections, strict=True):
        address, note = _reachable(listener)
        lines += [f"    {name} {{", "        version = 2"]
        lines.append(f"        remote_addrs = {address}" + (f"  # {note}" if note else ""))
        same_host = ipaddress.ip_address(address).is_loopback
        if same_host:
            lines += _SWANCTL_SAME_HOST
        if floated_to is not None:
            lines.append(f"        # starts on {listener}, then charon moves to {floated_to} by itself")
        elif listener.port == 500:
            # charon moves to 4500 after IKE_SA_INIT for MOBIKE (on by default) or a NAT (RFC 7296 §2.23)
            missing = Listener(Transport.UDP, listener.host, 4500)
            lines.append(f"        mobike = no  # no {missing} here: stay on 500 (unless NAT)")
        if listener.port != 500:
            # charon sends the non-ESP marker (RFC 3948) only from its NAT-T port, and without
            # local_port a custom remote port floats back to 4500 after IKE_SA_INIT
            lines.append(f"        remote_port = {listener.port}")
            local_port = _SAME_HOST_NAT_T_PORT if same_host else 4500
            lines.append(f"        local_port = {local_port}  # charon's NAT-T port: adds the non-ESP marker")
        lines += [
            f"        proposals = {','.join(str(p) for p in view.ike_proposals)}",
            "        local {",
            "            auth = psk",
            f"            id = {client}",
            "        }",
            "        remote {",
            "            auth = psk",
        ]
        if view.responder_id is not None:
            lines.append(f"            id = {_quoted(str(view.responder_id))}")
        lines += [
            "        }",
            "        children {",
            f"            {child} {{",
            f"                esp_proposals = {','.join(str(p) for p in view.esp_proposals)}",
            "                # local_ts/remote_ts: any; the responder accepts the selectors you propose",
            "            }",
            "        }",
            "    }",
        ]
    secret = secret_text(view.secret) if view.secret is not None else view.secret_hint
    lines += ["}", "secrets {", "    ike-lab {", f"        id-1 = {client}", f"        secret = {secret}"]
    first = children[0] if children else "lab"
    lines += ["    }", "}", f"# start with: swanctl --load-all && swanctl --initiate --child {first}"]
    for name, child in zip(names[1:], children[1:], strict=True):
        lines.append(f"#   {name}: swanctl --initiate --child {child}")
    return "\n".join(lines) + "\n"


def tls_note(listeners: Sequence[Listener], fingerprint: str | None) -> str:
    """How to reach the TLS listeners: the certificate to pin, and the stand-in for libreswan.

    libreswan has no TLS; the project's stand-in, in front of pluto, wraps
    its stream in TLS.  pluto refuses an address of its own host as ``right=``,
    so pluto keeps the responder's address and an nftables ``redirect`` on
    pluto's host hands its connection to the stand-in (as the interop tests do).
    """
    tls = [listener for listener in listeners if listener.kind is Transport.TLS]
    lines = [f"# {listener}: RFC 9329 inside TLS, certificate SHA-256 {fingerprint}" for listener in tls]
    target, address, port = "HOST:PORT", "HOST", "PORT"
    if tls:
        address, _note = _reachable(tls[0])
        port = str(tls[0].port)
        target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    family = "ip6" if ":" in address else "ip"
    lines += [
        "# libreswan has no TLS: the project's stand-in wraps pluto's stream in TLS, adds the RFC 9329",
        "# Length (pluto leaves it to the kernel's espintcp) and pins the certificate.  On pluto's host:",
        f"# a libreswan connection as printed for --tcp, with right={address} and tcp-remoteport={port};",
        "# pluto started with --impair tcp-skip-setsockopt-espintcp; then, as root:",
        f"#   nft 'add table {family} standin; add chain {family} standin out "
        "{ type nat hook output priority -100; }'",
        f"#   nft 'add rule {family} standin out meta mark != 0x2a tcp dport {port} redirect to :14500'",
        "#   python tests/interop/espintcp_standin.py --role initiator --listen "
        f"{'[::1]' if family == 'ip6' else '127.0.0.1'}:14500 --mark 0x2a \\",
        f"#       --connect {target} --tls --tls-fingerprint {fingerprint or 'FINGERPRINT'}",
        "# or use the project's own client:",
        "#   responder.client.establish(..., Transport.TLS, HOST, PORT, tls_fingerprint=FINGERPRINT)",
    ]
    return "\n".join(lines) + "\n"


def render_start(
    listeners: Sequence[Listener],
    tls_fingerprint: str | None,
    invocation: Invocation,
    web_url: str | None = None,
) -> str:
    """Everything printed once the server listens (``listeners`` as bound: real ports; the web
    console's address, if it runs)."""
    view = client_view(invocation)
    notes = {
        Transport.TCP: "RFC 9329 TCP encapsulation",
        Transport.TLS: f"RFC 9329 inside TLS, certificate SHA-256 {tls_fingerprint}",
        Transport.UDP: "IKE over UDP with the non-ESP marker, RFC 3948",
    }
    out = [f"{_RULE} ikev2-responder {__version__} is running (Ctrl-C or SIGTERM stops it) {_RULE}"]
    for listener in listeners:
        plain_udp = listener.kind is Transport.UDP and listener.port == 500
        out.append(f"listening on {listener}  ({'IKE over UDP' if plain_udp else notes[listener.kind]})")
    if invocation.psk_generated and invocation.shown_psk is not None:
        out.append(
            f"lab PSK (LAB SECRET: random, for this run only, any initiator ID): "
            f"{invocation.shown_psk.value.decode('utf-8')}"
        )
    elif invocation.shown_psk is not None:
        shown = secret_text(invocation.shown_psk)
        out.append(f"lab PSK (from --psk, any initiator ID no peer claims): {shown}")
    responder = "the address the request arrived on" if view.responder_id is None else view.responder_id
    out.append(f"responder ID: {responder}")
    if web_url is not None:
        out.append(f"web console on {web_url}  (and Prometheus metrics on {web_url}metrics)")
    if any(listener.kind is Transport.TCP for listener in listeners):
        conf, secrets_lines = libreswan_snippet(listeners, view)
        out += [f"{_RULE} libreswan ipsec.conf (TCP, RFC 9329) {_RULE}", conf.rstrip("\n")]
        out += [f"{_RULE} libreswan ipsec.secrets {_RULE}", secrets_lines.rstrip("\n")]
    if any(listener.kind is Transport.UDP for listener in listeners):
        swanctl = swanctl_snippet(listeners, view)
        out += [f"{_RULE} strongSwan swanctl.conf (UDP) {_RULE}", swanctl.rstrip("\n")]
    if any(listener.kind is Transport.TLS for listener in listeners):
        out += [f"{_RULE} TLS {_RULE}", tls_note(listeners, tls_fingerprint).rstrip("\n")]
    out.append(f"{_RULE} end {_RULE}")
    return "\n".join(out) + "\n"
