"""The pytest plugin (issue 13): ``ikev2_lab`` and ``ikev2_lab_factory`` in a user's own project.

Each test writes a small project with :mod:`pytester` and runs pytest on it in
a subprocess, once with ``trio_mode = true`` and once with tests marked
``@pytest.mark.trio``: the plugin comes from the ``pytest11`` entry point
of the installed package, as it would for a user.  ``Lab`` itself is
exercised directly in the last test.
"""

from __future__ import annotations

import attrs
import pytest
import trustme

from responder.core.events import IkeSaEstablished, RequestAnswered
from responder.core.path import Transport
from responder.testing import CLIENT_CERT_ID, CLIENT_ID, SERVER_NAME, open_lab, trustme_credential

pytest_plugins = ("pytester",)

USER_TESTS = """
import pytest
from responder.core.events import IkeSaEstablished
from responder.core.path import Transport
from responder.core.config import Config, PeerConfig, Secret
from responder.core.identity import IdPattern, Identity

{mark}
async def test_each_transport(ikev2_lab):
    for transport in (Transport.TCP, Transport.TLS, Transport.UDP):
        async with await ikev2_lab.client(transport) as client:
            assert client.established, client.reason
            assert await client.liveness_check()
    established = ikev2_lab.recorder.of(IkeSaEstablished)
    assert len(established) == 3 and established[0].remote_id == "client.test"

{mark}
async def test_a_lab_with_arguments(ikev2_lab_factory):
    peer = PeerConfig("bob", IdPattern.parse("bob@example.org"), Secret.parse("bob's key"))
    options = dict(config=Config(peers=(peer,)), psk="bob's key", transports=[Transport.UDP])
    async with ikev2_lab_factory(**options) as lab:
        settings = lab.initiator_settings(identity="bob@example.org")
        async with await lab.client(Transport.UDP, settings) as client:
            assert client.established
        with pytest.raises(LookupError):
            lab.address(Transport.TCP)
"""


@pytest.mark.parametrize("trio_mode", [True, False], ids=["trio_mode", "marked"])
def test_the_fixtures_in_a_users_project(pytester: pytest.Pytester, trio_mode: bool) -> None:
    pytester.makeini(f"[pytest]\ntrio_mode = {'true' if trio_mode else 'false'}\n")
    pytester.makepyfile(test_user=USER_TESTS.format(mark="" if trio_mode else "@pytest.mark.trio"))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)


async def test_lab_client_events_and_context() -> None:
    async with open_lab(transports=[Transport.TCP, Transport.TLS]) as lab:
        assert lab.address(Transport.TLS)[0] == "127.0.0.1"
        context = lab.ssl_context()  # trusts the lab's CA for SERVER_NAME
        assert context.verify_mode.name == "CERT_REQUIRED" and SERVER_NAME == "responder.test"
        async with await lab.client(Transport.TLS) as client:
            assert client.established and len(client.child_sas) == 1
            event = await lab.recorder.wait_for(IkeSaEstablished, lambda e: e.spi_i == client.spi_i, 5)
            assert event.remote_id == CLIENT_ID.lstrip("@")  # type: ignore[attr-defined]
        async with await lab.client(Transport.TCP, lab.initiator_settings(childless=True)) as client:
            assert client.established and client.child_sas == []  # RFC 6023, allowed by default
            assert await client.delete()
        assert lab.engine.stats.ike_sas == 1  # the TLS client closed its connection without a Delete


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS, Transport.UDP])
async def test_lab_authenticates_certificates_from_its_ca(transport: Transport) -> None:
    """Issue 10 on real sockets: a trustme client certificate, the lab's trustme certificate
    for IKE; both ends check the other's chain, signature and ID binding (RFC 4945 §3.1)."""
    async with open_lab() as lab:
        settings = lab.certificate_settings()
        async with await lab.client(transport, settings) as client:
            assert client.established, client.reason
            assert await client.liveness_check()
        [established] = lab.recorder.of(IkeSaEstablished)
        assert isinstance(established, IkeSaEstablished)
        assert established.remote_id == CLIENT_CERT_ID
        stranger = trustme.CA().issue_cert(CLIENT_CERT_ID)  # another CA: refused with the reason
        refused = attrs.evolve(settings, credential=trustme_credential(stranger))
        async with await lab.client(transport, refused) as client:
            assert not client.established
            assert "AUTHENTICATION_FAILED" in client.reason
        answered = [e for e in lab.recorder.of(RequestAnswered) if "AUTHENTICATION_FAILED" in e.result]
        assert answered and "unknown CA" in answered[0].result
