"""attrs validators for configuration values; each failure is a :class:`ConfigError` naming the field.

Strategy: configuration values check themselves when built (a value that
exists is valid), with these small validators.  The error's ``field`` is the
attribute's name; containers prefix their own path (:func:`config_path`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs

from responder.core.errors import ConfigError

__all__ = [
    "ascii_number",
    "check_name",
    "check_text",
    "duplicates",
    "instance_of",
    "is_int",
    "optional_instance_of",
    "positive",
    "positive_int",
    "seconds",
    "tuple_of",
]


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def instance_of(kind: type | tuple[type, ...], what: str) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"expected {what}, got {type(value).__name__}", attribute.name)

    return check


def optional_instance_of(kind: type | tuple[type, ...], what: str) -> Any:
    inner = instance_of(kind, what)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            inner(instance, attribute, value)

    return check


def tuple_of(kind: type | tuple[type, ...], what: str, *, min_size: int = 0) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise ConfigError(f"expected a tuple of {what}, got {type(value).__name__}", attribute.name)
        for index, item in enumerate(value):
            if not isinstance(item, kind) or isinstance(item, bool):
                raise ConfigError(f"expected {what}, got {type(item).__name__}", f"{attribute.name}[{index}]")
        if len(value) < min_size:
            raise ConfigError(f"needs at least {min_size} {what}", attribute.name)

    return check


def check_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {type(value).__name__}", attribute.name)
    if not value:
        raise ConfigError("empty name", attribute.name)
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ConfigError(f"name {value!r} holds whitespace or control characters", attribute.name)


def positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"expected a number, got {type(value).__name__}", attribute.name)
    if not value > 0:
        raise ConfigError(f"must be positive, got {value}", attribute.name)


def check_text(text: object) -> None:
    """Configuration text must be a string that UTF-8 can carry (argv may hold lone surrogates)."""
    if not isinstance(text, str):
        raise ConfigError(f"expected a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{text!r} holds characters UTF-8 cannot encode") from None


def ascii_number(text: str) -> int | None:
    """A decimal number written in ASCII digits (``int()`` also takes other scripts' digits)."""
    if text.isascii() and text.isdigit() and len(text) <= 10:
        return int(text)
    return None


def positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_int(value):
        raise ConfigError(f"expected an integer, got {type(value).__name__}", attribute.name)
    positive(instance, attribute, value)


def duplicates(items: Iterable[object]) -> list[int]:
    """Indexes of items equal to an earlier one."""
    seen: list[object] = []
    found: list[int] = []
    for index, item in enumerate(items):
        if item in seen:
            found.append(index)
        else:
            seen.append(item)
    return found


def seconds(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite, positive duration in seconds (an int or a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"expected a number, got {type(value).__name__}", attribute.name)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"must be a finite number of seconds > 0, got {value}", attribute.name)
