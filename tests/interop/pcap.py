"""Just enough pcap to read what tcpdump wrote on a veth and to write small test captures.

Strategy: classic pcap (not pcapng), link types Ethernet (1) and Linux
cooked (113), IPv4 only, no fragments.  :func:`read_packets` yields
:class:`Packet` records with the transport payload; :func:`write_pcap` with
:func:`tcp_segment`/:func:`udp_datagram` builds captures for dissector tests.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Packet", "read_packets", "tcp_segment", "udp_datagram", "write_pcap"]

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113


@dataclass(frozen=True)
class Packet:
    index: int  # 1-based frame number, as tshark counts
    time: float
    src: str
    dst: str
    proto: int  # 6 TCP, 17 UDP, 50 ESP
    sport: int
    dport: int
    payload: bytes
    tcp_seq: int = 0
    tcp_flags: int = 0


def read_packets(path: Path) -> Iterator[Packet]:
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian, nano = "<", False
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian, nano = ">", False
    elif magic == b"\x4d\x3c\xb2\xa1":
        endian, nano = "<", True
    elif magic == b"\xa1\xb2\x3c\x4d":
        endian, nano = ">", True
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos, index = 24, 0
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        index += 1
        if linktype == LINKTYPE_ETHERNET:
            ethertype, l3 = struct.unpack("!H", frame[12:14])[0], frame[14:]
        elif linktype == LINKTYPE_LINUX_SLL:
            ethertype, l3 = struct.unpack("!H", frame[14:16])[0], frame[16:]
        else:
            raise ValueError(f"{path}: unsupported link type {linktype}")
        if ethertype != 0x0800 or len(l3) < 20:
            continue
        ihl = (l3[0] & 0x0F) * 4
        total = struct.unpack("!H", l3[2:4])[0]
        proto = l3[9]
        src, dst = str(ipaddress.IPv4Address(l3[12:16])), str(ipaddress.IPv4Address(l3[16:20]))
        l4 = l3[ihl:total]
        stamp = sec + frac / (1e9 if nano else 1e6)
        if proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack("!HH", l4[:4])
            yield Packet(index, stamp, src, dst, proto, sport, dport, l4[8:])
        elif proto == 6 and len(l4) >= 20:
            sport, dport, seq = struct.unpack("!HHI", l4[:8])
            offset = (l4[12] >> 4) * 4
            yield Packet(index, stamp, src, dst, proto, sport, dport, l4[offset:], seq, l4[13])
        else:
            yield Packet(index, stamp, src, dst, proto, 0, 0, l4)


def _ipv4(src: str, dst: str, proto: int, l4: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        0,
        0x4000,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    words = struct.unpack("!10H", header)
    csum = sum(words)
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    header = header[:10] + struct.pack("!H", ~csum & 0xFFFF) + header[12:]
    return header + l4


def _ethernet(l3: bytes) -> bytes:
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + l3


def tcp_segment(
    src: str, sport: int, dst: str, dport: int, seq: int, ack: int, payload: bytes, flags: int = 0x18
) -> bytes:
    """An Ethernet frame with one TCP segment (checksum left zero: tshark does not verify by default)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    return _ethernet(_ipv4(src, dst, 6, tcp))


def udp_datagram(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return _ethernet(_ipv4(src, dst, 17, udp))


def write_pcap(path: Path, frames: Iterable[bytes], start: float = 1_700_000_000.0) -> None:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
    for i, frame in enumerate(frames):
        stamp = start + i * 0.001
        out += struct.pack("<IIII", int(stamp), int((stamp % 1) * 1e6), len(frame), len(frame)) + frame
    path.write_bytes(out)
