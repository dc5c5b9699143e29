"""Tests of responder.config_file: the TOML file, its defaults, its error paths, its documentation."""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.cli import main as cli_main
from responder.config_file import (
    DEFAULT_LISTENERS,
    KEYS,
    LOG_LEVELS,
    Listener,
    ServerSettings,
    load_config,
    load_config_path,
)
from responder.core.config import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    AddressPool,
    ChildConfig,
    ChildlessPolicy,
    Config,
    ConfigError,
    DfPolicy,
    Dpd,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    Impairments,
    Lifetime,
    Limits,
    Mode,
    OuterPolicy,
    PeerConfig,
    PskAuth,
    PubkeyAuth,
    ResponseDelay,
    Secret,
    SendCert,
    TrafficSelectorPolicy,
    VolumeLifetime,
)
from responder.core.enums import KeyExchangeId
from responder.core.path import Transport
from responder.server.settings import TunSettings, WebSettings
from tests.fakes.pki import Authority

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = DOCS / "example.toml"
CERT_EXAMPLE = DOCS / "example-certificates.toml"
PEER = '[peers.p]\nremote_id = "%any"\npsk = "x"\n'
CHILD = PEER + "[peers.p.children.c]\n"
ALL_IPV4 = str(ipaddress.IPv4Address(0))  # the wildcard host, as the example file listens


def load(text: str) -> ServerSettings:
    return load_config(text.encode())


def error_of(text: str | bytes) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(text.encode() if isinstance(text, str) else text)
    return info.value


def ts(*texts: str) -> tuple[TrafficSelectorPolicy, ...]:
    return tuple(TrafficSelectorPolicy.parse(text) for text in texts)


# ---------------------------------------------------------------------------
# The complete example, shipped as docs/example.toml
# ---------------------------------------------------------------------------

EXPECTED_EXAMPLE = ServerSettings(
    config=Config(
        ike_proposals=(
            IkeProposal.parse("aes256gcm16-prfsha256-x25519"),
            IkeProposal.parse("aes256-sha256-modp2048"),
        ),
        local_id=Identity.parse("@vpn.example.org"),
        prefer_initiator_order=False,
        window_size=1,
        childless=ChildlessPolicy.ALLOW,
        limits=Limits(
            half_open_max=1000,
            half_open_per_source=10,
            half_open_per_connection=4,
            half_open_ipv6_prefix=64,
            half_open_timeout=30.0,
            cookie_threshold=100,
            cookie_secret_lifetime=300.0,
            ike_sa_max=10000,
            child_sa_max=64,
            orphan_timeout=10.0,
            corrupt_messages_max=16,
            unprotected_replies_per_source=10.0,
            unprotected_replies_max=1000.0,
        ),
        pools=(
            AddressPool(
                "lab",
                ipaddress.IPv4Network("10.9.0.0/24"),
                ipaddress.IPv6Network("fd00:9::/64"),
                (ipaddress.IPv4Address("10.9.0.53"), ipaddress.IPv6Address("fd00:9::53")),
            ),
        ),
        peers=(
            PeerConfig(
                "alice",
                IdPattern.parse("alice@example.org"),
                Secret(bytes.fromhex("6b9a3c1d2e4f5061728394a5b6c7d8e9")),
                local_id=Identity.parse("@alice-gw.example.org"),
                ike_lifetime=Lifetime(4 * 3600.0, 264 * 60.0, 24 * 60.0),
                dpd=Dpd(30.0, 150.0),
                children=(
                    ChildConfig(
                        "office",
                        local_ts=ts("10.1.0.0/16", "fd00:1::/48"),
                        remote_ts=ts("10.2.0.0/24"),
                        esp_proposals=(
                            EspProposal.parse("aes256gcm16"),
                            EspProposal.parse("aes256-sha256-ecp256"),
                        ),
                        lifetime=Lifetime(3600.0, 3960.0, 360.0),
                        backend="tun",
                        volume=VolumeLifetime(500_000_000, 600_000_000, 1_000_000, 1_500_000),
                        outer=OuterPolicy("clear", DfPolicy.COPY),
                    ),
                    ChildConfig(
                        "web",
                        mode=Mode.TRANSPORT,
                        local_ts=ts("192.0.2.10[tcp/443]"),
                        remote_ts=ts("10.2.0.0/24"),
                        lifetime=Lifetime(3600.0, 7200.0, 600.0),
                    ),
                ),
            ),
            PeerConfig(
                "roadwarriors",
                IdPattern.parse("*@example.org"),
                Secret(b"secret-shared-by-roadwarriors"),
                children=(ChildConfig("net", local_ts=ts("0.0.0.0/0", "::/0"), pool="lab"),),
            ),
            PeerConfig(
                "blocked",
                IdPattern.parse("C=CH, O=Example, CN=*"),
                Secret(b"a long passphrase of plain text"),
                children=(ChildConfig("none", refuse=True),),
            ),
        ),
        any_id_psk=Secret(b"lab-only secret"),
        lab_children=(ChildConfig("all", esp_proposals=DEFAULT_ESP_PROPOSALS),),
    ),
    listeners=(
        Listener(Transport.UDP, ALL_IPV4, 500),
        Listener(Transport.UDP, ALL_IPV4, 4500),
        Listener(Transport.TCP, ALL_IPV4, 4500),
        Listener(Transport.TLS, "::", 443),
    ),
    tls_cert=Path("/etc/ikev2-responder/responder.pem"),
    tls_key=Path("/etc/ikev2-responder/responder.key"),
    keylog_dir=Path("/var/tmp/ikev2-keys"),
    web=WebSettings("127.0.0.1", 8080, allow_remote=False, history_messages=100, history_closed=50),
    tun=TunSettings("ikev2r0", ("10.1.255.1/16", "fd00:1::1/48"), 1400),  # type: ignore[arg-type]
    log_level="info",
    connections_max=1000,
    connections_per_source=20,
    buffer_per_connection=131072,
    prefix_timeout=5.0,
    first_frame_timeout=10.0,
    shutdown_timeout=5.0,
    shutdown_grace=2.0,
    slow_reader_timeout=10.0,
    log_lines_per_source=20,
    log_lines_max=200,
)


def test_example_file_loads_to_the_expected_configuration() -> None:
    assert load_config_path(EXAMPLE) == EXPECTED_EXAMPLE
    assert load_config(EXAMPLE.read_bytes()) == EXPECTED_EXAMPLE


