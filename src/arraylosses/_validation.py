"""Checks on shapes, dtypes, devices and options, and the messages they raise.

Every check reads only shapes, dtypes and Python options, never array values, so
that the losses stay traceable by ``jax.jit``, compilable by ``torch.compile`` and
lazy on Dask.
"""

from __future__ import annotations

import math
import sys
from numbers import Real
from typing import Any, Literal, NoReturn, get_args

Shape = tuple[Any, ...]

# the reductions every loss takes: a Literal, so that type checkers catch a misspelt one
Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)
# the characters of a margin an error message shows: an int can have thousands
_SHOWN_DIGITS = 40

__all__ = [
    "REDUCTIONS",
    "Reduction",
    "a_type",
    "as_margin",
    "broadcast_pair",
    "check_flag",
    "check_mask_shape",
    "check_negatives_shape",
    "check_reduction",
    "describe_type",
    "format_shape",
    "known_size",
    "library_of",
    "refuse_nested_tensor",
]


def check_reduction(reduction: object, choices: tuple[str, ...] = REDUCTIONS) -> None:
    """Refuse a ``reduction`` that is not one of ``choices``: TypeError for one that is
    not a str (an array compares elementwise, and would pass as a name it equals),
    ValueError for another name."""
    quoted = [f"'{choice}'" for choice in choices]
    expected = f"one of {', '.join(quoted[:-1])} or {quoted[-1]}"
    if not isinstance(reduction, str):
        shown = "None" if reduction is None else _described(reduction)
        msg = f"reduction must be a str, {expected}, got {shown}"
        raise TypeError(msg)
    if reduction not in choices:
        msg = f"reduction must be {expected}, got {reduction!r}"
        raise ValueError(msg)


def as_margin(margin: object) -> float:
    """``margin`` as a Python float, which takes the predictions' dtype in every
    library (a NumPy float64 would promote float32 predictions to float64)."""
    # a finite Python float needs no ABC check, which costs every call (and, under
    # torch.compile, a guard on numbers.Real); x - x is 0 for finite x alone (inf - inf
    # and NaN - NaN are NaN), and reads no module's global, which torch.compile guards
    if type(margin) is float and margin - margin == 0.0:
        return margin
    if isinstance(margin, bool) or not isinstance(margin, Real):
        msg = (
            "margin must be a real number, a Python or NumPy scalar, got "
            f"{_described(margin)}"
        )
        numeric = not isinstance(margin, str) and "bool" not in str(
            getattr(margin, "dtype", "")
        )
        if numeric and hasattr(margin, "shape"):
            # a tensor, a traced JAX scalar, or the 0-d array torch.compile turns a
            # NumPy scalar into while it traces
            msg += (
                "; pass a Python number: float(margin) under torch.compile, and "
                "under jax.jit close over the margin or mark it static"
            )
        raise TypeError(msg)
    try:
        value = float(margin)
    except OverflowError:  # an int or Fraction beyond any float
        value = math.inf
    # the fast path's test, not math.isfinite: an int margin that changes between
    # torch.compile'd calls becomes a symbolic float, which Dynamo can't pass to it
    if value - value != 0.0:  # NaN for inf and NaN
        shown = repr(margin)
        shown = shown if len(shown) <= _SHOWN_DIGITS else f"{shown[:_SHOWN_DIGITS]}..."
        msg = f"margin must be finite, got {shown}"
        raise ValueError(msg)
    return value


