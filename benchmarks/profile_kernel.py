"""Where the time of the empirical-score kernel goes at small d, and why the exp target is bounded.

Replays the passes of the fast path of `memphase.simulate.scores.kernel.mixture_stats` on one (B, chunk)
block of real logits (forward process at t = 0.5, as in bench_empirical_score.py) and times each
pass separately (best of k, interleaved), scaled to the N / chunk blocks of one call:

    mm1      [a x, -s, c] @ [y, 1, |y|^2]^T -> (B, chunk) shifted logits (BLAS, K = d + 2)
    amax     row maxima (the winning chunk of each row is kept; its argmax is resolved once at the
             end of the call, `kernel._resolve_nearest`)
    clamp    floor of the shifted logits (keeps exp2 off its slow underflow path; skipped, and shown
             as 0, when the Cauchy-Schwarz bound of the block is above the floor, as at small d)
    exp2     in-place base-2 exponential (the kernel's exp)
    sum      row sums
    mm2      running (B, d) weighted sum += p @ y (BLAS, N = d)

and, for comparison: `torch.exp` / `torch.exp2` of the same (B, chunk) block, the whole kernel
call, and the plain `torch.exp` of a (B, N) tensor (the reference of the issue's target
"exp fraction = t(exp of B x N) / t(kernel) >= 0.7"). The bound printed at the end is

    exp fraction <= t(exp of B x N) / (t(mm1) + t(mm2) + t(exp2))

i.e. what the kernel could reach if every pass except the two matmuls and the exponentials were
free; the matmuls alone (their flop count at the measured BLAS rate) are reported as well.

--compile also times a torch.compile'd (inductor, C++) fusion of clamp + exp2 + row sum against
the eager passes on one block (first compile: 30-70 s on this machine; skipped cleanly when no
compiler works). Result on the 2-core EPYC: the compiled fusion was SLOWER than eager exp2 + sum
(1.30 vs 0.76 ms per 1024 x 1024 float32 block), so the kernel does not use it.

Usage: python benchmarks/profile_kernel.py [--quick] [--d 16] [--chunks 256,1024,4096]
                                           [--threads 1] [--clock cpu] [--compile]
"""

from __future__ import annotations

import sys
import time

import torch

from common import best_times, markdown_table, setup
from bench_empirical_score import make_problem

from memphase.simulate.scores import kernel
from memphase.simulate.scores.kernel import augment_keys, mixture_stats


def shifted_block(x, keys, a, c, chunk):
    """(q, kc, logits, clamp): base-2 queries with the shift column set to the first block's row
    maxima, the first `chunk` keys, the shifted logits of that block (as after chunk 0 of a call),
    and whether the kernel clamps that block (its lower bound reaches the floor)."""
    d = x.shape[1]
    q = kernel._augment_queries(x, a * kernel._LOG2E, c * kernel._LOG2E)
    kc = keys[:chunk]
    shift = torch.mm(q, kc.T).amax(dim=1)
    q[:, d] = -shift
    lower = kernel._logit_lower_bounds(q, keys, chunk)[0] - shift
    return q, kc, torch.mm(q, kc.T), bool(lower.min() < kernel._EXP2_FLOOR[x.dtype])


def pass_times(x, keys, a, c, chunk, repeat, device) -> tuple[dict, bool]:
    """Best time (s) of each pass over ONE (B, chunk) block of real shifted logits, and whether
    the kernel would clamp that block."""
    d = x.shape[1]
    q, kc, logits, clamp_used = shifted_block(x, keys, a, c, chunk)
    floor = kernel._EXP2_FLOOR[x.dtype]
    clamped = logits.clamp(min=floor)
    work = torch.empty_like(logits)
    acc = x.new_zeros(x.shape[0], d)
    y = kc[:, :d]
    fns = {
        "mm1": lambda: torch.mm(q, kc.T, out=work),
        "amax": lambda: logits.amax(dim=1),
        "clamp": lambda: torch.clamp(logits, min=floor, out=work),
        "exp2": lambda: torch.exp2(clamped, out=work),
        "sum": lambda: clamped.sum(dim=1),
        "mm2": lambda: acc.addmm_(clamped, y),
        "exp (block)": lambda: torch.exp(clamped, out=work),
    }
    return best_times(fns, repeat=repeat, device=device), clamp_used


def fused_exp_sum(logits, floor: float):
    """exp2(max(l, floor)) and its row sums: the passes torch.compile could fuse."""
    p = torch.exp2(torch.clamp(logits, min=floor))
    return p, p.sum(dim=1)


