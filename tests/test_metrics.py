"""Accuracy definitions on hand-computed cases."""
from __future__ import annotations

import pytest

from bench.metrics import aggregate, match_digits, read_number, score_photo
from bench.results.records import Box, Digit, TrueDigit
from bench.stats import LatencyStats


def true(label, left, top=0, width=10, height=20):
    return TrueDigit(label, Box(left, top, width, height))


def pred(label, left, score=0.9, top=0, width=10, height=20):
    return Digit(label, score, left, top, width, height)


def test_iou_of_half_overlapping_boxes_is_one_third():
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_iou_of_disjoint_or_empty_boxes_is_zero():
    assert Box(0, 0, 10, 10).iou(Box(20, 0, 10, 10)) == 0.0
    assert Box(0, 0, 0, 10).iou(Box(0, 0, 0, 10)) == 0.0


def test_match_needs_same_label_and_iou_at_least_half():
    truth = [true(1, 0), true(2, 10)]
    assert match_digits([pred(1, 0)], truth) == [(0, 0)]
    assert match_digits([pred(2, 0)], truth) == []
    assert match_digits([pred(1, 4)], truth) == []  # IoU 6*20/(14*20) = 0.43
    assert match_digits([pred(1, 3)], truth) == [(0, 0)]  # IoU 7/13 = 0.54


def test_each_true_digit_is_matched_once_highest_score_first():
    truth = [true(1, 0)]
    pairs = match_digits([pred(1, 1, score=0.5), pred(1, 0, score=0.9)], truth)
    assert pairs == [(1, 0)]


def test_greedy_match_prefers_highest_iou_among_free_truth():
    truth = [true(7, 0), true(7, 4)]
    assert match_digits([pred(7, 3, score=0.9), pred(7, 0, score=0.8)], truth) == [(0, 1), (1, 0)]


def test_number_is_read_left_to_right_by_box_centre():
    assert read_number([pred(3, 40), pred(1, 0), pred(2, 20, width=4)]) == "123"


def test_photo_and_run_scores_by_hand():
    truth_a = [true(1, 0), true(2, 10), true(3, 20)]
    truth_b = [true(4, 0)]
    a = score_photo([pred(1, 0), pred(2, 10), pred(8, 20), pred(5, 60)], truth_a, "123")
    b = score_photo([pred(4, 0)], truth_b, "4")
    c = score_photo([], [true(9, 0)], "9", failed=True)
    assert (a.predicted, a.true, a.matched, a.sequence_correct) == (4, 3, 2, False)
    assert (b.predicted, b.true, b.matched, b.sequence_correct) == (1, 1, 1, True)
    acc = aggregate([a, b, c])
    assert acc.precision == pytest.approx(3 / 5)
    assert acc.recall == pytest.approx(3 / 5)
    assert acc.f1 == pytest.approx(3 / 5)
    assert acc.sequence_accuracy == pytest.approx(1 / 3)


def test_empty_run_has_zero_scores_not_errors():
    acc = aggregate([])
    assert (acc.precision, acc.recall, acc.f1, acc.sequence_accuracy) == (0.0, 0.0, 0.0, 0.0)


def test_latency_statistics_by_hand():
    stats = LatencyStats.of([1.0, 2.0, 3.0, 4.0, 10.0])
    assert stats.n == 5 and stats.p50 == 3.0 and stats.min == 1.0 and stats.max == 10.0
    assert stats.mean == pytest.approx(4.0)
    assert stats.p90 == pytest.approx(7.6)
    assert stats.std == pytest.approx(3.5355, abs=1e-4)
    assert stats.stability_warning().startswith("unstable")
    assert LatencyStats.of([]) is None
    assert LatencyStats.of([5.0] * 10).stability_warning() is None
