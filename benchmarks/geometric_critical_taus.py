"""[ALD24] geometric memorization: measured per-block critical tau (empirical score, exact Jacobian)
against the [ALD24] formula, d = 30, blocks (2, 1.0), (5, 0.3), rest 0.01, normalized, N = 1000.

Run: .venv/bin/python benchmarks/geometric_critical_taus.py   (about 25 s)
"""
import numpy as np
from simulate.data import linear_manifold
from simulate.scores import EmpiricalScore
from physics.schedules import OrnsteinUhlenbeck
from physics.critical import block_collapse_tau
from analysis.dimensions import jacobian_sweep, critical_tau_per_block
th = block_collapse_tau(1000, [(2, 1.0), (5, 0.3)], normalized=True, rest_std=0.01, d=30)
for seed, P, T in [(1,24,16),(2,24,16),(3,24,16),(4,24,16),(1,64,30)]:
    data = linear_manifold(1000, 30, [(2, 1.0), (5, 0.3)], normal_std=0.01, normalize=True, seed=seed)
    taus = np.geomspace(1e-3, 0.3, T)
    ds = jacobian_sweep(EmpiricalScore(data, OrnsteinUhlenbeck()), data, taus, n_points=P, seed=0)
    f = ds.kept_fraction.values[:, 1:]
    rel = critical_tau_per_block(taus, f, relative=True); ab = critical_tau_per_block(taus, f)
    print(f"seed={seed} P={P} T={T} rel={np.round(rel,4)} relerr={np.round(rel/th-1,2)} abs={np.round(ab,4)} peak={np.round(f.max(0),2)}")
print("theory", th)
