"""Captures (tcpdump in a namespace) and dissection with tshark, as Python dicts.

Strategy: tshark writes JSON (``-T json --no-duplicate-keys``, so repeated
fields become lists); :func:`dissect` returns one dict of layers per packet.
The project's RFC 9329 Lua dissector (responder/wireshark/rfc9329.lua) is
loaded by default, since tshark 4.0 cannot parse RFC 9329 streams.  Decryption
uses key tables written into a private Wireshark configuration directory
(``WIRESHARK_CONFIG_DIR``): ``ikev2_decryption_table`` (one IKE SA a line) and
``esp_sa`` (one direction a line), in the formats tshark 4.0 accepts (AES-GCM
and AES-CBC only; see /work/shared/interop-notes.md and docs/interop.md).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.interop.lab import LabError, Netns, Proc, run_command, wait_until

__all__ = [
    "ESP_ENCRYPTION",
    "ESP_INTEGRITY",
    "IKE_ENCRYPTION",
    "IKE_INTEGRITY",
    "LUA_DISSECTOR",
    "EspSaKeys",
    "IkeSaKeys",
    "dissect",
    "find_all",
    "start_capture",
    "stop_capture",
    "write_key_tables",
]

LUA_DISSECTOR = Path(__file__).resolve().parents[2] / "responder" / "wireshark" / "rfc9329.lua"

#: Names tshark 4.0 uses in ikev2_decryption_table for (encryption, key bits).
IKE_ENCRYPTION = {
    ("aes-gcm-16", 128): "AES-GCM-128 with 16 octet ICV [RFC5282]",
    ("aes-gcm-16", 192): "AES-GCM-192 with 16 octet ICV [RFC5282]",
    ("aes-gcm-16", 256): "AES-GCM-256 with 16 octet ICV [RFC5282]",
    ("aes-cbc", 128): "AES-CBC-128 [RFC3602]",
    ("aes-cbc", 192): "AES-CBC-192 [RFC3602]",
    ("aes-cbc", 256): "AES-CBC-256 [RFC3602]",
}
IKE_INTEGRITY = {
    None: "NONE [RFC4306]",
    "hmac-sha1-96": "HMAC_SHA1_96 [RFC2404]",
    "hmac-sha2-256-128": "HMAC_SHA2_256_128 [RFC4868]",
    "hmac-sha2-384-192": "HMAC_SHA2_384_192 [RFC4868]",
    "hmac-sha2-512-256": "HMAC_SHA2_512_256 [RFC4868]",
}
ESP_ENCRYPTION = {"aes-gcm-16": "AES-GCM with 16 octet ICV [RFC4106]", "aes-cbc": "AES-CBC [RFC3602]"}
ESP_INTEGRITY = {
    None: "NULL",
    "hmac-sha1-96": "HMAC-SHA-1-96 [RFC2404]",
    "hmac-sha2-256-128": "HMAC-SHA-256-128 [RFC4868]",
    "hmac-sha2-384-192": "HMAC-SHA-384-192 [RFC4868]",
    "hmac-sha2-512-256": "HMAC-SHA-512-256 [RFC4868]",
}


@dataclass(frozen=True)
class IkeSaKeys:
    """One line of ikev2_decryption_table."""

    spi_i: bytes
    spi_r: bytes
    sk_ei: bytes
    sk_er: bytes
    encryption: str  # a key of IKE_ENCRYPTION's values, e.g. IKE_ENCRYPTION[("aes-gcm-16", 256)]
    sk_ai: bytes = b""
    sk_ar: bytes = b""
    integrity: str = IKE_INTEGRITY[None]

    def line(self) -> str:
        return (
            f"{self.spi_i.hex()},{self.spi_r.hex()},{self.sk_ei.hex()},{self.sk_er.hex()},"
            f'"{self.encryption}",{self.sk_ai.hex()},{self.sk_ar.hex()},"{self.integrity}"'
        )


@dataclass(frozen=True)
class EspSaKeys:
    """One line of esp_sa (one direction of a Child SA)."""

    src: str
    dst: str
    spi: int
    encryption: str
    key: bytes  # including the 4-octet salt for AES-GCM
    integrity: str = ESP_INTEGRITY[None]
    integrity_key: bytes = b""

    def line(self) -> str:
        family = "IPv6" if ":" in self.src else "IPv4"
        return (
            f'"{family}","{self.src}","{self.dst}","{self.spi:#010x}","{self.encryption}",'
            f'"0x{self.key.hex()}","{self.integrity}","0x{self.integrity_key.hex()}"'
        )


def write_key_tables(
    config_dir: Path, ike_sas: Sequence[IkeSaKeys] = (), esp_sas: Sequence[EspSaKeys] = ()
) -> None:
    """Write the two UAT files into a Wireshark configuration directory."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "ikev2_decryption_table").write_text("".join(sa.line() + "\n" for sa in ike_sas))
    (config_dir / "esp_sa").write_text("".join(sa.line() + "\n" for sa in esp_sas))


