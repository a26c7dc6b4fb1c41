"""Tests of :func:`arraylosses.value_and_grad`: each loss's value and its gradients
with respect to the predictions, in closed form, on every backend.

One class per loss. What all seven share is written once in
``_ValueAndGradContract``; ``_ImplicitContract``, ``_HingeContract`` and
``_ExplicitContract`` add what a family shares. Each test says where its expected
values come from:

- "finite differences": central differences, in float64 NumPy, of Spotlight's
  formulas (``support.ref_*`` reduced by ``support.ref_reduce``). They share no code
  with the package nor with any autograd, so they run in every nox session. The
  inputs keep clear of the kinks (hinge arguments away from the margin, a unique
  largest negative), where a difference quotient is not the derivative.
- "torch autograd" and "jax.value_and_grad": the autograd of the package's own loss
  (``al.bpr_loss``: the untagged function) on float64 CPU tensors, or float64 JAX
  arrays. Each runs where its library imports (the tests-torch and tests-jax
  sessions, a full development environment) and is skipped, with the reason,
  elsewhere: there the finite differences still check every backend.
- a hand calculation, spelled out in a comment.

The inputs are built in the dtype under test and converted back to float64 NumPy
(``support.to_numpy``) before any reference sees them, so the tolerances measure
the computation only. Every value is also compared, with a tight tolerance, with
what the loss itself returns on the same inputs and backend: a consistency check,
not a reference.

Tagging: ``value_and_grad`` makes a new function per loss. The seven are made once,
here at module level, and tagged with ``lazy_xp_function`` like the losses, so that
on JAX each call to them runs under ``jax.jit`` (non-array options static) and on
Dask must compute nothing. ``value_and_grad`` itself is not tagged (it returns a
function, not arrays), and it is always given the untagged losses (``al.bpr_loss``):
during a test the conftest replaces the tagged globals with wrappers, which
``value_and_grad`` rightly refuses as none of its losses. ``TestTransforms`` applies
``jax.jit``, a refusing Dask scheduler and ``torch.compile`` explicitly.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar, NamedTuple

import array_api_compat
import numpy as np
import pytest
import support
from array_api_extra.testing import lazy_xp_function

import arraylosses as al
from arraylosses import (
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    logistic_loss,
    pointwise_loss,
    poisson_loss,
    regression_loss,
    value_and_grad,
)

# On JAX every call to these runs under jax.jit; on Dask it must compute nothing.
for _loss in (
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    logistic_loss,
    pointwise_loss,
    poisson_loss,
    regression_loss,
):
    lazy_xp_function(_loss)

# The functions under test, made from the untagged losses and tagged themselves.
pointwise_loss_value_and_grad = value_and_grad(al.pointwise_loss)
bpr_loss_value_and_grad = value_and_grad(al.bpr_loss)
hinge_loss_value_and_grad = value_and_grad(al.hinge_loss)
adaptive_hinge_loss_value_and_grad = value_and_grad(al.adaptive_hinge_loss)
regression_loss_value_and_grad = value_and_grad(al.regression_loss)
poisson_loss_value_and_grad = value_and_grad(al.poisson_loss)
logistic_loss_value_and_grad = value_and_grad(al.logistic_loss)
for _function in (
    pointwise_loss_value_and_grad,
    bpr_loss_value_and_grad,
    hinge_loss_value_and_grad,
    adaptive_hinge_loss_value_and_grad,
    regression_loss_value_and_grad,
    poisson_loss_value_and_grad,
    logistic_loss_value_and_grad,
):
    lazy_xp_function(_function)

Shape = tuple[int, ...]
Gradients = tuple[np.ndarray, ...]

B, T, K = 3, 4, 3  # batch, sequence, negatives per positive (adaptive hinge)
DTYPES = ("float32", "float64")
FD = "finite differences"
AUTOGRADS = ("torch", "jax")

FD_STEP = 1e-6  # float64 central differences: truncation ~STEP², rounding ~1e-16 / STEP
FD_RTOL, FD_ATOL = 1e-6, 1e-8  # what finite differences can promise a float64 result
# half precision: computed in float32, rounded once to the half dtype (2^-11, 2^-8)
HALF_RTOL = {"float16": 2e-3, "bfloat16": 8e-3}
HALF_ATOL = 1e-5
# value_and_grad's value against the loss's own on the same backend: a few ulps
SAME_RTOL = {"float16": 2e-3, "bfloat16": 8e-3, "float32": 1e-6, "float64": 1e-14}

# (dtype, reduction) pairs: each test meets both dtypes and both reductions, and
# test_shapes and test_masks between them meet all four pairings
SHAPE_PAIRINGS = [("float32", "mean"), ("float64", "sum")]

# masks of a (B, T) elementwise loss, with zeros in them; weights exact in float16
FLOAT_WEIGHTS = np.array(
    [[0.5, 1.0, 0.0, 2.0], [0.0, 0.25, 1.0, 1.5], [1.0, 0.0, 0.75, 3.0]]
)
INT_WEIGHTS = np.array([[1, 2, 0, 1], [0, 3, 1, 1], [2, 0, 0, 1]])
BOOL_B1 = np.array([[True], [False], [True]])
FLOAT_B1 = np.array([[0.5], [0.0], [2.0]])
INT_T = np.array([1, 0, 2, 1])
MASKED_POSITION = (0, 2)  # the first zero of FLOAT_WEIGHTS and INT_WEIGHTS


# --- the losses ----------------------------------------------------------------------


class Loss(NamedTuple):
    """One loss: its name in arraylosses, Spotlight's formula, and its kind."""

    name: str
    reference: Callable[..., np.ndarray]  # elementwise L in float64 (support.ref_*)
    implicit: bool  # gradients for both predictions, else for the predicted ratings
    negatives_axis: bool = False

    @property
    def wrt(self) -> tuple[int, ...]:
        """The positions of the arguments that have a gradient."""
        return (0, 1) if self.implicit else (1,)

    @property
    def argument_names(self) -> tuple[str, str]:
        first, second = list(inspect.signature(getattr(al, self.name)).parameters)[:2]
        return first, second


POINTWISE = Loss("pointwise_loss", support.ref_pointwise, implicit=True)
BPR = Loss("bpr_loss", support.ref_bpr, implicit=True)
HINGE = Loss("hinge_loss", support.ref_hinge, implicit=True)
ADAPTIVE_HINGE = Loss(
    "adaptive_hinge_loss",
    support.ref_adaptive_hinge,
    implicit=True,
    negatives_axis=True,
)
REGRESSION = Loss("regression_loss", support.ref_regression, implicit=False)
POISSON = Loss("poisson_loss", support.ref_poisson, implicit=False)
LOGISTIC = Loss("logistic_loss", support.ref_logistic, implicit=False)
LOSSES = (POINTWISE, BPR, HINGE, ADAPTIVE_HINGE, REGRESSION, POISSON, LOGISTIC)


