"""Reloading the configuration while the server runs (SIGHUP, ``ikev2-responder reload``).

Strategy: a :class:`Reloader` holds the settings the server runs with and a
``load`` function that builds them again from their sources (the CLI reads its
flags and the ``--config`` file anew).  :meth:`Reloader.reload` hands the new
core :class:`~responder.core.config.Config` to the engine, which keeps every
established IKE SA a peer of the new configuration still covers and deletes
the others (:meth:`responder.core.endpoint.Endpoint.reconfigure`).  What only
the Trio shell reads (listeners, TLS files, the key log, connection limits,
log levels, the control socket, the TUN device's ``[tun]`` settings, and
the TUN device itself when a child first asks for ``backend = "tun"``) stays
as it was started: a change there is named in the report and in a warning,
and takes a restart.  A configuration
that does not load changes nothing; its error goes back to the caller and
into the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from responder.core.config import ConfigError
from responder.server.engine import Engine
from responder.server.settings import ServerSettings
from responder.server.tun import tun_children

__all__ = ["ReloadReport", "Reloader"]

logger = logging.getLogger(__name__)


@attrs.frozen
class ReloadReport:
    """What a reload did: IKE SAs kept, our SPIs (hex) of those being deleted, and the settings
    that changed but take a restart."""

    kept: int
    ended: tuple[str, ...]
    restart_needed: tuple[str, ...]

    def __str__(self) -> str:
        text = f"configuration reloaded: {self.kept} IKE SA(s) kept, {len(self.ended)} deleted"
        if self.ended:
            text += f" ({', '.join(self.ended)}: no peer covers them any more)"
        if self.restart_needed:
            text += f"; changed but only at a restart: {', '.join(self.restart_needed)}"
        return text


def _shell_changes(old: ServerSettings, new: ServerSettings) -> tuple[str, ...]:
    """The shell's settings that differ (the control socket's path is the running one's)."""
    changed = []
    for field in attrs.fields(ServerSettings):
        if field.name in ("config", "control_path", "control_optional"):
            continue
        if getattr(old, field.name) != getattr(new, field.name):
            changed.append(field.name)
    if old.config.limits.half_open_ipv6_prefix != new.config.limits.half_open_ipv6_prefix:
        changed.append("half_open_ipv6_prefix")
    if tun_children(new.config) and not tun_children(old.config):
        changed.append('backend = "tun" (the TUN device is made at start)')
    return tuple(changed)


@attrs.define(eq=False)
class Reloader:
    """Reloads ``engine``'s configuration from ``load`` (see the module docstring)."""

    engine: Engine
    settings: ServerSettings
    load: Callable[[], ServerSettings]

    def reload(self, origin: str) -> ReloadReport:
        """Load and apply the configuration again; ``origin`` (``"SIGHUP"``, ``"control"``) is logged.

        Raises :class:`ConfigError` (nothing changed) when the configuration does not load.
        """
        try:
            new = self.load()
        except ConfigError as error:
            logger.error("%s: reload refused, the running configuration stays: %s", origin, error)
            raise
        except Exception as error:  # a reload never ends the server: as a ConfigError for the caller
            logger.error("%s: reload refused, the running configuration stays: %s", origin, error)
            raise ConfigError(f"{type(error).__name__}: {error}") from None
        outcome = self.engine.reconfigure(new.config)
        if outcome is None:
            raise ConfigError("the new configuration could not be applied (see the log)")
        restart = _shell_changes(self.settings, new)
        self.settings = attrs.evolve(self.settings, config=new.config)
        report = ReloadReport(outcome.kept, tuple(spi.hex() for spi in outcome.ended), restart)
        logger.info("%s: %s", origin, report)
        if restart:
            logger.warning("%s: %s changed: restart the responder to apply", origin, ", ".join(restart))
        return report
