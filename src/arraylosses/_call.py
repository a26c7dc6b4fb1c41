"""The boundary every public loss crosses first.

:func:`prepare` resolves the namespace once, checks devices, dtypes, shapes and
options, and hands back the arrays in the dtype the math runs in; the loss then
computes one elementwise expression and passes it to :meth:`Call.finish`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ._namespace import BACKENDS, Backend, backend_of
from ._reduction import reduce
from ._validation import (
    REDUCTIONS,
    a_type,
    broadcast_pair,
    check_mask_shape,
    check_negatives_shape,
    check_reduction,
    library_of,
    refuse_nested_tensor,
)

Array = Any

__all__ = ["Call", "prepare"]

# the top-level modules of the array libraries, each with the library it is part of
_LIBRARY_OF_MODULE = {
    "array_api_strict": "array_api_strict",
    "cupy": "cupy",
    "dask": "dask",
    "jax": "jax",
    "jaxlib": "jax",
    "numpy": "numpy",
    "torch": "torch",
}


class Call:
    """The checked inputs of one loss call, cast to the dtype its math runs in.

    :func:`prepare` makes it and sets every attribute: a class without ``__init__``
    costs half as much to make, and every loss call makes one.

    Attributes
    ----------
    backend : Backend
        The library of the arrays.
    first, second : array
        The two array arguments, in the dtype the math runs in.
    weights : array or None
        The mask, bool or in that dtype.
    reduction : str
        'mean', 'sum' or 'none'.
    cast_to : dtype or None
        The caller's dtype where the math runs wider (half precision), else None.
    empty : bool
        Whether the elementwise loss has no elements.
    broadcasts : bool
        Whether ``first`` and ``second`` differ in shape.
    mask_fits : bool
        Whether the weights are a bool mask of the loss's shape.
    """

    __slots__ = (
        "backend",
        "broadcasts",
        "cast_to",
        "empty",
        "first",
        "mask_fits",
        "reduction",
        "second",
        "weights",
    )

    backend: Backend
    first: Array
    second: Array
    weights: Array | None
    reduction: str
    cast_to: Any
    empty: bool
    broadcasts: bool
    mask_fits: bool

    @property
    def xp(self) -> Any:
        """The array namespace of the call."""
        # read on demand: torch.compile guards each attribute a compiled call reads
        return self.backend.xp

    def finish(self, loss: Array) -> Array:
        """Weight and reduce the elementwise ``loss``, in the caller's dtype."""
        # Spotlight's mean and masked mean, the commonest calls, skip reduce()'s Python
        # (which re-reads shapes, new objects on PyTorch), to the same result
        if self.reduction == "mean" and not self.empty and self.weights is None:
            result = self.backend.mean(loss)
        elif self.reduction == "mean" and not self.empty and self.mask_fits:
            total, count = self.backend.masked_total(loss, self.weights)
            result = self.backend.divide(total, count)
        else:
            result = reduce(loss, self.weights, self.reduction, backend=self.backend)
        # the cast's test in line: the call costs 0.03 µs
        return result if self.cast_to is None else self._in_callers_dtype(result)

    def fused(self, loss_name: str) -> Array | None:
        """The reduced loss from the library's own call for ``loss_name``, where it
        has one and this call has no weights, no empty input and no broadcasting;
        else None."""
        fused = self.backend.fused.get(loss_name)
        # a library's mean over no elements is NaN; ours is 0
        if fused is None or self.weights is not None or self.empty or self.broadcasts:
            return None
        return self._in_callers_dtype(fused(self.first, self.second, self.reduction))

    def _in_callers_dtype(self, result: Array) -> Array:
        return result if self.cast_to is None else self.xp.astype(result, self.cast_to)


