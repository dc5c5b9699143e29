"""ikev2-responder: an IKEv2 responder on Trio, centred on RFC 9329 TCP encapsulation.

The package is split the way h11 and aioquic split theirs:

* :mod:`responder.core` is the sans-IO protocol core: wire codec, transforms,
  key schedule and (later) the IKE SA state machine.  It never touches sockets,
  clocks or the system's randomness; they are handed to it.
* :mod:`responder.server` (later issues) is the Trio shell that owns the
  sockets, the tasks and the clock.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
