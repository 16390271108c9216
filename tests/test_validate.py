"""`memphase validate --quick`: theory against measurement, end to end (about 30-60 s)."""

import numpy as np
import pytest

from memphase.analysis.results import open_results
from memphase.simulate.cli.validate import Check, format_table, validate_main


def test_check_gating_and_status():
    fin = Check("q", "s", 1.0, 1.05, tolerance=0.02, theory_finite_n=1.04, versus_finite_n=True)
    assert fin.passed and abs(fin.rel_error_finite_n - 0.01 / 1.04) < 1e-12
    assert fin.explained == pytest.approx(0.8)
    assert not Check("q", "s", 1.0, 1.05, tolerance=0.02, theory_finite_n=1.0,
                     versus_finite_n=True).passed
    ok = Check("q", "s", 1.0, 1.05, tolerance=0.1)
    bad = Check("q", "s", 1.0, 1.2, tolerance=0.1)
    info = Check("q", "s", 1.0, 1.2, tolerance=0.1, gated=False)
    assert ok.passed and ok.status == "ok"
    assert not bad.passed and bad.status == "FAIL"
    assert info.passed and info.status == "bias"
    assert Check("q", "s", 0.0, 0.005, tolerance=0.01, absolute=True).passed
    assert not Check("q", "s", 1.0, float("nan")).passed
    assert "FAIL" in format_table([ok, bad])


def test_row_kind_tolerance_gate_and_counts():
    """Every row has a kind (measured / computed), prints its tolerance and its gate, says whether
    the gate's reference lies in its CI, and the summary counts gated and reported rows apart
    (issue #22: a reported row outside tolerance is not counted as a pass)."""
    from memphase.simulate.cli.validate import KINDS, summary

    assert KINDS == ("measured", "computed")
    comp = Check("t_C (REM)", "s", 1.299, 1.2992, tolerance=5e-4, absolute=True, kind="computed")
    fin = Check("t_C (excess entropy)", "s", 1.0, 1.05, (1.049, 1.051), 0.02, theory_finite_n=1.04,
                versus_finite_n=True, probe="fresh")
    rep = Check("t_C (last change)", "s", 1.0, 1.2, tolerance=0.1, gated=False, probe="trajectory")
    assert comp.kind == "computed" and fin.kind == "measured"
    assert comp.tolerance_text == "abs 0.0005" and fin.tolerance_text == "rel 2% vs finite-N"
    assert fin.passed and fin.reference_in_ci is False and comp.reference_in_ci is None
    text = format_table([comp, fin, rep])
    header = text.splitlines()[0]
    for col in ("kind", "probe", "value", "tolerance", "ref in CI", "gate"):
        assert f" {col} " in header + " ", col
    assert "computed" in text and "reported" in text and "| no " in text
    line = summary([comp, fin, rep])
    assert line.startswith("gated: 2 of 2 within tolerance; reported (not gated): 1, 1 outside")
    assert "2 measured, 1 computed" in line
    with pytest.raises(ValueError, match="kind"):
        Check("q", "s", 1.0, 1.0, kind="estimated")


def test_validate_quick_passes_and_writes_table(tmp_path, capsys):
    out = tmp_path / "validate.h5"
    assert validate_main(quick=True, output=out) == 0
    text = capsys.readouterr().out
    assert text.count("|") > 100 and "| rel. error |" in text and "| 95% CI" in text
    ds = open_results(out)
    assert ds.sizes["check"] >= 20
    gated = ds["gated"].values.astype(bool)
    assert np.all(ds["passed"].values.astype(bool))
    assert np.all(ds["within_tolerance"].values[gated].astype(bool))
    q = ds["quantity"].values
    for name in ("t_S (cloning)", "t_C (excess entropy)", "t_C (last change)"):
        rows = ds.where(ds["quantity"] == name, drop=True)
        assert rows.sizes["check"] >= 3, name
        assert np.all(np.abs(rows["rel_error"].values[rows["gated"].values.astype(bool)]) <= 0.1)
    assert (q == "bias trend t_C (last change)").sum() >= 1
    # finite-N theory column beside REM on every t_C row; the excess-entropy t_C is gated on it
    tc = np.isin(q, ["t_C (excess entropy)", "t_C (last change)"])
    assert np.all(np.isfinite(ds["theory_finite_n"].values[tc]))
    assert np.all(ds["theory_finite_n"].values[tc] > ds["theory"].values[tc])
    ee = q == "t_C (excess entropy)"
    assert np.all(np.abs(ds["rel_error_finite_n"].values[ee]) <= 0.02)
    assert "finite-N" in text and "explains" in text
    assert "gated:" in text and "reported (not gated):" in text
    kind = ds["kind"].values
    assert set(kind) == {"measured", "computed"}
    assert np.all(kind[np.char.startswith(q.astype(str), "t_S (1/2 ln d)")] == "computed")
    assert np.all(ds["probe"].values[ee] == "fresh")
    planted = np.char.endswith(q.astype(str), "(planted)")
    assert planted.sum() >= 2 and np.all(ds["probe"].values[planted] == "planted")
    assert np.all(ds["measured"].values[planted] > 0) and np.all(ds["theory"].values[planted] > 0)
    assert out.with_suffix(".png").stat().st_size > 1000
    ds.close()