def prepare(
    first: Array,
    second: Array,
    mask: Array | None,
    reduction: str,
    *,
    names: tuple[str, str],
    second_has_negatives_axis: bool,
    first_is_rating: bool = False,
) -> Call:
    """Check one call's inputs and cast them for its math.

    Every loss call pays for this function, so each attribute of each array is
    read once and the common cases (one array type, equal dtypes, equal shapes)
    take the shortest path; the helpers it calls otherwise raise the errors.

    Parameters
    ----------
    first, second : array
        The two array arguments, in the loss's positional order: predictions for
        the implicit losses, observed then predicted ratings for the explicit ones.
    mask : array or None
        Weights of the elementwise loss: bool, integer or floating.
    reduction : str
        'mean', 'sum' or 'none'.
    names : tuple of str
        The parameter names of ``first`` and ``second``, for error messages.
    second_has_negatives_axis : bool
        Whether ``second`` stacks several negatives on its leading axis. Without a
        default, as every call reads it: a default read costs each
        ``torch.compile``'d call a guard on the function's defaults.
    first_is_rating : bool
        Whether ``first`` holds observed ratings, which may be bool or integer and
        take the predictions' dtype; otherwise both are floating predictions.

    Raises
    ------
    TypeError
        Arrays from two libraries, a non-array, a dtype the argument can't take, or
        a reduction that is not a str.
    ValueError
        Arrays on two devices, shapes that do not fit, or an unknown reduction.
    """
    # REDUCTIONS written out: torch.compile guards a constant for free, a global
    # on every call. A set, not a tuple: a tuple's test compares, and an array
    # equal to a name would pass as it; a set's hashes, and an array is unhashable
    try:
        known = reduction in {"mean", "sum", "none"}
    except TypeError:  # unhashable
        known = False
    if not known:
        check_reduction(reduction)
    # names is read only on the way to an error: unpacked, the global tuple a loss
    # passes costs each torch.compile'd call two guards
    # backend_of's cache, read in line: the call would cost a twentieth of a microsecond
    backend = BACKENDS.get(id(type(first))) or backend_of(first, names[0])
    if type(second) is not type(first):
        _check_same_library(first, names[0], second, names[1], backend)
    if mask is not None and type(mask) is not type(first):
        if isinstance(mask, str):
            _refuse_mask_of_str(mask)
        _check_same_library(first, names[0], mask, "mask", backend)
    if backend.tracks_devices:
        # the devices read directly, not by getattr(): 0.03 µs less on PyTorch
        try:
            device = first.device
            one_device = second.device == device and (
                mask is None or mask.device == device
            )
        except AttributeError:  # arrays traced by jax.jit have none
            one_device = False
        if not one_device:
            _check_same_device(first, names[0], second, names[1], mask)
    elif backend.check_chunks is not None:
        # one type for any chunks: each call's arrays are looked at
        backend.check_chunks(first, names[0])
        backend.check_chunks(second, names[1])
        if mask is not None:
            backend.check_chunks(mask, "mask")
        if backend.check_unknown_sizes is not None:
            first, second, mask = backend.check_unknown_sizes(
                first, names[0], second, names[1], mask, second_has_negatives_axis
            )

    first_dtype, second_dtype = first.dtype, second.dtype
    # the method's fast path, in line
    compute_dtype = backend.floating.get(second_dtype)
    if compute_dtype is None:
        compute_dtype = backend.compute_dtype(second_dtype)
        if compute_dtype is None:
            _refuse_dtype(backend, names[1], second_dtype, "a real floating dtype")
    result_dtype = second_dtype
    if first_dtype != second_dtype:
        if first_is_rating:
            if backend.kind(first_dtype) == "other":
                expected = "a bool, integer or real floating dtype"
                _refuse_dtype(backend, names[0], first_dtype, expected)
        elif backend.compute_dtype(first_dtype) is None:
            _refuse_dtype(backend, names[0], first_dtype, "a real floating dtype")
        else:
            result_dtype = _promote(backend, names[0], first, names[1], second)
            compute_dtype = backend.compute_dtype(result_dtype)

    try:
        first_shape, second_shape = first.shape, second.shape
    except RuntimeError:  # PyTorch's nested tensors of the strided layout have none
        _refuse_nested((first, names[0]), (second, names[1]))
        raise
    if second_has_negatives_axis:
        # (k, n) against (n,), the commonest, tested by index: a slice of a
        # torch.Size and its comparison cost 0.13 µs more
        if (
            len(second_shape) == 2  # noqa: PLR2004
            and len(first_shape) == 1
            and second_shape[0] != 0
            and second_shape[1] == first_shape[0]
        ):
            second_shape = first_shape
        else:
            # the helper's test in line, where it passes: the call cost 0.08 µs
            if len(second_shape) <= len(first_shape) or second_shape[0] == 0:
                check_negatives_shape(names[1], second_shape, names[0], first_shape)
            second_shape = second_shape[1:]
    # the ranks first, here and below: compared item by item, shapes of two ranks
    # would compare a symbolic size (torch.export's) with that of another axis, and
    # the program would be specialised to sizes that differ from it
    broadcasts = len(first_shape) != len(second_shape) or first_shape != second_shape
    if not broadcasts:
        loss_shape = first_shape
    else:
        second_name = names[1]
        if second_has_negatives_axis:  # named for the error, where there is one
            second_name = f"{second_name} (after its negatives axis)"
        loss_shape = broadcast_pair(names[0], first_shape, second_name, second_shape)

    mask_fits = False
    if mask is not None:
        mask_dtype = mask.dtype
        mask_kind = backend.kind(mask_dtype)
        if mask_kind == "other":
            expected = "a bool, integer or real floating dtype"
            _refuse_dtype(backend, "mask", mask_dtype, expected)
        try:
            mask_shape = mask.shape
        except RuntimeError:
            _refuse_nested((mask, "mask"))
            raise
        if len(mask_shape) != len(loss_shape) or mask_shape != loss_shape:
            check_mask_shape(mask_shape, loss_shape)
        elif mask_kind == "bool":
            mask_fits = True
        if mask_kind != "bool" and mask_dtype != compute_dtype:
            mask = _converted(backend, mask, "mask", compute_dtype)

    cast_to = None
    # one dtype object throughout, the commonest call, spares three comparisons
    # (0.05 µs on PyTorch); equal dtypes that are distinct objects compare below
    if first_dtype is not compute_dtype or second_dtype is not compute_dtype:
        if first_dtype != compute_dtype:
            first = _converted(backend, first, names[0], compute_dtype)
        if second_dtype != compute_dtype:
            second = _converted(backend, second, names[1], compute_dtype)
        if result_dtype != compute_dtype:
            cast_to = result_dtype
    call = Call()
    call.backend = backend
    call.first = first
    call.second = second
    call.weights = mask
    call.reduction = reduction
    call.cast_to = cast_to
    call.empty = 0 in loss_shape
    call.broadcasts = broadcasts
    call.mask_fits = mask_fits
    return call


