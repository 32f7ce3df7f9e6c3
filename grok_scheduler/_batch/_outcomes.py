"""What the two roads report: one outcome per line, and the cost of each road."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._models import Result
from .._wire._batch import PRICE_FACTOR

__all__ = ["RoadCosts", "RoadOutcome"]


@dataclass(frozen=True, slots=True)
class RoadOutcome:
    """One line's fate and the road it took."""

    custom_id: str
    via: str
    result: Result | None
    error: BaseException | None
    metadata: Any = None

    @property
    def ok(self) -> bool:
        """True when the line succeeded."""
        return self.result is not None


@dataclass(slots=True)
class RoadCosts:
    """US dollars spent on each road, and lines answered on each."""

    online_usd: float = 0.0
    batch_usd: float = 0.0
    online_lines: int = 0
    batch_lines: int = 0

    @property
    def same_work_online_usd(self) -> float:
        """What every answered line would have cost online (a batch line at full price)."""
        return self.online_usd + self.batch_usd / PRICE_FACTOR

    def add(self, outcome: RoadOutcome) -> None:
        if outcome.result is None:
            return
        usd = outcome.result.usage.cost_usd or 0.0
        if outcome.via == "batch":
            self.batch_usd += usd
            self.batch_lines += 1
        else:
            self.online_usd += usd
            self.online_lines += 1
