"""Benchmark: ESP through the running responder over TCP (RFC 9329) and UDP (RFC 3948), per core.

Run: ``python bench/esp_wire.py [--transports tcp,udp] [--backends echo,api] [--sizes 1400,64]
[--packets N] [--suite aes256gcm16]``.

For each backend a responder runs in a child process of its own (``--serve BACKEND``: the
embedding API, :func:`responder.server.serve`, with a TCP and a UDP listener on 127.0.0.1 and
one peer whose Child SA uses that backend; for ``api`` a task of the child reads
``Engine.inner_packets`` as a program would).  This process is the initiator: for each
transport it establishes an IKE SA with one Child SA (``responder.client.establish``: PSK,
x25519, the ``--suite`` ESP proposal), takes the Child SA's ESP keys from its own endpoint and
seals ``--packets`` ICMP echo requests of each size **before** the clock starts.  Then it sends
them as fast as the socket takes them on a new socket of its own (a TCP connection that sends
the "IKETCP" prefix and then ESP frames, or a UDP socket): authenticated ESP moves the SA's path
there (RFC 9329 §6.1 row A36, RFC 7296 §2.23), and with the echo backend the replies come back
on it and are counted.

What is measured is the **responder process's** CPU time (user + system, read by the child
itself) between the start and the moment it has handled every packet it will handle (its ESP
counter stops moving), divided by the packets it handled: ``us/pkt``.  One core then handles
``1e6 / us`` packets per second: ``pkt/s`` and ``Mbit/s`` (inner octets) are per core, not
wall-clock rates.  The initiator runs on the other core; UDP packets the kernel drops when the
responder falls behind cost it nothing and are not counted (``lost``).

``aead us`` is the cryptography of the same packet (decrypt, and for echo encrypt the reply)
with ``cryptography`` alone in this process, the figure of ``bench/esp.py``; ``ratio`` is the
responder's time over it.  ``wire pkt/s`` is the rate the responder kept up with in wall-clock
time (bounded by whichever side is slower).  The issue's goal is 1 Gbit/s of 1400-octet packets
per core over TCP.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from ipaddress import ip_address

import trio
from esp import IKE, PSK, aead_only, per_packet  # bench/ is sys.path[0]

from responder.client import Client, establish
from responder.core.config import (
    ChildConfig,
    Config,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    PeerConfig,
    TrafficSelectorPolicy,
)
from responder.core.data_plane import IPV4_IN_ESP
from responder.core.echo import echo_request
from responder.core.initiator import ChildRequest, InitiatorSettings
from responder.core.path import Transport
from responder.core.selectors import to_selector
from responder.core.tcp_framing import STREAM_PREFIX, frame_esp
from responder.server.serve import ServerInfo, serve
from responder.server.settings import Listener, ServerSettings

INITIATOR_ID = "@initiator.example"
INNER_SOURCE, INNER_DESTINATION = ip_address("10.0.0.2"), ip_address("192.0.2.10")
CHUNK = 1 << 18  #: octets per TCP send of the initiator
QUIET = 0.3  #: seconds without a new ESP packet after which the responder is done
UDP_BURST = 128  #: datagrams the initiator sends between two looks at the responder's progress
UDP_WINDOW = 1024  #: most datagrams sent and not yet handled (the responder's buffer holds more)


# --------------------------------------------------------------------------- the responder


def responder_config(backend: str, esp: str) -> Config:
    any4 = TrafficSelectorPolicy.any(4)
    child = ChildConfig(
        "bench", local_ts=(any4,), remote_ts=(any4,), esp_proposals=(EspProposal.parse(esp),), backend=backend
    )
    peer = PeerConfig("bench", IdPattern.parse(INITIATOR_ID), PSK, children=(child,))
    return Config(ike_proposals=(IkeProposal.parse(IKE),), peers=(peer,))


async def serve_child(backend: str, esp: str) -> None:
    """``--serve``: the responder, answering ``stats`` lines on stdin with a JSON line."""
    settings = ServerSettings(
        config=responder_config(backend, esp),
        listeners=(Listener(Transport.TCP, "127.0.0.1", 0), Listener(Transport.UDP, "127.0.0.1", 0)),
        log_level="warning",
        slow_reader_timeout=60.0,
    )
    delivered = 0

    async def read_inner(info: ServerInfo) -> None:
        nonlocal delivered
        channel = info.engine.inner_packets
        async for _ in channel:  # each receive() yields to the scheduler: take the rest without
            delivered += 1
            while True:
                try:
                    channel.receive_nowait()
                except trio.WouldBlock:
                    break
                delivered += 1

    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(serve, settings)
        nursery.start_soon(read_inner, info)
        ports = {listener.kind.value: listener.port for listener in info.listeners}
        print(json.dumps(ports), flush=True)
        stdin = trio.wrap_file(sys.stdin)
        while await stdin.readline():
            stats = info.engine.stats
            print(
                json.dumps(
                    {
                        "cpu": time.process_time(),
                        "esp": stats.esp_packets,
                        "dropped": stats.esp_dropped,
                        "echoed": stats.echoed,
                        "delivered": delivered,
                    }
                ),
                flush=True,
            )
        nursery.cancel_scope.cancel()


class Child:
    """The responder child process and its stats line protocol."""

    def __init__(self, backend: str, esp: str) -> None:
        profile = os.environ.get("ESP_WIRE_PROFILE")  # a cProfile output file for the responder
        command = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []), __file__]
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
            [*command, "--serve", backend, "--suite", esp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {backend} responder did not start")
        self.ports: dict[str, int] = json.loads(line)
        self.lock = threading.Lock()

    def stats(self) -> dict[str, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self.lock:  # asked from two threads: the pacing of UDP and the watch for the end
            self.process.stdin.write("stats\n")
            self.process.stdin.flush()
            result: dict[str, float] = json.loads(self.process.stdout.readline())
        return result

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --------------------------------------------------------------------------- the initiator


def initiator_settings(esp: str) -> InitiatorSettings:
    selectors = (to_selector(TrafficSelectorPolicy.any(4)),)
    return InitiatorSettings(
        (IkeProposal.parse(IKE),),
        Identity.parse(INITIATOR_ID),
        PSK,
        child=ChildRequest((EspProposal.parse(esp),), selectors, selectors),
    )


def sealed(client: Client, size: int, count: int) -> list[bytes]:
    """``count`` ESP packets of the client's Child SA, each an ICMP echo request of ``size`` octets."""
    [child] = client.child_sas
    esp = client.endpoint.data_plane.sa(child.inbound_spi)
    assert esp is not None
    data = bytes(max(0, size - 28))  # IPv4 and ICMP headers: 28 octets
    iv_size = esp.outbound.iv_size if esp.outbound.needs_random_iv else 0
    return [
        esp.outbound.seal(
            echo_request(INNER_SOURCE, INNER_DESTINATION, identifier=1, sequence=n & 0xFFFF, data=data),
            IPV4_IN_ESP,
            os.urandom(iv_size) if iv_size else None,
        )
        for n in range(count)
    ]


