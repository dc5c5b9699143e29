"""Self-test of the tshark helper and the shipped RFC 9329 Lua dissector.

* The Lua dissector reads a synthetic RFC 9329 stream built from real IKE
  messages (the strongSwan known answers): prefix, a record split across two
  segments, two records in one segment, an ESP record, a non-default port.
* tshark, given key tables, decrypts the harvested strongSwan captures and
  agrees with the harvest's own decryption field by field.
* A live strongSwan pair (root) produces a capture that tshark decrypts with key
  tables made from charon's level-4 log.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import TsharkHelper
from tests.interop.pcap import tcp_segment, write_pcap
from tests.interop.strongswan import StrongSwan
from tests.interop.tshark import EspSaKeys, IkeSaKeys, find_all

pytestmark = pytest.mark.interop

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "strongswan"
SUITES = ("x25519-aes256gcm16-prfsha256", "modp2048-aes256cbc-sha256")
CLIENT, SERVER = "192.0.2.1", "192.0.2.2"


def _vector(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return vector


def _record(body: bytes) -> bytes:
    return struct.pack("!H", 2 + len(body)) + body


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _stream_pcap(path: Path, port: int) -> tuple[list[bytes], bytes]:
    vector = _vector(SUITES[0])
    ike = [bytes.fromhex(m["raw"]) for m in vector["messages"][:4]]
    esp = bytes.fromhex(vector["esp_packets"][0]["raw"])
    first = b"IKETCP" + _record(b"\0\0\0\0" + ike[0])
    c_seq, s_seq = 1000, 5000
    frames = [
        tcp_segment(CLIENT, 40000, SERVER, port, c_seq, s_seq, b"", flags=0x02),  # SYN
        tcp_segment(SERVER, port, CLIENT, 40000, s_seq, c_seq + 1, b"", flags=0x12),  # SYN-ACK
    ]
    c_seq, s_seq = c_seq + 1, s_seq + 1
    split = 50  # the first record arrives in two segments
    for chunk in (first[:split], first[split:]):
        frames.append(tcp_segment(CLIENT, 40000, SERVER, port, c_seq, s_seq, chunk))
        c_seq += len(chunk)
    reply = _record(b"\0\0\0\0" + ike[1])
    frames.append(tcp_segment(SERVER, port, CLIENT, 40000, s_seq, c_seq, reply))
    s_seq += len(reply)
    both = _record(b"\0\0\0\0" + ike[2]) + _record(esp)  # two records in one segment
    frames.append(tcp_segment(CLIENT, 40000, SERVER, port, c_seq, s_seq, both))
    write_pcap(path, frames)
    return ike, esp


@pytest.mark.parametrize("port", [4500, 10443])
def test_lua_dissector_reads_rfc9329_stream(tshark: TsharkHelper, tmp_path: Path, port: int) -> None:
    pcap = tmp_path / "stream.pcap"
    ike, esp = _stream_pcap(pcap, port)
    prefs = [] if port == 4500 else [f"rfc9329.tcp_ports:{port}"]
    packets = tshark.dissect(pcap, prefs=prefs)
    assert [v for p in packets for v in find_all(p, "rfc9329.prefix")] == ["IKETCP"]
    lengths = [int(v) for p in packets for v in find_all(p, "rfc9329.length")]
    assert lengths == [len(ike[0]) + 6, len(ike[1]) + 6, len(ike[2]) + 6, len(esp) + 2]
    messages = [m for p in packets for m in find_all(p, "isakmp")]
    assert [int(m["isakmp.exchangetype"]) for m in messages] == [34, 34, 35]
    assert [int(m["isakmp.length"]) for m in messages] == [len(m) for m in ike[:3]]
    spis = [v for p in packets for v in find_all(p, "esp.spi")]
    assert spis == [f"0x{esp[:4].hex()}"]
    # Without the Lua dissector tshark 4.0 does not find these IKE messages.
    plain = tshark.dissect(pcap, lua=False, prefs=[])
    assert not [m for p in plain for m in find_all(p, "isakmp") if m.get("isakmp.exchangetype") == "35"]


def _key_tables(name: str) -> tuple[list[IkeSaKeys], list[EspSaKeys]]:
    from tests.vectors.harvest_strongswan import SUITES as HARVEST_SUITES
    from tests.vectors.harvest_strongswan import tables_from_vector

    return tables_from_vector(_vector(name), HARVEST_SUITES[name])


def _check_agreement(packets: list[dict[str, Any]], vector: dict[str, Any]) -> None:
    by_frame = {int(p["frame"]["frame.number"]): p for p in packets}
    for message in vector["messages"]:
        (dissected,) = list(find_all(by_frame[message["frame"]], "isakmp"))
        assert int(dissected["isakmp.exchangetype"]) == message["exchange"]
        assert int(dissected["isakmp.messageid"], 16) == message["message_id"]
        assert dissected["isakmp.ispi"].replace(":", "") == message["spi_i"]
        if message["exchange"] == 34:
            continue
        (decrypted,) = list(find_all(dissected, "isakmp.enc.decrypted"))
        ours = [p["type"] for p in message["decrypted"]["payloads"]]
        contained = decrypted.get("isakmp.enc.contained", {}) if isinstance(decrypted, dict) else {}
        theirs = [int(t) for t in _as_list(contained.get("isakmp.typepayload", []))]
        assert theirs == ours, f"frame {message['frame']}"
        if message["exchange"] == 35 and not message["is_response"]:
            assert list(find_all(decrypted, "isakmp.id.data.fqdn"))[:2] == [
                vector["id_i"]["text"],
                vector["id_r"]["text"],
            ]
        if message["exchange"] == 35 and message["is_response"]:
            assert list(find_all(decrypted, "isakmp.id.data.fqdn"))[:1] == [vector["id_r"]["text"]]
    for esp in vector["esp_packets"]:
        packet = by_frame[esp["frame"]]
        assert "icmp" in packet["frame"]["frame.protocols"].split(":"), f"frame {esp['frame']} not decrypted"
        assert list(find_all(packet, "esp.icv_bad")) in ([], ["0"])


@pytest.mark.parametrize("name", SUITES)
def test_tshark_decrypts_harvested_capture(tshark: TsharkHelper, name: str) -> None:
    vector = _vector(name)
    ike_sas, esp_sas = _key_tables(name)
    packets = tshark.dissect(
        VECTORS / vector["pcap"],
        ike_sas=ike_sas,
        esp_sas=esp_sas,
        prefs=["esp.enable_authentication_check:TRUE"],
    )
    _check_agreement(packets, vector)
    # And without keys nothing is decrypted: the check above depends on them.
    bare = tshark.dissect(VECTORS / vector["pcap"])
    assert not [d for p in bare for d in find_all(p, "isakmp.enc.decrypted")]


def test_tshark_decrypts_live_strongswan_capture(
    tshark: TsharkHelper, strongswan: Callable[..., StrongSwan], tmp_path: Path
) -> None:
    # The strongswan fixture checks the prerequisites (root, packages); run_suite makes its own lab.
    from tests.vectors.harvest_strongswan import SUITES as HARVEST_SUITES
    from tests.vectors.harvest_strongswan import build_vector, run_suite

    suite = HARVEST_SUITES[SUITES[0]]
    run = run_suite(suite, tmp_path)
    vector, ike_sas, esp_sas = build_vector(run)
    assert len(vector["ike_sas"]) == 2 and len(vector["child_sas"]) == 2
    packets = tshark.dissect(run.pcap, ike_sas=ike_sas, esp_sas=esp_sas)
    _check_agreement(packets, vector)
