"""Gradients of every loss under PyTorch's autograd and ``jax.grad``.

The expected gradients are central finite differences of Spotlight's formulas in
float64 (the references in ``support.py``), never the package's own numbers. The
inputs keep clear of the kinks (hinge arguments away from the margin, a unique
largest negative) so that the finite differences are the derivative.

``jax.grad`` is applied here to the package's functions reached as attributes of the
module (``al.bpr_loss``), which the conftest's ``lazy_xp_function`` patching leaves
alone: this file differentiates the eager functions itself, and tags nothing.
Backends without automatic differentiation are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
import support

import arraylosses as al

STEP = 1e-6  # central differences in float64: truncation ~STEP², rounding ~1e-16 / STEP
GRAD_RTOL = 1e-6
GRAD_ATOL = 1e-8
REDUCTIONS = ("mean", "sum")


class Case(NamedTuple):
    """One loss with its options, its float64 reference and the inputs it suits."""

    id: str
    name: str  # the function's name in arraylosses
    reference: Callable[..., np.ndarray]  # elementwise L, Spotlight's formula
    options: tuple[tuple[str, Any], ...] = ()
    explicit: bool = False  # (observed, predicted): only the second is differentiated

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def wrt(self) -> tuple[int, ...]:
        return (1,) if self.explicit else (0, 1)


CASES = (
    Case("pointwise", "pointwise_loss", support.ref_pointwise),
    Case("bpr", "bpr_loss", support.ref_bpr),
    Case("hinge", "hinge_loss", support.ref_hinge),
    Case("hinge-margin", "hinge_loss", support.ref_hinge, (("margin", 0.5),)),
    Case("adaptive_hinge", "adaptive_hinge_loss", support.ref_adaptive_hinge),
    Case("regression", "regression_loss", support.ref_regression, explicit=True),
    Case("poisson", "poisson_loss", support.ref_poisson, explicit=True),
    Case(
        "poisson-log",
        "poisson_loss",
        support.ref_poisson,
        (("log_input", True),),
        explicit=True,
    ),
    Case("logistic", "logistic_loss", support.ref_logistic, explicit=True),
)
CASE_IDS = [case.id for case in CASES]


def _draw(case: Case, rng: np.random.Generator, first_shape, second_shape):
    """Inputs for ``case`` clear of its kinks; ``second_shape`` excludes the negatives axis."""
    margin = case.kwargs.get("margin", 1.0)
    if case.name == "adaptive_hinge_loss":
        second_shape = (3, *second_shape)
    while True:  # rejection keeps the draw deterministic for a seeded rng
        if case.id == "regression":
            first = rng.normal(3.0, 1.5, first_shape)
            second = rng.normal(3.0, 1.5, second_shape)
        elif case.id == "poisson":
            first = rng.integers(0, 5, first_shape).astype(np.float64)
            second = rng.uniform(0.2, 4.0, second_shape)  # rates well above 0.1
        elif case.id == "poisson-log":
            first = rng.integers(0, 5, first_shape).astype(np.float64)
            second = rng.normal(0.0, 1.0, second_shape)
        elif case.id == "logistic":
            first = rng.choice([-1.0, 0.0, 1.0], first_shape)
            second = rng.normal(0.0, 2.0, second_shape)
        else:
            first = rng.normal(0.0, 1.5, first_shape)
            second = rng.normal(0.0, 1.5, second_shape)
        if case.name == "hinge_loss":
            if np.all(np.abs(second - first + margin) > 0.05):
                return first, second
        elif case.name == "adaptive_hinge_loss":
            top_two = np.sort(second, axis=0)[-2:]
            if np.all(top_two[1] - top_two[0] > 1e-2) and np.all(
                np.abs(top_two[1] - first + margin) > 0.05
            ):
                return first, second
        else:
            return first, second


def _weights(rng: np.random.Generator, shape) -> np.ndarray:
    """Float weights in [0.25, 2], with every third element exactly 0."""
    weights = rng.uniform(0.25, 2.0, shape)
    weights.reshape(-1)[::3] = 0.0
    return weights


def _objective(case: Case, mask, reduction: str) -> Callable[..., float]:
    """The reduced loss as a float64 function of the two arguments (reference only)."""

    def objective(first, second):
        loss = case.reference(first, second, **case.kwargs)
        return float(support.ref_reduce(loss, mask, reduction))

    return objective


def _numeric_gradient(objective, args, index: int, positions=None) -> np.ndarray:
    """Central differences of ``objective(*args)`` with respect to ``args[index]``.

    Only ``positions`` (default: all) are differentiated; the others are NaN.
    """
    base = args[index]
    grad = np.full(base.shape, np.nan)
    for position in positions if positions is not None else np.ndindex(base.shape):
        values = []
        for shift in (STEP, -STEP):
            moved = base.copy()
            moved[position] += shift
            shifted = list(args)
            shifted[index] = moved
            values.append(objective(*shifted))
        grad[position] = (values[0] - values[1]) / (2 * STEP)
    return grad


def _autograd_backend(xp) -> str:
    backend = support.backend_of(xp)
    if backend not in {"torch", "jax"}:
        pytest.skip(f"no autograd on {backend}")
    return backend


def _value_and_grads(xp, case: Case, args, mask=None, reduction="mean"):
    """The loss and its gradients with respect to ``case.wrt``, by the backend's autodiff.

    The function is ``getattr(al, name)``: not the tagged global, so JAX sees it eagerly.
    """
    function = getattr(al, case.name)
    if _autograd_backend(xp) == "torch":
        import torch

        leaves = [
            arg.detach().clone().requires_grad_(i in case.wrt)
            for i, arg in enumerate(args)
        ]
        value = function(*leaves, mask, reduction=reduction, **case.kwargs)
        grads = torch.autograd.grad(value, [leaves[i] for i in case.wrt])
        return value.detach(), grads

    import jax

    def differentiable(*wrt_args):
        full = list(args)
        for i, arg in zip(case.wrt, wrt_args, strict=True):
            full[i] = arg
        return function(*full, mask, reduction=reduction, **case.kwargs)

    argnums = tuple(range(len(case.wrt)))
    value, grads = jax.value_and_grad(differentiable, argnums=argnums)(
        *(args[i] for i in case.wrt)
    )
    return value, grads


def _as_xp(xp, *arrays):
    return [None if a is None else support.asarray(xp, a, xp.float64) for a in arrays]


class TestAgainstFiniteDifferences:
    """Autodiff gradients equal central differences of the float64 reference."""

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "float-weights"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_gradient(self, xp, case, reduction, masked):
        _autograd_backend(xp)
        rng = np.random.default_rng(20240611)
        first, second = _draw(case, rng, (3, 4), (3, 4))
        mask = _weights(rng, (3, 4)) if masked else None
        _assert_gradients_of_the_reference(xp, case, first, second, mask, reduction)


def _assert_gradients_of_the_reference(xp, case, first, second, mask, reduction):
    """The loss and its autodiff gradients at ``first``, ``second`` (NumPy float64)
    are the float64 reference's value and its central differences."""
    args = _as_xp(xp, first, second)
    (mask_xp,) = _as_xp(xp, mask)

    value, grads = _value_and_grads(xp, case, args, mask_xp, reduction)

    # expected: Spotlight's formula in float64 (support.ref_*), reduced by ref_reduce
    objective = _objective(case, mask, reduction)
    support.assert_close(value, objective(first, second), xp=xp, like=args[1])
    for i, grad in zip(case.wrt, grads, strict=True):
        # expected: central differences of that float64 reference
        expected = _numeric_gradient(objective, (first, second), i)
        support.assert_close(
            grad,
            expected,
            xp=xp,
            like=args[i],
            shape=args[i].shape,
            rtol=GRAD_RTOL,
            atol=GRAD_ATOL,
        )


