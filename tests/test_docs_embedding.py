"""docs/embedding.md, executed: its ``python`` blocks are this module's tests.

Strategy: the fenced ```` ```python ```` blocks of docs/embedding.md are, in
order, one module.  :func:`doc_source` keeps every line of the Markdown file,
blanking those outside the blocks, so that the code compiles with the doc's own
line numbers (a failure points at ``docs/embedding.md:LINE``); executing it in
this module's namespace makes its ``test_*`` functions (and any fixtures) this
module's, collected and run by pytest-trio like any other test.  So the doc
cannot drift from the code: if an example stops working, its test fails, and
:func:`test_the_doc_still_holds_its_examples` fails if the examples disappear.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "embedding.md"

#: The examples the doc must keep (each is collected from the doc below).
EXPECTED_TESTS = (
    "test_with_the_fixture",
    "test_tcp_and_udp",
    "test_tls",
    "test_observe_and_drive",
    "test_the_program_answers_a_ping",
    "test_graceful_shutdown",
)

_FENCE = re.compile(r"^```(\S*)\s*$")


def doc_source(text: str) -> str:
    """The ``python`` blocks of ``text``, every other line blanked (line numbers kept)."""
    kept: list[str] = []
    language: str | None = None  # inside a fence: its language
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence and language is None:
            language = fence.group(1)
            kept.append("")
        elif fence and line.strip() == "```":
            language = None
            kept.append("")
        else:
            kept.append(line if language == "python" else "")
    return "\n".join(kept) + "\n"


_SOURCE = doc_source(DOC.read_text(encoding="utf-8"))
_DOC_NAMES = set(globals())
exec(compile(_SOURCE, str(DOC), "exec", dont_inherit=True), globals())  # noqa: S102 - our own documentation
_DOC_NAMES = set(globals()) - _DOC_NAMES


def test_the_doc_still_holds_its_examples() -> None:
    assert _SOURCE.count("\n") == DOC.read_text(encoding="utf-8").count("\n")  # line numbers preserved
    for name in EXPECTED_TESTS:
        assert name in _DOC_NAMES, f"docs/embedding.md no longer defines {name}"
        assert callable(globals()[name])


def test_doc_source_keeps_only_python_blocks() -> None:
    text = "intro\n```python\nx = 1\n```\n```\nnot code\n```\n```toml\nkey = 1\n```\n```python\ny = 2\n```\n"
    assert doc_source(text).splitlines() == ["", "", "x = 1", "", "", "", "", "", "", "", "", "y = 2", ""]
