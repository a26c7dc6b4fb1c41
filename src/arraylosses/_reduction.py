"""Weights and reductions shared by every loss: Spotlight's masked mean, a sum, or none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._validation import known_size

if TYPE_CHECKING:
    from ._namespace import Backend

Array = Any

__all__ = ["reduce"]


def reduce(
    loss: Array, weights: Array | None, reduction: str, *, backend: Backend
) -> Array:
    """Weight the elementwise ``loss`` and reduce it.

    ``weights`` is None, a bool mask or floating weights of ``loss``'s dtype, and
    broadcasts to ``loss``'s shape (the caller has checked both). With weights w,
    'mean' is ``sum(L * w) / sum(w)`` with ``w`` counted at its broadcast shape, and 0
    where ``sum(w)`` is 0; without, it is the mean of ``L`` (0 for an empty ``L``).
    """
    if weights is not None:
        loss = _weighted(loss, weights, backend=backend)
    if reduction == "none":
        return loss
    if reduction == "sum" or 0 in loss.shape:
        # the mean over no elements is 0, as for an all-zero mask
        return backend.sum(loss)
    if weights is None:
        return backend.mean(loss)
    return _masked_mean(loss, weights, backend=backend)


def _weighted(loss: Array, weights: Array, *, backend: Backend) -> Array:
    # where() before the product: a masked-out inf or NaN must give 0, and inf·0 never run
    if weights.dtype == backend.xp.bool:
        return backend.where(weights, loss, 0.0)
    return backend.where(weights != 0, loss, 0.0) * weights


def _masked_mean(weighted_loss: Array, weights: Array, *, backend: Backend) -> Array:
    total = backend.sum(weighted_loss)
    is_mask = weights.dtype == backend.xp.bool
    count = (
        backend.count(weights, weighted_loss.dtype) if is_mask else backend.sum(weights)
    )
    count = _count_at_broadcast_shape(count, weights, weighted_loss, backend=backend)
    # where no weight is set every weighted element is exactly 0, and so is the total:
    # a divisor of 1 there keeps the mean 0 with finite gradients. A bool mask's count
    # is already at least 1 (it counts whole elements); weights need the where()
    return total / (count if is_mask else backend.where(count == 0, 1.0, count))


def _count_at_broadcast_shape(
    count: Array, weights: Array, loss: Array, *, backend: Backend
) -> Array:
    """``count`` (the weights' sum) as if the weights were broadcast to ``loss``."""
    if weights.shape == loss.shape:
        return count
    full, own = known_size(loss.shape), known_size(weights.shape)
    if full is None or own is None:
        zeros = backend.xp.zeros_like(loss)
        return backend.sum(zeros + backend.xp.astype(weights, loss.dtype))
    # each element of the weights is repeated full / own times by the broadcast
    return count * (full // own) if own else count
