"""Training sets by model name: `DATA_MODELS` (name -> constructor) and `make_data`."""

from __future__ import annotations

from .real import array_data, digits
from .synthetic import DataSample, gaussian_mixture, isotropic_gaussian, linear_manifold, spectrum_gaussian

__all__ = ["DATA_MODELS", "make_data"]

DATA_MODELS = {
    "isotropic_gaussian": isotropic_gaussian,
    "spectrum_gaussian": spectrum_gaussian,
    "linear_manifold": linear_manifold,
    "gaussian_mixture": gaussian_mixture,
    "digits": digits,
    "array_data": array_data,
}


def make_data(model: str, **params) -> DataSample:
    """Draw a training set by model name with its parameters."""
    if model not in DATA_MODELS:
        raise ValueError(f"unknown data model {model!r}; choose one of {sorted(DATA_MODELS)}")
    return DATA_MODELS[model](**params)
