"""The ``ikev2-responder`` command: flags, the server, and client configurations ready to paste.

Strategy: three steps, the first and the last pure functions.

1. :func:`parse_invocation` turns argv into an :class:`Invocation`: the
   :class:`~responder.config_file.ServerSettings` that ``--config FILE`` loads (or
   the defaults), with each flag a shortcut for one of its keys (a contract:
   later issues add flags, never rename them):

   ========================  =======================================================
   flag                      same as
   ========================  =======================================================
   ``--tcp/--tls/--udp``     ``responder.listen``: each flag one socket; naming any
   ``HOST:PORT``             replaces the file's (or the default) listeners
   ``--psk SECRET``          ``lab.any_id_psk``: identities no ``[peers.NAME]``
                             claims authenticate with it (all of them if the file
                             has no peers); the file's peers keep their own keys
   ``--id ID``               ``responder.id`` (default: the address a request
                             arrived on)
   ``--cert/--key FILE``     ``tls.cert`` / ``tls.key``
   ``--keylog DIR``          ``keylog.dir``
   ``--log-level LEVEL``     ``responder.log_level``
   ``--impair NAME[=ARG]``   ``impair.NAME`` (repeatable; lab impairments)
   ``--web HOST:PORT``       ``web.listen``: the live web console (off by default)
   ========================  =======================================================

   With no way to authenticate anyone (no peers, no ``any_id_psk``) a random
   lab PSK is made with :mod:`secrets` and printed.  Every bad value is a
   :class:`ConfigError` naming the flag or file key: one line, exit status 2.
2. :func:`main` configures :mod:`logging` (stderr), then ``trio.run``:
   :func:`responder.server.serve` runs until SIGINT or SIGTERM sets its
   ``shutdown`` event (:func:`trio.open_signal_receiver`); a clean shutdown
   exits 0, one cut short (a second signal, or no end ``shutdown_grace`` +
   ``shutdown_timeout`` + 5 s later) exits 1.  A failure to start (a port in use, a key-log directory
   that cannot be made) prints one line and exits 1, without a traceback.
3. Once ``serve`` reports the ports it bound, :func:`render_start`
   (:mod:`responder.client_configs`) prints on
   stdout, between ``=====`` lines: the listeners, the lab PSK, a **libreswan**
   ``ipsec.conf`` connection and ``ipsec.secrets`` line for each TCP listener
   (RFC 9329; libreswan is the packaged TCP initiator), a **strongSwan**
   ``swanctl.conf`` connection for each UDP listener (strongSwan has no IKE over
   TCP), and for TLS listeners the certificate fingerprint and how to get there
   (libreswan has no TLS: a stand-in wraps its stream).  Only secrets that came
   from the command line or were generated are printed; keys from the file are
   referred to by their key path.

   The snippets were checked against pluto 4.10 and charon 5.9.8 (see
   docs/running.md): a port-500 and a port-4500 UDP listener on one address are
   *one* strongSwan connection (charon starts on 500 and moves to 4500 itself),
   every connection's child has a name of its own (``lab``, ``lab-2``, ...), a
   port other than 500 gets ``local_port`` (charon adds the non-ESP marker only
   on its NAT-T port), a lone port-500 listener gets ``mobike = no``.  libreswan
   keeps ``left=%defaultroute`` (right wherever a default route exists) with a
   comment saying to write the client's address where there is none (pluto then
   refuses the connection); a loopback listener's connections say that pluto
   refuses an address of its own host, and charon's that it needs other ports
   there (``port_nat_t``).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import functools
import hashlib
import ipaddress
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

import attrs
import trio

from responder import __version__
from responder.client_configs import (
    LAB_CLIENT_ID,
    ClientView,
    client_view,
    libreswan_id,
    libreswan_snippet,
    render_start,
    secret_text,
    swanctl_snippet,
    tls_note,
)
from responder.config_file import load_config_path
from responder.core.config import (
    IMPAIRMENT_NAMES,
    Config,
    ConfigError,
    Identity,
    Impairments,
    PskAuth,
    Secret,
)
from responder.core.errors import LocalError
from responder.core.path import Transport
from responder.garbage_collection import collect_less_often
from responder.logging_config import LOGGER_PARTS, LogOptions, configure_logging
from responder.pem_files import load_certificates, load_credential, load_crls
from responder.server.settings import LOG_LEVELS, Listener, ServerSettings, WebSettings

__all__ = [
    "LAB_CLIENT_ID",
    "ClientView",
    "Invocation",
    "LogOptions",
    "build_parser",
    "client_view",
    "configure_logging",
    "libreswan_id",
    "libreswan_snippet",
    "main",
    "parse_invocation",
    "random_lab_psk",
    "render_start",
    "secret_text",
    "swanctl_snippet",
    "tls_note",
]

logger = logging.getLogger("responder.cli")

#: Subcommands that ask a running responder (:mod:`responder.control_client`) instead of starting one.
CONTROL_COMMANDS: Final = ("status", "list-sas", "stats", "terminate", "reload")

#: Extra seconds after ``shutdown_grace`` + ``shutdown_timeout`` before a shutdown that hangs is cut short.
_SHUTDOWN_GRACE: Final = 5.0

_LISTEN_FLAGS: Final = {"--tcp": Transport.TCP, "--tls": Transport.TLS, "--udp": Transport.UDP}


# ---------------------------------------------------------------------------
# argv -> ServerSettings
# ---------------------------------------------------------------------------


@attrs.frozen
class Invocation:
    """What the command line asks for.

    ``settings`` is what :func:`responder.server.serve` runs.  ``shown_psk``
    is the lab PSK the printed client configurations may show: the one given
    with ``--psk`` or the random one (``psk_generated``); ``None`` when the
    keys come from the configuration file (``config_file``).
    """

    settings: ServerSettings
    shown_psk: Secret | None = None
    psk_generated: bool = False
    config_file: Path | None = None
    #: No ``--control PATH`` and no ``--no-control``: the default control socket, if it is free.
    control_default: bool = False
    #: ``--seed N``: SPIs, nonces and key pairs from :func:`seeded_random_bytes` (insecure).
    seed: int | None = None
    log: LogOptions = attrs.field(factory=lambda: LogOptions())
    check_config: bool = False  #: ``--check-config``: check, report, exit
    argv: tuple[str, ...] = ()  #: the arguments, for a reload to read the same sources again


class _AppendListener(argparse.Action):
    """``--tcp/--tls/--udp HOST:PORT``: one list for all three, in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        listeners: list[tuple[str, str]] = list(getattr(namespace, self.dest) or [])
        listeners.append((option_string or self.option_strings[0], str(values)))
        setattr(namespace, self.dest, listeners)


