"""``ikev2-client``: establish an IKE SA from the command line, check it, delete it, say what happened.

Strategy: a thin shell over :func:`responder.client.establish`, the project's
Trio initiator.  ``--tcp``, ``--tls`` or ``--udp HOST:PORT`` picks the
transport (RFC 9329 TCP, TCP inside TLS, or UDP with the non-ESP marker unless
the port is 500); ``--psk`` and ``--id`` authenticate us (the responder's lab
PSK and ``@client.lab`` by default, as ``ikev2-responder`` prints them).  The
run is: IKE_SA_INIT and IKE_AUTH with one Child SA (or none with
``--childless``), then with ``--liveness`` an empty INFORMATIONAL, then
``--hold`` seconds during which it answers what the responder sends
(liveness checks, rekeys, a Delete), then an INFORMATIONAL Delete unless the
SA already ended.  Each step prints one line, with SPIs in hex
(``SPIi/SPIr``, as the responder logs them); ``--json`` prints one JSON
object instead.  Exit status: 0 when every step succeeded, 1 when one
failed (the reason on stderr), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from collections.abc import Sequence
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Final, TextIO

import trio

from responder import __version__
from responder.client import Client, FingerprintMismatch, establish
from responder.core.config import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    Config,
    ConfigError,
    EspProposal,
    IkeProposal,
    Secret,
    TrafficSelectorPolicy,
    TrustStore,
)
from responder.core.identity import Identity
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.path import Transport
from responder.core.selectors import to_selector
from responder.pem_files import load_certificates, load_credential

__all__ = ["main", "parse_target"]

DEFAULT_ID: Final = "@client.lab"  #: the identity ``ikev2-responder``'s printed configurations use


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); raises :class:`ValueError`."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or not host:
            raise ValueError(f"{text!r} is not HOST:PORT")
        if ":" in host:
            raise ValueError(f"{text!r}: an IPv6 address needs brackets ([{host}]:{port_text})")
    if not port_text.isdigit() or not 0 < int(port_text) <= 0xFFFF:
        raise ValueError(f"{text!r}: port {port_text!r} is not a number in 1..65535")
    return host, int(port_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ikev2-client",
        description="Establish an IKEv2 SA with a pre-shared key or a certificate over RFC 9329 TCP, "
        "TLS or UDP, "
        "optionally check it, delete it, and print what happened.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    where = parser.add_mutually_exclusive_group(required=True)
    for flag, what in (("--tcp", "RFC 9329 TCP"), ("--tls", "RFC 9329 inside TLS"), ("--udp", "UDP")):
        where.add_argument(flag, metavar="HOST:PORT", help=f"the responder, over {what}")
    parser.add_argument(
        "--psk",
        metavar="SECRET",
        help="the pre-shared key (0x.. hex, 0s.. base64); with --cert it checks a responder that uses it",
    )
    parser.add_argument("--cert", metavar="FILE", help="authenticate with this certificate chain (PEM)")
    parser.add_argument("--key", metavar="FILE", help="the private key of --cert")
    parser.add_argument(
        "--ca",
        metavar="FILE",
        action="append",
        help="CA certificates that vouch for the responder (repeatable)",
    )
    parser.add_argument("--id", metavar="ID", default=DEFAULT_ID, help=f"our identity (default {DEFAULT_ID})")
    parser.add_argument("--remote-id", metavar="ID", help="the responder's identity we ask for (IDr)")
    parser.add_argument(
        "--ike",
        metavar="PROPOSAL",
        action="append",
        help="IKE proposal (repeatable; default: the responder's)",
    )
    parser.add_argument(
        "--esp",
        metavar="PROPOSAL",
        action="append",
        help="ESP proposal (repeatable; default: the responder's)",
    )
    parser.add_argument("--childless", action="store_true", help="no Child SA in IKE_AUTH (RFC 6023)")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls-fingerprint", metavar="SHA256", help="pin the server certificate (as the responder prints it)"
    )
    tls.add_argument("--tls-ca", metavar="FILE", help="verify the server certificate with this CA (PEM)")
    parser.add_argument("--server-name", metavar="NAME", help="TLS server name (default: HOST)")
    parser.add_argument(
        "--liveness", action="store_true", help="send an empty INFORMATIONAL and expect its answer"
    )
    parser.add_argument(
        "--ping",
        metavar="ADDRESS",
        help="ping ADDRESS through the Child SA (ESP) and expect the echo replies (UDP: not port 500)",
    )
    parser.add_argument("--ping-count", metavar="N", type=int, default=3, help="echo requests (default 3)")
    parser.add_argument(
        "--hold",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="keep the SA this long, answering the responder",
    )
    parser.add_argument(
        "--timeout", metavar="SECONDS", type=float, default=10.0, help="for each step (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    return parser


def _settings(args: argparse.Namespace) -> InitiatorSettings:
    try:
        ike = tuple(IkeProposal.parse(text) for text in args.ike) if args.ike else DEFAULT_IKE_PROPOSALS
        esp = tuple(EspProposal.parse(text) for text in args.esp) if args.esp else DEFAULT_ESP_PROPOSALS
        local_id = Identity.parse(args.id)
        remote_id = Identity.parse(args.remote_id) if args.remote_id else None
        psk = Secret.parse(args.psk) if args.psk is not None else None
        if (args.cert is None) != (args.key is None):
            raise ValueError("--cert and --key go together")
        if psk is None and args.cert is None:
            raise ValueError("one of --psk or --cert/--key is required")
        credential = load_credential(Path(args.cert), Path(args.key)) if args.cert else None
        anchors = tuple(c for path in args.ca or () for c in load_certificates(Path(path)))
    except (ConfigError, ValueError) as error:
        raise ValueError(str(error)) from None
    child = None
    if not args.childless:
        anything = (to_selector(TrafficSelectorPolicy.any(4)),)
        child = ChildRequest(esp, anything, anything)
    trust = TrustStore(anchors) if anchors else None
    return InitiatorSettings(ike, local_id, psk, remote_id, child, credential=credential, trust=trust)


async def _run(
    args: argparse.Namespace, transport: Transport, host: str, port: int, report: dict[str, Any]
) -> str | None:
    """The steps; fills ``report``; returns why it failed, or ``None``."""
    settings = _settings(args)
    context = None
    if args.tls_ca:
        try:
            context = ssl.create_default_context(cafile=args.tls_ca)
        except (OSError, ssl.SSLError) as error:
            return f"--tls-ca {args.tls_ca}: {getattr(error, 'strerror', None) or error}"
    try:
        client: Client = await establish(
            settings,
            Config(),
            transport,
            host,
            port,
            ssl_context=context,
            server_hostname=args.server_name,
            tls_fingerprint=args.tls_fingerprint,
            timeout=args.timeout,
        )
    except FingerprintMismatch as error:
        return f"TLS: {error}"
    except (OSError, ssl.SSLError, trio.TooSlowError, trio.BrokenResourceError) as error:
        cause = error.__cause__ if isinstance(error, trio.BrokenResourceError) else None
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = f"TLS: the server certificate does not verify ({cause.verify_message})"
        else:
            why = (
                str(error)
                or str(cause or "")
                or ("timed out" if isinstance(error, trio.TooSlowError) else "")
            )
            why = why or type(cause or error).__name__
        return f"cannot reach {host}:{port} over {transport.value}: {why}"
    async with client:
        report["spi_i"], report["spi_r"] = client.spi_i.hex(), client.spi_r.hex()
        if not client.established:
            return f"not established: {client.reason}"
        established = client.ike_sa_established
        report["established"] = True
        report["proposal"] = established.proposal if established is not None else None
        report["child_sas"] = [
            {
                "inbound_spi": child.inbound_spi.hex(),
                "outbound_spi": child.outbound_spi.hex(),
                "mode": child.mode,
                "proposal": child.proposal,
                "local_ts": list(child.local_ts),
                "remote_ts": list(child.remote_ts),
            }
            for child in client.child_sas
        ]
        if args.liveness:
            report["liveness"] = await client.liveness_check(args.timeout)
            if not report["liveness"]:
                return f"liveness check not answered: {client.reason or 'timed out'}"
        if args.ping is not None:
            destination = ip_address(args.ping)
            received = await client.ping(destination, count=args.ping_count, timeout=args.timeout)
            report["ping"] = {"address": str(destination), "sent": args.ping_count, "received": received}
            if received < args.ping_count:
                return f"ping {destination}: {client.reason}"
        if args.hold > 0:
            await client.process(args.hold)
        if not client.established:
            report["deleted"] = "by the responder"
            return None
        report["deleted"] = "by us" if await client.delete(args.timeout) else None
        if report["deleted"] is None:
            return f"Delete not answered: {client.reason or 'timed out'}"
    return None


def _lines(report: dict[str, Any], transport: Transport, host: str, port: int) -> str:
    spis = f"{report.get('spi_i', '-')}/{report.get('spi_r') or '0' * 16}"
    if not report.get("established"):
        return f"IKE SA {spis} over {transport.value} {host}:{port}: not established\n"
    lines = [f"IKE SA {spis} established over {transport.value} {host}:{port}: {report['proposal']}"]
    for child in report["child_sas"]:
        lines.append(
            f"Child SA ESP in {child['inbound_spi']} out {child['outbound_spi']} {child['mode']}, "
            f"{child['proposal']}; local {','.join(child['local_ts'])} remote {','.join(child['remote_ts'])}"
        )
    if "ping" in report:
        ping = report["ping"]
        lines.append(f"ping {ping['address']} through the tunnel: {ping['received']}/{ping['sent']} answered")
    if "liveness" in report:
        lines.append(f"liveness check: {'answered' if report['liveness'] else 'not answered'}")
    if report.get("deleted"):
        lines.append(f"IKE SA {spis} deleted {report['deleted']}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of ``ikev2-client``; returns the exit status."""
    output = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    transport, target = next(
        (kind, getattr(args, kind.value)) for kind in Transport if getattr(args, kind.value) is not None
    )
    try:
        host, port = parse_target(target)
        _settings(args)
        if args.ping is not None:
            ip_address(args.ping)  # ValueError names it
            if args.childless:
                raise ValueError("--ping needs a Child SA (not --childless)")
            if not 1 <= args.ping_count <= 1000:
                raise ValueError("--ping-count: 1 to 1000")
        if args.tls_fingerprint is not None:
            digits = args.tls_fingerprint.replace(":", "")
            if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("--tls-fingerprint: expected the SHA-256 as 32 hex octets (AB:CD:...)")
            args.tls_fingerprint = ":".join(digits[i : i + 2] for i in range(0, 64, 2)).upper()
    except ValueError as error:
        parser.error(str(error))
    report: dict[str, Any] = {"transport": transport.value, "host": host, "port": port, "established": False}
    try:
        failure = trio.run(_run, args, transport, host, port, report)
    except KeyboardInterrupt:
        return 130
    report["error"] = failure
    output.write(json.dumps(report) + "\n" if args.json else _lines(report, transport, host, port))
    output.flush()
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
