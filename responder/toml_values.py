"""Reading TOML values with the key path of every error (the helpers of :mod:`responder.config_file`).

Strategy: each reader takes a value from :mod:`tomllib` and the key path it
came from (``peers.alice.psk``), and either returns it with the type asked for
or raises :class:`~responder.core.config.ConfigError` naming that path; the
context managers translate errors of model objects built from a table into
the file's key paths.  Nothing here knows the file's layout.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from responder.core.config import ConfigError

__all__ = [
    "expect",
    "file_errors",
    "in_table",
    "join_key",
    "named_tables",
    "number",
    "parsed",
    "path_value",
    "renamed",
    "required",
    "strings",
    "type_name",
]

T = TypeVar("T")

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

_TYPE_NAMES: Final[tuple[tuple[type, str], ...]] = (
    (bool, "a boolean"),  # before int: bool is an int subclass
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    (datetime.datetime, "a date-time"),  # before date: datetime is a date subclass
    (datetime.date, "a date"),
    (datetime.time, "a time"),
)


def join_key(path: str, key: str) -> str:
    """``path.key``, the key quoted as TOML would need it (``peers."a b"``)."""
    part = key if _BARE_KEY.fullmatch(key) else json.dumps(key)
    return f"{path}.{part}" if path else part


def type_name(value: object) -> str:
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__  # pragma: no cover - tomllib produces only the types above


def expect(value: object, kind: type[T], what: str, path: str) -> T:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"expected {what}, got {type_name(value)}", path)
    return value


def named_tables(value: object, path: str) -> dict[str, Any]:
    """A table of user-named tables (``[peers.NAME]``); each member is checked by the caller."""
    return expect(value, dict, "a table", path)


def required(table: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in table:
        raise ConfigError("required key is missing", join_key(path, key))
    return table[key]


def strings(value: object, path: str) -> list[str]:
    if isinstance(value, str):
        raise ConfigError(f"expected an array of strings, got a string (write [{json.dumps(value)}])", path)
    items: list[Any] = expect(value, list, "an array of strings", path)
    for index, item in enumerate(items):
        expect(item, str, "a string", f"{path}[{index}]")
    return items


def number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected a number, got {type_name(value)}", path)
    return float(value)


def path_value(value: object, path: str, base_dir: Path | None) -> Path:
    text = expect(value, str, "a string", path)
    if not text:
        raise ConfigError("empty path", path)
    if "\0" in text:
        raise ConfigError("path holds a NUL character", path)
    result = Path(text)
    return result if base_dir is None or result.is_absolute() else base_dir / result


def parsed(parse: Callable[[str], T], text: str, path: str) -> T:
    """``parse(text)``, its error reported at ``path`` (the model's inner field names mean nothing here).

    A plain ``ValueError`` from a parser is a parser that missed a case; the
    user still gets a ConfigError at the right key.
    """
    try:
        return parse(text)
    except ConfigError as exc:
        raise ConfigError(exc.message, path) from None
    except ValueError as exc:
        raise ConfigError(str(exc), path) from None  # no echo of the text: it may be a secret


@contextlib.contextmanager
def in_table(path: str, renames: Mapping[str, str] | None = None) -> Iterator[None]:
    """Errors of a model object built from the table at ``path``, at their file key paths.

    An error about the object's ``name`` is about the table's own key; other
    fields are keys of the table, after ``renames`` (model field -> file key).
    """
    try:
        yield
    except ConfigError as exc:
        head = re.match(r"[^.\[]*", exc.field)
        field_head = head.group() if head else ""
        if field_head == "name":
            raise ConfigError(exc.message, path) from None
        field = exc.field
        if renames and field_head in renames:
            field = renames[field_head] + field[len(field_head) :]
        raise ConfigError(exc.message, field).within(path) from None


@contextlib.contextmanager
def renamed(aliases: Mapping[str, str]) -> Iterator[None]:
    """Report a model error at the file's key path.

    ``aliases`` maps model field paths (``peers[0]``, ``window_size``,
    ``peers[0].name``) to file key paths; the longest one that prefixes the
    error's field is replaced.  A field no alias covers is left as it is.
    """
    try:
        yield
    except ConfigError as exc:
        field = exc.field
        for model in sorted(aliases, key=len, reverse=True):
            if field == model or (field.startswith(model) and field[len(model)] in ".["):
                field = aliases[model] + field[len(model) :]
                break
        raise ConfigError(exc.message, field) from None


@contextlib.contextmanager
def file_errors(path: str) -> Iterator[None]:
    """A file's ConfigError (which names the file) under the key that named it."""
    try:
        yield
    except ConfigError as error:
        if error.field:
            raise
        raise ConfigError(error.message, path) from None
