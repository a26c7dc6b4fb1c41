"""Elementwise primitives and reductions in standard forms, each taking its namespace.

None inspects types. Libraries with a native stable primitive (``torch.sigmoid``,
``jax.nn.sigmoid``) use theirs instead; :mod:`._namespace` makes that choice once
per array type.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._validation import known_size

Array = Any
Namespace = Any

__all__ = [
    "add_float_in_place",
    "add_scalar",
    "add_scalar_in_place",
    "count_as_int",
    "count_by_nonzero",
    "count_by_sum",
    "count_of_elements",
    "divide",
    "keep_by_bits",
    "keep_where",
    "logistic",
    "logistic_in_four_buffers",
    "masked_total",
    "masked_total_by_bits",
    "max_over_first_axis",
    "max_over_first_axis_of_any_size",
    "mean_of_any_size",
    "mean_of_sum",
    "positive_class",
    "relu",
    "relu_in_place_by_rows",
    "relu_into_zeros",
    "scalar_array",
    "sigmoid",
    "sigmoid_in_one_buffer",
    "sigmoid_of_negative",
    "sigmoid_of_negative_in_one_buffer",
    "square_in_place",
    "subtract_product",
    "subtract_product_in_place",
    "sum_by_reduce",
]

_SIGMOID_CONSTANTS: dict[Any, tuple[Array, Array]] = {}
_SCALARS: dict[tuple[Any, Any, float, float], Array] = {}
# a margin that changes from call to call must not grow the cache without end
_MOST_SCALARS = 64
_ZERO_ROWS: dict[tuple[Any, Any], Array] = {}
# glibc serves a new buffer of this many bytes or more from fresh pages, which fault
# in on first touch: on the benchmarks' VM a second new buffer of a million float32
# has cost up to 6 ms, many times the pass that fills it
_FRESH_PAGES_FROM = 128 * 1024
_ZERO_ROW_LENGTH = 8192
# from this many elements, letting exp overflow quietly (entering NumPy's errstate
# costs a microsecond) beats a pass that caps the exponent (NumPy's minimum
# against a scalar takes half a nanosecond an element)
_QUIET_OVERFLOW_FROM = 2048


def sigmoid(x: Array, /, *, xp: Namespace) -> Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow for any ``x``."""
    decay = xp.exp(-xp.abs(x))
    # σ(x) = 1 / (1 + e^-|x|) for x ≥ 0, and e^-|x| / (1 + e^-|x|) for x < 0: e^-|x| ≤ 1
    return xp.where(x >= 0, 1.0, decay) / (1.0 + decay)


def sigmoid_in_one_buffer(
    x: Array, /, *, xp: Namespace, quiet_overflow: Callable[[], Any]
) -> Array:
    """The sigmoid in four or five passes over one new buffer, for ufuncs that take
    ``out=``; ``quiet_overflow()`` is a context in which ``exp`` overflows silently.

    Exact to rounding for every ``x`` whose sigmoid is a normal number; below that
    (``x < -87`` in float32) it returns at most the smallest normal, never inf.
    """
    exponent = xp.negative(x, out=_new_buffer(x, xp=xp))
    # σ(x) = 1 / (1 + e^-x)
    return _reciprocal_of_one_plus_exp(
        exponent, out=exponent, xp=xp, quiet_overflow=quiet_overflow
    )


def sigmoid_of_negative(x: Array, /, *, sigmoid: Callable[[Array], Array]) -> Array:
    """``σ(-x)``, which is ``1 - σ(x)`` without its cancellation."""
    return sigmoid(-x)


def sigmoid_of_negative_in_one_buffer(
    x: Array, /, *, xp: Namespace, quiet_overflow: Callable[[], Any]
) -> Array:
    """``σ(-x)`` as :func:`sigmoid_in_one_buffer` computes ``σ``, a pass sooner."""
    # σ(-x) = 1 / (1 + e^x): the negation of -x is x, exactly
    return _reciprocal_of_one_plus_exp(
        x, out=_new_buffer(x, xp=xp), xp=xp, quiet_overflow=quiet_overflow
    )


def sigmoid_of_difference(
    x: Array, y: Array, /, *, sigmoid: Callable[[Array], Array]
) -> Array:
    """``σ(x - y)``."""
    return sigmoid(x - y)