async def blast_tcp(
    port: int, packets: list[bytes], replies: list[int], handled: Callable[[], Awaitable[float]]
) -> None:
    """A new RFC 9329 connection: the prefix, then every packet framed; replies counted in octets."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    frames = STREAM_PREFIX + b"".join(frame_esp(packet) for packet in packets)

    async def read() -> None:
        while data := await stream.receive_some(CHUNK):
            replies[0] += len(data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        for start in range(0, len(frames), CHUNK):
            await stream.send_all(frames[start : start + CHUNK])
        await done.wait()
        nursery.cancel_scope.cancel()
    await stream.aclose()


async def blast_udp(
    port: int, packets: list[bytes], replies: list[int], handled: Callable[[], Awaitable[float]]
) -> None:
    """A new UDP socket: every packet as ESP in UDP (RFC 3948 §2.1), paced by what the responder
    has ``handled`` so that its socket buffer never overflows; replies counted in octets."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    await sock.connect(("127.0.0.1", port))
    raw = socket.socket(fileno=os.dup(sock.fileno()))
    raw.setblocking(False)

    async def read() -> None:
        while True:
            replies[0] += len(await sock.recv(65536))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        for start in range(0, len(packets), UDP_BURST):
            while start - await handled() > UDP_WINDOW:  # never more than the socket buffer holds
                await trio.sleep(0.001)
            for packet in packets[start : start + UDP_BURST]:
                while True:
                    try:
                        raw.send(packet)
                        break
                    except BlockingIOError:
                        await trio.lowlevel.wait_writable(raw)
        await done.wait()
        nursery.cancel_scope.cancel()
    raw.close()
    sock.close()