def draw(
    loss: Loss,
    rng: np.random.Generator,
    first_shape: Shape,
    second_shape: Shape,
    options: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 inputs for ``loss``, clear of its kinks by 0.05 (so also after
    rounding to a half dtype). ``second_shape`` includes the negatives axis."""
    margin = options.get("margin", 1.0)
    while True:  # rejection keeps the draw deterministic for a seeded rng
        if loss is REGRESSION:
            first = rng.normal(3.0, 1.5, first_shape)
            second = rng.normal(3.0, 1.5, second_shape)
        elif loss is POISSON:
            first = rng.integers(0, 5, first_shape).astype(np.float64)
            if options.get("log_input", False):
                second = rng.normal(0.0, 1.0, second_shape)
            else:
                second = rng.uniform(0.2, 4.0, second_shape)  # rates well above 0
        elif loss is LOGISTIC:
            first = rng.choice([-1.0, 0.0, 1.0], first_shape)
            second = rng.normal(0.0, 2.0, second_shape)
        else:
            first = rng.normal(0.0, 1.5, first_shape)
            second = rng.normal(0.0, 1.5, second_shape)
        if loss is HINGE:
            if np.all(np.abs(second - first + margin) > 0.05):
                return first, second
        elif loss is ADAPTIVE_HINGE:
            ordered = np.sort(second, axis=0)
            unique = ordered.shape[0] == 1 or np.all(ordered[-1] - ordered[-2] > 0.05)
            if unique and np.all(np.abs(ordered[-1] - first + margin) > 0.05):
                return first, second
        else:
            return first, second


# --- references ----------------------------------------------------------------------

_REFERENCES: dict[Any, tuple[float, Gradients]] = {}


def reference(
    loss: Loss,
    first: np.ndarray,
    second: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    reduction: str = "mean",
    options: dict[str, Any] | None = None,
    method: str = FD,
) -> tuple[float, Gradients]:
    """The reduced loss at float64 NumPy inputs and its gradients, one per argument in
    ``loss.wrt``, in float64 NumPy, by ``method``: "finite differences", "torch"
    (autograd) or "jax" (``jax.value_and_grad``). Skips where ``method``'s library
    does not import. Cached: the backends share the inputs, rounded alike."""
    options = {} if options is None else options
    arrays = tuple(
        None if a is None else (a.dtype.str, a.shape, a.tobytes())
        for a in (first, second, mask)
    )
    key = (loss.name, method, reduction, tuple(sorted(options.items())), arrays)
    if key not in _REFERENCES:
        compute = {
            FD: _by_finite_differences,
            "torch": _by_torch_autograd,
            "jax": _by_jax_value_and_grad,
        }[method]
        _REFERENCES[key] = compute(loss, first, second, mask, reduction, options)
    return _REFERENCES[key]


def _objective(
    loss: Loss, mask: np.ndarray | None, reduction: str, options: dict[str, Any]
) -> Callable[[np.ndarray, np.ndarray], float]:
    def objective(first: np.ndarray, second: np.ndarray) -> float:
        # the naive formulas overflow or meet inf·0 where the tests put extreme or
        # masked-out non-finite inputs; ref_reduce selects those elements away
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            elementwise = loss.reference(first, second, **options)
            return float(support.ref_reduce(elementwise, mask, reduction))

    return objective


def _by_finite_differences(
    loss: Loss,
    first: np.ndarray,
    second: np.ndarray,
    mask: np.ndarray | None,
    reduction: str,
    options: dict[str, Any],
) -> tuple[float, Gradients]:
    objective = _objective(loss, mask, reduction, options)
    args = [np.array(first, dtype=np.float64), np.array(second, dtype=np.float64)]
    gradients = []
    for index in loss.wrt:
        gradient = np.zeros(args[index].shape)
        for position in np.ndindex(args[index].shape):
            values = []
            for shift in (FD_STEP, -FD_STEP):
                moved = [a.copy() for a in args]
                moved[index][position] += shift
                values.append(objective(*moved))
            gradient[position] = (values[0] - values[1]) / (2 * FD_STEP)
        gradients.append(gradient)
    return objective(*args), tuple(gradients)


def _by_torch_autograd(
    loss: Loss,
    first: np.ndarray,
    second: np.ndarray,
    mask: np.ndarray | None,
    reduction: str,
    options: dict[str, Any],
) -> tuple[float, Gradients]:
    torch = pytest.importorskip(
        "torch", reason="torch autograd as a reference needs torch"
    )
    tensors = [torch.from_numpy(np.array(a)) for a in (first, second)]
    for index in loss.wrt:
        tensors[index].requires_grad_(True)
    weights = None if mask is None else torch.from_numpy(np.array(mask))
    value = getattr(al, loss.name)(*tensors, weights, reduction=reduction, **options)
    gradients = torch.autograd.grad(value, [tensors[i] for i in loss.wrt])
    return float(value.detach()), tuple(g.numpy() for g in gradients)


def _by_jax_value_and_grad(
    loss: Loss,
    first: np.ndarray,
    second: np.ndarray,
    mask: np.ndarray | None,
    reduction: str,
    options: dict[str, Any],
) -> tuple[float, Gradients]:
    jax = pytest.importorskip(
        "jax", reason="jax.value_and_grad as a reference needs jax"
    )
    jax.config.update("jax_enable_x64", True)  # float64, as the conftest sets for JAX
    import jax.numpy as jnp

    arrays = [jnp.asarray(a) for a in (first, second)]
    function = getattr(al, loss.name)

    def objective(*wrt: Any, weights: Any) -> Any:
        full = list(arrays)
        for index, array in zip(loss.wrt, wrt, strict=True):
            full[index] = array
        return function(*full, weights, reduction=reduction, **options)

    # jitted only so that it compiles once rather than op by op
    differentiated = jax.jit(
        jax.value_and_grad(objective, argnums=tuple(range(len(loss.wrt))))
    )
    value, gradients = differentiated(
        *(arrays[i] for i in loss.wrt),
        weights=None if mask is None else jnp.asarray(mask),
    )
    return float(value), tuple(np.asarray(g) for g in gradients)


# --- arrays --------------------------------------------------------------------------


def dtype_named(xp: ModuleType, name: str) -> Any:
    """``xp``'s dtype ``name``; skips where the backend has none. Dask's namespace
    names no float16 (the standard has no half types), but holds NumPy's."""
    if name == "float16" and support.backend_of(xp) == "dask":
        return np.float16
    return support.dtype_of(xp, name)


def build(
    xp: ModuleType, dtype: Any, *values: np.ndarray
) -> tuple[list[Any], list[np.ndarray]]:
    """``values`` as ``xp`` arrays of ``dtype``, and as rounded to it, in float64."""
    arrays = [support.asarray(xp, v, dtype) for v in values]
    return arrays, [support.to_numpy(a) for a in arrays]


def numpy_copy(x: Any) -> np.ndarray:
    """A NumPy copy of ``x`` that later changes to ``x`` cannot reach."""
    return np.array(support.to_numpy(x), copy=True)


def name_of_dtype(x: Any) -> str:
    return str(x.dtype).rsplit(".", 1)[-1]


def gradient_tolerance(name: str, method: str) -> tuple[float | None, float | None]:
    """(rtol, atol) of a gradient of dtype ``name`` against ``method``'s numbers;
    None: support's tolerance of the dtype."""
    if name in HALF_RTOL:
        return HALF_RTOL[name], HALF_ATOL
    if name == "float64" and method == FD:
        return FD_RTOL, FD_ATOL
    return None, None


def split(loss: Loss, result: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(value, gradients)``, with the gradients as a tuple in either case."""
    assert isinstance(result, tuple), type(result)
    assert len(result) == 2
    value, gradients = result
    if loss.implicit:
        assert isinstance(gradients, tuple), type(gradients)
        assert len(gradients) == 2
        return value, gradients
    assert not isinstance(gradients, (tuple, list)), type(gradients)
    return value, (gradients,)


def assert_gradients(
    loss: Loss,
    xp: ModuleType,
    args: list[Any],
    gradients: tuple[Any, ...],
    expected: Gradients,
    *,
    method: str = FD,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Each gradient is its expected value, as the argument it is taken with respect
    to: its namespace, dtype, shape and device; within ``rtol`` and ``atol``, else
    the tolerance of that argument's dtype for a reference made by ``method``."""
    for index, gradient, wanted in zip(loss.wrt, gradients, expected, strict=True):
        default_rtol, default_atol = gradient_tolerance(
            name_of_dtype(args[index]), method
        )
        support.assert_close(
            gradient,
            wanted,
            xp=xp,
            like=args[index],
            shape=tuple(args[index].shape),
            rtol=default_rtol if rtol is None else rtol,
            atol=default_atol if atol is None else atol,
        )


def mask_of(xp: ModuleType, values: np.ndarray | None, name: str | None) -> Any:
    return None if values is None else support.asarray(xp, values, getattr(xp, name))


# --- the contract every loss meets -----------------------------------------------------


class _ValueAndGradContract:
    """Tests all seven losses share. A subclass names its ``loss``, the options its
    tests use, and the non-finite input that ``test_masked_out_non_finite`` masks."""

    loss: ClassVar[Loss]
    options: ClassVar[dict[str, Any]] = {}
    # (argument, value) put at MASKED_POSITION, where the mask is 0
    poison: ClassVar[tuple[int, float]]

    # --- calling -------------------------------------------------------------------

    def value_and_grad(self, *args: Any, **kwargs: Any) -> Any:
        # looked up at each call: the conftest patches the module's globals
        return globals()[f"{self.loss.name}_value_and_grad"](*args, **kwargs)

    def loss_itself(self, *args: Any, **kwargs: Any) -> Any:
        return globals()[self.loss.name](*args, **kwargs)

    def shapes(self, case: str) -> tuple[Shape, Shape]:
        """(first, second) argument shapes of a named case; the adaptive hinge's
        negatives get K on a leading axis."""
        first, second = {
            "0d": ((), ()),
            "1d": ((B,), (B,)),
            "2d": ((B, T), (B, T)),
            "first-B1": ((B, 1), (B, T)),
            "second-B1": ((B, T), (B, 1)),
            "first-T": ((T,), (B, T)),
            "second-T": ((B, T), (T,)),
            "empty": ((0,), (0,)),
            "empty-2d": ((0, T), (0, T)),
        }[case]
        if self.loss.negatives_axis:
            # the negatives need more axes than the positives: (K, 1, T), not (K, T)
            second = (K, 1, T) if case == "second-T" else (K, *second)
        return first, second

    def inputs(
        self,
        xp: ModuleType,
        dtype: Any,
        case: str = "2d",
        *,
        seed: int = 0,
        options: dict[str, Any] | None = None,
    ) -> tuple[list[Any], list[np.ndarray]]:
        """Seeded inputs of a shape case, as ``xp`` arrays and rounded in float64."""
        options = self.options if options is None else options
        rng = np.random.default_rng(seed)
        values = draw(self.loss, rng, *self.shapes(case), options)
        return build(xp, dtype, *values)

    def check(
        self,
        xp: ModuleType,
        args: list[Any],
        mask: Any,
        expected: tuple[float, Gradients],
        *,
        reduction: str,
        options: dict[str, Any] | None = None,
        method: str = FD,
        rtol: float | None = None,
        atol: float | None = None,
    ) -> tuple[Any, tuple[Any, ...]]:
        """Call the function under test and check value and gradients against
        ``expected``: namespace, dtype, shape and device of each, as the argument it
        belongs to; then the value against the loss's own on the same inputs."""
        options = self.options if options is None else options
        result = self.value_and_grad(*args, mask, reduction=reduction, **options)
        value, gradients = split(self.loss, result)
        expected_value, expected_gradients = expected
        name = name_of_dtype(value)
        value_rtol, value_atol = (
            (HALF_RTOL[name], HALF_ATOL) if name in HALF_RTOL else (None, None)
        )
        if rtol is not None:  # an exact expectation holds for the value too
            value_rtol, value_atol = rtol, atol
        support.assert_close(
            value, expected_value, xp=xp, like=args[1], rtol=value_rtol, atol=value_atol
        )
        assert_gradients(
            self.loss,
            xp,
            args,
            gradients,
            expected_gradients,
            method=method,
            rtol=rtol,
            atol=atol,
        )
        # consistency, not a reference: the loss itself, on the same backend
        own = self.loss_itself(*args, mask, reduction=reduction, **options)
        tight = SAME_RTOL[name_of_dtype(own)]
        support.assert_close(
            value, support.to_numpy(own), xp=xp, like=own, rtol=tight, atol=tight * 1e-3
        )
        return value, gradients

    # --- shapes, dtypes, reductions ------------------------------------------------

    @pytest.mark.parametrize(("dtype_name", "reduction"), SHAPE_PAIRINGS)
    @pytest.mark.parametrize(
        "case",
        [
            "0d",
            "1d",
            "2d",
            "first-B1",
            "second-B1",
            "first-T",
            "second-T",
            "empty",
            "empty-2d",
        ],
    )
    def test_shapes(
        self, xp: ModuleType, case: str, dtype_name: str, reduction: str
    ) -> None:
        # expected: finite differences of Spotlight's formula in float64. A broadcast
        # argument is differentiated as itself, so its expected gradient is the sum
        # over the axes it was broadcast along; the mean over no elements is 0
        dtype = support.dtype_of(xp, dtype_name)
        args, values = self.inputs(xp, dtype, case, seed=1)
        expected = reference(
            self.loss, *values, reduction=reduction, options=self.options
        )
        self.check(xp, args, None, expected, reduction=reduction)

    # --- masks ---------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("mask_np", "mask_dtype", "dtype_name", "reduction"),
        [
            pytest.param(FLOAT_WEIGHTS != 0, "bool", "float32", "mean", id="bool"),
            pytest.param(INT_WEIGHTS, "int64", "float64", "sum", id="int64-weights"),
            pytest.param(
                FLOAT_WEIGHTS, "float64", "float64", "mean", id="float-weights"
            ),
            pytest.param(BOOL_B1, "bool", "float64", "mean", id="bool-B1-broadcast"),
            pytest.param(
                FLOAT_B1, "float64", "float32", "sum", id="float-B1-broadcast"
            ),
            pytest.param(INT_T, "int64", "float64", "mean", id="int64-T-broadcast"),
        ],
    )
    def test_masks(
        self,
        xp: ModuleType,
        mask_np: np.ndarray,
        mask_dtype: str,
        dtype_name: str,
        reduction: str,
    ) -> None:
        # expected: finite differences of Spotlight's masked mean in float64,
        # sum(L·w) / sum(w) with w counted at the loss's (B, T) shape (ref_reduce)
        dtype = support.dtype_of(xp, dtype_name)
        args, values = self.inputs(xp, dtype, seed=2)
        mask = mask_of(xp, mask_np, mask_dtype)
        expected = reference(
            self.loss, *values, mask_np, reduction=reduction, options=self.options
        )
        _, gradients = self.check(xp, args, mask, expected, reduction=reduction)
        # by hand: where the mask is 0 the gradient is exactly 0
        masked_out = np.broadcast_to(mask_np, (B, T)) == 0
        for gradient in gradients:
            assert np.all(support.to_numpy(gradient)[..., masked_out] == 0)

    @pytest.mark.parametrize(
        ("mask_np", "mask_dtype", "dtype_name", "reduction", "case"),
        [
            pytest.param(
                np.zeros((B, T), dtype=bool), "bool", "float32", "mean", "2d", id="bool"
            ),
            pytest.param(
                np.zeros((B, T), dtype=np.int64),
                "int64",
                "float64",
                "sum",
                "2d",
                id="int64",
            ),
            pytest.param(
                np.zeros((B, T)), "float64", "float32", "mean", "first-B1", id="float"
            ),
            pytest.param(
                np.zeros((B, 1), dtype=bool),
                "bool",
                "float64",
                "mean",
                "second-B1",
                id="bool-B1-broadcast",
            ),
        ],
    )
    def test_all_zero_mask(
        self,
        xp: ModuleType,
        mask_np: np.ndarray,
        mask_dtype: str,
        dtype_name: str,
        reduction: str,
        case: str,
    ) -> None:
        # by hand: every element is masked out, so the loss is exactly 0 and nothing
        # moves it: every gradient is exactly 0 (Spotlight's mean is 0 / 0 = NaN)
        dtype = support.dtype_of(xp, dtype_name)
        args, _ = self.inputs(xp, dtype, case, seed=3)
        mask = mask_of(xp, mask_np, mask_dtype)
        zeros = tuple(np.zeros(args[i].shape) for i in self.loss.wrt)
        self.check(
            xp, args, mask, (0.0, zeros), reduction=reduction, rtol=0.0, atol=0.0
        )

    # --- against autograd ----------------------------------------------------------

    @pytest.mark.parametrize("method", AUTOGRADS)
    @pytest.mark.parametrize(
        ("case", "mask_np", "mask_dtype", "dtype_name", "reduction"),
        [
            pytest.param(
                "first-B1",
                FLOAT_WEIGHTS,
                "float64",
                "float32",
                "mean",
                id="first-B1-float-weights",
            ),
            pytest.param(
                "second-B1",
                BOOL_B1,
                "bool",
                "float64",
                "sum",
                id="second-B1-bool-B1-broadcast",
            ),
            pytest.param(
                "second-T", None, None, "float64", "mean", id="second-T-no-mask"
            ),
            pytest.param(
                "2d", np.zeros((B, T)), "float64", "float32", "mean", id="all-zero-mask"
            ),
        ],
    )
    def test_against_autograd(
        self,
        xp: ModuleType,
        method: str,
        case: str,
        mask_np: np.ndarray | None,
        mask_dtype: str | None,
        dtype_name: str,
        reduction: str,
    ) -> None:
        # expected: torch autograd, or jax.value_and_grad, of the package's own loss
        # in float64 (skipped where that library does not import)
        dtype = support.dtype_of(xp, dtype_name)
        args, values = self.inputs(xp, dtype, case, seed=4)
        mask = mask_of(xp, mask_np, mask_dtype)
        expected = reference(
            self.loss,
            *values,
            mask_np,
            reduction=reduction,
            options=self.options,
            method=method,
        )
        self.check(xp, args, mask, expected, reduction=reduction, method=method)

    # --- half precision ------------------------------------------------------------

    @pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
    def test_half_precision(self, xp: ModuleType, dtype_name: str) -> None:
        # expected: finite differences of Spotlight's formula in float64 at the inputs
        # as rounded to the half dtype; the result is computed in float32 and rounded
        # once, to the arguments' dtype
        dtype = dtype_named(xp, dtype_name)
        args, values = self.inputs(xp, dtype, "first-B1", seed=5)
        mask = support.asarray(xp, FLOAT_WEIGHTS, dtype)
        expected = reference(
            self.loss,
            *values,
            support.to_numpy(mask),
            reduction="mean",
            options=self.options,
        )
        self.check(xp, args, mask, expected, reduction="mean")

    # --- non-finite elements under a zero mask -------------------------------------

    def poisoned_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        first, second = draw(
            self.loss, np.random.default_rng(6), *self.shapes("2d"), self.options
        )
        argument, bad = self.poison
        poisoned = [first.copy(), second.copy()]
        # on the adaptive hinge: one of the negatives at that position
        index = (
            (0, *MASKED_POSITION) if poisoned[argument].ndim == 3 else MASKED_POSITION
        )
        poisoned[argument][index] = bad
        return poisoned[0], poisoned[1]

    @pytest.mark.parametrize(
        ("mask_dtype", "dtype_name", "reduction"),
        [("bool", "float32", "mean"), ("float64", "float64", "sum")],
    )
    def test_masked_out_non_finite(
        self, xp: ModuleType, mask_dtype: str, dtype_name: str, reduction: str
    ) -> None:
        # expected: the value over the unmasked elements (ref_reduce selects with
        # np.where, so inf·0 does not leak into it); gradients by finite differences
        # of that reference, and, by hand, exactly 0 wherever the mask is 0: the loss
        # does not depend on those elements (autograd gives 0·inf = NaN there where
        # dL is not finite: poisson at rate 0, regression at inf, NaN scores)
        first_np, second_np = self.poisoned_inputs()
        with np.errstate(divide="ignore", invalid="ignore"):
            bad = self.loss.reference(first_np, second_np, **self.options)
        assert not np.isfinite(bad[MASKED_POSITION])  # the premise: L is inf or NaN
        dtype = support.dtype_of(xp, dtype_name)
        args, values = build(xp, dtype, first_np, second_np)
        mask_np = FLOAT_WEIGHTS != 0 if mask_dtype == "bool" else FLOAT_WEIGHTS
        mask = mask_of(xp, mask_np, mask_dtype)
        value, gradients = reference(
            self.loss, *values, mask_np, reduction=reduction, options=self.options
        )
        masked_out = FLOAT_WEIGHTS == 0
        expected = tuple(np.where(masked_out, 0.0, g) for g in gradients)
        _, gradients = self.check(
            xp, args, mask, (value, expected), reduction=reduction
        )
        for gradient in gradients:
            assert np.all(support.to_numpy(gradient)[..., masked_out] == 0)

    # --- arguments -----------------------------------------------------------------

    def test_inputs_unchanged(self, xp: ModuleType) -> None:
        # by hand: the call leaves every argument as it found it
        args, _ = self.inputs(xp, xp.float32, seed=7)
        mask = support.asarray(xp, INT_WEIGHTS, xp.int64)
        before = [numpy_copy(x) for x in (*args, mask)]
        self.value_and_grad(*args, mask, reduction="sum", **self.options)
        for old, new in zip(before, (*args, mask), strict=True):
            np.testing.assert_array_equal(support.to_numpy(new), old, strict=True)

    def test_arrays_by_keyword(self, xp: ModuleType) -> None:
        # by hand: the same call spelled with keywords gives the same numbers
        args, _ = self.inputs(xp, xp.float64, "first-B1", seed=8)
        mask = support.asarray(xp, FLOAT_WEIGHTS, xp.float64)
        first_name, second_name = self.loss.argument_names
        positional = split(
            self.loss, self.value_and_grad(*args, mask, reduction="sum", **self.options)
        )
        by_keyword = split(
            self.loss,
            self.value_and_grad(
                reduction="sum",
                mask=mask,
                **{second_name: args[1], first_name: args[0]},
                **self.options,
            ),
        )
        for a, b in zip(
            (positional[0], *positional[1]),
            (by_keyword[0], *by_keyword[1]),
            strict=True,
        ):
            support.assert_close(
                b,
                support.to_numpy(a),
                xp=xp,
                like=a,
                shape=tuple(a.shape),
                rtol=0,
                atol=0,
            )

    @pytest.mark.parametrize("reduction", ["mean", "sum"])
    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "bool-mask"])
    @pytest.mark.parametrize(
        "transposed",
        ["", "first", "both"],
        ids=["c-order", "first-transposed", "both-transposed"],
    )
    def test_value_is_the_losses_own(
        self, xp: ModuleType, reduction: str, *, masked: bool, transposed: str
    ) -> None:
        # by hand: the value is what the loss itself returns, to the bit. Two
        # roundings of one formula differ in a few percent of elements (PyTorch's
        # fused multiply-add in the Poisson loss against the plain expression: 8%),
        # so many small calls, each of whose results shows any element's last bit.
        # Under jax.jit (as the fixture runs both here) XLA compiles the two graphs
        # apart and may sum in another order: there, as close as the reduction.
        # Transposed arguments: the elementwise terms may be laid out in another
        # order, in which a sum adds them
        tolerance = SAME_RTOL["float32"] if support.backend_of(xp) == "jax" else 0.0
        rng = np.random.default_rng(11)
        shape = (4, 3)
        second_shape = (K, *shape) if self.loss.negatives_axis else shape
        mask = mask_of(xp, rng.uniform(size=shape) < 0.7, "bool")
        for _ in range(50):
            # counts as the first argument, rates well above 0 as the second:
            # inputs every loss takes; the value needs no distance from the kinks
            first = rng.integers(-1, 5, shape).astype(np.float64)
            second = rng.uniform(0.2, 4.0, second_shape)
            args, _ = build(xp, xp.float32, first, second)
            for position in {"": (), "first": (0,), "both": (0, 1)}[transposed]:
                # the values in an array of the transposed shape, transposed back
                values = (first, second)[position]
                axes = (*range(values.ndim - 2), values.ndim - 1, values.ndim - 2)
                [swapped], _ = build(
                    xp, xp.float32, np.ascontiguousarray(values.transpose(axes))
                )
                args[position] = xp.permute_dims(swapped, axes)
            given = mask if masked else None
            value, _ = split(
                self.loss,
                self.value_and_grad(*args, given, reduction=reduction, **self.options),
            )
            own = self.loss_itself(*args, given, reduction=reduction, **self.options)
            support.assert_close(
                value, support.to_numpy(own), xp=xp, like=own, rtol=tolerance, atol=0
            )

    # --- refusals ------------------------------------------------------------------

    def test_refuses_reduction_none(self, xp: ModuleType) -> None:
        args, _ = self.inputs(xp, xp.float32)
        with pytest.raises(
            ValueError,
            match=rf"value_and_grad\({self.loss.name}\) needs a scalar loss: reduction "
            r"must be 'mean' or 'sum', got 'none'",
        ):
            self.value_and_grad(*args, reduction="none", **self.options)
        # and an unknown reduction as the loss refuses it, with the two it takes, an
        # array of names too
        with pytest.raises(
            ValueError, match=r"reduction must be one of 'mean' or 'sum', got 'avg'"
        ):
            self.value_and_grad(*args, reduction="avg", **self.options)
        with pytest.raises(
            TypeError,
            match=r"reduction must be a str, one of 'mean' or 'sum', .*ndarray",
        ):
            self.value_and_grad(
                *args, reduction=np.asarray(["none", "sum"]), **self.options
            )

    def test_refuses_a_wrong_call(self, xp: ModuleType) -> None:
        # Python's own binding errors, named after the function, and one clearer
        args, _ = self.inputs(xp, xp.float32)
        name = rf"{self.loss.name}_value_and_grad\(\)"
        with pytest.raises(
            TypeError, match=rf"{name}: got an unexpected keyword .*'weights'"
        ):
            self.value_and_grad(*args, weights=None)
        # the options by position: how many it takes, and which go by keyword
        with pytest.raises(
            TypeError,
            match=rf"{name} takes from 2 to 3 positional arguments but 4 were given; "
            r"pass (\w+, )*reduction(, \w+)* by keyword",
        ):
            self.value_and_grad(*args, None, "mean")
        second_name = self.loss.argument_names[1]
        with pytest.raises(
            TypeError, match=rf"{name}: missing a required argument: '{second_name}'"
        ):
            self.value_and_grad(args[0])

    def test_refuses_what_the_loss_refuses(self, xp: ModuleType) -> None:
        # the loss's own errors, naming the argument
        first_name, second_name = self.loss.argument_names
        args, values = self.inputs(xp, xp.float32)
        integer = support.asarray(xp, values[1] > 0, xp.int64)
        with pytest.raises(
            TypeError,
            match=rf"{second_name} must have a real floating dtype, got .*int64",
        ):
            self.value_and_grad(args[0], integer, **self.options)
        wider, _ = self.inputs(xp, xp.float32, "2d", seed=9)
        wider[1] = xp.concat([wider[1], wider[1][..., :1]], axis=-1)
        with pytest.raises(
            ValueError,
            match=rf"{first_name} with shape \(3, 4\) and {second_name}.* with shape "
            r"\(3, 5\) do not broadcast",
        ):
            self.value_and_grad(*wider, **self.options)
        mask = support.asarray(xp, np.ones((B, T + 1), dtype=bool), xp.bool)
        with pytest.raises(
            ValueError, match=r"mask with shape \(3, 5\) does not broadcast"
        ):
            self.value_and_grad(*args, mask, **self.options)