def _at_branch_switch(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Inputs on which the stable forms switch branch (a sigmoid's or the logistic
    loss's argument exactly 0, where max(x, 0) and |x| have kinks that cancel) while
    the loss itself is smooth."""
    if case.id == "logistic":
        return np.asarray([1.0, -1.0, 0.0, 0.5]), np.zeros(4)  # observed, logit
    first = np.asarray([0.0, 0.7, -1.2, 0.0])
    if case.id == "pointwise":
        return first, np.asarray([0.0, 0.0, 0.3, -0.4])
    return first, first.copy()  # bpr: p - n = 0


class TestAtBranchSwitch:
    """Where a stable form switches branch and the loss is smooth, the autodiff
    gradient is the derivative (a subgradient convention at either kink would not
    be): the guide's own ``jax.grad`` example is the logistic loss at logit 0."""

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize(
        "case",
        [case for case in CASES if case.id in {"pointwise", "bpr", "logistic"}],
        ids=lambda case: case.id,
    )
    def test_gradient(self, xp, case, reduction):
        _autograd_backend(xp)
        first, second = _at_branch_switch(case)
        # the reference is smooth here, so its central differences are the derivative
        _assert_gradients_of_the_reference(xp, case, first, second, None, reduction)


def _broadcast_params():
    # (case, which argument has the (B, 1) shape); explicit losses only differentiate
    # the predictions, so only a (B, 1) prediction is of interest there
    return [
        pytest.param(case, index, id=f"{case.id}-arg{index}")
        for case in CASES
        for index in case.wrt
    ]


class TestBroadcastGradients:
    """A (B, 1) argument met by a (B, T) one: its gradient sums over T."""

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "float-weights"])
    @pytest.mark.parametrize(("case", "index"), _broadcast_params())
    def test_gradient_of_the_narrow_argument(self, xp, case, index, reduction, masked):
        _autograd_backend(xp)
        batch, width = 3, 4
        rng = np.random.default_rng(31 + index)
        shapes = [(batch, width), (batch, width)]
        shapes[index] = (batch, 1)
        first, second = _draw(case, rng, *shapes)
        mask = _weights(rng, (batch, width)) if masked else None
        args = _as_xp(xp, first, second)
        (mask_xp,) = _as_xp(xp, mask)

        value, grads = _value_and_grads(xp, case, args, mask_xp, reduction)
        grad = grads[case.wrt.index(index)]

        objective = _objective(case, mask, reduction)
        # expected: the float64 reference, which broadcasts the same way
        support.assert_close(value, objective(first, second), xp=xp, like=args[1])
        # expected: central differences with respect to the (B, 1) argument itself ...
        narrow = _numeric_gradient(objective, (first, second), index)
        # ... and, spelled out, the gradient with respect to a (B, T) copy of it,
        # summed over T: each of its elements is used T times
        wide_args = [first, second]
        wide_args[index] = np.repeat(wide_args[index], width, axis=-1)
        wide = _numeric_gradient(objective, wide_args, index)
        summed = wide.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(narrow, summed, rtol=GRAD_RTOL, atol=GRAD_ATOL)
        for expected in (narrow, summed):
            support.assert_close(
                grad,
                expected,
                xp=xp,
                like=args[index],
                shape=args[index].shape,
                rtol=GRAD_RTOL,
                atol=GRAD_ATOL,
            )


