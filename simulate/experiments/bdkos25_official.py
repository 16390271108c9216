"""The official seeds of [BDKOS25] (Baptista, Dasgupta, Kovachki, Oberai, Stuart, "Memorization and
regularization in generative diffusion models", arXiv 2501.15785; code on GitHub,
baptistar/DiffusionModelDynamics, folder 2DGaussianPoints): the training set and the latents of
its 2-D closed-form notebooks, regenerated from their seeds (docs/conformance/bdkos25.md).

- Training set (`generate_data.py`): numpy's legacy global generator seeded with 1, one (20, 2)
  standard normal draw, i.e. N = 20 points of N(0, I_2) (saved there as training_data.npy).
- Latents: torch's global generator seeded with 0, then the notebook's earlier draws (a (1000, 2)
  normal test batch and one uniform test time; in VE_EmpircalBayes also 30 trajectory latents),
  then the 1000 latents z of the collapse-fraction study; the flow starts at sigma(1) z.

Used by the regularization experiment's official variant (`data.generator = "bdkos25"`,
`sampler.latents = "bdkos25"`; data/configs/regularization_official.toml).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import DataSample

__all__ = ["N_TRAIN", "DIM", "N_LATENTS", "NOTEBOOKS", "training_set", "latents"]

N_TRAIN, DIM = 20, 2
#: latents of the collapse-fraction cells of both notebooks
N_LATENTS = 1000
#: notebook -> number of (n, 2) normal batches drawn between the test batch and the latents
NOTEBOOKS = {"tikhonov": 0, "floor": 1}   # VE_TikonovRegularization, VE_EmpircalBayes (30 x 2)


def training_set(dtype="float64", device="cpu") -> DataSample:
    """The official training set: RandomState(1).standard_normal((20, 2)) (the legacy global
    `np.random.seed(1); np.random.randn(20, 2)` of generate_data.py), as a DataSample of the law
    N(0, I_2)."""
    x = np.random.RandomState(1).standard_normal((N_TRAIN, DIM))
    dt = torch.float64 if str(dtype).endswith("64") else torch.float32
    return DataSample(
        x=torch.as_tensor(x, dtype=dt, device=device), mean=np.zeros(DIM), cov=np.eye(DIM),
        basis=np.eye(DIM), block=np.zeros(DIM, dtype=int), block_stds=[1.0],
        params={"model": "bdkos25_official", "n": N_TRAIN, "d": DIM, "variance": 1.0,
                "numpy_legacy_seed": 1},
    )


def latents(notebook: str, n: int = N_LATENTS) -> torch.Tensor:
    """The first n of the notebook's 1000 latents ("tikhonov": VE_TikonovRegularization, "floor":
    VE_EmpircalBayes), float64 copies of torch's float32 draws; the global torch state is left
    as it was."""
    if notebook not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {notebook!r}; choose one of {sorted(NOTEBOOKS)}")
    if not 1 <= n <= N_LATENTS:
        raise ValueError(f"the official notebooks draw {N_LATENTS} latents; asked for {n}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.randn(1000, DIM)
        torch.rand(1)
        for _ in range(NOTEBOOKS[notebook]):
            torch.randn(30, DIM)
        return torch.randn(N_LATENTS, DIM)[:n].to(torch.float64)