class _ImplicitContract(_ValueAndGradContract):
    """What the four implicit losses share: two gradients, of mixed dtypes too."""

    @pytest.mark.parametrize(
        ("first_dtype", "second_dtype"),
        [("float32", "float64"), ("float64", "float32")],
    )
    def test_mixed_dtypes(
        self, xp: ModuleType, first_dtype: str, second_dtype: str
    ) -> None:
        # expected: finite differences of Spotlight's formula in float64 (the float32
        # values are exact in float64). The value is float64, as the loss's; each
        # gradient has its own argument's dtype
        values = draw(
            self.loss, np.random.default_rng(10), *self.shapes("first-B1"), self.options
        )
        first = support.asarray(xp, values[0], getattr(xp, first_dtype))
        second = support.asarray(xp, values[1], getattr(xp, second_dtype))
        rounded = [support.to_numpy(a) for a in (first, second)]
        expected = reference(
            self.loss, *rounded, reduction="mean", options=self.options
        )
        result = self.value_and_grad(first, second, **self.options)
        value, gradients = split(self.loss, result)
        support.assert_close(value, expected[0], xp=xp, like=first, dtype=xp.float64)
        for argument, gradient, wanted in zip(
            (first, second), gradients, expected[1], strict=True
        ):
            # float32 tolerance for both: the float32 one is the float64 result rounded
            support.assert_close(
                gradient,
                wanted,
                xp=xp,
                like=argument,
                shape=tuple(argument.shape),
                rtol=support.RTOL["float32"],
                atol=support.ATOL["float32"],
            )


