"""The outer IP header of ESP over real UDP sockets: the ECN field of what arrives reaches the inner
packet as RFC 6040 §4.2 says (row A62's rule, here over UDP), and what we send carries the DSCP the
child's policy gives (RFC 4301 §5.1.2.1); over TCP nothing is marked per packet (rows A47, A60)."""

from __future__ import annotations

import socket as stdlib_socket
from ipaddress import ip_address

import pytest
import trio

from responder.core.config import ChildConfig, Config, OuterPolicy, Secret
from responder.core.data_plane import IPV4_IN_ESP
from responder.core.echo import Ecn, echo_request, packet_ecn, read_packet
from responder.core.path import Transport
from responder.testing import LAB_PSK, open_lab

CLIENT, SERVICE, OURS = ip_address("10.0.0.2"), ip_address("192.0.2.99"), ip_address("192.0.2.10")
EF = 46 << 2  # DSCP Expedited Forwarding in the traffic class octet


async def _udp_socket(tos: int) -> trio.socket.SocketType:
    """A socket that sends with this outer TOS octet and reports the TOS of what it receives."""
    sock = trio.socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    sock.setsockopt(stdlib_socket.IPPROTO_IP, stdlib_socket.IP_TOS, tos)
    sock.setsockopt(stdlib_socket.IPPROTO_IP, stdlib_socket.IP_RECVTOS, 1)
    await sock.bind(("127.0.0.1", 0))
    return sock


async def test_outer_ce_reaches_the_inner_packet_or_drops_it() -> None:
    """RFC 6040 §4.2 over UDP: ESP sent with CE in the outer header reaches the API backend with CE
    in an ECT inner packet (its IPv4 checksum still valid); a Not-ECT inner packet is dropped."""
    config = Config(any_id_psk=Secret.parse(LAB_PSK), lab_children=(ChildConfig("app", backend="api"),))
    async with (
        open_lab(config=config, transports=[Transport.UDP]) as lab,
        await lab.client(Transport.UDP) as client,
    ):
        assert client.established, client.reason
        [child] = client.sa.children
        ect = echo_request(CLIENT, SERVICE, identifier=1, sequence=1, traffic_class=EF | Ecn.ECT_0)
        plain = echo_request(CLIENT, SERVICE, identifier=1, sequence=2)
        sealed = []
        for inner in (ect, plain):
            assert client.endpoint.send_inner(client.sa.local_spi, child, inner, IPV4_IN_ESP, 0.0)
            [esp] = client.endpoint.messages_to_send()
            sealed.append(esp.data)
        with await _udp_socket(Ecn.CE) as sock:  # the congested router's mark
            with trio.fail_after(5):
                await sock.sendto(sealed[0], lab.address(Transport.UDP))
                inner = await lab.engine.inner_packets.receive()
            assert packet_ecn(inner.payload) is Ecn.CE and inner.payload[1] >> 2 == 46
            parsed = read_packet(inner.payload)  # checksums verified: it would be EchoDropped
            assert getattr(parsed, "traffic_class", None) == EF | Ecn.CE
            dropped = lab.engine.stats.esp_dropped
            await sock.sendto(sealed[1], lab.address(Transport.UDP))
            with trio.fail_after(5):
                while lab.engine.stats.esp_dropped == dropped:
                    await trio.sleep(0.01)
            assert lab.engine.stats.esp_dropped == dropped + 1  # the CE mark cannot be carried
            await trio.sleep(0.05)
            with pytest.raises(trio.WouldBlock):
                lab.engine.inner_packets.receive_nowait()


async def test_the_outer_dscp_follows_the_child_policy_over_udp() -> None:
    """RFC 4301 §5.1.2.1: with ``dscp = "copy"`` (the default) the echo reply's outer header carries
    the inner reply's DSCP (EF, copied from the request); with a fixed DSCP, that one."""
    for outer, expected in ((OuterPolicy(), EF), (OuterPolicy(10), 10 << 2)):
        child = ChildConfig("net", outer=outer)
        config = Config(any_id_psk=Secret.parse(LAB_PSK), lab_children=(child,))
        async with (
            open_lab(config=config, transports=[Transport.UDP]) as lab,
            await lab.client(Transport.UDP) as client,
        ):
            assert client.established, client.reason
            [child_spi] = client.sa.children
            request = echo_request(CLIENT, OURS, identifier=1, sequence=1, traffic_class=EF)
            assert client.endpoint.send_inner(client.sa.local_spi, child_spi, request, IPV4_IN_ESP, 0.0)
            [esp] = client.endpoint.messages_to_send()
            with await _udp_socket(0) as sock:
                await sock.sendto(esp.data, lab.address(Transport.UDP))
                with trio.fail_after(5):
                    data, ancdata, _flags, _ = await sock.recvmsg(65535, stdlib_socket.CMSG_SPACE(4))
                assert data[:4] == client.sa.children[child_spi].params.inbound_spi
                [tos] = [d[0] for level, kind, d in ancdata if kind == stdlib_socket.IP_TOS]
                assert tos == expected, outer
