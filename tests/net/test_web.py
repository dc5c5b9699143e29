"""The web console over real HTTP on 127.0.0.1: its JSON, its page, /metrics, its guards, its end.

A responder runs in-process (:func:`responder.testing.open_lab`) with the
console on port 0; the project's initiator makes the SAs; requests go through
:mod:`urllib` in a worker thread, a client that knows nothing of the server.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from responder.core.errors import LocalError
from responder.core.events import IkeSaClosed
from responder.core.path import Transport
from responder.server import ServerInfo, serve, web
from responder.server.connections import ConnectionTable
from responder.server.control import Control
from responder.server.history import History
from responder.server.settings import Listener, ServerSettings, WebSettings
from responder.server.web import serve_web
from responder.testing import Lab, open_lab

HOST = "127.0.0.1"
TIMEOUT = 20


async def get(url: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of ``GET url`` (an HTTP error is an answer too)."""

    def fetch() -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url, headers={"Host": host} if host else {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

    return await trio.to_thread.run_sync(fetch)


async def get_json(url: str) -> Any:
    status, headers, body = await get(url)
    assert status == 200 and headers["content-type"] == "application/json", (status, body)
    return json.loads(body)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    with trio.fail_after(TIMEOUT):
        async with open_lab(transports=(Transport.TCP, Transport.UDP), web=WebSettings(HOST, 0)) as lab:
            yield lab


def url(lab: Lab, path: str = "") -> str:
    assert lab.info.web_url is not None and re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*/", lab.info.web_url)
    return lab.info.web_url + path


async def test_state_is_what_status_and_list_sas_say(lab: Lab) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            await lab.client(Transport.TCP),
            await lab.client(Transport.UDP, lab.initiator_settings(childless=True)),
        ):
            state = await get_json(url(lab, "api/state"))
            control = control_of(lab)
            assert [sa["local_spi"] for sa in state["sas"]] == [sa["local_spi"] for sa in control.list_sas()]
            assert set(state["sas"][0]) == set(control.list_sas()[0])  # the same view as list-sas
    assert state["status"]["ike_sas"] == state["status"]["established"] == 2
    tcp, udp = state["sas"]
    assert (tcp["transport"], tcp["state"], tcp["peer_id"], len(tcp["child_sas"])) == (
        "tcp",
        "established",
        "client.test",
        1,
    )
    assert (udp["transport"], udp["child_sas"]) == ("udp", [])
    assert state["closed"] == [] and state["refusals"] == []


def control_of(lab: Lab) -> Control:
    """A Control over the lab's engine (with a connection table of its own: the lab's is not exposed)."""
    return Control(lab.engine, ConnectionTable(lab.settings, earned=lab.engine.earned))


async def test_an_sas_ladder_shows_its_messages_both_ways_with_their_payloads(lab: Lab) -> None:
    with trio.fail_after(TIMEOUT):
        async with await lab.client(Transport.TCP) as client:
            local_spi = client.spi_r.hex()  # the responder's SPI is its local SPI
            answer = await get_json(url(lab, f"api/sas/{local_spi}"))
    assert answer["sa"]["local_spi"] == local_spi and answer["sa"]["state"] == "established"
    ladder = answer["ladder"]
    assert ladder["spi_i"] == client.spi_i.hex() and ladder["peer_id"] == "client.test"
    messages = [r for r in ladder["rows"] if r["kind"] == "message"]
    assert [(r["exchange"], r["direction"], r["response"]) for r in messages] == [
        ("IKE_SA_INIT", "in", False),
        ("IKE_SA_INIT", "out", True),
        ("IKE_AUTH", "in", False),
        ("IKE_AUTH", "out", True),
    ]
    init_request, _, auth_request, auth_response = messages
    assert {"SA", "KE", "No", "N(NAT_DETECTION_SOURCE_IP)"} <= set(init_request["payloads"])
    assert {"IDi", "AUTH", "SA", "TSi", "TSr"} <= set(auth_request["payloads"])  # decrypted: inside SK
    assert auth_response["result"].startswith("IKE SA established with client.test")
    notes = [r["event"] for r in ladder["rows"] if r["kind"] == "note"]
    assert notes == ["IkeSaEstablished", "ChildSaEstablished"]


