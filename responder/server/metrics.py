"""``/metrics``: the responder's counters in Prometheus' text exposition format (version 0.0.4).

Strategy: :func:`render_metrics` reads the same live objects the control
socket's ``stats`` and ``status`` answer from (:class:`~responder.server.control.Control`:
the engine's :class:`~responder.server.engine.EngineStats`, the connection
table, each UDP socket) and writes one family per value: ``# HELP``, ``# TYPE``
(``counter`` for what only grows, named ``..._total``; ``gauge`` for what goes
up and down), then its samples.  Names start with :data:`PREFIX`; label values
are escaped as the format asks (backslash, double quote, newline).  Nothing is
cached: a scrape sees the moment it asks.  No client library is needed for a
text this simple, and the format is checked by the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from responder import __version__
from responder.core.ike_sa import IkeSaState
from responder.server.control import Control
from responder.server.history import History
from responder.server.logs import address_port

__all__ = ["CONTENT_TYPE", "PREFIX", "render_metrics"]

PREFIX: Final = "ikev2_responder_"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: EngineStats fields as gauges: (field, help).
_ENGINE_GAUGES: Final = (
    ("ike_sas", "IKE SAs held, half-open ones included"),
    ("half_open", "IKE SAs waiting for IKE_AUTH"),
    ("sa_tasks", "per-SA timer tasks alive"),
    ("connections", "stream connections attached to the engine"),
    ("udp_sockets", "UDP sockets attached to the engine"),
)
#: EngineStats fields as counters: (field, metric name without _total, help).
_ENGINE_COUNTERS: Final = (
    ("messages_in", "messages_received", "IKE messages handed to the core"),
    ("messages_out", "messages_sent", "IKE messages queued on a transport"),
    ("sends_dropped", "sends_dropped", "IKE messages with no transport to take them, or refused by it"),
    ("internal_errors", "internal_errors", "exceptions caught around the core and the observers"),
    ("esp_packets", "esp_packets", "ESP packets received"),
    ("esp_unknown_spi", "esp_unknown_spi", "ESP packets with an SPI of no Child SA of ours"),
    ("closed_corrupt", "connections_closed_corrupt", "connections closed for corrupt input (RFC 9329)"),
    ("closed_orphan", "connections_closed_orphan", "connections closed for carrying no live IKE SA"),
    ("replies_held_back", "replies_held_back", "answers to unprotected messages not sent, over their rate"),
    ("log_lines_held_back", "log_lines_held_back", "log lines held back by the rate limits"),
    ("esp_dropped", "esp_dropped", "ESP packets of our Child SAs that did not open (replay, integrity, ...)"),
    ("echoed", "echo_answered", "echo requests answered by the echo backend"),
    ("inner_dropped", "inner_packets_dropped", "decrypted packets dropped: the API reader fell behind"),
    ("not_selected", "inner_packets_not_selected", "decrypted packets outside their Child SA's selectors"),
    ("tun_no_device", "tun_no_device_dropped", "decrypted packets of TUN-backend Child SAs: no device"),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> list[str]:
    """One metric family: ``# HELP``, ``# TYPE`` and its samples (none: the family still shows)."""
    full = PREFIX + name + ("_total" if kind == "counter" else "")
    lines = [f"# HELP {full} {help_text.replace(chr(92), chr(92) * 2)}", f"# TYPE {full} {kind}"]
    for labels, value in samples:
        number = (
            repr(float(value)) if isinstance(value, float) and not value.is_integer() else str(int(value))
        )
        lines.append(f"{full}{_labels(labels)} {number}")
    return lines


def render_metrics(control: Control, history: History | None = None) -> str:
    """The text a Prometheus scrape of ``/metrics`` gets (ends with a newline)."""
    engine = control.engine
    stats = engine.stats
    sas = list(engine.sas())
    lines: list[str] = []
    lines += _family("info", "gauge", "the responder's version (always 1)", [({"version": __version__}, 1)])
    lines += _family(
        "start_time_seconds", "gauge", "start time, seconds since the Unix epoch", [({}, control.started)]
    )
    for field, help_text in _ENGINE_GAUGES:
        lines += _family(field, "gauge", help_text, [({}, getattr(stats, field))])
    by_state: dict[str, int] = dict.fromkeys((state.value for state in IkeSaState), 0)
    for sa in sas:
        by_state[sa.state.value] += 1
    lines += _family(
        "ike_sas_by_state",
        "gauge",
        "IKE SAs held, by state",
        [({"state": s}, n) for s, n in by_state.items()],
    )
    lines += _family("child_sas", "gauge", "Child SA pairs held", [({}, sum(len(sa.children) for sa in sas))])
    lines += _family(
        "connections_counted",
        "gauge",
        "stream connections counted against the limits",
        [({}, control.table.counted)],
    )
    for field, name, help_text in _ENGINE_COUNTERS:
        lines += _family(name, "counter", help_text, [({}, getattr(stats, field))])
    lines += _family(
        "tun",
        "counter",
        "TUN device counters (packets and octets each way, drops by reason), by counter",
        [({"counter": name}, count) for name, count in sorted(stats.tun.items())],
    )
    lines += _family(
        "connection_events",
        "counter",
        "stream connections accepted, refused, evicted and closed, and frames they carried, by event",
        [({"event": event}, control.table.stats[event]) for event in sorted(control.table.stats)],
    )
    udp_fields = [field.name for field in attrs.fields(type(control.udp[0].stats))] if control.udp else []
    for field in udp_fields:
        samples = [({"socket": address_port(*udp.local)}, getattr(udp.stats, field)) for udp in control.udp]
        lines += _family(f"udp_{field}", "counter", f"UDP socket counter {field}, by socket", samples)
    if history is not None:
        lines += _family(
            "console_sas_forgotten",
            "counter",
            "IKE SAs whose ladder the web console dropped to stay within its bound",
            [({}, history.forgotten)],
        )
    return "\n".join(lines) + "\n"
