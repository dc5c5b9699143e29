"""Scenarios of the TUN backend that run inside a network namespace of their own.

``unshare --net python -m tests.net.tun_netns SCENARIO`` (see test_tun.py): the
namespace, the TUN device and every route and address in it end with this
process, whatever happens, so nothing leaks onto the machine.  Each scenario
prints one JSON object as its last line of output, which the test reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from ipaddress import ip_address
from typing import Any

import attrs
import trio

from responder.core.config import DEFAULT_ESP_PROPOSALS, ChildConfig, Config, Secret, TrafficSelectorPolicy
from responder.core.initiator import ChildRequest
from responder.core.path import Transport
from responder.core.selectors import to_selector
from responder.server.settings import TunSettings
from responder.testing import LAB_PSK, open_lab

DEVICE = "ikev2r0"
TUN_ADDRESS = "10.99.0.1"  #: the device's own address (prefix /24)
HOST_ADDRESS = "10.99.1.1"  #: on lo: another address of the responder's host (no dummy module here)
CLIENT_INNER = "10.250.1.1"  #: the client's inner address (its TSi)
TUN_ADDRESS6, CLIENT_INNER6 = "fd99::1", "fd00:250::1"  #: the same for IPv6
NOWHERE = "10.250.9.9"  #: routed into the device by hand, but no Child SA holds it


def ip(*arguments: str) -> str:
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True, check=True)
    return done.stdout


def routes(family: str = "-4") -> list[str]:
    done = subprocess.run(
        ["ip", family, "-o", "route", "show", "dev", DEVICE], capture_output=True, text=True
    )
    return [line.split()[0] for line in done.stdout.splitlines()] if done.returncode == 0 else []


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.05)
        return True
    return False


async def ping_through_the_tunnel() -> dict[str, Any]:
    """The project's client pings the TUN device's address and another address of the responder's
    host (on lo); the host's stack answers through the device and the Child SA."""
    ip("link", "set", "lo", "up")
    ip("addr", "add", f"{HOST_ADDRESS}/32", "dev", "lo")
    child = ChildConfig(
        "tun",
        backend="tun",
        local_ts=(TrafficSelectorPolicy.parse("10.99.0.0/16"), TrafficSelectorPolicy.parse("fd99::/64")),
        remote_ts=(
            TrafficSelectorPolicy.parse("10.250.1.0/24"),
            TrafficSelectorPolicy.parse("fd00:250::/64"),
        ),
    )
    config = Config(any_id_psk=Secret.parse(LAB_PSK), lab_children=(child,))
    tun = TunSettings(addresses=(f"{TUN_ADDRESS}/24", f"{TUN_ADDRESS6}/64"))  # type: ignore[arg-type]
    result: dict[str, Any] = {}
    async with open_lab(config=config, transports=[Transport.UDP], tun=tun) as lab:
        result["link"] = ip("-o", "link", "show", DEVICE)
        request = ChildRequest(
            DEFAULT_ESP_PROPOSALS,
            tuple(to_selector(TrafficSelectorPolicy.parse(t)) for t in (CLIENT_INNER, CLIENT_INNER6)),
            tuple(to_selector(TrafficSelectorPolicy.parse(t)) for t in ("10.99.0.0/16", "fd99::/64")),
        )
        settings = attrs.evolve(lab.initiator_settings(), child=request)
        async with await lab.client(Transport.UDP, settings) as client:
            result["established"] = client.established
            result["routes_up"] = await wait_for(lambda: f"{CLIENT_INNER}" in routes())
            result["routes"] = routes()
            result["routes6"] = routes("-6") if await wait_for(lambda: CLIENT_INNER6 in routes("-6")) else []
            source = ip_address(CLIENT_INNER)
            result["tun_replies"] = await client.ping(ip_address(TUN_ADDRESS), count=3, source=source)
            result["host_replies"] = await client.ping(ip_address(HOST_ADDRESS), count=2, source=source)
            source6 = ip_address(CLIENT_INNER6)
            result["ipv6_replies"] = await client.ping(ip_address(TUN_ADDRESS6), count=2, source=source6)
            result["reason"] = client.reason
            # the host sends into the device what no Child SA holds: dropped and counted
            ip("route", "add", f"{NOWHERE}/32", "dev", DEVICE)
            await trio.run_process(["ping", "-c", "1", "-W", "1", NOWHERE], capture_stdout=True, check=False)
            result["stats"] = dict(lab.engine.stats.tun)
            result["echoed"] = lab.engine.stats.echoed
            assert await client.delete()
        result["routes_after_delete"] = await wait_for(lambda: CLIENT_INNER not in routes())
    gone = subprocess.run(["ip", "link", "show", DEVICE], capture_output=True)
    result["device_removed"] = gone.returncode != 0
    return result


SCENARIOS = {"ping": ping_through_the_tunnel}


def main(argv: Sequence[str]) -> int:
    result = trio.run(SCENARIOS[argv[0]])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
