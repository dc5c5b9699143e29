"""Tests of responder.cli: flags to ServerSettings, the printed client configurations, the running command."""

from __future__ import annotations

import base64
import gc
import io
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path as FilePath
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from responder import __version__
from responder.cli import (
    LAB_CLIENT_ID,
    Invocation,
    LogOptions,
    client_view,
    configure_logging,
    libreswan_id,
    libreswan_snippet,
    main,
    parse_invocation,
    random_lab_psk,
    render_start,
    secret_text,
    seeded_random_bytes,
    start_warnings,
    swanctl_snippet,
    tls_note,
)
from responder.client import establish
from responder.core.config import (
    DEFAULT_IKE_PROPOSALS,
    ChildConfig,
    Config,
    ConfigError,
    Identity,
    Impairments,
    PskAuth,
    Secret,
)
from responder.core.endpoint import Endpoint
from responder.core.enums import EncrId, IdType, KeyExchangeId
from responder.core.key_exchange import KeyExchangeFactory
from responder.core.messages import decode_message
from responder.core.path import Path, Transport
from responder.core.payloads import KePayload, NoncePayload
from responder.garbage_collection import YOUNG_THRESHOLD, collect_less_often
from responder.server.keylog import ESP_TABLE, IKE_TABLE
from responder.server.settings import DEFAULT_LISTENERS, Listener, WebSettings
from tests.fakes.pair import child_request, initiator_settings
from tests.fakes.pki import Authority

ROOT = FilePath(__file__).resolve().parent.parent
LAB_PSK = "lab-fixed-for-tests"
FINGERPRINT = ":".join(["AB"] * 32)
ALL_IPV4 = str(ipaddress.IPv4Address(0))  # the wildcard host


def parse(*argv: str) -> Invocation:
    return parse_invocation(argv, make_lab_psk=lambda: LAB_PSK)


def error_of(*argv: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(*argv)
    return info.value


def write(tmp_path: FilePath, text: str) -> str:
    path = tmp_path / "responder.toml"
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------------
# No arguments: TCP and UDP on 127.0.0.1:4500, a random lab PSK, the defaults
# ---------------------------------------------------------------------------


def test_a3_no_arguments_serve_tcp_and_udp_on_port_4500() -> None:
    invocation = parse()
    settings = invocation.settings
    # RFC 9329 §2 (row A3): TCP 4500; UDP 4500 beside it (row A6); loopback, no root needed
    assert settings.listeners == DEFAULT_LISTENERS
    assert {(listener.kind, listener.host, listener.port) for listener in settings.listeners} == {
        (Transport.TCP, "127.0.0.1", 4500),
        (Transport.UDP, "127.0.0.1", 4500),
    }
    config = settings.config
    assert config.any_id_psk == Secret(LAB_PSK.encode()) == invocation.shown_psk
    assert invocation.psk_generated
    assert config.peers == ()
    assert config.local_id is None  # the address the request arrived on
    assert config.ike_proposals == DEFAULT_IKE_PROPOSALS
    assert config.lab_children == (ChildConfig("default"),)  # any selectors: narrowed to the initiator's
    assert settings.log_level == "info" and settings.keylog_dir is None


def test_default_proposals_are_the_announced_ones() -> None:
    encryption = {encr for proposal in DEFAULT_IKE_PROPOSALS for encr, _bits in proposal.encryption}
    assert encryption == {EncrId.AES_GCM_16, EncrId.CHACHA20_POLY1305, EncrId.AES_CBC}
    for proposal in DEFAULT_IKE_PROPOSALS:
        assert [int(group) for group in proposal.key_exchange] == [31, 19, 20, 14]
    assert DEFAULT_IKE_PROPOSALS[0].key_exchange[0] is KeyExchangeId.CURVE25519


def test_random_lab_psks() -> None:
    first, second = random_lab_psk(), random_lab_psk()
    assert first != second
    assert first.startswith("lab-") and len(first) >= 4 + 24
    assert Secret.parse(first) == Secret(first.encode())  # pastes back into --psk unchanged
    invocation = parse_invocation([])
    assert invocation.psk_generated and invocation.shown_psk is not None
    assert invocation.shown_psk.value.startswith(b"lab-")


# ---------------------------------------------------------------------------
# Listener flags
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--tcp", "127.0.0.1:4500"], [Listener(Transport.TCP, "127.0.0.1", 4500)]),
        (["--udp", "0.0.0.0:500"], [Listener(Transport.UDP, ALL_IPV4, 500)]),
        (["--tls", "[::1]:443"], [Listener(Transport.TLS, "::1", 443)]),
        (["--tcp", "[2001:DB8::7]:4500"], [Listener(Transport.TCP, "2001:db8::7", 4500)]),
        (
            [
                "--udp",
                "127.0.0.1:500",
                "--tcp",
                "127.0.0.1:4500",
                "--udp",
                "127.0.0.1:4500",
                "--tls",
                "[::]:443",
            ],
            [
                Listener(Transport.UDP, "127.0.0.1", 500),
                Listener(Transport.TCP, "127.0.0.1", 4500),
                Listener(Transport.UDP, "127.0.0.1", 4500),
                Listener(Transport.TLS, "::", 443),
            ],
        ),
        (
            ["--tcp", "127.0.0.1:0", "--tcp", "127.0.0.1:0"],  # port 0 twice: two sockets
            [Listener(Transport.TCP, "127.0.0.1", 0), Listener(Transport.TCP, "127.0.0.1", 0)],
        ),
    ],
)
def test_a4_listener_flags_replace_the_defaults(argv: list[str], expected: list[Listener]) -> None:
    assert list(parse(*argv).settings.listeners) == expected


def test_listener_flags_replace_the_files(tmp_path: FilePath) -> None:
    config = write(tmp_path, '[responder]\nlisten = ["udp://0.0.0.0:500", "tcp://0.0.0.0:4500"]\n')
    assert parse("--config", config).settings.listeners == (
        Listener(Transport.UDP, ALL_IPV4, 500),
        Listener(Transport.TCP, ALL_IPV4, 4500),
    )
    assert parse("--config", config, "--udp", "127.0.0.1:4500").settings.listeners == (
        Listener(Transport.UDP, "127.0.0.1", 4500),
    )


