"""PyTorch's own primitives, where they beat the standard-only forms.

:mod:`._namespace` imports this module only once it has met a tensor, or at its own
import where torch is imported already, so importing arraylosses never imports
torch. Each primitive is a plain function of its arrays:
``torch.compile`` guards a plain function by its code alone, where a
``functools.partial`` costs it a guard on each of its fields on every call.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch.autograd import forward_ad
from torch.compiler import is_dynamo_compiling

Array = Any

__all__ = [
    "DTYPES",
    "MSE_LOSS",
    "TENSOR_TYPES",
    "add",
    "add_scalar",
    "count",
    "divide",
    "keep",
    "logistic",
    "logistic_reduced",
    "masked_total",
    "max_over_first_axis",
    "mean",
    "positive_class",
    "regression_reduced",
    "relu",
    "result_type",
    "sigmoid_of_difference",
    "sigmoid_of_negative",
    "square",
    "subtract_product",
]

# every dtype of this version of PyTorch, once each (torch.half is torch.float16),
# classified when its Backend is cached
DTYPES = tuple(
    dict.fromkeys(
        value for value in vars(torch).values() if isinstance(value, torch.dtype)
    )
)
# the types of tensors users pass: model outputs, and parameters
TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
# the signed integers whose bits stand in for floats of each item size
_BITS = {4: torch.int32, 8: torch.int64}
# ATen's numbering of the reductions, which its functions take in place of the name
_ATEN_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
_ATEN_SUM = _ATEN_REDUCTIONS["sum"]
# ATen's own squared error, where this version of PyTorch exposes it
MSE_LOSS: Any = getattr(getattr(torch._C, "_nn", None), "mse_loss", None)
# from this many elements, without autograd, the logistic loss in place beats ATen's
# cross-entropy, whose 1 - z and log σ(x)'s saved buffer take two more passes through
# memory. Through the whole call on float32 elements, measured in three interleaved
# runs: 1 to 6% less time at 2**15, 3 to 8% at 2**16 and 0 to 8% at 2**17; within 4%
# either way at 24,576; 3 to 7% more at 2**14 and 4 to 12% at 4,096. With autograd,
# ATen's own gradient σ(x) - z keeps a confident negative's tiny σ(x), which the
# composition's chain rule would round away (a confident positive's σ(x) - 1 rounds
# to 0 either way)
_IN_PLACE_LOGISTIC_FROM = 2**15
# from this many elements of the negatives, under autograd, the maximum's own backward
# (_MaximumSplittingTies) beats ATen's, whose two conversions of a bool array cost
# more than the custom function's Python. A whole step of the adaptive hinge, float32,
# k = 1, 2, 5 and 50 negatives, interleaved: 7 to 12% more time at 1,280 to 5,120
# elements, within 4% either way at 8,192 to 12,800, 8 to 26% less from 16,384 to
# 102,400, 55% less at 10^6 (at 10^6 positives, 5 × 10^6 negatives: about a third
# of the idiom's time, and half the peak memory)
_OWN_MAXIMUM_BACKWARD_FROM = 2**14
# from this many elements, under autograd, a bool mask's total takes a backward of its
# own (_MaskedTotal), where masked_fill's backward copies the expanded gradient and
# then selects. A whole step of the masked hinge, float32, interleaved, in three runs:
# 8% more time at 4,096 elements, within 5% either way at 8,192 to 12,800, 1 to 9%
# less at 16,384, 22 to 41% at 32,768 to 65,536, 38 to 55% at 10^6
_OWN_MASKED_TOTAL_FROM = 2**14
# the most negatives whose ties _MaximumSplittingTies counts in their own dtype:
# bfloat16 holds every integer to 256, the other floats more
_MOST_TIES_COUNTED = 256
# 0-d CPU tensors made once (see _constant): element counts, the divisors of a mean,
# by count and dtype; margins by value, sign of zero and dtype. Bounded, as batch
# sizes and margins vary
_COUNTS: dict[tuple[int, Any], Array] = {}
_MARGINS: dict[tuple[float, float, Any], Array] = {}
_MOST_CONSTANTS = 64
# PyTorch's own switch that makes a tensor outside torch.func's transforms
_OUTSIDE_TRANSFORMS = getattr(torch._C, "_DisableFuncTorch", contextlib.nullcontext)
# PyTorch's own test for a torch.func transform in progress; were it ever gone,
# assume one is. Under one, forward mode (jvp, jacfwd, hessian) writes a tangent in
# place wherever it writes a value in place, and vmap refuses the write where one of
# the two is batched and the other is not (a tangent on an argument vmap does not
# map): the writes below that autograd allows are made out of place there
_IN_TRANSFORM = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)
# PyTorch's own test for torch.jit.trace recording, the C call under
# torch.jit.is_tracing()'s Python layer; were it ever gone, assume a trace is
_JIT_TRACING = getattr(torch._C, "_is_tracing", lambda: True)
# PyTorch's own test for the batched tensors of its older vmap, which
# torch.autograd.grad(is_grads_batched=True) and the Jacobians' vectorize=True map a
# backward pass with, unseen by the test for torch.func's transforms; were it ever
# gone, assume a tensor is one
_LEGACY_BATCHED = getattr(
    getattr(torch._C, "_functorch", None), "is_legacy_batchedtensor", lambda _: True
)


def sigmoid_of_negative(x: Array) -> Array:
    """``σ(-x)``, in place on the negation, a new tensor (not under a torch.func
    transform: see ``_IN_TRANSFORM``): sigmoid saves its output, not its input, for
    autograd."""
    # the operator, not torch.neg: 0.03 µs less, and no guard of a global compiled
    negation = -x
    return torch.sigmoid(negation) if _IN_TRANSFORM() else negation.sigmoid_()


def sigmoid_of_difference(x: Array, y: Array) -> Array:
    """``σ(x - y)``, in place on the difference, a new tensor (not under a torch.func
    transform)."""
    # the operator, not torch.sub: torch.compile guards each global a call reads
    difference = x - y
    return torch.sigmoid(difference) if _IN_TRANSFORM() else difference.sigmoid_()


def relu(x: Array) -> Array:
    """``max(x, 0)``, in place on the loss's own temporary ``x`` (not under a
    torch.func transform): relu saves its output, not its input, for autograd."""
    return torch.relu(x) if _IN_TRANSFORM() else torch.relu_(x)


def add(x: Array, y: Array) -> Array:
    """``x + y``, into ``x`` (a new tensor with the result's shape) where autograd is
    not watching: a sigmoid saves its output, which autograd refuses to see changed."""
    if _compiling(x) or _JIT_TRACING():
        # the graph fuses the sum into its consumer anyway (and the checks below
        # would cost a compiled call five guards); and a traced program may run
        # later on tensors that require grad, which torch.export and torch.jit.trace
        # do not check for, where the write would fail autograd's backward pass
        return x + y
    if _differentiated(x) or y.requires_grad:
        return x + y
    return x.add_(y)


def square(x: Array) -> Array:
    """``x²``, in place where autograd is not watching: the product needs ``x`` itself
    for its gradient, and forward mode's tangent of ``x.mul_(x)`` is wrong. Not in a
    traced program, which may run later on tensors that require grad (see add())."""
    if _differentiated(x) or _compiling(x) or _JIT_TRACING():
        return x.square()
    return x.mul_(x)


def add_scalar(x: Array, value: float) -> Array:
    """``x + value``, in place; a 0-d tensor made once stands in for the float.

    PyTorch turns a Python float into a new tensor on every call, a microsecond and
    a half on a CPU; a 0-d tensor made once adds in a third less time.
    ``torch.compile`` (whose graph holds the float as a constant), tracing modes and
    other devices take the float.
    """
    # Dynamo's own test first here and in mean(), not in _meets_made_constants: the
    # compiled call then reads, and guards, neither that test nor the divisor's
    if is_dynamo_compiling() or not _meets_made_constants(x):
        return x.add_(value)
    # in x's dtype, for a 0-d x: two 0-d tensors of two dtypes promote to the wider
    # one; 0.0 and -0.0 are one dictionary key, and x + 0.0 differs from x + -0.0
    key = (value, math.copysign(1.0, value), x.dtype)
    margin = _MARGINS.get(key)
    if margin is None:
        margin = _keep(_MARGINS, key, _constant(value, x.dtype))
    return x.add_(margin)


def mean(x: Array) -> Array:
    """The mean of every element of ``x``, with the bits of ``torch.mean``.

    On a CPU, ATen's mean is a sum then an in-place division by the element count,
    which it first turns from an int into a tensor of ``x``'s dtype on every call:
    about a microsecond, over a quarter of the mean's time at 256 elements. Here the
    count's tensor is made once; under torch.func's transforms the division is out of
    place, as their forward mode would divide a tangent in place. A program traced
    for any size divides by a count of at least 1 that it computes
    (:func:`_count_for_any_size`); ``torch.compile``, ``torch.jit.trace`` and eager
    calls on other devices take ``torch.mean`` itself.
    """
    if is_dynamo_compiling():
        return torch.mean(x)
    count = _divisor_of_mean(x, x.numel())
    if count is None:
        return torch.mean(x)
    total = torch.sum(x)
    # divide(), in line: its call would cost every mean a twenty-fifth of a microsecond
    return total / count if _IN_TRANSFORM() else total.div_(count)


def _meets_made_constants(x: Array) -> bool:
    """Whether ``x`` may meet the 0-d CPU tensors this module makes once: a plain
    tensor on the CPU, outside ``torch.jit.trace``. Not asked while Dynamo traces
    (``torch.compile``): its callers test for that first, and take none there.

    ``torch.jit.trace`` records a made count as a constant of its graph, which would
    then divide the mean of every size the graph is run at, where it records
    ``torch.mean``'s count as an operation. A subclass is left out: the FakeTensor,
    FunctionalTensor and proxy that ``FakeTensorMode``, ``make_fx``,
    ``aot_function`` and ``torch.export`` trace with refuse a real tensor beside
    them, and one made among them must not be kept for later calls. (A plain tensor
    that ``torch.export`` holds as a constant of a module may meet one, which the
    program then holds as a constant too: right, for that constant's fixed size.)
    """
    return type(x) is torch.Tensor and x.is_cpu and not _JIT_TRACING()


def _compiling(x: Array) -> bool:
    """Whether ``x``, a tensor of this call's own, is traced by ``torch.compile`` or
    ``torch.export``: by Dynamo, or by the tracing without it (``torch.export``'s
    non-strict mode, ``aot_function``), whose tensors are subclasses (FakeTensor,
    FunctionalTensor).

    Not ``torch.compiler.is_compiling()``: that flag is the process's, set for the
    whole of a compilation on any thread, and an eager call on another thread would
    take the traced kernels meanwhile, some of other bits (``addcmul`` rounds once
    where the expression rounds twice)."""
    return is_dynamo_compiling() or type(x) is not torch.Tensor


def _differentiated(x: Array) -> bool:
    """Whether autograd may differentiate through ``x``, so that nothing may write
    into it or view its bits: ``x`` requires grad, or forward mode or a torch.func
    transform is running (``torch.func.vmap`` hides ``requires_grad`` from the
    tensors it batches, and a backward pass may follow it)."""
    return x.requires_grad or _forward_mode() or _IN_TRANSFORM()


def _forward_mode() -> bool:
    """Whether forward-mode autograd (``torch.func.jvp``, ``torch.autograd.forward_ad``)
    may be running: it marks no tensor as requiring grad, and an open dual level is
    its only sign."""
    # PyTorch's own module global; were it ever gone, assume a level is open
    return getattr(forward_ad, "_current_level", 0) >= 0


def _divisor_of_mean(x: Array, size: Any) -> Array | None:
    """``size``, the number of elements of ``x``, as a 0-d tensor of ``x``'s dtype, for
    a sum to be divided as ATen's mean divides it: a CPU tensor made once, where ``x``
    may meet it (:func:`_meets_made_constants`); in a program traced for any size,
    one it computes, at least 1 (:func:`_count_for_any_size`); else None. Not asked
    while Dynamo traces, where the mean is ``torch.mean``'s."""
    # a cache of its own, keyed by two fields: the five of a key with the library,
    # the device and the sign of zero made the mean 0.37 µs slower, measured
    if not _meets_made_constants(x):
        return _count_for_any_size(x, size)
    key = (size, x.dtype)
    try:
        count = _COUNTS.get(key)
    except TypeError:  # a symbolic size, unhashable: a transform's tensor, traced
        return _count_for_any_size(x, size)
    if count is None:
        # the int rounds to x's dtype as ATen's conversion rounds it, to nearest
        count = _keep(_COUNTS, key, _constant(float(size), x.dtype))
    return count


def _count_for_any_size(x: Array, size: Any) -> Array | None:
    """``max(size, 1)`` as a 0-d tensor of ``x``'s dtype that the program computes, the
    divisor that makes the mean of ``x``'s ``size`` elements 0 when there are none,
    where ``size`` is symbolic, in a program traced outside Dynamo for sizes from 0 up
    (``torch.export``'s default, non-strict tracing, and ``make_fx``'s symbolic
    mode); else None (``torch.mean``).

    ``torch.mean`` of no elements is NaN; the package's mean is 0. An eager call knows
    its size, and ``prepare`` sends an empty one past the mean; ``torch.compile``
    traces an empty input in a graph of its own. A program traced for a size that
    may be 0 when it runs cannot take that test, and ``torch.export`` simplifies
    ``max(size, 1)`` to ``size``, taking a size to be at least 2: the maximum is
    taken of a tensor, which it keeps.
    """
    if type(size) is int:
        return None
    return torch.scalar_tensor(size, dtype=x.dtype, device=x.device).clamp_min(1)


def _constant(value: float, dtype: Any) -> Array:
    """``value`` as a new 0-d CPU tensor of ``dtype``, fit to serve any later call: made
    outside inference mode (autograd saves a mean's divisor for the gradient, and
    refuses an inference tensor) and outside torch.func's transforms (whose wrapper
    of it would outlive its level, and fail every later transformed call)."""
    with torch.inference_mode(False), _OUTSIDE_TRANSFORMS():
        return torch.tensor(value, dtype=dtype, device="cpu")


def _keep(cache: dict[Any, Array], key: Any, constant: Array) -> Array:
    """Store ``constant`` under ``key`` in ``cache``, emptied when full, and return it.

    A constant that is not a plain tensor serves its own call only: a dispatch mode
    that lets plain tensors in (``FakeTensorMode(allow_non_fake_inputs=True)``) makes
    its own kind of tensor of it, which later calls outside the mode would meet.
    """
    if type(constant) is not torch.Tensor:
        return constant
    if len(cache) >= _MOST_CONSTANTS:
        cache.clear()
    cache[key] = constant
    return constant


def subtract_product(x: Array, y: Array, z: Array) -> Array:
    """``x - y·z`` in one kernel, ATen's ``addcmul``, written into ``z`` (a new tensor
    with the result's shape) where autograd (which refuses ``out=``) is not
    watching; compiled, the expression itself, which the graph fuses.

    Where the CPU has a fused multiply-add, the kernel rounds once where the
    expression rounds the product and then the difference: as close as the
    expression's result to the exact one, or closer, and apart from it by at most
    the expression's own two roundings. The gradients are the expression's, to the
    bit.
    """
    if _compiling(z) or _JIT_TRACING():
        # traced, the expression, as a program may run later on tensors that require
        # grad (see add()). And the graph fuses the product anyway; out= fails while
        # Dynamo traces a torch.func transform (which also hides requires_grad from
        # it), and a compiled forward-mode transform (jacfwd, jvp) of addcmul crashes
        # PyTorch
        return x - y * z
    # forward mode refuses out= only after writing into z. _differentiated of each
    # tensor, written out so that the forward-mode check runs once on this hot path
    if _forward_mode():
        # -y with addcmul's default value, the same bits as value=-1, which PyTorch
        # 2.13 crashes on (a segmentation fault) in torch.func.linearize
        return torch.addcmul(x, torch.neg(y), z)
    # torch.func.vmap has no batching rule for out=, and hides requires_grad. Under
    # torch.export its tensors are plain ones, and the out= traced there fails when
    # the program runs
    if x.requires_grad or y.requires_grad or z.requires_grad or _IN_TRANSFORM():
        return torch.addcmul(x, y, z, value=-1)
    return torch.addcmul(x, y, z, value=-1, out=z)


def max_over_first_axis(x: Array) -> Array:
    """The maximum of ``x`` over its first axis: ATen's ``amax``, without the compat
    layer's Python around it; at large sizes under plain autograd, the same through
    :class:`_MaximumSplittingTies`, whose backward has amax's bits in less memory."""
    if (
        x.requires_grad
        and x.numel() >= _OWN_MAXIMUM_BACKWARD_FROM
        and x.shape[0] <= _MOST_TIES_COUNTED
        and _plain_eager(x)
        # ATen's gradient takes the layout its kernels choose, which for a permuted
        # x this one's buffer would not have, and a sum over it would round apart
        and x.is_contiguous()
    ):
        return _MaximumSplittingTies.apply(x)
    return torch.amax(x, 0)


def _plain_eager(x: Array) -> bool:
    """Whether ``x`` is a plain tensor in eager autograd, where a custom
    ``autograd.Function`` runs as written: not traced (``torch.compile``,
    ``torch.export``, ``torch.jit.trace``) and under no torch.func transform or
    forward mode, which would need rules of it that ATen's own operations have."""
    return not (_compiling(x) or _JIT_TRACING() or _IN_TRANSFORM() or _forward_mode())


# mypy skips torch (pyproject.toml), so Function is Any to it
class _MaximumSplittingTies(torch.autograd.Function):  # type: ignore[misc]
    """``torch.amax(x, 0)``, whose backward computes ATen's own formula in less memory.

    ATen's backward of ``amax`` splits the gradient evenly among the elements that
    tie for the maximum, ``(g / count) · (x == highest)``, and converts the boolean
    mask twice on the way: to int64 for the count (8 bytes an element) and to
    the gradient's dtype for the product. Here the comparison writes its 0s and 1s
    in that dtype into the buffer that becomes the result, and the same operations
    follow in the same order, so the bits are ATen's: NaN where a column's maximum
    is NaN, signed zeros and non-finite gradients alike.
    """

    # the old style, forward with ctx, costs 30 to 40 µs a call less than the new
    # one (setup_context), which only torch.func's transforms need: none reach here
    @staticmethod
    def forward(ctx: Any, x: Array) -> Array:
        highest = torch.amax(x, 0)
        ctx.save_for_backward(x, highest)
        return highest

    @staticmethod
    def backward(ctx: Any, gradient: Array) -> Array:
        x, highest = ctx.saved_tensors
        # in the gradient's dtype, which is x's unless a hook on saved tensors
        # unpacked x in another: ATen's product with a bool mask keeps the gradient's
        at_highest = torch.eq(x, highest, out=torch.empty_like(x, dtype=gradient.dtype))
        count = torch.sum(at_highest, 0)
        if _backward_differentiated(gradient):
            return at_highest * (gradient / count)
        return at_highest.mul_(torch.div(gradient, count, out=count))


class _MaskedTotal(torch.autograd.Function):  # type: ignore[misc]
    """``sum(where(mask, loss, 0))`` for a bool ``mask`` of ``loss``'s shape, with
    ``where``'s gradient, in fewer passes than ``masked_fill``'s.

    Forward, the loss's bits times the mask, as :func:`keep` without autograd (a
    masked-out inf or NaN gives +0.0), into a new tensor: the loss itself may be
    saved for another backward. Backward, the incoming gradient's bits times the mask
    in one kernel: the gradient where the mask is True, +0.0 elsewhere, as
    ``masked_fill``'s backward gives it. A copy of the mask is saved, as
    ``masked_fill``'s path saves its negation: the caller may write into the mask
    before the backward pass, or have made it under ``torch.inference_mode``.
    """

    @staticmethod
    def forward(ctx: Any, loss: Array, mask: Array) -> Array:
        ctx.save_for_backward(mask.clone())
        return torch.sum(_bits_times_mask(loss, mask, _BITS[loss.element_size()]))

    @staticmethod
    def backward(ctx: Any, gradient: Array) -> tuple[Array, None]:
        (mask,) = ctx.saved_tensors
        # a hook on saved tensors may unpack the mask in another dtype, whose product
        # with the bits would be no bits: where() refuses it, as masked_fill does
        if mask.dtype != torch.bool or _backward_differentiated(gradient):
            return torch.where(mask, gradient, 0.0), None
        return _bits_times_mask(gradient, mask, _BITS[gradient.element_size()]), None


def _backward_differentiated(gradient: Array) -> bool:
    """Whether a custom backward must take operations autograd and vmap follow, not
    bit views nor out=: it records a graph (create_graph=True), maps a batch of
    gradients (torch.func, or the older vmap of ``is_grads_batched`` and vectorized
    Jacobians), passes a forward-mode tangent, or is traced by compiled autograd
    (which fuses it anyway)."""
    return (
        torch.is_grad_enabled()
        or is_dynamo_compiling()
        or _IN_TRANSFORM()
        or _forward_mode()
        or _LEGACY_BATCHED(gradient)
    )


def divide(x: Array, y: Array) -> Array:
    """``x / y``, in place on ``x``, which has the quotient's shape and dtype (not
    under a torch.func transform)."""
    return x / y if _IN_TRANSFORM() else x.div_(y)


def result_type(x: Array, y: Array) -> Any:
    """The dtype ``x`` and ``y`` promote to, by their dtypes alone: torch.result_type
    of tensors would let a 0-d one yield to the other, which the standard does not.

    Raises
    ------
    TypeError
        For two dtypes of which one is an 8-bit float: PyTorch promotes none, and
        its RuntimeError comes out of ``torch.compile``'s tracing as an internal
        error of Dynamo's, which no caller's ``except`` can tell from any other.
    """
    first, second = x.dtype, y.dtype
    for dtype in (first, second):
        if dtype.is_floating_point and dtype.itemsize == 1:
            msg = f"PyTorch promotes no 8-bit float: {first} and {second}"
            raise TypeError(msg)
    return torch.promote_types(first, second)


def positive_class(observed: Array) -> Array:
    """``clip(y, 0, 1)``: an observation of -1 or 0 is negative, of 1 positive."""
    # int bounds: torch takes an int as a bound faster than a float, to the same result
    return torch.clamp(observed, 0, 1)


def logistic(observed: Array, logit: Array) -> Array:
    """Spotlight's logistic loss of each element."""
    # the fused kernel takes no broadcasting. The ranks first: see prepare()
    if len(observed.shape) != len(logit.shape) or observed.shape != logit.shape:
        logit, observed = torch.broadcast_tensors(logit, observed)
    return logistic_reduced(observed, logit, "none")


def logistic_reduced(observed: Array, logit: Array, reduction: str) -> Array:
    """Spotlight's logistic loss reduced as ``reduction`` says, for arrays of one shape."""
    # positive_class, in line: the call would cost this hot path 0.05 µs
    positive = torch.clamp(observed, 0, 1)
    size = logit.numel()
    # a symbolic size (torch.compile's dynamic shapes, torch.export) is not tested:
    # the test would bound the sizes the program takes. Dynamo takes a symbolic size
    # for an int, and its own test comes first
    compiled = is_dynamo_compiling()
    if (
        not compiled
        and type(size) is int
        and size >= _IN_PLACE_LOGISTIC_FROM
        and not (
            _compiling(positive) or _differentiated(logit) or _differentiated(positive)
        )
    ):
        # (1 - z)·x - log σ(x), ATen's own formula, into the clamp's buffer, with
        # x - x·z for (1 - z)·x: the same for z of 0 or 1, else at most an ulp apart
        loss = subtract_product(logit, logit, positive)
        return _reduced(loss.sub_(torch.nn.functional.logsigmoid(logit)), reduction)
    # one call, stable for any logit: ATen's binary cross-entropy with logits (without
    # torch.nn.functional's Python layer, which only checks the shapes and the name)
    # compiled, torch.mean's division, as in mean()
    count = None if reduction != "mean" or compiled else _divisor_of_mean(logit, size)
    if count is None:
        return torch.binary_cross_entropy_with_logits(
            logit, positive, None, None, _ATEN_REDUCTIONS[reduction]
        )
    # ATen's sum ÷ the count: the bits of its mean, without its conversion. In place
    # under a torch.func transform too: each element's tangent depends on
    # both arguments, so it is batched wherever its value is
    return torch.binary_cross_entropy_with_logits(
        logit, positive, None, None, _ATEN_SUM
    ).div_(count)


def regression_reduced(observed: Array, predicted: Array, reduction: str) -> Array:
    """Spotlight's regression loss reduced as ``reduction`` says, for arrays of one
    shape: ATen's squared error, one kernel where the expression takes two, and the
    same bits as ``mean(square(ŷ - y))``."""
    if _IN_TRANSFORM():
        # under torch.func.vmap, eager or compiled, ATen's backward pass of it resizes
        # an output where an argument that is not batched requires grad, which
        # PyTorch 2.13 warns will fail
        return _reduced(torch.square(predicted - observed), reduction)
    # torch.nn.functional.mse_loss adds a broadcast and a check of the shapes, which
    # cost more than the loss itself at a few thousand elements
    count = (
        None
        if reduction != "mean" or is_dynamo_compiling()
        else _divisor_of_mean(predicted, predicted.numel())
    )
    if count is None:
        return MSE_LOSS(predicted, observed, _ATEN_REDUCTIONS[reduction])
    # ATen's sum ÷ the count: the bits of its mean, without its conversion
    return MSE_LOSS(predicted, observed, _ATEN_SUM).div_(count)


def _reduced(loss: Array, reduction: str) -> Array:
    """The elementwise ``loss`` reduced as ``reduction`` says, without weights."""
    if reduction == "none":
        return loss
    return mean(loss) if reduction == "mean" else torch.sum(loss)


def count(mask: Array, dtype: Any) -> Array:  # noqa: ARG001 - every count takes one
    """The number of True elements of ``mask``, at least 1, as an int64 tensor: a
    float tensor divided by an integer one stays float."""
    # count_nonzero, not sum: ATen sums bools at half its speed (in place on the count)
    return torch.count_nonzero(mask).clamp_min_(1)


def keep(mask: Array, x: Array) -> Array:
    """``x`` where ``mask`` is True, else exactly 0, even where ``x`` is inf or NaN."""
    bits = _bits(x)
    if bits is None:
        return _filled(mask, x)
    return _bits_times_mask(x, mask, bits)


def _bits_times_mask(x: Array, mask: Array, bits: Any) -> Array:
    """A new tensor of ``x`` where the bool ``mask`` is True and +0.0 elsewhere, even
    where ``x`` is inf or NaN: ``x``'s bit pattern, viewed as ``bits`` (the signed
    integers of its item size), times 0 or 1."""
    # twice as fast as where(); the bools taken as they are, which the kernel
    # converts as it reads them
    return torch.mul(x.view(bits), mask).view(x.dtype)


def _filled(mask: Array, x: Array) -> Array:
    """:func:`keep` for tensors that carry gradients: ``where(mask, x, 0)`` in
    values and gradients (exactly 0 flows back where ``mask`` is False), by
    ``masked_fill``, whose CPU kernel (and its backward) took half the time of
    ``where``'s on the machine of the committed benchmarks (8 against 18 µs at
    (256, 50) float32 elements), though ``where`` was the faster on two other
    machines (the benchmarks guide, measured)."""
    return x.masked_fill(torch.logical_not(mask), 0.0)


def masked_total(loss: Array, mask: Array) -> tuple[Array, Array]:
    """The sum of :func:`keep` ``(mask, loss)``, written into ``loss`` (a new tensor
    the call owns) where it can be, and :func:`count` of ``mask``."""
    bits = _bits(loss)
    if bits is None and _compiling(loss):
        # traced (torch.compile, torch.export): a selection autograd follows, as the
        # program may run later on tensors that require grad (see _bits), and one
        # Inductor fuses into the sum (where() there took 1 to 3% less time than the
        # bits at (256, 50), and masked_fill() 0 to 4% more: measured); the count from
        # the mask as integers, which it sums faster than bools, in int64: choosing
        # the dtype by the loss's size, which may be symbolic, would bound the sizes
        # the program takes
        total = torch.sum(torch.where(mask, loss, 0.0))
        return total, torch.sum(mask.to(torch.int32), dtype=torch.int64).clamp_min_(1)
    if bits is None:
        if (
            loss.requires_grad
            and loss.numel() >= _OWN_MASKED_TOTAL_FROM
            and mask.shape == loss.shape
            and loss.element_size() in _BITS
            and _plain_eager(loss)
            # a subclass's mask makes the function's result a view of a subclass,
            # which the mean's division in place refuses
            and type(mask) is torch.Tensor
            # the product's layout then is masked_fill's, and the sum's order too
            and loss.is_contiguous()
            and mask.is_contiguous()
        ):
            return _MaskedTotal.apply(loss, mask), count(mask, None)
        return torch.sum(_filled(mask, loss)), count(mask, None)
    # as in keep(), without a new tensor: the bools multiply as they are, where a
    # conversion to the bits' dtype first took one more pass (measured)
    loss.view(bits).mul_(mask)
    # count(), in line: a call between the kernels costs more than its own time
    return torch.sum(loss), torch.count_nonzero(mask).clamp_min_(1)


def _bits(x: Array) -> Any:
    """The signed integer dtype of ``x``'s item size, if ``x``'s bits may stand in for it."""
    # autograd can't follow a bit view, nor can torch.jit.trace record one (its graph
    # has no view to a dtype): tensors that carry gradients, and traced ones, take a
    # differentiable select. A program traced from tensors that do not require grad
    # may run later on ones that do (torch.compile guards requires_grad; torch.export
    # and torch.jit.trace do not), and the view would drop their gradient without a
    # word. The test for tracing first: under Dynamo the others would cost guards, and
    # the C test for a trace a graph break
    if _compiling(x) or _differentiated(x) or _JIT_TRACING():
        return None
    return _BITS.get(x.element_size())
