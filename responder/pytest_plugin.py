"""pytest plugin: ``ikev2_lab`` and ``ikev2_lab_factory``, a responder in-process for each test.

Registered through the ``pytest11`` entry point, so installing
ikev2-responder is enough.  Both fixtures need pytest-trio: with
``trio_mode = true`` every async test is a Trio test; without it, mark the
tests ``@pytest.mark.trio``.

* ``ikev2_lab``: a :class:`responder.testing.Lab` with the defaults: TCP,
  TLS (a trustme certificate) and UDP on 127.0.0.1 ephemeral ports, a lab
  PSK for any identity, every event recorded; ``await ikev2_lab.client()``
  gives an established IKE SA.
* ``ikev2_lab_factory``: :func:`responder.testing.open_lab` with the test's
  ``tmp_path``, for labs with arguments:
  ``async with ikev2_lab_factory(config=..., transports=[Transport.UDP]) as lab``.

Importing this module costs nothing else: the responder loads when a fixture is used.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from responder.testing import Lab


@pytest.fixture
def ikev2_lab_factory(tmp_path: Path) -> Callable[..., AbstractAsyncContextManager[Lab]]:
    """``open_lab`` with the test's ``tmp_path`` for the TLS files."""
    from responder.testing import open_lab

    return functools.partial(open_lab, tmp_path)


@pytest.fixture
async def ikev2_lab(ikev2_lab_factory: Callable[..., AbstractAsyncContextManager[Lab]]) -> AsyncIterator[Any]:
    """A responder with the defaults for the test (see :mod:`responder.testing`)."""
    async with ikev2_lab_factory() as lab:
        yield lab
