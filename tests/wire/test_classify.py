"""Classification of failed calls: the xAI error table, odd bodies, headers and exceptions."""

from __future__ import annotations

import asyncio
import json
import pickle
import socket
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from grok_scheduler._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    UnprocessableEntityError,
)
from grok_scheduler._wire._classify import (
    MAX_BODY_BYTES,
    Verdict,
    carry,
    classify_exception,
    classify_response,
    connection_error,
    parse_error_body,
    timeout_error,
)

INVALID_ARGUMENT = "Client specified an invalid argument"
EXHAUSTED = "Some resource has been exhausted"
UNAVAILABLE = "The service is currently unavailable"


def xai_body(code: str | None, message: str) -> bytes:
    """A flat xAI error body, as seen in real traffic."""
    payload: dict[str, str] = {"error": message}
    if code is not None:
        payload["code"] = code
    return json.dumps(payload).encode()


# status, code, message, expected type, retryable, is_rate_limit, fails_every_job
XAI_TABLE: list[tuple[int, str | None, str, type[APIError], bool, bool, bool]] = [
    (
        400,
        INVALID_ARGUMENT,
        "Incorrect API key provided: xa***b2. You can obtain an API key from https://console.x.ai.",
        AuthenticationError,
        False,
        False,
        True,
    ),
    (
        400,
        INVALID_ARGUMENT,
        "This model's maximum prompt length is 131072 but the request contains 140213 tokens.",
        BadRequestError,
        False,
        False,
        False,
    ),
    (401, None, "Unauthorized", AuthenticationError, False, False, True),
    (401, None, "", AuthenticationError, False, False, True),
    (
        403,
        "The caller does not have permission to execute the specified operation",
        "Your team has either used all available credits or reached its monthly spending limit.",
        QuotaExhaustedError,
        False,
        False,
        True,
    ),
    (
        403,
        "The caller does not have permission to execute the specified operation",
        "Access denied [WKE=team:spending-limit]",
        QuotaExhaustedError,
        False,
        False,
        True,
    ),
    (
        403,
        "The caller does not have permission to execute the specified operation",
        "API key is blocked",
        PermissionDeniedError,
        False,
        False,
        True,
    ),
    (
        404,
        "Some requested entity was not found",
        "The model grok-beta was deprecated on 2025-09-15 and is no longer accessible.",
        NotFoundError,
        False,
        False,
        True,
    ),
    (
        404,
        "Some requested entity was not found",
        "File file_123 not found",
        NotFoundError,
        False,
        False,
        False,
    ),
    (
        422,
        None,
        "Failed to deserialize the JSON body into the target type: messages[0]: missing field",
        UnprocessableEntityError,
        False,
        False,
        False,
    ),
    (
        422,
        EXHAUSTED,
        "The service is temporarily at capacity. Please retry your request shortly.",
        UnprocessableEntityError,
        True,
        False,
        False,
    ),
    (
        429,
        EXHAUSTED,
        "The service is temporarily at capacity. Please retry your request shortly.",
        RateLimitError,
        True,
        False,
        False,
    ),
    (
        429,
        EXHAUSTED,
        "Too many requests: rate limit exceeded for grok-4.3",
        RateLimitError,
        True,
        True,
        False,
    ),
    (
        429,
        EXHAUSTED,
        "Your team abc has either used all available credits or reached its monthly spending "
        "limit. To continue making API requests, please purchase more credits.",
        QuotaExhaustedError,
        False,
        False,
        True,
    ),
    (500, "Internal error", "Internal error", InternalServerError, True, False, False),
    (
        503,
        UNAVAILABLE,
        "The service is currently unavailable. The model is at capacity, please retry.",
        InternalServerError,
        True,
        False,
        False,
    ),
    (503, UNAVAILABLE, "Grammar is too complex.", InternalServerError, False, False, False),
    (405, None, "Method Not Allowed", BadRequestError, False, False, False),
    (413, None, "Payload Too Large", BadRequestError, False, False, False),
    (415, None, "Unsupported Media Type", BadRequestError, False, False, False),
    (408, None, "Request Timeout", APIStatusError, True, False, False),
    (409, None, "Conflict", APIStatusError, True, False, False),
    (502, None, "Bad Gateway", InternalServerError, True, False, False),
    (504, None, "Gateway Timeout", InternalServerError, True, False, False),
    (501, None, "Not Implemented", InternalServerError, True, False, False),
    (418, None, "I'm a teapot", APIStatusError, False, False, False),
]