def sigmoid_of_difference_in_one_buffer(
    x: Array, y: Array, /, *, xp: Namespace, quiet_overflow: Callable[[], Any]
) -> Array:
    """``σ(x - y)`` as :func:`sigmoid_in_one_buffer` computes ``σ``, with the
    difference as its first pass: one buffer and one pass fewer than the sigmoid of
    a difference."""
    # only where both are 0-d is the difference 0-d
    out = _new_buffer(x, xp=xp) if y.ndim == 0 else None
    # σ(x - y) = 1 / (1 + e^(y - x)), and y - x is -(x - y) exactly
    exponent = xp.subtract(y, x, out=out)
    return _reciprocal_of_one_plus_exp(
        exponent, out=exponent, xp=xp, quiet_overflow=quiet_overflow
    )


def _new_buffer(x: Array, *, xp: Namespace) -> Array | None:
    """``out=`` for a ufunc's first pass over ``x``: None lets it allocate, except on
    a 0-d ``x``, where a ufunc would return a scalar, which nothing can be written into."""
    return xp.empty_like(x) if x.ndim == 0 else None


def _reciprocal_of_one_plus_exp(
    exponent: Array,
    *,
    out: Array | None,
    xp: Namespace,
    quiet_overflow: Callable[[], Any],
) -> Array:
    """``1 / (1 + e^exponent)``, written into ``out`` (a new array if None)."""
    exp_limit, one = _sigmoid_constants(exponent.dtype, xp=xp)
    if exponent.size < _QUIET_OVERFLOW_FROM:
        # capping the exponent at the largest finite one keeps e^exponent finite, and
        # 1 / (1 + e^exponent) there is already below the smallest normal number
        buffer = xp.minimum(exponent, exp_limit, out=out)
        xp.exp(buffer, out=buffer)
    else:
        # a pass fewer: e^exponent overflows to inf, where 1 / (1 + inf) is 0
        with quiet_overflow():
            buffer = xp.exp(exponent, out=out)
    xp.add(buffer, one, out=buffer)
    # NumPy divides in SIMD, and its reciprocal does not: 1 / x in half the time
    return xp.divide(one, buffer, out=buffer)


def add(x: Array, y: Array, /) -> Array:
    """``x + y``."""
    return x + y


def add_in_place(x: Array, y: Array, /) -> Array:
    """:func:`add` written into ``x``, a new array the caller owns with the result's
    shape, for libraries whose arrays are written in place: one buffer where the sum
    takes two, and a fresh buffer of a million elements costs more than its pass."""
    # x + y is C-ordered wherever x is (NumPy follows its operands' layout only where
    # they agree), and a sum adds in memory order: into x only where x is C-ordered
    if not x.flags.c_contiguous:
        return x + y
    # the operator, not add(x, y, out=x), whose keyword costs a twentieth of a
    # microsecond; where x is a scalar (a ufunc's result on 0-d), += makes a new one
    x += y
    return x


def add_scalar(x: Array, value: float, /) -> Array:
    """``x + value``, for a Python float ``value``."""
    return x + value


def divide(x: Array, y: Array, /) -> Array:
    """``x / y``."""
    return x / y


def subtract_product(x: Array, y: Array, z: Array, /) -> Array:
    """``x - y * z``."""
    return x - y * z


def subtract_product_in_place(
    x: Array, y: Array, z: Array, /, *, xp: Namespace
) -> Array:
    """:func:`subtract_product` written into ``z``, a new array the caller owns with
    the result's shape, for ufuncs that take ``out=``: one buffer where the expression
    takes two, and a fresh buffer of a million elements costs more than its pass."""
    # a ufunc on a 0-d array returns a scalar, which nothing can be written into
    if z.ndim == 0:
        return x - y * z
    product = xp.multiply(y, z, out=z)
    return xp.subtract(x, product, out=product)


def add_scalar_in_place(x: Array, value: float, /, *, xp: Namespace) -> Array:
    """:func:`add_scalar` written into ``x``, a new array the caller owns, for ufuncs
    that take ``out=``: a 0-d array of ``x``'s dtype, made once, is added faster than a
    Python float, and a fresh buffer of a million elements costs as much as the pass."""
    # a ufunc on a 0-d array returns a scalar, which nothing can be written into
    if x.ndim == 0:
        return x + value
    return xp.add(x, scalar_array(value, x.dtype, xp=xp), out=x)


def add_float_in_place(x: Array, value: float, /, *, xp: Namespace) -> Array:
    """:func:`add_scalar` written into ``x``, a new array the caller owns, for ufuncs
    that take ``out=`` and a Python float as cheaply as an array: CuPy's, which pass
    it to the kernel as an argument, where a 0-d array made once would sit on the
    device current when it was made, and meet arrays of other devices later."""
    # a ufunc on a 0-d array returns a scalar, which nothing can be written into
    if x.ndim == 0:
        return x + value
    return xp.add(x, value, out=x)


