"""Real-data figures on the scikit-learn digits (needs `pip install 'memphase[data]'`).

1. digits_pairs.png: samples of the empirical score (N = 30 and N = 1000 training digits) and of the
   Gaussian with the PCA spectrum (N = 1000), each beside its nearest training digit, with the
   [GDPLLW23] distance ratio |x - NN1| / |x - NN2| (memorized when < 1/3).
2. digits_band_tau.png (given a geometric_digits result file): per-band critical noise against the
   band variance on log axes, measured and both theories ([ALD24], REM) with the PCA spectrum.

Run: python examples/digits_figures.py [data/results/geometric_digits.h5] (about 1 CPU-minute).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from memphase.analysis.plots.real_data import nearest_training, plot_band_critical_tau, plot_digit_pairs
from memphase.physics.schedules import make_schedule
from memphase.simulate.data import digits
from memphase.simulate.data.real import to_pixels
from memphase.simulate.sampling import sample
from memphase.simulate.scores import make_score

OUT = Path("data/results")


def generated_panel(n_train: int, score: str, k: int = 8, seed: int = 0):
    """(title, generated, nearest, ratios, ratio of all 128 samples) in pixel units 0..16;
    pixel space d = 64, pixels in [0, 1] for the dynamics, OU schedule from tau = 1e2 to 1e-3."""
    data = digits(n_train, seed=seed)
    sch = make_schedule("ou")
    x = sample(make_score(score, data, sch), sch, 128, steps=150,
               t_max=float(sch.time_of_tau(1e2)), t_min=float(sch.time_of_tau(1e-3)),
               seed=10_000 + seed, record=2)
    xn, tn = x.numpy(), data.x.numpy()
    idx, ratio = nearest_training(xn, tn)
    gen = np.clip(to_pixels(data, xn), 0, 16)
    near = to_pixels(data, tn[idx])
    title = f"{score}, N={n_train}"
    return (title, gen[:k], near[:k], ratio[:k]), float(np.mean(ratio < 1 / 3))


def main(argv):
    OUT.mkdir(parents=True, exist_ok=True)
    panels = []
    for n, score in ((30, "empirical"), (1000, "empirical"), (1000, "population")):
        panel, mem = generated_panel(n, score)
        print(f"{score:10s} N={n:5d}: memorization ratio {mem:.3f} (128 samples)")
        panels.append(panel)
    plot_digit_pairs(panels, OUT / "digits_pairs.png")
    print("wrote", OUT / "digits_pairs.png")
    if argv:
        from memphase.analysis.results import open_results

        ds = open_results(argv[0])
        plot_band_critical_tau(ds, OUT / "digits_band_tau.png")
        print("wrote", OUT / "digits_band_tau.png")


if __name__ == "__main__":
    main(sys.argv[1:])
