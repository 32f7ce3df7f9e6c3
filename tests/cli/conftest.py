"""Fixtures of the command-line tests: every run has an XAI_API_KEY unless a test removes it."""

from __future__ import annotations

import pytest

LOCAL_KEY = "local-simulator-key"
"""Any value does for the simulator; the command line still wants XAI_API_KEY set."""


@pytest.fixture(autouse=True)
def _local_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", LOCAL_KEY)