def scalar_array(value: float, dtype: Any, /, *, xp: Namespace) -> Array:
    """``value`` as a 0-d array of ``dtype``, made once per library, dtype and value
    (the last 64 of them), for NumPy: on a GPU it would sit on the device current
    when it was made (see :func:`add_float_in_place`)."""
    # 0.0 and -0.0 are one dictionary key, and x + 0.0 differs from x + -0.0 at -0.0;
    # by library too: NumPy and CuPy share their dtype objects, not their arrays
    key = (xp, dtype, value, math.copysign(1.0, value))
    scalar = _SCALARS.get(key)
    if scalar is None:
        if len(_SCALARS) >= _MOST_SCALARS:
            _SCALARS.clear()
        scalar = _SCALARS[key] = xp.asarray(value, dtype=dtype)
    return scalar


def relu(x: Array, /, *, xp: Namespace) -> Array:
    """``max(x, 0)``, propagating NaN."""
    return xp.maximum(x, 0.0)


def relu_into_zeros(x: Array, /, *, xp: Namespace) -> Array:
    """:func:`relu` written into a new array of zeros, for ufuncs that take ``out=``:
    NumPy's maximum against an array runs three times as fast as against a scalar."""
    zeros = xp.zeros(x.shape, dtype=x.dtype)
    return xp.maximum(x, zeros, out=zeros)


def relu_in_place_by_rows(x: Array, /, *, xp: Namespace) -> Array:
    """:func:`relu` written into ``x``, a new array the caller owns, for ufuncs that
    take ``out=``; small arrays take :func:`relu_into_zeros`, whose new buffer costs
    less than the slower maximum against a scalar would.

    Large arrays get no new buffer: they take the maximum in place, row by row of
    ``_ZERO_ROW_LENGTH`` elements against one row of zeros, which runs at the speed
    of two arrays (NumPy's maximum against a scalar takes three times as long).
    """
    if x.nbytes < _FRESH_PAGES_FROM or not x.flags.c_contiguous:
        return relu_into_zeros(x, xp=xp)
    flat = x.reshape(-1)  # a view: x is C-contiguous
    whole = flat.size - flat.size % _ZERO_ROW_LENGTH
    zeros = _zero_row(x.dtype, xp=xp)
    rows = flat[:whole].reshape(-1, _ZERO_ROW_LENGTH)
    xp.maximum(rows, zeros, out=rows)
    rest = flat[whole:]
    xp.maximum(rest, zeros[: rest.size], out=rest)
    return x


def _zero_row(dtype: Any, *, xp: Namespace) -> Array:
    """A read-only row of ``_ZERO_ROW_LENGTH`` zeros of ``dtype``, made once."""
    zeros = _ZERO_ROWS.get((xp, dtype))
    if zeros is None:
        zeros = _ZERO_ROWS[xp, dtype] = xp.zeros(_ZERO_ROW_LENGTH, dtype=dtype)
        zeros.flags.writeable = False
    return zeros


def square_in_place(x: Array, /, *, xp: Namespace) -> Array:
    """``x²`` written into ``x``, a new array the caller owns, for ufuncs that take
    ``out=``: a fresh buffer of a million elements costs as much as the pass."""
    # a ufunc on a 0-d array returns a scalar, which nothing can be written into
    return xp.square(x) if x.ndim == 0 else xp.square(x, out=x)


def logistic(observed: Array, logit: Array, /, *, xp: Namespace) -> Array:
    """Spotlight's logistic loss of each element: cross-entropy of a logit against clip(y, 0, 1)."""
    positive = positive_class(observed, xp=xp)
    # max(x, 0) by where(), not maximum(): the kinks of max(x, 0) and |x| at 0 cancel
    # in the loss, and autodiff sees them cancel only if both take the right-hand
    # derivative there, as JAX's abs does (its maximum splits the tie). A where()
    # for |x| too would slow XLA's fused loop by 15% (measured)
    rectified = xp.where(logit >= 0, logit, 0.0)
    # -z·log σ(x) - (1 - z)·log(1 - σ(x)) = max(x, 0) - x·z + log1p(e^-|x|), summed
    # in this order so that a confident right answer keeps its tiny loss exactly
    return rectified - logit * positive + xp.log1p(xp.exp(-xp.abs(logit)))


