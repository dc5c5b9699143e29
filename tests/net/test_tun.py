"""The TUN backend on a real TUN device (issue 12), each test in a network namespace of its own.

Every scenario runs in a child process under ``unshare --net``: the namespace,
the device, its routes and addresses end with that process even when a test
fails or times out, so nothing is left on the machine.  The pings are the
project's own initiator (:mod:`responder.client`) over UDP; the answers come
from the Linux stack of the responder's namespace, through the device.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.net.tun_netns import CLIENT_INNER, CLIENT_INNER6

REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    if sys.platform != "linux":
        return "TUN devices are Linux's"
    if os.geteuid() != 0:
        return "needs root (a TUN device, a network namespace)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun (modprobe tun)"
    for tool in ("unshare", "setpriv", "ip", "ping"):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def in_namespace(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``argv`` in a fresh network namespace (gone with the process), from the repository."""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        ["unshare", "--net", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=environment,
    )


def test_the_host_answers_pings_through_the_tun_device() -> None:
    """The client's inner address pings the device's own address and another address of the
    responder's host: decrypted packets enter the host's stack through the device (RFC 4301 §5.2
    checked by the core), its answers leave through the device, the selector lookup finds the Child
    SA (RFC 4301 §5.1) and they come back as ESP.  A packet the host routes into the device that no
    Child SA holds is dropped as ``no_sa``.  The route to the client follows its Child SA, and the
    device goes with the server."""
    done = in_namespace(sys.executable, "-m", "tests.net.tun_netns", "ping")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["established"] and result["routes_up"], result
    assert "mtu 1400" in result["link"] and ",UP," in result["link"]
    assert CLIENT_INNER in result["routes"]  # the remote selectors, routed into the device
    assert CLIENT_INNER6 in result["routes6"]
    assert (result["tun_replies"], result["host_replies"], result["ipv6_replies"]) == (3, 2, 2), result
    assert result["echoed"] == 0  # the host answered, not the echo backend
    stats = result["stats"]
    assert stats["to_device_packets"] == 7 and stats["out_sealed"] == 7, stats
    assert stats["from_device_packets"] >= 8 and stats["out_dropped_no_sa"] >= 1, stats
    data = len(b"ikev2-responder ping")
    assert stats["to_device_octets"] == 5 * (20 + 8 + data) + 2 * (40 + 8 + data)
    assert result["routes_after_delete"], result
    assert result["device_removed"], result


def _config(tmp_path: Path, name: str) -> Path:
    config = tmp_path / "tun.toml"
    config.write_text(
        f'[tun]\nname = "{name}"\naddresses = ["10.99.0.1/24"]\n\n'
        '[lab]\nany_id_psk = "a lab key long enough for the warning"\n\n'
        '[lab.children.net]\nbackend = "tun"\n'
    )
    return config


def test_without_cap_net_admin_the_start_fails_naming_the_child(tmp_path: Path) -> None:
    """Not allowed to make the device: one line naming the child and the reason, exit status 1
    (a failure to start, docs/configuration.md), no traceback, before anything else runs."""
    config = _config(tmp_path, "ikev2r0")
    drop = ["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"]
    cli = [sys.executable, "-m", "responder", "--config", str(config), "--udp", "127.0.0.1:0", "--no-control"]
    done = in_namespace(*drop, *cli)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "error: cannot start: the TUN device 'ikev2r0' for lab.children.net (backend = \"tun\"): "
        "TUNSETIFF: needs root (or CAP_NET_ADMIN)"
    ) in done.stderr


def test_a_name_taken_by_another_kind_of_device_fails_the_start(tmp_path: Path) -> None:
    config = _config(tmp_path, "lo")
    cli = [sys.executable, "-m", "responder", "--config", str(config), "--udp", "127.0.0.1:0", "--no-control"]
    done = in_namespace(*cli)
    assert done.returncode == 1, done.stderr
    assert "the TUN device 'lo' for lab.children.net" in done.stderr
    assert "a device of that name exists and is not a TUN device" in done.stderr
