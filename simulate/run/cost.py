"""Calibrated time model of the suite's hot loops, for the per-cell estimates a sweep prints
before it runs (`memphase.simulate.sweep.estimate_cell` and the experiments' own `estimate`).

Per-element costs of ONE CPU thread, fitted to benchmarks/RESULTS.md (2-core AMD EPYC, AVX2,
torch 2.13 with MKL; float32, B = 1024, N = 16384, d = 16 ... 1024):

    empirical-score kernel   t = B N (2.1 + 0.045 d) ns       (within 5% at d = 16, 64, 256, 1024)
    nearest neighbours (k=2) t = B N (1.1 + 0.031 d) ns       (within 5% at d = 16, 64, 256)

float64 costs about twice as much. A sampler step adds a fixed Python/schedule overhead and a few
elementwise passes over the (B, d) state. These are estimates for planning (the printed line says
'rough'): other CPUs differ by a constant factor, and a loaded machine is slower.
"""

from __future__ import annotations

__all__ = ["kernel_seconds", "nearest_seconds", "gaussian_score_seconds", "sampling_seconds",
           "sampling_bytes", "kernel_block_bytes", "haar_basis_cost", "with_manifold_basis", "BASIS_BYTES_PER_D2",
           "BASIS_SECONDS_PER_D3", "FINISH_SECONDS", "FINITE_N_SECONDS_PER_SIZE",
           "finite_n_theory_seconds"]

#: a Haar-random d x d basis (QR of a Gaussian matrix, `memphase.simulate.data.
#: random_orthonormal_basis`; built by gaussian_mixture, linear_manifold and rotated
#: spectrum_gaussian): measured peak 5.05 .. 5.3 x 8 d^2 bytes and 0.31 .. 0.62 ns x d^3 per
#: thread at d = 1024 .. 3072 (issue #26 item 10: at speciation's d = 16384 that is ~10 GiB and
#: ~30 min, which its estimate missed); rounded up
BASIS_BYTES_PER_D2, BASIS_SECONDS_PER_D3 = 6 * 8, 0.7e-9

#: the phases after the cells that every job has: writing the results file and drawing its
#: figures (measured on the shared 2-core box: quickstart with N = 4, 16 wrote in ~1 s and drew
#: its figure in ~3 s; the job's own theory in `assemble` comes on top, see `estimate_assembly`)
FINISH_SECONDS = 4.0
#: the finite-N collapse time of one training-set size (`physics.critical.collapse_time_finite_n`
#: for isotropic data): measured 0.42 s (one N, d = 16) to 0.54 s (two N, d = 64) per size on
#: one thread; rounded up
FINITE_N_SECONDS_PER_SIZE = 0.6

_KERNEL_NS = (2.1, 0.045)        # a + b d nanoseconds per (query, training point) pair
_NEAREST_NS = (1.1, 0.031)
_FLOAT64_FACTOR = {"float32": 1.0, "float64": 2.0}
_ITEM = {"float32": 4, "float64": 8}
_RUN_S = 0.05                    # set-up of a run: data, score, time grid, observers
_STEP_S = 4e-4                   # Python, schedule and bookkeeping per sampler step
_ELEMENTWISE_NS = 2.0            # per state entry per step (noise draw, update, clamp)


def _factor(dtype: str) -> float:
    if dtype not in _FLOAT64_FACTOR:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return _FLOAT64_FACTOR[dtype]


def kernel_seconds(b: int, n: int, d: int, dtype: str = "float32") -> float:
    """One call of the streaming empirical score on B queries and N training points."""
    a, per_d = _KERNEL_NS
    return 1e-9 * b * n * (a + per_d * d) * _factor(dtype)


def nearest_seconds(b: int, n: int, d: int, dtype: str = "float32") -> float:
    """One `memphase.analysis.memorization.nearest_neighbors` pass (k <= 2)."""
    a, per_d = _NEAREST_NS
    return 1e-9 * b * n * (a + per_d * d) * _factor(dtype)