@pytest.mark.parametrize(
    ("status", "code", "message", "cls", "retryable", "is_rate_limit", "every_job"),
    XAI_TABLE,
)
def test_xai_error_table(
    status: int,
    code: str | None,
    message: str,
    cls: type[APIError],
    retryable: bool,
    is_rate_limit: bool,
    every_job: bool,
) -> None:
    """Each row of the xAI error table gets its documented type and retry decision."""
    verdict = classify_response(status, {}, xai_body(code, message))
    assert type(verdict.error) is cls
    assert verdict.retryable is retryable
    assert verdict.is_rate_limit is is_rate_limit
    assert verdict.error.fails_every_job is every_job
    assert verdict.error.status_code == status
    assert verdict.error.code == code
    if message:
        assert verdict.error.message == message


def test_verdict_is_a_frozen_value() -> None:
    """A verdict cannot be altered by whoever receives it."""
    verdict = classify_response(500, {}, b"")
    with pytest.raises(AttributeError):
        verdict.retryable = False  # type: ignore[misc]


def test_body_and_request_id_are_kept() -> None:
    """The parsed body and the request id reach the error, and show in str()."""
    body = xai_body(INVALID_ARGUMENT, "bad field")
    verdict = classify_response(400, {}, body, request_id="req_9")
    assert verdict.error.body == {"code": INVALID_ARGUMENT, "error": "bad field"}
    assert verdict.error.request_id == "req_9"
    assert str(verdict.error) == "Error code: 400 - bad field (request id: req_9)"


def test_request_id_from_headers() -> None:
    """Without an explicit id, x-request-id is taken from the headers (any case)."""
    verdict = classify_response(500, {"X-Request-Id": "abc"}, b"")
    assert verdict.error.request_id == "abc"


# --- bodies -----------------------------------------------------------------------------------

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (xai_body(INVALID_ARGUMENT, "bad"), (INVALID_ARGUMENT, "bad")),
        (b'{"error": "only a message"}', (None, "only a message")),
        (
            b'{"error": {"message": "Rate limit reached", "type": "requests", '
            b'"code": "rate_limit_exceeded"}}',
            ("rate_limit_exceeded", "Rate limit reached"),
        ),
        (
            b'{"error": {"message": "nested", "type": "invalid_request_error", "code": null}}',
            ("invalid_request_error", "nested"),
        ),
        (b'{"message": "gateway says no"}', (None, "gateway says no")),
        (b'{"detail": [{"loc": ["body"], "msg": "x"}]}', (None, '[{"loc": ["body"], "msg": "x"}]')),
        (b'{"code": 13}', ("13", '{"code": 13}')),
        (b'"just a string"', (None, "just a string")),
        (b"", (None, "")),
        (b"   \n", (None, "")),
        (b"upstream connect error", (None, "upstream connect error")),
        (b"{not json", (None, "{not json")),
        (NGINX_502, (None, "502 Bad Gateway 502 Bad Gateway nginx")),
        (
            b"<html><style>p{color:red}</style><script>var a=1;</script><p>Oops &amp; sorry</p>",
            (None, "Oops & sorry"),
        ),
    ],
)
def test_parse_error_body(body: bytes, expected: tuple[str | None, str]) -> None:
    """Flat, nested, HTML, text and empty bodies all give a code and a readable message."""
    assert parse_error_body(body) == expected


def test_parse_error_body_caps_text_reason() -> None:
    """A long non-JSON body gives a short reason, not the whole page."""
    _, message = parse_error_body(b"<p>" + b"x" * 5000 + b"</p>")
    assert message == "x" * 200


def test_parse_error_body_invalid_utf8() -> None:
    """Invalid UTF-8 is replaced, not fatal."""
    code, message = parse_error_body(b'{"error": "caf\xe9"}')
    assert (code, message) == (None, "caf\ufffd")


def test_parse_error_body_redacts() -> None:
    """A key echoed by a proxy never reaches the message."""
    _, message = parse_error_body(b'{"error": "bad key xai-0123456789abcdefXYZ"}')
    assert message == "bad key xai-***"


