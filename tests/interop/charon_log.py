"""Parse charon file logs, in particular the level-4 hex dumps of key material.

Strategy: with ``ike_name = yes`` every line reads
``HH:MM:SS TT[GRP] <conn|N> text``; ``%B`` values appear as a header line
``label => N bytes @ 0xADDR`` followed by dump lines ``  OFF: XX XX ...  ascii``
from the same thread.  :func:`parse` turns a log into ordered :class:`LogLine`
and :class:`Dump` records; the harvest picks values by label and order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Dump", "LogLine", "dumps", "parse"]

_LINE = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d) (?P<thread>\d+)\[(?P<group>[A-Z]+)\] "
    r"(?:<(?P<sa>[^>]*)> )?(?P<text>.*)$"
)
_HEADER = re.compile(r"^(?P<label>.*\S) => (?P<size>\d+) bytes @ (?:0x)?[0-9a-fA-F]+$")
_DUMP = re.compile(r"^\s*(?P<offset>\d+): (?P<hex>(?:[0-9A-F]{2} ?){1,16})")


@dataclass
class LogLine:
    index: int
    time: str
    thread: int
    group: str
    sa: str | None
    text: str


@dataclass
class Dump:
    """One ``%B`` hex dump: ``label`` and its bytes, with the line it started on."""

    index: int
    thread: int
    group: str
    sa: str | None
    label: str
    size: int
    data: bytearray = field(default_factory=bytearray)

    @property
    def complete(self) -> bool:
        return len(self.data) >= self.size

    def hex(self) -> str:
        return bytes(self.data).hex()


def parse(text: str) -> tuple[list[LogLine], list[Dump]]:
    """All log lines (dump lines excluded) and all hex dumps, in log order."""
    lines: list[LogLine] = []
    dumps_out: list[Dump] = []
    open_dumps: dict[int, Dump] = {}
    for index, raw in enumerate(text.splitlines()):
        match = _LINE.match(raw)
        if match is None:
            continue
        thread = int(match["thread"])
        body = match["text"]
        pending = open_dumps.get(thread)
        if pending is not None:
            dm = _DUMP.match(body)
            if dm is not None and int(dm["offset"]) == len(pending.data):
                pending.data += bytes.fromhex(dm["hex"].replace(" ", ""))
                del pending.data[pending.size :]
                if pending.complete:
                    del open_dumps[thread]
                continue
            del open_dumps[thread]  # an interrupted dump stays incomplete
        header = _HEADER.match(body)
        if header is not None:
            dump = Dump(
                index, thread, match["group"], match["sa"], header["label"].strip(), int(header["size"])
            )
            dumps_out.append(dump)
            if dump.size:
                open_dumps[thread] = dump
            continue
        lines.append(LogLine(index, match["time"], thread, match["group"], match["sa"], body))
    return lines, dumps_out


def dumps(items: Iterable[Dump], label: str) -> list[bytes]:
    """The complete dumps called ``label``, in order."""
    return [bytes(d.data) for d in items if d.label == label and d.complete]
