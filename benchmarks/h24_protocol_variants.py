"""[H24] official protocol against its variants, on the experiment's own draws (Halder, arXiv
2411.17807, code `LDM.py`; docs/conformance/h24.md).

Runs cells of `memphase.simulate.experiments.linear_model` (official fit, T = 2, n_ref = 1e4) and
prints P(generalizing) with its 95% Wilson interval over the training sets:
  1. criterion covariance: generated_covariance "BBt" at d = 10, N = 20 (the "BtB" value, on the
     same draws, is the cell of data/configs/linear_model_official.toml);
  2. shared reference sets: reference "shared" at d = 10, N = 20 and d = 100, N = 400 on seeds
     0..5, i.e. six reference draws each: the spread of P across them is the reference-set
     variance that a shared set hides (its interval is conditional on the one set).
  3. `paired` (argument "paired"): d = 10, N = 20, 400 training sets, one shared reference set,
     the same sets and noise draws under v B^T B and v B B^T
     (`memphase.physics.linear_model.generalization_probability`): both P and the number of sets
     whose sign of Delta changes.
Usage: OMP_NUM_THREADS=1 nice -n 10 python benchmarks/h24_protocol_variants.py [repeats=40]
       OMP_NUM_THREADS=1 nice -n 10 python benchmarks/h24_protocol_variants.py paired
"""

import sys
import time

import numpy as np

from memphase.physics.linear_model import generalization_probability, sign_probability
from memphase.simulate.run.config import validate
from memphase.simulate.experiments import linear_model


def cell(n, d, seed, repeats, **measure):
    cfg = validate({"job": "linear_model",
                    "grid": {"n_train": [n], "d": [d], "T": [2.0], "fit": ["official"],
                             "seeds": [seed]},
                    "measure": {"repeats": repeats, "n_ref": 10_000, "expected_kl_repeats": 0,
                                "mc_n_train": [], **measure}}, linear_model.SCHEMA)
    return linear_model.run_cell(cfg, {"n_train": n, "d": d, "T": 2.0, "fit": "official",
                                       "seed": seed})


def show(label, out):
    print(f"{label}: P = {out['p_generalizing']:.3f} "
          f"[{out['p_generalizing_low']:.3f}, {out['p_generalizing_high']:.3f}]", flush=True)


def main(repeats=40):
    t0 = time.time()
    show("d=10 N=20 BBt fresh seed 0", cell(20, 10, 0, repeats, generated_covariance="BBt"))
    for n, d in ((20, 10), (400, 100)):
        for seed in range(6):
            show(f"d={d} N={n} BtB shared seed {seed}",
                 cell(n, d, seed, repeats, reference="shared"))
    print(f"{time.time() - t0:.0f} s")


def paired(repeats=400, seed=0):
    t0 = time.time()
    kw = dict(fit="official", n_ref=10_000, reference="shared", return_deltas=True)
    _, dt = generalization_probability(20, 10, repeats, seed, 2.0, covariance="BtB", **kw)
    _, db = generalization_probability(20, 10, repeats, seed, 2.0, covariance="BBt", **kw)
    for name, d in (("BtB", dt), ("BBt", db)):
        p, lo, hi = sign_probability(d)
        print(f"d=10 N=20 {name} shared seed {seed}, {repeats} sets: P = {p:.3f} [{lo:.3f}, {hi:.3f}]")
    print(f"sign of Delta differs on {int(np.sum(np.sign(dt) != np.sign(db)))} of {repeats} sets; "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["paired"]:
        paired()
    else:
        main(*(int(a) for a in sys.argv[1:]))
