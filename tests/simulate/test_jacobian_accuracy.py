"""Exactness of the closed-form empirical-score Jacobians at small noise.

Claim: `EmpiricalScore.jacobian` (and Tikhonov, smoothed, floor-normalized, conditional) computes
((m^2 / v) Cov_w - I) / D in float64 to ~1e-10 relative or better down to t = 1e-8 (OU, tau ~ 2t),
where the problem itself is well conditioned: x a noised training point (with or without
near-duplicate neighbours), x exactly on a training point, x exactly between two training points,
x far away (|x| = 1e4). References: a dense brute-force centred computation in np.longdouble
(d = 512, N = 4096, the size at which the expanded second-moment formula was 60-400% off), and
mpmath at 40 digits for one tiny case. Eigenvalue signs are checked against the reference (between
two far-apart points the true Jacobian has a large positive eigenvalue).
"""

import math

import mpmath
import numpy as np
import pytest
import torch

from memphase.physics.schedules import make_schedule
from memphase.simulate.scores import (ConditionalEmpiricalScore, EmpiricalScore, FloorNormalizedScore,
                             SmoothedScore, TikhonovScore)
from memphase.simulate.scores.covariance import mixture_covariance

OU = make_schedule("ou")
TIMES = (1e-4, 1e-6, 1e-8)
EPS = np.finfo(np.float64).eps


def _coeffs(t, sched=OU):
    return float(sched.mean_scale(t)), float(sched.noise_var(t))


def reference_jacobian_ld(x, y, m, v, den):
    """Dense brute force in np.longdouble: difference-form logits, weights, mean-centred
    covariance, ((m^2/v) Cov - I) / den for every row of x. Points of weight < 1e-60 are left out
    of the (slow, non-BLAS) longdouble covariance sum: with m^2/v <= 1e9 and |y - mu|^2 <= 1e9 their
    share of the Jacobian is below 1e-40."""
    ld = np.longdouble
    yn = y.numpy().astype(ld)
    m, v, den = ld(m), ld(v), ld(den)
    out = []
    for xb in x.numpy().astype(ld):
        diff = xb / m - yn
        logits = -(m * m / (2 * v)) * (diff * diff).sum(1)
        w = np.exp(logits - logits.max())
        w /= w.sum()
        keep = w >= 1e-60
        w, diff = w[keep], diff[keep]
        z = diff - w @ diff
        cov = (z * w[:, None]).T @ z
        out.append((m * m / v * cov - np.eye(yn.shape[1], dtype=ld)) / den)
    return np.array(out)


def reference_jacobian_mp(x, y, m, v, dps=40):
    """The same formula in mpmath (exact inputs = the float64 values)."""
    with mpmath.workdps(dps):
        mm, vv = mpmath.mpf(m), mpmath.mpf(v)
        ys = [[mpmath.mpf(float(c)) for c in row] for row in y.tolist()]
        d = len(ys[0])
        out = []
        for row in x.tolist():
            u = [mpmath.mpf(float(c)) / mm for c in row]
            logits = [-(mm * mm / (2 * vv)) * mpmath.fsum((ui - yi) ** 2 for ui, yi in zip(u, yn))
                      for yn in ys]
            top = max(logits)
            w = [mpmath.exp(li - top) for li in logits]
            z = mpmath.fsum(w)
            w = [wi / z for wi in w]
            mu = [mpmath.fsum(wi * yn[i] for wi, yn in zip(w, ys)) for i in range(d)]
            jac = mpmath.matrix(d, d)
            for i in range(d):
                for j in range(d):
                    cov = mpmath.fsum(wi * (yn[i] - mu[i]) * (yn[j] - mu[j]) for wi, yn in zip(w, ys))
                    jac[i, j] = (mm * mm / vv * cov - (1 if i == j else 0)) / vv
            out.append([[float(jac[i, j]) for j in range(d)] for i in range(d)])
    return np.array(out)


def rel_err(got, ref):
    """max |got - ref| / max |ref| per row of a (B, d, d) batch."""
    got, ref = np.asarray(got, dtype=np.longdouble), np.asarray(ref, dtype=np.longdouble)
    return (np.abs(got - ref).max(axis=(1, 2)) / np.abs(ref).max(axis=(1, 2))).astype(float)


