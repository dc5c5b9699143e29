"""strongSwan pings the responder's host through the TUN backend (issue 12).

Topology: as in test_responder_strongswan.py, charon in one namespace on
192.0.2.1 with its inner address 10.250.1.1 on lo (kernel-libipsec for ESP), the
CLI-started responder in the other on 192.0.2.2, here with ``--config`` naming a
lab child whose ``backend = "tun"`` and a ``[tun]`` device with the address
10.99.0.1/24.  The responder's host has a further address, 10.250.2.1 on its
lo.  charon's child asks for 10.250.1.1/32 === 10.250.2.1/32 and 10.99.0.1/32,
so ping from its inner address reaches both addresses of the responder's
host: the responder opens the ESP, writes the packet into its TUN device, the
Linux stack of its namespace answers, the answer leaves through the device
(the route to 10.250.1.1 the responder added for the Child SA's remote
selector), and the responder seals it into the Child SA its selectors name.
The counters (``ikev2-responder stats``) and charon's own show the same packets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from responder.control_client import request
from tests.interop.lab import Lab, wait_until
from tests.interop.responder_proc import Responder
from tests.interop.strongswan import StrongSwan, SwanChild, SwanConn

INI, RESP = "192.0.2.1", "192.0.2.2"
INNER_I = "10.250.1.1"  #: charon's inner address (on its lo)
HOST_R = "10.250.2.1"  #: an address of the responder's host (on its lo)
TUN_R = "10.99.0.1"  #: the responder's TUN device's own address
PSK = "interop-test-psk for the TUN backend"
DEVICE = "ikev2r0"

CONFIG = f"""
[tun]
name = "{DEVICE}"
addresses = ["{TUN_R}/24"]
mtu = 1400

[lab]
any_id_psk = "{PSK}"

[lab.children.lab]
backend = "tun"
local_ts = ["{HOST_R}/32", "{TUN_R}/32"]
remote_ts = ["10.250.1.0/24"]
"""


@pytest.mark.interop
@pytest.mark.hard_timeout(90)
def test_strongswan_pings_the_responders_host_through_the_tun_backend(
    netns: Lab,
    strongswan: Callable[..., StrongSwan],
    responder: Callable[..., Responder],
    tmp_path: Path,
) -> None:
    ini_ns, resp_ns = netns.pair(f"{INI}/24", f"{RESP}/24", hints=("charon", "resp"))
    ini_ns.add_local_addresses([f"{INNER_I}/32"])
    resp_ns.add_local_addresses([f"{HOST_R}/32"])
    config, control = tmp_path / "tun.toml", tmp_path / "control.sock"
    config.write_text(CONFIG)
    resp = responder(
        resp_ns,
        udp=[f"{RESP}:500", f"{RESP}:4500"],
        psk=PSK,
        local_id="@responder.lab",
        extra_args=["--config", str(config), "--control", str(control)],
    )
    assert f"{DEVICE}:" in resp_ns.run("ip", "-o", "link", "show", DEVICE).stdout
    charon = strongswan(ini_ns, "charon")
    charon.configure(
        SwanConn(
            local_addrs=INI,
            remote_addrs=RESP,
            local_id="initiator.lab",
            remote_id="responder.lab",
            psk=PSK,
            proposals="aes256gcm16-prfsha256-x25519",
            children=[
                SwanChild(
                    esp_proposals="aes256gcm16",
                    local_ts=f"{INNER_I}/32",
                    remote_ts=f"{HOST_R}/32,{TUN_R}/32",
                )
            ],
        )
    )
    charon.start()
    log = charon.initiate(child="lab")
    assert any("CHILD_SA lab{1} established" in line for line in log), log
    # The Child SA's remote selector became a route into the device.
    wait_until(
        lambda: INNER_I in resp_ns.run("ip", "route", "show", "dev", DEVICE).stdout,
        10,
        f"the route to {INNER_I} into {DEVICE}",
    )

    for target in (HOST_R, TUN_R):
        ping = ini_ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", INNER_I, target, check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert " 0% packet loss" in ping.stdout, ping.stdout
        assert f"from {target}" in ping.stdout  # the host's own answers, through the tunnel

    child = next(iter(charon.list_sas()["lab"]["child-sas"].values()))
    assert int(child["packets-in"]) >= 6 and int(child["packets-out"]) >= 6, child
    engine = request(control, "stats")["engine"]
    tun = engine["tun"]
    assert tun["to_device_packets"] >= 6 and tun["out_sealed"] >= 6, tun
    assert tun["to_device_packets"] == tun["out_sealed"], tun  # each request answered once
    assert tun.get("in_dropped_not_selected", 0) == 0 and engine["echoed"] == 0, engine
    assert not resp.lines(r"Traceback|internal error")

    # A clean shutdown removes the device (and with it every route into it).
    assert resp.stop() == 0
    assert resp_ns.run("ip", "link", "show", DEVICE, check=False).returncode != 0
    assert resp.lines(rf"TUN device {DEVICE} removed")