def logistic_in_four_buffers(
    observed: Array,
    logit: Array,
    /,
    *,
    xp: Namespace,
    relu: Callable[[Array], Array],
) -> Array:
    """:func:`logistic` with the same operations in the same order, in four new
    buffers where the expression takes seven, for ufuncs that take ``out=``:
    ``relu`` is the library's fastest, and ``clip`` is one pass where
    :func:`positive_class` takes two."""
    # a ufunc returns a scalar on 0-d arrays, which nothing can be written into
    if logit.ndim == 0:
        return logistic(observed, logit, xp=xp)
    loss = xp.multiply(logit, xp.clip(observed, 0.0, 1.0))
    xp.subtract(relu(logit), loss, out=loss)
    tail = xp.abs(logit)
    xp.negative(tail, out=tail)
    xp.exp(tail, out=tail)
    xp.log1p(tail, out=tail)
    return xp.add(loss, tail, out=loss)


def positive_class(observed: Array, /, *, xp: Namespace) -> Array:
    """``clip(y, 0, 1)``: an observation of -1 or 0 is negative, of 1 positive."""
    # not clip(): array-api-compat's Dask clip broadcasts a float bound to the whole
    # shape in one chunk
    return xp.minimum(xp.maximum(observed, 0.0), 1.0)


def count_by_sum(mask: Array, dtype: Any, /, *, xp: Namespace) -> Array:
    """The number of True elements of a bool ``mask``, or 1 if there are none, as a
    0-d array of ``dtype``."""
    return xp.maximum(xp.sum(xp.astype(mask, dtype)), 1.0)


def count_as_int(
    mask: Array,
    dtype: Any,  # noqa: ARG001 - every count takes one
    /,
    *,
    count_nonzero: Callable[[Array], int],
) -> int:
    """:func:`count_by_sum` as a Python int, from an integer ``count_nonzero``: a
    Python int divides a floating array without changing its dtype."""
    # NumPy's count is a NumPy integer, which would promote float32 to float64
    return max(int(count_nonzero(mask)), 1)


def count_by_nonzero(mask: Array, dtype: Any, /, *, xp: Namespace) -> Array:
    """:func:`count_by_sum` in one pass, where ``count_nonzero`` returns an int."""
    return xp.asarray(max(xp.count_nonzero(mask), 1), dtype=dtype)


def keep_where(mask: Array, x: Array, /, *, xp: Namespace) -> Array:
    """``x`` where the bool ``mask`` is True, else exactly 0, even where ``x`` is inf or NaN."""
    return xp.where(mask, x, 0.0)


def keep_by_bits(
    mask: Array, x: Array, /, *, xp: Namespace, unsigned: dict[int, Any]
) -> Array:
    """:func:`keep_where` in a third of NumPy's ``where`` time, for arrays with ``view``.

    ``unsigned`` maps an item size in bytes to the unsigned integer dtype of that size.
    """
    bits = unsigned.get(x.dtype.itemsize)
    if bits is None:
        return keep_where(mask, x, xp=xp)
    x_bits, mask_bits = x.view(bits), mask.astype(bits)
    if x.ndim == 0:
        # a ufunc on 0-d arrays returns a scalar, as NumPy's own expressions do
        return xp.multiply(x_bits, mask_bits).view(x.dtype)
    # written through a bit view of a float array, which the result then owns, as the
    # results of NumPy's own expressions do; in x's layout, in which
    # masked_total_by_bits writes the product: a sum of either adds in memory order
    kept = xp.empty_like(x)
    # x's bit pattern times 0 or 1 is x's or +0.0's: no float product turns inf·0 into NaN
    xp.multiply(x_bits, mask_bits, out=kept.view(bits))
    return kept


def masked_total(
    loss: Array,
    mask: Array,
    /,
    *,
    keep: Callable[[Array, Array], Array],
    sum_all: Callable[[Array], Array],
    count: Callable[[Array, Any], Array],
) -> tuple[Array, Array]:
    """The sum of ``loss`` where the bool ``mask`` is True, and :func:`count_by_sum` of ``mask``."""
    return sum_all(keep(mask, loss)), count(mask, loss.dtype)