async def test_a_closed_sa_stays_on_show_with_why(lab: Lab) -> None:
    with trio.fail_after(TIMEOUT):
        async with await lab.client(Transport.TCP) as client:
            local_spi = client.spi_r
            assert await client.delete()
            await lab.recorder.wait_for(IkeSaClosed, lambda event: event.local_spi == local_spi)
            state = await get_json(url(lab, "api/state"))
            answer = await get_json(url(lab, f"api/sas/{local_spi.hex()}"))
    assert state["sas"] == []
    [closed] = state["closed"]
    assert closed["local_spi"] == local_spi.hex() and closed["established"] and closed["close_reason"]
    assert answer["sa"] is None
    *_, delete, note, answered = answer["ladder"]["rows"]
    assert (delete["exchange"], delete["direction"], delete["payloads"]) == ("INFORMATIONAL", "in", ["D"])
    assert note["text"] == f"IKE SA closed: {closed['close_reason']}"
    # Our answer leaves after the SA closed, and still joins its ladder (not a new SA's).
    assert (answered["exchange"], answered["direction"], answered["response"]) == (
        "INFORMATIONAL",
        "out",
        True,
    )
    assert answered["result"]


@pytest.mark.parametrize("spi", ["0000000000000001", "not-hex", "00"])
async def test_an_unknown_sa_is_404(lab: Lab, spi: str) -> None:
    with trio.fail_after(TIMEOUT):
        status, _, body = await get(url(lab, f"api/sas/{spi}"))
    assert status == 404 and "no IKE SA" in json.loads(body)["error"]


def check_exposition(text: str) -> dict[str, tuple[str, list[tuple[str, float]]]]:
    """Prometheus text format 0.0.4, checked line by line; returns name -> (type, samples)."""
    families: dict[str, tuple[str, list[tuple[str, float]]]] = {}
    helped: set[str] = set()
    assert text.endswith("\n")
    name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
    for line in text.splitlines():
        if match := re.fullmatch(rf"# HELP ({name_re}) (.+)", line):
            assert match.group(1) not in helped, f"HELP twice: {line}"
            helped.add(match.group(1))
        elif match := re.fullmatch(rf"# TYPE ({name_re}) (counter|gauge)", line):
            assert match.group(1) in helped and match.group(1) not in families, line
            families[match.group(1)] = (match.group(2), [])
        else:
            match = re.fullmatch(rf'({name_re})(\{{(?:[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*",?)*\}})? (\S+)', line)
            assert match, f"not a sample: {line!r}"
            kind, samples = families[match.group(1)]  # samples follow their TYPE line
            value = float(match.group(3))
            assert value >= 0 if kind == "counter" else True
            samples.append((match.group(2) or "", value))
    for name, (kind, _) in families.items():
        assert name.startswith("ikev2_responder_")
        assert name.endswith("_total") == (kind == "counter"), name
    return families


async def test_metrics_are_prometheus_text_from_the_engines_counters(lab: Lab) -> None:
    with trio.fail_after(TIMEOUT):
        async with await lab.client(Transport.TCP):
            status, headers, body = await get(url(lab, "metrics"))
            stats = lab.engine.stats
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = check_exposition(body.decode())
    assert families["ikev2_responder_ike_sas"] == ("gauge", [("", 1.0)])
    assert families["ikev2_responder_child_sas"] == ("gauge", [("", 1.0)])
    assert ('{state="established"}', 1.0) in families["ikev2_responder_ike_sas_by_state"][1]
    assert families["ikev2_responder_messages_received_total"] == (
        "counter",
        [("", float(stats.messages_in))],
    )
    assert families["ikev2_responder_messages_sent_total"][1] == [("", float(stats.messages_out))]
    assert stats.messages_in == 2 and stats.messages_out == 2
    assert ('{event="accepted"}', 1.0) in families["ikev2_responder_connection_events_total"][1]
    [(labels, _)] = families["ikev2_responder_udp_datagrams_total"][1]
    assert re.fullmatch(r'\{socket="127\.0\.0\.1:\d+"\}', labels)
    for name in ("info", "start_time_seconds", "half_open", "esp_packets_total", "internal_errors_total"):
        assert f"ikev2_responder_{name}" in families


