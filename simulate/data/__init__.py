"""Training sets: the synthetic laws (synthetic: Gaussian, spectrum, linear manifold, mixture) and
real data (real: digits, any .npy / HDF5 array), each a `DataSample`; `make_data` by model name
(registry). Numerical core of simulate/ (imports physics/ and simulate.base only).

Every name of the former single module `memphase.simulate.data` is importable from here.
"""

from .synthetic import *  # noqa: F401,F403
from .synthetic import __all__ as _synthetic_all
from .real import *  # noqa: F401,F403
from .real import __all__ as _real_all
from .registry import DATA_MODELS, make_data

__all__ = list(dict.fromkeys([*_synthetic_all, *_real_all, "DATA_MODELS", "make_data"]))