def _converted(backend: Backend, array: Array, name: str, dtype: Any) -> Array:
    """``array`` in ``dtype``, or a TypeError naming it where the library converts its
    dtype to no other (PyTorch's pairs of 4-bit floats in a byte, which it calls
    floating)."""
    try:
        return backend.xp.astype(array, dtype)
    except NotImplementedError as error:  # PyTorch's missing kernel
        msg = (
            f"{name} has dtype {array.dtype}, which {backend.name} can't convert to "
            f"{dtype}, the dtype the loss computes in; pass it in a dtype {backend.name} "
            "computes with"
        )
        raise TypeError(msg) from error


def _promote(
    backend: Backend, first_name: str, first: Array, second_name: str, second: Array
) -> Any:
    """The dtype two floating arrays promote to, or a TypeError naming both where the
    library promotes none (PyTorch's float8 types with any other)."""
    try:
        return backend.result_type(first, second)
    except (TypeError, ValueError, RuntimeError):
        msg = (
            f"{first_name} has dtype {first.dtype} and {second_name} has "
            f"{second.dtype}, which {backend.name} does not promote to one dtype; "
            "cast them to one"
        )
        raise TypeError(msg) from None


def _check_same_library(
    first: Array, first_name: str, other: Array, other_name: str, backend: Backend
) -> None:
    other_backend = BACKENDS.get(id(type(other)))
    if other_backend is None:
        # two known libraries told apart by their modules' names, before resolving the
        # other's namespace: torch.compile can't trace that for a NumPy array
        first_library = _LIBRARY_OF_MODULE.get(library_of(first))
        other_library = _LIBRARY_OF_MODULE.get(library_of(other))
        if first_library is None or other_library in (None, first_library):
            other_backend = backend_of(other, other_name)
    if other_backend is None or other_backend.xp is not backend.xp:
        msg = (
            f"{first_name} is {a_type(first)} but {other_name} is {a_type(other)}; "
            "pass arrays of one library to one call"
        )
        raise TypeError(msg)


