"""The web console in a real headless browser (Debian's chromium), against the real command.

``ikev2-responder --web 127.0.0.1:0`` runs as a subprocess with TCP and UDP
listeners; the project's initiator makes a TCP IKE SA with a Child SA, a
childless UDP one, one it then deletes, and one IKE_SA_INIT the responder
refuses.  chromium loads the console and its scripts run (``--dump-dom``
prints the DOM once the page has settled): the table must show the SA and
the ladder its IKE_SA_INIT and IKE_AUTH in both directions.  A screenshot of
the same page is checked as a PNG; with ``IKEV2_RESPONDER_UPDATE_SCREENSHOT=1``
it replaces ``docs/images/web-console.png``, the one docs/running.md shows.

Without chromium the test is skipped, saying how to install it; under
``IKEV2_RESPONDER_REQUIRE_INTEROP=1`` (CI, which installs it through
``.ci/install-interop``) that skip is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import trio

from responder.client import establish
from responder.core.config import Config, Secret
from responder.core.path import Transport
from tests.fakes.pair import child_request, initiator_settings
from tests.interop.require import require_tool

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOT = ROOT / "docs" / "images" / "web-console.png"
PSK = "browser test lab key, long enough"
END = b"===== end ====="
IKE = "aes256gcm16-prfsha256-x25519"
START_TIMEOUT = 30.0
BROWSER_TIMEOUT = 90.0
CHROMIUM_HINT = "apt-get install chromium (Debian; .ci/install-interop installs it)"


async def start_responder(log: Path) -> tuple[trio.Process, str]:
    """The command with TCP, UDP and the console on free ports; returns once its banner is out."""
    argv = [sys.executable, "-m", "responder", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"]
    argv += ["--web", "127.0.0.1:0", "--psk", PSK, "--id", "@responder.lab", "--no-control"]
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(START_TIMEOUT):
            while END not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"exited early: {log.read_text()}"
                output += chunk
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process, output.decode()


async def chromium(browser: str, profile: Path, url: str, *options: str) -> str:
    """Run headless chromium on ``url`` until its virtual clock has run 5 s; its stdout."""
    argv = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    argv += [f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--hide-scrollbars", *options, url]
    result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode()


async def test_the_console_shows_an_established_sa_and_its_ladder_in_chromium(tmp_path: Path) -> None:
    browser = require_tool("chromium", CHROMIUM_HINT)
    log = tmp_path / "responder.log"
    process, banner = await start_responder(log)
    try:
        web = re.search(r"^web console on (http://127\.0\.0\.1:\d+/)  ", banner, re.MULTILINE)
        tcp = re.search(r"^listening on tcp://127\.0\.0\.1:(\d+)", banner, re.MULTILINE)
        udp = re.search(r"^listening on udp://127\.0\.0\.1:(\d+)", banner, re.MULTILINE)
        assert web and tcp and udp, banner
        url = web.group(1)
        settings = initiator_settings(IKE, child_request(), psk=Secret(PSK.encode()))
        with trio.fail_after(30):
            shown = await establish(settings, Config(), Transport.TCP, "127.0.0.1", int(tcp.group(1)))
            childless = initiator_settings(IKE, psk=Secret(PSK.encode()))
            udp_sa = await establish(childless, Config(), Transport.UDP, "127.0.0.1", int(udp.group(1)))
            gone = await establish(childless, Config(), Transport.UDP, "127.0.0.1", int(udp.group(1)))
            assert shown.established and udp_sa.established and gone.established
            assert await gone.delete()
            await gone.aclose()
            refused = initiator_settings("aes128-sha256-ecp521", psk=Secret(PSK.encode()))  # not ours
            nothing = await establish(refused, Config(), Transport.UDP, "127.0.0.1", int(udp.group(1)))
            assert not nothing.established
            await nothing.aclose()
        local_spi = shown.spi_r.hex()  # the responder's SPI: its key for the SA
        with trio.fail_after(BROWSER_TIMEOUT):
            dom = await chromium(browser, tmp_path / "profile", f"{url}#{local_spi}", "--dump-dom")
            shot = tmp_path / "web-console.png"
            await chromium(
                browser,
                tmp_path / "profile",
                f"{url}#{local_spi}",
                f"--screenshot={shot}",
                "--window-size=1280,800",
            )
        await shown.aclose()
        await udp_sa.aclose()
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    # The table: the SA, established, with the peer's identity; the deleted one among the closed.
    row = re.search(rf'<tr data-spi="{local_spi}"[^>]*>(.*?)</tr>', dom, re.DOTALL)
    assert row, dom
    cells = re.sub(r"<[^>]+>", "", row.group(1))  # the text, as copied from the page
    assert f"{shown.spi_i.hex()} / {local_spi}" in cells and "established" in cells and "alice@" in cells
    assert 'class="selected"' in row.group(0)
    closed = re.search(r'<table id="closed">.*?</table>', dom, re.DOTALL)
    assert closed and gone.spi_i.hex() in closed.group(0)
    assert re.search(r'<table id="refusals">.*NO_PROPOSAL_CHOSEN.*</table>', dom, re.DOTALL)
    # The ladder of the SA picked in the URL: both messages of both exchanges, with their payloads.
    ladder = re.search(r'<ol id="ladder">(.*?)</ol>', dom, re.DOTALL)
    assert ladder, dom
    rows = re.findall(
        r'<li class="(in|out)" data-exchange="([A-Z_]+)" data-message-id="(\d+)">', ladder.group(1)
    )
    assert rows[:4] == [
        ("in", "IKE_SA_INIT", "0"),
        ("out", "IKE_SA_INIT", "0"),
        ("in", "IKE_AUTH", "1"),
        ("out", "IKE_AUTH", "1"),
    ]
    assert '<span class="payload notify">N(NAT_DETECTION_SOURCE_IP)</span>' in ladder.group(1)
    assert '<span class="payload">IDi</span>' in ladder.group(1)  # decrypted: it travels inside SK
    assert "IKE SA established" in ladder.group(1)
    assert "not updating" not in dom

    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(png) < 400_000
    if os.environ.get("IKEV2_RESPONDER_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    assert re.search(
        r"INFO +responder\.server\.web: web console on http://127\.0\.0\.1:\d+/$", text, re.MULTILINE
    )
