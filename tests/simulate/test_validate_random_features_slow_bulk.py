"""`memphase validate` rows for the slow bulk of the [BUBM25] random-features model
(validate_papers.random_features_slow_bulk_checks): the half-gap tau_mem against the slow-bulk time."""

import pytest

from memphase.simulate.validate_papers import random_features_slow_bulk_checks


def test_slow_bulk_rows_pass_and_sample_ratio_follows_F_t():
    rows = random_features_slow_bulk_checks(seed=0)
    assert len(rows) == 2
    for c in rows:
        assert c.gated and c.kind == "measured"
        assert c.measured == pytest.approx(1.0, abs=0.35), c
    # the ratio to the sample-bulk time (in the note) is ~40 at t = 0.01 and ~3 at t = 0.1
    r01 = float(rows[0].note.split("sample-bulk time = ")[1].split(";")[0])
    r1 = float(rows[1].note.split("sample-bulk time = ")[1].split(";")[0])
    assert 30 < r01 < 50 and 2 < r1 < 5