def test_stored_body_is_redacted_too() -> None:
    """The stored body is redacted as well as the message."""
    verdict = classify_response(401, {}, b'{"error": "Bearer abcdefghijk rejected"}')
    assert verdict.error.body == {"error": "Bearer *** rejected"}
    assert "abcdefghijk" not in str(verdict.error)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "HTTP 401 Unauthorized"), (502, "HTTP 502 Bad Gateway"), (599, "HTTP 599")],
)
def test_empty_body_falls_back_to_status(status: int, expected: str) -> None:
    """An empty body still gives a message that names the status."""
    verdict = classify_response(status, {}, b"")
    assert verdict.error.message == expected
    assert verdict.error.body is None


def test_html_body_from_proxy() -> None:
    """An HTML 502 from a proxy is a retryable server error with a readable message."""
    verdict = classify_response(502, {"content-type": "text/html"}, NGINX_502)
    assert type(verdict.error) is InternalServerError
    assert verdict.retryable
    assert verdict.error.message.startswith("502 Bad Gateway")
    assert verdict.error.body == NGINX_502.decode()


def test_openai_nested_rate_limit_body() -> None:
    """An OpenAI-shaped 429 is a rate limit whose dimension comes from the message."""
    body = json.dumps(
        {
            "error": {
                "message": "Rate limit reached for gpt-4o on tokens per min (TPM): "
                "Limit 30000, Used 29000, Requested 1500.",
                "type": "tokens",
                "code": "rate_limit_exceeded",
            }
        }
    ).encode()
    verdict = classify_response(429, {}, body)
    assert type(verdict.error) is RateLimitError
    assert verdict.error.code == "rate_limit_exceeded"
    assert (verdict.retryable, verdict.is_rate_limit, verdict.limit_dimension) == (
        True,
        True,
        "tokens",
    )


def test_openai_insufficient_quota_is_billing() -> None:
    """OpenAI's insufficient_quota 429 is billing exhaustion, not a rate limit."""
    body = (
        b'{"error": {"message": "You exceeded your current quota, please check your plan.",'
        b' "type": "insufficient_quota", "code": "insufficient_quota"}}'
    )
    verdict = classify_response(429, {}, body)
    assert type(verdict.error) is QuotaExhaustedError
    assert not verdict.retryable


def test_huge_body_is_capped() -> None:
    """A huge body is decoded and stored only up to the cap."""
    body = b"A" * (MAX_BODY_BYTES * 4)
    verdict = classify_response(500, {}, body)
    assert isinstance(verdict.error.body, str)
    assert len(verdict.error.body) == MAX_BODY_BYTES
    assert len(verdict.error.message) <= 200


def test_deeply_nested_json_does_not_crash() -> None:
    """Pathological JSON nesting is treated as text instead of blowing the stack."""
    body = b"[" * 60000 + b"]" * 60000
    verdict = classify_response(500, {}, body)
    assert verdict.retryable
    assert isinstance(verdict.error, InternalServerError)


# --- 429 details ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "dimension"),
    [
        ("Rate limit exceeded: tokens per minute", "tokens"),
        ("TPM limit reached", "tokens"),
        (
            "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
            "requests",
        ),
        ("RPS limit exceeded", "requests"),
        ("Too Many Requests", None),
        ("rate limit exceeded", None),
    ],
)
def test_limit_dimension_from_message(message: str, dimension: str | None) -> None:
    """The 429 message says which limit was hit; the generic phrase says nothing."""
    verdict = classify_response(429, {}, xai_body(EXHAUSTED, message))
    assert verdict.limit_dimension == dimension


@pytest.mark.parametrize(
    ("headers", "dimension"),
    [
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-remaining-requests": "10"}, "tokens"),
        (
            {"X-RateLimit-Remaining-Requests": "0", "x-ratelimit-remaining-tokens": "900"},
            "requests",
        ),
        ({"x-ratelimit-remaining-tokens": "junk"}, None),
        ({}, None),
    ],
)
def test_limit_dimension_from_headers(headers: dict[str, str], dimension: str | None) -> None:
    """When the message is silent, an exhausted x-ratelimit-remaining-* header names the limit."""
    verdict = classify_response(429, headers, b"")
    assert verdict.limit_dimension == dimension


def test_capacity_429_has_no_dimension() -> None:
    """A capacity 429 is not a rate limit, so it names no limit even if headers do."""
    body = xai_body(EXHAUSTED, "The service is temporarily at capacity.")
    verdict = classify_response(429, {"x-ratelimit-remaining-tokens": "0"}, body)
    assert (verdict.is_rate_limit, verdict.limit_dimension) == (False, None)