def test_validate_cli_help_and_never_overwrites(tmp_path, capsys, monkeypatch):
    from memphase.simulate.cli import _free_path, main

    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    assert "memphase validate --quick" in capsys.readouterr().out
    first = tmp_path / "v.h5"
    first.write_bytes(b"x")
    assert _free_path(first) == tmp_path / "v-1.h5"
    assert main(["validate", "--quick", "-o", str(first)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert first.read_bytes() == b"x"


def test_paper_protocol_rows():
    """[BDKOS25] collapse fraction 1 at c = 0 and ~0.40 at c = 1e-4 (the experiment's own theory
    column, calibrated on other seeds; seed-to-seed tolerance); [H24] reference criterion P >= 0.9 at d = 10, N = 50 with the
    symmetric one reported, not gated; [ALD24] block taus reported, not gated, with the reason."""
    from memphase.simulate.cli.validate import QUICK, paper_checks

    rows = {c.quantity: c for c in paper_checks(QUICK, seed=0)}
    c0 = rows["collapse fraction (Tikhonov c=0)"]
    assert c0.gated and c0.measured == 1.0 and c0.tolerance == pytest.approx(3 / 1000)
    c4 = rows["collapse fraction (Tikhonov c=0.0001)"]
    assert c4.gated and c4.within and 0.3 < c4.theory < 0.5
    # calibrated on 4 other seeds: tolerance 1.96 s sqrt(1 + 1/4), s >= the binomial sqrt(1/4n)
    p = c4.theory
    assert c4.tolerance >= 1.96 * np.sqrt(p * (1 - p) / 1000) * np.sqrt(1.25) - 1e-12
    assert c4.tolerance < 0.1 and "4 other seeds" in c4.note
    ref = rows["P(generalizing) reference criterion"]
    assert ref.gated and ref.measured >= 0.9 and ref.passed
    sym = rows["P(generalizing) symmetric criterion"]
    assert not sym.gated and sym.measured <= 0.5 + 0.16 and "from below" in sym.note
    geo = [c for q, c in rows.items() if q.startswith(("tau_c/REM", "tau_0/tau_1"))]
    assert len(geo) == 3 and not any(c.gated for c in geo)
    assert all(np.isfinite(c.measured) and c.measured > 0 for c in geo)
    assert "not confirmed by the d-scaling study" in rows["tau_0/tau_1 (mean anchor, excess)"].note
    assert rows["tau_0/tau_1 (mean anchor, excess)"].theory == pytest.approx(5.96, abs=0.01)


def test_validate_figure_never_overwrites_an_unrelated_png(tmp_path, monkeypatch):
    """An existing validate.png the run did not create is kept; the figure goes to validate-1.png."""
    import memphase.simulate.cli.validate as v

    monkeypatch.setattr(v, "run_validation", lambda quick, seed, progress=None: [
        Check("t_S (cloning)", "s", 1.0, 1.02, (0.99, 1.05), 0.1)])
    out = tmp_path / "validate.h5"
    unrelated = tmp_path / "validate.png"
    unrelated.write_bytes(b"not ours")
    assert validate_main(quick=True, output=out) == 0
    assert unrelated.read_bytes() == b"not ours"
    fig = tmp_path / "validate-1.png"
    assert fig.stat().st_size > 1000 and fig.read_bytes()[:4] == b"\x89PNG"
    assert not any(p.name.startswith(".validate") for p in tmp_path.iterdir())
