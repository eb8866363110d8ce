"""The pure batch-size search behind max-batch (probes/batch_search.py)."""

import pytest

from batchlab.probes.batch_search import Trial, predict_peak, search_batch_size


def test_the_search_reraises_other_errors_unchanged():
    def trial(b):
        if b > 4:
            raise ValueError("boom")
        return Trial(b, b, True, "fits")

    with pytest.raises(ValueError, match="boom"):
        search_batch_size(trial, start=1, upper=100, threshold=None)


def test_predict_peak_is_the_line_through_the_two_largest_points_below():
    assert predict_peak({1: 110, 2: 120, 4: 140}, 8) == 180
    assert predict_peak({1: 110, 2: 120, 64: 9999}, 3) == 130
    assert predict_peak({4: 140}, 8) is None


def test_the_search_never_goes_past_its_upper_bound():
    calls = []
    found = search_batch_size(lambda b: calls.append(b) or Trial(b, b, True, "fits"),
                              start=1, upper=2**16, threshold=None)
    assert found.largest == 2**16 and max(calls) == 2**16 and len(calls) == 17
