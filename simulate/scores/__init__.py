"""Scores: one interface `score(x, t)` on a (B, d) batch; `jacobian(x, t)` where closed form.

| class                      | formula (docs/theory.md, Scores)                                   |
|----------------------------|------------------------------------------------------------------|
| EmpiricalScore             | (m sum w_n y_n - x) / sigma^2, w = softmax of the mixture logits  |
| TikhonovScore              | (m sum w_n y_n - x) / (sigma^2 + c)               [BDKOS25]       |
| FloorNormalizedScore       | sum w_n (m y_n - x)/sigma^2, w = e^l / max(sum e^l, floor) [BDKOS25] |
| SmoothedScore              | empirical score with tau -> tau + sigma_s^2       [SBS23]         |
| GaussianScore              | -(m^2 C + sigma^2 I)^{-1} (x - m mu)  (population)               |
| LinearScore                | GaussianScore with the empirical mean and covariance             |
| ConditionalEmpiricalScore  | EmpiricalScore of the points of one class         [GDPLLW23]      |
| LearnedScore               | -eps_theta(x/m, log tau) / sigma (DSM-trained network)            |
"""

from .base import Score, time_coefficients
from .conditional import ConditionalEmpiricalScore, ConditionalScore
from .empirical import EmpiricalScore, FloorNormalizedScore, SmoothedScore, TikhonovScore
from .gaussian import GaussianScore, LinearScore
from .learned import LearnedScore

__all__ = [
    "Score", "time_coefficients", "EmpiricalScore", "TikhonovScore", "FloorNormalizedScore",
    "SmoothedScore", "GaussianScore", "LinearScore", "ConditionalScore",
    "ConditionalEmpiricalScore", "LearnedScore", "make_score", "SCORES",
]

SCORES = ("empirical", "tikhonov", "floor", "smoothed", "population", "linear")


def make_score(name: str, data, schedule, **params) -> Score:
    """Build a score by name on a DataSample (`data`): the population score needs data.cov."""
    if name == "empirical":
        return EmpiricalScore(data, schedule, **params)
    if name == "tikhonov":
        return TikhonovScore(data, schedule, **params)
    if name == "floor":
        return FloorNormalizedScore(data, schedule, **params)
    if name == "smoothed":
        return SmoothedScore(data, schedule, **params)
    if name == "linear":
        return LinearScore(data, schedule)
    if name == "population":
        if getattr(data, "cov", None) is None:
            raise ValueError(f"the population score needs Gaussian data with a known covariance; "
                             f"data model {data.params.get('model')!r} has none")
        return GaussianScore(data.mean, data.cov, schedule)
    raise ValueError(f"unknown score {name!r}; choose one of {list(SCORES)}")
