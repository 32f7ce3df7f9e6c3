"""``python -m grok_scheduler.simulator --port 8000 ...``"""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
