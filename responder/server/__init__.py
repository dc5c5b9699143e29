"""The Trio shell around the sans-IO core: transports, the engine, ``serve()``.

See :mod:`responder.server.contracts` for how the parts fit together and
:func:`serve` for the entry point.  (``responder.server.serve`` names the
function here; the module of the same name is reached with
``from responder.server.serve import ...``.)
"""

from responder.server.engine import Engine, EngineStats
from responder.server.serve import ServerInfo, serve

__all__ = ["Engine", "EngineStats", "ServerInfo", "serve"]