@pytest.mark.parametrize(
    "message",
    [
        "Your team has used all available credits.",
        "You have reached your monthly spending limit",
        "blocked: spending-limit",
        "Billing hard limit has been reached",
        "Quota exceeded.",
        "insufficient_quota",
    ],
)
def test_billing_markers(message: str) -> None:
    """Billing exhaustion is recognised case-insensitively in its many phrasings."""
    verdict = classify_response(429, {}, xai_body(EXHAUSTED, message.upper()))
    assert type(verdict.error) is QuotaExhaustedError
    assert not verdict.retryable


def test_windowed_quota_is_a_rate_limit() -> None:
    """A per-minute "quota exceeded" from a gateway is a rate limit, not billing."""
    verdict = classify_response(429, {}, b'{"error": "Quota exceeded: requests per minute"}')
    assert type(verdict.error) is RateLimitError
    assert verdict.is_rate_limit and verdict.limit_dimension == "requests"


def test_402_payment_required_is_billing() -> None:
    """A 402 about payment is billing exhaustion too."""
    verdict = classify_response(402, {}, b'{"error": "Payment required"}')
    assert type(verdict.error) is QuotaExhaustedError


# --- headers ----------------------------------------------------------------------------------


def test_retry_after_on_rate_limit() -> None:
    """retry-after reaches both the verdict and RateLimitError.retry_after."""
    verdict = classify_response(429, {"Retry-After": "7"}, b"")
    assert verdict.retry_after == 7.0
    assert isinstance(verdict.error, RateLimitError)
    assert verdict.error.retry_after == 7.0


def test_retry_after_ms_on_server_error() -> None:
    """retry-after-ms is read on any status, not just 429."""
    verdict = classify_response(503, {"retry-after-ms": "250"}, b"")
    assert verdict.retry_after == 0.25


def test_retry_after_absent() -> None:
    """No header means the server said nothing about waiting."""
    assert classify_response(429, {}, b"").retry_after is None


def test_headers_from_aiohttp_multidict() -> None:
    """aiohttp's case-insensitive header proxy works as input."""
    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": "3", "X-Should-Retry": "false"}))
    verdict = classify_response(500, headers, b"")
    assert (verdict.retry_after, verdict.retryable) == (3.0, False)


@pytest.mark.parametrize(
    ("status", "body", "header", "retryable"),
    [
        (500, b"", "false", False),
        (400, xai_body(INVALID_ARGUMENT, "bad field"), "true", True),
        (429, b"", "false", False),
        (404, b"", "TRUE", True),
        (500, b"", "maybe", True),  # unreadable: status decides
        # Bad key and billing are fatal whatever the server says.
        (400, xai_body(INVALID_ARGUMENT, "Incorrect API key provided: xa***b2"), "true", False),
        (429, xai_body(EXHAUSTED, "used all available credits"), "true", False),
        (403, xai_body(None, "monthly spending limit reached"), "true", False),
        (401, b"", "true", False),
    ],
)
def test_x_should_retry_overrides(status: int, body: bytes, header: str, retryable: bool) -> None:
    """x-should-retry overrides the status, except for a bad key or billing exhaustion."""
    verdict = classify_response(status, {"x-should-retry": header}, body)
    assert verdict.retryable is retryable


def test_should_retry_false_on_rate_limit_still_slows_the_pool() -> None:
    """A 429 the server says not to retry is still a rate-limit signal."""
    verdict = classify_response(429, {"x-should-retry": "false"}, b"")
    assert (verdict.retryable, verdict.is_rate_limit) == (False, True)


@given(
    status=st.integers(min_value=100, max_value=599),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "retry-after",
                "Retry-After-Ms",
                "x-should-retry",
                "x-request-id",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-remaining-requests",
            ]
        )
        | st.text(max_size=20),
        st.text(max_size=40),
        max_size=6,
    ),
    body=st.binary(max_size=2000)
    | st.builds(
        lambda v: json.dumps(v).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=30),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["error", "code", "message", "type", "detail"]) | st.text(),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ),
    ),
)
def test_classify_response_never_raises(status: int, headers: dict[str, str], body: bytes) -> None:
    """Any status, headers and body give a verdict with an APIError carrying that status."""
    verdict = classify_response(status, headers, body)
    assert isinstance(verdict, Verdict)
    assert isinstance(verdict.error, APIStatusError)
    assert verdict.error.status_code == status
    assert verdict.error.message
    assert verdict.is_rate_limit is False or status == 429


# --- exceptions -------------------------------------------------------------------------------
# aiohttp's own exceptions are mapped by the aiohttp transport: tests/transports/.


