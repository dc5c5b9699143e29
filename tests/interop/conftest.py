"""Fixtures for interop tests: namespaces, strongSwan, libreswan, the espintcp stand-in, tshark.

Every fixture checks its prerequisites with :mod:`tests.interop.require`: without
them the test skips with what is missing and how to install it, or fails under
``IKEV2_RESPONDER_REQUIRE_INTEROP=1``.  Everything a test starts is stopped by PID
and every namespace removed in the fixtures' ``finally`` blocks, whether the test
passed, failed or was interrupted; on failure the tails of the daemons' logs are
printed into the report.

API (all factories; files live under the test's ``tmp_path``):

* ``netns`` -> :class:`Lab`: ``netns("hint")`` makes a namespace,
  ``netns.pair("192.0.2.1/24", "192.0.2.2/24")`` two joined by a veth pair,
  ``netns.link(a, addr, b, addr)`` joins existing ones; ``ns.run(...)``, ``ns.spawn(...)``.
* ``strongswan(ns, "name", log_level=2)`` -> :class:`StrongSwan` (``configure``, ``start``,
  ``initiate``, ``list_sas``, ``rekey``, ``terminate``, ``events.wait_for``).
* ``libreswan(ns, "name", listen_tcp=..., listen=..., impairs=...)`` -> :class:`Libreswan`.
* ``standin(ns, role=..., listen=..., ...)`` -> the stand-in's :class:`Proc`.
* ``tshark`` -> :class:`TsharkHelper`: ``capture(ns, "veth0", "name")`` then ``.stop()``;
  ``dissect(pcap, ike_sas=..., esp_sas=...)`` or ``dissect(pcap, config_dir=keylog_dir)``.
* ``responder(ns, tcp=["ADDR:PORT"], tls=[...], udp=[...], psk=..., local_id=...)`` ->
  :class:`Responder`: ``python -m responder`` started in ``ns`` with those flags and
  ``--keylog``, returned once every listener is bound; its output tail is printed on failure.
* ``@pytest.mark.hard_timeout(SECONDS)``: the test (set-up included) fails after SECONDS
  (SIGALRM), and the fixtures still tear everything down.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.interop.lab import Lab, Netns, Proc, remove_stale_namespaces
from tests.interop.libreswan import Libreswan, libreswan_binaries, start_standin
from tests.interop.require import INSTALL_HINT, require, require_root, require_tool
from tests.interop.responder_proc import Responder, start_responder
from tests.interop.strongswan import CHARON, SWANCTL, StrongSwan
from tests.interop.tshark import LUA_DISSECTOR, dissect, start_capture, stop_capture

STRONGSWAN_HINT = (
    "apt-get install strongswan-charon charon-systemd strongswan-swanctl "
    "libcharon-extra-plugins libstrongswan-standard-plugins (or " + INSTALL_HINT + ")"
)
LIBRESWAN_HINT = "`bash .ci/install-interop` (unpacks Debian's libreswan into /opt/libreswan)"
PLUGIN_DIR = Path("/usr/lib/ipsec/plugins")


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# A SIGTERM (a CI timeout, a killed run) should unwind through the fixtures' finally blocks
# like Ctrl-C does; Lab's atexit hook is the last resort.
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hard_timeout(seconds): fail an interop test that runs longer (SIGALRM, main thread)"
    )


class HardTimeout(Exception):
    """Raised in the main thread when a test marked ``hard_timeout`` runs out of time."""


@pytest.fixture(autouse=True)
def _hard_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("hard_timeout")
    if marker is None:
        yield
        return
    seconds = float(marker.args[0])

    def expired(signum: int, frame: FrameType | None) -> None:
        raise HardTimeout(f"{request.node.nodeid} ran longer than its hard timeout of {seconds:.0f}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)
    return report is None or bool(report.failed)


@pytest.fixture(scope="session")
def _stale_namespaces_removed() -> None:
    if os.geteuid() == 0:
        remove_stale_namespaces()


@pytest.fixture
def netns(request: pytest.FixtureRequest, tmp_path: Path, _stale_namespaces_removed: None) -> Iterator[Lab]:
    """A :class:`Lab` that creates namespaces and tears everything down at the end."""
    require_root()
    require_tool("ip", "apt-get install iproute2")
    require_tool("nft", "apt-get install nftables")
    lab = Lab(tmp_path / "lab")
    try:
        yield lab
    finally:
        if _failed(request):
            for proc in lab.procs:
                if proc.log is not None:
                    print(f"---- {proc.argv[4:7]} (pid {proc.pid}) {proc.log} ----")
                    print(proc.log_text()[-4000:])
        lab.close()


@pytest.fixture
def strongswan(
    request: pytest.FixtureRequest, netns: Lab, tmp_path: Path
) -> Iterator[Callable[..., StrongSwan]]:
    """Factory: ``strongswan(ns, name, log_level=2, ...)`` -> a configured-but-not-started StrongSwan."""
    require_tool(CHARON, STRONGSWAN_HINT)
    require_tool(SWANCTL, STRONGSWAN_HINT)
    for plugin in ("kernel-libipsec", "openssl", "vici", "kernel-netlink", "socket-default"):
        require(
            (PLUGIN_DIR / f"libstrongswan-{plugin}.so").exists(),
            f"strongSwan plugin {plugin}",
            STRONGSWAN_HINT,
        )
    require(os.path.exists("/dev/net/tun"), "/dev/net/tun (kernel-libipsec needs TUN)", "modprobe tun")
    instances: list[StrongSwan] = []

    def make(ns: Netns, name: str, **kwargs: Any) -> StrongSwan:
        instance = StrongSwan(ns, tmp_path / name, **kwargs)
        instances.append(instance)
        return instance

    try:
        yield make
    finally:
        for instance in instances:
            if _failed(request):
                print(f"---- charon {instance.dir.name}: {instance.log_path} ----")
                print(instance.log_text()[-6000:])
            with contextlib.suppress(Exception):
                instance.stop()


@pytest.fixture
def libreswan(
    request: pytest.FixtureRequest, netns: Lab, tmp_path: Path
) -> Iterator[Callable[..., Libreswan]]:
    """Factory: ``libreswan(ns, name, listen_tcp=False, listen=None, impairs=...)`` -> Libreswan."""
    pluto, whack, addconn = libreswan_binaries()
    for binary in (pluto, whack, addconn):
        require_tool(str(binary), LIBRESWAN_HINT)
    require(
        os.path.realpath("/usr/libexec/ipsec/addconn") == os.path.realpath(addconn),
        "/usr/libexec/ipsec/addconn pointing into the private libreswan tree",
        LIBRESWAN_HINT,
    )
    require_tool("certutil", "apt-get install libnss3-tools")
    instances: list[Libreswan] = []

    def make(ns: Netns, name: str, **kwargs: Any) -> Libreswan:
        instance = Libreswan(ns, tmp_path / name, **kwargs)
        instances.append(instance)
        return instance

    try:
        yield make
    finally:
        for instance in instances:
            if _failed(request):
                print(f"---- pluto {instance.dir.name}: {instance.log_path} ----")
                print(instance.log_text()[-6000:])
            with contextlib.suppress(Exception):
                instance.stop()


@pytest.fixture
def standin(netns: Lab, tmp_path: Path) -> Callable[..., Proc]:
    """Factory: ``standin(ns, role="initiator"|"responder", listen="ADDR:PORT", ...)`` -> Proc."""
    counter = iter(range(1, 1000))

    def make(ns: Netns, **kwargs: Any) -> Proc:
        kwargs.setdefault("log", tmp_path / f"standin-{kwargs.get('role', 'x')}-{next(counter)}.log")
        return start_standin(ns, **kwargs)

    return make


class Capture:
    def __init__(self, proc: Proc, pcap: Path) -> None:
        self.proc = proc
        self.pcap = pcap

    def stop(self) -> Path:
        stop_capture(self.proc)
        return self.pcap


class TsharkHelper:
    """Captures inside namespaces and dissection with the project's Lua dissector."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path

    def capture(self, ns: Netns, ifname: str, name: str, bpf: str = "") -> Capture:
        require_tool("tcpdump", "apt-get install tcpdump")
        pcap = self.dir / f"{name}.pcap"
        return Capture(start_capture(ns, ifname, pcap, bpf), pcap)

    dissect = staticmethod(dissect)