def masked_total_by_bits(
    loss: Array, mask: Array, /, *, xp: Namespace, unsigned: dict[int, Any]
) -> tuple[Array, int]:
    """:func:`masked_total` for NumPy, with the kept terms written into ``loss``, a
    new array the caller owns, and the count a Python int (see :func:`count_as_int`).

    ``xp`` is NumPy itself; ``unsigned`` as for :func:`keep_by_bits`.
    """
    bits = unsigned.get(loss.itemsize)
    # a ufunc on a 0-d array returns a scalar, which nothing can be written into
    if bits is None or loss.ndim == 0:
        kept = keep_by_bits(mask, loss, xp=xp, unsigned=unsigned)
    else:
        kept = loss
        # keep_by_bits's product, written out here: calling it, with count_as_int,
        # made the masked regression at (256, 50) 5% slower (measured interleaved)
        loss_bits = loss.view(bits)
        xp.multiply(loss_bits, mask.astype(bits), out=loss_bits)
    return xp.add.reduce(kept, axis=None), int(xp.count_nonzero(mask)) or 1


def sum_by_reduce(x: Array, /, *, add: Any) -> Array:
    """Sum over every axis by the ufunc ``add``'s own reduction."""
    return add.reduce(x, axis=None)


def count_of_elements(x: Array, /, *, xp: Namespace) -> Array:
    """The number of elements of ``x``, at least 1, counted as an array: the divisor
    of a mean over an array whose size is unknown until computed (Dask's, after a
    boolean selection), so that one that turns out empty has the mean 0."""
    return xp.maximum(xp.sum(xp.ones_like(x)), 1.0)


def max_over_first_axis(x: Array, /, *, xp: Namespace) -> Array:
    """The maximum of ``x`` over its first axis, propagating NaN."""
    return xp.max(x, axis=0)


def max_over_first_axis_of_any_size(x: Array, /, *, xp: Namespace) -> Array:
    """:func:`max_over_first_axis` for Dask, whose own maximum over an axis computes
    that of an empty array of three or more axes to a wrong shape, and fails where a
    chunk of any axis is empty: after a boolean selection, its size unknown or (once
    ``compute_chunk_sizes()`` has run) known to be 0.

    An empty ``x`` has no value to read, and its first row has the maximum's shape.
    Where every chunk is known to hold elements, Dask's own maximum serves, in
    fewer tasks (its halvings' slices are layers that Dask's optimisation does not
    fuse). Otherwise, for a first axis of known length (the negatives, a handful),
    the maximum is taken by halves, chunk by chunk.
    """
    if 0 in x.shape:
        return x[0, ...]
    # an unknown size is NaN, and NaN > 0 is False
    if all(size > 0 for sizes in x.chunks for size in sizes):
        return xp.max(x, axis=0)
    if known_size(x.shape[:1]) is not None:
        return max_over_first_axis_by_halves(x, xp=xp)
    return xp.max(x, axis=0)


def max_over_first_axis_by_halves(x: Array, /, *, xp: Namespace) -> Array:
    """The maximum of ``x`` over its first axis of k rows, in ⌈log₂ k⌉ halvings, each an
    elementwise maximum, which propagates NaN."""
    while x.shape[0] > 1:
        rows = (x.shape[0] + 1) // 2
        # with an odd number of rows the halves share the middle one, and the
        # maximum of a value and itself is that value
        x = xp.maximum(x[:rows], x[x.shape[0] - rows :])
    return x[0, ...]


def mean_of_any_size(x: Array, /, *, xp: Namespace) -> Array:
    """Mean over every axis, for arrays whose size may be unknown until computed:
    there, the sum over :func:`count_of_elements`."""
    if known_size(x.shape) is not None:
        return xp.mean(x)
    return xp.sum(x) / count_of_elements(x, xp=xp)


def mean_of_sum(x: Array, /, *, sum_all: Callable[[Array], Array]) -> Array:
    """Mean over every axis as ``sum_all(x) / count``: NumPy's ``mean`` adds microseconds of Python."""
    return sum_all(x) / math.prod(x.shape)


def _sigmoid_constants(dtype: Any, *, xp: Namespace) -> tuple[Array, Array]:
    """The largest whole exponent whose exp is finite in ``dtype`` (88 for float32),
    and 1, as 0-d arrays of ``dtype``: ufuncs take those faster than Python floats."""
    # by library too: NumPy and CuPy share their dtype objects, not their arrays
    constants = _SIGMOID_CONSTANTS.get((xp, dtype))
    if constants is None:
        # the log taken in dtype: a long double's largest value overflows a float
        largest = xp.asarray(xp.finfo(dtype).max, dtype=dtype)
        limit = math.floor(float(xp.log(largest)))
        constants = (xp.asarray(limit, dtype=dtype), xp.asarray(1, dtype=dtype))
        _SIGMOID_CONSTANTS[xp, dtype] = constants
    return constants
