"""The budget guard refuses jobs before they would over-spend tokens or money."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grok_scheduler import BudgetExceededError
from grok_scheduler._guards._budget import Budget

TICKS_PER_USD = 10_000_000_000


def test_no_limits_accept_everything() -> None:
    """A budget with no maximum never refuses and reports 0% used."""
    budget = Budget()
    budget.reserve(10**9)
    budget.settle(10**9, 10**9, 10**12)
    assert budget.used_fraction == 0.0


def test_token_budget_raises_before_overspending() -> None:
    """Reservations fill the budget exactly; one more token is refused and reserves nothing."""
    budget = Budget(max_tokens=1000)
    budget.reserve(600)
    budget.reserve(400)
    with pytest.raises(BudgetExceededError, match="1000-token budget"):
        budget.reserve(1)
    assert budget.reserved_tokens == 1000


def test_settling_frees_what_the_answer_did_not_use() -> None:
    """A 600-token reservation that used 100 leaves room for 900 more."""
    budget = Budget(max_tokens=1000)
    budget.reserve(600)
    budget.settle(600, 100, None)
    assert budget.used_tokens == 100
    assert budget.reserved_tokens == 0
    budget.reserve(900)
    with pytest.raises(BudgetExceededError):
        budget.reserve(1)


def test_release_returns_a_reservation_unused() -> None:
    """A job cancelled before sending gives its whole reservation back."""
    budget = Budget(max_tokens=1000)
    budget.reserve(1000)
    budget.release(1000)
    assert budget.reserved_tokens == 0
    assert budget.used_tokens == 0
    budget.reserve(1000)


def test_cost_budget_projects_from_the_average_cost_per_token() -> None:
    """$1 budget, $0.60 spent on 600 tokens ($0.001/token): 400 more fit, 401 do not."""
    budget = Budget(max_cost_usd=1.0)
    budget.reserve(600)  # no cost seen yet: nothing to project from
    budget.settle(600, 600, 6 * TICKS_PER_USD // 10)
    assert budget.cost_usd == pytest.approx(0.6)
    with pytest.raises(BudgetExceededError, match=r"\$1 budget"):
        budget.reserve(401)
    budget.reserve(400)


def test_cost_projection_counts_jobs_in_flight() -> None:
    """Reserved tokens of jobs in flight are costed too, so concurrency cannot sneak past."""
    budget = Budget(max_cost_usd=1.0)
    budget.reserve(500)
    budget.settle(500, 500, TICKS_PER_USD // 2)  # $0.001 per token
    budget.reserve(300)
    with pytest.raises(BudgetExceededError):
        budget.reserve(300)
    budget.reserve(200)


def test_answers_without_a_cost_do_not_skew_the_average() -> None:
    """Tokens whose answer reported no cost are left out of the cost-per-token average."""
    budget = Budget(max_cost_usd=1.0)
    budget.settle(0, 10_000, None)
    budget.settle(0, 100, TICKS_PER_USD // 10)  # $0.001 per token
    with pytest.raises(BudgetExceededError):
        budget.reserve(901)
    budget.reserve(900)


def test_used_fraction_is_the_larger_dimension() -> None:
    """Half the tokens but 80% of the money used reports 0.8."""
    budget = Budget(max_tokens=1000, max_cost_usd=1.0)
    budget.reserve(500)
    budget.settle(500, 500, 8 * TICKS_PER_USD // 10)
    assert budget.used_fraction == pytest.approx(0.8)
    tokens_only = Budget(max_tokens=1000)
    tokens_only.settle(0, 250, 10**12)
    assert tokens_only.used_fraction == pytest.approx(0.25)


def test_a_spent_cost_budget_refuses_even_without_an_average() -> None:
    """Cost reported with zero tokens past the budget still stops further jobs."""
    budget = Budget(max_cost_usd=0.5)
    budget.settle(0, 0, TICKS_PER_USD)
    with pytest.raises(BudgetExceededError):
        budget.reserve(1)


def test_repr_shows_configuration_and_state() -> None:
    """repr names the limits and what is used and reserved."""
    budget = Budget(max_tokens=1000)
    budget.reserve(10)
    assert repr(budget) == (
        "Budget(max_tokens=1000, max_cost_usd=None, used_tokens=0, reserved_tokens=10, "
        "cost_usd=0.0000)"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tokens": 0},
        {"max_tokens": True},
        {"max_cost_usd": 0.0},
        {"max_cost_usd": float("inf")},
    ],
)
def test_rejects_nonsense_limits(kwargs: dict[str, object]) -> None:
    """Zero, infinite or boolean limits fail at construction."""
    with pytest.raises(ValueError):
        Budget(**kwargs)  # type: ignore[arg-type]


# No per-example deadline: a loaded 2-core machine can stall one example past 200 ms.
@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.floats(0.0, 1.0), st.booleans()),
        max_size=100,
    )
)
def test_tokens_never_pass_the_budget(jobs: list[tuple[int, float, bool]]) -> None:
    """Whatever the jobs, used + reserved never exceeds max_tokens when answers stay in estimate."""
    budget = Budget(max_tokens=2000)
    in_flight: list[int] = []
    for estimate, used_share, finish_one in jobs:
        try:
            budget.reserve(estimate)
            in_flight.append(estimate)
        except BudgetExceededError:
            assert budget.used_tokens + budget.reserved_tokens + estimate > 2000
        if finish_one and in_flight:
            reserved = in_flight.pop(0)
            budget.settle(reserved, int(reserved * used_share), None)
        assert budget.used_tokens + budget.reserved_tokens <= 2000
        assert budget.reserved_tokens == sum(in_flight)
