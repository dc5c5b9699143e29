"""``ikev2-client`` (issue 13) against the real server on 127.0.0.1 over TCP, TLS and UDP.

The command runs as a subprocess (``python -m responder.client_cli``, what the
``ikev2-client`` entry point calls) while :func:`responder.server.serve`
runs in this test's Trio loop, so the test can look at the server's side too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio
import trustme

from responder.client_cli import parse_target
from responder.core.config import ChildlessPolicy
from responder.core.path import Transport
from responder.server import ServerInfo
from tests.net.test_client import HOST, port_of, running_server

PSK = "correct horse battery staple"  #: tests.fakes.pair.PSK, alice@example.org's key


async def client(info: ServerInfo, transport: Transport, *argv: str) -> tuple[int, str, str]:
    tls = ["--tls-fingerprint", info.tls_fingerprint or ""] if transport is Transport.TLS else []
    done = await trio.run_process(
        [
            sys.executable,
            "-m",
            "responder.client_cli",
            f"--{transport.value}",
            f"{HOST}:{port_of(info, transport)}",
            "--psk",
            PSK,
            "--id",
            "alice@example.org",
            *tls,
            *argv,
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.parametrize("transport", list(Transport), ids=[t.value for t in Transport])
async def test_establish_check_and_delete(transport: Transport, tmp_path: Path) -> None:
    async with running_server(trustme.CA(), tmp_path) as info:
        with trio.fail_after(30):
            code, out, err = await client(info, transport, "--liveness")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].startswith("IKE SA ") and f"established over {transport.value} {HOST}:" in lines[0]
        assert lines[1].startswith("Child SA ESP in ") and "tunnel" in lines[1]
        assert lines[2] == "liveness check: answered"
        spis = lines[0].split()[2]
        assert lines[3] == f"IKE SA {spis} deleted by us"
        assert info.engine.stats.ike_sas == 0  # the Delete was answered: nothing is left


async def test_json_and_childless(tmp_path: Path) -> None:
    async with running_server(trustme.CA(), tmp_path, childless=ChildlessPolicy.ALLOW) as info:
        with trio.fail_after(30):
            code, out, _ = await client(info, Transport.TCP, "--childless", "--json")
        assert code == 0
        report = json.loads(out)
        assert report["established"] and report["child_sas"] == [] and report["deleted"] == "by us"
        assert len(report["spi_i"]) == 16 and report["error"] is None


async def test_failures_exit_1_with_the_reason(tmp_path: Path) -> None:
    async with running_server(trustme.CA(), tmp_path) as info:
        with trio.fail_after(30):
            code, out, err = await client(info, Transport.TCP, "--ike", "aes128-sha256-ecp256")
        assert code == 1 and "not established" in out and "NO_PROPOSAL_CHOSEN" in err
        wrong = ":".join(["00"] * 32)
        with trio.fail_after(30):
            done = await trio.run_process(
                [
                    *(sys.executable, "-m", "responder.client_cli"),
                    *("--tls", f"{HOST}:{port_of(info, Transport.TLS)}", "--psk", PSK),
                    *("--tls-fingerprint", wrong),
                ],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        assert done.returncode == 1 and b"TLS: server certificate SHA-256" in done.stderr
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, "-m", "responder.client_cli", "--udp", "[::1", "--psk", "x"],
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 2 and b"is not [IPv6]:PORT" in done.stderr


def test_parse_target() -> None:
    assert parse_target("127.0.0.1:4500") == ("127.0.0.1", 4500)
    assert parse_target("vpn.example:443") == ("vpn.example", 443)
    assert parse_target("[::1]:500") == ("::1", 500)
    for bad in ("127.0.0.1", "::1:500", "host:0", "host:x", ":500"):
        with pytest.raises(ValueError):
            parse_target(bad)


async def test_usage_and_file_errors(tmp_path: Path) -> None:
    async with running_server(trustme.CA(), tmp_path) as info:
        with trio.fail_after(30):
            code, _, err = await client(info, Transport.TLS, "--tls-ca", str(tmp_path / "none.pem"))
        # --tls-fingerprint (given by client()) and --tls-ca exclude each other: a usage error
        assert code == 2
        done = await trio.run_process(
            [
                *(sys.executable, "-m", "responder.client_cli"),
                *("--tls", f"{HOST}:{port_of(info, Transport.TLS)}", "--psk", PSK),
                *("--tls-ca", str(tmp_path / "none.pem")),
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert done.returncode == 1 and b"error: --tls-ca" in done.stderr
        code, _, err = await client(info, Transport.TCP, "--tls-fingerprint", "zz")
        assert code == 2 and "32 hex octets" in err
