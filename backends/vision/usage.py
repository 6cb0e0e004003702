"""Requests, retries and billable units of one backend row, what they cost, and what a month would cost.

Prices are Google's list prices for TEXT_DETECTION and DOCUMENT_TEXT_DETECTION when this was written
(https://cloud.google.com/vision/pricing, checked 2026-12): each photo sent with one feature is one
unit; the first 1,000 units a month are free; units 1,001 to 5,000,000 cost $1.50 per 1,000, and
units above 5,000,000 $0.60 per 1,000. Pass ``--vision-price-per-1000`` and ``--vision-free-units``
when they have changed or your contract differs.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

LIST_PRICE_PER_1000 = 1.50
"""USD per 1,000 units of TEXT_DETECTION / DOCUMENT_TEXT_DETECTION, units 1,001 to 5,000,000 a month
(Google's list price when this was written; the first 1,000 units a month are free)."""
FREE_UNITS_PER_MONTH = 1000
SECOND_TIER_FROM = 5_000_000
SECOND_TIER_PRICE_PER_1000 = 0.60
DAYS_PER_MONTH = 30


def monthly_cost_usd(units: float, price_per_1000: float, free_units: int = FREE_UNITS_PER_MONTH) -> float:
    """What ``units`` in one month cost: the free tier first, the list price up to 5 M units, then the
    second tier (scaled from the list price when a price of your own is given)."""
    billed = max(units - free_units, 0.0)
    first = min(billed, SECOND_TIER_FROM - free_units)
    second_price = price_per_1000 * SECOND_TIER_PRICE_PER_1000 / LIST_PRICE_PER_1000
    return (first * price_per_1000 + max(billed - first, 0.0) * second_price) / 1000


@dataclass
class Usage:
    """Counters kept while recognizing.

    ``units`` counts the photos the service answered without a per-photo error, in every request
    (warm-up, first inference and every pass included: what the run is billed for); ``photos`` the
    distinct photos sent.
    """

    requests: int = 0
    retries: int = 0
    auth_retries: int = 0
    """Of ``retries``, those google-auth made itself after a 401 (token refresh), REST only."""
    failed_requests: int = 0
    units: int = 0
    photos: set[str] = field(default_factory=set)
    paced_ms: float = 0.0

    def count(self, attempts: int, sent: int | None = None) -> None:
        """Count one call: ``attempts`` made by our retry loop, ``sent`` HTTP requests really sent (when known)."""
        extra = max(0, sent - attempts) if sent is not None else 0
        self.requests += attempts + extra
        self.retries += attempts - 1 + extra
        self.auth_retries += extra

    def cost_usd(self, price_per_1000: float) -> float:
        """The list-price cost of the units used, before the monthly free tier."""
        return self.units * price_per_1000 / 1000

    def cost_per_1000_photos(self, price_per_1000: float) -> float | None:
        """The measured cost of reading 1,000 photos: every billed unit of the run over the photos read."""
        return self.cost_usd(price_per_1000) / len(self.photos) * 1000 if self.photos else None

    def projection(self, photos_per_day: int, price_per_1000: float, free_units: int) -> str:
        """``"N photos a day costs about $X a month"`` at the measured units per photo."""
        per_photo = self.units / len(self.photos) if self.photos else 1.0
        units = photos_per_day * DAYS_PER_MONTH * per_photo
        cost = monthly_cost_usd(units, price_per_1000, free_units)
        return (f"{photos_per_day:,} photos a day costs about ${cost:,.2f} a month ({units:,.0f} units at "
                f"{per_photo:.2f} per photo as measured, {free_units:,} free, ${price_per_1000:.2f}/1000)")


class Pacer:
    """Keeps requests under ``max_rpm`` a minute by waiting before a request that would come too soon."""

    def __init__(self, max_rpm: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval_s = 60.0 / max_rpm if max_rpm > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self.last: float | None = None

    def wait(self) -> float:
        """Wait as long as the quota asks; returns the seconds waited."""
        now = self.clock()
        waited = 0.0
        if self.last is not None and self.interval_s:
            waited = max(self.last + self.interval_s - now, 0.0)
            if waited:
                self.sleep(waited)
        self.last = now + waited
        return waited
