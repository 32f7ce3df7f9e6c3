"""Header triples read together: the limit a response states, whatever its window."""

from __future__ import annotations

import pytest

from grok_scheduler._wire._header_limits import header_limits
from grok_scheduler._wire._headers import parse_rate_limit_headers
from grok_scheduler._wire._windows import ClientCount


@pytest.mark.parametrize(
    ("headers", "seen", "requests_per_second", "tokens_per_minute"),
    [
        pytest.param(
            # The independent check's server: 20 per SECOND, after 20 accepted in one second.
            {
                "x-ratelimit-limit-requests": "20",
                "x-ratelimit-remaining-requests": "19",
                "x-ratelimit-reset-requests": "50ms",
            },
            ClientCount(20, 1.0),
            20.0,
            None,
            id="one-second window",
        ),
        pytest.param(
            # OpenAI: 500 per minute, one request comes back every 120 ms.
            {
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "499",
                "x-ratelimit-reset-requests": "120ms",
                "x-ratelimit-limit-tokens": "150000",
                "x-ratelimit-remaining-tokens": "149000",
                "x-ratelimit-reset-tokens": "400ms",
            },
            None,
            500 / 60,
            150000.0,
            id="openai per minute",
        ),
        pytest.param(
            # Groq-like: a request limit per day.
            {
                "x-ratelimit-limit-requests": "14400",
                "x-ratelimit-remaining-requests": "14370",
                "x-ratelimit-reset-requests": "2m59.56s",
            },
            None,
            14400 / 86400,
            None,
            id="per day",
        ),
        pytest.param(
            # IETF states its window.
            {"RateLimit-Policy": '"burst";q=30;w=1', "RateLimit": '"burst";r=29;t=1'},
            None,
            30.0,
            None,
            id="ietf stated",
        ),
        pytest.param(
            # A full bucket says nothing of its refill: nothing is assumed.
            {
                "x-ratelimit-limit-requests": "600",
                "x-ratelimit-remaining-requests": "600",
                "x-ratelimit-reset-requests": "0s",
            },
            None,
            None,
            None,
            id="full bucket",
        ),
    ],
)
def test_windows_are_read_from_the_triple(
    headers: dict[str, str],
    seen: ClientCount | None,
    requests_per_second: float | None,
    tokens_per_minute: float | None,
) -> None:
    """Each family's limit becomes the rate its own numbers show, not a convention."""
    stated = header_limits(parse_rate_limit_headers(headers), requests_seen=seen)
    if requests_per_second is None:
        assert stated.requests_per_second is None
    else:
        assert stated.requests_per_second == pytest.approx(requests_per_second, rel=1e-6)
    if tokens_per_minute is None:
        assert stated.tokens_per_minute is None
    else:
        assert stated.tokens_per_minute == pytest.approx(tokens_per_minute, rel=1e-6)
