"""Skip-or-fail policy for interop prerequisites.

Strategy: every interop test states what it needs through :func:`require` and
friends.  Without ``IKEV2_RESPONDER_REQUIRE_INTEROP=1`` a missing tool or
privilege skips the test with a message that names the gap and the command that
closes it; with the variable set (as ``.ci/run`` does) the same gap fails the
test, so a CI machine that lost a package cannot turn green by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = [
    "INSTALL_HINT",
    "LIBRESWAN_PREFIX",
    "interop_required",
    "missing",
    "require",
    "require_root",
    "require_tool",
]

INSTALL_HINT = "run `sudo bash .ci/install-interop` (Debian 12)"
LIBRESWAN_PREFIX = Path(os.environ.get("IKEV2_RESPONDER_LIBRESWAN", "/opt/libreswan"))


def interop_required() -> bool:
    """True when skips must become failures (CI sets the variable)."""
    return os.environ.get("IKEV2_RESPONDER_REQUIRE_INTEROP", "") not in ("", "0")


def missing(what: str, how_to_install: str) -> NoReturn:
    """Skip (or fail, under IKEV2_RESPONDER_REQUIRE_INTEROP=1) naming the gap and its fix."""
    message = f"interop prerequisite missing: {what}; to install: {how_to_install}"
    if interop_required():
        pytest.fail(message + " (IKEV2_RESPONDER_REQUIRE_INTEROP=1 turns this skip into a failure)")
    pytest.skip(message)


def require(condition: bool, what: str, how_to_install: str = INSTALL_HINT) -> None:
    """Skip or fail unless ``condition`` holds."""
    if not condition:
        missing(what, how_to_install)


def require_tool(tool: str, how_to_install: str = INSTALL_HINT) -> str:
    """Return the absolute path of ``tool`` (a name on PATH or an absolute path), or skip/fail."""
    path = tool if os.path.isabs(tool) and os.access(tool, os.X_OK) else shutil.which(tool)
    if path is None:
        missing(f"`{tool}` not found", how_to_install)
    return path


def require_root() -> None:
    """Network namespaces, veth pairs and nftables need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)."""
    require(
        os.geteuid() == 0,
        "root privileges (network namespaces, veth pairs, nftables)",
        "run the tests as root, e.g. `sudo -E .venv/bin/python -m pytest tests/interop`",
    )