def test_example_file_uses_every_key() -> None:
    used: dict[str, set[str]] = {}

    def walk(table: dict[str, Any], pattern: str) -> None:
        used.setdefault(pattern, set()).update(table)
        for key, value in table.items():
            joined = f"{pattern}.{key}" if pattern else key
            if joined in KEYS:
                walk(value, joined)
            elif f"{joined}.NAME" in KEYS:
                for member in value.values():
                    walk(member, f"{joined}.NAME")

    walk(tomllib.loads(EXAMPLE.read_text()), "")
    walk(tomllib.loads(CERT_EXAMPLE.read_text()), "")  # the keys that name certificate files
    # Lab children take the same keys as peers' children; the example shows them there.
    # The lab's lifetime and liveness keys are the peers'; the example shows them there.
    assert used.pop("lab.children.NAME") <= set(KEYS["lab.children.NAME"])
    assert {"any_id_psk", "pubkey", "children"} <= used.pop("lab") <= set(KEYS["lab"])
    assert set(KEYS["lab"]) - {"any_id_psk", "pubkey"} <= set(KEYS["peers.NAME"])
    assert used == {
        pattern: set(keys) for pattern, keys in KEYS.items() if pattern not in {"lab", "lab.children.NAME"}
    }


def test_example_found_peer_is_the_first_match_in_file_order() -> None:
    config = EXPECTED_EXAMPLE.config
    peer = config.find_peer(Identity.parse("alice@example.org"))
    assert peer is not None and peer.name == "alice"
    peer = config.find_peer(Identity.parse("bob@example.org"))
    assert peer is not None and peer.name == "roadwarriors"
    peer = config.find_peer(Identity.parse("@elsewhere.example"))
    assert peer is not None and peer.name == "%lab"


def test_peer_order_follows_the_file() -> None:
    text = "".join(f'[peers.{name}]\nremote_id = "%any"\npsk = "x"\n' for name in ("zed", "amy", "kim"))
    assert [peer.name for peer in load(text).config.peers] == ["zed", "amy", "kim"]


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------


def test_empty_file_is_every_default() -> None:
    loaded = load("")
    assert loaded == ServerSettings()
    assert loaded.config == Config()
    # RFC 9329 §2 (row A3): TCP 4500; and UDP 4500 beside it (row A6), on loopback only
    assert loaded.listeners == DEFAULT_LISTENERS
    assert [str(listener) for listener in DEFAULT_LISTENERS] == [
        "tcp://127.0.0.1:4500",
        "udp://127.0.0.1:4500",
    ]
    assert loaded.tls_cert is None and loaded.tls_key is None and loaded.keylog_dir is None
    assert loaded.log_level == "info"
    assert loaded.connections_max == 1000
    assert loaded.connections_per_source == 20
    assert loaded.buffer_per_connection == 131072
    assert loaded.prefix_timeout == 5.0
    assert loaded.first_frame_timeout == 10.0
    assert loaded.config.limits.orphan_timeout == 10.0  # RFC 9329 §6.1 "a few seconds" (row A25)
    assert loaded.config.limits.corrupt_messages_max == 16  # rows A32, A33
    assert loaded.shutdown_timeout == 5.0


def test_core_defaults() -> None:
    config = load("[responder]\n[responder.limits]\n").config
    assert config.ike_proposals == DEFAULT_IKE_PROPOSALS
    assert config.local_id is None
    assert config.prefer_initiator_order is False
    assert config.window_size == 1
    assert config.childless is ChildlessPolicy.ALLOW
    assert config.limits == Limits()
    assert config.peers == () and config.pools == () and config.any_id_psk is None


def test_peer_and_child_defaults() -> None:
    peer = load(PEER).config.peers[0]
    assert peer == PeerConfig("p", IdPattern.any(), Secret(b"x"))
    assert peer.local_id is None
    assert peer.children == (ChildConfig("default"),)
    child = load(CHILD).config.peers[0].children[0]
    assert child == ChildConfig("c")
    assert child.mode is Mode.TUNNEL and child.pool is None and child.refuse is False
    assert child.esp_proposals == DEFAULT_ESP_PROPOSALS
    assert child.local_ts == child.remote_ts == ts("0.0.0.0/0", "::/0")


def test_pool_and_lab_defaults() -> None:
    assert load('[pools.p]\naddrs = ["10.0.0.0/24"]').config.pools[0].dns == ()
    config = load('[lab]\nany_id_psk = "k"').config
    assert config.any_id_psk == Secret(b"k")
    assert config.lab_children == (ChildConfig("default"),)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "listener"),
    [
        ("tcp://127.0.0.1:4500", Listener(Transport.TCP, "127.0.0.1", 4500)),
        ("udp://0.0.0.0:500", Listener(Transport.UDP, ALL_IPV4, 500)),
        ("tls://[::1]:443", Listener(Transport.TLS, "::1", 443)),
        ("tls://[::]:0", Listener(Transport.TLS, "::", 0)),
        ("tcp://[2001:DB8::1]:65535", Listener(Transport.TCP, "2001:db8::1", 65535)),
        ("TCP://10.0.0.1:1", Listener(Transport.TCP, "10.0.0.1", 1)),
    ],
)
def test_listener_parse(text: str, listener: Listener) -> None:
    assert Listener.parse(text) == listener
    assert Listener.parse(str(listener)) == listener


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp://x", "'tcp://x' has no port"),
        ("tcp://[::1]", "'tcp://[::1]' has no port"),
        ("127.0.0.1:4500", "is not KIND://HOST:PORT"),
        ("sctp://127.0.0.1:4500", "unknown kind 'sctp'"),
        ("tcp://::1:4500", "an IPv6 address needs brackets (tcp://[::1]:4500)"),
        ("tcp://localhost:4500", "host 'localhost' is not an IPv4 address"),
        ("tcp://[10.0.0.1]:4500", "in brackets is not an IPv6 address"),
        ("tcp://[::1:4500", "'[' without ']'"),
        ("tcp://1.2.3.4:65536", "port '65536' is not a number in 0..65535"),
        ("tcp://1.2.3.4:" + "9" * 5000, "is not a number in 0..65535"),
        ("tcp://1.2.3.4:-1", "is not a number"),
        ("tcp://1.2.3.4:", "port '' is not a number"),
    ],
)
def test_listener_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Listener.parse(text)
    assert message in str(info.value)


