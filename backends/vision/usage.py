"""Requests, retries and billable units of one backend row, and what they cost."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Usage:
    """Counters kept while recognizing; ``units`` counts photos answered without a per-photo error."""

    requests: int = 0
    retries: int = 0
    auth_retries: int = 0
    """Of ``retries``, those google-auth made itself after a 401 (token refresh), REST only."""
    failed_requests: int = 0
    units: int = 0

    def count(self, attempts: int, sent: int | None = None) -> None:
        """Count one call: ``attempts`` made by our retry loop, ``sent`` HTTP requests really sent (when known)."""
        extra = max(0, sent - attempts) if sent is not None else 0
        self.requests += attempts + extra
        self.retries += attempts - 1 + extra
        self.auth_retries += extra

    def cost_usd(self, price_per_1000: float) -> float:
        """The list-price estimate for the units used (the monthly free tier is not subtracted)."""
        return self.units * price_per_1000 / 1000