class TestGradientOfWeights:
    """Weights that are learned (a gate, sample weights) get the gradient of
    ``sum(L * w) / sum(w)`` (or ``sum(L * w)``); a weight of exactly 0 masks its
    element out, and gets a gradient of exactly 0 from its own term (as its
    element passes back exactly 0, whatever comes back to it)."""

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_gradient(self, xp, case, reduction):
        backend = _autograd_backend(xp)
        rng = np.random.default_rng(5)
        first, second = _draw(case, rng, (3, 4), (3, 4))
        weights = _weights(rng, (3, 4))
        function = getattr(al, case.name)
        args = _as_xp(xp, first, second)
        (weights_xp,) = _as_xp(xp, weights)
        if backend == "torch":
            import torch

            leaf = weights_xp.detach().clone().requires_grad_(True)
            value = function(*args, leaf, reduction=reduction, **case.kwargs)
            (grad,) = torch.autograd.grad(value, [leaf])
        else:
            import jax

            def of_weights(w):
                return function(*args, w, reduction=reduction, **case.kwargs)

            grad = jax.grad(of_weights)(weights_xp)

        loss = case.reference(first, second, **case.kwargs)
        zero = weights == 0
        # expected: central differences of the float64 reference in the weights, the
        # elements of weight 0 left out of the loss; 'mean' divides by sum(w), whose
        # derivative is the same for every weight, -mean / sum(w), those of 0 too
        held = np.where(zero, 0.0, loss)
        expected = _numeric_gradient(
            lambda w: float(support.ref_reduce(held, w, reduction)), (weights,), 0
        )
        support.assert_close(
            grad,
            expected,
            xp=xp,
            like=weights_xp,
            shape=weights.shape,
            rtol=GRAD_RTOL,
            atol=GRAD_ATOL,
        )


