"""Reloading the configuration while the server runs (issue 13): the control socket's ``reload``
and SIGHUP, keeping the IKE SAs a peer still covers and deleting the others.

The server is :func:`responder.server.serve` with a ``load`` function that returns whatever the
test put in ``sources`` (the CLI's reads its flags and file again); the project's initiator holds
an IKE SA over TCP and sees what the reload does to it.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from responder.client import Client, establish
from responder.control_client import ControlError, main, request
from responder.core.config import (
    ChildConfig,
    Config,
    ConfigError,
    Dpd,
    IdPattern,
    IkeProposal,
    PeerConfig,
    Secret,
)
from responder.core.path import Transport
from responder.server import ServerInfo, serve
from responder.server.settings import Listener, ServerSettings, TunSettings
from tests.fakes.pair import PSK, RESPONDER_ID, child_request, initiator_settings

SUITE = "aes256gcm16-prfsha256-x25519"
HOST = "127.0.0.1"
ALICE_SETTINGS = initiator_settings(SUITE, child_request())
ALICE = PeerConfig("alice", IdPattern.parse("alice@example.org"), PSK, local_id=RESPONDER_ID)


def settings_with(*peers: PeerConfig, control: Path, **shell: Any) -> ServerSettings:
    config = Config(ike_proposals=(IkeProposal.parse(SUITE),), peers=peers)
    shell.setdefault("listeners", (Listener(Transport.TCP, HOST, 0),))
    return ServerSettings(config=config, control_path=control, **shell)


@asynccontextmanager
async def server(sources: list[Any], control: Path) -> AsyncIterator[ServerInfo]:
    def load() -> ServerSettings:
        source = sources[-1]
        if isinstance(source, Exception):
            raise source
        assert isinstance(source, ServerSettings)
        return source

    async with trio.open_nursery() as nursery:
        info: ServerInfo = await nursery.start(
            lambda task_status: serve(sources[0], load=load, task_status=task_status)
        )
        yield info
        nursery.cancel_scope.cancel()


async def alice_sa(info: ServerInfo) -> Client:
    port = info.listeners[0].port
    with trio.fail_after(10):
        client = await establish(
            initiator_settings(SUITE, child_request()), Config(), Transport.TCP, HOST, port
        )
    assert client.established, client.reason
    return client


async def reload(control: Path) -> Any:
    return await trio.to_thread.run_sync(lambda: request(control, "reload"))


async def test_a_peer_that_still_covers_the_sa_keeps_it_with_its_new_policy(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    sources: list[Any] = [settings_with(ALICE, control=control)]
    async with server(sources, control) as info:
        client = await alice_sa(info)
        async with client:
            changed = attrs.evolve(ALICE, dpd=Dpd(delay=30.0))
            bob = PeerConfig("bob", IdPattern.parse("bob@example.org"), Secret.parse("bob's key"))
            sources.append(settings_with(changed, bob, control=control))
            result = await reload(control)
            assert result == {"kept": 1, "ended": [], "restart_needed": []}
            [sa] = info.engine.sas()
            assert sa.peer is not None and sa.peer.dpd == Dpd(delay=30.0)  # the new policy
            assert info.engine.config.peers[1].name == "bob"
            assert await client.liveness_check()  # the SA works on


async def test_an_sa_no_peer_covers_is_deleted(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    carol = PeerConfig("carol", IdPattern.parse("carol@example.org"), PSK)
    sources: list[Any] = [settings_with(ALICE, control=control)]
    async with server(sources, control) as info:
        client = await alice_sa(info)
        async with client:
            spi = client.spi_r.hex()
            sources.append(settings_with(carol, control=control))
            assert await reload(control) == {"kept": 0, "ended": [spi], "restart_needed": []}
            await client.process(1.0)  # the initiator answers our Delete
            assert not client.established
            with trio.fail_after(10):  # and the answer reaches the responder
                while list(info.engine.sas()):
                    await trio.sleep(0.01)
            # and alice cannot come back: the new configuration does not know her
            port = info.listeners[0].port
            again = await establish(
                initiator_settings(SUITE, child_request()), Config(), Transport.TCP, HOST, port
            )
            async with again:
                assert not again.established and "AUTHENTICATION_FAILED" in again.reason


async def test_shell_settings_are_named_as_needing_a_restart(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    sources: list[Any] = [settings_with(ALICE, control=control)]
    async with server(sources, control) as info:
        other = (Listener(Transport.TCP, HOST, 0), Listener(Transport.UDP, HOST, 0))
        sources.append(settings_with(ALICE, control=control, listeners=other, connections_max=50))
        result = await reload(control)
        assert result["restart_needed"] == ["listeners", "connections_max"]
        assert [listener.kind for listener in info.listeners] == [Transport.TCP]  # as started
        out = io.StringIO()
        code = await trio.to_thread.run_sync(lambda: main(["reload", "--control", str(control)], out=out))
        assert code == 0
        assert out.getvalue() == (
            "configuration reloaded: 0 IKE SA(s) kept\n"
            "changed, applied only at a restart: listeners, connections_max\n"
        )


async def test_a_configuration_that_does_not_load_changes_nothing(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    sources: list[Any] = [settings_with(ALICE, control=control)]
    async with server(sources, control) as info:
        client = await alice_sa(info)
        async with client:
            sources.append(ConfigError("empty secret", "peers.alice.psk"))
            with pytest.raises(ControlError, match=r"^peers\.alice\.psk: empty secret$"):
                await reload(control)
            sources.append(RuntimeError("a loader bug"))  # anything else: refused the same way
            with pytest.raises(ControlError, match=r"^RuntimeError: a loader bug$"):
                await reload(control)
            assert info.engine.config is sources[0].config
            assert await client.liveness_check()


async def test_without_a_loader_reload_is_refused(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, settings_with(ALICE, control=control))
        with pytest.raises(ControlError, match="started without a way to reload"):
            await reload(control)
        nursery.cancel_scope.cancel()


def test_sighup_reloads_the_cli_responder_from_its_file(tmp_path: Path) -> None:
    """The real command: edit the file, SIGHUP, the log says what the reload did; a broken file
    is refused with its key named and the responder runs on."""
    config = tmp_path / "r.toml"
    config.write_text(
        '[peers.alice]\nremote_id = "alice@example.org"\npsk = "a key of twenty chars or more"\n'
    )
    log = tmp_path / "r.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "responder", "--config", str(config), "--tcp", "127.0.0.1:0",
         "--control", str(tmp_path / "c.sock"), "--log-file", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("===== end"):
                break
        config.write_text('[peers.bob]\nremote_id = "bob@example.org"\npsk = "another key of twenty chars"\n')
        process.send_signal(signal.SIGHUP)
        wait_for_line(log, "SIGHUP: configuration reloaded: 0 IKE SA(s) kept, 0 deleted")
        config.write_text('[peers.bob]\nremote_id = "bob@example.org"\npsk = ""\n')
        process.send_signal(signal.SIGHUP)
        wait_for_line(
            log, "SIGHUP: reload refused, the running configuration stays: peers.bob.psk: empty secret"
        )
        assert process.poll() is None
        status = request(tmp_path / "c.sock", "status")
        assert status["pid"] == process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    assert process.returncode == 0


def wait_for_line(log: Path, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the log:\n{log.read_text() if log.exists() else '(none)'}")


async def test_tun_settings_and_a_first_tun_child_need_a_restart(tmp_path: Path) -> None:
    """Issue 12: the TUN device is made at start, so neither a changed ``[tun]`` nor a child that
    first asks for ``backend = "tun"`` applies before a restart; the reload says so."""
    control = tmp_path / "c.sock"
    sources: list[Any] = [settings_with(ALICE, control=control)]
    async with server(sources, control):
        tun_alice = attrs.evolve(ALICE, children=(ChildConfig("net", backend="tun"),))
        sources.append(settings_with(tun_alice, control=control, tun=TunSettings(name="other0")))
        result = await reload(control)
        assert result["restart_needed"] == ["tun", 'backend = "tun" (the TUN device is made at start)']
