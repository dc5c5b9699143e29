"""strongSwan (charon) against the CLI-started responder over UDP 500/4500.

Topology: the initiator namespace holds charon on 192.0.2.1 (inner address
10.250.1.1 on lo, kernel-libipsec for ESP); the responder namespace holds
``python -m responder --udp 192.0.2.2:500 --udp 192.0.2.2:4500 --id @responder.lab
--keylog DIR`` with the lab PSK the CLI generated and printed, which the test
reads from its output and gives to charon.

kernel-libipsec fakes a NAT, so charon floats to UDP 4500 right after
IKE_SA_INIT: IKE_AUTH and everything after it reach the responder with the
non-ESP marker (RFC 3948).  The responder accepts the Child SA (lab mode: any
traffic selectors), so ``list_sas`` shows it installed, and its echo backend
answers pings through it (the last test).  charon's
``dpd_delay = 1s`` makes it send liveness checks, which the responder answers.

:func:`run_strongswan` is shared with test_responder_tshark.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.interop.conftest import Capture, TsharkHelper
from tests.interop.lab import Lab, Netns, wait_until
from tests.interop.responder_proc import Responder
from tests.interop.strongswan import StrongSwan, SwanChild, SwanConn
from tests.interop.tshark import find_all

INI, RESP = "192.0.2.1", "192.0.2.2"
INNER_I, INNER_R = "10.250.1.1", "10.250.2.1"


@dataclass(frozen=True)
class Suite:
    """Proposals charon offers (strongSwan syntax); tshark 4.0 decrypts AES-GCM and AES-CBC only."""

    name: str
    ike: str
    esp: str


SUITES = {
    "gcm": Suite("gcm", "aes256gcm16-prfsha256-x25519", "aes256gcm16"),
    "cbc": Suite("cbc", "aes256-sha256-ecp256", "aes256-sha256"),
}


@dataclass
class StrongSwanRun:
    """What :func:`run_strongswan` leaves behind: both running, the capture still on."""

    suite: Suite
    charon: StrongSwan
    charon_ns: Netns
    responder: Responder
    capture: Capture
    initiate_log: list[str]


def run_strongswan(
    suite: Suite,
    *,
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> StrongSwanRun:
    """charon establishes an IKE SA and a Child SA over UDP, then waits for one answered DPD."""
    ini_ns, resp_ns = netns.pair(f"{INI}/24", f"{RESP}/24", hints=("charon", "resp"))
    ini_ns.add_local_addresses([f"{INNER_I}/32"])
    capture = tshark.capture(resp_ns, "veth0", f"strongswan-{suite.name}")
    resp = responder(resp_ns, udp=[f"{RESP}:500", f"{RESP}:4500"], psk=None, local_id="@responder.lab")
    charon = strongswan(ini_ns, "charon")
    charon.configure(
        SwanConn(
            local_addrs=INI,
            remote_addrs=RESP,
            local_id="initiator.lab",
            remote_id="responder.lab",
            psk=resp.psk,  # the lab PSK the CLI generated and printed
            proposals=suite.ike,
            dpd_delay="1s",
            children=[
                SwanChild(esp_proposals=suite.esp, local_ts=f"{INNER_I}/32", remote_ts=f"{INNER_R}/32")
            ],
        )
    )
    charon.start()
    log = charon.initiate(child="lab")
    resp.wait_answered("INFORMATIONAL", "liveness check", timeout=10)
    wait_until(
        lambda: re.search(r"parsed INFORMATIONAL response \d+ \[ \]", charon.log_text()),
        10,
        "charon to receive the DPD response",
    )
    return StrongSwanRun(suite, charon, ini_ns, resp, capture, log)


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
def test_a6_strongswan_udp_child_sa_and_dpd(
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    run = run_strongswan(
        SUITES["gcm"], netns=netns, strongswan=strongswan, responder=responder, tshark=tshark
    )
    charon, resp = run.charon, run.responder
    assert any("CHILD_SA lab{1} established" in line for line in run.initiate_log), run.initiate_log
    authenticated = "authentication of 'responder.lab' with pre-shared key successful"
    assert any(authenticated in line for line in run.initiate_log)
    # RFC 6023: the responder announced childless support, and still accepted the Child SA.
    assert any("N(CHDLESS_SUP)" in line for line in run.initiate_log)

    # list_sas: the IKE SA and the Child SA, installed, floated to 4500 (RFC 9329 §2, A6:
    # the responder serves UDP 500/4500 besides TCP; RFC 3948 non-ESP marker on 4500).
    sa = charon.list_sas()["lab"]
    assert sa["state"] == "ESTABLISHED"
    assert (sa["remote-host"], sa["remote-port"], sa["local-port"]) == (RESP, "4500", "4500")
    assert sa["remote-id"] == "responder.lab" and sa["initiator"] == "yes"
    assert (sa["encr-alg"], sa["encr-keysize"], sa["dh-group"]) == ("AES_GCM_16", "256", "CURVE_25519")
    (child,) = sa["child-sas"].values()
    assert child["state"] == "INSTALLED" and child["mode"] == "TUNNEL" and child["encap"] == "yes"
    assert child["local-ts"] == [f"{INNER_I}/32"] and child["remote-ts"] == [f"{INNER_R}/32"]
    # The responder logged the same Child SA, its inbound SPI being charon's outbound one.
    (established,) = resp.lines(r"Child SA established: ESP in")
    assert f"ESP in {child['spi-out']} out {child['spi-in']} tunnel" in established
    assert f"local {INNER_R}/32 remote {INNER_I}/32" in established
    (init_line,) = resp.answered("IKE_SA_INIT")
    assert f"udp {INI}:500 " in init_line
    (auth_line,) = resp.answered("IKE_AUTH")
    assert f"udp {INI}:4500 " in auth_line and "IKE SA established with initiator.lab" in auth_line

    # DPD (RFC 7296 §2.4): charon's empty INFORMATIONAL request #2 was answered.
    charon_log = charon.log_text()
    assert "sending DPD request" in charon_log
    assert re.search(r"parsed INFORMATIONAL response 2 \[ \]", charon_log)
    assert (
        resp.answered("INFORMATIONAL", "liveness check")[0]
        .split(" SPIs ")[1]
        .startswith(f"{sa['initiator-spi']}/{sa['responder-spi']} INFORMATIONAL #2 answered: liveness check")
    )
    assert charon.list_sas()["lab"]["state"] == "ESTABLISHED"

    # The strongSwan connection the CLI printed names this responder and its PSK.
    # UDP 500 and 4500 on one address make one connection: charon starts on 500, floats to 4500.
    swanctl = resp.snippet("strongSwan swanctl.conf")
    blocks = re.findall(r"(?ms)^    (\S+) \{\n(.*?)^    \}", swanctl)
    conns = {name: body for name, body in blocks if "remote_addrs" in body}
    assert len(conns) == 1, swanctl
    (conn,) = conns.values()
    assert f"remote_addrs = {RESP}\n" in conn, swanctl
    assert "remote_port" not in conn and "local_port" not in conn, swanctl
    assert 'id = "responder.lab"' in conn, swanctl
    assert f'secret = "{resp.psk}"' in swanctl

    # A clean Delete from charon (RFC 7296 §1.4.1) closes the IKE SA on the responder.
    charon.terminate(ike="lab")
    resp.wait_answered("INFORMATIONAL", "IKE SA deleted by the peer")
    resp.wait_for("IKE SA closed: deleted by the peer")
    assert not resp.lines(r"refused with|Traceback")
    assert resp.alive()
    assert resp.stop() == 0  # SIGTERM -> clean exit


@pytest.mark.interop
@pytest.mark.hard_timeout(60)
@pytest.mark.parametrize("suite", ["gcm", "cbc"])
def test_strongswan_pings_the_echo_backend_through_the_tunnel(
    suite: str,
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tshark: TsharkHelper,
) -> None:
    """Issue 12: charon's kernel-libipsec sends ICMP echo requests from its inner address to ours
    as ESP in UDP 4500 (RFC 3948); the responder's userspace ESP (RFC 4303, AES-GCM RFC 4106 or
    AES-CBC with HMAC-SHA2-256-128 RFC 4868) opens them and its echo backend answers through the
    same Child SA, so ping succeeds; tshark decrypts both directions with our key log."""
    run = run_strongswan(
        SUITES[suite], netns=netns, strongswan=strongswan, responder=responder, tshark=tshark
    )
    ping = run.charon_ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", INNER_I, INNER_R, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert " 0% packet loss" in ping.stdout, ping.stdout
    child = next(iter(run.charon.list_sas()["lab"]["child-sas"].values()))
    assert int(child["packets-in"]) >= 3 and int(child["packets-out"]) >= 3
    assert not run.responder.lines(r"Traceback|internal error")
    pcap = run.capture.stop()
    packets = tshark.dissect(pcap, config_dir=run.responder.keylog_dir)
    types = [int(str(value)) for value in find_all(packets, "icmp.type")]
    assert types.count(8) >= 3 and types.count(0) >= 3, types  # requests and our replies, decrypted
