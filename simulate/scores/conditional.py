"""Class-conditional scores: the score of the points of one class [GDPLLW23; docs/theory.md, Scores].

With random labels and C classes each class holds about N / C points, so memorization appears as
if the training set had N / C points.
"""

from __future__ import annotations

import torch

from .base import Score, bind_labels, check_batch
from .empirical import EmpiricalScore

__all__ = ["ConditionalScore", "ConditionalEmpiricalScore"]


class ConditionalScore(Score):
    """s(x, t | c): one score per class, built by `factory(train_points_of_class, schedule)`.

    Call with `score(x, t, labels)` (labels a (B,) int tensor), or bind the labels of a batch with
    `score.given(labels)` to get a plain `score(x, t)` for the samplers.
    """

    name = "conditional"

    def __init__(self, train, labels, schedule, factory):
        x = getattr(train, "x", train)
        labels = torch.as_tensor(labels if labels is not None else getattr(train, "labels", None))
        if labels.ndim != 1 or labels.shape[0] != x.shape[0]:
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(labels.shape)}")
        self.classes = sorted(int(c) for c in torch.unique(labels))
        self.per_class = {c: factory(x[labels.to(x.device) == c], schedule) for c in self.classes}
        self.schedule = schedule
        self.dim = x.shape[1]
        self.counts = {c: int((labels == c).sum()) for c in self.classes}

    def __call__(self, x, t, labels) -> torch.Tensor:
        check_batch(x, self.dim)
        labels = self._check_labels(x, labels)
        out = torch.empty_like(x)
        for c in self.classes:
            sel = labels == c
            if sel.any():
                tc = t[sel] if isinstance(t, torch.Tensor) and t.ndim == 1 else t
                out[sel] = self.per_class[c](x[sel], tc)
        return out

    def jacobian(self, x, t, labels) -> torch.Tensor:
        """grad_x s(x, t | c) row by row: the Jacobian of the score of each row's class (the
        per-class score must have a closed-form `jacobian`), shape (B, d, d)."""
        check_batch(x, self.dim)
        labels = self._check_labels(x, labels)
        if not all(hasattr(s, "jacobian") for s in self.per_class.values()):
            raise NotImplementedError(f"the per-class scores of {type(self).__name__} have no "
                                      "closed-form jacobian; use autograd")
        out = x.new_empty(x.shape[0], self.dim, self.dim)
        for c in self.classes:
            sel = labels == c
            if sel.any():
                tc = t[sel] if isinstance(t, torch.Tensor) and t.ndim == 1 else t
                out[sel] = self.per_class[c].jacobian(x[sel], tc)
        return out

    def _check_labels(self, x, labels) -> torch.Tensor:
        labels = torch.as_tensor(labels, device=x.device)
        if labels.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(labels.shape)}")
        unknown = set(int(c) for c in torch.unique(labels)) - set(self.classes)
        if unknown:
            raise ValueError(f"labels {sorted(unknown)} are not classes of the training set "
                             f"{self.classes}")
        return labels

    def given(self, labels) -> Score:
        """A plain score(x, t) with the class labels of the batch fixed."""
        return bind_labels(self, labels)

    @property
    def data_variance(self) -> float:
        return float(sum(s.data_variance for s in self.per_class.values()) / len(self.per_class))

    def describe(self) -> dict:
        return {"score": self.name, "classes": self.classes, "counts": self.counts}


class ConditionalEmpiricalScore(ConditionalScore):
    """Empirical score of the training points with label c (a mixture over that class only)."""

    name = "conditional_empirical"

    def __init__(self, train, labels, schedule, chunk=None):
        super().__init__(train, labels, schedule, lambda y, sch: EmpiricalScore(y, sch, chunk))
