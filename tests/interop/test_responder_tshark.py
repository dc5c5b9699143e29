"""tshark decrypts captures of the responder with nothing but the responder's own key log.

Each test runs one of the peer scenarios (:func:`run_libreswan`,
:func:`run_strongswan`) with ``--keylog DIR``, stops the capture and dissects
it with ``WIRESHARK_CONFIG_DIR=DIR`` (the responder writes tshark's
``ikev2_decryption_table`` and ``esp_sa`` there) and, for TLS,
``-o tls.keylog_file:DIR/tls-keys.log``.  It checks that the key tables name
the SAs the peers report, that IKE_AUTH and INFORMATIONAL decrypt, that the
decrypted IDi/IDr are the identities the peers were configured with, and, as a
control, that without the key log nothing decrypts.  TCP streams go through the
project's RFC 9329 Lua dissector (responder/wireshark/rfc9329.lua); over TLS the
whole way, TLS records to IKE payloads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import TsharkHelper
from tests.interop.lab import Lab, Proc
from tests.interop.libreswan import Libreswan
from tests.interop.responder_proc import Responder
from tests.interop.strongswan import StrongSwan
from tests.interop.test_responder_libreswan import run_libreswan
from tests.interop.test_responder_strongswan import INNER_I, INNER_R, SUITES, run_strongswan
from tests.interop.tshark import ESP_ENCRYPTION, ESP_INTEGRITY, IKE_ENCRYPTION, IKE_INTEGRITY, find_all

IKE_SA_INIT, IKE_AUTH, INFORMATIONAL = 34, 35, 37
ID_I, ID_R = 35, 36  # payload types
NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP = 16388, 16389
TLS_CERTIFICATE_REQUEST, TLS_CERTIFICATE = "13", "11"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _messages(packets: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every IKE message as (packet, isakmp layer), in capture order."""
    return [(packet, message) for packet in packets for message in find_all(packet, "isakmp")]


def _is_response(message: dict[str, Any]) -> bool:
    return bool(message["isakmp.flags_tree"]["isakmp.flag_r"] == "1")


def _decrypted(message: dict[str, Any]) -> dict[str, Any] | None:
    found = list(find_all(message, "isakmp.enc.decrypted"))
    return found[0] if found and isinstance(found[0], dict) else None