@pytest.mark.parametrize(
    ("exc", "cls", "retryable"),
    [
        (TimeoutError(), APITimeoutError, True),  # asyncio.TimeoutError is this class
        (TimeoutError("read"), APITimeoutError, True),
        (ConnectionResetError(104, "reset"), APIConnectionError, True),
        (ConnectionRefusedError(111, "refused"), APIConnectionError, True),
        (socket.gaierror(-2, "Name or service not known"), APIConnectionError, True),
        (OSError(113, "No route to host"), APIConnectionError, True),
        (ssl.SSLError(1, "handshake failure"), APIConnectionError, True),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), APIConnectionError, False),
        (ValueError("programming error"), APIConnectionError, False),
        (TypeError("programming error"), APIConnectionError, False),
        (asyncio.CancelledError(), APIConnectionError, False),
    ],
)
def test_classify_exception(exc: BaseException, cls: type[APIError], retryable: bool) -> None:
    """Timeouts and connection failures retry; certificates and programming errors do not."""
    verdict = classify_exception(exc)
    assert type(verdict.error) is cls
    assert verdict.retryable is retryable
    assert type(exc).__name__ in verdict.error.message
    assert (verdict.retry_after, verdict.limit_dimension, verdict.is_rate_limit) == (
        None,
        None,
        False,
    )


def test_exception_message_hides_url_credentials() -> None:
    """A URL with credentials in an exception never reaches the message."""
    verdict = classify_exception(OSError("cannot reach https://me:hunter2@api.x.ai/?api_key=xyz"))
    assert "hunter2" not in verdict.error.message
    assert "xyz" not in verdict.error.message


def test_exception_with_broken_str() -> None:
    """An exception whose __str__ raises is still classified."""

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    verdict = classify_exception(Broken())
    assert verdict.error.message == "Broken"


@pytest.mark.parametrize(
    ("error", "retryable", "is_rate_limit"),
    [
        (APITimeoutError(), True, False),
        (APIConnectionError("x"), True, False),
        (InternalServerError("x", status_code=500), True, False),
        (APIStatusError("x", status_code=408), True, False),
        (RateLimitError("x", retry_after=1.0), True, True),
        (BadRequestError("x", status_code=400), False, False),
        (QuotaExhaustedError("x", status_code=429), False, False),
        (APIResponseValidationError("x", status_code=200), False, False),
    ],
)
def test_already_typed_errors_pass_through(
    error: APIError, retryable: bool, is_rate_limit: bool
) -> None:
    """An error the transport already typed keeps its identity and gets a sensible verdict."""
    verdict = classify_exception(error)
    assert verdict.error is error
    assert (verdict.retryable, verdict.is_rate_limit) == (retryable, is_rate_limit)


@pytest.mark.parametrize("retryable", [True, False])
def test_connection_error_carries_its_verdict(retryable: bool) -> None:
    """A transport's connection error is classified with the verdict the transport gave it."""
    error = connection_error(
        ConnectionResetError(104, "reset by xai-0123456789abcdefXYZ"), retryable=retryable
    )
    verdict = classify_exception(error)
    assert verdict.error is error
    assert type(error) is APIConnectionError
    assert error.message == "ConnectionResetError: [Errno 104] reset by xai-***"
    assert (verdict.retryable, verdict.retry_after, verdict.is_rate_limit) == (
        retryable,
        None,
        False,
    )


def test_timeout_error_carries_a_retry() -> None:
    """A transport's timeout reads like a timeout classified here, and is retried."""
    error = timeout_error(TimeoutError("read"))
    verdict = classify_exception(error)
    assert type(error) is APITimeoutError
    assert error.message == classify_exception(TimeoutError("read")).error.message
    assert verdict.error is error
    assert verdict.retryable is True


def test_carried_response_verdict_is_returned_whole() -> None:
    """A response verdict a transport raised comes back whole (a 422 at capacity retries)."""
    original = classify_response(
        422, {}, xai_body(EXHAUSTED, "The service is temporarily at capacity.")
    )
    assert original.retryable is True
    error = carry(original)
    assert classify_exception(error) == original


def test_carried_verdict_survives_pickling() -> None:
    """An error sent to another process keeps the verdict it carries."""
    error = connection_error(ConnectionResetError(104, "reset"), retryable=False)
    copy = pickle.loads(pickle.dumps(error))
    assert classify_exception(copy).retryable is False