def build_parser() -> argparse.ArgumentParser:
    """The ``ikev2-responder`` argument parser (values are checked by :func:`parse_invocation`)."""
    parser = argparse.ArgumentParser(
        prog="ikev2-responder",
        description=(
            "IKEv2 responder with RFC 9329 TCP encapsulation (TLS on 443) and UDP 500/4500. "
            "With no arguments: TCP and UDP on 127.0.0.1:4500, a random lab PSK for any "
            "initiator ID, and client configurations for libreswan (TCP) and strongSwan (UDP) "
            "printed on stdout."
        ),
        epilog=(
            "Flags override the same keys of --config FILE; see docs/configuration.md. "
            "Subcommands: status, list-sas, stats, terminate (ask a running responder); "
            "certs (make the lab PKI: ikev2-responder certs --help, certs/README.md)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    for flag, what in (
        ("--tcp", "RFC 9329 TCP encapsulation"),
        ("--tls", "RFC 9329 inside TLS (Appendix A)"),
        ("--udp", "IKE over UDP (non-ESP marker except on port 500)"),
    ):
        parser.add_argument(
            flag,
            dest="listen",
            action=_AppendListener,
            metavar="HOST:PORT",
            help=f"listen for {what} on HOST:PORT (IPv6 as [::1]:PORT; repeatable; replaces the "
            "file's or the default listeners)",
        )
    parser.add_argument(
        "--psk",
        metavar="SECRET",
        help="pre-shared key for any initiator ID no configured peer claims (lab mode); "
        "0x... for hex, 0s... for base64",
    )
    parser.add_argument(
        "--id",
        metavar="ID",
        help="our identity (IDr): @fqdn or host name, user@host, an IP address, "
        "'C=..., CN=...' or keyid:HEX (default: the address the request arrived on)",
    )
    parser.add_argument(
        "--cert", metavar="FILE", help="our certificate chain (PEM, leaf first): IKE authentication and TLS"
    )
    parser.add_argument("--key", metavar="FILE", help="the private key of --cert (PEM or DER, unencrypted)")
    parser.add_argument(
        "--ca",
        metavar="FILE",
        action="append",
        help="CA certificates that vouch for peers (repeatable); with --cert and no configured peers, "
        "any peer with a certificate from them authenticates",
    )
    parser.add_argument(
        "--crl", metavar="FILE", action="append", help="a CRL to check peers against (repeatable)"
    )
    parser.add_argument("--keylog", metavar="DIR", help="write Wireshark key tables to DIR (lab use only)")
    parser.add_argument(
        "--log-level",
        metavar="LEVEL",
        type=str.lower,
        help="/".join(LOG_LEVELS) + "; then ,PART=LEVEL for one part (engine, streams, udp, control, "
        "serve, cli, or any logger name under responder.), e.g. info,engine=debug",
    )
    parser.add_argument("--log-file", metavar="FILE", help="append the log to FILE instead of stderr")
    parser.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="text lines (default) or JSON lines"
    )
    parser.add_argument("--web", metavar="HOST:PORT", help="serve the live web console and /metrics there")
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="check the configuration and the files it names, then exit",
    )
    control = parser.add_mutually_exclusive_group()
    control.add_argument(
        "--control",
        metavar="PATH",
        help="answer `ikev2-responder status|list-sas|stats|terminate` on this Unix socket (mode 0600; "
        "default: $XDG_RUNTIME_DIR/ikev2-responder.sock or /tmp/ikev2-responder-UID/ikev2-responder.sock)",
    )
    control.add_argument("--no-control", action="store_true", help="no control socket")
    parser.add_argument(
        "--impair",
        metavar="NAME[=ARG]",
        action="append",
        help="a lab impairment (repeatable; same names as the [impair] table): force_cookie, "
        "force_invalid_ke=GROUP, drop_response=N, delay_response=N:SECONDS, duplicate_response=N, "
        "corrupt_icv=N, tcp_close_after=N, refuse_child, rekey_collision (N: the Message ID whose "
        "response is impaired); logged at start; LAB ONLY",
    )
    parser.add_argument(
        "--seed",
        metavar="N",
        type=int,
        help="draw SPIs, nonces and key pairs from a generator seeded with N, so that a run can be "
        "replayed byte for byte with a fixed --psk (not ML-KEM's encapsulation; INSECURE: lab only)",
    )
    return parser