class TestAllZeroMask:
    """Contract: an all-zero mask gives a loss of exactly 0 and gradients of exactly 0
    (Spotlight divides 0 by 0 and gets NaN)."""

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("mask_dtype", ["bool", "float64"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_zero_value_and_zero_gradients(self, xp, case, reduction, mask_dtype):
        _autograd_backend(xp)
        rng = np.random.default_rng(5)
        first, second = _draw(case, rng, (2, 3), (2, 3))
        args = _as_xp(xp, first, second)
        mask = support.asarray(xp, np.zeros((2, 3)), getattr(xp, mask_dtype))

        value, grads = _value_and_grads(xp, case, args, mask, reduction)

        # by hand: every element is masked out, so the loss is 0 and does not move
        support.assert_close(value, 0.0, xp=xp, like=args[1], rtol=0, atol=0)
        for i, grad in zip(case.wrt, grads, strict=True):
            support.assert_close(
                grad,
                np.zeros(args[i].shape),
                xp=xp,
                like=args[i],
                shape=args[i].shape,
                rtol=0,
                atol=0,
            )


# Each: a case, the inputs with one element whose L is inf or NaN, and that element.
# At the masked position the autodiff gradient is not asserted. What the backends give
# there (torch and JAX alike): hinge and adaptive hinge with an infinite negative, 0
# (relu's derivative 1 times a zero cotangent); poisson with rate 0 for a count of 2,
# NaN (the cotangent 0 times d log(ŷ)/dŷ = 1/0 = inf); regression with an infinite
# prediction, NaN (0 times 2(ŷ - y) = inf); bpr with a NaN score, NaN.
MASKED_OUT = (
    pytest.param(CASES[2], 1, (0, 1), np.inf, id="hinge-inf-negative"),
    pytest.param(CASES[4], 1, (1, 0, 2), np.inf, id="adaptive_hinge-inf-negative"),
    pytest.param(CASES[6], 1, (1, 1), 0.0, id="poisson-zero-rate"),
    pytest.param(CASES[5], 1, (0, 2), np.inf, id="regression-inf-prediction"),
    pytest.param(CASES[1], 0, (1, 1), np.nan, id="bpr-nan-positive"),
)


class TestMaskedOutNonFinite:
    """Contract: a masked-out element where L is inf or NaN contributes exactly 0 (to
    the value, and to every other element's gradient)."""

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("mask_dtype", ["bool", "float64"])
    @pytest.mark.parametrize(("case", "argument", "position", "bad"), MASKED_OUT)
    def test_value_and_unmasked_gradients(
        self, xp, case, argument, position, bad, reduction, mask_dtype
    ):
        _autograd_backend(xp)
        rng = np.random.default_rng(11)
        first, second = _draw(case, rng, (2, 3), (2, 3))
        args_np = [first, second]
        args_np[argument] = args_np[argument].copy()
        args_np[argument][position] = bad
        if case.id == "poisson":
            args_np[0][position] = 2.0  # a positive count at rate 0: L = inf
        loss_position = position[-2:]  # adaptive hinge: drop the negatives axis
        mask = np.ones((2, 3)) if mask_dtype == "bool" else _weights(rng, (2, 3)) + 0.5
        mask[loss_position] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            bad_loss = case.reference(*args_np, **case.kwargs)[loss_position]
        assert not np.isfinite(bad_loss)  # the premise: L is inf or NaN there

        args = _as_xp(xp, *args_np)
        mask_xp = support.asarray(xp, mask, getattr(xp, mask_dtype))
        value, grads = _value_and_grads(xp, case, args, mask_xp, reduction)

        objective = _objective(case, mask, reduction)
        with np.errstate(divide="ignore", invalid="ignore"):
            # expected: the float64 reference over the unmasked elements (ref_reduce
            # selects with np.where, so inf·0 does not leak into it)
            expected_value = objective(*args_np)
        assert np.isfinite(expected_value)
        support.assert_close(value, expected_value, xp=xp, like=args[1])

        for i, grad in zip(case.wrt, grads, strict=True):
            shape = args_np[i].shape
            # the elements of argument i that feed an unmasked loss element
            feeds_unmasked = np.broadcast_to(mask != 0, shape[-2:])
            feeds_unmasked = np.broadcast_to(feeds_unmasked, shape).copy()
            positions = list(zip(*np.nonzero(feeds_unmasked), strict=True))
            # expected: central differences of the reference, at unmasked positions
            with np.errstate(divide="ignore", invalid="ignore"):
                expected = _numeric_gradient(objective, args_np, i, positions)
            expected = np.where(feeds_unmasked, expected, 0.0)
            keep = support.asarray(xp, feeds_unmasked)
            support.assert_close(
                xp.where(keep, grad, 0.0),
                expected,
                xp=xp,
                like=args[i],
                shape=shape,
                rtol=GRAD_RTOL,
                atol=GRAD_ATOL,
            )
