"""Pings through the tunnel over real sockets (issue 12): the project's client sends ICMP echo
requests as ESP on its Child SA over RFC 9329 TCP, TLS and UDP (RFC 3948) to the in-process
responder, whose echo backend answers them through the same Child SA; and the API backend."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
import trio

from responder.core.config import ChildConfig, Config, Secret
from responder.core.data_plane import IPV4_IN_ESP
from responder.core.echo import EchoDropped, answer, echo_request
from responder.core.path import Transport
from responder.core.tcp_framing import STREAM_PREFIX, frame_esp
from responder.testing import LAB_PSK, open_lab

CLIENT, SERVICE = ip_address("10.0.0.2"), ip_address("192.0.2.99")


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS, Transport.UDP])
async def test_pings_through_the_tunnel_are_answered(transport: Transport) -> None:
    async with open_lab() as lab, await lab.client(transport) as client:
        assert client.established, client.reason
        assert await client.ping(ip_address("192.0.2.10"), count=3) == 3, client.reason
        stats = lab.engine.stats
        assert stats.echoed == 3 and stats.esp_packets == 3 and stats.esp_dropped == 0
        assert await client.liveness_check()  # IKE and ESP share the connection


async def test_the_api_backend_hands_packets_to_the_program() -> None:
    """A child with ``backend = "api"``: the program reads each decrypted packet from
    ``Engine.inner_packets`` and answers with ``Engine.send_inner``."""
    config = Config(any_id_psk=Secret.parse(LAB_PSK), lab_children=(ChildConfig("app", backend="api"),))
    async with open_lab(config=config, transports=[Transport.TCP]) as lab, await lab.client() as client:
        assert client.established
        request = echo_request(CLIENT, SERVICE, identifier=5, sequence=1)
        [child] = client.sa.children
        assert client.endpoint.send_inner(
            client.sa.local_spi, child, request, IPV4_IN_ESP, trio.current_time()
        )
        await client.process(0.2)  # sends it
        inner = await lab.engine.inner_packets.receive()
        assert inner.payload == request and lab.engine.stats.echoed == 0  # nobody else answered
        assert isinstance(answer(request, ()), EchoDropped)
        made = echo_request(SERVICE, CLIENT, identifier=5, sequence=1, reply=True)
        assert lab.engine.send_inner(inner.local_spi, inner.child, made, IPV4_IN_ESP)
        await client.process(0.3)
        assert client.inner == [made]


async def test_a_program_behind_on_the_api_backend_slows_the_reader_not_drops() -> None:
    """Back-pressure: a burst of ESP far larger than the engine's queue of decrypted packets (1,024),
    written at once and read by a program that takes one packet per turn of the scheduler, loses
    nothing: the stream's reader lets the program catch up before it hands over more."""
    config = Config(any_id_psk=Secret.parse(LAB_PSK), lab_children=(ChildConfig("app", backend="api"),))
    async with open_lab(config=config, transports=[Transport.TCP]) as lab, await lab.client() as client:
        [child] = client.child_sas
        esp = client.endpoint.data_plane.sa(child.inbound_spi)
        assert esp is not None
        count = 3000
        burst = b"".join(
            frame_esp(esp.outbound.seal(echo_request(CLIENT, SERVICE, identifier=5, sequence=n), IPV4_IN_ESP))
            for n in range(count)
        )
        received = 0

        async def program() -> None:
            nonlocal received
            async for _ in lab.engine.inner_packets:  # one packet per scheduler turn
                received += 1

        host, port = lab.address(Transport.TCP)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(program)
            stream = await trio.open_tcp_stream(host, port)
            await stream.send_all(STREAM_PREFIX + burst)  # ESP on a new connection moves the SA (A36)
            with trio.move_on_after(20):
                while received < count:
                    await trio.sleep(0.01)
            await stream.aclose()
            nursery.cancel_scope.cancel()
        assert received == count and lab.engine.stats.inner_dropped == 0