def dissect(
    pcap: Path,
    *,
    ike_sas: Sequence[IkeSaKeys] = (),
    esp_sas: Sequence[EspSaKeys] = (),
    lua: bool = True,
    decode_as: Sequence[str] = (),
    prefs: Sequence[str] = (),
    display_filter: str | None = None,
    two_pass: bool = True,
    timeout: float = 120.0,
    config_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Dissect ``pcap`` and return each packet's ``layers`` dict.

    ``decode_as`` entries go to ``-d`` (e.g. ``"tcp.port==10443,rfc9329"``); ``prefs`` to ``-o``.
    Key tables, if given, are written to a temporary configuration directory.
    ``config_dir`` instead names a directory that already holds them (e.g. the
    responder's ``--keylog`` directory); ESP decryption is then switched on.
    """
    if config_dir is not None and (ike_sas or esp_sas):
        raise ValueError("give key tables or a configuration directory holding them, not both")
    esp_decode = bool(esp_sas) or (config_dir is not None and (config_dir / "esp_sa").exists())
    with tempfile.TemporaryDirectory(prefix="ikr-wireshark-") as tmp:
        if config_dir is None:
            config_dir = Path(tmp)
            write_key_tables(config_dir, ike_sas, esp_sas)
        argv = ["tshark", "-n", "-r", str(pcap), "-T", "json", "--no-duplicate-keys"]
        if two_pass:
            argv.append("-2")
        if lua:
            argv += ["-X", f"lua_script:{LUA_DISSECTOR}"]
        if esp_decode:
            argv += ["-o", "esp.enable_encryption_decode:TRUE"]
        for rule in decode_as:
            argv += ["-d", rule]
        for pref in prefs:
            argv += ["-o", pref]
        if display_filter:
            argv += ["-Y", display_filter]
        env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)}
        proc = run_command(argv, env=env, timeout=timeout)
    packets = json.loads(proc.stdout or "[]")
    return [p["_source"]["layers"] for p in packets]


def field_values(
    pcap: Path,
    field: str,
    *,
    config_dir: Path | None = None,
    prefs: Sequence[str] = (),
    timeout: float = 120.0,
) -> list[str]:
    """Every value of ``field`` in ``pcap``, in order, every occurrence (``-T fields``).

    Unlike the JSON of :func:`dissect`, this sees each of several PDUs of one frame (two RFC 9329
    frames in one TCP segment each give their ICMP layer).  ``config_dir`` as for :func:`dissect`.
    """
    argv = ["tshark", "-n", "-r", str(pcap), "-2", "-X", f"lua_script:{LUA_DISSECTOR}"]
    argv += ["-T", "fields", "-e", field, "-E", "occurrence=a", "-E", "aggregator=,"]
    if config_dir is not None and (config_dir / "esp_sa").exists():
        argv += ["-o", "esp.enable_encryption_decode:TRUE"]
    for pref in prefs:
        argv += ["-o", pref]
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir or tempfile.mkdtemp(prefix="ikr-wireshark-"))}
    proc = run_command(argv, env=env, timeout=timeout)
    return [[value for value in line.split(",") if value] for line in proc.stdout.splitlines()]


def find_all(tree: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key`` anywhere in a dissection (lists flattened)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                if isinstance(v, list):
                    yield from v
                else:
                    yield v
            yield from find_all(v, key)
    elif isinstance(tree, list):
        for item in tree:
            yield from find_all(item, key)


def start_capture(netns: Netns, ifname: str, pcap: Path, bpf: str = "", timeout: float = 10.0) -> Proc:
    """tcpdump on ``ifname`` inside ``netns`` into ``pcap``; returns once it is capturing."""
    log = pcap.with_suffix(".tcpdump.log")
    argv = ["tcpdump", "-i", ifname, "-n", "-U", "--immediate-mode", "-Z", "root", "-s", "0", "-w", str(pcap)]
    if bpf:
        argv += bpf.split()
    proc = netns.spawn(argv, log=log)

    def ready() -> bool:
        if not proc.alive():
            raise LabError(f"tcpdump exited: {proc.log_text()}")
        return "listening on" in proc.log_text()

    wait_until(ready, timeout, f"tcpdump on {netns.name}/{ifname}")
    return proc


def stop_capture(proc: Proc) -> None:
    """Stop tcpdump so that it flushes the file (SIGINT), and reap it."""
    time.sleep(0.2)  # let the last packets reach the socket buffer
    proc.stop(signal.SIGINT)