done = trio.Event()  # replaced per measurement; set when the responder has gone quiet


async def measure(
    child: Child, transport: Transport, client: Client, size: int, count: int
) -> dict[str, float]:
    global done
    packets = sealed(client, size, count)
    reply_size = len(packets[0])
    done = trio.Event()
    replies = [0]
    before = child.stats()
    start = time.perf_counter()
    blast = blast_tcp if transport is Transport.TCP else blast_udp
    port = child.ports[transport.value]

    async def handled() -> float:
        return (await trio.to_thread.run_sync(child.stats))["esp"] - before["esp"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blast, port, packets, replies, handled)
        last, seen_at = before["esp"], time.perf_counter()
        while True:
            await trio.sleep(0.05)
            now = await trio.to_thread.run_sync(child.stats)
            if now["esp"] != last:
                last, seen_at, after = now["esp"], time.perf_counter(), now
            elif time.perf_counter() - seen_at > QUIET or now["esp"] - before["esp"] >= count:
                after = now
                break
        wall = seen_at - start
        done.set()
    handled = after["esp"] - before["esp"]
    return {
        "handled": handled,
        "cpu": (after["cpu"] - before["cpu"]) / max(handled, 1),
        "wall_rate": handled / wall if wall > 0 else 0.0,
        "lost": count - handled,
        "answered": (after["echoed"] - before["echoed"]) + (after["delivered"] - before["delivered"]),
        "replies": replies[0] / (reply_size + (2 if transport is Transport.TCP else 0)),
    }


async def run(args: argparse.Namespace) -> int:
    sizes = [int(size) for size in args.sizes.split(",")]
    transports = [Transport(name) for name in args.transports.split(",")]
    print(f"ESP through the responder process, {args.suite}, {args.packets} packets each; per core")
    heading = (
        "transport",
        "backend",
        "size",
        "us/pkt",
        "pkt/s",
        "Mbit/s",
        "aead us",
        "ratio",
        "wire pkt/s",
        "lost",
    )
    print("{:9} {:7} {:>5} {:>8} {:>9} {:>8} {:>8} {:>6} {:>10} {:>6}".format(*heading))
    failed = 0
    for backend in args.backends.split(","):
        child = Child(backend, args.suite)
        try:
            for transport in transports:
                client = await establish(
                    initiator_settings(args.suite),
                    Config(),
                    transport,
                    "127.0.0.1",
                    child.ports[transport.value],
                )
                async with client:
                    if not client.established:
                        print(f"FAILED {transport.value} {backend}: {client.reason}")
                        failed += 1
                        continue
                    for size in sizes:
                        figures = await measure(child, transport, client, size, args.packets)
                        crypto = aead_only(args.suite, size, backend == "echo")
                        aead = per_packet(lambda: [b""] * 256, crypto, 0.3)
                        us = figures["cpu"] * 1e6
                        if figures["answered"] < figures["handled"] or figures["handled"] == 0:
                            print(f"FAILED {transport.value} {backend} {size}: {figures}")
                            failed += 1
                        print(
                            f"{transport.value:9} {backend:7} {size:5d} {us:8.2f} {1e6 / us:9.0f} "
                            f"{size * 8 / us:8.1f} {aead * 1e6:8.2f} {us / (aead * 1e6):5.1f}x "
                            f"{figures['wall_rate']:10.0f} {int(figures['lost']):6d}"
                        )
        finally:
            child.stop()
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transports", default="tcp,udp")
    parser.add_argument("--backends", default="echo,api")
    parser.add_argument("--sizes", default="1400,64", help="inner packet sizes in octets")
    parser.add_argument("--packets", type=int, default=50000, help="packets per measurement")
    parser.add_argument("--suite", default="aes256gcm16", help="the ESP proposal")
    parser.add_argument("--serve", metavar="BACKEND", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve_child, args.serve, args.suite)
        return
    sys.exit(trio.run(run, args))


if __name__ == "__main__":
    main()
