"""Tests of responder.server.keylog: the Wireshark key tables written from the core's events."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path as FilePath
from typing import Any

import attrs
import pytest

from responder.core.enums import EncrId
from responder.core.events import (
    ChildSaEstablished,
    IkeSaClosed,
    IkeSaEstablished,
    MessageAccepted,
)
from responder.core.keys import ChildSaKeys, IkeSaKeys
from responder.core.path import Path, Transport
from responder.core.transforms import encryption, supported_integrity
from responder.server.keylog import (
    ESP_ENCRYPTION,
    ESP_INTEGRITY,
    ESP_TABLE,
    IKE_ENCRYPTION,
    IKE_INTEGRITY,
    IKE_TABLE,
    KeyLog,
    NotDecryptable,
    esp_lines,
    ike_line,
)
from tests.fakes.pair import Pair, child_request, initiator_settings, responder_config, reverse

VECTORS = FilePath(__file__).resolve().parents[1] / "vectors" / "strongswan"
HEX = "[0-9a-f]"

GCM = ("aes256gcm16-prfsha256-x25519", "aes256gcm16")
CBC = ("aes256-sha256-modp2048", "aes256-sha256")


def handshake(ike: str, esp: str) -> Pair:
    """A real IKE_SA_INIT + IKE_AUTH with a Child SA between the two fake endpoints."""
    pair = Pair.create(responder_config(ike))
    pair.initiate(initiator_settings(ike, child_request(esp)))
    pair.pump()
    assert len(pair.events(IkeSaEstablished)) == 1, pair.responder_events
    assert len(pair.events(ChildSaEstablished)) == 1, pair.responder_events
    return pair


def responder_path(pair: Pair) -> Path:
    return reverse(pair.path)  # local = the responder


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# ---------------------------------------------------------------------------
# Line formats, from real handshakes
# ---------------------------------------------------------------------------


def test_gcm_lines_from_a_real_handshake(tmp_path: FilePath) -> None:
    pair = handshake(*GCM)
    [ike] = pair.events(IkeSaEstablished)
    [child] = pair.events(ChildSaEstablished)
    with KeyLog(tmp_path) as keylog:
        for event in pair.responder_events:
            keylog.observe(event, responder_path(pair))
    ike_text = (tmp_path / IKE_TABLE).read_text()
    assert re.fullmatch(
        rf'{HEX}{{16}},{HEX}{{16}},{HEX}{{72}},{HEX}{{72}},"AES-GCM-256 with 16 octet ICV \[RFC5282\]",,,'
        r'"NONE \[RFC4306\]"\n',
        ike_text,
    ), ike_text
    assert ike_text.startswith(f"{ike.spi_i.hex()},{ike.spi_r.hex()},{ike.keys.sk_ei.hex()},")
    esp_text = (tmp_path / ESP_TABLE).read_text()
    gcm = rf'"AES-GCM with 16 octet ICV \[RFC4106\]","0x{HEX}{{72}}","NULL","0x"'
    assert re.fullmatch(
        rf'"IPv4","192.0.2.1","192.0.2.2","0x{child.inbound_spi.hex()}",{gcm}\n'
        rf'"IPv4","192.0.2.2","192.0.2.1","0x{child.outbound_spi.hex()}",{gcm}\n',
        esp_text,
    ), esp_text


def test_cbc_lines_from_a_real_handshake(tmp_path: FilePath) -> None:
    pair = handshake(*CBC)
    [child] = pair.events(ChildSaEstablished)
    with KeyLog(tmp_path) as keylog:
        for event in pair.responder_events:
            keylog.observe(event, responder_path(pair))
    ike_text = (tmp_path / IKE_TABLE).read_text()
    assert re.fullmatch(
        rf'{HEX}{{16}},{HEX}{{16}},{HEX}{{64}},{HEX}{{64}},"AES-CBC-256 \[RFC3602\]",{HEX}{{64}},{HEX}{{64}},'
        r'"HMAC_SHA2_256_128 \[RFC4868\]"\n',
        ike_text,
    ), ike_text
    cbc = rf'"AES-CBC \[RFC3602\]","0x{HEX}{{64}}","HMAC-SHA-256-128 \[RFC4868\]","0x{HEX}{{64}}"'
    assert re.fullmatch(
        rf'"IPv4","192.0.2.1","192.0.2.2","0x{child.inbound_spi.hex()}",{cbc}\n'
        rf'"IPv4","192.0.2.2","192.0.2.1","0x{child.outbound_spi.hex()}",{cbc}\n',
        (tmp_path / ESP_TABLE).read_text(),
    )


@pytest.mark.parametrize(("ike", "esp"), [GCM, CBC], ids=["gcm", "cbc"])
def test_both_ends_describe_the_same_sas(ike: str, esp: str) -> None:
    """The responder's lines equal the initiator's: each direction has the key its sender uses."""
    pair = handshake(ike, esp)
    [ours] = pair.events(IkeSaEstablished)
    [theirs] = pair.events(IkeSaEstablished, "initiator")
    assert ike_line(ours) == ike_line(theirs)
    [our_child] = pair.events(ChildSaEstablished)
    [their_child] = pair.events(ChildSaEstablished, "initiator")
    assert their_child.initiated and not our_child.initiated
    ours_lines = esp_lines(our_child, responder_path(pair))
    theirs_lines = esp_lines(their_child, pair.path)
    assert ours_lines == (theirs_lines[1], theirs_lines[0])
    # and the key of the inbound line is the one that decrypts what the initiator sends
    inbound = rows(ours_lines[0])[0]
    assert inbound[3] == f"0x{our_child.inbound_spi.hex()}"
    assert inbound[5] == f"0x{their_child.keys.encryption_i.hex()}"


def test_every_aes_suite_of_the_core_has_tshark_names() -> None:
    for key_bits in (128, 256):
        name = encryption(EncrId.AES_GCM_16, key_bits).name
        assert name in IKE_ENCRYPTION and name in ESP_ENCRYPTION
    for key_bits in (128, 192, 256):
        name = encryption(EncrId.AES_CBC, key_bits).name
        assert name in IKE_ENCRYPTION and name in ESP_ENCRYPTION
    for integ in supported_integrity():
        assert integ.name in IKE_INTEGRITY and integ.name in ESP_INTEGRITY


# ---------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------


def child_event(**changes: Any) -> ChildSaEstablished:
    event = ChildSaEstablished(
        local_spi=bytes.fromhex("1112131415161718"),
        spi_i=bytes.fromhex("0102030405060708"),
        spi_r=bytes.fromhex("1112131415161718"),
        inbound_spi=bytes.fromhex("c0000001"),
        outbound_spi=bytes.fromhex("d0000002"),
        proposal="aes128gcm16",
        mode="tunnel",
        local_ts=("0.0.0.0/0",),
        remote_ts=("0.0.0.0/0",),
        encryption_name="AES_GCM_16-128",
        integrity_name=None,
        esn=False,
        keys=ChildSaKeys(b"\x11" * 20, b"", b"\x22" * 20, b""),
    )
    return attrs.evolve(event, **changes)


def stream_path(local: str, remote: str) -> Path:
    return Path(Transport.TCP, ip_address(local), 4500, ip_address(remote), 40000, 7)


def test_ipv6_esp_lines() -> None:
    inbound, outbound = esp_lines(child_event(), stream_path("2001:db8::2", "2001:db8::1"))
    assert inbound == (
        '"IPv6","2001:db8::1","2001:db8::2","0xc0000001","AES-GCM with 16 octet ICV [RFC4106]",'
        f'"0x{"11" * 20}","NULL","0x"'
    )
    assert outbound == (
        '"IPv6","2001:db8::2","2001:db8::1","0xd0000002","AES-GCM with 16 octet ICV [RFC4106]",'
        f'"0x{"22" * 20}","NULL","0x"'
    )


def test_ipv4_esp_lines() -> None:
    inbound, outbound = esp_lines(child_event(), stream_path("198.51.100.2", "203.0.113.7"))
    assert inbound.startswith('"IPv4","203.0.113.7","198.51.100.2","0xc0000001",')
    assert outbound.startswith('"IPv4","198.51.100.2","203.0.113.7","0xd0000002",')


def test_as_original_initiator_the_directions_swap_keys() -> None:
    inbound, outbound = esp_lines(child_event(initiated=True), stream_path("198.51.100.2", "203.0.113.7"))
    assert f'"0x{"22" * 20}"' in inbound and f'"0x{"11" * 20}"' in outbound


def test_ipv4_mapped_addresses_are_written_as_ipv4() -> None:
    inbound, _ = esp_lines(child_event(), stream_path("::ffff:198.51.100.2", "::ffff:203.0.113.7"))
    assert inbound.startswith('"IPv4","203.0.113.7","198.51.100.2",')


@pytest.mark.parametrize(("local", "family"), [(IPv4Address(0), "IPv4"), (IPv6Address(0), "IPv6")])
def test_unspecified_local_address_is_the_wildcard(local: IPv4Address | IPv6Address, family: str) -> None:
    remote = "203.0.113.7" if family == "IPv4" else "2001:db8::7"
    path = Path(Transport.UDP, local, 4500, ip_address(remote), 4500)
    inbound, outbound = esp_lines(child_event(), path)
    assert inbound.startswith(f'"{family}","{remote}","*","0xc0000001",')
    assert outbound.startswith(f'"{family}","*","{remote}","0xd0000002",')


def test_no_path_writes_wildcards_for_both_families(tmp_path: FilePath) -> None:
    with KeyLog(tmp_path) as keylog:
        keylog.observe(child_event(), None)
    lines = (tmp_path / ESP_TABLE).read_text().splitlines()
    assert [line.split(",")[:4] for line in lines] == [
        ['"IPv4"', '"*"', '"*"', '"0xc0000001"'],
        ['"IPv4"', '"*"', '"*"', '"0xd0000002"'],
        ['"IPv6"', '"*"', '"*"', '"0xc0000001"'],
        ['"IPv6"', '"*"', '"*"', '"0xd0000002"'],
    ]


# ---------------------------------------------------------------------------
# ChaCha20-Poly1305: left out
# ---------------------------------------------------------------------------


def test_chacha20_is_not_written_and_reported_once(
    tmp_path: FilePath, caplog: pytest.LogCaptureFixture
) -> None:
    pair = handshake("chacha20poly1305-prfsha256-x25519", "chacha20poly1305")
    with pytest.raises(NotDecryptable, match="CHACHA20_POLY1305"):
        ike_line(pair.events(IkeSaEstablished)[0])
    caplog.set_level(logging.DEBUG, "responder.server.keylog")
    with KeyLog(tmp_path) as keylog:
        for _ in range(2):
            for event in pair.responder_events:
                keylog.observe(event, responder_path(pair))
    assert (tmp_path / IKE_TABLE).read_bytes() == b""
    assert (tmp_path / ESP_TABLE).read_bytes() == b""
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "not written" in r.message]
    assert len(warnings) == 1
    assert "CHACHA20_POLY1305" in warnings[0].message
    assert any(r.levelno == logging.DEBUG and "not written" in r.message for r in caplog.records)


# ---------------------------------------------------------------------------
# The files
# ---------------------------------------------------------------------------


def test_files_are_0600_in_a_0700_directory(tmp_path: FilePath) -> None:
    directory = tmp_path / "new" / "keys"
    old = os.umask(0)
    try:
        KeyLog(directory).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in (IKE_TABLE, ESP_TABLE):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600


def test_file_readable_by_others_is_tightened(tmp_path: FilePath, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / IKE_TABLE).write_text("")
    (tmp_path / IKE_TABLE).chmod(0o644)
    KeyLog(tmp_path).close()
    assert stat.S_IMODE((tmp_path / IKE_TABLE).stat().st_mode) == 0o600
    assert any("mode is now 0600" in r.message for r in caplog.records)


def test_an_open_directory_is_reported(tmp_path: FilePath, caplog: pytest.LogCaptureFixture) -> None:
    tmp_path.chmod(0o755)
    KeyLog(tmp_path).close()
    assert any("accessible by other users" in r.message for r in caplog.records)


def test_lines_are_appended_never_truncated(tmp_path: FilePath) -> None:
    pair = handshake(*GCM)
    for _ in range(2):  # a restart: a second KeyLog on the same directory
        with KeyLog(tmp_path) as keylog:
            for event in pair.responder_events:
                keylog.observe(event, responder_path(pair))
    ike_lines = (tmp_path / IKE_TABLE).read_text().splitlines()
    esp = (tmp_path / ESP_TABLE).read_text().splitlines()
    assert len(ike_lines) == 2 and ike_lines[0] == ike_lines[1]
    assert len(esp) == 4 and esp[:2] == esp[2:]


def test_lines_reach_the_file_at_once(tmp_path: FilePath) -> None:
    pair = handshake(*GCM)
    keylog = KeyLog(tmp_path)
    try:
        keylog.observe(pair.events(IkeSaEstablished)[0], responder_path(pair))
        assert (tmp_path / IKE_TABLE).read_text().count("\n") == 1  # before close: no buffering
        keylog.observe(pair.events(ChildSaEstablished)[0], responder_path(pair))
        assert (tmp_path / ESP_TABLE).read_text().count("\n") == 2
        assert keylog.lines_written == 3
    finally:
        keylog.close()


def test_cut_line_does_not_swallow_the_next(tmp_path: FilePath) -> None:
    (tmp_path / IKE_TABLE).write_text("0102,cut short")
    pair = handshake(*GCM)
    with KeyLog(tmp_path) as keylog:
        keylog.observe(pair.events(IkeSaEstablished)[0], responder_path(pair))
    lines = (tmp_path / IKE_TABLE).read_text().splitlines()
    assert lines[0] == "0102,cut short"
    assert lines[1] == ike_line(pair.events(IkeSaEstablished)[0])


def test_symbolic_links_are_refused(tmp_path: FilePath) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / ESP_TABLE).symlink_to(target)
    with pytest.raises(OSError, match="symbolic link"):
        KeyLog(keys)
    assert target.read_text() == ""


def test_other_events_write_nothing(tmp_path: FilePath) -> None:
    path = stream_path("192.0.2.2", "192.0.2.1")
    with KeyLog(tmp_path) as keylog:
        keylog.observe(IkeSaClosed(b"\x02" * 8, b"\x01" * 8, b"\x02" * 8, "deleted"), path)
        keylog.observe(MessageAccepted(b"\x02" * 8, b"\x01" * 8, b"\x02" * 8, 37, 1, False), path)  # type: ignore[arg-type]
        assert keylog.lines_written == 0
    assert (tmp_path / IKE_TABLE).read_bytes() == (tmp_path / ESP_TABLE).read_bytes() == b""


def test_after_close_events_are_ignored(tmp_path: FilePath) -> None:
    keylog = KeyLog(tmp_path)
    keylog.close()
    keylog.close()  # idempotent
    keylog.observe(child_event(), stream_path("192.0.2.2", "192.0.2.1"))
    assert (tmp_path / ESP_TABLE).read_bytes() == b""


def test_write_error_is_logged_once_and_not_raised(
    tmp_path: FilePath, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full(_fd: int, _data: bytes) -> int:
        raise OSError(28, "No space left on device")

    with KeyLog(tmp_path) as keylog:
        monkeypatch.setattr(os, "write", full)
        for _ in range(3):
            keylog.observe(child_event(), stream_path("192.0.2.2", "192.0.2.1"))
        monkeypatch.undo()
        assert keylog.lines_written == 0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "No space left on device" in errors[0].message


def test_keys_never_reach_the_log(tmp_path: FilePath, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pair = handshake(*CBC)
    with KeyLog(tmp_path) as keylog:
        for event in pair.responder_events:
            keylog.observe(event, responder_path(pair))
    [ike] = pair.events(IkeSaEstablished)
    [child] = pair.events(ChildSaEstablished)
    secrets = [ike.keys.sk_ei, ike.keys.sk_er, ike.keys.sk_ai, ike.keys.sk_ar, *attrs.astuple(child.keys)]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "key log" in logged
    for secret in secrets:
        assert secret.hex() not in logged


# ---------------------------------------------------------------------------
# The strongSwan captures: the same tables, byte for byte, and tshark decrypts with them
# ---------------------------------------------------------------------------

SUITES = {
    "x25519-aes256gcm16-prfsha256": ("AES_GCM_16-256", None),
    "modp2048-aes256cbc-sha256": ("AES_CBC-256", "HMAC_SHA2_256_128"),
}


def write_vector_tables(name: str, directory: FilePath) -> dict[str, Any]:
    """Feed the vector's SAs to a KeyLog as the strongSwan responder's events."""
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    encryption_name, integrity_name = SUITES[name]
    path = Path(
        Transport.UDP,
        ip_address(vector["addresses"]["responder"]),
        4500,
        ip_address(vector["addresses"]["initiator"]),
        4500,
    )

    def octets(record: dict[str, Any], key: str) -> bytes:
        return bytes.fromhex(record[key])

    with KeyLog(directory) as keylog:
        for sa in vector["ike_sas"]:
            keys = IkeSaKeys(
                *(octets(sa, k) for k in ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr"))
            )
            spi_i, spi_r = octets(sa, "spi_i"), octets(sa, "spi_r")
            event = IkeSaEstablished(spi_r, spi_i, spi_r, "", "", "", encryption_name, integrity_name, keys)
            keylog.observe(event, path)
        for child in vector["child_sas"]:
            keylog.observe(
                child_event(
                    inbound_spi=octets(child, "spi_r"),
                    outbound_spi=octets(child, "spi_i"),
                    encryption_name=encryption_name,
                    integrity_name=integrity_name,
                    keys=ChildSaKeys(*(octets(child, k) for k in ("encr_i", "integ_i", "encr_r", "integ_r"))),
                ),
                path,
            )
    return vector


@pytest.mark.parametrize("name", sorted(SUITES))
def test_tables_equal_the_harvested_ones(name: str, tmp_path: FilePath) -> None:
    write_vector_tables(name, tmp_path)
    for table in (IKE_TABLE, ESP_TABLE):
        assert (tmp_path / table).read_text() == (VECTORS / f"{name}.{table}").read_text(), table


@pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark is not installed (bash .ci/install-interop)"
)
@pytest.mark.parametrize("name", sorted(SUITES))
def test_tshark_decrypts_the_capture_with_our_tables(name: str, tmp_path: FilePath) -> None:
    vector = write_vector_tables(name, tmp_path)
    argv = ["tshark", "-n", "-r", str(VECTORS / f"{name}.pcap"), "-2", "-T", "fields"]
    argv += ["-o", "esp.enable_encryption_decode:TRUE", "-e", "frame.number", "-e", "frame.protocols"]
    environment = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=120, check=True)
    assert "Error loading table" not in result.stderr, result.stderr
    protocols = dict(line.split("\t", 1) for line in result.stdout.splitlines())
    esp_frames = {str(packet["frame"]) for packet in vector["esp_packets"]}
    assert esp_frames
    assert all("icmp" in protocols[frame] for frame in esp_frames), protocols
    encrypted = {str(m["frame"]) for m in vector["messages"] if m.get("decrypted")}
    argv[argv.index("frame.protocols")] = "isakmp.enc.decrypted"
    decrypted = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=120, check=True)
    fields = dict(line.split("\t", 1) for line in decrypted.stdout.splitlines())
    assert encrypted and all(fields[frame] for frame in encrypted), fields


def test_key_log_lines_of_a_pair_we_rekeyed_agree_with_the_peers() -> None:
    """RFC 7296 §2.17: KEYMAT is cut for the exchange's initiator first, so after a rekey we started our
    ``*_i`` keys are our outbound ones; the Wireshark lines of both ends name the same key per SPI."""
    from responder.core.exchanges.create_child_sa import RekeyChildSa
    from tests.core.test_lifecycle import child_of, make_pair

    pair, _, ours = make_pair("aes256gcm16-x25519")
    pair.responder.start(ours.local_spi, RekeyChildSa.of(child_of(ours).inbound_spi), pair.now)
    pair.pump()
    [mine] = [e for e in pair.events(ChildSaEstablished) if e.rekeyed is not None]
    [theirs] = [e for e in pair.events(ChildSaEstablished, "initiator") if e.rekeyed is not None]
    assert mine.initiated and not theirs.initiated

    def keys_by_spi(lines: tuple[str, ...]) -> dict[str, str]:
        return {line.split(",")[3]: line.split(",")[5] for line in lines}

    assert keys_by_spi(esp_lines(mine, None)) == keys_by_spi(esp_lines(theirs, None))
