"""``python -m grok_scheduler.cli``: the same entry point as the ``grok-scheduler`` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