def compile_comparison(x, keys, a, c, chunk, repeat, device) -> str:
    """One line: compiled fusion vs the eager in-place passes, or why compile is unavailable."""
    _, _, logits, _ = shifted_block(x, keys, a, c, chunk)
    floor = kernel._EXP2_FLOOR[x.dtype]
    work = torch.empty_like(logits)
    try:
        fused = torch.compile(fused_exp_sum, dynamic=False)
        t0 = time.perf_counter()
        p_c, s_c = fused(logits, floor)
        t_compile = time.perf_counter() - t0
    except Exception as e:  # no C++ compiler, unsupported platform, ...
        return f"torch.compile unavailable ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    p_e, s_e = fused_exp_sum(logits, floor)
    err = float((s_c - s_e).abs().max() / s_e.abs().max())

    def eager():
        torch.clamp(logits, min=floor, out=work)
        work.exp2_()
        return work.sum(dim=1)

    t = best_times({"compiled": lambda: fused(logits, floor), "eager": eager}, repeat=repeat,
                   device=device)
    return (f"torch.compile (inductor) of clamp + exp2 + row sum on one ({x.shape[0]}, {chunk}) "
            f"block: {1e3 * t['compiled']:.3g} ms vs eager in-place passes "
            f"{1e3 * t['eager']:.3g} ms (compile {t_compile:.1f} s, max rel. diff of the sums "
            f"{err:.1e}).")


def add_arguments(ap) -> None:
    """The flags of this script beyond the common ones."""
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--b", type=int, default=None)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--chunks", default=None, help="comma-separated chunk sizes")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--compile", action="store_true",
                    help="also time a torch.compile'd fusion (slow to compile)")


def main(argv=None):
    args, timing, device = setup(__doc__, "Kernel profile", argv, extra_args=add_arguments, repeat=(3, 7))
    dtype = getattr(torch, args.dtype)
    b = args.b or (256 if args.quick else 1024)
    n = args.n or (4096 if args.quick else 16384)
    chunks = [int(v) for v in args.chunks.split(",")] if args.chunks else \
        ([256, 1024] if args.quick else [256, 512, 1024, 2048, 4096])
    repeat = args.repeat
    d = args.d
    y, x, sched, m, s2 = make_problem(b, n, d, dtype, device)
    keys = augment_keys(y)
    a, c = m / s2, -m * m / (2 * s2)
    src = -30.0 * torch.rand(b, n, dtype=dtype, device=device)
    dst = torch.empty_like(src)

    print(f"## Kernel profile (d = {d}, B = {b}, N = {n}, {args.dtype}, device: {device}; "
          f"{timing})\n")
    print("ms per call (all N / chunk blocks); 'kernel' is one whole `mixture_stats` call, "
          "'exp BxN' a plain torch.exp of a (B, N) tensor (the target's reference).\n")
    passes = ["mm1", "amax", "clamp", "exp2", "sum", "mm2"]
    rows = []
    for chunk in chunks:
        if chunk > n or n % chunk:
            continue
        blocks = n // chunk
        t, clamp_used = pass_times(x, keys, a, c, chunk, repeat, device)
        whole = best_times({"kernel": lambda: mixture_stats(x, keys, a, c, chunk=chunk),
                            "exp BxN": lambda: torch.exp(src, out=dst)},
                           repeat=repeat, device=device)
        per_call = {k: 1e3 * v * blocks for k, v in t.items()}
        if not clamp_used:
            per_call["clamp"] = 0.0
        total = sum(per_call[k] for k in passes)
        bound = whole["exp BxN"] / (sum(t[k] for k in ("mm1", "mm2", "exp2")) * blocks)
        rows.append([chunk, f"{b * chunk * x.element_size() / 2**20:.3g}",
                     *[per_call[k] for k in passes], total, 1e3 * whole["kernel"],
                     per_call["exp (block)"], 1e3 * whole["exp BxN"],
                     whole["exp BxN"] / whole["kernel"], bound])
        print(f"  chunk {chunk}: {rows[-1]}", file=sys.stderr)
    header = ["chunk", "block MiB", *passes, "sum of passes", "kernel", "exp (blocks)", "exp BxN",
              "exp fraction", "bound"]
    print(markdown_table(header, rows))
    flops = 2 * b * n * (2 * d + 2)
    if rows:
        best_row = dict(zip(header, max(rows, key=lambda r: r[-2])))
        mm_ms = best_row["mm1"] + best_row["mm2"]
        print(f"\nClamp {'active' if clamp_used else 'skipped (logit bound above the floor)'}. "
              f"The two matmuls do {flops / 1e9:.3g} GFLOP per call: "
              f"{flops / (mm_ms * 1e-3) / 1e9:.3g} GFLOP/s measured (chunk {best_row['chunk']}); "
              f"exp2 / exp of the same block: "
              f"{best_row['exp2'] / best_row['exp (blocks)']:.2f}. 'bound' = t(exp BxN) / "
              "(t(mm1) + t(mm2) + t(exp2)): the exp fraction if every other pass were free.\n")
    if args.compile:
        print(compile_comparison(x, keys, a, c, min(1024, n), repeat, device) + "\n")


if __name__ == "__main__":
    main()
