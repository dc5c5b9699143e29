"""``python -m responder``: the same as the ``ikev2-responder`` command."""

from responder.cli import main

raise SystemExit(main())