def _large_problem(t, seed=1, d=512, n=4096):
    """N(0, I) training set with two near-duplicates of y_0 (at ~0.05 sqrt(tau) d^{1/2}) so that
    x near y_0 spreads its weight over three points; the four probe families of the issue."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, d, generator=g, dtype=torch.float64)
    m, v = _coeffs(t)
    tau = v / m**2
    for k in (1, 2):
        y[k] = y[0] + 0.05 * math.sqrt(tau) * torch.randn(d, generator=g, dtype=torch.float64)
    typical = m * y[[0, 7]] + math.sqrt(v) * torch.randn(2, d, generator=g, dtype=torch.float64)
    probes = {
        "typical": typical,                         # row 0 near the cluster, row 1 near y_7
        "on_point": m * y[[7, 0]],
        "midpoint": m * 0.5 * (y[10:11] + y[11:12]),
        "far": 1e4 * typical[1:] / typical[1:].norm(),
    }
    return y, probes, m, v


@pytest.fixture(scope="module", params=TIMES, ids=lambda t: f"t={t:g}")
def large(request):
    t = request.param
    y, probes, m, v = _large_problem(t)
    score = EmpiricalScore(y, OU)
    return t, y, probes, m, v, score


@pytest.mark.parametrize("probe", ["typical", "on_point", "midpoint", "far"])
def test_empirical_jacobian_matches_longdouble_reference(large, probe):
    t, y, probes, m, v, score = large
    x = probes[probe]
    got = score.jacobian(x, t).numpy()
    ref = reference_jacobian_ld(x, y, m, v, v)
    assert rel_err(got, ref).max() < 1e-10
    # spectrum: the same signs as the reference, to the reference's precision
    eg = np.linalg.eigvalsh(got)
    er = np.linalg.eigvalsh(ref.astype(np.float64))
    np.testing.assert_allclose(eg, er, rtol=0, atol=1e-10 * np.abs(er).max())
    scale = np.abs(er).max(axis=1, keepdims=True)
    sure = np.abs(er) > 1e-6 * scale
    assert np.array_equal(np.sign(eg[sure]), np.sign(er[sure]))
    if probe == "midpoint":      # one direction (y_10 - y_11) with Cov_w = |delta|^2/4 > tau
        assert (er[0] > 0).sum() == 1 and (eg[0] > 0).sum() == 1
    else:                        # negative definite: no spurious positive eigenvalue
        assert eg.max() < 0


def test_typical_probe_near_cluster_is_not_trivial(large):
    """Guard: at the cluster the posterior covariance is not 0 (the test exercises Cov_w)."""
    t, y, probes, m, v, score = large
    cov = score.posterior(probes["typical"][:1], t)[0].cov[0]
    tau = v / m**2
    assert float(torch.linalg.eigvalsh(cov).max()) > 1e-3 * tau


def _tiny_problem(t):
    """d = 3, N = 5: y_0 with two neighbours at ~sqrt(tau), y_3 and y_4 far apart."""
    m, v = _coeffs(t)
    s = math.sqrt(v) / m
    y = torch.tensor([[0.3, -1.2, 0.7], [0.3 + 0.4 * s, -1.2 - 0.3 * s, 0.7 + 0.2 * s],
                      [0.3 - 0.5 * s, -1.2 + 0.1 * s, 0.7 + 0.6 * s],
                      [1.5, 0.25, -0.75], [-0.5, 1.0, 2.0]], dtype=torch.float64)
    x = torch.stack([
        m * y[0] + math.sqrt(v) * torch.tensor([0.3, -0.8, 0.5], dtype=torch.float64),
        m * y[3],
        m * 0.5 * (y[3] + y[4]),
        1e4 * torch.tensor([0.6, -0.64, 0.48], dtype=torch.float64),
    ])
    return y, x, m, v


@pytest.mark.parametrize("t", TIMES)
def test_tiny_case_matches_mpmath(t):
    y, x, m, v = _tiny_problem(t)
    got = EmpiricalScore(y, OU).jacobian(x, t).numpy()
    ref = reference_jacobian_mp(x, y, m, v)
    assert rel_err(got, ref).max() < 1e-10
    # the longdouble brute force used at d = 512 agrees with mpmath as well
    assert rel_err(reference_jacobian_ld(x, y, m, v, v), ref).max() < 1e-12
    assert (np.linalg.eigvalsh(ref[[0, 1, 3]]) < 0).all() and (np.linalg.eigvalsh(ref[2]) > 0).any()


def test_ill_conditioned_probe_error_is_within_its_condition_number():
    """Off-centre between two points the Jacobian changes by a relative kappa * eps when x moves by
    one ulp, kappa = |x/m| |y_3 - y_4| m^2 / v: no float64 method can do better. The result is within
    a small multiple of that bound of the mpmath value (here 1e-6 at t = 1e-8)."""
    t = 1e-8
    y, _, m, v = _tiny_problem(t)
    delta = y[4] - y[3]
    u = 0.5 * (y[3] + y[4]) + 0.3 * (v / m**2) * delta / float(delta @ delta)   # weights ~ 0.35/0.65
    x = (m * u)[None]
    got = EmpiricalScore(y, OU).jacobian(x, t).numpy()
    ref = reference_jacobian_mp(x, y, m, v)
    kappa = float(u.norm() * delta.norm()) * m**2 / v
    assert rel_err(got, ref).max() < 20 * EPS * kappa


def test_old_expanded_formula_would_fail_here():
    """The expanded second-moment formula E_w[y y^T] - mu mu^T (with its own normalizer) loses
    everything at t = 1e-6 on this problem: this guard keeps the references able to fail."""
    from memphase.simulate.scores.kernel import mixture_second_moment, mixture_stats, augment_keys
    t = 1e-6
    y, probes, m, v = _large_problem(t, d=128, n=512)
    x = probes["on_point"]
    keys = augment_keys(y)
    st = mixture_stats(x, keys, m / v, -m * m / (2 * v))
    cov = mixture_second_moment(x, keys, m / v, -m * m / (2 * v), st.lse) \
        - st.mean[:, :, None] * st.mean[:, None, :]
    old = ((m * m / v) * cov - torch.eye(128, dtype=torch.float64)) / v
    ref = reference_jacobian_ld(x, y, m, v, v)
    assert rel_err(old.numpy(), ref).max() > 1e-6
    assert rel_err(EmpiricalScore(y, OU).jacobian(x, t).numpy(), ref).max() < 1e-10


# -- the subclasses ------------------------------------------------------------------------------

@pytest.mark.parametrize("t", TIMES)
def test_tikhonov_and_smoothed_jacobians_match_reference(t):
    y, x, m, v = _tiny_problem(t)
    c, sig_s2 = 1e-3, 0.5 * v / m**2
    got = TikhonovScore(y, OU, c).jacobian(x, t).numpy()
    assert rel_err(got, reference_jacobian_ld(x, y, m, v, v + c)).max() < 1e-10
    vs = v + m * m * sig_s2
    got = SmoothedScore(y, OU, sig_s2).jacobian(x, t).numpy()
    assert rel_err(got, reference_jacobian_ld(x, y, m, vs, vs)).max() < 1e-10


def _floor_score(y, m, v, floor):
    """s(z) = grad A(z) / max(A(z), floor), A(z) = sum_n exp(-|z - m y_n|^2 / 2v) [BDKOS25 code],
    written out for autograd."""
    def mass(z):
        return torch.exp(-((z[None, :] - m * y) ** 2).sum(1) / (2 * v)).sum()

    def score(z):
        return torch.func.grad(mass)(z) / torch.clamp(mass(z), min=floor)

    return score, mass


@pytest.mark.parametrize("t,floor", [(0.3, 1e-3), (0.3, 1e3), (1e-3, 1e-30)])
def test_floor_normalized_jacobian_equals_autograd(t, floor):
    """Autograd of the written-out floor-normalized score, on both sides of the floor."""
    g = torch.Generator().manual_seed(3)
    y = torch.randn(40, 4, generator=g, dtype=torch.float64)
    m, v = _coeffs(t)
    x = torch.cat([m * y[:3] + math.sqrt(v) * torch.randn(3, 4, generator=g, dtype=torch.float64),
                   4.0 + torch.randn(2, 4, generator=g, dtype=torch.float64)])
    score = FloorNormalizedScore(y, OU, floor)
    got = score.jacobian(x, t)
    ref_score, mass = _floor_score(y, m, v, floor)
    sides = set()
    for b in range(x.shape[0]):
        sides.add(bool(mass(x[b]) > floor))
        ref = torch.func.jacrev(ref_score)(x[b])
        torch.testing.assert_close(got[b], ref, rtol=1e-8, atol=1e-8 * float(ref.abs().max()))
        torch.testing.assert_close(score(x[b:b + 1], t)[0], ref_score(x[b]), rtol=1e-8,
                                   atol=1e-12 * float(ref_score(x[b]).abs().max()))
    if floor == 1e-3:
        assert sides == {True, False}


def test_conditional_jacobian_is_the_per_class_jacobian():
    g = torch.Generator().manual_seed(4)
    y = torch.randn(30, 3, generator=g, dtype=torch.float64)
    labels = torch.arange(30) % 3
    score = ConditionalEmpiricalScore(y, labels, OU)
    t = 1e-6
    m, v = _coeffs(t)
    x = m * y[:6] + math.sqrt(v) * torch.randn(6, 3, generator=g, dtype=torch.float64)
    lab = labels[:6]
    got = score.jacobian(x, t, lab)
    for b in range(6):
        ref = reference_jacobian_ld(x[b:b + 1], y[labels == lab[b]], m, v, v)
        assert rel_err(got[b:b + 1].numpy(), ref).max() < 1e-10
    torch.testing.assert_close(score.given(lab).jacobian(x, t), got, rtol=0, atol=0)


def test_covariance_kernel_chunking_and_per_sample_time():
    g = torch.Generator().manual_seed(5)
    y = torch.randn(100, 5, generator=g, dtype=torch.float64)
    x = torch.randn(7, 5, generator=g, dtype=torch.float64)
    whole = mixture_covariance(x, y, 0.9, 0.2)
    for chunk in (1, 13, 100):
        part = mixture_covariance(x, y, 0.9, 0.2, chunk=chunk)
        torch.testing.assert_close(part.cov, whole.cov, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(part.log_mass, whole.log_mass, rtol=1e-13, atol=0)
        assert torch.equal(part.nearest, whole.nearest)
    ts = torch.tensor([1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 1e-8], dtype=torch.float64)
    score = EmpiricalScore(y, OU)
    per = score.jacobian(x, ts)
    for b in range(7):
        torch.testing.assert_close(per[b], score.jacobian(x[b:b + 1], float(ts[b]))[0],
                                   rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="float64"):
        mixture_covariance(x.float(), y, 1.0, 1.0)


@pytest.mark.parametrize("t", [0.05, 0.3, 1.0, 3.0])
def test_expanded_fast_path_equals_differences_where_it_is_used(t):
    """The fast path (matmul logits, second moment about the training mean) agrees with the exact
    difference path to 1e-12 on the Jacobian, at noise levels where "auto" picks it."""
    g = torch.Generator().manual_seed(6)
    y = torch.randn(600, 16, generator=g, dtype=torch.float64) + 3.0
    m, v = _coeffs(t)
    x = m * y[:6] + math.sqrt(v) * torch.randn(6, 16, generator=g, dtype=torch.float64)
    exact = mixture_covariance(x, y, m, v, method="differences")
    fast = mixture_covariance(x, y, m, v, method="expanded")
    jac = [(m * m / v) * s.cov - torch.eye(16, dtype=torch.float64) for s in (exact, fast)]
    assert rel_err(jac[1].numpy(), jac[0].numpy()).max() < 1e-12
    torch.testing.assert_close(fast.log_mass, exact.log_mass, rtol=1e-13, atol=1e-12)
    torch.testing.assert_close(fast.offset, exact.offset, rtol=0, atol=1e-12)
    assert torch.equal(fast.nearest, exact.nearest)
    if t >= 0.3:  # k R^2 within the limit: "auto" is the fast path
        auto = mixture_covariance(x, y, m, v)
        assert torch.equal(auto.cov, fast.cov)


def test_auto_avoids_the_expanded_path_at_small_noise():
    t = 1e-6
    y, probes, m, v = _large_problem(t, d=64, n=512)
    x = probes["typical"]
    ref = reference_jacobian_ld(x, y, m, v, v)
    def jac(method):
        cov = mixture_covariance(x, y, m, v, method=method).cov
        return ((m * m / v) * cov - torch.eye(64, dtype=torch.float64)) / v
    assert rel_err(jac("auto").numpy(), ref).max() < 1e-10
    assert rel_err(jac("expanded").numpy(), ref).max() > 1e-10   # misses the target
