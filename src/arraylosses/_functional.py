"""Elementwise primitives and reductions in standard forms, each taking its namespace.

None inspects types. Libraries with a native stable primitive (``torch.sigmoid``,
``jax.nn.sigmoid``) use theirs instead; :mod:`._namespace` makes that choice once
per array type.
"""

from __future__ import annotations

import math
from typing import Any

Array = Any
Namespace = Any

__all__ = ["mean_of_sum", "relu", "sigmoid", "sigmoid_in_one_buffer"]

_EXP_LIMITS: dict[Any, float] = {}


def sigmoid(x: Array, /, *, xp: Namespace) -> Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow for any ``x``."""
    decay = xp.exp(-xp.abs(x))
    # σ(x) = 1 / (1 + e^-|x|) for x ≥ 0, and e^-|x| / (1 + e^-|x|) for x < 0: e^-|x| ≤ 1
    return xp.where(x >= 0, 1.0, decay) / (1.0 + decay)


def sigmoid_in_one_buffer(x: Array, /, *, xp: Namespace) -> Array:
    """The sigmoid in five passes over one new buffer, for ufuncs that take ``out=``.

    Exact to rounding for every ``x`` whose sigmoid is a normal number; below that
    (``x < -88`` in float32) it returns at most the smallest normal, never inf.
    """
    # out=: a ufunc on a 0-d array returns a scalar, which nothing can be written into
    buffer = xp.negative(x, out=xp.empty_like(x))
    # σ(x) = 1 / (1 + e^-x); capping -x at the largest finite exponent keeps e^-x
    # finite, and σ there is already below the smallest normal number
    xp.minimum(buffer, _exp_limit(buffer.dtype, xp=xp), out=buffer)
    xp.exp(buffer, out=buffer)
    buffer += 1.0
    return xp.reciprocal(buffer, out=buffer)


def relu(x: Array, /, *, xp: Namespace) -> Array:
    """``max(x, 0)``, propagating NaN."""
    return xp.maximum(x, 0.0)


def mean_of_sum(x: Array, /, *, xp: Namespace) -> Array:
    """Mean over every axis as sum / count: NumPy's ``mean`` adds microseconds of Python."""
    return xp.sum(x) / math.prod(x.shape)


def _exp_limit(dtype: Any, *, xp: Namespace) -> float:
    """The largest whole exponent whose exp is finite in ``dtype`` (88 for float32)."""
    limit = _EXP_LIMITS.get(dtype)
    if limit is None:
        limit = _EXP_LIMITS[dtype] = float(
            math.floor(math.log(float(xp.finfo(dtype).max)))
        )
    return limit
