"""IKE fragmentation (RFC 7383) between ``responder.client`` and the real server on 127.0.0.1.

Rows E1-E5 of responder-requirements.md section E and RFC 9329 row A57, over
real sockets: with a 576-octet ``fragment_size`` on both ends and an
IKE_AUTH of some 2,100 octets (60 traffic selectors each way), the request
and the response both travel as fragments over UDP and are reassembled at
the other end; over TCP and TLS fragmentation is negotiated but nothing is
fragmented.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from responder.client import establish
from responder.core.config import Config, EspProposal, Limits, TrafficSelectorPolicy
from responder.core.initiator import ChildRequest
from responder.core.path import Transport
from responder.core.selectors import to_selector
from tests.fakes.pair import initiator_settings
from tests.net.test_client import HOST, NAME, SUITE, ca, port_of, running_server

__all__ = ["ca"]  # the fixture, shared with test_client.py

SMALL = Limits(fragment_size=576)
SELECTORS = tuple(to_selector(TrafficSelectorPolicy.parse(f"10.{i}.0.0/16")) for i in range(60))
BIG_CHILD = ChildRequest((EspProposal.parse("aes256gcm16"),), SELECTORS, SELECTORS)


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP, Transport.TLS])
async def test_large_ike_auth_is_fragmented_over_udp_only_rows_e2_e3_a57(
    transport: Transport, ca: trustme.CA, tmp_path: Path
) -> None:
    """Over UDP both ends send IKE_AUTH as fragments and reassemble the other's (the fragments of
    each message counted by the receiver's reassembler); over TCP and TLS fragmentation is
    negotiated, and no fragment is ever sent or reassembled (row A57)."""
    async with running_server(ca, tmp_path, limits=SMALL) as info:
        options: dict[str, Any] = {}
        if transport is Transport.TLS:
            context = ssl.create_default_context()
            ca.configure_trust(context)
            options = {"ssl_context": context, "server_hostname": NAME}
        settings = initiator_settings(SUITE, BIG_CHILD, fragmentation=True)
        with trio.fail_after(20):
            client = await establish(
                settings, Config(limits=SMALL), transport, HOST, port_of(info, transport), **options
            )
        async with client:
            assert client.established, client.reason
            responder_sa = info.engine.sa(client.spi_r)
            assert responder_sa is not None
            ours, theirs = client.sa.layer.reassembly, responder_sa.layer.reassembly
            assert ours is not None and theirs is not None  # negotiated on every transport
            expected = 0 if transport.is_stream else 1
            assert (ours.reassembled, theirs.reassembled) == (expected, expected)
            assert (ours.discarded, theirs.discarded) == (0, 0)
            assert len(client.child_sas) == 1
            assert await client.liveness_check()
