"""The sans-IO boundary: nothing under responder/core/ reaches for I/O, clocks or randomness.

An AST scan (not a grep), so aliases and ``from x import y`` forms are caught,
and so is a call of ``os.urandom`` or a key generation method of the library.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "responder" / "core"
FORBIDDEN_MODULES = {"trio", "socket", "time", "logging", "ssl", "secrets", "random", "asyncio", "selectors"}
# Calls that draw randomness or generate keys inside the library on our behalf.
FORBIDDEN_ATTRIBUTES = {"urandom", "generate", "generate_private_key", "generate_parameters", "token_bytes"}


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_has_modules() -> None:
    names = {path.name for path in core_modules()}
    assert {"enums.py", "errors.py", "transforms.py", "keys.py", "sk_payload.py"} <= names


def offences(source: str) -> list[str]:
    """Every forbidden import or call in ``source``, with its line."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            if node.module == "os" and any(a.name == "urandom" for a in node.names):
                found.append(f"line {node.lineno}: from os import urandom")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_module_stays_sans_io(path: Path) -> None:
    assert offences(path.read_text()) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\nx = os.urandom(8)\n", ["line 2: .urandom"]),
        ("import time as t\n", ["line 1: import time"]),
        ("from trio import sleep\n", ["line 1: from trio import ..."]),
        ("from os import urandom\n", ["line 1: from os import urandom"]),
        ("import logging.handlers\n", ["line 1: import logging.handlers"]),
        ("k = X25519PrivateKey.generate()\n", ["line 1: .generate"]),
        ("import hmac\nimport attrs\n", []),
    ],
)
def test_scan_flags_offences(source: str, expected: list[str]) -> None:
    """The scan itself works on known good and bad sources."""
    assert offences(source) == expected
