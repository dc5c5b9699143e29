"""Self-test of the namespace/process helpers and of the skip-or-fail policy."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.interop import require as req
from tests.interop.lab import Lab, LabError, run_command, wait_until


def _namespaces() -> set[str]:
    return {
        line.split()[0] for line in run_command(["ip", "netns", "list"]).stdout.splitlines() if line.strip()
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.interop
def test_lab_links_namespaces_and_cleans_up_everything(netns: Lab, tmp_path: Path) -> None:
    with Lab(tmp_path / "inner") as lab:
        a, b = lab.pair("192.0.2.1/24", "192.0.2.2/24", hints=("a", "b"))
        a.add_local_addresses(["10.250.1.1/32"])
        assert a.run("ping", "-c", "1", "-W", "2", "192.0.2.2").returncode == 0
        # Loopback and the test's own addresses only: nothing routes out of the namespace.
        assert a.run("ip", "route", "get", "203.0.113.9", check=False).returncode != 0
        leader = b.spawn(["sleep", "300"])
        # A daemon's child left behind in a namespace is found by `ip netns pids` and ended too.
        spawner = a.spawn(
            ["sh", "-c", "setsid sleep 301 & echo $! ; wait"], stdout=None, log=tmp_path / "spawner.log"
        )
        orphan = int(wait_until(lambda: (tmp_path / "spawner.log").read_text().strip(), 5, "orphan pid"))
        names = {a.name, b.name}
        assert names <= _namespaces()
    assert not names & _namespaces()
    for pid in (leader.pid, spawner.pid, orphan):
        assert not _alive(pid), pid


@pytest.mark.interop
def test_lab_cleans_up_when_the_body_raises(netns: Lab, tmp_path: Path) -> None:
    lab = Lab(tmp_path / "inner")
    with pytest.raises(RuntimeError, match="boom"), lab:
        ns = lab.netns("boom")
        proc = ns.spawn(["sleep", "300"])
        raise RuntimeError("boom")
    assert ns.name not in _namespaces()
    assert not _alive(proc.pid)
    with pytest.raises(LabError):
        lab.spawn(["true"])


@pytest.mark.interop
def test_proc_stop_escalates_to_sigkill(netns: Lab, tmp_path: Path) -> None:
    ns = netns("stubborn")
    log = tmp_path / "stubborn.log"
    proc = ns.spawn(["sh", "-c", "trap '' TERM; echo armed; while :; do sleep 0.1; done"], log=log)
    wait_until(lambda: "armed" in log.read_text(), 5, "the shell to ignore SIGTERM")
    code = proc.stop(timeout=0.5)
    assert code == -signal.SIGKILL


def test_require_skips_by_default_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IKEV2_RESPONDER_REQUIRE_INTEROP", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-such-tool.*apt-get install nothing"):
        req.require_tool("no-such-tool-ikev2", "apt-get install nothing")
    monkeypatch.setenv("IKEV2_RESPONDER_REQUIRE_INTEROP", "1")
    with pytest.raises(pytest.fail.Exception, match="IKEV2_RESPONDER_REQUIRE_INTEROP=1"):
        req.require_tool("no-such-tool-ikev2", "apt-get install nothing")
    with pytest.raises(pytest.fail.Exception, match="precondition"):
        req.require(False, "precondition")
    assert req.require_tool("sh") == "/usr/bin/sh" or req.require_tool("sh").endswith("/sh")
    req.require(True, "never reported")