@pytest.mark.parametrize(
    ("argv", "field", "message"),
    [
        (["--tcp", "127.0.0.1"], "--tcp 127.0.0.1", "'127.0.0.1' has no port"),
        (["--tcp", "localhost:4500"], "--tcp localhost:4500", "host 'localhost' is not an IPv4 address"),
        (["--udp", "::1:4500"], "--udp ::1:4500", "an IPv6 address needs brackets (udp://[::1]:4500)"),
        (["--udp", "[::1]:65536"], "--udp [::1]:65536", "port '65536' is not a number in 0..65535"),
        (["--tls", "1.2.3.4:x"], "--tls 1.2.3.4:x", "port 'x' is not a number"),
        (
            ["--tcp", "127.0.0.1:4500", "--tcp", "127.0.0.1:4500"],
            "--tcp 127.0.0.1:4500",
            "tcp://127.0.0.1:4500 repeats",
        ),
        (
            ["--tcp", "127.0.0.1:443", "--tls", "127.0.0.1:443"],
            "--tls 127.0.0.1:443",
            "needs the same TCP port as tcp://127.0.0.1:443",
        ),
    ],
)
def test_bad_listener_flags_name_the_flag(argv: list[str], field: str, message: str) -> None:
    error = error_of(*argv)
    assert error.field == field
    assert message in error.message


# ---------------------------------------------------------------------------
# --psk, --id and the other flags
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "octets"),
    [
        ("correct horse", b"correct horse"),
        ("0x00ff10", b"\x00\xff\x10"),
        ("0X00FF10", b"\x00\xff\x10"),
        ("0s" + base64.b64encode(b"\x01secret").decode(), b"\x01secret"),
        ("x" * 100, b"x" * 100),  # RFC 7296 §2.15: 64 octets and more must work
    ],
)
def test_psk_forms(text: str, octets: bytes) -> None:
    invocation = parse("--psk", text)
    assert invocation.settings.config.any_id_psk == Secret(octets) == invocation.shown_psk
    assert not invocation.psk_generated


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty secret"),
        ("0x", "'0x' is not followed by hex digits"),
        ("0xabc", "odd number of hex digits"),
        ("0xzz", "not a hex string"),
        ("0s!!", "not valid base64"),
    ],
)
def test_bad_psk(text: str, message: str) -> None:
    error = error_of("--psk", text)
    assert error.field == "--psk" and message in error.message
    assert text not in str(error) or text in ("", "0x")  # the secret is not echoed


PEERS = '[peers.alice]\nremote_id = "alice@example.org"\npsk = "alice secret"\n'


def test_psk_with_peers_in_the_file_is_the_lab_key_beside_them(tmp_path: FilePath) -> None:
    invocation = parse("--config", write(tmp_path, PEERS), "--psk", "lab key")
    config = invocation.settings.config
    assert [peer.name for peer in config.peers] == ["alice"]
    assert config.peers[0].auth == PskAuth(Secret(b"alice secret"))  # the peer keeps its key
    assert config.any_id_psk == Secret(b"lab key")
    assert config.find_peer(Identity.parse("alice@example.org")).auth == PskAuth(Secret(b"alice secret"))  # type: ignore[union-attr]
    assert config.find_peer(Identity.parse("@anyone.else")).auth == PskAuth(Secret(b"lab key"))  # type: ignore[union-attr]


def test_file_with_peers_gets_no_random_psk(tmp_path: FilePath) -> None:
    invocation = parse("--config", write(tmp_path, PEERS))
    assert invocation.settings.config.any_id_psk is None
    assert invocation.shown_psk is None and not invocation.psk_generated


def test_psk_overrides_the_files_lab_key(tmp_path: FilePath) -> None:
    config = write(tmp_path, '[lab]\nany_id_psk = "from the file"\n')
    assert parse("--config", config).settings.config.any_id_psk == Secret(b"from the file")
    assert parse("--config", config).shown_psk is None  # the file's key is not printed
    assert parse("--config", config, "--psk", "flag").settings.config.any_id_psk == Secret(b"flag")


@pytest.mark.parametrize(
    ("text", "id_type", "data"),
    [
        ("@vpn.example.org", IdType.ID_FQDN, b"vpn.example.org"),
        ("vpn.example.org", IdType.ID_FQDN, b"vpn.example.org"),
        ("gateway", IdType.ID_FQDN, b"gateway"),
        ("admin@example.org", IdType.ID_RFC822_ADDR, b"admin@example.org"),
        ("192.0.2.1", IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1])),
        ("2001:db8::1", IdType.ID_IPV6_ADDR, bytes.fromhex("20010db8000000000000000000000001")),
        ("keyid:0a0b0c", IdType.ID_KEY_ID, b"\x0a\x0b\x0c"),
    ],
)
def test_id_forms(text: str, id_type: IdType, data: bytes) -> None:
    local_id = parse("--id", text).settings.config.local_id
    assert local_id is not None
    assert (local_id.id_type, local_id.data) == (id_type, data)


def test_id_dn() -> None:
    local_id = parse("--id", "C=CH, O=Example, CN=vpn").settings.config.local_id
    assert local_id is not None and local_id.id_type is IdType.ID_DER_ASN1_DN
    assert local_id.data.startswith(b"\x30")  # a DER SEQUENCE of RDNs
    assert str(local_id) == "C=CH, O=Example, CN=vpn"
    assert parse("--id", "C=CH,O=Example,CN=vpn").settings.config.local_id == local_id


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty identity"), ("%any", "is a pattern"), ("keyid:abc", "even"), ("two words", "whitespace")],
)
def test_bad_id(text: str, message: str) -> None:
    error = error_of("--id", text)
    assert error.field == "--id" and message in error.message


def test_tls_files_keylog_and_log_level(tmp_path: FilePath) -> None:
    cert, key = lab_files(tmp_path)
    settings = parse(
        "--tls",
        "127.0.0.1:443",
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--keylog",
        "keys",
        "--log-level",
        "DEBUG",
    ).settings
    assert settings.tls_cert == cert and settings.tls_key == key
    assert settings.config.credential is not None  # --cert/--key authenticate IKE too
    assert settings.keylog_dir == FilePath("keys")
    assert settings.log_level == "debug"


