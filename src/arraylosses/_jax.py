"""JAX's own primitives, where the standard-only forms are slow or wrong under XLA.

:mod:`._namespace` imports this module only once it has met a JAX array, so
importing arraylosses never imports jax.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = Any

__all__ = ["max_over_first_axis"]


def _max_by_halves(x: Array) -> Array:
    """The maximum of ``x`` over its first axis, propagating NaN, as a tree of
    elementwise maxima.

    XLA's maximum reduction on a CPU reduces over a leading axis of a few rows
    slowly (5 by 10^6 float32 in 9 ms, where the tree takes 0.2 to 0.3 ms,
    measured), and drops NaN once the array holds a few thousand elements (JAX
    0.10: over axis 0 of a column ``[nan, 5.0]`` it gives ``-inf`` or ``5.0`` from
    2,048 columns). The elementwise maximum propagates NaN, and for a handful of
    rows (5 and 8, measured) the ⌈log₂ k⌉ halvings fuse into one pass under
    ``jax.jit``.
    """
    while x.shape[0] > 1:
        rows = (x.shape[0] + 1) // 2
        # with an odd number of rows the halves share the middle one, and the
        # maximum of a value and itself is that value
        x = jnp.maximum(x[:rows], x[x.shape[0] - rows :])
    return x[0]


def _shared_by_ties(
    primals: tuple[Array], tangents: tuple[Array]
) -> tuple[Array, Array]:
    """The derivative of the maximum, shared equally by the elements tied at it, as
    ``jnp.max``'s own rule shares it; the tree's chain rule would halve it at each
    level, unequally across levels."""
    (x,), (dx,) = primals, tangents
    top = _max_with_shared_ties(x)
    at_top = x == top
    share = jnp.sum(jnp.where(at_top, dx, 0), axis=0) / jnp.sum(at_top, axis=0)
    return top, share


def max_over_first_axis(x: Array) -> Array:
    """The maximum of ``x`` over its first axis: the tree of :func:`_max_by_halves`,
    which propagates NaN, where the number of rows is known; else XLA's reduction."""
    if isinstance(x.shape[0], int):
        return _compiled_max_by_halves(x)
    # a symbolic number of rows (jax.export's shape polymorphism) can't count halvings
    return jnp.max(x, axis=0)


_max_with_shared_ties = jax.custom_jvp(_max_by_halves)
_max_with_shared_ties.defjvp(_shared_by_ties)
# compiled once per shape: an eager call is one dispatch, where each halving's
# slices and maximum would be three
_compiled_max_by_halves = jax.jit(_max_with_shared_ties)
