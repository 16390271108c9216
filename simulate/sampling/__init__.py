"""Reverse-time samplers (samplers: SDE / ODE / RK45 on any score). Numerical core of
simulate/ (imports physics/ and simulate.base only). Every name of the former single module
`memphase.simulate.sampling` is importable from here."""

from .samplers import *  # noqa: F401,F403
from .samplers import __all__  # noqa: F401