def lab_files(directory: FilePath) -> tuple[FilePath, FilePath]:
    """A certificate and key (PEM) and their CA in ``directory``: cert.pem, key.pem, ca.pem."""
    root = Authority.root()
    certificate, key = root.issue("C=XX, O=Lab, CN=moon", dns=["moon.lab"])
    (directory / "cert.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    (directory / "ca.pem").write_bytes(root.certificate.public_bytes(Encoding.PEM))
    return directory / "cert.pem", directory / "key.pem"


def test_certificate_flags(tmp_path: FilePath) -> None:
    """--cert/--key authenticate IKE; --ca with no peers turns on lab certificate mode."""
    cert, key = lab_files(tmp_path)
    invocation = parse("--cert", str(cert), "--key", str(key), "--ca", str(tmp_path / "ca.pem"))
    config = invocation.settings.config
    assert (
        config.credential is not None
        and config.credential.certificate.subject.rfc4514_string() == "CN=moon,O=Lab,C=XX"
    )
    assert len(config.trust.anchors) == 1 and config.lab_pubkey
    assert config.any_id_psk is not None  # the lab PSK still serves PSK initiators


@pytest.mark.parametrize(
    ("make", "flag", "message"),
    [
        (lambda d: ["--cert", str(d / "nope.pem"), "--key", str(d / "key.pem")], "--cert", "cannot read"),
        (
            lambda d: ["--cert", str(d / "key.pem"), "--key", str(d / "key.pem")],
            "--cert",
            "holds no readable certificate",
        ),
        (
            lambda d: ["--cert", str(d / "cert.pem"), "--key", str(d / "cert.pem")],
            "--cert",
            "holds no readable private key",
        ),
        (lambda d: ["--ca", str(d / "ca.pem")], "--ca", "needs --cert and --key"),
        (lambda d: ["--ca", str(d / "key.pem")], "--ca", "holds no readable certificate"),
        (lambda d: ["--crl", str(d / "ca.pem")], "--crl", "holds no readable CRL"),
    ],
)
def test_certificate_flag_errors_name_the_flag_and_file(
    tmp_path: FilePath, make: Any, flag: str, message: str
) -> None:
    lab_files(tmp_path)
    with pytest.raises(ConfigError, match=message) as caught:
        parse(*make(tmp_path))
    assert caught.value.field == flag


def test_a_key_of_another_certificate_is_refused(tmp_path: FilePath) -> None:
    cert, _ = lab_files(tmp_path)
    other = Authority.root("CN=other", index=5).key
    (tmp_path / "other.pem").write_bytes(
        other.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    with pytest.raises(
        ConfigError, match=r"the private key in '.*other.pem' does not belong to the first certificate"
    ):
        parse("--cert", str(cert), "--key", str(tmp_path / "other.pem"))


def test_tls_listener_without_files_is_self_signed() -> None:
    settings = parse("--tls", "127.0.0.1:443").settings
    assert settings.tls_cert is None and settings.tls_key is None


@pytest.mark.parametrize(
    ("argv", "field", "message"),
    [
        (["--cert", "c.pem"], "--key", "missing: a certificate needs its private key"),
        (["--key", "k.pem"], "--cert", "missing: a private key needs its certificate"),
        (["--keylog", ""], "--keylog", "empty path"),
        (["--log-level", "verbose"], "--log-level", "expected one of debug, info, warning, error"),
    ],
)
def test_bad_values_name_the_flag(argv: list[str], field: str, message: str) -> None:
    error = error_of(*argv)
    assert (error.field, error.message.startswith(message)) == (field, True), error


def test_flags_override_the_file(tmp_path: FilePath) -> None:
    config = write(
        tmp_path,
        '[responder]\nid = "@file.example"\nlisten = ["tcp://127.0.0.1:4500"]\nlog_level = "warning"\n'
        '[tls]\ncert = "cert.pem"\nkey = "key.pem"\n[keylog]\ndir = "file-keys"\n',
    )
    lab_files(tmp_path)
    from_file = parse("--config", config).settings
    assert from_file.config.local_id == Identity.parse("@file.example")
    assert from_file.tls_cert == tmp_path / "cert.pem"  # relative to the file
    flag_cert = os.path.relpath(tmp_path / "cert.pem")
    overridden = parse(
        "--config", config, "--id", "@flag.example", "--cert", flag_cert, "--keylog", "flag-keys",
        "--log-level", "error",
    ).settings  # fmt: skip
    assert overridden.config.local_id == Identity.parse("@flag.example")
    assert overridden.tls_cert == FilePath(flag_cert)  # relative to the working directory
    assert overridden.tls_key == tmp_path / "key.pem"  # not given: the file's
    assert overridden.config.credential is not None  # the pair authenticates IKE
    assert overridden.keylog_dir == FilePath("flag-keys")
    assert overridden.log_level == "error"
    assert overridden.listeners == from_file.listeners


def test_file_errors_name_the_files_key(tmp_path: FilePath) -> None:
    config = write(tmp_path, '[peers.alice]\nremote_id = "%any"\npsk = ""\n')
    error = error_of("--config", config)
    assert str(error) == "peers.alice.psk: empty secret"
    missing = error_of("--config", str(tmp_path / "absent.toml"))
    assert "cannot read" in str(missing) and "absent.toml" in str(missing)


def test_main_prints_one_line_and_exits_2(tmp_path: FilePath, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, '[peers.alice]\nremote_id = "%any"\npsk = ""\n')
    assert main(["--config", config]) == 2
    assert capsys.readouterr().err == "error: peers.alice.psk: empty secret\n"
    assert main(["--psk", ""]) == 2
    assert capsys.readouterr().err == "error: --psk: empty secret\n"
    assert (
        main(["--tls", "127.0.0.1:0", "--cert", str(tmp_path / "no.pem"), "--key", str(tmp_path / "no.key")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: --cert: cannot read") and "No such file" in err and err.count("\n") == 1
    not_pem = write(tmp_path, '[tls]\ncert = "/etc/hostname"\nkey = "/etc/hostname"\n')
    assert main(["--config", not_pem, "--tls", "127.0.0.1:0", "--no-control"]) == 2
    assert capsys.readouterr().err == (
        "error: tls.cert: '/etc/hostname' holds no readable certificate (neither PEM nor DER)\n"
    )


def test_arguments_that_are_not_utf8(capsys: pytest.CaptureFixture[str]) -> None:
    # argv bytes that are not UTF-8 arrive as lone surrogates (PEP 383)
    for flag in ("--id", "--psk", "--tcp"):
        assert main([flag, "bad\udcff"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag}") and err.count("\n") == 1, err


def test_usage_errors_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--no-such-flag"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--tcp"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ikev2-responder {__version__}"


# ---------------------------------------------------------------------------
# The printed client configurations
# ---------------------------------------------------------------------------

TCP = Listener(Transport.TCP, "127.0.0.1", 4500)
UDP = Listener(Transport.UDP, "127.0.0.1", 4500)


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_libreswan_connection_for_a_tcp_listener() -> None:
    conf, secrets = libreswan_snippet([Listener(Transport.TCP, "192.0.2.1", 10443)], client_view(parse()))
    assert lines(conf)[:9] == [
        "conn ikev2-lab-tcp",
        "ikev2=insist",
        "enable-tcp=yes",
        "tcp-remoteport=10443",
        "authby=secret",
        "left=%defaultroute",
        "# no default route on the client (a lab namespace)? then left=<the client's own address>",
        "leftid=@client.lab",
        "right=192.0.2.1",
    ]
    assert "own host" not in conf  # 192.0.2.1 is not a loopback address
    assert "rightid=" not in conf  # our ID is the address the client connects to
    assert "auto=add" in lines(conf)
    assert secrets == f'@client.lab 192.0.2.1 : PSK "{LAB_PSK}"\n'


def test_libreswan_with_our_id_and_a_hex_psk() -> None:
    view = client_view(parse("--id", "@vpn.example.org", "--psk", "0x00ff"))
    conf, secrets = libreswan_snippet([TCP], view)
    assert "rightid=@vpn.example.org" in lines(conf)
    assert secrets == "@client.lab @vpn.example.org : PSK 0x00ff\n"


def test_strongswan_connection_for_a_udp_listener() -> None:
    text = swanctl_snippet(
        [Listener(Transport.UDP, "192.0.2.1", 4500)], client_view(parse("--id", "@vpn.example.org"))
    )
    got = lines(text)
    assert "remote_addrs = 192.0.2.1" in got
    assert "remote_port = 4500" in got  # our UDP listener is on 4500 only
    # charon adds the non-ESP marker only on its own NAT-T port (checked against charon 5.9.8)
    assert "local_port = 4500  # charon's NAT-T port: adds the non-ESP marker" in got
    assert not any(line.startswith("mobike") for line in got)
    assert "version = 2" in got
    assert f"proposals = {','.join(str(p) for p in DEFAULT_IKE_PROPOSALS)}" in got
    assert "esp_proposals = aes256gcm16-aes128gcm16-chacha20poly1305,aes256-sha256" in got
    assert got.count("auth = psk") == 2
    assert 'id = "client.lab"' in got and 'id = "vpn.example.org"' in got
    assert 'id-1 = "client.lab"' in got
    assert f'secret = "{LAB_PSK}"' in got
    assert text.count("{") == text.count("}")
    assert re.search(r"secrets \{\s+ike-lab \{", text)
    assert "lab {" in got
    assert got[-1] == "# start with: swanctl --load-all && swanctl --initiate --child lab"


@pytest.mark.parametrize(
    ("port", "remote_port", "local_port", "mobike"),
    [(500, False, False, True), (4500, True, True, False), (10500, True, True, False)],
)
def test_strongswan_ports(port: int, remote_port: bool, local_port: bool, mobike: bool) -> None:
    got = lines(swanctl_snippet([Listener(Transport.UDP, "192.0.2.1", port)], client_view(parse())))
    assert (f"remote_port = {port}" in got) is remote_port
    assert any(line.startswith("local_port = 4500") for line in got) is local_port
    # a lone port-500 listener: charon would move to 4500 for MOBIKE, where nothing listens
    assert ("mobike = no  # no udp://192.0.2.1:4500 here: stay on 500 (unless NAT)" in got) is mobike


def udp_connections(text: str) -> dict[str, str]:
    """The connections of a printed swanctl.conf, by name, with their bodies."""
    return dict(re.findall(r"(?ms)^    (ikev2-lab-udp\S*) \{\n(.*?)^    \}", text))


def child_names(text: str) -> list[str]:
    return re.findall(r"^            (\S+) \{$", text, re.MULTILINE)


def test_strongswan_500_and_4500_on_one_address_are_one_connection() -> None:
    listeners = [
        Listener(Transport.UDP, "192.0.2.1", 500),
        Listener(Transport.TCP, "192.0.2.1", 4500),
        Listener(Transport.UDP, "192.0.2.1", 4500),
    ]
    text = swanctl_snippet(listeners, client_view(parse()))
    [(name, body)] = udp_connections(text).items()
    assert name == "ikev2-lab-udp"
    got = lines(body)
    assert "remote_addrs = 192.0.2.1" in got
    # charon starts on 500 and moves to 4500 by itself: no port settings, MOBIKE left on
    assert not any(line.startswith(("remote_port", "local_port", "mobike")) for line in got)
    assert "# starts on udp://192.0.2.1:500, then charon moves to udp://192.0.2.1:4500 by itself" in got
    assert child_names(text) == ["lab"]
    assert lines(text)[-1] == "# start with: swanctl --load-all && swanctl --initiate --child lab"
    # the order of the flags does not matter
    assert swanctl_snippet(listeners[::-1], client_view(parse())) == text


def test_strongswan_children_have_unique_names() -> None:
    listeners = [
        Listener(Transport.UDP, "192.0.2.1", 4500),
        Listener(Transport.UDP, "192.0.2.1", 500),
        Listener(Transport.UDP, "192.0.2.2", 500),  # no 4500 on this address: a connection of its own
        Listener(Transport.UDP, "192.0.2.3", 4500),  # no 500 on this address either
        Listener(Transport.UDP, "192.0.2.1", 10500),
        Listener(Transport.UDP, "2001:db8::1", 500),
        Listener(Transport.UDP, "2001:db8::1", 4500),
    ]
    text = swanctl_snippet(listeners, client_view(parse()))
    connections = udp_connections(text)
    assert list(connections) == [f"ikev2-lab-udp{suffix}" for suffix in ("", "-2", "-3", "-4", "-5")]
    addresses_ports = [
        (
            re.search(r"remote_addrs = (\S+)", body).group(1),  # type: ignore[union-attr]
            re.search(r"remote_port = (\d+)", body).group(1) if "remote_port" in body else "500",  # type: ignore[union-attr]
        )
        for body in connections.values()
    ]
    assert addresses_ports == [
        ("192.0.2.1", "500"),  # the pair, where its first listener was given
        ("192.0.2.2", "500"),
        ("192.0.2.3", "4500"),
        ("192.0.2.1", "10500"),
        ("2001:db8::1", "500"),
    ]
    children = child_names(text)
    assert children == ["lab", "lab-2", "lab-3", "lab-4", "lab-5"]
    assert len(set(children)) == len(children)
    assert lines(text)[-5:] == [
        "# start with: swanctl --load-all && swanctl --initiate --child lab",
        "#   ikev2-lab-udp-2: swanctl --initiate --child lab-2",
        "#   ikev2-lab-udp-3: swanctl --initiate --child lab-3",
        "#   ikev2-lab-udp-4: swanctl --initiate --child lab-4",
        "#   ikev2-lab-udp-5: swanctl --initiate --child lab-5",
    ]


def test_strongswan_on_the_responders_host() -> None:
    # A loopback listener: charon runs on this host, where the responder may hold 500 and 4500.
    got = lines(swanctl_snippet([UDP], client_view(parse())))
    assert "remote_addrs = 127.0.0.1" in got
    assert "# set charon { port = 0  port_nat_t = 14500 } (port = 0: any free port)" in got
    assert "remote_port = 4500" in got
    assert "local_port = 14500  # charon's NAT-T port: adds the non-ESP marker" in got
    pair = lines(
        swanctl_snippet(
            [Listener(Transport.UDP, "::1", 500), Listener(Transport.UDP, "::1", 4500)], client_view(parse())
        )
    )
    assert "# set charon { port = 0  port_nat_t = 14500 } (port = 0: any free port)" in pair
    assert not any(line.startswith(("remote_port", "local_port")) for line in pair)
    remote = lines(swanctl_snippet([Listener(Transport.UDP, "192.0.2.1", 4500)], client_view(parse())))
    assert not any("port_nat_t" in line for line in remote)


def test_ipv6_and_wildcard_listeners() -> None:
    view = client_view(parse())
    conf, secrets = libreswan_snippet([Listener(Transport.TCP, "2001:db8::2", 4500)], view)
    assert "right=2001:db8::2" in lines(conf)
    assert secrets.startswith("@client.lab 2001:db8::2 : PSK")
    swan = swanctl_snippet([Listener(Transport.UDP, "::", 4500)], view)
    assert any(
        line.startswith("remote_addrs = ::1  # the responder listens on every IPv6") for line in lines(swan)
    )


def test_one_connection_per_listener() -> None:
    listeners = [
        TCP,
        Listener(Transport.TCP, "127.0.0.1", 4501),
        UDP,
        Listener(Transport.UDP, "127.0.0.1", 10500),
    ]
    conf, secrets = libreswan_snippet(listeners, client_view(parse()))
    assert re.findall(r"^conn (\S+)", conf, re.MULTILINE) == ["ikev2-lab-tcp", "ikev2-lab-tcp-2"]
    assert re.findall(r"tcp-remoteport=(\d+)", conf) == ["4500", "4501"]
    assert secrets.count("\n") == 1  # same IDs, same key: one line
    swan = swanctl_snippet(listeners, client_view(parse()))
    assert list(udp_connections(swan)) == ["ikev2-lab-udp", "ikev2-lab-udp-2"]
    assert child_names(swan) == ["lab", "lab-2"]


def test_libreswan_without_a_default_route_or_on_loopback() -> None:
    view = client_view(parse())
    conf = lines(libreswan_snippet([Listener(Transport.TCP, "192.0.2.1", 4500)], view)[0])
    # pluto cannot resolve %defaultroute without a default route (checked against pluto 4.10):
    # the line after it says what to write instead
    index = conf.index("left=%defaultroute")
    assert conf[index + 1] == (
        "# no default route on the client (a lab namespace)? then left=<the client's own address>"
    )
    # pluto refuses an address of its own host: a loopback listener says so
    for host in ("127.0.0.1", "::1", ALL_IPV4):  # the wildcard's guessed address is loopback too
        text = libreswan_snippet([Listener(Transport.TCP, host, 4500)], view)[0]
        assert (
            '# pluto refuses an address of its own host ("... are not usable"): serve an address it' in text
        )
        assert (
            "# reaches from another machine or network namespace (--tcp ADDRESS:PORT) and put it in right="
            in text
        )
    assert "own host" not in "\n".join(conf)


def test_keys_from_the_file_are_not_printed(tmp_path: FilePath) -> None:
    config = write(tmp_path, PEERS + '[lab]\nany_id_psk = "file lab key"\n')
    invocation = parse("--config", config)
    text = render_start([TCP, UDP], None, invocation)
    assert "alice secret" not in text and "file lab key" not in text
    assert f"PSK <lab.any_id_psk in {config}>" in text
    assert "lab PSK" not in text


def test_peers_only_use_the_first_peer(tmp_path: FilePath) -> None:
    invocation = parse(
        "--config", write(tmp_path, PEERS.replace("alice secret", "s3") + PEERS.replace("alice", "bob"))
    )
    view = client_view(invocation)
    assert view.client_id == Identity.parse("alice@example.org")
    assert view.secret is None and view.secret_hint.startswith("<peers.alice.psk in ")
    conf, secrets = libreswan_snippet([TCP], view)
    assert "leftid=alice@example.org" in lines(conf)
    assert "s3" not in secrets
    wildcard = parse("--config", write(tmp_path, PEERS.replace('"alice@example.org"', '"*@example.org"')))
    assert client_view(wildcard).client_id is None
    assert "leftid=<an identity matching *@example.org>" in libreswan_snippet([TCP], client_view(wildcard))[0]


def test_tls_note_has_the_fingerprint() -> None:
    note = tls_note([Listener(Transport.TLS, "192.0.2.1", 443)], FINGERPRINT)
    assert f"# tls://192.0.2.1:443: RFC 9329 inside TLS, certificate SHA-256 {FINGERPRINT}" in note
    assert "libreswan has no TLS" in note and "espintcp_standin.py" in note
    # the recipe the interop tests use: pluto keeps right= the responder, nftables hands its
    # connection to the stand-in (pluto refuses an address of its own host)
    assert "a libreswan connection as printed for --tcp, with right=192.0.2.1 and tcp-remoteport=443;" in note
    assert "#   nft 'add rule ip standin out meta mark != 0x2a tcp dport 443 redirect to :14500'" in note
    assert "--listen 127.0.0.1:14500 --mark 0x2a" in note
    assert f"--connect 192.0.2.1:443 --tls --tls-fingerprint {FINGERPRINT}" in note
    ipv6 = tls_note([Listener(Transport.TLS, "::", 10443)], FINGERPRINT)
    assert f"--connect [::1]:10443 --tls --tls-fingerprint {FINGERPRINT}" in ipv6
    assert "nft 'add rule ip6 standin out meta mark != 0x2a tcp dport 10443 redirect to :14500'" in ipv6
    assert "--listen [::1]:14500" in ipv6


def test_render_start_has_every_section_once() -> None:
    tls = Listener(Transport.TLS, "127.0.0.1", 443)
    text = render_start([TCP, UDP, tls], FINGERPRINT, parse())
    headers = re.findall(r"^===== (.*?) =====$", text, re.MULTILINE)
    assert headers == [
        f"ikev2-responder {__version__} is running (Ctrl-C or SIGTERM stops it)",
        "libreswan ipsec.conf (TCP, RFC 9329)",
        "libreswan ipsec.secrets",
        "strongSwan swanctl.conf (UDP)",
        "TLS",
        "end",
    ]
    assert f"lab PSK (LAB SECRET: random, for this run only, any initiator ID): {LAB_PSK}" in text
    assert "listening on tcp://127.0.0.1:4500  (RFC 9329 TCP encapsulation)" in text
    assert (
        f"listening on tls://127.0.0.1:443  (RFC 9329 inside TLS, certificate SHA-256 {FINGERPRINT})" in text
    )


def test_only_the_sections_of_open_listeners() -> None:
    tcp_only = render_start([TCP], None, parse())
    assert "libreswan ipsec.conf" in tcp_only and "swanctl" not in tcp_only and "===== TLS" not in tcp_only
    udp_only = render_start([UDP], None, parse())
    assert "swanctl.conf" in udp_only and "libreswan" not in udp_only


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("@vpn.example.org", "@vpn.example.org"),
        ("vpn", "@vpn"),
        ("admin@example.org", "admin@example.org"),
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("C=CH, O=Example, CN=vpn", '"C=CH, O=Example, CN=vpn"'),
        ("keyid:0a0b", "@#0a0b"),
    ],
)
def test_libreswan_ids(text: str, rendered: str) -> None:
    assert libreswan_id(Identity.parse(text)) == rendered


@pytest.mark.parametrize(
    ("octets", "rendered"),
    [
        (b"plain text", '"plain text"'),
        (b'has "quotes"', "0x" + b'has "quotes"'.hex()),
        (b"back\\slash", "0x" + b"back\\slash".hex()),
        (b"\x00\xff", "0x00ff"),
        (b"0xlooks-like-hex", "0x" + b"0xlooks-like-hex".hex()),
        ("ünïcode".encode(), "0x" + "ünïcode".encode().hex()),
    ],
)
def test_secret_text(octets: bytes, rendered: str) -> None:
    assert secret_text(Secret(octets)) == rendered


def test_lab_client_id_is_claimed_by_no_peer_in_lab_mode() -> None:
    assert Config(any_id_psk=Secret(b"k")).find_peer(LAB_CLIENT_ID) is not None


# ---------------------------------------------------------------------------
# The command, as a process: printed ports and PSK work; SIGTERM and SIGINT stop it cleanly
# ---------------------------------------------------------------------------

END = b"===== end ====="
SHUTDOWN_TIMEOUT = 5.0  # ServerSettings's default
START_TIMEOUT = 30.0  # a cold interpreter on a loaded two-core machine


async def start(tmp_path: FilePath, *argv: str) -> tuple[trio.Process, str]:
    """``python -m responder ARGV`` with stdout piped; returns once the start banner is complete."""
    stderr = (tmp_path / "stderr.log").open("wb")
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "responder", *argv],
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stderr.close()
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(START_TIMEOUT):
            while END not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"exited early: {(tmp_path / 'stderr.log').read_text()}"
                output += chunk
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process, output.decode()


def banner_values(text: str) -> tuple[str, int, int]:
    """The lab PSK and the TCP and UDP ports, read from the printed configurations."""
    psk = re.search(r"^lab PSK \(LAB SECRET[^)]*\): (\S+)$", text, re.MULTILINE)
    tcp = re.search(r"^\s*tcp-remoteport=(\d+)$", text, re.MULTILINE)
    udp = re.search(r"^\s*remote_port = (\d+)$", text, re.MULTILINE)
    assert psk and tcp and udp, text
    return psk.group(1), int(tcp.group(1)), int(udp.group(1))


async def stop(process: trio.Process, signum: int) -> tuple[int, float]:
    started = trio.current_time()
    process.send_signal(signum)
    with trio.fail_after(SHUTDOWN_TIMEOUT + 5):
        code = await process.wait()
    return code, trio.current_time() - started


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a5_command_serves_what_it_prints_and_stops_cleanly(tmp_path: FilePath, signum: int) -> None:
    keys = tmp_path / "keys"
    process, text = await start(
        tmp_path, "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--keylog", str(keys)
    )
    try:
        psk, tcp_port, udp_port = banner_values(text)
        assert tcp_port != 0 and udp_port != 0  # the ports actually bound, not the 0 asked for
        assert f"listening on tcp://127.0.0.1:{tcp_port}" in text
        assert f"listening on udp://127.0.0.1:{udp_port}" in text
        assert f'@client.lab 127.0.0.1 : PSK "{psk}"' in text
        settings = initiator_settings(
            "aes256gcm16-prfsha256-x25519", child_request(), psk=Secret(psk.encode())
        )
        spis = []
        with trio.fail_after(20):
            for transport, port in ((Transport.UDP, udp_port), (Transport.TCP, tcp_port)):
                client = await establish(settings, Config(), transport, "127.0.0.1", port)
                assert client.established, client.reason
                spis.append(client.spi_i.hex())
                if transport is Transport.UDP:
                    await client.aclose()
        # the TCP client stays connected while the server shuts down
        ike_table = (keys / IKE_TABLE).read_text()
        assert all(re.search(rf"^{spi},", ike_table, re.MULTILINE) for spi in spis), ike_table
        assert (keys / ESP_TABLE).read_text().count("\n") == 4
        code, took = await stop(process, signum)
        await client.aclose()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = (tmp_path / "stderr.log").read_text()
    assert code == 0, log
    assert took < SHUTDOWN_TIMEOUT + 2, took
    assert f"{signal.Signals(signum).name} received: shutting down" in log
    assert "Traceback" not in log
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO +responder\.server\.serve: stopped$", log, re.MULTILINE
    )


async def test_the_printed_tls_fingerprint_pins_the_certificate(tmp_path: FilePath) -> None:
    process, text = await start(tmp_path, "--tls", "127.0.0.1:0", "--psk", "tls lab key")
    try:
        match = re.search(
            r"^listening on tls://127\.0\.0\.1:(\d+)  \(.*SHA-256 ([0-9A-F:]{95})\)$", text, re.MULTILINE
        )
        assert match, text
        assert 'lab PSK (from --psk, any initiator ID no peer claims): "tls lab key"' in text
        settings = initiator_settings(
            "aes256gcm16-prfsha256-x25519", child_request(), psk=Secret(b"tls lab key")
        )
        with trio.fail_after(20):
            client = await establish(
                settings,
                Config(),
                Transport.TLS,
                "127.0.0.1",
                int(match.group(1)),
                tls_fingerprint=match.group(2),
            )
            async with client:
                assert client.established, client.reason
        code, _took = await stop(process, signal.SIGTERM)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0


def run_command(argv: Sequence[str], timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "responder", *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_port_in_use_is_a_clear_error(kind: str) -> None:
    with socket.socket(type=socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        if kind == "tcp":
            busy.listen()
        port = busy.getsockname()[1]
        result = run_command(["--udp", "127.0.0.1:0", f"--{kind}", f"127.0.0.1:{port}"])
    assert result.returncode == 1
    assert f"error: cannot listen on {kind}://127.0.0.1:{port}: address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert "===== end" not in result.stdout


def test_configuration_error_exits_2(tmp_path: FilePath) -> None:
    config = write(tmp_path, '[peers.alice]\nremote_id = "%any"\npsk = ""\n')
    started = time.monotonic()
    result = run_command(["--config", config])
    assert result.returncode == 2
    assert result.stderr == "error: peers.alice.psk: empty secret\n"
    assert result.stdout == ""
    assert time.monotonic() - started < START_TIMEOUT


# ---------------------------------------------------------------------------
# The control socket and the subcommands that ask a running responder (issue 13)
# ---------------------------------------------------------------------------


def test_control_flags() -> None:
    assert parse().control_default and parse().settings.control_path is None  # resolved when serving
    named = parse("--control", "/run/lab.sock")
    assert named.settings.control_path == FilePath("/run/lab.sock") and not named.control_default
    assert not parse("--no-control").control_default
    assert error_of("--control", "").field == "--control"


def test_web_flag_is_web_listen_and_keeps_the_files_other_web_keys(tmp_path: FilePath) -> None:
    assert parse().settings.web is None  # off by default
    assert parse("--web", "127.0.0.1:0").settings.web == WebSettings("127.0.0.1", 0)
    assert parse("--web", "[::1]:8081").settings.web == WebSettings("::1", 8081)
    config = write(tmp_path, '[web]\nlisten = "127.0.0.1:9000"\nallow_remote = true\nhistory_messages = 7\n')
    assert parse("--config", config).settings.web == WebSettings("127.0.0.1", 9000, True, 7)
    web = parse("--config", config, "--web", "0.0.0.0:8080").settings.web
    assert web == WebSettings(ALL_IPV4, 8080, allow_remote=True, history_messages=7)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.0.0.0:8080", "0.0.0.0 is not a loopback address"),
        ("8080", "'8080' has no port"),
        ("http://127.0.0.1:8080", "give HOST:PORT without a scheme"),
        ("127.0.0.1:http", "port 'http' is not a number"),
    ],
)
def test_bad_web_flags_name_the_flag(text: str, message: str) -> None:
    error = error_of("--web", text)
    assert error.field == "--web" and message in error.message, error


def test_render_start_names_the_web_console() -> None:
    text = render_start([TCP], None, parse(), "http://127.0.0.1:8080/")
    assert (
        "web console on http://127.0.0.1:8080/  (and Prometheus metrics on http://127.0.0.1:8080/metrics)"
        in text
    )
    assert "web console" not in render_start([TCP], None, parse())


def test_subcommand_without_a_responder_says_where_it_looked(
    tmp_path: FilePath, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--control", str(tmp_path / "none.sock")]) == 1
    assert f"error: no responder at {tmp_path / 'none.sock'}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["terminate", "--control", str(tmp_path / "none.sock")])  # --ike or --peer is required
    assert exited.value.code == 2


async def test_status_list_sas_and_terminate_against_the_command(tmp_path: FilePath) -> None:
    control = tmp_path / "ctl.sock"
    process, text = await start(
        tmp_path, "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--control", str(control)
    )
    try:
        psk, tcp_port, _ = banner_values(text)
        settings = initiator_settings(
            "aes256gcm16-prfsha256-x25519", child_request(), psk=Secret(psk.encode())
        )
        with trio.fail_after(20):
            client = await establish(settings, Config(), Transport.TCP, "127.0.0.1", tcp_port)
        assert client.established, client.reason

        async def command(*argv: str) -> tuple[int, str]:
            done = await trio.run_process(
                [sys.executable, "-m", "responder", *argv, "--control", str(control)],
                capture_stdout=True,
                check=False,
                cwd=ROOT,
            )
            return done.returncode, done.stdout.decode()

        code, status = await command("status")
        assert code == 0 and f"listening on tcp://127.0.0.1:{tcp_port}" in status
        code, listed = await command("list-sas")
        assert code == 0
        assert f"IKE SA {client.spi_i.hex()}/{client.spi_r.hex()} established" in listed
        assert "peer alice@example.org" in listed
        code, ended = await command("terminate", "--ike", client.spi_r.hex())
        assert code == 0 and "Delete sent" in ended
        await client.process(0.5)
        assert not client.established
        code, _ = await command("stop-everything")
        assert code != 0  # not a subcommand: the server's own parser refuses it
        code, _ = await stop(process, signal.SIGTERM)
        await client.aclose()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    assert not control.exists()
    assert "control socket on" in (tmp_path / "stderr.log").read_text()


def test_seeded_random_bytes_are_a_repeatable_stream() -> None:
    one, two, other = seeded_random_bytes(7), seeded_random_bytes(7), seeded_random_bytes(8)
    first = [one(8), one(32), one(32)]
    assert first == [two(8), two(32), two(32)]
    assert first[1] != first[2] and other(8) != first[0]
    assert parse("--seed", "7").seed == 7 and parse().seed is None


async def test_seed_replays_the_responders_ike_sa_init_byte_for_byte(tmp_path: FilePath) -> None:
    """``--seed N``: the same request gets the same SPIr, KEr and Nr in two runs (a reference transcript)."""
    initiator = Endpoint(Config(), seeded_random_bytes(99), KeyExchangeFactory(seeded_random_bytes(98)))
    path = Path(Transport.UDP, ipaddress.ip_address("127.0.0.1"), 0, ipaddress.ip_address("127.0.0.1"), 0)
    initiator.initiate(initiator_settings("aes256gcm16-prfsha256-x25519"), path, 0.0)
    [request] = initiator.messages_to_send()
    answers = []
    for run in range(2):
        (tmp_path / str(run)).mkdir()
        process, text = await start(
            tmp_path / str(run), "--udp", "127.0.0.1:0", "--seed", "7", "--no-control", "--psk", "seeded"
        )
        try:
            port = int(re.search(r"listening on udp://127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with sock, trio.fail_after(10):
                await sock.sendto(bytes(4) + request.data, ("127.0.0.1", port))
                answer = await sock.recv(65536)
            payloads = decode_message(answer[4:]).payloads
            answers.append((answer[12:20], [p for p in payloads if isinstance(p, KePayload | NoncePayload)]))
            await stop(process, signal.SIGTERM)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert (
            "--seed 7: SPIs, nonces and private keys come from a seeded generator"
            in (tmp_path / str(run) / "stderr.log").read_text()
        )
    assert answers[0] == answers[1] and len(answers[0][1]) == 2


# ---------------------------------------------------------------------------
# Rough edges a new user hit (issue 13)
# ---------------------------------------------------------------------------


def test_a_listener_flag_with_a_scheme_gets_a_plain_error() -> None:
    error = error_of("--tcp", "tcp://127.0.0.1:4500")
    assert error.field == "--tcp tcp://127.0.0.1:4500"
    assert "give HOST:PORT without a scheme, as in --tcp 127.0.0.1:4500" in error.message
    assert "bracket" not in error.message


def test_an_address_not_of_this_host_is_named() -> None:
    result = run_command(["--tcp", "192.0.2.77:4500", "--no-control"])
    assert result.returncode == 1
    assert "error: cannot listen on tcp://192.0.2.77:4500: that address is not one of this host's" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_start_warnings(tmp_path: FilePath) -> None:
    assert start_warnings(parse()) == []  # the generated lab PSK is long enough
    assert start_warnings(parse("--psk", "a" * 20)) == []
    [short] = start_warnings(parse("--psk", "short"))
    assert short.startswith("--psk: a pre-shared key of 5 octets can be guessed offline")
    config = write(tmp_path, '[peers.alice]\nremote_id = "alice@example.org"\npsk = "0x0102"\n')
    [peer] = start_warnings(parse("--config", config))
    assert peer.startswith("peers.alice.psk: a pre-shared key of 2 octets")
    tls_only = write(tmp_path, '[tls]\ncert = "c.pem"\nkey = "k.pem"\n')
    [unused] = start_warnings(parse("--psk", "a" * 20, "--config", tls_only))
    assert "no TLS listener uses them" in unused
    assert start_warnings(parse("--psk", "a" * 20, "--tls", "127.0.0.1:0", "--config", tls_only)) == []
    cert, key = lab_files(tmp_path)  # --cert/--key authenticate IKE: used without a TLS listener too
    assert start_warnings(parse("--psk", "a" * 20, "--cert", str(cert), "--key", str(key))) == []


# ---------------------------------------------------------------------------
# Logs and --check-config (issue 13)
# ---------------------------------------------------------------------------


def test_log_level_per_part() -> None:
    invocation = parse("--log-level", "info,engine=debug,responder.server.udp=warning")
    assert invocation.settings.log_level == "info"
    assert invocation.log.levels == (
        ("responder.server.engine", "debug"),
        ("responder.server.udp", "warning"),
    )
    assert error_of("--log-level", "info,engine").field == "--log-level"
    assert error_of("--log-level", "info,engine=loud").field == "--log-level"


def test_json_lines_and_levels_per_part() -> None:
    stream = io.StringIO()
    options = LogOptions(format="json", levels=(("responder.server.engine", "debug"),))
    try:
        configure_logging("warning", stream, options)
        logging.getLogger("responder.server.engine").debug("engine detail %d", 7)
        logging.getLogger("responder.server.streams").info("not shown")
    finally:
        logging.getLogger("responder.server.engine").setLevel(logging.NOTSET)
        configure_logging("info")
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "debug" and record["logger"] == "responder.server.engine"
    assert record["message"] == "engine detail 7" and record["time"].endswith("+00:00")


def test_check_config_reports_and_starts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check-config", "--psk", "short", "--tcp", "127.0.0.1:4500"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("configuration OK (flags and defaults)\n  listen tcp://127.0.0.1:4500\n")
    assert "lab PSK for any identity: yes" in out
    assert "warning: --psk: a pre-shared key of 5 octets" in out


async def test_log_file_in_json(tmp_path: FilePath) -> None:
    log = tmp_path / "responder.jsonl"
    process, _ = await start(
        tmp_path, "--tcp", "127.0.0.1:0", "--no-control", "--log-file", str(log), "--log-format", "json"
    )
    try:
        code, _ = await stop(process, signal.SIGTERM)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["message"].startswith("listening on tcp://127.0.0.1:") for r in records)
    assert records[-1]["message"] == "stopped"
    assert (tmp_path / "stderr.log").read_text() == ""  # everything went to the file


def test_check_config_tries_the_tls_files_and_log_parts(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--check-config", "--tls", "127.0.0.1:0", "--cert", "/etc/hostname", "--key", "/etc/hostname"]
    assert main(argv) == 2
    assert "error: --cert: '/etc/hostname' holds no readable certificate" in capsys.readouterr().err
    assert error_of("--log-level", "info,engin=debug").message.startswith("unknown part 'engin'")


# ---------------------------------------------------------------------------
# --impair NAME[=ARG] (issue 13)
# ---------------------------------------------------------------------------


def test_impair_flags_add_to_the_files_impair_table(tmp_path: FilePath) -> None:
    config = tmp_path / "lab.toml"
    config.write_text('[lab]\nany_id_psk = "k"\n[impair]\nforce_cookie = true\ncorrupt_icv = 2\n')
    invocation = parse(
        "--config", str(config), "--impair", "drop_response=1", "--impair", "delay-response=3:2s",
        "--impair", "force_invalid_ke=ecp256", "--impair", "corrupt_icv=false",
    )  # fmt: skip
    impair = invocation.settings.config.impair
    assert impair.settings() == [
        "force_cookie",
        "force_invalid_ke=ecp256",
        "drop_response=1",
        "delay_response=3:2s",
    ]
    assert parse().settings.config.impair == Impairments()


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--impair", "drop_outbound=1"],
            "error: --impair: unknown impairment 'drop_outbound'; did you mean",
        ),
        (["--impair", "drop_response"], "error: --impair drop_response: needs an argument: drop_response=N"),
        (["--impair", "drop_response=one"], "error: --impair drop_response: expected a Message ID"),
        (["--impair", "force_cookie=3"], "error: --impair force_cookie: takes no argument"),
        (["--impair", "corrupt_icv=0"], "error: --impair corrupt_icv: the IKE_SA_INIT response"),
        (["--impair", "force_invalid_ke=ecp521"], "error: --impair force_invalid_ke: ecp521 is in none"),
        (["--impair", "delay_response=1"], "error: --impair delay_response: expected N:SECONDS"),
    ],
)
def test_bad_impair_flags_exit_2_naming_the_flag(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--check-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(error) and err.count("\n") == 1


def test_check_config_lists_the_active_impairments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--impair", "refuse_child", "--impair", "tcp_close_after=1", "--check-config"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "IMPAIRMENT ACTIVE" in line]
    assert lines == [
        "  warning: IMPAIRMENT ACTIVE: tcp_close_after=1: a TCP/TLS connection is closed after our response "
        "to Message ID 1 of an IKE SA (RFC 9329 §6.1: the initiator reconnects)",
        "  warning: IMPAIRMENT ACTIVE: refuse_child: every new Child SA is refused with TS_UNACCEPTABLE; "
        "the IKE SA stays",
    ]


def test_a_certificate_file_whose_key_cannot_be_read_is_named(tmp_path: FilePath) -> None:
    """A CA file holding a key cryptography cannot load (an unsupported curve) is refused at load
    with its file named, not at the first IKE_SA_INIT (the review's B2)."""
    root = Authority.root()
    der = root.certificate.public_bytes(Encoding.DER)
    odd = der.replace(bytes.fromhex("06082a8648ce3d030107"), bytes.fromhex("06082a8648ce3d030102"))
    (tmp_path / "odd.der").write_bytes(odd)
    with pytest.raises(
        ConfigError, match=r"certificate 1 of '.*odd\.der' has a key or a name we cannot read"
    ) as e:
        parse("--ca", str(tmp_path / "odd.der"))
    assert e.value.field == "--ca"


def test_serving_process_collects_garbage_less_often() -> None:
    """The command's process freezes what it built at start and raises the young threshold
    (issue 14); the settings are restored here, since this test runs in pytest's process."""
    threshold = gc.get_threshold()
    try:
        collect_less_often()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, threshold[1], threshold[2])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
