"""Spotlight's recommender losses, written once over the Python array API standard.

Every loss takes arrays of any array API library (NumPy, CuPy, PyTorch, JAX, Dask,
array-api-strict) and returns an array of the same library, on the same device.
"""

from __future__ import annotations

from ._gradients import value_and_grad
from .explicit import logistic_loss, poisson_loss, regression_loss
from .implicit import adaptive_hinge_loss, bpr_loss, hinge_loss, pointwise_loss

__all__ = [
    "adaptive_hinge_loss",
    "bpr_loss",
    "hinge_loss",
    "logistic_loss",
    "pointwise_loss",
    "poisson_loss",
    "regression_loss",
    "value_and_grad",
]

__version__ = "0.1.0"
