"""The exception types shared across layers (issue 24: a library module raising or catching one
must not import the layer that defines its meaning). Each is kept importable where it was first
defined: ConfigError from simulate.run.config, SweepError from simulate.run.files, Terminated
from simulate.cli."""

from __future__ import annotations

__all__ = ["ConfigError", "SweepError", "Terminated"]


class ConfigError(ValueError):
    """A config problem; the message names the file and the key."""


class SweepError(ValueError):
    """A sweep that cannot start or continue (lock held, changed config, missing parts...)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (SLURM time limit, scancel, kill): unwinds like Ctrl-C; exit status 143."""
