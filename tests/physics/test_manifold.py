"""Actual variances of normalized linear manifolds [ALD24] against closed forms."""

import numpy as np
import pytest

from memphase.physics.manifold import normalization_mode, normalized_variances


@pytest.mark.parametrize("d", [1, 3, 30])
def test_isotropic_sphere_variance_is_one_over_d(d):
    np.testing.assert_allclose(normalized_variances(np.full(d, 2.5), "sphere"), 1.0 / d, rtol=1e-10)
    np.testing.assert_allclose(normalized_variances(np.full(d, 2.5), "radius"), 2.5, rtol=1e-10)


def test_two_directions_closed_form():
    """d = 2, variances a, b: E[a g1^2 / (a g1^2 + b g2^2)] = sqrt(a) / (sqrt(a) + sqrt(b))
    (the angle of (sqrt(a) g1, sqrt(b) g2) has a closed-form law)."""
    a, b = 4.0, 0.25
    v = normalized_variances([a, b], "sphere")
    np.testing.assert_allclose(v, [2.0 / 2.5, 0.5 / 2.5], rtol=1e-10)


def test_zero_variance_and_modes():
    v = normalized_variances([1.0, 0.0, 1.0], "sphere")
    np.testing.assert_allclose(v, [0.5, 0.0, 0.5], rtol=1e-10)
    np.testing.assert_array_equal(normalized_variances([1.0, 2.0], False), [1.0, 2.0])
    assert normalization_mode(True) == "radius" and normalization_mode(None) is False
    with pytest.raises(ValueError, match="normalize must be"):
        normalization_mode("ball")
    with pytest.raises(ValueError, match="at least one variance"):
        normalized_variances([0.0, 0.0], "sphere")