@pytest.fixture
def tshark(tmp_path: Path) -> TsharkHelper:
    """Dissection helper; needs tshark (and the Lua dissector shipped in responder/wireshark/)."""
    require_tool("tshark", "DEBIAN_FRONTEND=noninteractive apt-get install tshark")
    require(
        LUA_DISSECTOR.exists(), f"the shipped Lua dissector {LUA_DISSECTOR}", "restore responder/wireshark/"
    )
    return TsharkHelper(tmp_path)


@pytest.fixture
def responder(
    request: pytest.FixtureRequest, netns: Lab, tmp_path: Path
) -> Iterator[Callable[..., Responder]]:
    """Factory: ``responder(ns, tcp=..., tls=..., udp=..., psk=..., local_id=...)`` -> Responder."""
    require_tool("ss", "apt-get install iproute2")
    instances: list[Responder] = []
    counter = iter(range(1, 1000))

    def make(ns: Netns, **kwargs: Any) -> Responder:
        kwargs.setdefault("workdir", tmp_path / f"responder-{next(counter)}")
        instance = start_responder(ns, **kwargs)
        instances.append(instance)
        return instance

    try:
        yield make
    finally:
        for instance in instances:
            if _failed(request):
                print(f"---- responder {instance.proc.argv[4:]} (pid {instance.proc.pid}) ----")
                print(instance.tail())
            with contextlib.suppress(Exception):
                instance.stop()