def _contained(decrypted: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The decrypted inner payloads as (payload type, dissection)."""
    contained = decrypted.get("isakmp.enc.contained")
    if not isinstance(contained, dict):
        return []
    types = [int(t) for t in _as_list(contained.get("isakmp.typepayload", []))]
    trees = _as_list(contained.get("isakmp.typepayload_tree", []))
    return list(zip(types, trees, strict=True))


def _ids(message: dict[str, Any]) -> dict[int, str]:
    """{35: IDi, 36: IDr} from a decrypted IKE_AUTH message (FQDN identities)."""
    decrypted = _decrypted(message)
    assert decrypted is not None
    return {
        kind: tree["isakmp.id.data"]["isakmp.id.data.fqdn"]
        for kind, tree in _contained(decrypted)
        if kind in (ID_I, ID_R)
    }


def _notifies(message: dict[str, Any]) -> list[int]:
    return [int(v) for v in find_all(message, "isakmp.notify.msgtype")]


def _spi(message: dict[str, Any], field: str) -> str:
    return str(message[field]).replace(":", "")


def _table_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _check_ike(
    packets: list[dict[str, Any]],
    responder: Responder,
    *,
    id_i: str,
    id_r: str,
    encryption: str,
    integrity: str,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The checks common to every transport; returns the IKE messages."""
    messages = _messages(packets)
    exchanges = [int(m["isakmp.exchangetype"]) for _, m in messages]
    assert exchanges[:6] == [IKE_SA_INIT, IKE_SA_INIT, IKE_AUTH, IKE_AUTH, INFORMATIONAL, INFORMATIONAL]
    assert [_is_response(m) for _, m in messages[:6]] == [False, True] * 3

    # The key table has one line, for the SA on the wire, with the suite negotiated.
    (line,) = _table_lines(responder.ike_table)
    auth_request = messages[2][1]
    spi_i, spi_r = _spi(auth_request, "isakmp.ispi"), _spi(auth_request, "isakmp.rspi")
    assert line.startswith(f"{spi_i},{spi_r},"), line
    assert f'"{encryption}"' in line and line.endswith(f'"{integrity}"'), line

    # Every message after IKE_SA_INIT decrypts with it.
    for _, message in messages[2:]:
        assert _decrypted(message) is not None, message
    # IDi/IDr are what the peers were configured with (RFC 7296 §3.5).
    assert _ids(messages[2][1]).get(ID_I) == id_i
    assert _ids(messages[2][1]).get(ID_R, id_r) == id_r  # IDr in the request is optional
    assert _ids(messages[3][1]) == {ID_R: id_r}
    # The liveness check and its answer are empty INFORMATIONAL messages (RFC 7296 §2.4).
    for _, message in messages[4:6]:
        decrypted = _decrypted(message)
        assert decrypted is not None and _contained(decrypted) == [], message
    return messages


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
def test_a16_a17_a44_tshark_decrypts_libreswan_tcp_capture(
    netns: Lab,
    libreswan: Callable[..., Libreswan],
    standin: Callable[..., Proc],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    run = run_libreswan(
        "tcp", netns=netns, libreswan=libreswan, standin=standin, responder=responder, tshark=tshark
    )
    pcap = run.capture.stop()
    packets = tshark.dissect(pcap, config_dir=run.responder.keylog_dir)
    messages = _check_ike(
        packets,
        run.responder,
        id_i="initiator.lab",
        id_r="responder.lab",
        encryption=IKE_ENCRYPTION[("aes-gcm-16", 256)],
        integrity=IKE_INTEGRITY[None],
    )
    # RFC 9329 framing, read by the Lua dissector: the prefix once (A9), then each IKE message
    # as Length = 2 + non-ESP marker (4) + IKE length (A16, A17), both directions.
    assert [v for p in packets for v in find_all(p, "rfc9329.prefix")] == ["IKETCP"]
    lengths = [int(v) for p in packets for v in find_all(p, "rfc9329.length")]
    assert lengths == [int(m["isakmp.length"]) + 6 for _, m in messages]
    assert all(p["tcp"]["tcp.srcport"] == "4500" or p["tcp"]["tcp.dstport"] == "4500" for p, _ in messages)
    # RFC 9329 §6.5 (A44): the IKE_SA_INIT response carries both NAT_DETECTION notifies.
    assert {NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP} <= set(_notifies(messages[1][1]))
    # Control: without the responder's key log nothing decrypts.
    bare = tshark.dissect(pcap)
    assert not [d for p in bare for d in find_all(p, "isakmp.enc.decrypted")]
    assert run.responder.stop() == 0


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
def test_a14_a67_a68_tshark_decrypts_libreswan_tls_capture(
    netns: Lab,
    libreswan: Callable[..., Libreswan],
    standin: Callable[..., Proc],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    run = run_libreswan(
        "tls", netns=netns, libreswan=libreswan, standin=standin, responder=responder, tshark=tshark
    )
    pcap = run.capture.stop()
    tls_keylog = run.responder.tls_keylog
    assert re.search(r"^SERVER_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} ", tls_keylog.read_text(), re.M)
    packets = tshark.dissect(
        pcap, config_dir=run.responder.keylog_dir, prefs=[f"tls.keylog_file:{tls_keylog}"]
    )
    messages = _check_ike(
        packets,
        run.responder,
        id_i="initiator.lab",
        id_r="responder.lab",
        encryption=IKE_ENCRYPTION[("aes-gcm-16", 256)],
        integrity=IKE_INTEGRITY[None],
    )
    # Appendix A (A14): the IKETCP prefix and every IKE message travel inside TLS.
    for packet, _ in messages:
        assert "tls" in packet["frame"]["frame.protocols"].split(":"), packet["frame"]["frame.protocols"]
    prefix_packets = [p for p in packets if list(find_all(p, "rfc9329.prefix"))]
    assert len(prefix_packets) == 1 and "tls" in prefix_packets[0]["frame"]["frame.protocols"]
    lengths = [int(v) for p in packets for v in find_all(p, "rfc9329.length")]
    assert lengths == [int(m["isakmp.length"]) + 6 for _, m in messages]
    # A67: TLS 1.3; the handshake decrypted (the server's Certificate is visible) and
    # A68: the server did not ask for a client certificate (no CertificateRequest).
    versions = {v for p in packets for v in find_all(p, "tls.handshake.extensions.supported_version")}
    assert "0x0304" in versions, versions
    handshake_types = [str(v) for p in packets for v in find_all(p, "tls.handshake.type")]
    assert TLS_CERTIFICATE in handshake_types and TLS_CERTIFICATE_REQUEST not in handshake_types
    # Control: with the IKE key table but no TLS secrets, tshark sees no IKE at all.
    assert not _messages(tshark.dissect(pcap, config_dir=run.responder.keylog_dir))
    assert run.responder.stop() == 0


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
@pytest.mark.parametrize("suite", ["gcm", "cbc"])
def test_tshark_decrypts_strongswan_udp_capture(
    suite: str,
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    run = run_strongswan(
        SUITES[suite], netns=netns, strongswan=strongswan, responder=responder, tshark=tshark
    )
    # ESP both ways (charon's echo requests, our echo backend's replies) lets tshark check the
    # responder's esp_sa lines in both directions.
    run.charon_ns.run("ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", INNER_I, INNER_R, check=False)
    sa = run.charon.list_sas()["lab"]
    (child,) = sa["child-sas"].values()
    pcap = run.capture.stop()
    gcm = suite == "gcm"
    packets = tshark.dissect(pcap, config_dir=run.responder.keylog_dir)
    messages = _check_ike(
        packets,
        run.responder,
        id_i="initiator.lab",
        id_r="responder.lab",
        encryption=IKE_ENCRYPTION[("aes-gcm-16" if gcm else "aes-cbc", 256)],
        integrity=IKE_INTEGRITY[None if gcm else "hmac-sha2-256-128"],
    )
    assert _spi(messages[2][1], "isakmp.ispi") == sa["initiator-spi"]
    assert _spi(messages[2][1], "isakmp.rspi") == sa["responder-spi"]
    # IKE_SA_INIT on 500, then NAT-T on 4500 with the non-ESP marker (RFC 3948).
    assert [p["udp"]["udp.dstport"] for p, _ in messages[:1]] == ["500"]
    assert all("udpencap" in p["frame"]["frame.protocols"] for p, _ in messages[2:])

    # esp_sa: one line per direction, for the SPIs charon reports.
    encryption = ESP_ENCRYPTION["aes-gcm-16" if gcm else "aes-cbc"]
    integrity = ESP_INTEGRITY[None if gcm else "hmac-sha2-256-128"]
    lines = _table_lines(run.responder.esp_table)
    assert len(lines) == 2, lines
    inbound = f'"IPv4","192.0.2.1","192.0.2.2","0x{child["spi-out"]}","{encryption}","0x'
    outbound = f'"IPv4","192.0.2.2","192.0.2.1","0x{child["spi-in"]}","{encryption}","0x'
    assert sorted(line[: len(inbound)] for line in lines) == sorted([inbound, outbound]), lines
    assert all(f'"{integrity}","0x' in line for line in lines), lines
    # ... and they decrypt both directions: charon's echo requests and our replies inside.
    esp = [p for p in packets if "esp" in p["frame"]["frame.protocols"].split(":")]
    assert esp, "no ESP in the capture"
    inner = [p for p in esp if "icmp" in p["frame"]["frame.protocols"].split(":")]
    assert len(inner) == len(esp) >= 4
    for packet in inner:  # outer header, then the decrypted inner one
        if list(find_all(packet, "icmp.type")) == ["8"]:  # echo request, charon to us
            assert list(find_all(packet, "ip.src")) == ["192.0.2.1", INNER_I]
            assert list(find_all(packet, "ip.dst")) == ["192.0.2.2", INNER_R]
        else:  # echo reply from our echo backend
            assert list(find_all(packet, "icmp.type")) == ["0"]
            assert list(find_all(packet, "ip.src")) == ["192.0.2.2", INNER_R]
            assert list(find_all(packet, "ip.dst")) == ["192.0.2.1", INNER_I]

    # Control: without the responder's key log nothing decrypts.
    bare = tshark.dissect(pcap)
    assert not [d for p in bare for d in find_all(p, "isakmp.enc.decrypted")]
    assert not [p for p in bare if "icmp" in p["frame"]["frame.protocols"].split(":")]
    assert run.responder.stop() == 0
