"""The [H24] solvable linear one-step denoiser: the model and its generalization criterion
(model), the kernel-density and Gaussian distances (criterion), the official code's fit
(official), shared input checks (checks). Every name of the former single module
`memphase.physics.linear_model` is importable from here."""

from . import criterion, model, official
from .criterion import *  # noqa: F401,F403
from .model import *  # noqa: F401,F403
from .official import *  # noqa: F401,F403

__all__ = [*model.__all__, *criterion.__all__, *official.__all__]