def test_listeners_in_code_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"^port: must be an integer in 0\.\.65535"):
        Listener(Transport.TCP, "1.2.3.4", 70000)
    with pytest.raises(ConfigError, match=r"^host: 'x' is not an IP address"):
        Listener(Transport.TCP, "x", 1)
    with pytest.raises(ConfigError, match=r"^kind: expected a Transport"):
        Listener("tcp", "1.2.3.4", 1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^listeners: needs at least one listener"):
        ServerSettings(listeners=())


def test_listener_hosts_are_canonical() -> None:
    assert Listener(Transport.TCP, "::0001", 1).host == "::1"
    assert Listener(Transport.TCP, "2001:DB8::1", 1) == Listener(Transport.TCP, "2001:db8::1", 1)
    with pytest.raises(ConfigError, match=r"^listeners\[1\]: tcp://\[::1\]:4500 repeats"):
        ServerSettings(
            listeners=(Listener(Transport.TCP, "::1", 4500), Listener(Transport.TCP, "0:0::1", 4500))
        )


def test_tls_listener_without_a_certificate_is_self_signed() -> None:
    loaded = load('[responder]\nlisten = ["tls://127.0.0.1:443"]')
    assert loaded.listeners == (Listener(Transport.TLS, "127.0.0.1", 443),)
    assert loaded.tls_cert is None and loaded.tls_key is None  # serve() makes a self-signed one


@pytest.mark.parametrize(
    "listen",
    [
        '["tcp://127.0.0.1:4500", "udp://0.0.0.0:4500"]',  # TCP and UDP ports are separate
        '["tcp://0.0.0.0:4500", "tcp://[::]:4500"]',  # IPv6 wildcard sockets are IPv6-only
        '["tcp://0.0.0.0:0", "tcp://127.0.0.1:0"]',  # port 0: each gets its own port
        '["udp://0.0.0.0:4500", "udp://127.0.0.1:4500"]',
    ],
)
def test_listeners_that_can_coexist(listen: str) -> None:
    assert len(load(f"[responder]\nlisten = {listen}").listeners) == 2


def test_udp_and_tcp_may_share_a_port_and_port_zero_repeats() -> None:
    loaded = load(
        '[responder]\nlisten = ["udp://0.0.0.0:4500", "tcp://0.0.0.0:4500", "tcp://[::1]:0", "tcp://[::1]:0"]'
    )
    assert len(loaded.listeners) == 4


def test_proposals_default_keyword_expands_in_place() -> None:
    config = load('[responder]\nproposals = ["aes128gcm16-prfsha256-ecp256", "DEFAULT"]').config
    assert config.ike_proposals == (IkeProposal.parse("aes128gcm16-prfsha256-ecp256"), *DEFAULT_IKE_PROPOSALS)
    child = load(CHILD + 'esp_proposals = ["default", "aes128gcm16"]').config.peers[0].children[0]
    assert child.esp_proposals == (*DEFAULT_ESP_PROPOSALS, EspProposal.parse("aes128gcm16"))


def test_keywords_are_case_insensitive() -> None:
    loaded = load('[responder]\nchildless = "Force"\nlog_level = "DEBUG"\n')
    assert loaded.config.childless is ChildlessPolicy.FORCE
    assert loaded.log_level == "debug"
    assert load(CHILD + 'mode = "Transport"').config.peers[0].children[0].mode is Mode.TRANSPORT


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_log_levels(level: str) -> None:
    assert load(f'[responder]\nlog_level = "{level}"').log_level == level


def test_connection_rules_are_read() -> None:
    """RFC 9329 §6.1 (rows A25, A32): the orphan grace and the corruption threshold are settings."""
    loaded = load("[responder.limits]\norphan_timeout = 3\ncorrupt_messages_max = 4\n")
    assert loaded.config.limits.orphan_timeout == 3.0
    assert loaded.config.limits.corrupt_messages_max == 4
    assert loaded.config.limits == Limits(orphan_timeout=3.0, corrupt_messages_max=4)  # the core applies them


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("2.5", 2.5),
        ('"90"', 90.0),
        ('"90s"', 90.0),
        ('"10m"', 600.0),
        ('" 4h "', 14400.0),
        ('"1d"', 86400.0),
    ],
)
def test_durations_take_swanctl_units(text: str, seconds: float) -> None:
    loaded = load(PEER + f"dpd_delay = {text}\n")
    assert loaded.config.peers[0].dpd == Dpd(delay=seconds)


def test_lifetimes_are_derived_as_strongswan_does() -> None:
    """life_time defaults to rekey_time + 10%, rand_time to the difference; defaults 4 h and 1 h."""
    peer = load(PEER + 'rekey_time = "10m"\n[peers.p.children.c]\nlife_time = "2h"\n').config.peers[0]
    assert peer.ike_lifetime == Lifetime(600.0, 660.0, 60.0)
    assert peer.children[0].lifetime == Lifetime(3600.0, 7200.0, 3600.0)
    default = load(CHILD).config.peers[0]
    assert default.ike_lifetime == Lifetime(14400.0, 15840.0, 1440.0)
    assert default.children[0].lifetime == Lifetime(3600.0, 3960.0, 360.0)
    assert default.dpd == Dpd(0.0, 0.0)
    never = load(PEER + "rekey_time = 0\nlife_time = 0\n").config.peers[0].ike_lifetime
    assert (never.rekey_at(5.0, 0.5), never.expires_at(5.0)) == (None, None)


def test_traffic_lifetimes_and_outer_marking_are_read() -> None:
    """rekey_bytes ... life_packets as swanctl.conf (a hard limit 10% past a soft one given alone);
    dscp and df_bit for the outer header of ESP over UDP (RFC 4301 §8.1)."""
    child = load(CHILD + "rekey_bytes = 1000000\nlife_packets = 500\ndscp = 46\ndf_bit = 'Clear'\n")
    [config] = child.config.peers[0].children
    assert config.volume == VolumeLifetime(1_000_000, 1_100_000, 0, 500)
    assert config.outer == OuterPolicy(46, DfPolicy.CLEAR)
    default = load(CHILD).config.peers[0].children[0]
    assert default.volume == VolumeLifetime() and default.outer == OuterPolicy("copy", DfPolicy.COPY)
    assert load(CHILD + 'dscp = "CLEAR"').config.peers[0].children[0].outer.dscp == "clear"
    assert default.replay_window == 64  # RFC 4303 §3.4.3
    assert load(CHILD + "replay_window = 1024").config.peers[0].children[0].replay_window == 1024


def test_lab_lifetimes_and_limits_are_read() -> None:
    loaded = load(
        "[responder.limits]\nchild_sa_max = 3\nshutdown_grace = 0\n"
        '[lab]\nany_id_psk = "x"\nrekey_time = 100\nrand_time = 0\ndpd_delay = "1m"\ndpd_timeout = 5\n'
    )
    assert loaded.config.limits.child_sa_max == 3 and loaded.shutdown_grace == 0.0
    lab = loaded.config.lab_peer
    assert lab is not None
    assert lab.ike_lifetime == Lifetime(100.0, 110.0, 0.0)
    assert lab.dpd == Dpd(60.0, 5.0)


def test_integers_are_accepted_for_seconds() -> None:
    loaded = load("[responder.limits]\nprefix_timeout = 2\nhalf_open_timeout = 7\n")
    assert loaded.prefix_timeout == 2.0 and isinstance(loaded.prefix_timeout, float)
    assert loaded.config.limits.half_open_timeout == 7.0


