"""Summary of a `training_dynamics` result (either protocol): tau_mem at two f_mem thresholds
(0.5 as stored, 0.1 the onset), tau_gen, and the exponents of tau ~ N^a by the uncensored fit and
by the censored (Tobit) fit, with seed-bootstrap intervals (docs/conformance/bubm25.md,
docs/training_dynamics.md).

    python examples/bubm25_summary.py data/results/training_dynamics_bubm25.h5
"""

import sys

import numpy as np

from memphase.analysis.results import open_results
from memphase.analysis.training_dynamics import (censored_power_law_fit, distinct_resamples,
                                                 extract_times, power_law_fit)


def main(path):
    ds = open_results(path).squeeze()
    n = ds["n_train"].values
    steps = ds["train_step"].values
    budget, first = float(steps[-1]), float(steps[0])
    print(f"{path}: protocol {ds.attrs.get('protocol', 'memphase')}, N = {list(n)}, "
          f"seeds = {list(ds['seed'].values)} ({distinct_resamples(ds.sizes['seed'])} distinct "
          f"resamples), checkpoints {list(steps)}")
    print("f_mem (seed mean) per N at each checkpoint:")
    for i, nn in enumerate(n):
        print(f"  N = {nn:4d}:", " ".join(f"{v:.2f}" for v in
                                          ds["memorization_ratio"].isel(n_train=i).mean("seed").values))
    for thr in (0.5, 0.1):
        t = extract_times(ds, threshold=thr,
                          quality=ds.attrs.get("gen_quality", "score_error_population"),
                          tolerance=ds.attrs.get("gen_tolerance", 0.2))
        tau = t["tau_mem"].transpose("n_train", "seed").values
        cens = t["tau_mem_censored"].transpose("n_train", "seed").values
        geo = [float(np.exp(np.mean(np.log(r)))) if np.all(np.isfinite(r)) else np.nan for r in tau]
        ncens = cens.sum(1)
        print(f"threshold {thr}: tau_mem geometric seed mean per N "
              + ", ".join(f"{g:.0f}" if np.isfinite(g) else f">{budget:.0f}" for g in geo)
              + f"; censored seeds per N {list(ncens)}")
        p = power_law_fit(n, tau)
        print(f"  uncensored fit: a = {p['exponent']:.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}]"
              f" over {p['n_points']} N")
        c = censored_power_law_fit(n, np.where(cens, budget, tau), lower=cens)
        print(f"  censored (Tobit) fit: a = {c['exponent']:.2f} [{c['ci_low']:.2f}, "
              f"{c['ci_high']:.2f}] ({c['n_exact']} exact, {c['n_censored_lower']} lower bounds)")
    tg = ds["tau_gen"].transpose("n_train", "seed").values
    tgc = ds["tau_gen_censored"].transpose("n_train", "seed").values
    print(f"tau_gen per N (seeds): {tg.tolist()}; at the first checkpoint ({first:.0f}, an upper "
          f"bound): {int(tgc.sum())} of {tgc.size}")
    c = censored_power_law_fit(n, tg, upper=tgc)
    print(f"  tau_gen censored fit: a = {c['exponent']:.2f} [{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
          f" ({c['n_exact']} exact, {c['n_censored_upper']} upper bounds)")
    print("best score error per N:", np.round(ds["score_error_population"].min("train_step")
                                              .mean("seed").values, 3).tolist())
    print("train seconds per cell (mean):", float(ds["train_seconds"].mean()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/results/training_dynamics_bubm25.h5")
