"""[H24] official protocol against its variants, on the experiment's own draws (Halder, arXiv
2411.17807, code `LDM.py`; docs/conformance/h24.md).

Runs cells of `memphase.simulate.experiments.linear_model` (official fit, T = 2, n_ref = 1e4) and
prints P(generalizing) with its 95% Wilson interval over the training sets:
  1. criterion covariance: generated_covariance "BBt" at d = 10, N = 20 (the "BtB" value, on the
     same draws, is the cell of data/configs/linear_model_official.toml);
  2. shared reference sets: reference "shared" at d = 10, N = 20 and d = 100, N = 400 on seeds
     0..5, i.e. six reference draws each: the spread of P across them is the reference-set
     variance that a shared set hides (its interval is conditional on the one set).
Usage: OMP_NUM_THREADS=1 nice -n 10 python benchmarks/h24_protocol_variants.py [repeats=40]
"""

import sys
import time

from memphase.simulate.config import validate
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


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