def test_relative_paths_follow_the_file(tmp_path: Path) -> None:
    config_file = tmp_path / "conf" / "responder.toml"
    config_file.parent.mkdir()
    config_file.write_text(
        '[responder]\nlisten = ["tls://127.0.0.1:443"]\n'
        '[tls]\ncert = "tls/cert.pem"\nkey = "/abs/key.pem"\n[keylog]\ndir = "keys"\n'
    )
    loaded = load_config_path(config_file)
    assert loaded.tls_cert == config_file.parent / "tls" / "cert.pem"
    assert loaded.tls_key == Path("/abs/key.pem")
    assert loaded.keylog_dir == config_file.parent / "keys"
    as_written = load_config(config_file.read_bytes())
    assert as_written.tls_cert == Path("tls/cert.pem")
    assert load_config(config_file.read_bytes(), base_dir=Path("/b")).keylog_dir == Path("/b/keys")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.toml"):
        load_config_path(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_path(tmp_path)


def test_byte_order_mark_is_tolerated() -> None:
    assert load_config(b"\xef\xbb\xbf[responder]\nwindow = 2\n").config.window_size == 2


def test_load_config_takes_bytes() -> None:
    with pytest.raises(TypeError):
        load_config("[responder]")  # type: ignore[arg-type]


def test_secrets_stay_out_of_reprs() -> None:
    assert "6b9a3c" not in repr(EXPECTED_EXAMPLE)
    assert "lab-only" not in repr(EXPECTED_EXAMPLE)


# ---------------------------------------------------------------------------
# Errors name the key path
# ---------------------------------------------------------------------------

ERRORS = [
    # (document, key path, what the message says after "path: ")
    ("[responder]\nwindow = 0", "responder.window", "must be an integer in 1..2^31, got 0"),
    ('[responder]\nwindow = "1"', "responder.window", "expected an integer, got a string"),
    ("[responder]\nwindow = 1.5", "responder.window", "expected an integer, got a float"),
    (
        "[responder]\nprefer_initiator_order = 1",
        "responder.prefer_initiator_order",
        "expected a boolean, got an integer",
    ),
    (
        '[responder]\nchildless = "maybe"',
        "responder.childless",
        "expected one of 'allow', 'force', 'never', got 'maybe'",
    ),
    (
        '[responder]\nlog_level = "loud"',
        "responder.log_level",
        "expected one of debug, info, warning, error, critical",
    ),
    ('[responder]\nid = "%any"', "responder.id", "matches any identity: it is a pattern"),
    ("[responder]\nid = 1979-05-27T07:32:00", "responder.id", "expected a string, got a date-time"),
    (
        '[responder]\nlisten = "tcp://127.0.0.1:4500"',
        "responder.listen",
        'got a string (write ["tcp://127.0.0.1:4500"])',
    ),
    (
        '[responder]\nlisten = ["udp://1.2.3.4:500", "tcp://x"]',
        "responder.listen[1]",
        "'tcp://x' has no port",
    ),
    (
        '[responder]\nlisten = ["tcp://1.2.3.4:500", 4500]',
        "responder.listen[1]",
        "expected a string, got an integer",
    ),
    ("[responder]\nlisten = []", "responder.listen", "needs at least one listener"),
    (
        '[responder]\nlisten = ["tcp://[::1]:500", "tcp://[::1]:500"]',
        "responder.listen[1]",
        "tcp://[::1]:500 repeats",
    ),
    (
        '[responder]\nlisten = ["tcp://0.0.0.0:443", "tls://0.0.0.0:443"]\n[tls]\ncert = "c"\nkey = "k"',
        "responder.listen[1]",
        "tls://0.0.0.0:443 needs the same TCP port as tcp://0.0.0.0:443",
    ),
    (
        '[responder]\nlisten = ["tcp://0.0.0.0:4500", "tcp://127.0.0.1:4500"]',
        "responder.listen[1]",
        "tcp://127.0.0.1:4500 overlaps tcp://0.0.0.0:4500",
    ),
    (
        '[responder]\nlisten = ["tls://[::1]:443", "tcp://[::]:443"]',
        "responder.listen[1]",
        "tcp://[::]:443 overlaps tls://[::1]:443",
    ),
    ("[responder]\nproposals = []", "responder.proposals", "needs at least 1 IkeProposal"),
    (
        '[responder]\nproposals = ["aes256gcm16-prfsha256-x25519", "aes256-x25519"]',
        "responder.proposals[1]",
        "needs",
    ),
    (
        '[responder]\nproposals = ["aes256gcm16-sha256-x25519"]',
        "responder.proposals[0]",
        "AEAD encryption takes no integrity",
    ),
    (
        '[responder]\nproposals = ["aes256-sha256-rot13"]',
        "responder.proposals[0]",
        "unknown algorithm 'rot13'",
    ),
    ("[responder]\nlimits = 3", "responder.limits", "expected a table, got an integer"),
    ("[responder.limits]\nhalf_open_max = 0", "responder.limits.half_open_max", "must be positive, got 0"),
    (
        "[responder.limits]\nhalf_open_max = 1.0",
        "responder.limits.half_open_max",
        "expected an integer, got a float",
    ),
    ("[responder.limits]\nhalf_open_timeout = -1", "responder.limits.half_open_timeout", "must be positive"),
    (
        '[responder.limits]\nhalf_open_timeout = "30s"',
        "responder.limits.half_open_timeout",
        "expected a number, got a string",
    ),
    (
        "[responder.limits]\ncookie_threshold = -1",
        "responder.limits.cookie_threshold",
        "must be an integer >= 0",
    ),
    (
        "[responder.limits]\ncookie_secret_lifetime = 0",
        "responder.limits.cookie_secret_lifetime",
        "must be positive",
    ),
    ("[responder.limits]\nike_sa_max = 0", "responder.limits.ike_sa_max", "must be positive"),
    (
        "[responder.limits]\nconnections_max = 0",
        "responder.limits.connections_max",
        "must be at least 1, got 0",
    ),
    (
        "[responder.limits]\nconnections_max = true",
        "responder.limits.connections_max",
        "expected an integer, got a boolean",
    ),
    (
        "[responder.limits]\nconnections_per_source = 2000",
        "responder.limits.connections_per_source",
        "2000 exceeds connections_max (1000)",
    ),
    (
        "[responder.limits]\nbuffer_per_connection = 4096",
        "responder.limits.buffer_per_connection",
        "must be at least 65535",
    ),
    (
        "[responder.limits]\nprefix_timeout = 0",
        "responder.limits.prefix_timeout",
        "finite number of seconds > 0",
    ),
    (
        "[responder.limits]\nfirst_frame_timeout = inf",
        "responder.limits.first_frame_timeout",
        "finite number",
    ),
    ("[responder.limits]\nshutdown_timeout = nan", "responder.limits.shutdown_timeout", "finite number"),
    ("[responder.limits]\norphan_timeout = -1", "responder.limits.orphan_timeout", "> 0, got -1.0"),
    ("[responder.limits]\norphan_timeout = inf", "responder.limits.orphan_timeout", "finite number"),
    (
        "[responder.limits]\ncorrupt_messages_max = 0",
        "responder.limits.corrupt_messages_max",
        "must be positive, got 0",
    ),
    (
        "[responder.limits]\ncorrupt_messages_max = 1.5",
        "responder.limits.corrupt_messages_max",
        "expected an integer, got a float",
    ),
    (
        "[responder.limits]\nhalf_open = 5",
        "responder.limits.half_open",
        "unknown key; did you mean 'half_open_max'?",
    ),
    ("[responder.limits]\nchild_sa_max = 0", "responder.limits.child_sa_max", "must be positive, got 0"),
    ("[responder.limits]\nshutdown_grace = -1", "responder.limits.shutdown_grace", ">= 0, got -1.0"),
    (PEER + 'rekey_time = "10x"', "peers.p.rekey_time", "is not a duration"),
    (PEER + "rekey_time = -5", "peers.p.rekey_time", ">= 0, got -5"),
    (PEER + "rekey_time = 60\nlife_time = 60", "peers.p.life_time", "must be longer than rekey_time (60s)"),
    (PEER + "rekey_time = 60\nrand_time = 61", "peers.p.rand_time", "must not exceed rekey_time (60s)"),
    (PEER + "dpd_delay = true", "peers.p.dpd_delay", "expected a number"),
    (PEER + 'dpd_timeout = "-1s"', "peers.p.dpd_timeout", "is not a duration"),
    (CHILD + 'life_time = "1m"', "peers.p.children.c.life_time", "must be longer than rekey_time (3600s)"),
    (CHILD + "rekey_bytes = 9\nlife_bytes = 5", "peers.p.children.c.life_bytes", "more than rekey_bytes (9)"),
    (CHILD + 'rekey_packets = "many"', "peers.p.children.c.rekey_packets", "expected a whole number"),
    (CHILD + "life_packets = -1", "peers.p.children.c.life_packets", "whole number >= 0, got -1"),
    (CHILD + "dscp = 64", "peers.p.children.c.dscp", '"copy", "clear" or a DSCP 0-63, got 64'),
    (CHILD + "replay_window = 0", "peers.p.children.c.replay_window", "from 1 to 65536, got 0"),
    (CHILD + 'replay_window = "64"', "peers.p.children.c.replay_window", "expected an integer"),
    (CHILD + 'df_bit = "maybe"', "peers.p.children.c.df_bit", "expected one of 'copy', 'set', 'clear'"),
    ('[lab]\nany_id_psk = "x"\ndpd_delay = -2', "lab.dpd_delay", ">= 0, got -2.0"),
    ('[tls]\ncert = "c"', "tls.key", "missing: a TLS certificate needs its private key"),
    ('[tls]\nkey = "k"', "tls.cert", "missing: a TLS private key needs its certificate"),
    ('[tls]\ncert = ""\nkey = "k"', "tls.cert", "empty path"),
    ('[tls]\ncert = "a\\u0000b"\nkey = "k"', "tls.cert", "path holds a NUL character"),
    ("[keylog]\ndir = 1", "keylog.dir", "expected a string, got an integer"),
    ('[keylog]\ndirs = "/tmp"', "keylog.dirs", "unknown key; did you mean 'dir'?"),
    ("[pools.lab]", "pools.lab.addrs", "required key is missing"),
    ("[pools.lab]\naddrs = []", "pools.lab.addrs", "a pool needs an IPv4 or an IPv6 network"),
    ('[pools.lab]\naddrs = ["10.0.0.1/24"]', "pools.lab.addrs[0]", "10.0.0.1/24 has host bits set"),
    (
        '[pools.lab]\naddrs = ["10.0.0.0/24", "10.1.0.0/24"]',
        "pools.lab.addrs[1]",
        "a pool takes one IPv4 network",
    ),
    ('[pools.lab]\naddrs = ["10.0.0.0-10.0.0.9"]', "pools.lab.addrs[0]", "does not appear to be"),
    (
        '[pools.lab]\naddrs = ["10.0.0.0/24"]\ndns = ["dns.example"]',
        "pools.lab.dns[0]",
        "does not appear to be",
    ),
    ('[pools."my pool"]\naddrs = ["10.0.0.0/24"]', 'pools."my pool"', "holds whitespace"),
    ("[pools]\nlab = 1", "pools.lab", "expected a table, got an integer"),
    ('[peers.alice]\nremote_id = "%any"\npsk = ""', "peers.alice.psk", "empty secret"),
    ('[peers.alice]\nremote_id = "%any"\npsk = "0x123"', "peers.alice.psk", "odd number of hex digits"),
    ('[peers.alice]\nremote_id = "%any"\npsk = 1234', "peers.alice.psk", "expected a string, got an integer"),
    ('[peers.alice]\nremote_id = "%any"', "peers.alice.psk", "required key is missing"),
    ('[peers.alice]\npsk = "x"', "peers.alice.remote_id", "required key is missing"),
    (
        '[peers.alice]\nremote_id = "*@"\npsk = "x"',
        "peers.alice.remote_id",
        "'*@' must be followed by a domain",
    ),
    ('[peers.alice]\nremote_id = "a*b@example.org"\npsk = "x"', "peers.alice.remote_id", "only '*@domain'"),
    ('[peers.alice]\nremote_id = "%any"\npsk = "x"\nlocal_id = ""', "peers.alice.local_id", "empty identity"),
    ('[peers.alice]\nremote_id = "%any"\npks = "x"', "peers.alice.pks", "unknown key; did you mean 'psk'?"),
    (
        '[peers.alice]\nremote_id = "%any"\npsk = "x"\nwindow = 2',
        "peers.alice.window",
        "[peers.alice] takes remote_id, auth, psk",
    ),
    (
        '[peers."%x"]\nremote_id = "%any"\npsk = "x"',
        'peers."%x"',
        "peer names starting with '%' are reserved",
    ),
    ('[peers."a b"]\nremote_id = "%any"\npsk = "x"', 'peers."a b"', "holds whitespace"),
    ("peers = []", "peers", "expected a table, got an array"),
    ("[peers]\nalice = 1", "peers.alice", "expected a table, got an integer"),
    (PEER + "children = {}", "peers.p.children", "needs at least 1 ChildConfig"),
    (PEER + "children = 1", "peers.p.children", "expected a table, got an integer"),
    (PEER + "[peers.p.children]\nc = []", "peers.p.children.c", "expected a table, got an array"),
    (CHILD + "local_ts = []", "peers.p.children.c.local_ts", "needs at least 1 TrafficSelectorPolicy"),
    (CHILD + 'local_ts = ["10.0.0.0/33"]', "peers.p.children.c.local_ts[0]", "selector '10.0.0.0/33'"),
    (
        CHILD + 'remote_ts = ["10.0.0.0/8", "dynamic"]',
        "peers.p.children.c.remote_ts[1]",
        "'dynamic' is not supported",
    ),
    (CHILD + 'remote_ts = ["10.0.0.0/8[tcp/99999]"]', "peers.p.children.c.remote_ts[0]", "port range"),
    (CHILD + 'remote_ts = ["10.0.0.0/8[\u00b2]"]', "peers.p.children.c.remote_ts[0]", "unknown protocol"),
    (CHILD + 'esp_proposals = ["aes256gcm16-prfsha256"]', "peers.p.children.c.esp_proposals[0]", "is a PRF"),
    (CHILD + "esp_proposals = []", "peers.p.children.c.esp_proposals", "needs at least 1 EspProposal"),
    (CHILD + 'mode = "beet"', "peers.p.children.c.mode", "expected one of 'tunnel', 'transport', got 'beet'"),
    (CHILD + 'refuse = "yes"', "peers.p.children.c.refuse", "expected a boolean, got a string"),
    (CHILD + "pool = 3", "peers.p.children.c.pool", "expected a string, got an integer"),
    (CHILD + 'pool = ""', "peers.p.children.c.pool", "empty name"),
    (CHILD + 'pol = "x"', "peers.p.children.c.pol", "unknown key; did you mean 'pool'?"),
    (
        '[pools.lab]\naddrs = ["10.0.0.0/24"]\n[peers.bob]\nremote_id = "%any"\npsk = "x"\n'
        '[peers.bob.children.other]\n[peers.bob.children.net]\npool = "lan"',
        "peers.bob.children.net.pool",
        "no pool named 'lan'",
    ),
    (
        '[peers."a.b"]\nremote_id = "%any"\npsk = "x"\n[peers."a.b".children.c]\npool = "q"',
        'peers."a.b".children.c.pool',
        "no pool",
    ),
    ("[lab]", "lab.any_id_psk", "required key is missing"),
    ('[lab]\nany_id_psk = "0s"', "lab.any_id_psk", "empty secret"),
    ('[lab]\nany_id_psk = "k"\nchildren = {}', "lab.children", "needs at least 1 ChildConfig"),
    ('[lab]\nany_id_psk = "k"\n[lab.children.c]\npool = "q"', "lab.children.c.pool", "no pool named 'q'"),
    ('[lab]\nany_id_psk = "k"\npsk = "k"', "lab.psk", "unknown key; "),
    (
        "wndow = 1",
        "wndow",
        "unknown key; the top level takes responder, certificates, tls, keylog, web, tun, pools, peers, lab",
    ),
    ("[peer.alice]", "peer", "unknown key; did you mean 'peers'?"),
    ("responder = 1", "responder", "expected a table, got an integer"),
]


@pytest.mark.parametrize(("document", "path", "message"), ERRORS)
def test_errors_name_the_key_path(document: str, path: str, message: str) -> None:
    error = error_of(document)
    assert error.field == path
    assert str(error).startswith(f"{path}: ")
    assert message in error.message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[responder\nwindow = 1", "at line 1, column"),
        (b"[responder]\nwindow = = 1", "at line 2, column 10"),
        (b"a = 1\na = 2", "TOML syntax error: Cannot overwrite a value"),
        (b"[responder]\nwindow = \xff", "not UTF-8 (byte 21 is invalid)"),
        (b"a = " + b"[" * 100_000, "nested too deeply"),
        (b"a = " + b"1" * 5000, "TOML value error"),
    ],
)
def test_syntax_errors(data: bytes, message: str) -> None:
    error = error_of(data)
    assert error.field == ""
    assert message in str(error)


