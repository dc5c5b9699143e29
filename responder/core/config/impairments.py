"""Lab impairments: deliberate misbehaviour that provokes an initiator's edge cases (issue 13).

Strategy: one frozen :class:`Impairments` value, ``Config.impair``, built from
the ``[impair]`` table or the repeatable ``--impair NAME[=ARG]`` flag through
:meth:`Impairments.with_setting`, which takes both spellings (a TOML value,
or the flag's text) and names the impairment in every error.  Every
impairment is off by default (``false`` in the file) and never on in
production: the server logs one ``IMPAIRMENT ACTIVE`` warning per active one
at start (:meth:`Impairments.describe`).

Who acts on what:

* **the core** (it decides what to answer): ``force_cookie`` (RFC 7296 §2.6,
  in :mod:`~responder.core.endpoint`), ``force_invalid_ke`` (§1.2, §3.10.1, in
  :mod:`~responder.core.exchanges.ike_sa_init`), ``refuse_child`` (§2.21.3,
  in :mod:`~responder.core.exchanges.child` and ``create_child_sa``) and
  ``rekey_collision`` (§2.8.1, §2.25.1, in :mod:`~responder.core.dispatch`);
* **the shell** (it sends what the core decided): ``drop_response``,
  ``delay_response``, ``duplicate_response``, ``corrupt_icv`` and
  ``tcp_close_after`` (:mod:`responder.server.impair`).  They live here too so
  that one value, one table and one flag carry every impairment.

What ``N`` means for the shell's five: the **Message ID** of the peer's
request whose response is impaired, as the log prints it (``IKE_AUTH #1
answered``): 0 is the IKE_SA_INIT response, 1 the IKE_AUTH response, and so
on, counted in every IKE SA (one made by a rekey starts again at 0).  Only
the first transmission of that response is impaired; the copies that the
initiator's retransmissions ask for leave unharmed, so an initiator that
retransmits recovers.  Stateless answers (a COOKIE, INVALID_KE_PAYLOAD or
NO_PROPOSAL_CHOSEN without an SA) and our own requests are never impaired.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import attrs

from responder.core.config.algorithms import algorithm_name, key_exchange_keyword
from responder.core.enums import KeyExchangeId
from responder.core.errors import ConfigError
from responder.core.validation import ascii_number, is_int

__all__ = ["IMPAIRMENT_NAMES", "MESSAGE_ID_MAX", "Impairments", "ResponseDelay"]

MESSAGE_ID_MAX: Final = 2**32 - 1  #: RFC 7296 §3.1: the Message ID is 32 bits
DELAY_MAX: Final = 3600.0  #: the longest ``delay_response`` (seconds); longer is a drop in all but name

_BOOLEAN: Final = ("force_cookie", "refuse_child", "rekey_collision")
_MESSAGE_ID: Final = ("drop_response", "duplicate_response", "corrupt_icv", "tcp_close_after")
#: Every impairment, in the order of the ``[impair]`` table and of the log lines.
IMPAIRMENT_NAMES: Final = (
    "force_cookie",
    "force_invalid_ke",
    "drop_response",
    "delay_response",
    "duplicate_response",
    "corrupt_icv",
    "tcp_close_after",
    "refuse_child",
    "rekey_collision",
)
_ARGUMENT: Final = {
    "force_invalid_ke": "GROUP",
    "delay_response": "N:SECONDS",
    **{name: "N" for name in _MESSAGE_ID},
}
_ON: Final = ("yes", "true", "on")
_OFF: Final = ("no", "false", "off")
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smh]?)\s*")
_UNIT: Final = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def _message_id(value: object, name: str, minimum: int = 0) -> int:
    number = value if is_int(value) else ascii_number(value.strip()) if isinstance(value, str) else None
    if not isinstance(number, int) or not minimum <= number <= MESSAGE_ID_MAX:
        raise ConfigError(f"expected a Message ID {minimum}..{MESSAGE_ID_MAX}, got {value!r}", name)
    return number


@attrs.frozen
class ResponseDelay:
    """``delay_response``: hold our response to Message ID ``message_id`` for ``seconds``."""

    message_id: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> ResponseDelay:
        """``N:SECONDS``, SECONDS with an optional unit: ``1:5``, ``1:2.5s``, ``3:1m``."""
        head, colon, tail = text.partition(":")
        if not colon:
            raise ConfigError(f"expected N:SECONDS (e.g. 1:5s), got {text!r}", "delay_response")
        message_id = _message_id(head, "delay_response")
        match = _DURATION.fullmatch(tail)
        if match is None:
            raise ConfigError(f"expected a duration such as 5, 2.5s or 1m, got {tail!r}", "delay_response")
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
        if not (math.isfinite(seconds) and 0 < seconds <= DELAY_MAX):
            raise ConfigError(
                f"the delay must be > 0 and at most {DELAY_MAX:g} s, got {tail!r}", "delay_response"
            )
        return cls(message_id, seconds)

    def __str__(self) -> str:
        return f"{self.message_id}:{self.seconds:g}s"


@attrs.frozen
class Impairments:
    """The active lab impairments (all off by default); see the module docstring.

    ``force_cookie``: every IKE_SA_INIT request without a valid COOKIE is
    answered with one (RFC 7296 §2.6), on every transport (also TCP and TLS,
    where RFC 9329 §6.3 has a responder not ask for one: that is the edge
    case).  ``force_invalid_ke``: a KEi of another group is answered
    INVALID_KE_PAYLOAD naming this one whenever the proposal chosen allows it
    (RFC 7296 §1.2, §3.10.1).  ``refuse_child``: every new Child SA is
    refused with TS_UNACCEPTABLE, the IKE SA stays (RFC 7296 §2.21.3).
    ``rekey_collision``: when the peer starts rekeying a Child SA or the IKE
    SA, we start rekeying the same SA before we answer, so the two rekeys
    collide and the nonces decide (RFC 7296 §2.8.1, §2.25.1).  The others
    name the Message ID whose response the shell impairs.
    """

    force_cookie: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    force_invalid_ke: KeyExchangeId | None = attrs.field(default=None)
    drop_response: int | None = attrs.field(default=None)
    delay_response: ResponseDelay | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(ResponseDelay))
    )
    duplicate_response: int | None = attrs.field(default=None)
    corrupt_icv: int | None = attrs.field(default=None)
    tcp_close_after: int | None = attrs.field(default=None)
    refuse_child: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    rekey_collision: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @force_invalid_ke.validator
    def _check_group(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and (not isinstance(value, KeyExchangeId) or value.name.startswith("UNKNOWN")):
            raise ConfigError(f"expected a key exchange method, got {value!r}", attribute.name)
        if value == KeyExchangeId.NONE:
            raise ConfigError("NONE is no key exchange method for IKE", attribute.name)

    @drop_response.validator
    @duplicate_response.validator
    @tcp_close_after.validator
    def _check_message_id(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            _message_id(value, attribute.name)

    @corrupt_icv.validator
    def _check_icv(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            if value == 0:
                raise ConfigError(
                    "the IKE_SA_INIT response (Message ID 0) has no ICV; N >= 1", attribute.name
                )
            _message_id(value, attribute.name, 1)

    @property
    def active(self) -> bool:
        """Whether any impairment is on."""
        return self != Impairments()

    def with_setting(self, name: str, value: object) -> Impairments:
        """These impairments with ``name`` set from ``value``.

        ``value`` is a TOML value (``true``, ``1``, ``"ecp256"``, ``"1:5s"``;
        ``false`` turns any impairment off) or the text after ``=`` of
        ``--impair NAME=ARG`` (``True`` for a bare ``--impair NAME``).
        Raises :class:`ConfigError` whose field is ``name``.
        """
        if name not in IMPAIRMENT_NAMES:
            raise ConfigError(f"unknown impairment; known: {', '.join(IMPAIRMENT_NAMES)}", name)
        if isinstance(value, str) and value.strip().lower() in _OFF:
            value = False
        if name in _BOOLEAN:
            if isinstance(value, str) and value.strip().lower() in _ON:
                value = True
            if not isinstance(value, bool):
                raise ConfigError(f"takes no argument (or true/false), got {value!r}", name)
            changes: dict[str, Any] = {name: value}
            return attrs.evolve(self, **changes)
        if value is False:
            off: dict[str, Any] = {name: None}
            return attrs.evolve(self, **off)
        if value is True:
            raise ConfigError(f"needs an argument: {name}={_ARGUMENT[name]}", name)
        setting: Any
        if name == "force_invalid_ke":
            group = key_exchange_keyword(value) if isinstance(value, str) else None
            if group is None:
                raise ConfigError(
                    f"expected a key exchange keyword such as ecp256, x25519 or modp2048, got {value!r}", name
                )
            setting = group
        elif name == "delay_response":
            if not isinstance(value, str):
                raise ConfigError(f'expected a string N:SECONDS (e.g. "1:5s"), got {value!r}', name)
            setting = ResponseDelay.parse(value)
        else:
            setting = _message_id(value, name)
        return attrs.evolve(self, **{name: setting})

    def settings(self) -> list[str]:
        """The active impairments as ``NAME`` or ``NAME=ARG``, in table order."""
        out = []
        for name in IMPAIRMENT_NAMES:
            value = getattr(self, name)
            if value is True:
                out.append(name)
            elif isinstance(value, KeyExchangeId):
                out.append(f"{name}={algorithm_name(value)}")
            elif value is not None and value is not False:
                out.append(f"{name}={value}")
        return out

    def describe(self) -> list[str]:
        """One line per active impairment: its setting and what it does (for the start-up warnings)."""
        what = {
            "force_cookie": "every IKE_SA_INIT without a valid COOKIE is answered with one "
            "(RFC 7296 §2.6), over TCP and TLS too",
            "force_invalid_ke": "a KEi of another group is answered INVALID_KE_PAYLOAD naming "
            f"{algorithm_name(self.force_invalid_ke) if self.force_invalid_ke else ''} (RFC 7296 §1.2)",
            "drop_response": f"our first response to Message ID {self.drop_response} of each IKE SA "
            "is not sent",
            "delay_response": "our first response to Message ID "
            f"{self.delay_response.message_id if self.delay_response else ''} of each IKE SA leaves "
            f"{self.delay_response.seconds if self.delay_response else 0:g} s late",
            "duplicate_response": f"our first response to Message ID {self.duplicate_response} "
            "of each IKE SA is sent twice",
            "corrupt_icv": f"our first response to Message ID {self.corrupt_icv} of each IKE SA leaves "
            "with its ICV corrupted (last octet flipped)",
            "tcp_close_after": f"a TCP/TLS connection is closed after our response to Message ID "
            f"{self.tcp_close_after} of an IKE SA (RFC 9329 §6.1: the initiator reconnects)",
            "refuse_child": "every new Child SA is refused with TS_UNACCEPTABLE; the IKE SA stays",
            "rekey_collision": "a rekey the peer starts meets one of ours of the same SA "
            "(RFC 7296 §2.8.1: the nonces decide)",
        }
        return [f"{setting}: {what[setting.partition('=')[0]]}" for setting in self.settings()]
