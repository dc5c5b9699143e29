"""The control socket and the ``status``/``list-sas``/``stats``/``terminate`` subcommands (issue 13).

The server is :func:`responder.server.serve` on 127.0.0.1 with TCP, TLS and
UDP listeners and ``control_path`` in the test's directory; the project's
initiator establishes one IKE SA with a Child SA on each transport, and the
subcommands' own code (:mod:`responder.control_client`, a blocking socket,
run in a thread) asks about them.
"""

from __future__ import annotations

import io
import json
import socket
import stat
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from responder.client import Client, establish
from responder.control_client import ControlError, main, render, request
from responder.core.config import Config
from responder.core.errors import LocalError
from responder.core.path import Transport
from responder.server import ServerInfo
from responder.server.control import serve_control
from tests.fakes.pair import child_request, initiator_settings
from tests.net.test_client import HOST, SUITE, port_of, running_server


async def ask(path: Path, command: str, **fields: Any) -> Any:
    return await trio.to_thread.run_sync(lambda: request(path, command, **fields))


async def run_main(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await trio.to_thread.run_sync(lambda: main(list(argv), out=out))
    return code, out.getvalue()


TIMES = ("age", "established_for", "last_heard_ago", "rekey_in", "expires_in")


def timeless(sas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``list-sas`` without the seconds-from-now fields, which move between two requests."""
    out = []
    for sa in sas:
        children = [{k: v for k, v in c.items() if k not in TIMES} for c in sa["child_sas"]]
        out.append({**{k: v for k, v in sa.items() if k not in TIMES}, "child_sas": children})
    return out


async def gone(info: ServerInfo, local_spi: bytes) -> None:
    with trio.fail_after(5):
        while info.engine.sa(local_spi) is not None:
            await trio.sleep(0.01)


async def three_sas(info: ServerInfo) -> list[Client]:
    clients = []
    for transport in (Transport.TCP, Transport.TLS, Transport.UDP):
        with trio.fail_after(10):
            client = await establish(
                initiator_settings(SUITE, child_request()),
                Config(),
                transport,
                HOST,
                port_of(info, transport),
                tls_fingerprint=info.tls_fingerprint if transport is Transport.TLS else None,
            )
        assert client.established, client.reason
        clients.append(client)
    return clients


async def test_list_sas_shows_each_sa_with_its_transport_spis_and_child(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    async with running_server(trustme.CA(), tmp_path, server_settings={"control_path": control}) as info:
        assert stat.S_IMODE(control.stat().st_mode) == 0o600  # only its owner may connect
        clients = await three_sas(info)
        for client in clients:  # ESP through each Child SA, to the echo backend (issue 12)
            assert await client.ping(ip_address("192.0.2.10"), count=2) == 2, client.reason
        sas = await ask(control, "list-sas")
        assert [sa["transport"] for sa in sas] == ["tcp", "tls", "udp"]
        for sa, client in zip(sas, clients, strict=True):
            assert (sa["spi_i"], sa["spi_r"]) == (client.spi_i.hex(), client.spi_r.hex())
            assert sa["state"] == "established" and sa["role"] == "responder"
            assert sa["peer_id"] == "alice@example.org"
            assert sa["remote"].startswith("127.0.0.1:")
            [child] = sa["child_sas"]
            [established] = client.child_sas
            assert child["inbound_spi"] == established.outbound_spi.hex()  # ours is its outbound
            assert child["state"] == "installed" and child["local_ts"] == ["0.0.0.0/0"]
            esp = child["esp"]
            assert (esp["packets_in"], esp["packets_out"], esp["last_seq_out"], esp["highest_seq_in"]) == (
                2,
                2,
                2,
                2,
            )
            assert esp["octets_in"] == esp["octets_out"] > 0
            assert (esp["replay_drops"], esp["integrity_failures"], esp["malformed"]) == (0, 0, 0)
        assert sas[0]["connection"] is not None and sas[2]["connection"] is None
        code, text = await run_main("list-sas", "--control", str(control))
        assert code == 0
        for client in clients:
            assert f"IKE SA {client.spi_i.hex()}/{client.spi_r.hex()} established" in text
        assert "peer alice@example.org" in text and "Child SA default installed: ESP in" in text
        assert text.count("    ESP in 2 packets") == 3
        code, text = await run_main("list-sas", "--control", str(control), "--json")
        assert code == 0 and timeless(json.loads(text)) == timeless(await ask(control, "list-sas"))
        for client in clients:
            await client.aclose()


async def test_status_and_stats(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    async with running_server(trustme.CA(), tmp_path, server_settings={"control_path": control}) as info:
        clients = await three_sas(info)
        status = await ask(control, "status")
        assert (status["ike_sas"], status["established"], status["child_sas"]) == (3, 3, 3)
        assert status["connections"] == 2 and status["udp_sockets"] == 1
        assert status["listeners"] == [str(listener) for listener in info.listeners]
        assert status["impairments"] == []  # none on: status says nothing about them
        stats = await ask(control, "stats")
        assert stats["engine"]["ike_sas"] == 3 and stats["engine"]["internal_errors"] == 0
        assert stats["connections"]["accepted"] == 2
        [udp] = stats["udp"].values()
        assert udp["ike"] >= 2
        code, text = await run_main("status", "--control", str(control))
        assert code == 0 and "IKE SAs: 3 (3 established, 0 half-open); Child SAs: 3" in text
        assert "internal_errors: 0" in render("stats", stats)
        for client in clients:
            await client.aclose()


async def test_terminate_by_spi_and_by_peer(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    async with running_server(trustme.CA(), tmp_path, server_settings={"control_path": control}) as info:
        clients = await three_sas(info)
        code, text = await run_main("terminate", "--ike", clients[0].spi_i.hex(), "--control", str(control))
        assert code == 0 and f"IKE SA {clients[0].spi_r.hex()}: Delete sent" in text
        await clients[0].process(0.5)  # the initiator answers the Delete
        assert not clients[0].established
        await gone(info, clients[0].spi_r)
        result = await ask(control, "terminate", peer="alice@example.org")
        assert sorted(result["deleted"]) == sorted(c.spi_r.hex() for c in clients[1:])
        for client in clients[1:]:
            await client.process(0.5)
            await gone(info, client.spi_r)
        assert await ask(control, "list-sas") == []
        code, _ = await run_main("terminate", "--peer", "bob@example.org", "--control", str(control))
        assert code == 1
        with pytest.raises(ControlError, match=r"no IKE SA for peer bob@example\.org"):
            await ask(control, "terminate", peer="bob@example.org")
        for client in clients:
            await client.aclose()


async def test_bad_requests_get_an_error_and_the_server_goes_on(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    async with running_server(trustme.CA(), tmp_path, server_settings={"control_path": control}):

        def raw(data: bytes) -> dict[str, Any]:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(control))
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())
                return answer

        for data, error in (
            (b"not json\n", "not JSON"),
            (b"[1, 2]\n", '"command" string'),
            (b'{"command": "reboot"}\n', "unknown command 'reboot'"),
            (b'{"command": "terminate"}\n', 'one of "ike"'),
            (b"x" * 70000, "longer than 65536"),
        ):
            answer = await trio.to_thread.run_sync(raw, data)
            assert answer["ok"] is False and error in answer["error"], answer
        assert (await ask(control, "status"))["ike_sas"] == 0


async def test_socket_in_use_stale_and_gone(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    async with running_server(trustme.CA(), tmp_path, server_settings={"control_path": control}) as info:
        with pytest.raises(LocalError, match="another responder answers on it"):
            await serve_control(control, None)  # type: ignore[arg-type]
        assert (await ask(control, "status"))["pid"] > 0
        del info
    assert not control.exists()  # removed on the way out
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(control))
    stale.close()  # a socket file nobody answers on, as a killed responder leaves
    async with running_server(trustme.CA(), tmp_path, server_settings={"control_path": control}):
        assert (await ask(control, "status"))["ike_sas"] == 0
    code, _ = await run_main("status", "--control", str(control))
    assert code == 1
    with pytest.raises(ControlError, match="no responder at"):
        await ask(control, "status")


async def test_terminate_twice_and_a_nested_request(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    async with running_server(trustme.CA(), tmp_path, server_settings={"control_path": control}) as info:
        [client, *_] = await three_sas(info)
        assert (await ask(control, "terminate", ike=client.spi_r.hex()))["deleted"] == [client.spi_r.hex()]
        with pytest.raises(ControlError, match="its Delete is already under way"):
            await ask(control, "terminate", ike=client.spi_r.hex())

        def nested() -> dict[str, Any]:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(control))
                sock.sendall(b"[" * 60000 + b"\n")
                answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())
                return answer

        answer = await trio.to_thread.run_sync(nested)
        assert answer["ok"] is False and "not JSON" in answer["error"]
        assert (await ask(control, "status"))["ike_sas"] == 3


async def test_a_path_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    control.write_text("not a socket")
    with pytest.raises(LocalError, match="exists and is not a socket"):
        await serve_control(control, None)  # type: ignore[arg-type]
    assert control.read_text() == "not a socket"


def test_status_names_each_active_impairment() -> None:
    """Issue 13: ``ikev2-responder status`` shows every lab impairment that is on, one per line."""
    result = {
        "version": "0",
        "pid": 1,
        "uptime": 1.0,
        "listeners": [],
        "ike_sas": 0,
        "half_open": 0,
        "established": 0,
        "child_sas": 0,
        "connections": 0,
        "udp_sockets": 0,
        "impairments": ["force_cookie", "drop_response=1"],
    }
    text = render("status", result)
    assert text.endswith("IMPAIRMENT ACTIVE: force_cookie\nIMPAIRMENT ACTIVE: drop_response=1\n")
    del result["impairments"]  # an older responder's answer
    assert "IMPAIRMENT" not in render("status", result)