def test_model_errors_keep_model_paths_in_code() -> None:
    with pytest.raises(ConfigError, match=r"^listeners\[1\]: tls://\[::1\]:443 needs the same TCP port"):
        ServerSettings(listeners=(Listener(Transport.TCP, "::1", 443), Listener(Transport.TLS, "::1", 443)))
    with pytest.raises(ConfigError, match=r"^tls_cert: missing"):
        ServerSettings(tls_key=Path("k"))
    with pytest.raises(ConfigError, match=r"^log_level: expected one of"):
        ServerSettings(log_level="INFO")
    with pytest.raises(ConfigError, match=r"^prefix_timeout: expected a float, got int"):
        ServerSettings(prefix_timeout=5)
    with pytest.raises(ConfigError, match=r"^keylog_dir: expected a Path, got str"):
        ServerSettings(keylog_dir="/tmp")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Random documents: nothing but ConfigError, always at a path inside the document
# ---------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(document: dict[str, Any]) -> str:
    return "".join(f"{_toml_string(key)} = {_toml_value(value)}\n" for key, value in document.items())


KEY_WORDS = sorted({key for keys in KEYS.values() for key in keys} | {"alice", "net", "lab", "x y", "%z", ""})
PLAUSIBLE = [
    "%any", "*@example.org", "@vpn.example.org", "C=CH, CN=*", "0x0102", "0s", "0sAQI=", "secret",
    "tcp://127.0.0.1:4500", "tls://[::1]:443", "udp://x", "10.0.0.0/24", "fd00::/64", "10.0.0.0/8[tcp/443]",
    "dynamic", "default", "aes256gcm16-prfsha256-x25519", "aes256-sha256", "tunnel", "transport", "allow",
    "force", "never", "debug", "lab", "lan", "",
]  # fmt: skip
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),
    st.sampled_from(PLAUSIBLE),
    st.text(max_size=12),
    st.datetimes(),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEY_WORDS) | st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=12,
)
BASE = tomllib.loads(EXAMPLE.read_text())