def seeded_random_bytes(seed: int) -> Callable[[int], bytes]:
    """A deterministic stand-in for :func:`os.urandom`: SHAKE-256 of the seed and a call counter.

    The same seed gives the same octets in the same order, so a responder run
    with ``--seed`` answers the same requests with the same SPIs, nonces and
    key-exchange values.  Predictable by design: never for real traffic.
    """
    counter = 0

    def random_bytes(count: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(f"ikev2-responder seed {seed} call {counter}".encode()).digest(count)

    return random_bytes


def random_lab_psk() -> str:
    """A fresh random lab PSK (144 bits from :mod:`secrets`), printable and easy to paste."""
    return "lab-" + secrets.token_urlsafe(18)


def _listener(flag: str, text: str) -> Listener:
    kind = _LISTEN_FLAGS[flag]
    if "://" in text:  # the file's form given to a flag
        raise ConfigError(f"give HOST:PORT without a scheme, as in {flag} 127.0.0.1:4500", f"{flag} {text}")
    url = f"{kind.value}://{text}"
    try:
        return Listener.parse(url)
    except ConfigError as exc:
        raise ConfigError(exc.message.replace(repr(url), repr(text)), f"{flag} {text}") from None


def _parsed(parse: Callable[[str], Any], text: str, flag: str) -> Any:
    try:
        return parse(text)
    except ConfigError as exc:
        raise ConfigError(exc.message, flag) from None


def _certificate_flags(
    args: argparse.Namespace, config: Config, core: dict[str, Any], tls_files: tuple[Path | None, Path | None]
) -> None:
    """``--cert``/``--key`` (our credential), ``--ca`` and ``--crl`` (the trust store) into ``core``."""
    # A flag without its partner takes the partner from the file's [tls] (as before IKE used them).
    cert = args.cert if args.cert is not None or args.key is None else tls_files[0]
    key = args.key if args.key is not None or args.cert is None else tls_files[1]
    if cert is not None and key is None:
        raise ConfigError("missing: a certificate needs its private key", "--key")
    if key is not None and cert is None:
        raise ConfigError("missing: a private key needs its certificate", "--cert")
    if cert is not None and key is not None:
        with _flag_errors("--cert"):
            core["credential"] = load_credential(Path(cert), Path(key))
    trust: dict[str, Any] = {}
    if args.ca:
        anchors: list[Any] = []
        for path in args.ca:
            with _flag_errors("--ca"):
                anchors += load_certificates(Path(path))
        trust["anchors"] = tuple(anchors)
    if args.crl:
        crls: list[Any] = []
        for path in args.crl:
            with _flag_errors("--crl"):
                crls += load_crls(Path(path))
        trust["crls"] = tuple(crls)
    if trust:
        core["trust"] = attrs.evolve(config.trust, **trust)
    if args.ca and not config.peers:
        if core.get("credential", config.credential) is None:
            raise ConfigError("needs --cert and --key: we answer a certificate with our own", "--ca")
        core["lab_pubkey"] = True


#: libreswan's ``ipsec whack --impair`` names that users may reach for, and ours closest to them.
_LIBRESWAN_IMPAIRS: Final = {
    "drop_outbound": "drop_response",
    "duplicate_outbound": "duplicate_response",
    "jacob_two_two": "duplicate_response",
    "corrupt_encrypted": "corrupt_icv",
    "trigger_v2_rekey": "rekey_collision",
}


def _impair_flags(items: Sequence[str], config: Config) -> Impairments:
    """``--impair NAME[=ARG]`` (repeatable) on top of the file's ``[impair]``; errors name the flag."""
    impair = config.impair
    for item in items:
        name, equals, argument = item.partition("=")
        name = name.strip().replace("-", "_").lower()
        if name not in IMPAIRMENT_NAMES:
            close = [_LIBRESWAN_IMPAIRS[name]] if name in _LIBRESWAN_IMPAIRS else []
            close = close or difflib.get_close_matches(name, IMPAIRMENT_NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"unknown impairment {name!r}; {hint}known: {', '.join(IMPAIRMENT_NAMES)}", "--impair"
            )
        try:
            impair = impair.with_setting(name, argument if equals else True)
        except ConfigError as error:
            raise ConfigError(error.message, f"--impair {name}") from None
    return impair


@contextlib.contextmanager
def _flag_errors(flag: str) -> Iterator[None]:
    """A file's ConfigError (which names the file) under the flag that named it."""
    try:
        yield
    except ConfigError as error:
        raise ConfigError(error.message, flag) from None


def parse_invocation(argv: Sequence[str], *, make_lab_psk: Callable[[], str] = random_lab_psk) -> Invocation:
    """The :class:`Invocation` of ``argv`` (without the program name).

    Raises :class:`ConfigError` naming the flag (``--psk: empty secret``) or
    the file's key (``peers.alice.psk: empty secret``); argparse itself exits
    with status 2 on unknown flags or missing values.  ``make_lab_psk`` is
    called only when nothing else can authenticate an initiator.
    """
    args = build_parser().parse_args(list(argv))
    config_file = Path(args.config) if args.config is not None else None
    settings = load_config_path(config_file) if config_file is not None else ServerSettings()
    config = settings.config
    core: dict[str, Any] = {}
    shell: dict[str, Any] = {}
    flags = {"tls_cert": "--cert", "tls_key": "--key"}  # ServerSettings's cross-checks, by the flag to fix

    if args.listen:
        shell["listeners"] = tuple(_listener(flag, text) for flag, text in args.listen)
    shown_psk: Secret | None = None
    if args.psk is not None:
        shown_psk = core["any_id_psk"] = _parsed(Secret.parse, args.psk, "--psk")
    if args.id is not None:
        core["local_id"] = _parsed(Identity.parse, args.id, "--id")
    for flag, key in (("cert", "tls_cert"), ("key", "tls_key"), ("keylog", "keylog_dir")):
        value = getattr(args, flag)
        if value is not None:
            if not value or "\0" in value:
                raise ConfigError("empty path" if not value else "path holds a NUL character", f"--{flag}")
            shell[key] = Path(value)
    if args.web is not None:  # the file's other [web] keys stay
        shell["web"] = _parsed(lambda text: WebSettings.parse(text, settings.web), args.web, "--web")
    if args.control is not None:
        if not args.control or "\0" in args.control:
            raise ConfigError("empty path" if not args.control else "path holds a NUL character", "--control")
        shell["control_path"] = Path(args.control)
    log_levels: dict[str, str] = {}
    if args.log_level is not None:
        level, *parts = args.log_level.split(",")
        choices = ", ".join(LOG_LEVELS)
        if level not in LOG_LEVELS:
            raise ConfigError(f"expected one of {choices}, got {level!r}", "--log-level")
        shell["log_level"] = level
        for part in parts:
            name, equals, part_level = part.partition("=")
            if not equals or not name or part_level not in LOG_LEVELS:
                raise ConfigError(
                    f"expected PART=LEVEL with LEVEL one of {choices}, got {part!r}", "--log-level"
                )
            if not name.startswith("responder") and name not in LOGGER_PARTS:
                known = ", ".join(LOGGER_PARTS)
                raise ConfigError(f"unknown part {name!r} (known: {known}, or responder.*)", "--log-level")
            log_levels[LOGGER_PARTS.get(name, name)] = part_level

    _certificate_flags(args, config, core, (settings.tls_cert, settings.tls_key))
    if args.impair:
        core["impair"] = _impair_flags(args.impair, config)
    generated = False
    if not config.peers and config.any_id_psk is None and "any_id_psk" not in core:
        shown_psk = core["any_id_psk"] = Secret(make_lab_psk().encode("utf-8"))
        generated = True
    try:
        settings = attrs.evolve(settings, config=attrs.evolve(config, **core), **shell)
    except ConfigError as exc:
        field = exc.field.split(".")[0].split("[")[0]
        if field == "listeners" and "listeners" in shell:
            index = int(exc.field.split("[")[1].split("]")[0]) if "[" in exc.field else None
            name = " ".join(args.listen[index]) if index is not None else "--tcp/--tls/--udp"
            raise ConfigError(exc.message, name) from None
        if field in flags:
            raise ConfigError(exc.message, flags[field]) from None
        if exc.field.startswith("impair.") and args.impair:  # force_invalid_ke against our proposals
            raise ConfigError(exc.message, "--impair " + exc.field.removeprefix("impair.")) from None
        raise  # pragma: no cover - every other value was checked on its own above
    control_default = args.control is None and not args.no_control
    log = LogOptions(args.log_file, args.log_format, tuple(log_levels.items()))
    return Invocation(
        settings,
        shown_psk,
        generated,
        config_file,
        control_default,
        args.seed,
        log,
        args.check_config,
        tuple(argv),
    )


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


#: Shorter pre-shared keys draw a warning: one captured handshake lets anyone guess them offline.
PSK_WARN_BELOW: Final = 20


def start_warnings(invocation: Invocation) -> list[str]:
    """What the configuration asks for that probably is not what was meant (logged at start)."""
    settings = invocation.settings
    config = settings.config
    warnings = []
    keys: list[tuple[str, Secret]] = []
    if config.any_id_psk is not None and not invocation.psk_generated:
        keys.append(("--psk" if invocation.shown_psk is not None else "lab.any_id_psk", config.any_id_psk))
    for peer in config.peers:
        if isinstance(peer.auth, PskAuth):
            keys.append((f"peers.{peer.name}.psk", peer.auth.secret))
    for where, secret in keys:
        if len(secret.value) < PSK_WARN_BELOW:
            warnings.append(
                f"{where}: a pre-shared key of {len(secret.value)} octets can be guessed offline from one "
                f"captured handshake; use {PSK_WARN_BELOW} characters or more (RFC 7296 §2.15)"
            )
    tls = any(listener.kind is Transport.TLS for listener in settings.listeners)
    if settings.tls_cert is not None and not tls and config.credential is None:
        warnings.append("--cert/--key (tls.cert/tls.key): no TLS listener uses them (add --tls HOST:PORT)")
    return warnings


def _report_config(invocation: Invocation, out: TextIO) -> int:
    """``--check-config``: what would run, and the warnings; nothing is started.

    Everything a start would read is tried: the TLS certificate and key are
    loaded into a context (a self-signed one is not made), the key-log
    directory and the log file must be creatable.  2 with one line if not.
    """
    settings = invocation.settings
    config = settings.config
    problems = []
    if settings.tls_cert is not None and settings.tls_key is not None:
        from responder.server.tls import server_context

        try:
            server_context(settings.tls_cert, settings.tls_key, None)
        except (OSError, ssl.SSLError, ConfigError, ValueError) as exc:
            problems.append(f"tls.cert/tls.key: cannot be used: {exc}")
    for what, target in (("keylog.dir", settings.keylog_dir), ("--log-file", invocation.log.file)):
        if target is None:
            continue
        place = Path(target)
        parent = place if what == "keylog.dir" and place.exists() else place.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            problems.append(f"{what}: {str(place)!r} cannot be created or written (no access to {parent})")
    if problems:
        _error(problems[0])
        return 2
    source = str(invocation.config_file) if invocation.config_file is not None else "flags and defaults"
    lines = [f"configuration OK ({source})"]
    lines += [f"  listen {listener}" for listener in settings.listeners]
    peers = ", ".join(peer.name for peer in config.peers) or "none"
    lab = "generated at start" if invocation.psk_generated else ("yes" if config.any_id_psk else "no")
    lines.append(f"  peers: {peers}; lab PSK for any identity: {lab}")
    lines.append(f"  IKE proposals: {', '.join(str(p) for p in config.ike_proposals)}")
    for warning in start_warnings(invocation):
        lines.append(f"  warning: {warning}")
    lines += [f"  warning: IMPAIRMENT ACTIVE: {line}" for line in config.impair.describe()]
    out.write("\n".join(lines) + "\n")
    out.flush()
    return 0


def _check_files(invocation: Invocation) -> None:
    """The TLS files can be read and belong together (a clear error now beats an OpenSSL one later)."""
    settings = invocation.settings
    if not any(listener.kind is Transport.TLS for listener in settings.listeners):
        return
    if settings.tls_cert is None or settings.tls_key is None:
        return
    try:  # a file that is not PEM, or a key of another certificate, is named here, not by OpenSSL
        load_credential(settings.tls_cert, settings.tls_key)
    except ConfigError as exc:
        raise ConfigError(exc.message, "tls.key" if "private key" in exc.message else "tls.cert") from None


@attrs.define
class _Stop:
    """How the server was stopped: ``forced`` when a shutdown had to be cut short."""

    shutdown: trio.Event = attrs.Factory(trio.Event)
    forced: bool = False


async def _watch_signals(
    signals: AsyncIterator[int], stop: _Stop, scope: trio.CancelScope, grace: float
) -> None:
    """First SIGINT/SIGTERM: graceful shutdown; a second one, or no end after ``grace`` s: stop now."""
    async for signum in signals:
        logger.info("%s received: shutting down", signal.Signals(signum).name)
        stop.shutdown.set()
        break
    with trio.move_on_after(grace):
        async for signum in signals:
            logger.warning("%s received again: stopping now", signal.Signals(signum).name)
            break
        else:  # pragma: no cover - the receiver never ends
            return
    if not scope.cancel_called:
        logger.warning("shutdown not finished after %.1f s: stopping now", grace)
    stop.forced = True
    scope.cancel()


async def _run(invocation: Invocation, out: TextIO) -> int:
    from responder.server import serve  # the server pulls in every transport: only when serving

    settings = _with_control(invocation)
    random_bytes: Callable[[int], bytes] = os.urandom
    if invocation.seed is not None:
        logger.warning(
            "--seed %d: SPIs, nonces and private keys come from a seeded generator; whoever knows the "
            "seed can decrypt everything (lab reference runs only)",
            invocation.seed,
        )
        random_bytes = seeded_random_bytes(invocation.seed)
    stop = _Stop()
    # SIGHUP is caught from here on (a reload once serving), so an early one cannot end the process.
    with (
        trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
        trio.open_signal_receiver(signal.SIGHUP) as hangups,
    ):
        async with trio.open_nursery() as nursery:
            grace = settings.shutdown_grace + settings.shutdown_timeout + _SHUTDOWN_GRACE
            nursery.start_soon(_watch_signals, signals, stop, nursery.cancel_scope, grace)

            async def serve_then_stop(*, task_status: trio.TaskStatus[Any]) -> None:
                await serve(
                    settings,
                    shutdown=stop.shutdown,
                    task_status=task_status,
                    random_bytes=random_bytes,
                    load=functools.partial(_reload_settings, invocation, settings),
                )
                nursery.cancel_scope.cancel()  # serve() returned after the shutdown: stop watching

            info = await nursery.start(serve_then_stop)
            collect_less_often()
            nursery.start_soon(_reload_on_sighup, hangups, info)
            out.write(render_start(info.listeners, info.tls_fingerprint, invocation, info.web_url))
            out.flush()
    return 1 if stop.forced else 0


def _reload_settings(invocation: Invocation, started: ServerSettings) -> ServerSettings:
    """The settings built again from the same flags and ``--config`` file (a reload), with the
    running control socket; a generated lab PSK stays the one printed at start."""
    printed = invocation.shown_psk
    if invocation.psk_generated and printed is not None:
        again = parse_invocation(invocation.argv, make_lab_psk=lambda: printed.value.decode("utf-8"))
    else:
        again = parse_invocation(invocation.argv)
    path, optional = started.control_path, started.control_optional
    return attrs.evolve(again.settings, control_path=path, control_optional=optional)


async def _reload_on_sighup(hangups: AsyncIterator[int], info: Any) -> None:
    """SIGHUP reloads the configuration (:mod:`responder.server.reload`); errors are logged there."""
    async for _ in hangups:
        with contextlib.suppress(ConfigError):  # logged by the reloader; the old configuration stays
            info.reloader.reload("SIGHUP")


def _with_control(invocation: Invocation) -> ServerSettings:
    """The settings with the default control socket, unless it was named, turned off, in use or unusable."""
    settings = invocation.settings
    if not invocation.control_default:
        return settings
    from responder.control_client import ControlError, default_control_path
    from responder.server.control import control_in_use

    try:
        path = default_control_path()
    except ControlError as error:
        logger.warning("no default control socket: %s", error)
        return settings
    if control_in_use(path):
        logger.info("no control socket: another responder answers on %s (name one with --control PATH)", path)
        return settings
    return attrs.evolve(settings, control_path=path, control_optional=True)


#: Why a listener could not be opened, by errno, in words a user can act on.
_BIND_ERRORS: Final = {
    errno.EADDRINUSE: "address already in use (pick another with --tcp/--udp/--tls HOST:PORT)",
    errno.EADDRNOTAVAIL: "that address is not one of this host's",
    errno.EACCES: "ports below 1024 need root or CAP_NET_BIND_SERVICE",
}


def _busy_listener(listeners: Sequence[Listener], code: int = errno.EADDRINUSE) -> Listener | None:
    """The first listener that cannot be bound with ``code`` (after a failed start, to name it)."""
    for listener in listeners:
        if listener.port == 0:
            continue
        address = ipaddress.ip_address(listener.host)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        kind = socket.SOCK_STREAM if listener.kind.is_stream else socket.SOCK_DGRAM
        try:
            with socket.socket(family, kind) as probe:
                if listener.kind.is_stream:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as trio's listeners do
                if address.version == 6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind((listener.host, listener.port))
        except OSError as exc:
            if exc.errno == code:
                return listener
    return None


def _startup_errors(exc: BaseException) -> list[OSError | LocalError] | None:
    """The OSErrors (and LocalErrors: a control socket in use) inside ``exc`` if that is all it
    holds (a failure to start), else ``None``."""
    if isinstance(exc, OSError | LocalError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found: list[OSError | LocalError] = []
        for inner in exc.exceptions:
            errors = _startup_errors(inner)
            if errors is None:
                return None
            found += errors
        return found
    return None


def _error(message: str) -> None:
    """``error: MESSAGE`` on stderr, one line; argv that was not UTF-8 is shown escaped."""
    line = f"error: {message}".encode("utf-8", "backslashreplace").decode("utf-8")
    print(line.replace("\n", " "), file=sys.stderr)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of ``ikev2-responder`` and ``python -m responder``; returns the exit status."""
    output = out or sys.stdout
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in CONTROL_COMMANDS:  # asking a running responder
        from responder.control_client import main as control_main

        return control_main(arguments, out=output)
    if arguments and arguments[0] == "certs":  # the lab PKI: files, no server
        from responder.pki_cli import main as certs_main

        return certs_main(arguments[1:], out=output)
    try:
        invocation = parse_invocation(arguments)
        _check_files(invocation)
    except ConfigError as exc:
        _error(str(exc))
        return 2
    if invocation.check_config:
        return _report_config(invocation, output)
    try:
        configure_logging(invocation.settings.log_level, options=invocation.log)
    except OSError as exc:
        _error(f"--log-file: cannot open {invocation.log.file!r}: {exc.strerror or exc}")
        return 2
    for warning in start_warnings(invocation):
        logger.warning("%s", warning)
    try:
        return trio.run(functools.partial(_run, invocation, output))
    except KeyboardInterrupt:  # Ctrl-C before the signal receiver was in place
        return 130
    except BaseException as exc:
        errors = _startup_errors(exc)
        if errors is None:
            raise
        first = errors[0]
        busy = None
        if isinstance(first, OSError) and first.errno in _BIND_ERRORS:
            busy = _busy_listener(invocation.settings.listeners, first.errno)
        if busy is not None:
            assert isinstance(first, OSError) and first.errno is not None
            _error(f"cannot listen on {busy}: {_BIND_ERRORS[first.errno]}")
        else:  # EACCES from a key-log directory is no port problem: say what it was
            _error(f"cannot start: {first}")
        return 1