class _ExplicitContract(_ValueAndGradContract):
    """What the three explicit losses share: one gradient, observed ratings of any
    real dtype."""

    @pytest.mark.parametrize("observed_dtype", ["int64", "bool", "float64"])
    def test_observed_ratings_of_other_dtypes(
        self, xp: ModuleType, observed_dtype: str
    ) -> None:
        # expected: finite differences of Spotlight's formula in float64; the observed
        # ratings take the predictions' dtype, and so do the value and the gradient
        rng = np.random.default_rng(11)
        observed_np, predicted_np = draw(
            self.loss, rng, *self.shapes("2d"), self.options
        )
        if observed_dtype == "bool":
            observed_np = observed_np > 0
        observed = support.asarray(xp, observed_np, getattr(xp, observed_dtype))
        predicted = support.asarray(xp, predicted_np, xp.float32)
        rounded = [support.to_numpy(a) for a in (observed, predicted)]
        expected = reference(
            self.loss, *rounded, reduction="mean", options=self.options
        )
        self.check(xp, [observed, predicted], None, expected, reduction="mean")


class _HingeContract(_ImplicitContract):
    """What both hinges share: the margin, and the kink."""

    poison = (1, math.inf)  # an infinite negative: L = inf

    @pytest.mark.parametrize(
        ("margin", "dtype_name"), [(0.5, "float32"), (0, "float64"), (2.5, "float64")]
    )
    def test_margin(self, xp: ModuleType, margin: float, dtype_name: str) -> None:
        # expected: finite differences of Spotlight's formula in float64 with the
        # margin in place of its 1 (the inputs keep clear of that margin's kink)
        options = {"margin": margin}
        dtype = support.dtype_of(xp, dtype_name)
        args, values = self.inputs(xp, dtype, "first-B1", seed=12, options=options)
        mask = support.asarray(xp, FLOAT_WEIGHTS, xp.float64)
        expected = reference(
            self.loss, *values, FLOAT_WEIGHTS, reduction="sum", options=options
        )
        self.check(xp, args, mask, expected, reduction="sum", options=options)

    @pytest.mark.parametrize(
        ("margin", "error", "message"),
        [
            ("1.0", TypeError, r"margin must be a real number.*, got str"),
            (None, TypeError, r"margin must be a real number.*, got NoneType"),
            (True, TypeError, r"margin must be a real number.*, got bool"),
            (math.inf, ValueError, "margin must be finite"),
            (math.nan, ValueError, "margin must be finite"),
        ],
    )
    def test_refuses_bad_margin(
        self, xp: ModuleType, margin: object, error: type[Exception], message: str
    ) -> None:
        args, _ = self.inputs(xp, xp.float32)
        with pytest.raises(error, match=message):
            self.value_and_grad(*args, margin=margin)

    def kink_inputs(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Inputs with hinge arguments exactly 0, and others well away from it."""
        raise NotImplementedError

    @pytest.mark.parametrize("method", AUTOGRADS)
    def test_kink_as_autograd(self, xp: ModuleType, method: str) -> None:
        # expected: torch autograd, or jax.value_and_grad, of the package's own loss
        # in float64, at inputs where the hinge argument is exactly 0 (finite
        # differences are no reference there): 0, as relu's derivative at 0
        first_np, second_np, options = self.kink_inputs()
        args, values = build(xp, xp.float64, first_np, second_np)
        expected = reference(
            self.loss, *values, reduction="sum", options=options, method=method
        )
        self.check(
            xp, args, None, expected, reduction="sum", options=options, method=method
        )


# --- the seven losses ------------------------------------------------------------------


def sigmoid64(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x) in float64, naively (e^-x may overflow to inf: σ = 0)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _extreme_check(
    test: _ValueAndGradContract,
    xp: ModuleType,
    first_np: np.ndarray,
    second_np: np.ndarray,
    options: dict[str, Any],
    dtype_name: str,
    derivatives: Callable[[np.ndarray, np.ndarray], Gradients],
) -> None:
    """Finite value and gradients at extreme inputs, with no NumPy warning (an error
    in this suite). Expected: the value from Spotlight's formula in float64
    (ref_reduce), the gradients from ``derivatives``, the elementwise derivatives
    derived by hand, in float64, divided by N for the mean. Finite differences are
    no reference here: at a loss of 1e4, rounding swamps a step of 1e-6."""
    dtype = support.dtype_of(xp, dtype_name)
    args, (first, second) = build(xp, dtype, first_np, second_np)
    with np.errstate(over="ignore"):
        elementwise = test.loss.reference(first, second, **options)
    for reduction in ("mean", "sum"):
        scale = 1.0 / elementwise.size if reduction == "mean" else 1.0
        expected = (
            float(support.ref_reduce(elementwise, None, reduction)),
            tuple(d * scale for d in derivatives(first, second)),
        )
        value, gradients = test.check(
            xp, args, None, expected, reduction=reduction, options=options
        )
        for result in (value, *gradients):
            assert np.all(np.isfinite(support.to_numpy(result)))


# sigmoid arguments beyond float32's exp range (e^88.8 overflows), and |x| = 1e4
EXTREMES = np.array([1e4, -1e4, 100.0, -100.0, 80.0, -80.0, 0.0, 0.0])

# Sigmoid arguments in both tails, where σ is within 2e-9 (at 20) of 0 or 1, and
# each of the tolerances below: a few ulps of each element, relative to itself
TAILS = np.array([10.0, 20.0, 30.0, -10.0, -20.0, -30.0])
TAIL_RTOL = {"float32": 1e-6, "float64": 1e-14}


def _tail_check(
    test: _ValueAndGradContract,
    xp: ModuleType,
    first_np: np.ndarray,
    second_np: np.ndarray,
    dtype_name: str,
    elementwise: Callable[[np.ndarray, np.ndarray], np.ndarray],
    derivatives: Callable[[np.ndarray, np.ndarray], Gradients],
    *,
    value_atol: float = 0.0,
) -> None:
    """Each element of the loss (``reduction="none"``) and of each gradient (of the
    sum) within a few of its own ulps of the float64 reference on the same rounded
    inputs: a formula that subtracts from 1 (1 - σ, σ(x) - 1) loses the tiny ones
    whole, where a check relative to the largest element sees nothing. Expected:
    ``elementwise`` and ``derivatives``, written by hand in float64 in forms that
    do not cancel (support's references are Spotlight's naive ones, whose own
    1 - σ loses the tails in float64 too)."""
    dtype = support.dtype_of(xp, dtype_name)
    args, (first, second) = build(xp, dtype, first_np, second_np)
    rtol = TAIL_RTOL[dtype_name]
    support.assert_close(
        test.loss_itself(*args, reduction="none"),
        elementwise(first, second),
        xp=xp,
        like=args[1],
        shape=tuple(args[0].shape),
        rtol=rtol,
        atol=value_atol,
    )
    _, gradients = split(test.loss, test.value_and_grad(*args, reduction="sum"))
    assert_gradients(
        test.loss, xp, args, gradients, derivatives(first, second), rtol=rtol, atol=0.0
    )


class TestPointwiseValueAndGrad(_ImplicitContract):
    loss = POINTWISE
    poison = (0, math.nan)  # a NaN score: L = NaN

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: at p = n = 0, L = (1 - σ(0)) + σ(0) = 1; dL/dp = -σ(0)σ(0) = -1/4
        # and dL/dn = σ(0)σ(0) = 1/4 per element, divided by N = 2 for the mean
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, 0.0], dtype)
        n = support.asarray(xp, [0.0, 0.0], dtype)
        self.check(
            xp,
            [p, n],
            None,
            (1.0, ([-0.125, -0.125], [0.125, 0.125])),
            reduction="mean",
        )

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_extreme_scores_stay_finite(self, xp: ModuleType, dtype_name: str) -> None:
        # σ(-p) + σ(n) where a naive e^-x overflows float32 (|x| = 100, 1e4)
        # by hand: dL/dp = -σ(p)σ(-p), dL/dn = σ(n)σ(-n)
        def derivatives(p: np.ndarray, n: np.ndarray) -> Gradients:
            return -sigmoid64(p) * sigmoid64(-p), sigmoid64(n) * sigmoid64(-n)

        n = -EXTREMES[::-1]
        _extreme_check(self, xp, EXTREMES, n, {}, dtype_name, derivatives)

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_tails_elementwise(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: L = (1 - σ(p)) + σ(n) = σ(-p) + σ(n), tiny where p is large and
        # n small; dL/dp = -σ(p)σ(-p), dL/dn = σ(n)σ(-n)
        def elementwise(p: np.ndarray, n: np.ndarray) -> np.ndarray:
            return sigmoid64(-p) + sigmoid64(n)

        def derivatives(p: np.ndarray, n: np.ndarray) -> Gradients:
            return -sigmoid64(p) * sigmoid64(-p), sigmoid64(n) * sigmoid64(-n)

        _tail_check(self, xp, TAILS, -TAILS, dtype_name, elementwise, derivatives)


class TestBprValueAndGrad(_ImplicitContract):
    loss = BPR
    poison = (0, math.nan)  # a NaN score: L = NaN

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: L = 1 - σ(p - n). At p = n = 0: L = 1/2, dL/dn = σ(0)σ(0) = 1/4.
        # At p = ln 3, n = 0: σ(ln 3) = 3/4, L = 1/4, dL/dn = (1/4)(3/4) = 3/16.
        # The mean over N = 2: L = 3/8, dL/dn = (1/8, 3/32), dL/dp = -dL/dn
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, math.log(3.0)], dtype)
        n = support.asarray(xp, [0.0, 0.0], dtype)
        self.check(
            xp,
            [p, n],
            None,
            (0.375, ([-0.125, -0.09375], [0.125, 0.09375])),
            reduction="mean",
        )

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_extreme_scores_stay_finite(self, xp: ModuleType, dtype_name: str) -> None:
        # p - n from -2e4 to 2e4, where a naive e^-(p - n) overflows float32
        n = np.array([-1e4, 1e4, 0.0, 0.0, 0.0, 0.0, 1e4, 0.0])

        # by hand: dL/dn = σ(n - p)σ(p - n) = -dL/dp
        def derivatives(p: np.ndarray, n: np.ndarray) -> Gradients:
            d_n = sigmoid64(n - p) * sigmoid64(p - n)
            return -d_n, d_n

        _extreme_check(self, xp, EXTREMES, n, {}, dtype_name, derivatives)

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_tails_elementwise(self, xp: ModuleType, dtype_name: str) -> None:
        # p - n = ±10 to ±30. by hand: L = 1 - σ(p - n) = σ(n - p), tiny where p - n
        # is large; dL/dn = σ(n - p)σ(p - n) = -dL/dp
        def elementwise(p: np.ndarray, n: np.ndarray) -> np.ndarray:
            return sigmoid64(n - p)

        def derivatives(p: np.ndarray, n: np.ndarray) -> Gradients:
            d_n = sigmoid64(n - p) * sigmoid64(p - n)
            return -d_n, d_n

        n = np.zeros_like(TAILS)
        _tail_check(self, xp, TAILS, n, dtype_name, elementwise, derivatives)


class TestHingeValueAndGrad(_HingeContract):
    loss = HINGE

    def kink_inputs(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        # n - p + 0.5 = 0, 0, 1.75, -2 (exact in binary)
        return (
            np.array([0.0, 1.0, 0.25, 2.0]),
            np.array([-0.5, 0.5, 1.5, -0.5]),
            {"margin": 0.5},
        )

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: n - p + 1 = 0, 0, 1.75 (all exact in binary): L = 0, 0, 1.75, mean
        # 1.75 / 3. The first two sit exactly at the kink, gradient 0 (as relu's
        # autograd); the third is active: dL/dn = 1/3, dL/dp = -1/3
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, 1.0, 0.25], dtype)
        n = support.asarray(xp, [-1.0, 0.0, 1.0], dtype)
        third = 1.0 / 3.0
        self.check(
            xp,
            [p, n],
            None,
            (1.75 / 3, ([0.0, 0.0, -third], [0.0, 0.0, third])),
            reduction="mean",
        )
        # with margin 0.5, n - p + 0.5 = 0 at p = 0, n = -0.5 and at p = 1.5, n = 1:
        # L = 0 and both gradients 0
        p = support.asarray(xp, [0.0, 1.5], dtype)
        n = support.asarray(xp, [-0.5, 1.0], dtype)
        self.check(
            xp,
            [p, n],
            None,
            (0.0, ([0.0, 0.0], [0.0, 0.0])),
            reduction="sum",
            options={"margin": 0.5},
        )


class TestAdaptiveHingeValueAndGrad(_HingeContract):
    loss = ADAPTIVE_HINGE

    def kink_inputs(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        # the highest negatives are 0.5, 1.5, 2 and 3 (the last two tied), against
        # p = 1, 2, 0.25, 2: max - p + 0.5 = 0, 0, 2.25, 1.5; ties share the gradient
        negatives = np.array(
            [[0.5, -1.0, 2.0, 3.0], [-2.0, 1.5, 2.0, 3.0], [0.0, 1.0, -1.0, 0.0]]
        )
        return np.array([1.0, 2.0, 0.25, 2.0]), negatives, {"margin": 0.5}

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: p = (0, 0) against the negatives' columns (0.5, 0.5, -1) and
        # (-1, 2, 2): each column's maximum is tied between two negatives. The hinge
        # is max - p + 1 = (1.5, 3), mean 2.25; dL/dp = -1/2 each; each column's
        # gradient 1/2 is shared equally by its two tied negatives: 1/4 each, as the
        # autograd of torch.amax and jnp.max gives
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, 0.0], dtype)
        negatives = support.asarray(xp, [[0.5, -1.0], [0.5, 2.0], [-1.0, 2.0]], dtype)
        expected_negatives = [[0.25, 0.0], [0.25, 0.25], [0.0, 0.25]]
        self.check(
            xp,
            [p, negatives],
            None,
            (2.25, ([-0.5, -0.5], expected_negatives)),
            reduction="mean",
        )
        # three negatives tied at 1 against p = 0: L = 2, dL/dp = -1 (sum), and each
        # negative gets a third of the 1
        p = support.asarray(xp, [0.0], dtype)
        negatives = support.asarray(xp, [[1.0], [1.0], [1.0]], dtype)
        self.check(
            xp,
            [p, negatives],
            None,
            (2.0, ([-1.0], [[1 / 3], [1 / 3], [1 / 3]])),
            reduction="sum",
        )

    @pytest.mark.parametrize(
        ("p_shape", "negatives_shape"),
        [
            pytest.param((B, T), (1, B, T), id="one-negative"),
            pytest.param((B, T), (5, B, T), id="five-negatives"),
            pytest.param((B, 1), (5, B, T), id="five-negatives-B1-against-BT"),
            pytest.param((B, T), (5, B, 1), id="five-negatives-B1"),
        ],
    )
    def test_number_of_negatives(
        self, xp: ModuleType, p_shape: Shape, negatives_shape: Shape
    ) -> None:
        # expected: finite differences of Spotlight's formula in float64: the hinge
        # against the maximum over axis 0, whose gradient goes to that one negative
        rng = np.random.default_rng(13)
        values = draw(self.loss, rng, p_shape, negatives_shape, {})
        args, rounded = build(xp, xp.float32, *values)
        mask = support.asarray(xp, FLOAT_WEIGHTS, xp.float32)
        expected = reference(self.loss, *rounded, FLOAT_WEIGHTS, reduction="mean")
        self.check(xp, args, mask, expected, reduction="mean")

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_masked_out_nan_negative(self, xp: ModuleType, dtype_name: str) -> None:
        # A NaN negative where the mask is 0: its column's maximum is NaN, and L is
        # NaN there. by hand: the masked-out element contributes exactly 0, so every
        # negative of that column has gradient exactly 0 (the contract, and the
        # docstring: "Where the mask is 0 (or False) every gradient is exactly 0, even
        # where the elementwise loss is not finite there"); the rest as the finite
        # differences of the reference
        first_np, second_np = draw(
            self.loss, np.random.default_rng(14), (B, T), (K, B, T), {}
        )
        second_np[(1, *MASKED_POSITION)] = math.nan
        dtype = support.dtype_of(xp, dtype_name)
        args, values = build(xp, dtype, first_np, second_np)
        mask = support.asarray(xp, FLOAT_WEIGHTS != 0, xp.bool)
        value, gradients = reference(self.loss, *values, FLOAT_WEIGHTS != 0)
        masked_out = FLOAT_WEIGHTS == 0
        expected = tuple(np.where(masked_out, 0.0, g) for g in gradients)
        self.check(xp, args, mask, (value, expected), reduction="mean")


def test_adaptive_hinge_gradients_ask_for_no_rank_promotion():
    # JAX may be set to refuse rank promotion (jax_numpy_rank_promotion="raise"),
    # which (k, n) negatives against (n,) positives do not ask of the loss: nor may
    # the gradient of their maximum. expected: jax.value_and_grad's value and
    # gradients, to float32's rounding (both share a tie's gradient equally)
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    positive = jnp.asarray([1.0, 2.0, 0.25, 2.0])
    negatives = jnp.asarray(
        [[0.5, -1.0, 2.0, 3.0], [-2.0, 1.5, 2.0, 3.0], [0.0, 1.0, -1.0, 0.0]]
    )
    with jax.numpy_rank_promotion("raise"):
        value, gradients = al.value_and_grad(adaptive_hinge_loss)(positive, negatives)
        expected_value, expected_gradients = jax.value_and_grad(
            adaptive_hinge_loss, argnums=(0, 1)
        )(positive, negatives)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    for gradient, expected in zip(gradients, expected_gradients, strict=True):
        np.testing.assert_allclose(gradient, expected, rtol=1e-6, atol=1e-7)


class TestRegressionValueAndGrad(_ExplicitContract):
    loss = REGRESSION
    poison = (1, math.inf)  # an infinite prediction: L = inf

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: y = (1, 2, 3), ŷ = (2, 2, 1): L = (1, 0, 4), mean 5/3; the gradient
        # 2(ŷ - y)/N = 2·(1, 0, -2)/3 = (2/3, 0, -4/3); with the sum, 2·(1, 0, -2)
        dtype = support.dtype_of(xp, dtype_name)
        y = support.asarray(xp, [1.0, 2.0, 3.0], dtype)
        y_hat = support.asarray(xp, [2.0, 2.0, 1.0], dtype)
        self.check(
            xp, [y, y_hat], None, (5 / 3, ([2 / 3, 0.0, -4 / 3],)), reduction="mean"
        )
        self.check(xp, [y, y_hat], None, (5.0, ([2.0, 0.0, -4.0],)), reduction="sum")


class TestPoissonValueAndGrad(_ExplicitContract):
    loss = POISSON
    poison = (1, 0.0)  # a rate of 0 (for a count of 2, set below): L = inf

    def poisoned_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        observed, predicted = super().poisoned_inputs()
        observed[MASKED_POSITION] = 2.0  # 2·log 0 = -inf, so L = inf
        return observed, predicted

    # A rate of 0 for a positive count is outside the loss's domain: NumPy-based
    # backends report log(0) and 2/0 as they compute that element, masked or not
    # (as for poisson_loss itself, in test_explicit.py); the numbers are exact
    @pytest.mark.filterwarnings(
        "ignore:divide by zero encountered in log:RuntimeWarning"
    )
    @pytest.mark.filterwarnings(
        "ignore:divide by zero encountered in divide:RuntimeWarning"
    )
    @pytest.mark.parametrize(
        ("mask_dtype", "dtype_name", "reduction"),
        [("bool", "float32", "mean"), ("float64", "float64", "sum")],
    )
    def test_masked_out_non_finite(
        self, xp: ModuleType, mask_dtype: str, dtype_name: str, reduction: str
    ) -> None:
        super().test_masked_out_non_finite(xp, mask_dtype, dtype_name, reduction)

    @pytest.mark.parametrize(
        ("case", "masked", "dtype_name", "reduction"),
        [
            ("0d", False, "float32", "mean"),
            ("2d", True, "float64", "mean"),
            ("first-B1", True, "float32", "sum"),
            ("second-B1", False, "float64", "sum"),
        ],
    )
    def test_log_input(
        self, xp: ModuleType, case: str, masked: bool, dtype_name: str, reduction: str
    ) -> None:
        # expected: finite differences of Spotlight's formula in float64 with the
        # prediction a log-rate x: L = e^x - y·x
        options = {"log_input": True}
        dtype = support.dtype_of(xp, dtype_name)
        args, values = self.inputs(xp, dtype, case, seed=15, options=options)
        mask_np = FLOAT_WEIGHTS if masked else None
        mask = mask_of(xp, mask_np, "float64")
        expected = reference(
            self.loss, *values, mask_np, reduction=reduction, options=options
        )
        self.check(xp, args, mask, expected, reduction=reduction, options=options)

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: y = (0, 1, 3). At the rate ŷ = 1: L = 1 - y·log 1 = 1 each, and the
        # gradient (1 - y/ŷ)/N = (1, 0, -2)/3. With log_input at x = 0: L = e^0 - y·0
        # = 1 each, and the gradient (e^0 - y)/N = (1, 0, -2)/3 too
        dtype = support.dtype_of(xp, dtype_name)
        y = support.asarray(xp, [0, 1, 3], xp.int64)
        expected = (1.0, ([1 / 3, 0.0, -2 / 3],))
        for log_input, prediction in ((False, 1.0), (True, 0.0)):
            y_hat = support.asarray(xp, [prediction] * 3, dtype)
            self.check(
                xp,
                [y, y_hat],
                None,
                expected,
                reduction="mean",
                options={"log_input": log_input},
            )

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_extreme_rates_stay_finite(self, xp: ModuleType, dtype_name: str) -> None:
        # rates up to 1e4, and log-rates from -1e4 (e^x underflows to 0) to 80
        # (e^80 ≈ 5.5e34, within float32)
        y = np.array([0.0, 1.0, 3.0, 2.0])
        # by hand: dL/dŷ = 1 - y/ŷ; with log_input, dL/dx = e^x - y
        _extreme_check(
            self,
            xp,
            y,
            np.array([1e4, 1e4, 100.0, 80.0]),
            {},
            dtype_name,
            lambda y, rate: (1.0 - y / rate,),
        )
        _extreme_check(
            self,
            xp,
            y,
            np.array([-1e4, -100.0, 0.0, 80.0]),
            {"log_input": True},
            dtype_name,
            lambda y, x: (np.exp(x) - y,),
        )

    @pytest.mark.parametrize("log_input", [1, 0, "True", None])
    def test_refuses_log_input_not_a_bool(
        self, xp: ModuleType, log_input: object
    ) -> None:
        args, _ = self.inputs(xp, xp.float32)
        with pytest.raises(
            TypeError,
            match=rf"log_input must be True or False, got {type(log_input).__name__} ",
        ):
            self.value_and_grad(*args, log_input=log_input)


class TestLogisticValueAndGrad(_ExplicitContract):
    loss = LOGISTIC
    poison = (1, math.nan)  # a NaN logit: L = NaN

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: at x = 0 each L = log1p(e^0) = ln 2, whatever y; the gradient
        # (σ(0) - clip(y, 0, 1))/N for y = (1, -1, 0) is (-1/2, 1/2, 1/2)/3
        dtype = support.dtype_of(xp, dtype_name)
        y = support.asarray(xp, [1.0, -1.0, 0.0], dtype)
        x = support.asarray(xp, [0.0, 0.0, 0.0], dtype)
        self.check(
            xp,
            [y, x],
            None,
            (math.log(2.0), ([-1 / 6, 1 / 6, 1 / 6],)),
            reduction="mean",
        )

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_extreme_logits_stay_finite(self, xp: ModuleType, dtype_name: str) -> None:
        # logits of ±1e4, ±100, ±80 against each label: L up to 1e4, no overflow of e^|x|
        y = np.array([1.0, -1.0, 0.0, 1.0, -1.0, 1.0, -1.0, 0.0])
        # by hand: dL/dx = σ(x) - clip(y, 0, 1)
        _extreme_check(
            self,
            xp,
            y,
            EXTREMES[[0, 0, 1, 1, 2, 3, 4, 5]],
            {},
            dtype_name,
            lambda y, x: (sigmoid64(x) - np.clip(y, 0.0, 1.0),),
        )

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_tails_elementwise(self, xp: ModuleType, dtype_name: str) -> None:
        # each label against logits of both signs: L = log1p(e^-|x|), tiny, where
        # the label is right, and about |x| where it is wrong
        y = np.array([1.0, 1.0, 1.0, -1.0, 0.0, -1.0])
        x = TAILS

        # by hand: the reference's own stable form (support.ref_logistic), and
        # dL/dx = σ(x) - z, which is -σ(-x) for z = 1, σ(x) for z = 0
        def derivatives(y: np.ndarray, x: np.ndarray) -> Gradients:
            z = np.clip(y, 0.0, 1.0)
            return ((1.0 - z) * sigmoid64(x) - z * sigmoid64(-x),)

        # PyTorch's value is ATen's binary cross-entropy with logits, as in
        # torch.nn.functional: (1 - z)·x - log σ(x), which for z = 0 and x < 0
        # cancels to within an ulp of x (absolute), not of the tiny loss
        ulp_of_x = float(np.finfo(dtype_name).eps) * float(np.max(np.abs(x)))
        value_atol = ulp_of_x if support.backend_of(xp) == "torch" else 0.0
        _tail_check(
            self,
            xp,
            y,
            x,
            dtype_name,
            support.ref_logistic,
            derivatives,
            value_atol=value_atol,
        )


# --- value_and_grad itself -------------------------------------------------------------


class TestValueAndGradFunction:
    """The function ``value_and_grad`` makes: its signature, name and refusals."""

    @pytest.mark.parametrize("loss", LOSSES, ids=[loss.name for loss in LOSSES])
    def test_signature_and_name(self, loss: Loss) -> None:
        function = getattr(al, loss.name)
        made = value_and_grad(function)
        assert (
            inspect.signature(made).parameters == inspect.signature(function).parameters
        )
        assert made.__name__ == f"{loss.name}_value_and_grad"
        assert loss.name in made.__doc__

    @pytest.mark.parametrize(
        "not_a_loss",
        [
            pytest.param(lambda p, n: p - n, id="lambda"),
            pytest.param(functools.partial(al.bpr_loss), id="partial"),
            pytest.param(value_and_grad, id="value_and_grad"),
            pytest.param(bpr_loss_value_and_grad, id="a-made-function"),
            pytest.param("bpr_loss", id="name"),
            pytest.param(None, id="None"),
        ],
    )
    def test_refuses_what_is_not_a_loss(self, not_a_loss: Any) -> None:
        with pytest.raises(
            TypeError,
            match=r"loss must be one of the losses of arraylosses \(adaptive_hinge_loss, "
            r"bpr_loss, hinge_loss, logistic_loss, pointwise_loss, poisson_loss, "
            r"regression_loss\), got",
        ):
            value_and_grad(not_a_loss)


# --- program transformations -------------------------------------------------------------


class Case(NamedTuple):
    id: str
    loss: Loss
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)


CASES = [
    Case("pointwise", POINTWISE),
    Case("bpr", BPR),
    Case("hinge-margin", HINGE, (("margin", 0.5),)),
    Case("adaptive_hinge", ADAPTIVE_HINGE),
    Case("regression", REGRESSION),
    Case("poisson", POISSON),
    Case("poisson-log", POISSON, (("log_input", True),)),
    Case("logistic", LOGISTIC),
]
CASE_IDS = [case.id for case in CASES]


def _skip_unless(xp: ModuleType, backend: str, what: str) -> None:
    name = support.backend_of(xp)
    if name != backend:
        pytest.skip(f"{what} applies to {backend} arrays only, not {name}")


def _unknown_length(xp: ModuleType, keep: np.ndarray, *arrays: np.ndarray) -> list[Any]:
    """Dask arrays of ``arrays``, in chunks of 4, with the elements ``keep`` selects
    along their last axis, whose length Dask then does not know until computed."""
    import dask.array as da

    select = xp.asarray(da.from_array(keep, chunks=4))
    selected = [
        xp.asarray(da.from_array(array, chunks=4))[..., select] for array in arrays
    ]
    assert all(math.isnan(array.shape[-1]) for array in selected)
    return selected


def _case_values(case: Case, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # (B, 1) first argument against a (B, T) second: a broadcast gradient too
    second_shape = (K, B, T) if case.loss.negatives_axis else (B, T)
    return draw(
        case.loss, np.random.default_rng(seed), (B, 1), second_shape, case.kwargs
    )


class TestTransforms:
    """``jax.jit``, Dask's laziness and ``torch.compile``, applied explicitly to the
    functions ``value_and_grad`` makes from the untagged losses."""

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_jax_jit_matches_eager(self, xp: ModuleType, case: Case) -> None:
        _skip_unless(xp, "jax", "jax.jit")
        import jax

        function = value_and_grad(getattr(al, case.loss.name))
        jitted = jax.jit(function, static_argnames=("reduction", *case.kwargs))
        args, values = build(xp, xp.float32, *_case_values(case, 16))
        mask = support.asarray(xp, FLOAT_WEIGHTS, xp.float32)
        reduction = "mean"  # the masked mean: the reduction with the most steps

        value, gradients = split(
            case.loss, jitted(*args, mask, reduction=reduction, **case.kwargs)
        )
        eager_value, eager_gradients = split(
            case.loss, function(*args, mask, reduction=reduction, **case.kwargs)
        )

        # expected: the eager call on the same arrays (a consistency check) ...
        for jit_result, eager_result in zip(
            (value, *gradients), (eager_value, *eager_gradients), strict=True
        ):
            support.assert_close(
                jit_result,
                support.to_numpy(eager_result),
                xp=xp,
                like=eager_result,
                shape=tuple(eager_result.shape),
                rtol=SAME_RTOL["float32"],
                atol=SAME_RTOL["float32"] * 1e-3,
            )
        # ... and finite differences of Spotlight's formula in float64
        expected_value, expected_gradients = reference(
            case.loss, *values, FLOAT_WEIGHTS, reduction=reduction, options=case.kwargs
        )
        support.assert_close(value, expected_value, xp=xp, like=args[1])
        assert_gradients(case.loss, xp, args, gradients, expected_gradients)

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_dask_call_computes_nothing(self, xp: ModuleType, case: Case) -> None:
        _skip_unless(xp, "dask", "dask laziness")
        import dask.array as da

        values = _case_values(case, 17)
        args = [xp.asarray(da.from_array(v, chunks=2)) for v in values]
        mask = xp.asarray(da.from_array(FLOAT_WEIGHTS, chunks=2))
        function = value_and_grad(getattr(al, case.loss.name))
        results = {}
        with support.computing_nothing():
            for reduction in ("mean", "sum"):
                for weights in (None, mask):
                    results[reduction, weights is not None] = split(
                        case.loss,
                        function(*args, weights, reduction=reduction, **case.kwargs),
                    )
            # the scheduler does refuse: this test could fail
            with pytest.raises(AssertionError, match="computed part"):
                results["mean", True][0].compute()

        for (reduction, masked), (value, gradients) in results.items():
            # expected: finite differences of Spotlight's formula in float64,
            # computed here with the default scheduler
            expected_value, expected_gradients = reference(
                case.loss,
                *values,
                FLOAT_WEIGHTS if masked else None,
                reduction=reduction,
                options=case.kwargs,
            )
            support.assert_close(value, expected_value, xp=xp, like=args[1])
            assert_gradients(
                case.loss,
                xp,
                args,
                gradients,
                expected_gradients,
                rtol=FD_RTOL,
                atol=FD_ATOL,
            )

    @pytest.mark.parametrize("case", ["all-false-mask", "empty-selection"])
    @pytest.mark.parametrize("loss", LOSSES, ids=[loss.name for loss in LOSSES])
    def test_dask_unknown_sizes_with_nothing_to_average(
        self, xp: ModuleType, loss: Loss, case: str
    ) -> None:
        # a mean under a mask of unknown length that is all False, or over a selection
        # that turns out empty, is 0 with gradients of 0 (the masks guide: not NaN), as for
        # arrays of known size. expected: 0 everywhere, by that rule
        _skip_unless(xp, "dask", "dask laziness")
        negatives = (3,) if loss.negatives_axis else ()
        rng = np.random.default_rng(19)
        first, second = draw(loss, rng, (12,), (*negatives, 12), {})
        keep = np.full(12, case == "all-false-mask")
        args = _unknown_length(xp, keep, first, second)
        mask = args[0] > 1e9 if case == "all-false-mask" else None
        with support.computing_nothing():
            value, gradients = split(
                loss, value_and_grad(getattr(al, loss.name))(*args, mask)
            )
        support.assert_close(value, 0.0, xp=xp, like=args[1])
        for index, gradient in zip(loss.wrt, gradients, strict=True):
            computed = support.to_numpy(gradient)
            kept = (first, second)[index][..., keep]
            np.testing.assert_array_equal(computed, np.zeros_like(kept))

    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
    @pytest.mark.parametrize("reduction", ["mean", "sum"])
    @pytest.mark.parametrize("loss", LOSSES, ids=[loss.name for loss in LOSSES])
    def test_dask_unknown_chunk_sizes(
        self, xp: ModuleType, loss: Loss, reduction: str, masked: bool
    ) -> None:
        # boolean selection leaves Dask arrays whose length is unknown (NaN) until
        # computed: the mean's divisor must then be counted lazily, not refused, and
        # the adaptive hinge's maximum put back along its negatives axis without a
        # reshape, which needs every length
        _skip_unless(xp, "dask", "dask laziness")
        negatives = (3,) if loss.negatives_axis else ()
        rng = np.random.default_rng(18)
        first, second = draw(loss, rng, (12,), (*negatives, 12), {})
        weights = rng.uniform(0.5, 2.0, 12)
        keep = rng.permutation(12) < 7
        first_d, second_d, weights_d = _unknown_length(xp, keep, first, second, weights)
        function = value_and_grad(getattr(al, loss.name))
        with support.computing_nothing():
            value, gradients = split(
                loss,
                function(
                    first_d,
                    second_d,
                    weights_d if masked else None,
                    reduction=reduction,
                ),
            )
        # expected: finite differences of Spotlight's formula in float64 on the kept
        # elements
        expected_value, expected_gradients = reference(
            loss,
            first[keep],
            second[..., keep],
            weights[keep] if masked else None,
            reduction=reduction,
        )
        support.assert_close(value, expected_value, xp=xp, like=second_d)
        for gradient, wanted in zip(gradients, expected_gradients, strict=True):
            # a length unknown until computed: namespace and dtype, then the numbers
            assert array_api_compat.array_namespace(gradient) is xp
            assert gradient.dtype == second_d.dtype
            assert math.isnan(gradient.shape[-1])
            np.testing.assert_allclose(
                support.to_numpy(gradient), wanted, rtol=FD_RTOL, atol=FD_ATOL
            )

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_torch_compile_fullgraph(self, xp: ModuleType, case: Case) -> None:
        _skip_unless(xp, "torch", "torch.compile")
        import torch

        args, values = build(xp, xp.float32, *_case_values(case, 19))
        mask = support.asarray(xp, FLOAT_WEIGHTS, xp.float32)
        function = value_and_grad(getattr(al, case.loss.name))
        eager = split(case.loss, function(*args, mask, reduction="sum", **case.kwargs))
        torch._dynamo.reset()
        compiled = torch.compile(function, fullgraph=True, backend="aot_eager")

        value, gradients = split(
            case.loss, compiled(*args, mask, reduction="sum", **case.kwargs)
        )

        # expected: finite differences of Spotlight's formula in float64, and the
        # eager call (a consistency check)
        expected_value, expected_gradients = reference(
            case.loss, *values, FLOAT_WEIGHTS, reduction="sum", options=case.kwargs
        )
        support.assert_close(value, expected_value, xp=xp, like=args[1])
        support.assert_close(value, support.to_numpy(eager[0]), xp=xp, like=args[1])
        for index, gradient, wanted, again in zip(
            case.loss.wrt, gradients, expected_gradients, eager[1], strict=True
        ):
            shape = tuple(args[index].shape)
            support.assert_close(gradient, wanted, xp=xp, like=args[index], shape=shape)
            support.assert_close(
                gradient, support.to_numpy(again), xp=xp, like=args[index], shape=shape
            )