def _refuse_nested(*named: tuple[Array, str]) -> None:
    """Refuse the first nested tensor of ``named``, if any."""
    for array, name in named:
        if getattr(array, "is_nested", False):
            refuse_nested_tensor(name)


def _refuse_mask_of_str(mask: str) -> NoReturn:
    msg = f"mask must be an array or None, got str {mask!r}"
    if mask in REDUCTIONS:  # a reduction passed third, where mask is
        msg += f"; reduction is keyword-only: pass reduction={mask!r}"
    raise TypeError(msg)


def _check_same_device(
    first: Array, first_name: str, second: Array, second_name: str, mask: Array | None
) -> None:
    # each placed array against the first one placed: an array placed as needed (an
    # uncommitted JAX array) goes anywhere, but the others must still agree
    placed: tuple[str, Any] | None = None
    for array, name in ((first, first_name), (second, second_name), (mask, "mask")):
        placement = None if array is None else _placement(array)
        if placement is None:
            continue
        if placed is None:
            placed = (name, placement)
        elif not _same_placement(placement, placed[1]):
            reordered = (
                isinstance(placement, tuple)
                and isinstance(placed[1], tuple)
                and set(placement) == set(placed[1])
            )
            remedy = (
                "shard them over one mesh: JAX computes with one order of devices"
                if reordered
                else "move them to one device"
            )
            msg = (
                f"{placed[0]} is on {_describe_placement(placed[1])} but {name} is "
                f"on {_describe_placement(placement)}; {remedy}"
            )
            raise ValueError(msg)


def _placement(array: Array) -> Any:
    """Where ``array`` lives, as far as two arrays must share it: its device; for a
    JAX array, its devices in the order its sharding lists them (a tuple), or as a
    set where its sharding has no mesh to order them by (a sharded array's
    ``device`` is its sharding; JAX computes with two shardings whose devices it
    lists alike, and refuses meshes that order one set of devices differently);
    None where the library places it as needed (an uncommitted JAX array) or keeps
    no device (an array traced by ``jax.jit``)."""
    device = getattr(array, "device", None)
    # device first: a traced JAX array has none, and refuses to say if it's committed
    if device is None or getattr(array, "committed", True) is False:
        return None
    devices = getattr(array, "devices", None)
    if not callable(devices):
        return device
    every = devices()
    if len(every) == 1:
        return tuple(every)
    mesh = getattr(getattr(array, "sharding", None), "mesh", None)
    # a NumPy array of the mesh's devices: the order JAX lists them in
    in_order: Any = getattr(mesh, "devices", None)
    return tuple(in_order.flat) if hasattr(in_order, "flat") else frozenset(every)


def _same_placement(one: Any, other: Any) -> bool:
    """Whether two placements from :func:`_placement` agree: equal, or the same set of
    JAX devices where either has no order."""
    unordered = isinstance(one, frozenset) or isinstance(other, frozenset)
    if (
        unordered
        and isinstance(one, tuple | frozenset)
        and isinstance(other, tuple | frozenset)
    ):
        return set(one) == set(other)
    return bool(one == other)


def _describe_placement(placement: Any) -> str:
    if not isinstance(placement, tuple | frozenset):
        return f"device {placement}"
    if len(placement) == 1:
        return f"device {next(iter(placement))}"
    shown = placement if isinstance(placement, tuple) else sorted(map(str, placement))
    return f"devices {', '.join(map(str, shown))}"


def _refuse_dtype(backend: Backend, name: str, dtype: Any, expected: str) -> NoReturn:
    shown = str(dtype)
    msg = f"{name} must have {expected}, got {shown}"
    try:
        backend.xp.isdtype(dtype, "real floating")
    except TypeError:
        if "float" in shown:
            # a floating type the library itself does not know, as ml_dtypes'
            # bfloat16 in a NumPy array (np.asarray of a JAX bfloat16 array makes one)
            msg += ", a floating type from outside the library; cast it to float32"
    raise TypeError(msg)
