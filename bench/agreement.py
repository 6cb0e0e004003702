"""Whether two rows read the same photos alike.

For each pair of rows, over the photos both recognized: ``share`` is the part on which both read
the same whole number (the digits left to right, the string whole-number accuracy scores; a photo
a row failed on reads as nothing and agrees with no one), and ``both_right`` / ``both_wrong`` /
``only_a_right`` / ``only_b_right`` count the photos by which of the two read them right.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass



@dataclass(frozen=True)
class Agreement:
    """How two rows compare photo by photo."""

    photos: int
    same: int
    both_right: int
    both_wrong: int
    only_a_right: int
    only_b_right: int

    @property
    def share(self) -> float | None:
        return self.same / self.photos if self.photos else None

    def to_json(self) -> dict[str, float | int | None]:
        return {"share": None if self.share is None else round(self.share, 6), "photos": self.photos,
                "same": self.same, "both_right": self.both_right, "both_wrong": self.both_wrong,
                "only_a_right": self.only_a_right, "only_b_right": self.only_b_right}


@dataclass(frozen=True)
class Readings:
    """What one row read: per image, the number (``None`` where it failed) and whether it was right."""

    numbers: Mapping[str, str | None]
    right: Mapping[str, bool]


def agreement(a: Readings, b: Readings) -> Agreement:
    """How two rows read the photos both have."""
    images = [i for i in a.numbers if i in b.numbers and i in a.right and i in b.right]
    same = both_right = both_wrong = only_a = only_b = 0
    for image in images:
        right_a, right_b = a.right[image], b.right[image]
        same += a.numbers[image] is not None and a.numbers[image] == b.numbers[image]
        both_right += right_a and right_b
        both_wrong += not right_a and not right_b
        only_a += right_a and not right_b
        only_b += right_b and not right_a
    return Agreement(len(images), same, both_right, both_wrong, only_a, only_b)


def agreement_table(rows: Mapping[str, Readings]) -> dict[str, dict[str, Agreement]]:
    """``{A: {B: Agreement}}`` for every ordered pair of distinct rows."""
    return {a: {b: agreement(rows[a], rows[b]) for b in rows if b != a} for a in rows}
