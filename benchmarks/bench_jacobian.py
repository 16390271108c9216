"""Jacobian spectra of the empirical score: closed form against autograd.

    (a) closed   EmpiricalScore.jacobian(x, t): grad_x s = ((m^2 / sigma^2) Cov_w(y) - I) / sigma^2
                 (SCIENCE.md section 2), two streaming passes (weights, then the weighted second
                 moment), float64
    (b) autograd analysis.dimensions.score_jacobian(score, x, t, method="autograd"):
                 torch.func.jacrev through the streamed log-sum-exp (d vector-Jacobian products)

Both are followed by the same symmetric eigendecomposition (torch.linalg.eigvalsh), so the
"spectrum" columns time what an [ALD24] tangent-dimension measurement pays per batch. Reported:
t(b) / t(a), and the largest eigenvalue difference relative to the largest |eigenvalue|.
Target (ours; issue 8 lists the benchmark without a number): the closed form is faster than
autograd (ratio > 1) and agrees with it to 1e-8 relative in float64.

Usage: python benchmarks/bench_jacobian.py [--quick] [--device cpu|cuda|auto] [--repeat K]
"""

from __future__ import annotations

import sys

import torch

from common import best_times, markdown_table, setup
from bench_empirical_score import T_EVAL, make_problem

from analysis.dimensions import score_jacobian
from simulate.scores.empirical import EmpiricalScore


def compare(b, n, d, device, repeat) -> list:
    """One (B, N, d): times of (a), (b), with and without eigvalsh, and their agreement."""
    y, x, sched, _, _ = make_problem(b, n, d, torch.float64, device)
    score = EmpiricalScore(y, sched)

    def closed():
        return score.jacobian(x, T_EVAL)

    def autograd():
        return score_jacobian(score, x, T_EVAL, method="autograd")

    def spectrum(jac_fn):
        jac = jac_fn()
        return torch.linalg.eigvalsh(0.5 * (jac + jac.transpose(1, 2)))

    t = best_times({"a": closed, "b": autograd,
                    "a spec": lambda: spectrum(closed), "b spec": lambda: spectrum(autograd)},
                   repeat=repeat, device=device)
    ja, jb = closed(), autograd()
    ea, eb = spectrum(closed), spectrum(autograd)
    jac_err = float((ja - jb).abs().max() / ja.abs().max())
    spec_err = float((ea - eb).abs().max() / ea.abs().max())
    return [b, n, d, 1e3 * t["a"], 1e3 * t["b"], t["b"] / t["a"], t["b spec"] / t["a spec"],
            jac_err, spec_err]


def main(argv=None):
    args, timing, device = setup(__doc__, "Jacobian spectra", argv)
    repeat = args.repeat
    configs = [(32, 1024, 8), (32, 1024, 32)] if args.quick else \
        [(64, 4096, 16), (64, 4096, 64), (16, 4096, 128)]
    rows = []
    for b, n, d in configs:
        rows.append(compare(b, n, d, device, repeat))
        print(f"  {rows[-1]}", file=sys.stderr)
    print(f"## Jacobian spectra: closed form vs autograd (device: {device}; {timing})\n")
    print(f"float64, t = {T_EVAL} (OU), best of {repeat}. (a) EmpiricalScore.jacobian, "
          "(b) torch.func.jacrev via analysis.dimensions.score_jacobian; 'spectra' includes "
          "eigvalsh of the symmetrized Jacobians. Errors are max |(a) - (b)| / max |(a)|.\n")
    print(markdown_table(["B", "N", "d", "t(a) ms", "t(b) ms", "(b)/(a)", "(b)/(a) spectra",
                          "jacobian rel. diff", "eigenvalue rel. diff"], rows))
    met = all(r[5] > 1 and r[8] < 1e-8 for r in rows)
    print(f"\nTarget: (b)/(a) > 1 and eigenvalues equal to 1e-8 relative: "
          f"{'met' if met else 'NOT met'}.\n")


if __name__ == "__main__":
    main()
