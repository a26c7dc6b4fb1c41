"""Weights and reductions shared by every loss: Spotlight's masked mean, a sum, or none."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._functional import count_of_elements
from ._validation import known_size

if TYPE_CHECKING:
    from ._namespace import Backend

Array = Any

__all__ = ["reduce", "reduce_with_derivatives"]


def reduce(
    loss: Array, weights: Array | None, reduction: str, *, backend: Backend
) -> Array:
    """Weight the elementwise ``loss`` and reduce it.

    ``weights`` is None, a bool mask or floating weights of ``loss``'s dtype, and
    broadcasts to ``loss``'s shape (the caller has checked both). With weights w,
    'mean' is ``sum(L * w) / sum(w)`` with ``w`` counted at its broadcast shape, and 0
    where ``sum(w)`` is 0; without, it is the mean of ``L`` (0 for an empty ``L``).
    """
    is_mean = reduction == "mean" and 0 not in loss.shape
    if is_mean and weights is not None and weights.dtype == backend.xp.bool:
        total, count = backend.masked_total(loss, weights)
        count = _count_at_broadcast_shape(count, weights, loss, backend=backend)
        return backend.divide(total, count)
    if weights is not None:
        loss = _weighted(loss, weights, backend=backend)
    if reduction == "none":
        # the in-place primitives' 0-d result is a 0-d array, where the library's
        # own functions give a scalar
        return loss[()] if loss.ndim == 0 and backend.has_scalars else loss
    if not is_mean:
        # the mean over no elements is 0, as for an all-zero mask
        return backend.sum(loss)
    if weights is None:
        return backend.mean(loss)
    return backend.sum(loss) / _mean_divisor(weights, loss, backend=backend)


def reduce_with_derivatives(
    loss: Array,
    derivatives: list[Array],
    weights: Array | None,
    reduction: str,
    *,
    backend: Backend,
) -> tuple[Array, list[Array]]:
    """:func:`reduce` ``loss`` to a scalar, and carry each elementwise derivative
    of ``loss`` through the same weights and reduction.

    Each of ``derivatives`` is ``dL/dx`` at ``loss``'s shape for some input ``x``;
    what comes back is ``d(result)/dx`` element by element, still at that shape.
    Where a weight is 0 the derivative is exactly 0, even where ``dL/dx`` is not
    finite. ``reduction`` is 'mean' or 'sum'.
    """
    if weights is not None:
        loss = _weighted(loss, weights, backend=backend)
        derivatives = [_weighted(d, weights, backend=backend) for d in derivatives]
    if reduction == "sum" or 0 in loss.shape:
        return backend.sum(loss), derivatives
    if weights is None:
        size = known_size(loss.shape)
        if size is not None:
            divisor = _as_operand(size, backend=backend)
            return backend.mean(loss), [d / divisor for d in derivatives]
        # a Dask array of unknown size: one count of its elements divides all
        divisor = count_of_elements(loss, xp=backend.xp)
        return backend.sum(loss) / divisor, [d / divisor for d in derivatives]
    divisor = _mean_divisor(weights, loss, backend=backend)
    return backend.sum(loss) / divisor, [d / divisor for d in derivatives]


def _weighted(loss: Array, weights: Array, *, backend: Backend) -> Array:
    # keep() before the product: a masked-out inf or NaN must give 0, and inf·0 never run
    if weights.dtype == backend.xp.bool:
        return backend.keep(weights, loss)
    return backend.keep(weights != 0, loss) * weights


def _mean_divisor(weights: Array, loss: Array, *, backend: Backend) -> Array:
    """``sum(w)`` with ``w`` broadcast to ``loss``'s shape, or 1 where that is 0."""
    is_mask = weights.dtype == backend.xp.bool
    count = backend.count(weights, loss.dtype) if is_mask else backend.sum(weights)
    count = _count_at_broadcast_shape(count, weights, loss, backend=backend)
    # where no weight is set every weighted element is exactly 0, and so is the total:
    # a divisor of 1 there keeps the mean 0 with finite gradients. A bool mask's count
    # is already at least 1 (it counts whole elements); weights need the where()
    return count if is_mask else backend.where(count == 0, 1.0, count)


def _count_at_broadcast_shape(
    count: Array, weights: Array, loss: Array, *, backend: Backend
) -> Array:
    """``count`` (the weights' sum) as if the weights were broadcast to ``loss``."""
    # the ranks first: see prepare()
    if len(weights.shape) == len(loss.shape) and weights.shape == loss.shape:
        return count
    full, own = known_size(loss.shape), known_size(weights.shape)
    # each element of the weights is repeated full / own times by the broadcast
    if type(full) is int and type(own) is int:
        return count * _as_operand(full // own, backend=backend) if own else count
    # a bool mask's count is at least 1, as backend.count gives it (weights summing
    # to 0 are _mean_divisor's to replace)
    is_mask = weights.dtype == backend.xp.bool
    if full is None or own is None:
        zeros = backend.xp.zeros_like(loss)
        recount = backend.sum(zeros + backend.xp.astype(weights, loss.dtype))
        return backend.xp.maximum(recount, 1.0) if is_mask else recount
    # symbolic sizes (jax.export's, and torch.export's and make_fx's outside Dynamo),
    # which may be 0 when a program traced for any size runs: the repeats without a
    # division, the product of the sizes the weights are broadcast along (the loss's
    # leading axes, and those where the weights' size is 1); a list, as Dynamo can't
    # pass a generator to math.prod
    leading = len(loss.shape) - len(weights.shape)
    axes = zip(weights.shape, loss.shape[leading:], strict=True)
    broadcast = [size for own_size, size in axes if own_size != size]
    repeats = math.prod(loss.shape[:leading]) * math.prod(broadcast)
    # 0 repeats only where the loss is empty, and its total 0
    return backend.xp.maximum(count * repeats, 1) if is_mask else count * repeats


def _as_operand(size: Any, *, backend: Backend) -> Any:
    """An element count as an operand of a floating array's arithmetic: a float
    (exact to 2**53) where the library takes no int that large
    (``Backend.largest_int_operand``), else as it is. The library's limit is read
    first: under Dynamo, a size compared with it would bound the sizes a program
    traced by ``torch.export`` takes."""
    limit = backend.largest_int_operand
    if limit is not None and type(size) is int and size > limit:
        return float(size)
    return size