async def test_the_page_and_its_files_come_from_the_package_with_guarding_headers(lab: Lab) -> None:
    with trio.fail_after(TIMEOUT):
        status, headers, body = await get(url(lab))
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        assert b'<script src="console.js"' in body and b"http" not in body.split(b"<body>")[0]
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert headers["cache-control"] == "no-store"
        for name, media in (("console.js", "text/javascript"), ("console.css", "text/css")):
            status, headers, body = await get(url(lab, name))
            assert status == 200 and headers["content-type"].startswith(media) and body
        status, _, _ = await get(url(lab, "console.py"))
        assert status == 404


async def test_on_loopback_a_request_must_name_a_loopback_host(lab: Lab) -> None:
    """A page elsewhere that rebinds its own name to 127.0.0.1 sends that name: refused."""
    port = int(url(lab).rsplit(":", 1)[1].rstrip("/"))
    with trio.fail_after(TIMEOUT):
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            status, _, _ = await get(url(lab, "api/state"), host=host)
            assert status == 200, host
        for host in (f"attacker.example:{port}", "attacker.example"):
            status, _, _ = await get(url(lab, "api/state"), host=host)
            assert status == 400, host


async def test_a_port_in_use_is_a_local_error_naming_the_address() -> None:
    with trio.fail_after(TIMEOUT):
        [busy] = await trio.open_tcp_listeners(0, host=HOST)
        port = busy.socket.getsockname()[1]
        async with open_lab(transports=(Transport.TCP,)) as lab:
            control = control_of(lab)
            with pytest.RaisesGroup(
                pytest.RaisesExc(LocalError, match=rf"^web console on 127\.0\.0\.1:{port}: "),
                flatten_subgroups=True,
            ):
                async with trio.open_nursery() as nursery:
                    await nursery.start(serve_web, WebSettings(HOST, port), control, History())
        await busy.aclose()


async def test_the_console_stops_with_the_server(nursery: trio.Nursery) -> None:
    settings = ServerSettings(listeners=(Listener(Transport.TCP, HOST, 0),), web=WebSettings(HOST, 0))
    shutdown, done = trio.Event(), trio.Event()

    async def run(*, task_status: trio.TaskStatus[ServerInfo]) -> None:
        await serve(settings, task_status=task_status, shutdown=shutdown)
        done.set()

    with trio.fail_after(TIMEOUT):
        info: ServerInfo = await nursery.start(run)
        assert info.web_url is not None
        status, _, _ = await get(info.web_url + "api/state")
        assert status == 200
        shutdown.set()
        await done.wait()
    port = int(info.web_url.rsplit(":", 1)[1].rstrip("/"))
    with pytest.raises(OSError):
        await trio.open_tcp_stream(HOST, port)  # nothing listens any more


async def test_the_state_lists_at_most_sas_shown_and_counts_them_all(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "SAS_SHOWN", 1)
    with trio.fail_after(TIMEOUT):
        async with await lab.client(Transport.TCP) as first, await lab.client(Transport.UDP):
            state = await get_json(url(lab, "api/state"))
    assert [sa["local_spi"] for sa in state["sas"]] == [first.spi_r.hex()]  # the oldest
    assert state["status"]["ike_sas"] == 2
