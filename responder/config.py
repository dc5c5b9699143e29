"""The configuration model, for programs that build a responder in Python.

The values live in :mod:`responder.core.config` (the sans-IO core reads them,
and the core imports nothing from outside itself); this module re-exports the
same objects under the name embedding code has always used::

    from responder.core.config import Config, PeerConfig, IdPattern, Secret
"""

from responder.core.config import *  # noqa: F403 (a re-export: the names are listed in __all__)
from responder.core.config import __all__ as __all__
