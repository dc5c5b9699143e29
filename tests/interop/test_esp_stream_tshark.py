"""tshark decrypts ESP carried in RFC 9329 frames over TCP and inside TLS (issue 12).

The project's client (``python -m responder.client_cli``) pings the responder's echo backend
through its Child SA over TCP and over TLS, inside a network namespace, while tcpdump captures
loopback; tshark, with the project's RFC 9329 Lua dissector, the responder's own key log
(``esp_sa``, ``ikev2_decryption_table``) and for TLS its TLS key log, must find every ESP packet
of both directions with the SPIs of the key log, and decrypt it to show the ICMP echo inside
(the first record of each TCP segment: tshark decrypts no second ESP record in one frame).
Without the key log nothing inside ESP is visible (the control).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.interop.conftest import TsharkHelper
from tests.interop.lab import Lab
from tests.interop.responder_proc import Responder
from tests.interop.tshark import field_values

PINGS = 3


def _protocols(packet: dict[str, Any]) -> list[str]:
    return str(packet["frame"]["frame.protocols"]).split(":")


@pytest.mark.interop
@pytest.mark.hard_timeout(90)
@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_tshark_decrypts_esp_over_tcp_and_tls(
    transport: str,
    netns: Lab,
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    ns = netns.netns("esp")
    port = 4500 if transport == "tcp" else 443
    address = f"127.0.0.1:{port}"
    resp = responder(ns, **{transport: [address]}, log_level="info")
    capture = tshark.capture(ns, "lo", f"esp-{transport}", bpf=f"tcp port {port}")
    argv = [sys.executable, "-m", "responder.client_cli", f"--{transport}", address, "--psk", resp.psk]
    argv += ["--ping", "192.0.2.1", "--ping-count", str(PINGS), "--json"]
    if transport == "tls":
        argv += ["--tls-fingerprint", resp.fingerprint()]
    result = ns.run(*argv, timeout=60)
    report = json.loads(result.stdout)
    assert report["established"] and report["ping"]["received"] == PINGS, result.stdout
    pcap = capture.stop()
    prefs = [f"tls.keylog_file:{resp.tls_keylog}"] if transport == "tls" else []

    # Several records may share a TCP segment (our writer joins what is queued): count PDUs.
    spis = field_values(pcap, "esp.spi", config_dir=resp.keylog_dir, prefs=prefs)
    assert sum(map(len, spis)) == 2 * PINGS, spis
    table = [line.lower() for line in resp.esp_table.read_text().splitlines() if line.strip()]
    ours = {int(spi, 16) for frame in spis for spi in frame}
    assert len(ours) == 2 and all(any(f"{spi:08x}" in line for line in table) for spi in ours), (ours, table)
    # tshark decrypts the first ESP record of each frame (a second one in the same segment shows
    # its SPI and sequence number only): each of those holds the echo request or reply.
    types = field_values(pcap, "icmp.type", config_dir=resp.keylog_dir, prefs=prefs)
    frames = [(frame, kinds) for frame, kinds in zip(spis, types, strict=True) if frame]
    assert all(len(kinds) == 1 for _, kinds in frames), frames
    decrypted = sorted(int(kind) for _, kinds in frames for kind in kinds)
    assert decrypted.count(8) == PINGS and 1 <= decrypted.count(0) <= PINGS, decrypted
    packets = tshark.dissect(pcap, config_dir=resp.keylog_dir, prefs=prefs)
    assert any("rfc9329" in _protocols(p) and "icmp" in _protocols(p) for p in packets)

    control = field_values(pcap, "icmp.type", prefs=prefs)  # no key tables: ESP stays opaque
    assert not any(control)
    assert resp.stop() == 0
