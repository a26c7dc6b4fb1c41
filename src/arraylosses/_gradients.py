"""Closed-form gradients of the seven losses, so that every backend can train.

PyTorch and JAX differentiate the losses with their own autograd; NumPy, CuPy,
Dask and array-api-strict have none. :func:`value_and_grad` gives every backend
the loss and its gradients with respect to the predictions, computed in closed
form with array API operations only.

Each loss has one rule here: a function of the checked inputs that returns the
elementwise loss ``L`` and its elementwise derivatives at ``L``'s shape. The
weights and the reduction then scale those derivatives as they scale ``L``
(:func:`._reduction.reduce_with_derivatives`), and a broadcast argument gets
the sum of its derivatives over the axes it was broadcast along.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec

from ._call import prepare
from ._reduction import reduce_with_derivatives
from ._validation import as_margin, check_flag, check_reduction
from .explicit import logistic_loss, poisson_loss, regression_loss
from .implicit import adaptive_hinge_loss, bpr_loss, hinge_loss, pointwise_loss

Array = Any
Namespace = Any

if TYPE_CHECKING:
    from ._namespace import Backend

__all__ = ["value_and_grad"]

# the loss's parameters, which the function value_and_grad makes takes as they are
_Parameters = ParamSpec("_Parameters")


def _pointwise(p: Array, n: Array, *, backend: Backend) -> tuple[Array, ...]:
    sigmoid, sigmoid_of_negative = backend.sigmoid, backend.sigmoid_of_negative
    sigmoid_of_minus_p, sigmoid_of_n = sigmoid_of_negative(p), sigmoid(n)
    loss = sigmoid_of_minus_p + sigmoid_of_n
    # σ'(x) = σ(x)·σ(-x): both factors from the sigmoid, never 1 - σ, which cancels
    d_p = -(sigmoid_of_minus_p * sigmoid(p))
    d_n = sigmoid_of_n * sigmoid_of_negative(n)
    zeros = backend.xp.zeros_like(loss)
    # each term depends on one argument only: give both the loss's broadcast shape
    return loss, d_p + zeros, d_n + zeros


def _bpr(p: Array, n: Array, *, backend: Backend) -> tuple[Array, ...]:
    difference = n - p
    loss = backend.sigmoid(difference)
    # d σ(n - p) / dn = σ(n - p)·σ(p - n), and the negative of that for p
    d_n = loss * backend.sigmoid_of_negative(difference)
    return loss, -d_n, d_n


def _hinge(p: Array, n: Array, *, backend: Backend, margin: float) -> tuple[Array, ...]:
    excess = backend.add_scalar(n - p, margin)
    # 0 at the kink, excess = 0, as the autograd of PyTorch's and JAX's relu gives
    active = backend.xp.astype(excess > 0, excess.dtype)
    return backend.relu(excess), -active, active


def _regression(
    y: Array,
    predicted: Array,
    *,
    backend: Backend,  # noqa: ARG001 - every rule takes one
) -> tuple[Array, ...]:
    error = predicted - y
    return error**2, 2 * error


def _poisson(
    y: Array, predicted: Array, *, backend: Backend, log_input: bool
) -> tuple[Array, ...]:
    xp = backend.xp
    if log_input:
        rate = xp.exp(predicted)
        return rate - y * predicted, rate - y
    derivative = 1 - y / predicted
    # the ranks first: see prepare()
    if len(y.shape) != len(predicted.shape) or y.shape != predicted.shape:
        return predicted - y * xp.log(predicted), derivative
    # as poisson_loss computes it, to the bit: one fused multiply-add on PyTorch
    return backend.subtract_product(predicted, y, xp.log(predicted)), derivative


def _logistic(y: Array, logit: Array, *, backend: Backend) -> tuple[Array, ...]:
    positive = backend.positive_class(y)
    # d/dx [max(x, 0) - x·z + log1p(e^-|x|)] = σ(x) - z = (1 - z)·σ(x) - z·σ(-x), as
    # σ(x) = 1 - σ(-x): for z of 0 or 1 one term, where σ(x) - 1 would round a
    # confident positive's gradient (-σ(-x), 2e-9 at x = 20) to 0
    d_logit = (1.0 - positive) * backend.sigmoid(logit) - positive * (
        backend.sigmoid_of_negative(logit)
    )
    return backend.logistic(y, logit), d_logit


@dataclass(frozen=True, slots=True)
class _Rule:
    elementwise: Callable[..., tuple[Array, ...]]
    implicit: bool  # gradients for both predictions, else for the predicted ratings
    negatives_axis: bool = False


_RULES: dict[Callable[..., Array], _Rule] = {
    pointwise_loss: _Rule(_pointwise, implicit=True),
    bpr_loss: _Rule(_bpr, implicit=True),
    hinge_loss: _Rule(_hinge, implicit=True),
    # the hinge of the highest negative; _through_maximum spreads its derivative
    adaptive_hinge_loss: _Rule(_hinge, implicit=True, negatives_axis=True),
    regression_loss: _Rule(_regression, implicit=False),
    poisson_loss: _Rule(_poisson, implicit=False),
    logistic_loss: _Rule(_logistic, implicit=False),
}


def value_and_grad(
    loss: Callable[_Parameters, Array],
) -> Callable[_Parameters, tuple[Array, Any]]:
    r"""Make a function that returns a loss and its gradients, in closed form.

    The returned function takes exactly the arguments of ``loss`` and returns
    ``(value, gradients)``: ``value`` is what ``loss`` itself returns (to the
    bit, except inside ``jax.jit``, where XLA compiles the two computations
    apart and may sum in another order), and the gradients are those of
    ``value`` with respect to the predictions, computed with array API
    operations only. Every backend can therefore train with them, NumPy, CuPy,
    Dask and array-api-strict included, which have no autograd.

    For the implicit losses, ``gradients`` is a pair
    ``(d_positive_predictions, d_negative_predictions)``; for the explicit
    losses it is one array, ``d_predicted_ratings`` (observed ratings are data,
    not parameters). Each gradient has the shape, dtype, namespace and device of
    its argument: where an argument was broadcast, its gradient is summed over
    the axes it was broadcast along.

    Parameters
    ----------
    loss : callable
        One of the seven losses of this package.

    Returns
    -------
    callable
        ``loss``'s own signature; ``reduction`` must be 'mean' or 'sum', and
        ``mask``, ``margin`` and ``log_input`` act as they do on ``loss``.

    Raises
    ------
    TypeError
        If ``loss`` is not one of the seven losses. The returned function raises
        what ``loss`` raises, and ValueError for ``reduction='none'``, whose
        result is not a scalar.

    Notes
    -----
    The derivatives of the elementwise losses :math:`L`, with :math:`\sigma'(x)
    = \sigma(x)\,\sigma(-x)`:

    ========================  =========================================
    pointwise                 :math:`\partial_p L = -\sigma(-p)\sigma(p)`,
                              :math:`\partial_n L = \sigma(n)\sigma(-n)`
    BPR                       :math:`\partial_n L = -\partial_p L
                              = \sigma(n - p)\,\sigma(p - n)`
    hinge                     :math:`\partial_n L = -\partial_p L
                              = [n - p + m > 0]`
    adaptive hinge            as hinge, for the highest negative
    regression                :math:`\partial_{\hat y} L = 2(\hat y - y)`
    Poisson                   :math:`1 - y/\hat y`, or :math:`e^x - y` with
                              ``log_input``
    logistic                  :math:`\sigma(x) - \operatorname{clip}(y, 0, 1)`
    ========================  =========================================

    The reduction then scales them: by :math:`w_i` for 'sum', by
    :math:`w_i / \sum_j w_j` for the masked mean, by :math:`1/N` for the plain
    mean, where :math:`w` is the mask at the loss's shape.

    Conventions where the loss has no derivative, as the autograd of ``relu``
    and ``amax`` gives them in PyTorch and JAX (Spotlight's ``clamp`` and
    ``torch.max(negatives, 0)`` give 1 at the kink and the whole gradient to one
    tied negative):

    - the hinge losses at exactly the margin (:math:`n - p + m = 0`) have
      gradient 0;
    - in the adaptive hinge, negatives that tie for the maximum share its
      gradient equally.

    Where the mask is 0 (or False) every gradient is exactly 0, even where the
    elementwise loss is not finite there; autograd would give 0·inf = NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import bpr_loss, value_and_grad
    >>> positive = np.asarray([2.0, 0.0], dtype=np.float32)
    >>> negative = np.asarray([0.0, 0.0], dtype=np.float32)
    >>> value, (d_positive, d_negative) = value_and_grad(bpr_loss)(positive, negative)
    >>> round(float(value), 4), [round(float(g), 4) for g in d_negative]
    (0.3096, [0.0525, 0.125])
    """
    rule = _RULES.get(loss)
    if rule is None:
        names = ", ".join(sorted(function.__name__ for function in _RULES))
        msg = f"loss must be one of the losses of arraylosses ({names}), got {loss!r}"
        raise TypeError(msg)
    signature = inspect.signature(loss)
    arguments_of = _binder(signature, f"{loss.__name__}_value_and_grad")
    first_name, second_name = list(signature.parameters)[:2]
    option_names = list(signature.parameters)[4:]  # after the arrays and reduction

    def loss_value_and_grad(
        *args: _Parameters.args, **kwargs: _Parameters.kwargs
    ) -> tuple[Array, Any]:
        arguments = arguments_of(args, kwargs)
        reduction = arguments["reduction"]
        _check_scalar_reduction(loss.__name__, reduction)
        options = {name: arguments[name] for name in option_names}
        if "margin" in options:
            options["margin"] = as_margin(options["margin"])
        if "log_input" in options:
            check_flag("log_input", options["log_input"])
        first, second = arguments[first_name], arguments[second_name]
        call = prepare(
            first,
            second,
            arguments["mask"],
            reduction,
            names=(first_name, second_name),
            first_is_rating=not rule.implicit,
            second_has_negatives_axis=rule.negatives_axis,
        )
        backend, xp = call.backend, call.xp
        second_input = negatives = call.second
        if rule.negatives_axis:
            highest = second_input = backend.max_over_first_axis(negatives)
        elementwise, *derivatives = rule.elementwise(
            call.first, second_input, backend=backend, **options
        )
        value, derivatives = reduce_with_derivatives(
            elementwise, derivatives, call.weights, reduction, backend=backend
        )
        if call.cast_to is not None:
            value = xp.astype(value, call.cast_to)
        d_second = derivatives[-1]
        if rule.negatives_axis:
            d_second = _through_maximum(d_second, negatives, highest, backend=backend)
        d_second = _like(d_second, second, xp=xp)
        if not rule.implicit:
            return value, d_second
        return value, (_like(derivatives[0], first, xp=xp), d_second)

    loss_value_and_grad.__name__ = loss_value_and_grad.__qualname__ = (
        f"{loss.__name__}_value_and_grad"
    )
    loss_value_and_grad.__doc__ = (
        f"Return ``{loss.__name__}(...)`` and its gradients with respect to the "
        "predictions; see :func:`arraylosses.value_and_grad`."
    )
    loss_value_and_grad.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation="tuple[Array, Any]"
    )
    return loss_value_and_grad


def _check_scalar_reduction(loss_name: str, reduction: object) -> None:
    """Refuse a ``reduction`` other than 'mean' and 'sum', which alone give a scalar:
    'none' with its reason, anything else as :func:`check_reduction` does."""
    if isinstance(reduction, str) and reduction == "none":
        msg = (
            f"value_and_grad({loss_name}) needs a scalar loss: reduction must be "
            "'mean' or 'sum', got 'none'"
        )
        raise ValueError(msg)
    check_reduction(reduction, choices=("mean", "sum"))


def _binder(
    signature: inspect.Signature, name: str
) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    """``signature.bind`` with defaults applied, fast for the usual call: arrays by
    position, options by keyword (``Signature.bind`` costs more than a loss on 256
    elements)."""
    parameters = signature.parameters.values()
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword_only = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
    required = sum(p.default is p.empty for p in parameters)

    def arguments_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if required <= len(args) <= len(positional) and kwargs.keys() <= keyword_only:
            return {**defaults, **dict(zip(positional, args, strict=False)), **kwargs}
        if len(args) > len(positional):
            # Signature.bind says only "too many positional arguments"
            msg = (
                f"{name}() takes from {required} to {len(positional)} positional "
                f"arguments but {len(args)} were given; pass "
                f"{', '.join(sorted(keyword_only))} by keyword"
            )
            raise TypeError(msg)
        # anything else, the arrays named by keyword or a wrong call, as Python binds it
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            msg = f"{name}(): {error}"
            raise TypeError(msg) from None
        bound.apply_defaults()
        return bound.arguments

    return arguments_of


def _through_maximum(
    d_highest: Array, negatives: Array, highest: Array, *, backend: Backend
) -> Array:
    """The gradient of each negative, given that of ``highest``, their maximum over
    axis 0."""
    xp = backend.xp
    d_highest = _sum_to_shape(d_highest, highest.shape, xp=xp)
    # the maximum's axis put back, not left to broadcasting: JAX may be set to refuse
    # a rank promotion (jax_numpy_rank_promotion) that the caller's arguments never
    # asked for. By indexing, not expand_dims, which Dask makes a reshape, and a
    # reshape needs the lengths that a boolean selection leaves unknown
    is_highest = xp.astype(negatives == highest[None, ...], negatives.dtype)
    ties = xp.sum(is_highest, axis=0)
    # negatives tied for the maximum share its gradient equally, as autograd's amax;
    # a NaN maximum equals none of them, and a count of 1 there keeps every share 0
    share = d_highest / backend.where(ties == 0, 1.0, ties)
    return is_highest * share[None, ...]


def _like(gradient: Array, argument: Array, *, xp: Namespace) -> Array:
    """``gradient`` summed to ``argument``'s shape, in ``argument``'s dtype."""
    gradient = _sum_to_shape(gradient, argument.shape, xp=xp)
    if gradient.dtype != argument.dtype:
        gradient = xp.astype(gradient, argument.dtype)
    return gradient


def _sum_to_shape(gradient: Array, shape: tuple[Any, ...], *, xp: Namespace) -> Array:
    """Sum ``gradient`` over the axes along which ``shape`` was broadcast to its shape."""
    leading = gradient.ndim - len(shape)
    if leading:
        gradient = xp.sum(gradient, axis=tuple(range(leading)))
    stretched = tuple(
        axis
        for axis, (size, own) in enumerate(zip(gradient.shape, shape, strict=True))
        if own == 1 and size != 1
    )
    if stretched:
        gradient = xp.sum(gradient, axis=stretched, keepdims=True)
    return gradient
