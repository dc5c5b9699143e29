"""Self-test of the strongSwan fixtures: two charons over UDP, a ping through the tunnel.

kernel-libipsec carries ESP in userspace (TUN device ``ipsec0``) and fakes a NAT,
so IKE and ESP move to UDP 4500 after IKE_SA_INIT; the capture proves the ping
went through ESP in UDP and not around the tunnel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from tests.interop.conftest import TsharkHelper
from tests.interop.lab import Lab
from tests.interop.pcap import read_packets
from tests.interop.strongswan import StrongSwan, SwanChild, SwanConn

pytestmark = pytest.mark.interop

INI, RESP = "192.0.2.1", "192.0.2.2"
INNER_I, INNER_R = "10.250.1.1", "10.250.2.1"


def test_strongswan_udp_tunnel_ping(
    netns: Lab, strongswan: Callable[..., StrongSwan], tshark: TsharkHelper
) -> None:
    ini_ns, resp_ns = netns.pair(f"{INI}/24", f"{RESP}/24", hints=("ini", "resp"))
    ini_ns.add_local_addresses([f"{INNER_I}/32"])
    resp_ns.add_local_addresses([f"{INNER_R}/32"])
    capture = tshark.capture(ini_ns, "veth0", "udp")

    resp = strongswan(resp_ns, "resp")
    resp.configure(
        SwanConn(
            local_addrs=RESP,
            remote_addrs=INI,
            local_id="responder.lab",
            remote_id="initiator.lab",
            children=[SwanChild(local_ts=f"{INNER_R}/32", remote_ts=f"{INNER_I}/32")],
        )
    )
    ini = strongswan(ini_ns, "ini")
    ini.configure(
        SwanConn(
            local_addrs=INI,
            remote_addrs=RESP,
            local_id="initiator.lab",
            remote_id="responder.lab",
            children=[SwanChild(local_ts=f"{INNER_I}/32", remote_ts=f"{INNER_R}/32")],
        )
    )
    resp.start()
    ini.start()

    log = ini.initiate(child="lab")
    assert any("CHILD_SA lab{1} established" in line for line in log), log
    assert resp.events is not None
    resp.events.wait_for("ike-updown", lambda e: e.get("up") == "yes", timeout=10)

    for side, role in ((ini, "yes"), (resp, None)):
        sa = side.list_sas()["lab"]
        assert sa["state"] == "ESTABLISHED"
        assert sa.get("initiator") == role
        (child,) = sa["child-sas"].values()
        assert child["state"] == "INSTALLED" and child["encap"] == "yes"

    ping = ini_ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", INNER_I, INNER_R, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    (child,) = ini.list_sas()["lab"]["child-sas"].values()
    assert int(child["packets-out"]) >= 3 and int(child["packets-in"]) >= 3

    packets = list(read_packets(capture.stop()))
    esp_in_udp = [
        p
        for p in packets
        if p.proto == 17 and p.dport == 4500 and len(p.payload) > 8 and p.payload[:4] != b"\0\0\0\0"
    ]
    assert len(esp_in_udp) >= 6  # 3 echo requests + 3 replies, all ESP in UDP 4500
    assert not [p for p in packets if p.proto == 1], "ICMP leaked outside the tunnel"


def test_strongswan_certificate_authentication(
    netns: Lab, strongswan: Callable[..., StrongSwan], tmp_path: Path
) -> None:
    ini_ns, resp_ns = netns.pair(f"{INI}/24", f"{RESP}/24", hints=("ini", "resp"))
    ini_ns.add_local_addresses([f"{INNER_I}/32"])
    resp_ns.add_local_addresses([f"{INNER_R}/32"])
    ca = trustme.CA()
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    files = {}
    for name in ("initiator.lab", "responder.lab"):
        issued = ca.issue_cert(name)
        cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        files[name] = (cert, key)

    sides = []
    for ns, local, remote, me, peer, local_ts, remote_ts in (
        (resp_ns, RESP, INI, "responder.lab", "initiator.lab", INNER_R, INNER_I),
        (ini_ns, INI, RESP, "initiator.lab", "responder.lab", INNER_I, INNER_R),
    ):
        swan = strongswan(ns, me.split(".")[0])
        swan.configure(
            SwanConn(
                local_addrs=local,
                remote_addrs=remote,
                local_id=me,
                remote_id=peer,
                auth="pubkey",
                psk=None,
                local_cert=files[me][0],
                local_key=files[me][1],
                ca_certs=[ca_pem],
                children=[SwanChild(local_ts=f"{local_ts}/32", remote_ts=f"{remote_ts}/32")],
            )
        )
        swan.start()
        sides.append(swan)
    resp, ini = sides

    log = ini.initiate(child="lab")
    assert [line for line in log if line.startswith("authentication of 'responder.lab' with ECDSA")], log
    assert any("CHILD_SA lab{1} established" in line for line in log), log
    assert not [line for line in log if "pre-shared key" in line]
    assert resp.list_sas()["lab"]["remote-id"] == "initiator.lab"
