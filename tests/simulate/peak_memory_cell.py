"""Measure one cell's peak resident memory (run as a script by test_memory_estimate.py).

argv[1]: a JSON job config whose cells()[-1] is the cell to measure, after a tiny warm-up cell:
cells()[0], or the first cell of the config argv[2] when given. Prints JSON {"measured": bytes, "estimate": bytes}: the peak RSS (VmHWM, reset through
/proc/self/clear_refs after the warm-up) above the RSS before the cell, and estimate_cell's
memory_bytes of that cell."""

import gc
import json
import sys


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def main():
    import torch

    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import get_experiment
    from memphase.simulate.sweep import compute_cell, estimate_cell

    torch.set_num_threads(1)
    raw = json.loads(sys.argv[1])
    exp = get_experiment(raw["job"])
    cfg = validate(raw, exp.SCHEMA)
    cells = exp.cells(cfg)
    warm_cfg = validate(json.loads(sys.argv[2]), exp.SCHEMA) if len(sys.argv) > 2 else cfg
    warm, cell = exp.cells(warm_cfg)[0], cells[-1]
    assert compute_cell(raw["job"], warm_cfg, warm, 1)[0] == "ok"
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS
    base = _status("VmRSS")
    out = compute_cell(raw["job"], cfg, cell, 1)
    assert out[0] == "ok", out[1:3]
    peak = _status("VmHWM")
    print(json.dumps({"measured": peak - base, "estimate": estimate_cell(exp, cfg, cell)
                      ["memory_bytes"], "cell": cell}))


if __name__ == "__main__":
    main()