def format_shape(shape: Shape) -> str:
    """``(3, 4)`` as Python writes a tuple, with unknown dimensions as ``?``."""
    dims = [_format_dimension(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _format_dimension(dim: Any) -> str:
    if _unknown(dim):
        return "?"
    # an f-string, not str(): Dynamo traces it on symbolic sizes, so that a shape
    # error under torch.compile(dynamic=True) keeps its message
    try:
        return f"{int(dim)}"
    except Exception:  # noqa: BLE001 - jax.export's own error, of no class of Python's
        # a symbolic size of jax.export has no int, and shows as its name
        return f"{dim}"


def broadcast_pair(
    first: str, first_shape: Shape, second: str, second_shape: Shape
) -> Shape:
    """Shape that ``first`` and ``second`` broadcast to; it must be one of theirs.

    Raises
    ------
    ValueError
        If the shapes do not broadcast, or broadcast to a shape that is neither
        of theirs (an accidental outer product, such as (B,) against (B, 1)).
    """
    try:
        shape = _broadcast(first_shape, second_shape)
    except _UnknownAgainstKnownError:
        _refuse_unknown_against_known(first, first_shape, second, second_shape)
    if shape is None:
        msg = (
            f"{_pair(first, first_shape, second, second_shape)} do not broadcast "
            "together; expected equal shapes, or one that broadcasts to the other"
        )
        raise ValueError(
            msg
            + _leading_axes_hint(first, first_shape, second_shape)
            + _leading_axes_hint(second, second_shape, first_shape)
        )
    if not (_same(shape, first_shape) or _same(shape, second_shape)):
        msg = (
            f"{_pair(first, first_shape, second, second_shape)} broadcast to "
            f"{format_shape(shape)}, an outer product of the two; expected equal "
            "shapes, or one that broadcasts to the other (reshape one of them if an "
            "outer product is really meant)"
        )
        raise ValueError(msg)
    return shape


def _leading_axes_hint(name: str, shape: Shape, other_shape: Shape) -> str:
    """A remedy where ``shape`` is the leading part of ``other_shape``, as (B,) is of
    (B, T): one element per row, which broadcasts only as (B, 1)."""
    rank = len(shape)
    if not 0 < rank < len(other_shape) or not _same(shape, other_shape[:rank]):
        return ""
    fitted = (*shape, *(1,) * (len(other_shape) - rank))
    return (
        f"; for one element of {name} per row of the other, give it shape "
        f"{format_shape(fitted)}"
    )


def check_mask_shape(mask_shape: Shape, loss_shape: Shape) -> None:
    """The mask must broadcast to the elementwise loss's shape, not beyond it."""
    try:
        broadcast = _broadcast(mask_shape, loss_shape)
    except _UnknownAgainstKnownError:
        _refuse_unknown_against_known("mask", mask_shape, "the loss", loss_shape)
    if broadcast is None or not _same(broadcast, loss_shape):
        msg = (
            f"mask with shape {format_shape(mask_shape)} does not broadcast to the "
            f"shape of the elementwise loss, {format_shape(loss_shape)}"
        )
        raise ValueError(msg + _leading_axes_hint("mask", mask_shape, loss_shape))


def check_negatives_shape(
    name: str, shape: Shape, positive: str, positive_shape: Shape
) -> None:
    """Several negatives come stacked on a leading axis that is not empty."""
    if len(shape) <= len(positive_shape):
        least = len(positive_shape) + 1
        msg = (
            f"{name} with shape {format_shape(shape)} must stack the negatives on a "
            f"leading axis, with shape (n_negatives, *S) where S broadcasts against "
            f"the shape of {positive}, {format_shape(positive_shape)}; so it needs at least "
            f"{least} dimension{'' if least == 1 else 's'}"
        )
        raise ValueError(msg)
    if shape[0] == 0:
        msg = f"{name} with shape {format_shape(shape)} has no negatives on its leading axis"
        raise ValueError(msg)


def known_size(shape: Shape) -> Any:
    """Number of elements of ``shape``, or None where a dimension is unknown (Dask).

    Not converted to an int: under ``jax.export`` a dimension may be symbolic, and
    its product stays a symbolic expression, which the divisions that take it allow.
    """
    if any(_unknown(d) for d in shape):
        return None
    return math.prod(shape)


def _same(first: Shape, second: Shape) -> bool:
    """Equal shapes, where two unknown dimensions count as equal (Dask's NaNs never are)."""
    return len(first) == len(second) and all(
        a == b or (_unknown(a) and _unknown(b))
        for a, b in zip(first, second, strict=True)
    )


def _unknown(dim: object) -> bool:
    return dim is None or (isinstance(dim, float) and math.isnan(dim))


class _UnknownAgainstKnownError(Exception):
    """Raised by :func:`_broadcast` where an unknown dimension meets a known one other
    than 1, for its caller to refuse with the arguments' names."""


def _refuse_unknown_against_known(
    first: str, first_shape: Shape, second: str, second_shape: Shape
) -> NoReturn:
    msg = (
        f"{_pair(first, first_shape, second, second_shape)}: an unknown size (?) meets "
        "a known one other than 1, which Dask can't broadcast until it knows the size; "
        "compute the unknown sizes first (in Dask, with the array's "
        "compute_chunk_sizes())"
    )
    raise ValueError(msg)


def _pair(first: str, first_shape: Shape, second: str, second_shape: Shape) -> str:
    return (
        f"{first} with shape {format_shape(first_shape)} and {second} with shape "
        f"{format_shape(second_shape)}"
    )


def _broadcast(first: Shape, second: Shape) -> Shape | None:
    """The array API broadcast of two shapes, None if they do not broadcast.

    A dimension that is unknown (None, or NaN in Dask) fits another unknown one,
    taken to be equal (Dask's two are then checked chunk by chunk as they compute:
    :mod:`._dask`), or 1; against any other size it raises
    :class:`_UnknownAgainstKnownError`, as Dask can't broadcast it.
    """
    ndim = max(len(first), len(second))
    first = (1,) * (ndim - len(first)) + tuple(first)
    second = (1,) * (ndim - len(second)) + tuple(second)
    shape = []
    for a, b in zip(first, second, strict=True):
        if _unknown(a) or _unknown(b):
            if not (a == 1 or b == 1 or (_unknown(a) and _unknown(b))):
                raise _UnknownAgainstKnownError
            shape.append(b if a == 1 else a)
        # ==, not `in`: torch.compile finds 5 in (s, 1) False for a symbolic size s
        # equal to 5 (PyTorch 2.13)
        elif b == a or b == 1:  # noqa: PLR1714 - see above
            shape.append(a)
        elif a == 1:
            shape.append(b)
        else:
            return None
    return tuple(shape)


def check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        msg = f"{name} must be True or False, got {_described(value)}"
        raise TypeError(msg)


def refuse_nested_tensor(name: str) -> NoReturn:
    """Refuse a PyTorch nested tensor, whose sequences the losses can't tell apart
    (and whose strided layout has no shape)."""
    msg = (
        f"{name} is a nested tensor, which arraylosses can't take: pass the elements "
        "of each nested argument in one plain tensor (values() of the jagged "
        "layout), whose mean loss is the nested tensors' mean loss"
    )
    raise TypeError(msg)


def describe_type(value: object) -> str:
    """The type of ``value`` for error messages: ``module.Class`` by the shortest
    module path it imports from (``numpy.ndarray``, and ``numpy.bool`` beside
    Python's; ``numpy.ma.MaskedArray``, defined in ``numpy.ma.core``), else by its
    module's path up to the first private part (``array_api_strict.Array``,
    defined in ``array_api_strict._array_object``), or a builtin's name alone
    (``int``)."""
    kind = type(value)
    # str(): see library_of()
    name, module = kind.__qualname__, str(kind.__module__)
    if module == "builtins":
        return name
    parts = module.split(".")
    public = parts[:1]
    for part in parts[1:]:
        if getattr(sys.modules.get(".".join(public)), name, None) is kind:
            break
        if part.startswith("_"):
            break
        public.append(part)
    return f"{'.'.join(public)}.{name}"


def _described(value: object) -> str:
    """``value`` for error messages: its type, then its repr.

    A call of its own: where ``value`` is a tensor that ``torch.compile`` is
    tracing, Dynamo can't take its repr, and breaks the graph at this call, running
    the rest of the caller's check as Python; the repr in the caller's own
    expression would make it run the whole loss as Python instead, where the check
    it was to fail passes.
    """
    return f"{describe_type(value)} {value!r}"


def a_type(value: object) -> str:
    """:func:`describe_type` after its article: 'a numpy.ndarray', 'an
    array_api_strict.Array'."""
    described = describe_type(value)
    return f"{'an' if described[0] in 'aeiou' else 'a'} {described}"


def library_of(value: object) -> str:
    """The top-level module that defines ``value``'s type."""
    # str(): under torch.compile, the module of a NumPy array's type is no constant
    # str, and Dynamo traces none of its methods
    return str(type(value).__module__).split(".")[0]
