"""`memphase validate` rows of the [BUBM25] random-features model (validate_papers.random_features_checks)."""

import numpy as np

from memphase.simulate.cli.validate_papers import random_features_checks


def test_random_features_rows():
    rows = {c.quantity: c for c in random_features_checks(seed=0)}
    ks = rows["RF spectrum of U: Kolmogorov distance (Sigma levels (0.5, 1.5))"]
    assert ks.gated and ks.passed and 0 <= ks.measured < 0.02
    ks_id = rows["RF spectrum of U: Kolmogorov distance (Sigma levels (1.0,))"]
    assert not ks_id.gated and "hard edge" in ks_id.note
    a = rows["RF tau_mem ~ psi_n^a: a (measured)"]
    assert a.gated and a.passed and np.all(np.isfinite(a.ci)) and a.ci[0] <= a.measured <= a.ci[1]
    assert rows["RF tau_mem ~ psi_n^a: a (theory bulk)"].passed