def gaussian_score_seconds(b: int, d: int, dtype: str = "float32") -> float:
    """One call of a Gaussian (population / linear) score: a (B, d) x (d, d) product."""
    return 1e-9 * b * d * (d + 10) * _factor(dtype)


def sampling_seconds(score: str, b: int, n: int, d: int, steps: int, record: int,
                     dtype: str = "float32", method: str = "sde") -> float:
    """A reverse run of `steps` steps (Heun's ODE method: two score calls per step) with a
    nearest-training-point observer at `record` recordings (free for the empirical score, which
    finds the nearest point inside the kernel) and two final nearest-neighbour passes."""
    calls = steps * (2 if method == "ode" else 1)
    if score == "empirical":
        per_call = kernel_seconds(b, n, d, dtype)
        observe = 0.0
    else:
        per_call = gaussian_score_seconds(b, d, dtype)
        observe = record * nearest_seconds(b, n, d, dtype)
    step = _STEP_S + 1e-9 * _ELEMENTWISE_NS * b * d * _factor(dtype)
    return (_RUN_S + calls * per_call + steps * step + observe
            + 2 * nearest_seconds(b, n, d, dtype))


def kernel_block_bytes(b: int, n: int, dtype: str = "float32") -> int:
    """The (B, chunk) logits block of one streaming empirical-score call (kernel.default_chunk)
    and its copy for the nearest-index resolution."""
    from ..scores.kernel import default_chunk

    _factor(dtype)
    return 2 * _ITEM[dtype] * b * default_chunk(b, n)


#: bytes per training entry N (d+1) beyond the set itself: float64 copies made by the final
#: nearest-neighbour passes and the observers; fitted so that the estimate covers the measured peak
#: RSS of every experiment's cells (tests/simulate/test_memory_estimate.py: measured 5-7 float32
#: copies of the set at N = 1e5, d = 64, where 3 were counted before)
_TRAIN_EXTRA_BYTES = 24


def sampling_bytes(b: int, n: int, d: int, record: int, dtype: str = "float32") -> int:
    """Memory of a reverse run: the training set and its augmented keys (~3 N (d+1) numbers) and
    the float64 copies of the nearest-neighbour passes (_TRAIN_EXTRA_BYTES per entry), the (B, d)
    state and its temporaries (~6 B d), one kernel block, and the float64 nearest index and
    distance recorded at each recording (16 B bytes each)."""
    _factor(dtype)
    return ((_ITEM[dtype] * 3 + _TRAIN_EXTRA_BYTES) * n * (d + 1) + _ITEM[dtype] * 6 * b * d
            + kernel_block_bytes(b, n, dtype) + 16 * record * b)


def haar_basis_cost(d: int) -> dict:
    """{'memory_bytes', 'seconds'} of building one Haar-random d x d basis: the peak of the QR
    (BASIS_BYTES_PER_D2 d^2 bytes) and its time (BASIS_SECONDS_PER_D3 d^3 s, one thread)."""
    return {"memory_bytes": int(BASIS_BYTES_PER_D2 * d * d),
            "seconds": float(BASIS_SECONDS_PER_D3 * float(d) ** 3)}


def with_manifold_basis(memory_bytes: float, seconds: float, d: int, n: int, item: int):
    """(memory, seconds) of a cell that also draws a linear manifold in d dimensions: the Haar
    d x d basis (`haar_basis_cost`, its QR peak) and the d x d basis and covariance the data keeps
    beside the cell's own terms; `item` bytes per value of the n x d training set."""
    basis = haar_basis_cost(d)
    memory = max(memory_bytes + 2 * 8 * d * d, basis["memory_bytes"] + item * n * d)
    return memory, seconds + basis["seconds"]


def finite_n_theory_seconds(sizes: int) -> float:
    """Seconds to compute the isotropic finite-N collapse time for `sizes` training-set sizes
    (FINITE_N_SECONDS_PER_SIZE each)."""
    return FINITE_N_SECONDS_PER_SIZE * int(sizes)
