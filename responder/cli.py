"""The ``ikev2-responder`` command.

Until the Trio server lands (issue 5), the command reports what the core
implements: the transforms it can negotiate and the key-exchange methods it can
run, then exits.  The flags of issue 5 (``--tcp``, ``--tls``, ``--udp``,
``--psk``, ``--id``, ...) will be added here without renaming anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from responder import __version__
from responder.core.enums import EncrId
from responder.core.key_exchange import supported_methods
from responder.core.transforms import encryption, supported_integrity, supported_prfs

__all__ = ["main", "supported_transforms_report"]

_ENCRYPTION_CHOICES: tuple[tuple[EncrId, int | None], ...] = (
    (EncrId.AES_GCM_16, 128),
    (EncrId.AES_GCM_16, 256),
    (EncrId.CHACHA20_POLY1305, None),
    (EncrId.AES_CBC, 128),
    (EncrId.AES_CBC, 192),
    (EncrId.AES_CBC, 256),
)


def supported_transforms_report() -> str:
    """A human-readable list of every transform the core implements."""
    lines = [f"ikev2-responder {__version__}: the sans-IO core implements"]
    lines.append("  encryption (ENCR): " + ", ".join(encryption(t, k).name for t, k in _ENCRYPTION_CHOICES))
    lines.append("  pseudorandom functions (PRF): " + ", ".join(p.name for p in supported_prfs()))
    lines.append("  integrity (INTEG): " + ", ".join(i.name for i in supported_integrity()))
    lines.append(
        "  key exchange (KE): "
        + ", ".join(f"{m.name} ({int(m)})" for m in supported_methods())
    )
    lines.append("The network server arrives with the transports issue; nothing is listening yet.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ikev2-responder`` and ``python -m responder``."""
    parser = argparse.ArgumentParser(
        prog="ikev2-responder",
        description="IKEv2 responder with RFC 9329 TCP encapsulation (TLS on 443) and UDP 500/4500.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.parse_args(argv)
    print(supported_transforms_report())
    return 0
