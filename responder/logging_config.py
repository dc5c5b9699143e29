"""How the command's log is set up: text or JSON lines, to stderr or a file, a level per part.

Strategy: ``--log-level LEVEL[,PART=LEVEL...]``, ``--log-file`` and ``--log-format``
become one :class:`LogOptions`; :func:`configure_logging` installs one handler on the
root logger with the format asked for, then sets each part's level.  The short part
names (``engine``, ``streams``, ...) map to the loggers in :data:`LOGGER_PARTS`.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, Final, TextIO

import attrs

__all__ = ["LOGGER_PARTS", "JsonLines", "LogOptions", "configure_logging"]

#: Short names of the loggers ``--log-level ...,PART=LEVEL`` may name.
LOGGER_PARTS: Final = {
    "engine": "responder.server.engine",
    "streams": "responder.server.streams",
    "udp": "responder.server.udp",
    "control": "responder.server.control",
    "serve": "responder.server.serve",
    "router": "responder.server.router",
    "keylog": "responder.server.keylog",
    "cli": "responder.cli",
}


@attrs.frozen
class LogOptions:
    """Where and how the log goes: ``--log-file``, ``--log-format``, ``--log-level``'s per-part levels."""

    file: str | None = None
    format: str = "text"
    levels: tuple[tuple[str, str], ...] = ()


class JsonLines(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(level: str, stream: TextIO | None = None, options: LogOptions | None = None) -> None:
    """Log lines with time, level and logger name to stderr (or ``options.file``), at ``level``
    (a :data:`LOG_LEVELS` name) and the per-part levels of ``options``, as text or JSON lines."""
    options = options or LogOptions()
    handler: logging.Handler
    if options.file is not None:
        handler = logging.FileHandler(options.file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    if options.format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name, part_level in options.levels:
        logging.getLogger(name).setLevel(part_level.upper())
