"""Requests, retries and billable units of one backend row, and what they cost."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Usage:
    """Counters kept while recognizing; ``units`` counts photos answered without a per-photo error."""

    requests: int = 0
    retries: int = 0
    failed_requests: int = 0
    units: int = 0

    def cost_usd(self, price_per_1000: float) -> float:
        """The list-price estimate for the units used (the monthly free tier is not subtracted)."""
        return self.units * price_per_1000 / 1000
