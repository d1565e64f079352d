"""bench.scale's throughput window: from the first claim to the last photo done."""

from __future__ import annotations

import pytest

from bench.scale import queries, ratio_rows, throughput


def test_throughput_counts_from_the_first_claim_to_the_last_photo_done():
    # (seconds, pending, done): workers start at 0, the first batch is claimed at 4 s.
    samples = [(0.0, 32, 0), (2.0, 32, 0), (4.0, 16, 0), (6.0, 0, 16), (12.0, 0, 32)]

    assert throughput(samples, 32) == (4.0, 4.0)


def test_throughput_refuses_samples_that_never_finish():
    with pytest.raises(ValueError):
        throughput([(0.0, 32, 0), (4.0, 16, 0), (6.0, 0, 16)], 32)


def test_ratios_are_taken_within_each_round():
    rows = ratio_rows([{1: 2.0, 2: 3.0}, {1: 4.0, 2: 4.0}], [1, 2])

    assert rows == [
        "| 1 | 2.00, 4.00 | 3.00 |  |",
        "| 2 | 3.00, 4.00 | 3.50 | **1.25x** (1.50, 1.00) |",
    ]


def test_every_query_of_a_cycle_is_new():
    texts = queries(1)
    first = [next(texts) for _ in range(720)]

    assert len(set(first)) == 720
