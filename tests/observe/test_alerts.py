"""Alerts in virtual time: each fires once when its condition starts and recovers once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from grok_scheduler._observe._alerts import Alert, AlertMonitor, AlertPolicy

POLICY = AlertPolicy(
    error_rate=0.2,
    error_window=60.0,
    min_calls=20,
    rate_limited_for=30.0,
    max_queue_wait=300.0,
    budget_warn_fraction=0.9,
)


def monitor() -> tuple[AlertMonitor, list[Alert]]:
    """A monitor and the list its callback appends to."""
    seen: list[Alert] = []
    return AlertMonitor(POLICY, on_alert=seen.append), seen


def edges(seen: list[Alert]) -> list[tuple[str, bool]]:
    """(kind, firing) of every alert, in order."""
    return [(alert.kind, alert.firing) for alert in seen]


def test_error_rate_fires_once_at_the_threshold_and_recovers_once() -> None:
    """4 failures in 20 attempts (20%) fire; more failures do not re-fire; successes recover."""
    alerts, seen = monitor()
    now = 0.0
    for index in range(20):
        now = index * 0.5
        alerts.record_call(index % 5 != 0, now)  # every fifth attempt fails: 4 of 20
    assert edges(seen) == [("error_rate", True)]
    assert seen[0].value == pytest.approx(0.2)
    assert seen[0].threshold == 0.2
    assert alerts.active() == frozenset({"error_rate"})
    for _ in range(5):
        now += 0.5
        alerts.record_call(False, now)
    assert edges(seen) == [("error_rate", True)]
    while alerts.active():
        now += 0.5
        alerts.record_call(True, now)
    assert edges(seen) == [("error_rate", True), ("error_rate", False)]
    assert seen[1].value < 0.2
    for _ in range(10):
        now += 0.5
        alerts.record_call(True, now)
    assert len(seen) == 2


def test_error_rate_needs_min_calls() -> None:
    """19 failures out of 19 attempts are not enough evidence; the 20th attempt fires it."""
    alerts, seen = monitor()
    for index in range(19):
        alerts.record_call(False, float(index))
    assert seen == []
    alerts.record_call(True, 19.0)
    assert edges(seen) == [("error_rate", True)]


def test_error_rate_forgets_failures_older_than_the_window() -> None:
    """Failures that slid out of the 60 s window stop counting, so the alert recovers."""
    alerts, seen = monitor()
    for index in range(20):
        alerts.record_call(False, index * 0.1)
    assert alerts.active() == frozenset({"error_rate"})
    alerts.record_call(True, 70.0)
    assert edges(seen) == [("error_rate", True), ("error_rate", False)]


def test_persistent_429s_fire_once_and_a_success_recovers() -> None:
    """429s every second with no success fire at 30 s, once; the next success recovers, once."""
    alerts, seen = monitor()
    for second in range(29):
        alerts.record_rate_limited(float(second))
    assert seen == []
    for second in range(30, 60):
        alerts.record_rate_limited(float(second))
    assert edges(seen) == [("rate_limited", True)]
    assert seen[0].value == 30.0
    assert seen[0].threshold == 30.0
    alerts.record_call(True, 60.0)
    alerts.record_call(True, 61.0)
    assert edges(seen) == [("rate_limited", True), ("rate_limited", False)]
    assert alerts.active() == frozenset()


def test_429s_interleaved_with_successes_do_not_fire() -> None:
    """A success between 429s restarts the streak: work is getting through."""
    alerts, seen = monitor()
    for second in range(120):
        alerts.record_rate_limited(float(second))
        if second % 20 == 19:
            alerts.record_call(True, second + 0.5)
    assert seen == []


def test_429s_separated_by_a_long_quiet_gap_are_separate_episodes() -> None:
    """Two 429s 31 s apart are not 'continuous': no alert."""
    alerts, seen = monitor()
    alerts.record_rate_limited(0.0)
    alerts.record_rate_limited(31.0)
    alerts.record_rate_limited(40.0)
    assert seen == []


def test_a_firing_429_alert_recovers_when_a_new_episode_starts_after_a_gap() -> None:
    """After a long quiet gap the old episode is over: recovered, and the new one starts fresh."""
    alerts, seen = monitor()
    for second in range(31):
        alerts.record_rate_limited(float(second))
    alerts.record_rate_limited(100.0)
    assert edges(seen) == [("rate_limited", True), ("rate_limited", False)]
    alerts.record_rate_limited(130.0)
    assert edges(seen)[-1] == ("rate_limited", True)


def test_429s_do_not_count_toward_the_error_rate() -> None:
    """A 429 storm raises only the rate_limited alert."""
    alerts, seen = monitor()
    for second in range(100):
        alerts.record_rate_limited(float(second))
    assert alerts.active() == frozenset({"rate_limited"})
    assert edges(seen) == [("rate_limited", True)]


def test_queue_wait_fires_above_the_bound_and_recovers_when_back_within() -> None:
    """Exactly 300 s is within the bound; 301 s fires once; 10 s recovers once."""
    alerts, seen = monitor()
    alerts.record_queue_wait(300.0, 0.0)
    assert seen == []
    alerts.record_queue_wait(301.0, 1.0)
    alerts.record_queue_wait(350.0, 50.0)
    assert edges(seen) == [("queue_wait", True)]
    assert seen[0].value == 301.0
    assert seen[0].threshold == 300.0
    alerts.record_queue_wait(10.0, 60.0)
    alerts.record_queue_wait(0.0, 61.0)
    assert edges(seen) == [("queue_wait", True), ("queue_wait", False)]


def test_budget_warns_once_when_nearly_used_and_recovers_below() -> None:
    """89% is fine; 90% fires once; 95% stays quiet; 10% (a new budget) recovers."""
    alerts, seen = monitor()
    alerts.record_budget(0.89, 0.0)
    assert seen == []
    alerts.record_budget(0.9, 1.0)
    alerts.record_budget(0.95, 2.0)
    assert edges(seen) == [("budget", True)]
    assert alerts.active() == frozenset({"budget"})
    alerts.record_budget(0.1, 3.0)
    assert edges(seen) == [("budget", True), ("budget", False)]


def test_alerts_are_independent() -> None:
    """Several kinds fire together; active() lists each until it recovers."""
    alerts, _ = monitor()
    alerts.record_budget(1.0, 0.0)
    alerts.record_queue_wait(1000.0, 0.0)
    assert alerts.active() == frozenset({"budget", "queue_wait"})
    alerts.record_queue_wait(0.0, 1.0)
    assert alerts.active() == frozenset({"budget"})


def test_alerts_log_structlog_events_with_flat_fields() -> None:
    """Firing logs grok_scheduler.alert, recovering grok_scheduler.alert_recovered."""
    alerts = AlertMonitor(POLICY)
    with capture_logs() as logs:
        alerts.record_queue_wait(400.0, 0.0)
        alerts.record_queue_wait(1.0, 1.0)
    events = [entry for entry in logs if entry["event"].startswith("grok_scheduler.alert")]
    assert [entry["event"] for entry in events] == [
        "grok_scheduler.alert",
        "grok_scheduler.alert_recovered",
    ]
    assert events[0]["kind"] == "queue_wait"
    assert events[0]["value"] == 400.0
    assert events[0]["threshold"] == 300.0
    assert events[0]["log_level"] == "warning"
    assert "400" in events[0]["message"]
    assert events[1]["log_level"] == "warning"


def test_a_raising_callback_breaks_nothing() -> None:
    """A hook that raises is logged; the alert still counts as active and recovers normally."""

    def hook(alert: Alert) -> None:
        raise RuntimeError("hook bug")

    alerts = AlertMonitor(POLICY, on_alert=hook)
    with capture_logs() as logs:
        alerts.record_budget(0.95, 0.0)
        assert alerts.active() == frozenset({"budget"})
        alerts.record_budget(0.5, 1.0)
    assert alerts.active() == frozenset()
    failures = [entry for entry in logs if entry["event"] == "grok_scheduler.callback_failed"]
    assert len(failures) == 2
    assert failures[0]["error_type"] == "RuntimeError"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 0.0},
        {"error_rate": 1.2},
        {"error_window": 0.0},
        {"min_calls": 0},
        {"rate_limited_for": -1.0},
        {"max_queue_wait": float("nan")},
        {"budget_warn_fraction": 0.0},
        {"error_rate_clear": 0.0},
        {"error_rate": 0.2, "error_rate_clear": 0.3},
        {"min_refire_interval": -1.0},
        {"min_refire_interval": float("inf")},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    """Invalid thresholds fail at construction."""
    with pytest.raises(ValueError):
        AlertPolicy(**kwargs)  # type: ignore[arg-type]


def test_error_rate_hovering_at_the_threshold_fires_once() -> None:
    """Item 17: a ratio that crosses 20% back and forth every 0.1 s fires once, not each time."""
    alerts, seen = monitor()
    for index in range(20):
        alerts.record_call(index % 5 != 0, index * 0.05)  # 4 of 20 fail: fires at 0.95 s
    assert edges(seen) == [("error_rate", True)]
    now = 0.95
    for step in range(12):  # 1.2 s of ok, fail, ok, fail: the ratio straddles 0.2
        now += 0.1
        alerts.record_call(step % 2 == 0, now)
    assert edges(seen) == [("error_rate", True)]
    assert alerts.active() == frozenset({"error_rate"})


def test_error_rate_recovers_only_below_the_lower_threshold() -> None:
    """Below 20% is not enough: the alert stays firing until the ratio is below 10%."""
    alerts, seen = monitor()
    for index in range(20):
        alerts.record_call(index >= 4, float(index))  # 4 failures first, then 16 ok: 20%
    assert alerts.active() == frozenset({"error_rate"})
    for index in range(20, 26):
        alerts.record_call(True, float(index))  # 4/26 = 15%
    assert alerts.active() == frozenset({"error_rate"})
    assert edges(seen) == [("error_rate", True)]
    index = 26
    while alerts.active():
        alerts.record_call(True, float(index))
        index += 1
    assert index == 41  # 4/41 < 10% (4/40 is exactly 10%, still firing)
    assert edges(seen) == [("error_rate", True), ("error_rate", False)]
    assert seen[1].value < 0.1


def test_an_alert_cannot_fire_again_within_the_refire_interval() -> None:
    """Fired at 1.9 s and recovered: new failures at 20 s stay quiet; failing at 62 s fires."""
    policy = AlertPolicy(error_rate=0.2, error_window=10.0, min_calls=20, min_refire_interval=60.0)
    seen: list[Alert] = []
    alerts = AlertMonitor(policy, on_alert=seen.append)
    for index in range(20):
        alerts.record_call(False, index * 0.1)
    alerts.record_call(True, 15.0)  # the failures left the 10 s window
    assert edges(seen) == [("error_rate", True), ("error_rate", False)]
    for index in range(25):
        alerts.record_call(False, 20.0 + index * 0.1)
    assert edges(seen) == [("error_rate", True), ("error_rate", False)]
    assert alerts.active() == frozenset()
    for index in range(40):  # 52.0 .. 61.75 s: 20+ failures in the window, still too soon
        alerts.record_call(False, 52.0 + index * 0.25)
    assert len(seen) == 2
    alerts.record_call(False, 62.0)
    assert edges(seen) == [("error_rate", True), ("error_rate", False), ("error_rate", True)]
    assert seen[-1].value == 1.0


def test_queue_wait_does_not_flap_either() -> None:
    """A queue wait bouncing around its bound fires once per refire interval, not per bounce."""
    alerts, seen = monitor()
    for second in range(30):
        alerts.record_queue_wait(301.0 if second % 2 == 0 else 299.0, float(second))
    assert edges(seen) == [("queue_wait", True), ("queue_wait", False)]


# No per-example deadline: a loaded 2-core machine can stall one example past 200 ms.
@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 40.0),
            st.sampled_from(["ok", "fail", "429", "wait", "budget"]),
            st.floats(0.0, 1000.0),
        ),
        max_size=300,
    )
)
def test_every_alert_alternates_fire_and_recover(events: list[tuple[float, str, float]]) -> None:
    """For any event sequence, each kind goes fire, recover, fire, ...; active() matches."""
    alerts, seen = monitor()
    now = 0.0
    for gap, action, amount in events:
        now += gap
        if action == "429":
            alerts.record_rate_limited(now)
        elif action == "wait":
            alerts.record_queue_wait(amount, now)
        elif action == "budget":
            alerts.record_budget(amount / 1000.0, now)
        else:
            alerts.record_call(action == "ok", now)
    last: dict[str, bool] = {}
    for alert in seen:
        assert last.get(alert.kind, False) is not alert.firing
        last[alert.kind] = alert.firing
    assert alerts.active() == frozenset(kind for kind, firing in last.items() if firing)