def _paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


BASE_PATHS = [path for path in _paths(BASE) if path]


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """The example document with a few keys replaced, removed or added."""
    document: dict[str, Any] = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(BASE_PATHS))
        parent: Any = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict) != isinstance(path[-1], str):
                continue  # an earlier edit turned an array into a table or back
            parent[path[-1]]  # raises if an earlier edit removed it
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent[path[-1]], dict):
                parent[path[-1]][draw(st.sampled_from(KEY_WORDS))] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or reshaped this path
    return document


def _top_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def check_document(document: dict[str, Any]) -> None:
    try:
        load(_toml(document))
    except ConfigError as error:
        assert error.field, str(error)
        assert str(error) == f"{error.field}: {error.message}"
        assert any(
            error.field == _top_key(key) or error.field.startswith((_top_key(key) + ".", _top_key(key) + "["))
            for key in document
        ), str(error)


def test_toml_writer_round_trips() -> None:
    assert tomllib.loads(_toml(BASE)) == BASE


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_example_raises_only_config_errors_at_real_paths(document: dict[str, Any]) -> None:
    check_document(document)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(KEY_WORDS) | st.text(max_size=6), values, max_size=5))
def test_random_documents_raise_only_config_errors_at_real_paths(document: dict[str, Any]) -> None:
    check_document(document)


@given(st.text(alphabet="[]{}=\"'.,#\n \t=abcdelmnoprstx0123456789_-:/@*%\\", max_size=80))
def test_toml_ish_text_raises_only_config_errors(text: str) -> None:
    with contextlib.suppress(ConfigError):
        load(text)


@given(st.binary(max_size=80))
def test_random_bytes_raise_only_config_errors(data: bytes) -> None:
    with contextlib.suppress(ConfigError):
        load_config(data)


