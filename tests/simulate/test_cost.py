"""The planning time model (simulate/run/cost.py): its scaling laws, not absolute timings (those are
calibrated and checked against measured runs in benchmarks/bench_sweep.py)."""

import pytest

from memphase.simulate.run.cost import gaussian_score_seconds, kernel_seconds, nearest_seconds, sampling_seconds


def test_kernel_and_nearest_are_linear_in_b_and_n_and_affine_in_d():
    for f in (kernel_seconds, nearest_seconds):
        base = f(100, 1000, 16)
        assert f(200, 1000, 16) == pytest.approx(2 * base)
        assert f(100, 3000, 16) == pytest.approx(3 * base)
        # affine in d: equal increments for equal steps
        assert f(100, 1000, 48) - f(100, 1000, 32) == pytest.approx(f(100, 1000, 32) - base)
        assert f(100, 1000, 16, "float64") > base


def test_sampling_cost_follows_the_score_and_method():
    emp = sampling_seconds("empirical", 512, 4096, 16, 200, 60)
    pop = sampling_seconds("population", 512, 4096, 16, 200, 60)
    assert emp > pop      # the empirical score touches all N points at every step
    # the population score does not depend on N except through the observer
    small = sampling_seconds("population", 512, 16, 16, 200, 60)
    assert pop - small == pytest.approx(62 * (nearest_seconds(512, 4096, 16)
                                              - nearest_seconds(512, 16, 16)))
    sde = sampling_seconds("empirical", 512, 4096, 16, 200, 60, method="sde")
    ode = sampling_seconds("empirical", 512, 4096, 16, 200, 60, method="ode")
    assert ode - sde == pytest.approx(200 * kernel_seconds(512, 4096, 16))
    assert gaussian_score_seconds(10, 8) < gaussian_score_seconds(10, 16)


def test_bad_dtype_is_named():
    with pytest.raises(ValueError, match="float16"):
        kernel_seconds(1, 1, 1, "float16")


def test_sweep_estimate_depends_on_the_cell_score():
    from memphase.simulate.sweep import estimate_cell

    cfg = {"data": {"d": 16}, "sampler": {"n_samples": 512, "steps": 200, "record": 60,
                                           "dtype": "float32", "method": "sde"}}
    exp = type("NoEstimate", (), {})()        # an experiment without its own estimate
    emp = estimate_cell(exp, cfg, {"score": "empirical", "n_train": 4096})["seconds"]
    pop = estimate_cell(exp, cfg, {"score": "population", "n_train": 4096})["seconds"]
    assert emp == pytest.approx(sampling_seconds("empirical", 512, 4096, 16, 200, 60))
    assert pop < emp


def test_memory_model_uses_the_kernels_block():
    """The logits block in the memory estimate is the kernel's own (B, chunk) block."""
    from memphase.simulate.run.cost import kernel_block_bytes, sampling_bytes
    from memphase.simulate.scores.kernel import default_chunk

    assert kernel_block_bytes(1024, 16384, "float32") == 2 * 4 * 1024 * default_chunk(1024, 16384)
    assert kernel_block_bytes(64, 100, "float64") == 2 * 8 * 64 * 100     # chunk = N when N small
    # N beyond the chunk: only the training set and its keys grow with N, the block does not
    # (issue 12: the per-entry cost now includes the float64 copies measured at the peak)
    from memphase.simulate.run.cost import _TRAIN_EXTRA_BYTES

    small, big = sampling_bytes(512, 20000, 16, 60), sampling_bytes(512, 40000, 16, 60)
    assert big - small == (4 * 3 + _TRAIN_EXTRA_BYTES) * 20000 * 17


def test_estimate_counts_the_phases_after_the_cells():
    """Issue 25: the estimate printed before a run includes the assembly (the job's theory),
    writing and figures, not only the cells. Bundled quickstart: six sizes N >= 2, each with a
    finite-N collapse time computed in `assemble`."""
    import re

    from memphase.simulate.run.bundled import bundled_configs
    from memphase.simulate.run.cost import FINISH_SECONDS, finite_n_theory_seconds
    from memphase.simulate.sweep import assembly_seconds, check_confirmed, estimate_lines, load_sweep
    from memphase.simulate.sweep.plan import cell_estimates
    from memphase.simulate.run.config import ConfigError

    plan = load_sweep(bundled_configs()["quickstart"])
    after = assembly_seconds(plan)
    assert after == pytest.approx(FINISH_SECONDS + finite_n_theory_seconds(6))
    assert finite_n_theory_seconds(6) >= 6 * 0.4   # measured 0.42-0.54 s per size
    cells = sum(e["seconds"] for e in cell_estimates(plan, plan.cells))
    (line,) = estimate_lines(plan)
    assert "after them (assembly with the job's theory, writing, figures)" in line
    total = re.search(r"total ([0-9.]+) (s|min) of compute", line)
    value = float(total.group(1)) * (60 if total.group(2) == "min" else 1)
    assert value == pytest.approx(cells + after, rel=0.06)   # printed with 2 digits
    # a job without its own estimate_assembly still counts writing and figures
    plan.exp = type("NoAssemblyEstimate", (), {})()
    assert assembly_seconds(plan) == FINISH_SECONDS
    # the --yes threshold sees the assembly too
    one = plan.cells[:1]
    with pytest.raises(ConfigError, match="--yes"):
        check_confirmed(plan, one, yes=False,
                        limit=cell_estimates(plan, one)[0]["seconds"] + 0.5 * FINISH_SECONDS)
