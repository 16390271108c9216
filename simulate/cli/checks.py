"""`Check`: one row of `memphase validate` (a quantity, its setting, theory and measured value,
the gate). Used by validate (the suite's own rows) and validate_papers (the paper-protocol rows),
which import it from here (issue 24: no cycle between them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Check", "KINDS"]

#: a row's kind: "measured" (a simulation against theory) or "computed" (a formula evaluated
#: against a published number or a closed form; no sampling)
KINDS = ("measured", "computed")


@dataclass
class Check:
    quantity: str
    setting: str
    theory: float
    measured: float
    ci: tuple[float, float] = (math.nan, math.nan)
    tolerance: float = 0.1          # relative (or absolute when `absolute`)
    absolute: bool = False
    note: str = ""
    gated: bool = True              # False: reported (finite-d bias), not counted as failure
    theory_finite_n: float = math.nan   # exact finite-N theory (t_C rows)
    versus_finite_n: bool = False   # gate on the finite-N theory instead of `theory`
    kind: str = "measured"          # "measured" (simulation) | "computed" (a formula evaluated)
    probe: str = ""                 # where the estimator looks: "fresh" | "planted" probes of the
                                    # excess entropy, "trajectory" (reverse runs), "" (none)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Check.kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def reference(self) -> float:
        """The value the gate compares with: the finite-N theory or `theory`."""
        return self.theory_finite_n if self.versus_finite_n else self.theory

    @property
    def reference_in_ci(self) -> bool | None:
        """Whether the gate's reference lies inside the 95% CI (None without a CI)."""
        if not np.all(np.isfinite(self.ci)):
            return None
        return bool(self.ci[0] <= self.reference <= self.ci[1])

    @property
    def tolerance_text(self) -> str:
        if self.absolute:
            return f"abs {self.tolerance:.3g}"
        return f"rel {100 * self.tolerance:.3g}%" + (" vs finite-N" if self.versus_finite_n else "")

    @property
    def rel_error(self) -> float:
        if self.theory == 0:
            return abs(self.measured)
        return (self.measured - self.theory) / abs(self.theory)

    @property
    def rel_error_finite_n(self) -> float:
        return (self.measured - self.theory_finite_n) / abs(self.theory_finite_n)

    @property
    def explained(self) -> float:
        """Fraction of the distance measured - theory (REM) that the finite-N theory accounts for."""
        return (self.theory_finite_n - self.theory) / (self.measured - self.theory)

    @property
    def within(self) -> bool:
        if self.versus_finite_n:
            return bool(np.isfinite(self.measured) and abs(self.rel_error_finite_n) <= self.tolerance)
        err = abs(self.measured - self.theory) if self.absolute else abs(self.rel_error)
        return bool(np.isfinite(self.measured) and err <= self.tolerance)

    @property
    def passed(self) -> bool:
        return self.within or not self.gated

    @property
    def status(self) -> str:
        if self.gated:
            return "ok" if self.within else "FAIL"
        return "ok" if self.within else "bias"