# ---------------------------------------------------------------------------
# docs/configuration.md documents every key, with its real default
# ---------------------------------------------------------------------------


def documented_tables() -> dict[str, list[list[str]]]:
    """Table pattern -> rows (cells) of its key table, from the ``## `[...]``` sections."""
    tables: dict[str, list[list[str]]] = {}
    current: list[str] = []
    for line in (DOCS / "configuration.md").read_text().splitlines():
        if line.startswith("## "):
            current = re.findall(r"`\[([^\]]+)\]`", line)
            for name in current:
                tables[name] = []
        elif current and line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            for name in current:
                tables[name].append(cells)
    return tables


def test_docs_document_every_key() -> None:
    tables = documented_tables()
    assert set(tables) == set(KEYS) - {""}
    for name, rows in tables.items():
        assert [row[0].strip("`") for row in rows] == list(KEYS[name]), name
        assert all(len(row) == 4 and row[3] for row in rows), name


BASES = {
    "responder": "[responder]\n",
    "responder.limits": "[responder.limits]\n",
    "certificates": "[certificates]\n",
    "tls": "[tls]\n",
    "keylog": "[keylog]\n",
    "web": "[web]\n",
    "tun": "[tun]\n",
    "pools.NAME": '[pools.p]\naddrs = ["10.0.0.0/24"]\n',
    "peers.NAME": PEER,
    "peers.NAME.children.NAME": CHILD,
    "lab": '[lab]\nany_id_psk = "k"\n',
    "lab.children.NAME": '[lab]\nany_id_psk = "k"\n[lab.children.c]\n',
    "impair": "[impair]\n",
}


def test_documented_defaults_are_the_real_ones() -> None:
    checked = 0
    for name, rows in documented_tables().items():
        for key, _type, default, _meaning in rows:
            literal = re.fullmatch(r"`([^`]+)`", default)
            if literal is None:
                continue
            base = BASES[name].replace("[peers.p.children.c]\n", "") if key == "children" else BASES[name]
            assert load(BASES[name] + f"{key.strip('`')} = {literal.group(1)}\n") == load(base), key
            checked += 1
    assert checked >= 20


def test_docs_example_is_docs_example_toml() -> None:
    text = (DOCS / "configuration.md").read_text()
    block = re.search(r"## Complete example\n.*?```toml\n(.*?)```", text, re.DOTALL)
    assert block is not None
    assert block.group(1) == EXAMPLE.read_text()


