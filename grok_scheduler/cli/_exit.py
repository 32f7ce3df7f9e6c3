"""How the command ends: its exit statuses and the usage error (a leaf every subcommand uses)."""

from __future__ import annotations

__all__ = ["EXIT_FAILURES", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError"]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with how the command was called: exit status 2."""
