"""docs/rfc9329-rows.md stays true: its rows, statuses and cited tests against the test tree.

The page is one table, a line per cited test: ``| Row | Level | Status | Test | What it asserts |``,
with the Row cell empty on a row's further test lines.  Checked here: rows A1-A69 each once and
in order, each with a known status; every cited ``tests/...py::name`` is a test function of that
file, with a line saying what it asserts; every row marked tested cites a test; and every
``test_aNN_...`` function of the tree is cited under each row its name carries.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "rfc9329-rows.md"
STATUSES = ("tested", "declined", "not applicable", "satisfied by the OS")
CITED = re.compile(r"^`(tests/[\w/]+\.py)::(test_\w+)`$")
ROW_TEST = re.compile(r"^(?:async )?def (test_a\d+(?:_a\d+)*_\w*)\(", re.MULTILINE)


@attrs.define
class Row:
    number: int
    level: str
    status: str
    tests: list[tuple[str, str, str]] = attrs.Factory(list)  # (file, name, what it asserts)


def table() -> list[Row]:
    rows: list[Row] = []
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("|")]
    assert lines[0].startswith("| Row | Level | Status | Test | What it asserts |"), lines[0]
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip()[1:-1].split("|")]  # no cell holds a "|"
        assert len(cells) == 5, line
        row, level, status, test, what = cells
        if row:
            match = re.fullmatch(r"A(\d+)", row)
            assert match, line
            rows.append(Row(int(match.group(1)), level, status))
        else:
            assert rows and not level and not status, f"a continuation line needs a row above: {line}"
        if test:
            cited = CITED.match(test)
            assert cited, f"not a `tests/FILE.py::test_name` citation: {test}"
            assert what, f"{test} needs a line saying what it asserts"
            rows[-1].tests.append((cited.group(1), cited.group(2), what))
        else:
            assert not what, line
    return rows


def functions(file: str) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)\(", (ROOT / file).read_text(), re.MULTILINE))


def test_every_row_once_in_order_with_a_known_status() -> None:
    rows = table()
    assert [row.number for row in rows] == list(range(1, 70))
    for row in rows:
        assert row.level, f"A{row.number} has no level"
        assert row.status.startswith(STATUSES), f"A{row.number}: unknown status {row.status!r}"
        if row.status.startswith("tested"):
            assert row.tests, f"A{row.number} is marked tested but cites no test"
        if row.status.startswith(("declined", "not applicable", "satisfied")):
            assert ":" in row.status, f"A{row.number} says {row.status!r} without a reason"


def test_every_cited_test_exists() -> None:
    for row in table():
        for file, name, _ in row.tests:
            assert (ROOT / file).is_file(), f"A{row.number}: {file} does not exist"
            assert name in functions(file), f"A{row.number}: {file} has no test {name}"


def test_every_row_named_test_is_cited_under_each_of_its_rows() -> None:
    cited = {(row.number, file, name) for row in table() for file, name, _ in row.tests}
    found = 0
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        file = path.relative_to(ROOT).as_posix()
        for name in ROW_TEST.findall(path.read_text()):
            found += 1
            for number in re.findall(r"_a(\d+)(?=_)", name.removeprefix("test")):
                assert (int(number), file, name) in cited, f"{file}::{name} is not cited under A{number}"
    assert found >= 60  # the tree's row tests were found at all


def test_the_checker_reads_names_as_intended() -> None:
    """``test_a9_a16_a17_ike...`` carries rows 9, 16 and 17; ``test_a25_a30_new...`` 25 and 30."""
    names = ("test_a9_a16_a17_x", "test_a25_a30_a")
    rows = [re.findall(r"_a(\d+)(?=_)", name.removeprefix("test")) for name in names]
    assert rows == [["9", "16", "17"], ["25", "30"]]
    source = "async def test_a1_x(\ndef test_b2_y(\ndef test_a63_z("
    assert ROW_TEST.findall(source) == ["test_a1_x", "test_a63_z"]
