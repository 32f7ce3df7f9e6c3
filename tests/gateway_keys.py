"""Keys of the gateway and transport tests (never real keys)."""

from __future__ import annotations

KEY = "xai-GATEWAYtestKEY0123456789abcdef"
CLIENT_KEY = "gw-client-key-0123456789"
