"""Resolve the array library behind a call's inputs.

This is the only module that imports :mod:`array_api_compat`. It maps each array
*type* to a :class:`Backend` once, and caches the answer, so that dispatching a loss
costs one dictionary lookup per argument (array-api-strict's arrays, whose revision
of the standard is a flag, are mapped on every call; see :func:`backend_of`). No
array library is imported to detect it: a framework's module is taken from
``sys.modules`` (or imported, for a submodule) only after an array of its own type
has been seen, to fetch the few native primitives that beat the standard-only forms;
PyTorch's, where torch is imported already, at this module's import (see
:func:`_cache_imported_torch`).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import array_api_compat

from . import _functional
from ._validation import a_type, describe_type, library_of, refuse_nested_tensor

Array = Any
Namespace = Any
Dtype = Any
Primitive = Callable[..., Array]

__all__ = [
    "BACKENDS",
    "OLDEST_NUMPY_MAJOR",
    "Backend",
    "backend_of",
    "promotes_by_dtype",
]

_SINGLE_PRECISION_BITS = 32
# the revision of the array API standard whose functions take Python scalars
_SCALARS_ALLOWED_FROM = "2024.12"
# the major version from which NumPy promotes by dtype alone (NEP 50)
OLDEST_NUMPY_MAJOR = 2
# array-api-strict 2.3's where() took a Python float beside a float32 array to
# float64, and a float32 loss came back float64; 2.3.1 keeps float32
_STRICT_PROMOTING_WHERE = frozenset({"2.3", "2.3.0"})


@dataclass(frozen=True, eq=False, slots=True)
class Backend:
    """One array library as the losses see it.

    Attributes
    ----------
    name : str
        Short name of the library, used in error messages.
    xp : namespace
        The array API namespace (array-api-compat's wrapper where one exists).
    sigmoid, sigmoid_of_negative, sigmoid_of_difference, mean, sum : callable
        Primitives of the arrays they are given, which they never overwrite: the
        library's own where it has a fast, stable one, else the standard-only
        forms of :mod:`._functional` (``mean`` and ``sum`` reduce over every
        axis); ``sigmoid_of_negative(x)`` is ``σ(-x)`` and
        ``sigmoid_of_difference(x, y)`` is ``σ(x - y)`` (in one new buffer on
        NumPy and PyTorch).
    relu, square, add_scalar, add, subtract_product : callable
        ``max(x, 0)``, ``x²``, ``add_scalar(x, value) = x + value`` (``value`` a
        Python float), ``add(x, y) = x + y`` and ``subtract_product(a, b, x) =
        a - b·x`` (for these two, ``x`` has the result's shape) of an array ``x``
        the loss has just computed, which they may overwrite (NumPy, CuPy and
        PyTorch do, to spare a buffer): never pass them a caller's array as
        ``x``. PyTorch's ``subtract_product`` rounds once where the CPU fuses
        multiply-add.
    max_over_first_axis : callable
        ``max_over_first_axis(x)``, the maximum of ``x`` over its first axis (the
        adaptive hinge's negatives), propagating NaN.
    where : callable
        ``where(condition, x, y)``, the standard's ``where`` (PyTorch's own
        for tensors: the wrapper converts Python scalars on every call).
    keep : callable
        ``keep(mask, x)``: ``x`` where the bool ``mask`` is True, else exactly 0,
        even where ``x`` is inf or NaN.
    logistic : callable
        ``logistic(observed, logit)``, Spotlight's elementwise logistic loss.
    positive_class : callable
        ``positive_class(observed) = clip(observed, 0, 1)``, the class
        ``logistic`` takes an observation for (PyTorch's own clamp, which
        ``torch.compile`` traces).
    count : callable
        ``count(mask, dtype)``, the number of True elements of a bool mask, or 1
        where there are none: a 0-d array of ``dtype``, but an int64 tensor on
        PyTorch and a Python int on NumPy, which divide a floating total into
        its own dtype.
    masked_total : callable
        ``masked_total(loss, mask)``: the sum of ``keep(mask, loss)`` and
        ``count(mask, loss.dtype)``, for a ``loss`` the call has just computed,
        which it may overwrite (NumPy and PyTorch write the kept terms into it).
    result_type : callable
        ``result_type(array, array)``, the dtype two floating arrays promote to:
        by their dtypes, except that a weak-typed JAX array (a Python float under
        ``jax.jit``) takes the other's, as JAX itself promotes it. PyTorch's is
        ``promote_types`` of the dtypes, which ``torch.compile`` traces (the
        wrapper's fallback for dtypes outside the standard makes tensors and
        breaks the graph).
    divide : callable
        ``divide(total, count) = total / count`` for a ``total`` the call has just
        computed, which it may overwrite (PyTorch divides in place: a new 0-d
        tensor costs a third of a microsecond).
    fused : dict
        The library's own loss-and-reduction calls by loss name, each
        ``fused(observed, predicted, reduction)``, for calls without weights on
        arrays of one shape: PyTorch's squared error ('regression') and binary
        cross-entropy ('logistic') reduce inside their one call.
    tracks_devices : bool
        Whether arrays of this library can live on different devices.
    check_chunks : callable or None
        ``check_chunks(array, name)`` raises for an array whose chunks the losses
        can't take (Dask's of NumPy masked arrays, whose masks some operations
        would honour and others not), where the type of an array does not tell its
        chunks' apart; None for libraries without chunks.
    check_unknown_sizes : callable or None
        ``check_unknown_sizes(first, first_name, second, second_name, mask,
        second_has_negatives_axis)`` gives back the three arrays, made to check as
        they compute that their lengths match where the library does not know them
        yet (Dask's after a boolean selection); None for libraries that always know
        them.
    has_scalars : bool
        Whether the library gives a 0-d result as a scalar, not an array (NumPy,
        whose reductions and elementwise functions on 0-d arrays do).
    largest_int_operand : int or None
        The largest Python int the library takes as an operand of a floating
        array's arithmetic, or None for any: JAX parses an int as an int32 unless
        x64 is on, and raises OverflowError beyond, where a float serves.
    floating : dict
        Every real floating dtype met so far outside ``torch.compile``'s tracing
        (see :func:`_traced`), mapped to the dtype its math runs in
        (float32 for half precision). Filled by :meth:`compute_dtype`, for PyTorch
        with every dtype when the Backend is cached.
    """

    name: str
    xp: Namespace
    sigmoid: Primitive
    sigmoid_of_negative: Primitive
    sigmoid_of_difference: Primitive
    relu: Primitive
    square: Primitive
    add_scalar: Primitive
    add: Primitive
    subtract_product: Primitive
    mean: Primitive
    sum: Primitive
    max_over_first_axis: Primitive
    where: Primitive
    keep: Primitive
    logistic: Primitive
    positive_class: Primitive
    count: Primitive
    masked_total: Primitive
    result_type: Primitive
    divide: Primitive
    fused: dict[str, Primitive]
    tracks_devices: bool
    has_scalars: bool
    check_chunks: Callable[[Array, str], None] | None = None
    check_unknown_sizes: Primitive | None = None
    largest_int_operand: int | None = None
    floating: dict[Dtype, Dtype] = field(default_factory=dict, repr=False)
    _kinds: dict[Dtype, str] = field(default_factory=dict, repr=False)

    def kind(self, dtype: Dtype) -> str:
        """Classify ``dtype`` as 'bool', 'integral', 'real floating' or 'other'."""
        kind = self._kinds.get(dtype)
        if kind is None:
            kind = self._classify(dtype)
            if not _traced():
                self._kinds[dtype] = kind
        return kind

    def _classify(self, dtype: Dtype) -> str:
        for kind in ("bool", "integral", "real floating"):
            try:
                if self.xp.isdtype(dtype, kind):
                    return kind
            except TypeError:
                # a dtype the library doesn't know, as ml_dtypes' bfloat16 in NumPy
                return "other"
        return "other"

    def compute_dtype(self, dtype: Dtype) -> Dtype | None:
        """The dtype math on ``dtype`` runs in, or None if it is not real floating."""
        compute = self.floating.get(dtype)
        if compute is None and self.kind(dtype) == "real floating":
            # the difference of two half-precision values can overflow: compute in float32
            is_half = self.xp.finfo(dtype).bits < _SINGLE_PRECISION_BITS
            compute = self.xp.float32 if is_half else dtype
            if not _traced():
                self.floating[dtype] = compute
        return compute


# the Backend of each array type met so far outside torch.compile's tracing, by the
# type's id (see backend_of)
BACKENDS: dict[int, Backend] = {}
_TYPES: list[type] = []


def backend_of(array: object, name: str) -> Backend:
    """Return the :class:`Backend` of ``array``, the argument called ``name``.

    Raises
    ------
    TypeError
        If ``array`` is not an array of a library the array API reaches.
    """
    # keyed by the type's id: torch.compile guards an int key in C++, a type key
    # with a Python lambda on every call; _TYPES keeps each id's type alive
    backend = BACKENDS.get(id(type(array)))
    if backend is None:
        backend = _resolve(array, name)
        # array-api-strict's revision of the standard is a flag that may change
        # between calls (set_array_api_strict_flags): its Backend is made, and the
        # revision checked, on every call
        if not (
            _traced() or array_api_compat.is_array_api_strict_namespace(backend.xp)
        ):
            array_types: tuple[type, ...] = (type(array),)
            if backend.name == "torch":
                array_types += _complete_torch_backend(backend)
            for array_type in array_types:
                _TYPES.append(array_type)
                BACKENDS[id(array_type)] = backend
    return backend


def _complete_torch_backend(backend: Backend) -> tuple[type, ...]:
    """Fill PyTorch's ``backend`` with every dtype of PyTorch's, outside any trace, and
    return the types of tensors it is to be cached for besides, tensors' and
    parameters' alike.

    ``torch.compile`` guards a compiled call on the entries its trace read, and one a
    later eager call adds (a new mask dtype's kind, say) fails that guard and compiles
    the caller's whole function again; a trace that finds no entry for its tensors'
    type resolves their library itself, which for a parameter breaks the graph. Read
    here: read while Dynamo traces, the list of dtypes would cost a guard on each of
    its entries.
    """
    from ._torch import DTYPES, TENSOR_TYPES  # noqa: PLC0415 - imported already

    for dtype in DTYPES:
        try:
            backend.compute_dtype(dtype)  # classifies its kind too
        except Exception:  # noqa: BLE001, S112 - a call of that dtype raises it itself
            continue
    return TENSOR_TYPES


def _traced() -> bool:
    """Whether ``torch.compile`` is tracing this call.

    The caches here are left as they are while it traces: it guards the compiled
    call on a cache's entry being absent, and a write made during the trace would
    fail that guard on the next call, compiling the caller's whole function a
    second time. So they are filled before any trace where they can be: PyTorch's
    Backend at this package's import if torch is imported (else at the first eager
    call on a tensor), with every dtype of PyTorch's classified.
    """
    torch = sys.modules.get("torch")  # imported if anything is compiling
    return torch is not None and torch.compiler.is_compiling()


def promotes_by_dtype(numpy: types.ModuleType) -> bool:
    """Whether the NumPy module ``numpy`` promotes by dtype alone (NEP 50). NumPy 1
    promotes a float32 array against a Python or 0-d integer by value, to float64:
    every mean would come back in the wrong dtype."""
    return int(numpy.__version__.split(".", 1)[0]) >= OLDEST_NUMPY_MAJOR


def _resolve(array: object, name: str) -> Backend:
    # Python's scalars have no shape; NumPy's (float64's a float too) are 0-d arrays
    if not hasattr(array, "shape"):
        msg = (
            f"{name} must be an array of an array API library (NumPy, CuPy, PyTorch, "
            f"JAX, Dask, array-api-strict, ...), got {describe_type(array)}"
        )
        raise TypeError(msg)
    # PyTorch's tensors skip array-api-compat's lookup, whose lru_cache'd helpers
    # torch.compile warns of (an error where warnings are) when it traces this
    # function on a first compiled call
    is_torch = library_of(array) == "torch"
    if is_torch:
        from array_api_compat import torch as xp  # noqa: PLC0415
    else:
        try:
            xp = array_api_compat.array_namespace(array)
        except TypeError as error:
            msg = f"{name} is {a_type(array)}, which is not an array API array"
            raise TypeError(msg) from error

    fused: dict[str, Primitive] = {}
    tracks_devices = True
    check_chunks: Primitive | None = None
    check_unknown_sizes: Primitive | None = None
    has_scalars = False
    largest_int_operand = None
    primitives: dict[str, Primitive]
    # torch.compile traces this function on a first compiled call, and can't trace
    # the copy of a function that _bind makes: PyTorch's branch needs none
    if is_torch or array_api_compat.is_torch_namespace(xp):
        library = "torch"
        # the array is a tensor, so torch is imported. _torch imports torch: only
        # from here
        torch = sys.modules["torch"]
        # a masked tensor's mask holds for some operations and fails others
        masked_tensor = getattr(getattr(torch, "masked", None), "MaskedTensor", ())
        if isinstance(array, masked_tensor):
            msg = (
                f"{name} is {a_type(array)}, which arraylosses can't take: pass a "
                "plain tensor (a masked tensor's mask goes in mask=)"
            )
            raise TypeError(msg)
        # a nested tensor's jagged layout is a type of its own, its strided one not
        if getattr(array, "is_nested", False):
            refuse_nested_tensor(name)
        from . import _torch  # noqa: PLC0415

        # torch's own functions, not array-api-compat's wrappers of them: they
        # have the same semantics for these calls and no Python layer on top
        primitives = {
            "sigmoid": torch.sigmoid,
            "sigmoid_of_negative": _torch.sigmoid_of_negative,
            "sigmoid_of_difference": _torch.sigmoid_of_difference,
            "relu": _torch.relu,
            "square": _torch.square,
            "add_scalar": _torch.add_scalar,
            "add": _torch.add,
            "subtract_product": _torch.subtract_product,
            "mean": _torch.mean,
            "sum": torch.sum,
            "max_over_first_axis": _torch.max_over_first_axis,
            "where": torch.where,
            "keep": _torch.keep,
            "logistic": _torch.logistic,
            "positive_class": _torch.positive_class,
            "count": _torch.count,
            "masked_total": _torch.masked_total,
            "result_type": _torch.result_type,
            "divide": _torch.divide,
        }
        fused = {"logistic": _torch.logistic_reduced}
        if _torch.MSE_LOSS is not None:
            fused["regression"] = _torch.regression_reduced
    elif array_api_compat.is_numpy_namespace(xp):
        library = "numpy"
        tracks_devices = False
        has_scalars = True
        # NumPy's own functions, not the wrapper's: zeros, clip and count_nonzero
        # take microseconds more through it
        numpy = sys.modules["numpy"]
        # subclasses whose operators or values the array API doesn't describe: a
        # masked array's mask would be ignored, a matrix's * is a matrix product
        if isinstance(array, numpy.ma.MaskedArray | numpy.matrix):
            msg = f"{name} is {a_type(array)}, which arraylosses can't take: " + (
                _unmasked_hint(name, "numpy.ma")
                if isinstance(array, numpy.ma.MaskedArray)
                else f"pass numpy.asarray({name})"
            )
            raise TypeError(msg)
        if not promotes_by_dtype(numpy):
            msg = (
                f"{name} is {a_type(array)} of NumPy {numpy.__version__}; arraylosses "
                f"needs NumPy {OLDEST_NUMPY_MAJOR}.0 or later, whose promotion "
                "rules keep a float32 loss float32: pip install 'numpy>=2'"
            )
            raise TypeError(msg)
        primitives = _standard_primitives(xp) | _ufunc_primitives(
            numpy,
            # the ufunc's own reduction: np.sum adds a microsecond of Python
            sum_all=_bind(_functional.sum_by_reduce, add=numpy.add),
            quiet_overflow=partial(numpy.errstate, over="ignore"),
        )
        # large NumPy buffers come from fresh pages (CuPy's come from its memory pool)
        primitives["relu"] = _bind(_functional.relu_in_place_by_rows, xp=numpy)
        # NumPy's where() takes three times as long as the bit product
        unsigned = {2: numpy.uint16, 4: numpy.uint32, 8: numpy.uint64}
        primitives["keep"] = _bind(
            _functional.keep_by_bits, xp=numpy, unsigned=unsigned
        )
        primitives["count"] = _bind(
            _functional.count_as_int, count_nonzero=numpy.count_nonzero
        )
        primitives["masked_total"] = _bind(
            _functional.masked_total_by_bits, xp=numpy, unsigned=unsigned
        )
    elif array_api_compat.is_dask_namespace(xp):
        library = "dask"
        tracks_devices = False
        # dask imports numpy
        check_chunks = partial(_refuse_masked_chunks, numpy=sys.modules["numpy"])
        # the array is a Dask array, so dask is imported; _dask imports it
        from . import _dask  # noqa: PLC0415

        check_unknown_sizes = _dask.check_unknown_sizes
        primitives = _standard_primitives(xp)
        # a boolean selection leaves a size unknown, perhaps 0, until computed
        primitives["mean"] = _bind(_functional.mean_of_any_size, xp=xp)
        primitives["max_over_first_axis"] = _bind(
            _functional.max_over_first_axis_of_any_size, xp=xp
        )
    elif array_api_compat.is_jax_namespace(xp):
        library = "jax"
        jax_nn = importlib.import_module("jax.nn")
        # the array is a JAX array, so jax is imported; _jax imports it
        from . import _jax  # noqa: PLC0415

        # without x64 (its default), and harmless with it: a float is then taken
        largest_int_operand = 2**31 - 1
        primitives = _standard_primitives(xp)
        primitives.update(
            sigmoid=jax_nn.sigmoid,
            relu=jax_nn.relu,
            max_over_first_axis=_jax.max_over_first_axis,
        )
    elif array_api_compat.is_cupy_namespace(xp):
        library = "cupy"
        cupy = sys.modules["cupy"]
        # CuPy never warns of an overflow
        primitives = _standard_primitives(xp) | _ufunc_primitives(
            cupy, sum_all=cupy.sum, quiet_overflow=contextlib.nullcontext
        )
        expit = importlib.import_module("cupyx.scipy.special").expit
        # one fused kernel each beats the four passes of the NumPy forms on a GPU
        primitives["sigmoid"] = expit
        primitives["sigmoid_of_negative"] = _bind(
            _functional.sigmoid_of_negative, sigmoid=expit
        )
        primitives["sigmoid_of_difference"] = _bind(
            _functional.sigmoid_of_difference, sigmoid=expit
        )
        primitives["add_scalar"] = _bind(_functional.add_float_in_place, xp=cupy)
    else:
        library = getattr(xp, "__name__", describe_type(array))
        # the losses pass Python scalars to where() and the binary functions, which
        # the standard allows from its 2024.12 revision (the libraries above take
        # them whatever they declare); versions are written YYYY.MM
        version = getattr(xp, "__array_api_version__", None)
        if isinstance(version, str) and version < _SCALARS_ALLOWED_FROM:
            msg = (
                f"{name} is {a_type(array)} of the {version} array API "
                f"standard; arraylosses needs its {_SCALARS_ALLOWED_FROM} revision or "
                "later (for array-api-strict: set_array_api_strict_flags("
                f"api_version='{_SCALARS_ALLOWED_FROM}'))"
            )
            raise TypeError(msg)
        release = getattr(xp, "__version__", None)
        if library == "array_api_strict" and release in _STRICT_PROMOTING_WHERE:
            msg = (
                f"{name} is {a_type(array)} of array-api-strict {release}, "
                "whose where() turns a float32 loss float64; arraylosses needs "
                "2.3.1 or later: pip install 'array-api-strict>=2.3.1'"
            )
            raise TypeError(msg)
        primitives = _standard_primitives(xp)

    sigmoid_of_negative = primitives.get("sigmoid_of_negative") or _bind(
        _functional.sigmoid_of_negative, sigmoid=primitives["sigmoid"]
    )
    sigmoid_of_difference = primitives.get("sigmoid_of_difference") or _bind(
        _functional.sigmoid_of_difference, sigmoid=primitives["sigmoid"]
    )
    masked_total = primitives.get("masked_total") or _bind(
        _functional.masked_total,
        keep=primitives["keep"],
        sum_all=primitives["sum"],
        count=primitives["count"],
    )
    return Backend(
        name=library,
        xp=xp,
        sigmoid=primitives["sigmoid"],
        sigmoid_of_negative=sigmoid_of_negative,
        sigmoid_of_difference=sigmoid_of_difference,
        relu=primitives["relu"],
        square=primitives["square"],
        add_scalar=primitives["add_scalar"],
        add=primitives["add"],
        subtract_product=primitives["subtract_product"],
        mean=primitives["mean"],
        sum=primitives["sum"],
        max_over_first_axis=primitives["max_over_first_axis"],
        where=primitives["where"],
        keep=primitives["keep"],
        logistic=primitives["logistic"],
        positive_class=primitives["positive_class"],
        count=primitives["count"],
        masked_total=masked_total,
        result_type=primitives["result_type"],
        divide=primitives["divide"],
        fused=fused,
        tracks_devices=tracks_devices,
        has_scalars=has_scalars,
        check_chunks=check_chunks,
        check_unknown_sizes=check_unknown_sizes,
        largest_int_operand=largest_int_operand,
    )


def _unmasked_hint(name: str, ma: str) -> str:
    """How to pass the masked array ``name`` of the module ``ma`` (``numpy.ma``,
    ``dask.array.ma``) as a plain array and a mask that mean the same."""
    if name == "mask":
        return f"pass {ma}.filled(mask, 0), which leaves its masked entries out"
    # numpy.ma's mask is True where an element is left out, the losses' where it counts
    hint = (
        f"pass {ma}.getdata({name}) and carry its mask in mask=, which is True "
        f"where an element counts ({ma}'s is True where one is left out)"
    )
    if name == "negative_predictions":
        # the name the adaptive hinge shares, whose negatives axis no mask covers
        hint += (
            f"; the adaptive hinge's negatives, pass as {ma}.filled({name}, -inf), "
            "which leaves a masked-out negative out of the maximum"
        )
    return hint


def _refuse_masked_chunks(
    array: Array, name: str, /, *, numpy: types.ModuleType
) -> None:
    """Raise a TypeError where the Dask array ``array``, the argument ``name``, is
    made of NumPy masked arrays (``dask.array.ma``)."""
    # a Dask array's _meta is an empty array of its chunks' type
    if isinstance(getattr(array, "_meta", None), numpy.ma.MaskedArray):
        msg = (
            f"{name} is {a_type(array)} of NumPy masked arrays (dask.array.ma), "
            f"which arraylosses can't take: {_unmasked_hint(name, 'dask.array.ma')}"
        )
        raise TypeError(msg)


def _standard_primitives(xp: Namespace) -> dict[str, Primitive]:
    """The standard-only primitives of :mod:`._functional`, for namespace ``xp``."""
    return {
        "sigmoid": _bind(_functional.sigmoid, xp=xp),
        "relu": _bind(_functional.relu, xp=xp),
        "square": xp.square,
        "add_scalar": _functional.add_scalar,
        "add": _functional.add,
        "subtract_product": _functional.subtract_product,
        "mean": xp.mean,
        "sum": xp.sum,
        "max_over_first_axis": _bind(_functional.max_over_first_axis, xp=xp),
        "where": xp.where,
        "keep": _bind(_functional.keep_where, xp=xp),
        "logistic": _bind(_functional.logistic, xp=xp),
        "positive_class": _bind(_functional.positive_class, xp=xp),
        "count": _bind(_functional.count_by_sum, xp=xp),
        "result_type": xp.result_type,
        "divide": _functional.divide,
    }


def _ufunc_primitives(
    library: Any, *, sum_all: Primitive, quiet_overflow: Callable[[], Any]
) -> dict[str, Primitive]:
    """Primitives for the libraries of ufuncs that write into ``out=``, NumPy and
    CuPy, given as their own modules; ``quiet_overflow()`` is a context in which
    their ``exp`` overflows silently."""
    xp = library
    sigmoid_options = {"xp": xp, "quiet_overflow": quiet_overflow}
    relu = _bind(_functional.relu_into_zeros, xp=xp)
    return {
        "sigmoid": _bind(_functional.sigmoid_in_one_buffer, **sigmoid_options),
        "sigmoid_of_negative": _bind(
            _functional.sigmoid_of_negative_in_one_buffer, **sigmoid_options
        ),
        "relu": relu,
        "square": _bind(_functional.square_in_place, xp=xp),
        "sigmoid_of_difference": _bind(
            _functional.sigmoid_of_difference_in_one_buffer, **sigmoid_options
        ),
        "add_scalar": _bind(_functional.add_scalar_in_place, xp=xp),
        "add": _functional.add_in_place,
        "subtract_product": _bind(_functional.subtract_product_in_place, xp=xp),
        "logistic": _bind(_functional.logistic_in_four_buffers, xp=xp, relu=relu),
        "sum": sum_all,
        "mean": _bind(_functional.mean_of_sum, sum_all=sum_all),
        "count": _bind(_functional.count_by_nonzero, xp=xp),
    }


def _bind(function: Callable[..., Array], /, **options: Any) -> Primitive:
    """``function``, a Python function of :mod:`._functional`, with its keyword-only
    ``options`` bound: a copy of it that takes them as defaults.

    ``functools.partial`` with keywords builds a dictionary on every call: 0.27 µs a
    call, against 0.09 for the copy (measured on NumPy), and a NumPy loss calls two
    to four primitives. The copy runs ``function``'s own code, so tracebacks name it.
    """
    bound = types.FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    bound.__kwdefaults__ = {**(function.__kwdefaults__ or {}), **options}
    bound.__qualname__ = function.__qualname__
    bound.__doc__ = function.__doc__
    bound.__module__ = function.__module__
    return bound


def _cache_imported_torch() -> None:
    """Cache PyTorch's Backend now if torch is already imported (importing this
    package never imports it). ``torch.compile`` guards a compiled call on what its
    trace read: a call traced before any eager one would find no Backend cached,
    build one inside the trace (some fifty guards more on every compiled call), and
    the first eager call, caching it, would fail the guard on its absence and compile
    the caller's whole function again."""
    torch = sys.modules.get("torch")
    # a module itself: not a stand-in (a documentation build's mock of torch), nor one
    # a lazy loader has yet to import, which the probe would import; nor one that
    # another thread, or torch itself, is still importing
    if type(torch) is not types.ModuleType or getattr(
        getattr(torch, "__spec__", None), "_initializing", False
    ):
        return
    try:
        # on the CPU whatever the default device: a GPU's would start its context
        probe = torch.empty(0, device="cpu")
        if type(probe) is torch.Tensor:  # not a mode's own tensor, as FakeTensorMode's
            backend_of(probe, "array")
    except Exception:  # noqa: BLE001 - a cache only: the first eager call makes it
        return


_cache_imported_torch()
