"""Dask's sizes that it does not know yet, checked where the losses pair them.

:mod:`._namespace` imports this module only once it has met a Dask array, so
importing arraylosses never imports dask.

A boolean selection leaves an array's size unknown (NaN) until it is computed.
Two such arrays pass the shape checks as equal, and Dask pairs them chunk by
chunk: where two paired chunks differ in length, one of length 1 broadcasts
against the other without a word, and any other pair fails with NumPy's
broadcasting error, naming neither argument. Here each such pair is checked
when it is computed, in a task of its own per chunk that compares the two
lengths and raises a ValueError naming both arguments; building the graph still
computes nothing.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import dask.array as da

Array = Any

__all__ = ["check_unknown_sizes"]

_INDICES = "abcdefghijklmnopqrstuvwxyz"


def check_unknown_sizes(
    first: Array,
    first_name: str,
    second: Array,
    second_name: str,
    mask: Array | None,
    second_has_negatives_axis: bool,
) -> tuple[Array, Array, Array | None]:
    """``first``, ``second`` and ``mask``, made to check, chunk by chunk as they
    compute, their lengths along every axis where neither size is known:
    ``second`` against ``first`` (or ``first`` against ``second``, where it has
    more axes), and the mask against whichever of the two has more axes
    (``first`` where they have as many).

    Arrays without such an axis come back as they are.

    Raises
    ------
    ValueError
        Where the positives have more axes than the negatives' elements (the one
        broadcast that the check does not serve), or two arrays have a different
        number of chunks along such an axis, which Dask can't pair chunk by chunk
        (at the call); or where two paired chunks differ in length (when the
        result is computed).
    """
    leading = 1 if second_has_negatives_axis else 0
    if not leading and len(first.shape) > len(second.shape):
        first = _checked(second, second_name, first, first_name, 0)
        widest, widest_name = first, first_name
    else:
        second = _checked(first, first_name, second, second_name, leading)
        wider = not leading and len(second.shape) > len(first.shape)
        widest, widest_name = (second, second_name) if wider else (first, first_name)
    if mask is not None:
        mask = _checked(widest, widest_name, mask, "mask", 0)
    return first, second, mask


def _checked(
    reference: Array, reference_name: str, array: Array, name: str, leading: int
) -> Array:
    """``array``, whose first ``leading`` axes ``reference`` does not have, made to
    check its chunks' lengths against ``reference``'s along the axes where both
    sizes are unknown."""
    shape = array.shape[leading:]
    pairs = list(zip(reversed(reference.shape), reversed(shape), strict=False))
    axes = [
        -1 - index
        for index, (size, other) in enumerate(pairs)
        if math.isnan(size) and math.isnan(other)
    ]
    # sizes that do not broadcast are the shape checks' to refuse, by name
    if not axes or not all(
        size == other or 1 in (size, other)
        for size, other in pairs
        if not (math.isnan(size) or math.isnan(other))
    ):
        return array
    if len(reference.shape) > len(shape):
        _refuse(reference_name, name, f"{reference_name} has more axes")
    for axis in axes:
        counts = (reference.numblocks[axis], array.numblocks[axis])
        if counts[0] != counts[1]:
            where = f"axis {len(shape) + axis} is in {counts[0]} and {counts[1]} chunks"
            _refuse(reference_name, name, where)
    indices = _INDICES[: array.ndim]
    return da.blockwise(
        _same_lengths,
        indices,
        array,
        indices,
        reference,
        indices[array.ndim - len(reference.shape) :],
        dtype=array.dtype,
        # Dask's own record of its chunks' type
        meta=array._meta,
        axes=axes,
        rank=len(shape),
        names=(reference_name, name),
    )


def _refuse(first_name: str, second_name: str, why: str) -> NoReturn:
    msg = (
        f"{first_name} and {second_name} have sizes Dask does not know yet, and "
        f"{why}, so their chunks can't be paired; compute the sizes first (in Dask, "
        "with each array's compute_chunk_sizes())"
    )
    raise ValueError(msg)


def _same_lengths(
    chunk: Array,
    reference: Array,
    *,
    axes: list[int],
    rank: int,
    names: tuple[str, str],
) -> Array:
    """``chunk`` itself, once its length along each of ``axes`` is found equal to
    ``reference``'s chunk's, which it is computed beside; an axis is named as the
    refusal at the call names it, among the ``rank`` axes that the two pair."""
    for axis in axes:
        lengths = (reference.shape[axis], chunk.shape[axis])
        if lengths[0] != lengths[1]:
            msg = (
                f"{names[0]} and {names[1]}, of sizes Dask did not know, have chunks "
                f"of {lengths[0]} and {lengths[1]} elements along axis "
                f"{rank + axis} where the loss pairs them: their shapes "
                "differ, or Dask chunked them apart; compute their sizes first (in "
                "Dask, with each array's compute_chunk_sizes())"
            )
            raise ValueError(msg)
    return chunk
