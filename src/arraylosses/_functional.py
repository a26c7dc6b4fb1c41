"""Elementwise primitives the array API standard lacks, in standard-only forms.

Each takes its namespace keyword-only and never inspects types. Libraries with a
native stable primitive (``torch.sigmoid``, ``jax.nn.sigmoid``) use theirs instead;
:mod:`._namespace` makes that choice once per array type.
"""

from __future__ import annotations

from typing import Any

Array = Any
Namespace = Any

__all__ = ["relu", "sigmoid"]


def sigmoid(x: Array, /, *, xp: Namespace) -> Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow for any ``x``."""
    decay = xp.exp(-xp.abs(x))
    # σ(x) = 1 / (1 + e^-|x|) for x ≥ 0, and e^-|x| / (1 + e^-|x|) for x < 0: e^-|x| ≤ 1
    return xp.where(x >= 0, 1.0, decay) / (1.0 + decay)


def relu(x: Array, /, *, xp: Namespace) -> Array:
    """``max(x, 0)``, propagating NaN."""
    return xp.maximum(x, 0.0)
