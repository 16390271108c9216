"""Regenerate the figure gallery (docs/gallery.md and docs/figures/gallery/*.png) from the bundled
configs: ONE command,

    .venv/bin/python docs/make_gallery.py  # every config up to ~5 min (about 40 min on 2 cores)
    python docs/make_gallery.py --quick    # only the configs of about a minute or less
    python docs/make_gallery.py --all      # also the long ones (hours; see RUNTIME below)
    python docs/make_gallery.py --only collapse speciation   # just these
    python docs/make_gallery.py --page-only                  # rewrite the page from the PNGs kept
    python docs/make_gallery.py --from DIR   # redraw from DIR/NAME.h5 where present, run the rest

Each selected config runs with `memphase run NAME -o TMP/NAME.h5` in a temporary folder (one
thread per process, niced); every PNG the run draws is scaled to about 100 dpi and written to
docs/figures/gallery/NAME/. A config not run this time keeps the PNGs an earlier run left there, and
the page says how to make them if there are none. The page pairs each figure with the claim of
the paper it tests and the command that made it. GALLERY below is the one list of canonical
configs (a test checks it against the bundled configs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "gallery.md"
FIGURES = ROOT / "docs" / "figures" / "gallery"
MAX_BYTES = 300_000  # per committed PNG
DPI = 100


@dataclass(frozen=True)
class Entry:
    name: str        # bundled config (or "validate" for `memphase validate --quick`)
    claim: str       # the paper's claim the figure tests, citing keys as the docs do
    runtime: str     # as measured on 2 cores (config header / README)
    tier: str        # "quick" (<~1 min), "default" (<~5 min) or "slow"
    shows: str = ""  # what the committed figure measures, against the claim (with its numbers)


GALLERY = [
    Entry("quickstart", "[BBDM24]: at the end noise (tau = 1e-4) the exact empirical score lands "
          "every sample on a training point and the population score none; the collapse time t_C "
          "falls with N as the REM law predicts (measured above it: a finite-d excess, part of it "
          "explained by the finite-N theory); stopped at a noise tau, the fraction of trajectories "
          "already on their final training point falls with N across the REM boundary "
          "N_b(tau) = (1 + s^2/tau)^(d/2), shifted to larger N by the same excess.", "30 s",
          "quick"),
    Entry("collapse", "[BBDM24]: the measured collapse time against the REM t_C(N, d) and the "
          "finite-N theory, the (N, time) phase diagram of condensation, and the memorization "
          "phase diagram over (N, d) with the boundary N_b(d) = (1 + 1/tau_end)^(d/2).",
          "1 min", "quick"),
    Entry("speciation", "[BBDM24]: the cloning probability phi(t) of a two-class mixture crosses "
          "its speciation level at t_S = (1/2) ln d, for the population and the empirical score.",
          "1.5-8 min", "default"),
    Entry("geometric", "[ALD24]: on a linear manifold the tangent directions of small variance are "
          "lost first (geometric memorization): per-block critical noise measured at three anchors "
          "and two signatures against the [ALD24] per-block tau_c and the single REM tau_C.",
          "1-3 min", "default"),
    Entry("geometric_official", "[ALD24]: the official empirical-score panel (official seed-2 "
          "data, origin anchor, official finite-difference estimator) beside the exact Jacobian "
          "and the official theory panel (docs/conformance/ald24.md).", "12 s", "quick"),
    Entry("geometric_memphase", "[ALD24] with memphase's own protocol (Haar generator, log grid down "
          "to the REM collapse, noisy anchors): per-block critical noise at training, fresh and "
          "mean anchors beside the [ALD24] and REM theories.", "1 min", "default"),
    Entry("geometric_phase", "[ALD24]: the fraction of each tangent block lost at fixed noise "
          "over (alpha, block std ratio), with the [ALD24] and REM boundaries.", "2 min",
          "default"),
    Entry("geometric_learned", "[ALD24] with learned scores: the fraction of each tangent block "
          "that DSM-trained networks lose at fixed noise, over width and training steps, beside "
          "the empirical score of the same training sets and both theories (the networks lose "
          "less, more with width and steps).",
          "4 min", "default"),
    Entry("regularization", "[BDKOS25]: Tikhonov, floor and network regularization remove the "
          "collapse onto training points; the median distance grows as strength^(1/2), with the "
          "small-c theory from the c = 0 flow invariant.", "6 min wall", "slow",
          shows="the Tikhonov collapse fraction 1, 1, 0.99, 0.40, 0.06, 0.01, 0 for c = 0, "
          "1e-6 ... 1e-1, within 0.018 of the prediction calibrated on four other seeds, and the "
          "median distance growing as c^0.497 (theory 1/2); the network-penalty axis is not "
          "resolved on a CPU budget (at most 0.5% collapsed) (docs/measured.md)."),
    Entry("regularization_official", "[BDKOS25]: the official closed-form study on the official "
          "seeds: Tikhonov and floor collapse fractions.", "0.5-1.5 min", "quick"),
    Entry("linear_model", "[H24]: the linear one-step denoiser generalizes once N/d is large: "
          "exact KL and squared Hellinger distance vs N/d with their large-N limits, "
          "P(generalizing) by the paper's and the symmetric criterion.", "36 min", "slow",
          shows="the KL infinite for N <= d and falling to its large-N limit (official fit, "
          "T = 2, d = 10: 0.948 +- 0.003 against 0.943 at N = 10^4); the reference criterion "
          "(solid, shaded 95% Wilson interval) at 0.8-1 from N of a few d up to about 10^3, down "
          "to 0.4-0.6 at N = n_ref = 10^4, the symmetric one (dashed) near 1/2 throughout "
          "(docs/conformance/h24.md)."),
    Entry("linear_model_official", "[H24]: the official protocol on its key cells (d = 10, 100; "
          "N = 20 ... 400): P(generalizing) with 95% intervals.", "5-23 min", "slow",
          shows="seed 0, 40 training sets per cell (shaded: 95% Wilson intervals): P(generalizing) "
          "0.75 [0.60, 0.86], 0.93 [0.80, 0.97], 1.00 [0.91, 1] at d = 10, N = 20, 25, 50 (1.00 at "
          "N = 400) and 0.88 [0.74, 0.95] at d = 100, N = 400; 0.08, 0.03, 0.25 at d = 100, "
          "N = 20, 25, 50; the seed-0 column of docs/conformance/h24.md, to the digit."),
    Entry("memorization", "[GDPLLW23]: the memorization ratio of a trained network falls with N "
          "below the empirical score's; random labels act like N / C unconditional points "
          "(R_none(N / C)).", "7 min wall", "slow",
          shows="the learned score's ratio 0.95 up to N = 32, then 0.78, 0.53, 0.10 at N = 64, "
          "128, 256, the empirical score's 1 at every N; with C = 4 random labels 0.87 and 0.82 "
          "at N = 128, 256 against R_none(N / 4) = 0.89 and 0.77, true labels 0.92 and 0.75 (one "
          "seed; 1429 s wall on one shared core)."),
    Entry("emm", "[GDPLLW23]: the effective model memorization EMM_0.1 of two network widths, "
          "found by growing N then bisecting, with its bracket and seed spread.", "5 min",
          "default",
          shows="width 128: EMM_0.1 = 45, bracket [45, 54), seed crossings 48.3 and 39.3; width 32 "
          "is below 0.9 already at n_min = 2 (EMM < 2, red triangle)."),
    Entry("collapse_digits", "[BBDM24] on real data: the collapse time of the sklearn digits in "
          "their top-d principal coordinates against the REM and finite-N theories with the PCA "
          "spectrum (docs/real_data.md).", "2-5 min", "default"),
    Entry("collapse_digits_boundary", "[BBDM24] on real data: the memorization ratio vs N around "
          "the boundary N_b of the PCA spectrum.", "15 s - 2 min", "quick"),
    Entry("geometric_digits", "[ALD24] on real data: per-band critical noise of the digits' PCA "
          "bands at three anchors against [ALD24] and REM.", "15 s - 2 min", "quick"),
    Entry("memorization_digits", "[GDPLLW23] on real data: a learned score vs the empirical "
          "score, memorization ratio vs N on the digits.", "15 s - 2 min", "default"),
    Entry("memorization_digits_labels", "[GDPLLW23] on real data: true vs random labels with the "
          "exact conditional empirical score, beside R_none(N / C).", "15 s - 2 min", "default"),
    Entry("memorization_digits_conv", "[GDPLLW23] in pixel space: the small convolutional U-Net "
          "vs the empirical score, memorization ratio vs N.", "4 min wall", "default"),
    Entry("emm_digits_conv", "[GDPLLW23] in pixel space: EMM_0.1 of the convolutional U-Net.",
          "4 min", "default",
          shows="EMM_0.1 = 23, bracket [23, 27) in both panels, seed crossings 24.3 and 23.4 "
          "(docs/real_data.md)."),
    Entry("memorization_digits_conv_labels", "[GDPLLW23] in pixel space: one class-conditional "
          "U-Net with none / true / random labels vs R_none(N / C).", "4 min", "default",
          shows="random > true > none wherever the U-Net memorizes (0.96 / 0.92 / 0.78 at N = 30, "
          "0.33 / 0.22 / 0.08 at N = 100), far below R_none(N / C) from N = 100 on (0.33 against "
          "0.98); the empirical score 1 everywhere; the docs/real_data.md table, to the digit "
          "(19 min wall with one torch thread on a shared core)."),
    Entry("memorization_digits_learned_labels", "[GDPLLW23] on real data: one class-conditional "
          "network with true / random / no labels vs the empirical score and R_none(N / C).",
          "6 CPU-min", "slow",
          shows="random > true > none wherever the network memorizes (N <= 100: 0.44, 0.27, 0.04 at "
          "N = 100), but random labels far below R_none(N / C) (0.44 against 0.63 at N = 100, "
          "0.008 against 0.44 at N = 300): one shared network does not memorize like N / C "
          "points; the "
          "same numbers as docs/real_data.md (seed 0, bit for bit)."),
    Entry("emm_digits", "[GDPLLW23] on real data: EMM_0.1 of two widths of the residual MLP.",
          "4.5 CPU-min", "default",
          shows="EMM_0.1 = 13, bracket [13, 16) at width 128 and 54, bracket [54, 64) at width 256: "
          "the wider network memorizes about 4x more points."),
    Entry("training_dynamics", "[BUBM25]: the generalization time tau_gen does not grow with N "
          "while the memorization time tau_mem grows as N^a (fit with interval, censored beyond "
          "the budget).", "55 min wall", "slow",
          shows="tau_mem ~ N^1.35 [1.31, 1.38] over N = 32 ... 256 (N = 512, 1024 beyond the "
          "16000-step budget, triangles), but tau_gen is not flat with the stored definition: "
          "N^1.05 [0.85, 1.30] by the censored fit that keeps the five first-checkpoint values "
          "as upper bounds (open down-triangles; 0.90 [0.74, 1.11] taking them for times; the "
          "best score error itself falls with N); the window tau_mem / tau_gen widens as about "
          "N^0.3 to N^0.45 (docs/training_dynamics.md)."),
    Entry("training_dynamics_sgd", "[BUBM25] with SGD: the same two times and the exponent a.",
          "7 CPU-min", "slow",
          shows="SGD with momentum 0.9, lr 3e-2, N = 32 ... 256, 2 seeds: tau_mem 1138, 3217, 8499 "
          "steps (N = 256 beyond the 16000-step budget), a = 1.45 [1.39, 1.51] against Adam's "
          "1.35: the optimizer does not bring a to 1; tau_gen N^1.26 [0.88, 1.75] by the "
          "censored fit (docs/training_dynamics.md, \"What sets the exponent\")."),
    Entry("random_features", "[BUBM25] random-features theory: the spectrum of U beside the "
          "saddle-point density, loss curves and tau_gen, tau_mem against psi_n = n / d.",
          "1 min", "quick"),
    Entry("training_dynamics_bubm25", "[BUBM25] with its official protocol (reduced): tau_mem "
          "vs N (docs/conformance/bubm25.md).", "26 min wall", "slow",
          shows="N = 8 ... 64, 4 seeds: tau_mem (f_mem = 0.5) 2708 and 3804 steps (geometric seed "
          "means) at N = 8, 16 and beyond the 4250-step budget at N = 32, 64 (triangles); a = 0.49 "
          "[0.27, 0.73] from the two uncensored N, 0.51 [0.32, 0.73] by the censored fit; tau_gen "
          "at the first checkpoint (250 steps) in 15 of 16 cells, so no tau_gen exponent "
          "(docs/conformance/bubm25.md)."),
    Entry("training_dynamics_fullbatch", "[BUBM25]: memphase's protocol with full-batch steps; "
          "the batch regime is what moves the exponent a.", "23 min wall", "slow",
          shows="N = 8 ... 64, 4 seeds: tau_mem 406, 604, 793, 1185 steps, a = 0.50 [0.41, 0.62], "
          "the official protocol's 0.51 [0.32, 0.73] at the same sizes; tau_gen at the first "
          "checkpoint in 7 of 16 cells, N^-0.46 [-0.94, -0.15] by the censored fit "
          "(docs/training_dynamics.md, \"Which ingredient moves a\")."),
    Entry("training_dynamics_bubm25_wide", "[BUBM25]: the official protocol widened to N = 128, "
          "256 (two seeds, exploratory): does the onset exponent move toward a = 1?", "12 CPU-min",
          "slow",
          shows="the stored half reading (f_mem = 0.5) is beyond the 10000-step budget at both N "
          "(triangles; f_mem 0.33 and 0.12 at the budget), so no tau_mem exponent; tau_gen 500 "
          "steps or at the first checkpoint. The onset reading of the same curves "
          "(examples/bubm25_summary.py): f_mem = 0.1 at 5169, 5159 steps (N = 128) and 8357, "
          "> 10000 (N = 256); slope 0.74 over N = 8 ... 128 and >= 0.69 from 128 to 256: the "
          "exponent does not move toward 1 up to N = 256 (docs/training_dynamics.md, "
          "\"Widening N\")."),
    Entry("validate", "Every theory check of `memphase validate --quick` (speciation and "
          "collapse times, published [ALD24], [H24], [BDKOS25] numbers): measured / theory - 1 "
          "with its 95% interval and tolerance.", "2-4 min", "default"),
]

TIERS = {"quick": 0, "default": 1, "slow": 2}


def command(entry: Entry) -> str:
    """The command a reader types to make the figure(s) of `entry`."""
    if entry.name == "validate":
        return "memphase validate --quick"
    return f"memphase run {entry.name}"


def _argv(entry: Entry, out: Path) -> list[str]:
    exe = [sys.executable, "-m", "memphase.simulate.cli"]
    if entry.name == "validate":
        return exe + ["validate", "--quick", "-o", str(out)]
    return exe + ["run", entry.name, "-q", "-o", str(out)]


def shrink(src: Path, dst: Path, dpi: int = DPI, max_bytes: int = MAX_BYTES) -> int:
    """Write `src` (a PNG drawn at 110-120 dpi) to `dst` scaled to about `dpi`, as an optimized
    256-colour PNG, scaled down further while larger than `max_bytes`; returns the bytes
    written."""
    from PIL import Image

    with Image.open(src) as im:
        src_dpi = float(im.info.get("dpi", (120, 120))[0]) or 120.0
        scale = min(1.0, dpi / src_dpi)
        im = im.convert("RGB")
        if scale < 1.0:
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.LANCZOS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        # line plots and heatmaps lose nothing visible in a 256-colour palette, at a third of
        # the size
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True,
                                                                     dpi=(dpi, dpi))
        while dst.stat().st_size > max_bytes and im.width > 400:
            im = im.resize((im.width * 4 // 5, im.height * 4 // 5), Image.LANCZOS)
            im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
    return dst.stat().st_size


def figures_of(name: str) -> list[Path]:
    """The gallery PNGs of config `name` (docs/figures/gallery/<name>/, main figure first)."""
    folder = FIGURES / name
    main = folder / f"{name}.png"
    rest = sorted(p for p in folder.glob("*.png") if p != main)
    return ([main] if main.exists() else []) + rest


def redraw(entry: Entry, results: Path, tmp: Path) -> None:
    """Draw the figures of `entry` from a results file computed earlier (no sampling) into
    `tmp`, with the code of this checkout."""
    from memphase.analysis.results import open_results

    with open_results(results) as ds:
        ds.load()
        if entry.name == "validate":
            from memphase.analysis.plots import plot_validation

            plot_validation(ds, tmp / f"{entry.name}.png")
        else:
            from memphase.simulate.experiments import get_experiment

            get_experiment(ds.attrs["job"]).plot(ds, tmp / f"{entry.name}.png")


def run_entry(entry: Entry, tmp: Path, reuse: Path | None = None) -> tuple[list[Path], float]:
    """Run one entry into `tmp` (or, with `reuse`, redraw it from reuse/NAME.h5 when that file
    exists), copy its PNGs (shrunk) into FIGURES; (paths, seconds)."""
    out = tmp / f"{entry.name}.h5"
    t0 = time.time()
    if reuse is not None and (reuse / out.name).exists():
        redraw(entry, reuse / out.name, tmp)
    else:
        if reuse is not None:  # say so: the run may take long (a broken link also lands here)
            print(f"    no results file {reuse / out.name}"
                  + (" (a broken link)" if (reuse / out.name).is_symlink() else "")
                  + f": running `{command(entry)}` (about {entry.runtime})", flush=True)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        argv = _argv(entry, out)
        if hasattr(os, "nice"):
            argv = ["nice", "-n", "10"] + argv
        r = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True)
        if r.returncode not in (0, 1) or not out.exists():  # validate: 1 when a check fails
            raise RuntimeError(f"{command(entry)} failed (exit {r.returncode}):\n"
                               f"{r.stderr[-2000:]}")
    wall = time.time() - t0
    pngs = sorted(tmp.glob(f"{entry.name}.png")) + sorted(tmp.glob(f"{entry.name}_*.png"))
    for old in figures_of(entry.name):
        old.unlink()
    written = []
    for p in pngs:
        dst = FIGURES / entry.name / p.name
        shrink(p, dst)
        written.append(dst)
    return written, wall


def write_page() -> Path:
    """docs/gallery.md from GALLERY and the PNGs in docs/figures/gallery."""
    lines = [
        "# Figure gallery",
        "",
        "Each canonical config's figures, made from the bundled configs, beside the claim of the",
        "paper that the figure tests (keys: [References](references.md); theory and verdicts:",
        "[Theory](theory.md), [Real data](real_data.md), [Training dynamics](training_dynamics.md)).",
        "The runtimes are those measured on a 2-core machine. Regenerate everything with one",
        "command from the repository root:",
        "",
        "    .venv/bin/python docs/make_gallery.py            # configs up to ~5 min each",
        "    .venv/bin/python docs/make_gallery.py --quick    # only those of about a minute",
        "    .venv/bin/python docs/make_gallery.py --all      # also the long ones (hours)",
        "",
        "A config that the last regeneration did not run keeps its earlier figures; where there are",
        "none the entry says so and gives the command.",
        "",
    ]
    for e in GALLERY:
        lines += [f"## {e.name}", "", e.claim, ""]
        if e.shows:
            lines += [f"What the committed figure shows: {e.shows}", ""]
        lines += [f"Command: `{command(e)}` (about {e.runtime} on 2 cores).", ""]
        figs = figures_of(e.name)
        if not figs:
            lines += [f"*Not rendered in the committed gallery* (runtime {e.runtime}"
                      + (", left out of the default regeneration" if e.tier == "slow" else "")
                      + f"): `python docs/make_gallery.py --only {e.name}` makes it.", ""]
        for f in figs:
            rel = f.relative_to(PAGE.parent).as_posix()
            lines += [f"![{e.name}: {f.stem}]({rel})", ""]
    PAGE.write_text("\n".join(lines).rstrip() + "\n")
    return PAGE


def select(args) -> list[Entry]:
    if args.only:
        known = {e.name: e for e in GALLERY}
        bad = [n for n in args.only if n not in known]
        if bad:
            raise SystemExit(f"make_gallery: unknown config {', '.join(bad)}; "
                             f"choose from {', '.join(known)}")
        return [known[n] for n in args.only]
    top = 0 if args.quick else 2 if args.all else 1
    return [e for e in GALLERY if TIERS[e.tier] <= top]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="only the configs of about a minute")
    g.add_argument("--all", action="store_true", help="also the slow configs (hours)")
    g.add_argument("--only", nargs="+", metavar="NAME", help="just these configs")
    g.add_argument("--page-only", action="store_true", help="rewrite the page, run nothing")
    ap.add_argument("--from", dest="reuse", type=Path, metavar="DIR",
                    help="redraw from DIR/NAME.h5 where such a results file exists (no sampling; "
                         "e.g. results of `memphase run NAME -o DIR/`), run the others")
    args = ap.parse_args(argv)
    if not args.page_only:
        todo = select(args)
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="memphase-gallery-") as tmp:
            for i, e in enumerate(todo, 1):
                print(f"[{i}/{len(todo)}] {command(e)} ...", flush=True)
                sub = Path(tmp) / e.name
                sub.mkdir()
                written, wall = run_entry(e, sub, args.reuse)
                shutil.rmtree(sub, ignore_errors=True)
                print(f"    {wall:.0f} s: " + ", ".join(p.name for p in written), flush=True)
        print(f"gallery: {len(todo)} configs in {time.time() - t0:.0f} s")
    print(f"page: {write_page()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