def test_the_certificate_example_loads_once_the_lab_pki_is_made(tmp_path: Path) -> None:
    """docs/example-certificates.toml with the files `ikev2-responder certs` writes (same names)."""
    certs, docs = tmp_path / "certs", tmp_path / "docs"
    certs.mkdir()
    docs.mkdir()
    root = Authority.root("C=XX, O=Lab, CN=ikev2-responder lab CA")
    certificate, key = root.issue("CN=responder.lab", dns=["responder.lab"])
    (certs / "ca.pem").write_bytes(root.certificate.public_bytes(Encoding.PEM))
    (certs / "responder.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    (certs / "responder.key").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    (docs / "example-certificates.toml").write_bytes(CERT_EXAMPLE.read_bytes())
    settings = load_config_path(docs / "example-certificates.toml")
    config = settings.config
    assert config.credential is not None and config.credential.certificate == certificate
    assert config.trust.anchors == (root.certificate,) and config.trust.rsa_pss
    clients, phone = config.peers
    assert isinstance(clients.auth, PubkeyAuth) and clients.auth.cas == (root.certificate,)
    assert clients.send_cert is SendCert.IFASKED
    assert isinstance(phone.auth, PskAuth) and isinstance(phone.local_auth, PubkeyAuth)
    assert settings.tls_cert == docs / "../certs/responder.pem"
    found = config.find_peer(Identity.parse("client1@lab"), signature=True)
    assert found is clients
    assert config.find_peer(Identity.parse("client1@lab"), signature=False) is None


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        ('[certificates]\ncert = "c.pem"\n', "certificates", "missing: cert needs key"),
        ('[certificates]\ncacerts = ["absent.pem"]\n', "certificates.cacerts[0]", "cannot read"),
        ('[certificates]\ncrls = "x"\n', "certificates.crls", "expected an array of paths"),
        ("[certificates]\nmin_rsa_bits = 512\n", "certificates.min_rsa_bits", "1024..16384"),
        ('[peers.a]\nremote_id = "%any"\nauth = "cert"\n', "peers.a.auth", "expected 'psk' or 'pubkey'"),
        (
            '[peers.a]\nremote_id = "%any"\nauth = "pubkey"\nlocal_auth = "psk"\npsk = "k"\n',
            "peers.a.auth",
            "needs a trusted CA",
        ),
        (
            '[peers.a]\nremote_id = "%any"\npsk = "k"\nlocal_auth = "pubkey"\n',
            "peers.a.local_auth",
            "needs our certificate and key",
        ),
        (
            '[peers.a]\nremote_id = "%any"\npsk = "k"\ncacerts = []\n',
            "peers.a.cacerts",
            "needs auth = 'pubkey'",
        ),
        ('[peers.a]\nremote_id = "%any"\npsk = "k"\nsend_cert = "maybe"\n', "peers.a.send_cert", "'ifasked'"),
        ("[lab]\npubkey = true\n", "lab.pubkey", "needs our certificate and a trusted CA"),
    ],
)
def test_certificate_errors_name_the_key(document: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(document.encode())
    assert caught.value.field == path


def test_fragmentation_keys_reach_the_core_rfc7383() -> None:
    """``responder.fragmentation`` and the five RFC 7383 limits (rows E1, E4) become the core's values."""
    settings = load(
        "[responder]\nfragmentation = false\n[responder.limits]\nfragment_size = 576\n"
        "fragments_max = 8\nreassembly_size_max = 4096\nreassembly_timeout = 10\nreassemblies_per_sa = 1\n"
    )
    assert settings.config.fragmentation is False
    limits = settings.config.limits
    assert (limits.fragment_size, limits.fragments_max, limits.reassembly_size_max) == (576, 8, 4096)
    assert (limits.reassembly_timeout, limits.reassemblies_per_sa) == (10.0, 1)
    assert load("").config.fragmentation is True
    assert "responder.limits.fragment_size" in str(error_of("[responder.limits]\nfragment_size = 100\n"))
    assert "responder.fragmentation" in str(error_of('[responder]\nfragmentation = "yes"\n'))


def test_the_example_runs_as_its_header_says(tmp_path: Path) -> None:
    """The header's recipe (the lab PKI into the directory the example names, then the example),
    with that directory moved to a temporary one; --check-config tries every file it names."""
    where = tmp_path / "etc"
    example = tmp_path / "example.toml"
    example.write_text(EXAMPLE.read_text().replace("/etc/ikev2-responder", str(where)))
    for line in EXAMPLE.read_text().splitlines()[:6]:
        if line.startswith("#   ikev2-responder certs"):
            assert line.split()[-1] == "/etc/ikev2-responder"
    assert cli_main(["certs", "--dir", str(where)], out=io.StringIO()) == 0
    out = io.StringIO()
    assert cli_main(["--config", str(example), "--check-config", "--no-control"], out=out) == 0, (
        out.getvalue()
    )
    assert out.getvalue().startswith(f"configuration OK ({example})")


# ---------------------------------------------------------------------------
# [impair] (issue 13)
# ---------------------------------------------------------------------------


def test_impair_table_reaches_the_core_config() -> None:
    settings = load(
        '[impair]\nforce_cookie = true\nforce_invalid_ke = "ecp256"\ndrop_response = 1\n'
        'delay_response = "2:1.5s"\nduplicate_response = 3\ncorrupt_icv = 4\ntcp_close_after = 5\n'
        "refuse_child = true\nrekey_collision = true\n"
    )
    impair = settings.config.impair
    assert impair == Impairments(
        force_cookie=True,
        force_invalid_ke=KeyExchangeId.ECP_256,
        drop_response=1,
        delay_response=ResponseDelay(2, 1.5),
        duplicate_response=3,
        corrupt_icv=4,
        tcp_close_after=5,
        refuse_child=True,
        rekey_collision=True,
    )
    assert load("[impair]\n").config.impair == Impairments() == load("").config.impair


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (
            "[impair]\ndrop_respons = 1\n",
            "impair.drop_respons",
            "unknown key; did you mean 'drop_response'?",
        ),
        ("[impair]\ndrop_response = true\n", "impair.drop_response", "needs an argument"),
        ('[impair]\ndelay_response = "5s"\n', "impair.delay_response", "expected N:SECONDS"),
        ("[impair]\nforce_cookie = 1\n", "impair.force_cookie", "takes no argument"),
        ('[impair]\nforce_invalid_ke = "ecp521"\n', "impair.force_invalid_ke", "ecp521 is in none"),
        ("impair = 3\n", "impair", "expected a table"),
    ],
)
def test_impair_errors_name_the_key(document: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(document.encode())
    assert caught.value.field == path


# ---------------------------------------------------------------------------
# [web]: the live web console
# ---------------------------------------------------------------------------


def test_web_is_off_without_its_table_and_on_loopback_port_8080_with_it() -> None:
    assert load("").web is None
    assert load("[web]\n").web == WebSettings("127.0.0.1", 8080)
    loaded = load('[web]\nlisten = "[::1]:0"\nhistory_messages = 5\nhistory_closed = 0\n').web
    assert loaded == WebSettings("::1", 0, history_messages=5, history_closed=0)


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "192.0.2.1:80"])
def test_web_refuses_a_non_loopback_address_unless_allow_remote(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"^web\.listen: .* is not a loopback address.*allow_remote = true"):
        load(f'[web]\nlisten = "{listen}"\n')
    web = load(f'[web]\nlisten = "{listen}"\nallow_remote = true\n').web
    assert web is not None and web.allow_remote and str(web) == listen


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('listen = "127.0.0.1"', r"^web\.listen: '127\.0\.0\.1' has no port"),
        ('listen = "http://127.0.0.1:80"', r"^web\.listen: .*without a scheme"),
        ('listen = "localhost:80"', r"^web\.listen: .*not an IPv4 address"),
        ('listen = "127.0.0.1:70000"', r"^web\.listen: .*not a number in 0\.\.65535"),
        ("listen = 8080", r"^web\.listen: expected a string, got an integer"),
        ('allow_remote = "yes"', r"^web\.allow_remote: expected a boolean"),
        ("history_messages = 0", r"^web\.history_messages: must be at least 1"),
        ("history_closed = -1", r"^web\.history_closed: must be at least 0"),
        ("history_closed = 1.5", r"^web\.history_closed: expected an integer"),
        ("port = 80", r"^web\.port: unknown key"),
    ],
)
def test_web_errors_name_the_key(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load(f"[web]\n{text}\n")


# ---------------------------------------------------------------------------
# [tun] and backend = "tun": the TUN device (issue 12)
# ---------------------------------------------------------------------------


def test_tun_defaults_and_its_table() -> None:
    assert load("").tun == TunSettings("ikev2r0", (), 1400)
    loaded = load('[tun]\nname = "vpn0"\naddresses = ["10.99.0.1/24", "fd99::1/64"]\nmtu = 1300\n').tun
    assert loaded.name == "vpn0" and loaded.mtu == 1300
    assert [str(address) for address in loaded.addresses] == ["10.99.0.1/24", "fd99::1/64"]
    child = load('[lab]\nany_id_psk = "x"\n[lab.children.net]\nbackend = "tun"\n').config.lab_children[0]
    assert child.backend == "tun"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[tun]\nname = ""', r"^tun\.name: an interface name has 1 to 15 octets"),
        ('[tun]\nname = "a-name-of-16-oct"', r"^tun\.name: an interface name has 1 to 15 octets"),
        ('[tun]\nname = "a/b"', r"^tun\.name: 'a/b' is not an interface name"),
        ('[tun]\nname = "a b"', r"^tun\.name: 'a b' is not an interface name"),
        ("[tun]\nname = 1", r"^tun\.name: expected a string, got an integer"),
        ('[tun]\naddresses = "10.0.0.1/24"', r"^tun\.addresses: expected an array of strings"),
        ('[tun]\naddresses = ["10.0.0.1/33"]', r"^tun\.addresses\[0\]: .*does not appear to be"),
        (
            '[tun]\naddresses = ["10.0.0.1/24", "10.0.0.1/24"]',
            r"^tun\.addresses\[1\]: 10\.0\.0\.1/24 repeats",
        ),
        ('[tun]\naddresses = ["224.0.0.1/4"]', r"^tun\.addresses\[0\]: .*cannot be a device's address"),
        ("[tun]\nmtu = 67", r"^tun\.mtu: must be at least 68"),
        ("[tun]\nmtu = 65536", r"^tun\.mtu: must be at most 65535"),
        (
            '[tun]\nmtu = 1200\naddresses = ["fd99::1/64"]',
            r"^tun\.mtu: an IPv6 address needs an MTU of at least 1280",
        ),
        ('[tun]\nmtu = "1400"', r"^tun\.mtu: expected an integer, got a string"),
        ('[tun]\nnam = "x"', r"^tun\.nam: unknown key; did you mean 'name'\?"),
        (
            '[lab]\nany_id_psk = "x"\n[lab.children.net]\nbackend = "tun"\nmode = "transport"',
            r"^lab\.children\.net\.backend: 'tun' carries IP packets: it needs mode = 'tunnel'",
        ),
        (
            '[lab]\nany_id_psk = "x"\n[lab.children.net]\nbackend = "kernel"',
            r"^lab\.children\.net\.backend: expected 'echo', 'api' or 'tun', got 'kernel'",
        ),
    ],
)
def test_tun_errors_name_the_key(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load(text)
