"""The exception tree: hierarchy, messages, pickling and redaction."""

from __future__ import annotations

import json
import pickle

import pytest

from grok_scheduler._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AttemptRecord,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    DeadlineExceededError,
    InternalServerError,
    InvalidJobError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestTooLargeError,
    SchedulerClosedError,
    SchedulerError,
    UnprocessableEntityError,
    redact,
)

STATUS_ERRORS = [
    BadRequestError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    UnprocessableEntityError,
    RateLimitError,
    QuotaExhaustedError,
    InternalServerError,
]


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (SchedulerClosedError, SchedulerError),
        (RequestTooLargeError, SchedulerError),
        (DeadlineExceededError, SchedulerError),
        (BudgetExceededError, SchedulerError),
        (InvalidJobError, SchedulerError),
        (InvalidJobError, ValueError),
        (APIError, SchedulerError),
        (APIConnectionError, APIError),
        (APITimeoutError, APIConnectionError),
        (APIResponseValidationError, APIError),
        (APIStatusError, APIError),
        *[(cls, APIStatusError) for cls in STATUS_ERRORS],
    ],
)
def test_hierarchy(child: type[BaseException], parent: type[BaseException]) -> None:
    """Every class sits where the documented tree puts it."""
    assert issubclass(child, parent)


def test_quota_exhaustion_is_not_a_rate_limit() -> None:
    """Code that retries RateLimitError must never catch billing exhaustion."""
    assert not issubclass(QuotaExhaustedError, RateLimitError)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (AuthenticationError, True),
        (QuotaExhaustedError, True),
        (PermissionDeniedError, True),
        (NotFoundError, False),
        (RateLimitError, False),
        (BadRequestError, False),
        (InternalServerError, False),
        (APIConnectionError, False),
    ],
)
def test_fails_every_job_class_flag(cls: type[APIError], expected: bool) -> None:
    """Bad key, no credits and no permission stop a whole run; others fail one job."""
    assert cls("x").fails_every_job is expected


def test_fails_every_job_instance_flag_does_not_leak_to_class() -> None:
    """Marking one NotFoundError as fatal for all jobs leaves other instances alone."""
    marked = NotFoundError("model gone", status_code=404)
    marked.fails_every_job = True
    assert NotFoundError("file gone", status_code=404).fails_every_job is False


def test_api_error_attributes_and_defaults() -> None:
    """APIError keeps what it was given; attempts and history start empty."""
    error = APIStatusError(
        "boom", status_code=500, code="Internal error", request_id="req_1", body={"a": 1}
    )
    assert (error.message, error.status_code, error.code) == ("boom", 500, "Internal error")
    assert (error.request_id, error.body) == ("req_1", {"a": 1})
    assert (error.attempts, error.history) == (0, ())


def test_str_with_status_and_request_id() -> None:
    """str() reads like openai-python's, with the request id appended."""
    error = RateLimitError("slow down", status_code=429, request_id="req_42")
    assert str(error) == "Error code: 429 - slow down (request id: req_42)"


def test_str_without_status() -> None:
    """A connection error has no status code to show."""
    assert str(APIConnectionError("ClientConnectorError: refused")) == (
        "ClientConnectorError: refused"
    )


def test_timeout_has_default_message() -> None:
    """APITimeoutError can be raised bare."""
    assert str(APITimeoutError()) == "Request timed out."


def test_rate_limit_error_retry_after() -> None:
    """RateLimitError carries the server's requested wait and defaults to status 429."""
    error = RateLimitError("limited", retry_after=1.5)
    assert error.retry_after == 1.5
    assert error.status_code == 429
    assert RateLimitError("limited").retry_after is None


def _record(number: int) -> AttemptRecord:
    return AttemptRecord(
        number=number,
        status_code=429,
        error_type="RateLimitError",
        message="limited",
        retry_after=None,
        backoff=0.5,
    )


@pytest.mark.parametrize("cls", [APIError, APIConnectionError, APITimeoutError, *STATUS_ERRORS])
def test_pickle_round_trip(cls: type[APIError]) -> None:
    """Errors survive pickling (multiprocessing) with every attribute intact."""
    error = cls("msg", status_code=429, code="c", request_id="r", body={"error": "e"})
    error.attempts = 3
    error.history = (_record(1), _record(2))
    error.fails_every_job = True
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert (copy.message, copy.status_code, copy.code) == ("msg", 429, "c")
    assert (copy.request_id, copy.body, copy.attempts) == ("r", {"error": "e"}, 3)
    assert copy.history == (_record(1), _record(2))
    assert copy.fails_every_job is True
    assert str(copy) == str(error)


def test_pickle_keeps_retry_after() -> None:
    """RateLimitError's keyword-only retry_after survives pickling."""
    copy = pickle.loads(pickle.dumps(RateLimitError("m", retry_after=2.0)))
    assert copy.retry_after == 2.0


def test_attempt_record_is_frozen() -> None:
    """Attempt records are values: they cannot be changed after the fact."""
    record = _record(1)
    with pytest.raises(AttributeError):
        record.number = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key xai-AbCdEf0123456789xyz leaked", "xai-AbCdEf0123456789xyz"),
        ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("authorization: bearer s3cr3tT0ken", "s3cr3tT0ken"),
        ("openai sk-proj-abcdefghijklmnopqrstu", "sk-proj-abcdefghijklmnopqrstu"),
        ("GET https://user:hunter2@api.x.ai/v1", "hunter2"),
        ("GET https://api.x.ai/v1?api_key=topsecret&x=1", "topsecret"),
    ],
)
def test_redact_masks_secrets(text: str, secret: str) -> None:
    """Keys, bearer tokens and URL credentials never survive redaction."""
    redacted = redact(text)
    assert secret not in redacted
    assert "***" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: xa***b2. You can obtain an API key from console.x.ai.",
        "The model grok-beta was deprecated",
        "xai-short",  # too short to be a key
        "",
    ],
)
def test_redact_leaves_ordinary_text(text: str) -> None:
    """Messages without secrets (including xAI's already-masked key) are unchanged."""
    assert redact(text) == text


def test_redact_keeps_json_parseable() -> None:
    """Masking a token inside a JSON string leaves the JSON valid."""
    text = '{"error": "bad header Bearer abcdefghij", "key": "xai-0123456789abcdef"}'
    parsed = json.loads(redact(text))
    assert parsed == {"error": "bad header Bearer ***", "key": "xai-***"}
