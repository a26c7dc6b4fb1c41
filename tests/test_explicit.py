"""Values, dtypes, masks, reductions and refusals of the explicit-feedback losses.

One class per loss: :class:`TestRegressionLoss`, :class:`TestPoissonLoss` and
:class:`TestLogisticLoss`. The tests every explicit loss shares are written once,
in :class:`_ExplicitLossContract`, and each class adds its loss's specifics.
Each test says where its expected values come from: Spotlight's formulas in
float64 (``support.ref_*``, ``support.ref_reduce``) or a hand calculation.

Gradients, jit/vmap/compile, half precision and property-based tests live in
other modules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import support
from array_api_extra.testing import lazy_xp_function

import arraylosses
from arraylosses import logistic_loss, poisson_loss, regression_loss

# On JAX every call below runs under jax.jit; on Dask it must compute nothing.
lazy_xp_function(regression_loss)
lazy_xp_function(poisson_loss)
lazy_xp_function(logistic_loss)

Array = Any

# --- module-level data ---------------------------------------------------------------

DTYPES = ("float32", "float64")
REDUCTIONS = ("mean", "sum", "none")
# for cases where 'sum' tests nothing that 'mean' and 'none' don't (it never counts
# weights): this keeps the JAX run short, as every case jit-compiles afresh
MEAN_AND_NONE = ("mean", "none")
OBSERVED_DTYPES = ("bool", "int8", "int32", "int64", "float32", "float64")

B, T = 3, 4  # (batch, sequence)

# id: (observed shape, predicted shape, shape of the elementwise loss)
BROADCASTS = {
    "observed_rows": ((B, 1), (B, T), (B, T)),
    "predicted_rows": ((B, T), (B, 1), (B, T)),
    "observed_sequence": ((T,), (B, T), (B, T)),
    "observed_scalar": ((), (T,), (T,)),
}

# id: (mask values, mask dtype name), against a (B, T) loss
MASKS = {
    "bool": (
        np.array(
            [
                [True, False, True, True],
                [False, False, True, False],
                [True, True, True, False],
            ]
        ),
        "bool",
    ),
    "int_weights": (np.array([[1, 0, 2, 1], [0, 3, 0, 1], [2, 0, 0, 1]]), "int32"),
    "float_weights": (
        np.array([[0.5, 0.0, 1.5, 1.0], [0.0, 0.25, 2.0, 0.0], [1.0, 0.75, 0.0, 0.5]]),
        "float64",
    ),
    # (B, 1) against (B, T)
    "bool_rows": (np.array([[True], [False], [True]]), "bool"),
    # (T,) against (B, T)
    "float_sequence": (np.array([0.0, 1.0, 2.5, 0.5]), "float32"),
}

# id: (all-zero mask values, mask dtype name), against a (B, T) loss
ZERO_MASKS = {
    "bool": (np.zeros((B, T), dtype=bool), "bool"),
    "int": (np.zeros((B, T), dtype=np.int64), "int32"),
    "float_rows": (np.zeros((B, 1)), "float64"),  # (B, 1) against (B, T)
}

# logistic_loss: the same observations written as ±1, as 0/1 and as bool
LOGISTIC_ENCODINGS = {
    "plus_minus_one_int": (np.array([1, -1, 1, -1, 1]), "int32"),
    "plus_minus_one_float": (np.array([1.0, -1.0, 1.0, -1.0, 1.0]), "float64"),
    "zero_one_int": (np.array([1, 0, 1, 0, 1]), "int8"),
    "bool": (np.array([True, False, True, False, True]), "bool"),
}

# id: (observed shape, predicted shape, the broadcast shape they would give)
OUTER_PRODUCTS = {
    "vector_against_column": ((3,), (3, 1), (3, 3)),
    "column_against_row": ((3, 1), (1, 4), (3, 4)),
}

# id: (observed shape, predicted shape)
MISMATCHED_SHAPES = {
    "lengths": ((3,), (4,)),
    "transposed": ((2, 3), (3, 2)),
}

# id: (mask shape), against a (3,) loss
BAD_MASK_SHAPES = {
    "too_long": (4,),
    "broadcasts_beyond_loss": (2, 3),
}


# --- helpers -------------------------------------------------------------------------


def reduced_shape(shape: tuple[int, ...], reduction: str) -> tuple[int, ...]:
    """Shape of the result of a loss whose elementwise loss has ``shape``."""
    return shape if reduction == "none" else ()


def as_float64(array: Array) -> np.ndarray:
    """The values ``array`` really holds (after rounding to its dtype), in float64."""
    return np.asarray(support.to_numpy(array), dtype=np.float64)


# --- the contract every explicit loss shares -----------------------------------------


class _ExplicitLossContract:
    """Tests common to the explicit losses; not collected itself (no Test prefix).

    A subclass gives ``loss`` (calling the tagged module global, looked up at call
    time so that the conftest's JAX/Dask patching applies), ``reference`` (the
    float64 Spotlight formula from support) and value generators for its inputs.
    """

    loss: Callable[..., Array]
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray]

    @staticmethod
    def observed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def predicted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    # -- values against Spotlight's formula ---------------------------------------

    def check_against_reference(
        self,
        xp: ModuleType,
        dtype_name: str,
        reduction: str,
        observed_shape: tuple[int, ...],
        predicted_shape: tuple[int, ...],
        loss_shape: tuple[int, ...],
        seed: int,
    ) -> None:
        rng = np.random.default_rng(seed)
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, self.observed(rng, observed_shape), dtype)
        predicted = support.asarray(xp, self.predicted(rng, predicted_shape), dtype)

        result = self.loss(observed, predicted, reduction=reduction)

        # expected: Spotlight's formula in float64 (support.ref_*), on the rounded inputs
        elementwise = self.reference(as_float64(observed), as_float64(predicted))
        expected = support.ref_reduce(elementwise, reduction=reduction)
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=predicted,
            shape=reduced_shape(loss_shape, reduction),
        )

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_scalar(self, xp: ModuleType, dtype_name: str, reduction: str) -> None:
        self.check_against_reference(xp, dtype_name, reduction, (), (), (), seed=0)

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_one_d(self, xp: ModuleType, dtype_name: str, reduction: str) -> None:
        self.check_against_reference(
            xp, dtype_name, reduction, (7,), (7,), (7,), seed=1
        )

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_large(self, xp: ModuleType, reduction: str) -> None:
        # 40,000 elements: PyTorch computes the logistic loss in place from 2**15
        # elements without autograd, in a formula of its own
        self.check_against_reference(
            xp, "float32", reduction, (40_000,), (40_000,), (40_000,), seed=3
        )

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_two_d(self, xp: ModuleType, dtype_name: str, reduction: str) -> None:
        # (batch, sequence)
        self.check_against_reference(
            xp, dtype_name, reduction, (B, T), (B, T), (B, T), seed=2
        )

    @pytest.mark.parametrize("shapes", BROADCASTS.values(), ids=BROADCASTS.keys())
    @pytest.mark.parametrize("reduction", MEAN_AND_NONE)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_broadcast(
        self,
        xp: ModuleType,
        dtype_name: str,
        reduction: str,
        shapes: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    ) -> None:
        self.check_against_reference(xp, dtype_name, reduction, *shapes, seed=3)

    # -- dtypes ---------------------------------------------------------------------

    @pytest.mark.parametrize("observed_dtype_name", OBSERVED_DTYPES)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_observed_dtype_takes_the_predictions_dtype(
        self, xp: ModuleType, dtype_name: str, observed_dtype_name: str
    ) -> None:
        # observed ratings of any real dtype are converted to the predictions' dtype,
        # which is the result's dtype even when observed is the wider float64
        rng = np.random.default_rng(4)
        dtype = support.dtype_of(xp, dtype_name)
        observed_dtype = support.dtype_of(xp, observed_dtype_name)
        values = self.observed(rng, (B, T))
        if observed_dtype_name == "bool":
            values = rng.integers(0, 2, size=(B, T)).astype(bool)
        observed = support.asarray(xp, values, observed_dtype)
        predicted = support.asarray(xp, self.predicted(rng, (B, T)), dtype)

        result = self.loss(observed, predicted, reduction="none")

        # expected: Spotlight's formula in float64 (support.ref_*); the observed
        # values are small integers, exact in every dtype
        expected = self.reference(values.astype(np.float64), as_float64(predicted))
        support.assert_close(result, expected, xp=xp, like=predicted, shape=(B, T))

    # -- masks ----------------------------------------------------------------------

    @pytest.mark.parametrize("mask_case", MASKS.values(), ids=MASKS.keys())
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_mask(
        self,
        xp: ModuleType,
        dtype_name: str,
        reduction: str,
        mask_case: tuple[np.ndarray, str],
    ) -> None:
        rng = np.random.default_rng(5)
        dtype = support.dtype_of(xp, dtype_name)
        mask_values, mask_dtype_name = mask_case
        observed = support.asarray(xp, self.observed(rng, (B, T)), dtype)
        predicted = support.asarray(xp, self.predicted(rng, (B, T)), dtype)
        mask = support.asarray(xp, mask_values, support.dtype_of(xp, mask_dtype_name))

        result = self.loss(observed, predicted, mask, reduction=reduction)

        # expected: Spotlight's masked mean of its formula, in float64
        # (support.ref_reduce: sum(L·w) / sum(w), w broadcast to L's shape)
        elementwise = self.reference(as_float64(observed), as_float64(predicted))
        expected = support.ref_reduce(elementwise, mask_values, reduction)
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=predicted,
            shape=reduced_shape((B, T), reduction),
        )

    @pytest.mark.parametrize("mask_case", ZERO_MASKS.values(), ids=ZERO_MASKS.keys())
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_all_zero_mask_gives_exactly_zero(
        self,
        xp: ModuleType,
        dtype_name: str,
        reduction: str,
        mask_case: tuple[np.ndarray, str],
    ) -> None:
        rng = np.random.default_rng(6)
        dtype = support.dtype_of(xp, dtype_name)
        mask_values, mask_dtype_name = mask_case
        observed = support.asarray(xp, self.observed(rng, (B, T)), dtype)
        predicted = support.asarray(xp, self.predicted(rng, (B, T)), dtype)
        mask = support.asarray(xp, mask_values, support.dtype_of(xp, mask_dtype_name))

        result = self.loss(observed, predicted, mask, reduction=reduction)

        # by hand: nothing is weighted, so every reduction is exactly 0
        # (Spotlight's masked mean is 0 / 0 = NaN here)
        support.assert_close(
            result,
            np.zeros(reduced_shape((B, T), reduction)),
            xp=xp,
            like=predicted,
            shape=reduced_shape((B, T), reduction),
            rtol=0,
            atol=0,
        )

    @pytest.mark.parametrize("mask_dtype_name", ["bool", "float64"])
    @pytest.mark.parametrize("reduction", MEAN_AND_NONE)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_masked_out_nan_contributes_zero(
        self, xp: ModuleType, dtype_name: str, reduction: str, mask_dtype_name: str
    ) -> None:
        rng = np.random.default_rng(7)
        dtype = support.dtype_of(xp, dtype_name)
        observed_values = self.observed(rng, (4,))
        predicted_values = self.predicted(rng, (4,))
        mask_values = np.array([0, 1, 1, 1])
        with_nan = predicted_values.copy()
        with_nan[0] = np.nan
        observed = support.asarray(xp, observed_values, dtype)
        predicted = support.asarray(xp, with_nan, dtype)
        mask = support.asarray(xp, mask_values, support.dtype_of(xp, mask_dtype_name))

        result = self.loss(observed, predicted, mask, reduction=reduction)

        # expected: Spotlight's formula and masked mean in float64 on the finite
        # predictions; the masked-out NaN must contribute exactly 0 (Spotlight: NaN)
        finite = support.asarray(xp, predicted_values, dtype)
        elementwise = self.reference(as_float64(observed), as_float64(finite))
        expected = support.ref_reduce(elementwise, mask_values, reduction)
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=predicted,
            shape=reduced_shape((4,), reduction),
        )

    @pytest.mark.parametrize("mask_dtype_name", ["bool", "float64"])
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_masked_out_nan_of_a_0d_call_contributes_zero(
        self, xp: ModuleType, reduction: str, mask_dtype_name: str
    ) -> None:
        # a 0-d loss takes paths of its own (NumPy masks a scalar's bits). expected:
        # by hand, exactly +0.0 for every reduction: the one element is masked out,
        # and the mean over an all-zero mask is 0 (Spotlight: NaN)
        rng = np.random.default_rng(8)
        observed = support.asarray(xp, self.observed(rng, ()), xp.float32)
        predicted = support.asarray(xp, np.asarray(np.nan), xp.float32)
        mask = support.asarray(xp, np.asarray(0), support.dtype_of(xp, mask_dtype_name))
        result = self.loss(observed, predicted, mask, reduction=reduction)
        support.assert_close(
            result, np.float64(0.0), xp=xp, like=predicted, rtol=0, atol=0
        )
        assert not np.signbit(support.to_numpy(result))

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_empty(self, xp: ModuleType, reduction: str) -> None:
        # by hand: no elements, so "none" is empty and the sum and the mean over no
        # elements are 0 (PyTorch's own fused losses give NaN for the mean)
        observed = support.asarray(xp, np.zeros(0), xp.float32)
        predicted = support.asarray(xp, np.ones(0), xp.float32)
        shape = reduced_shape((0,), reduction)
        result = self.loss(observed, predicted, reduction=reduction)
        support.assert_close(
            result, np.zeros(shape), xp=xp, like=predicted, shape=shape, rtol=0, atol=0
        )

    # -- inputs are left alone ------------------------------------------------------

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_inputs_unchanged(self, xp: ModuleType, dtype_name: str) -> None:
        rng = np.random.default_rng(8)
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, self.observed(rng, (B, T)), xp.int32)
        predicted = support.asarray(xp, self.predicted(rng, (B, T)), dtype)
        mask = support.asarray(xp, MASKS["int_weights"][0], xp.int32)
        before = [support.to_numpy(a).copy() for a in (observed, predicted, mask)]

        self.loss(observed, predicted, mask, reduction="none")

        for name, array, copy in zip(
            ("observed", "predicted", "mask"),
            (observed, predicted, mask),
            before,
            strict=True,
        ):
            assert array.dtype == (dtype if name == "predicted" else xp.int32), name
            np.testing.assert_array_equal(support.to_numpy(array), copy, err_msg=name)

    # -- refusals -------------------------------------------------------------------

    @pytest.mark.parametrize("bad_dtype_name", ["int32", "int64", "bool"])
    def test_refuses_non_floating_predictions(
        self, xp: ModuleType, bad_dtype_name: str
    ) -> None:
        observed = support.asarray(xp, [1.0, 0.0, 1.0], xp.float32)
        predicted = support.asarray(xp, [1, 0, 1], support.dtype_of(xp, bad_dtype_name))
        with pytest.raises(
            TypeError,
            match=rf"predicted_ratings must have a real floating dtype, got .*{bad_dtype_name}",
        ):
            self.loss(observed, predicted)

    @pytest.mark.parametrize("complex_dtype_name", ["complex64", "complex128"])
    def test_refuses_complex_observed(
        self, xp: ModuleType, complex_dtype_name: str
    ) -> None:
        complex_dtype = getattr(xp, complex_dtype_name, None)
        if complex_dtype is None:
            pytest.skip(f"{support.backend_of(xp)} has no {complex_dtype_name}")
        observed = support.asarray(xp, [1.0, 0.0, 1.0], complex_dtype)
        predicted = support.asarray(xp, [0.5, 1.5, 2.5], xp.float64)
        with pytest.raises(
            TypeError,
            match=rf"observed_ratings must have .*, got .*{complex_dtype_name}",
        ):
            self.loss(observed, predicted)

    @pytest.mark.parametrize(
        "shapes", MISMATCHED_SHAPES.values(), ids=MISMATCHED_SHAPES.keys()
    )
    def test_refuses_shapes_that_do_not_broadcast(
        self, xp: ModuleType, shapes: tuple[tuple[int, ...], tuple[int, ...]]
    ) -> None:
        observed_shape, predicted_shape = shapes
        observed = support.asarray(xp, np.ones(observed_shape), xp.float32)
        predicted = support.asarray(xp, np.ones(predicted_shape), xp.float32)
        message = (
            f"observed_ratings with shape {observed_shape} and predicted_ratings with "
            f"shape {predicted_shape} do not broadcast"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            self.loss(observed, predicted)

    @pytest.mark.parametrize(
        "shapes", OUTER_PRODUCTS.values(), ids=OUTER_PRODUCTS.keys()
    )
    def test_refuses_outer_product(
        self,
        xp: ModuleType,
        shapes: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    ) -> None:
        observed_shape, predicted_shape, outer_shape = shapes
        observed = support.asarray(xp, np.ones(observed_shape), xp.float32)
        predicted = support.asarray(xp, np.ones(predicted_shape), xp.float32)
        message = (
            f"observed_ratings with shape {observed_shape} and predicted_ratings with "
            f"shape {predicted_shape} broadcast to {outer_shape}, an outer product"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            self.loss(observed, predicted)

    @pytest.mark.parametrize(
        "mask_shape", BAD_MASK_SHAPES.values(), ids=BAD_MASK_SHAPES.keys()
    )
    def test_refuses_bad_mask_shape(
        self, xp: ModuleType, mask_shape: tuple[int, ...]
    ) -> None:
        observed = support.asarray(xp, [1.0, 0.0, 1.0], xp.float32)
        predicted = support.asarray(xp, [0.5, 1.5, 2.5], xp.float32)
        mask = support.asarray(xp, np.ones(mask_shape, dtype=bool), xp.bool)
        message = (
            f"mask with shape {mask_shape} does not broadcast to the shape of the "
            "elementwise loss, (3,)"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            self.loss(observed, predicted, mask)

    @pytest.mark.parametrize(("reduction", "type_name"), support.REFUSED_REDUCTIONS)
    def test_refuses_unknown_reduction(
        self, xp: ModuleType, reduction: object, type_name: str
    ) -> None:
        observed = support.asarray(xp, [1.0, 0.0, 1.0], xp.float32)
        predicted = support.asarray(xp, [0.5, 1.5, 2.5], xp.float32)
        support.assert_reduction_refused(
            lambda reduction: self.loss(observed, predicted, reduction=reduction),
            reduction,
            type_name,
        )

    @pytest.mark.parametrize(
        "argument", ["observed_ratings", "predicted_ratings", "mask"]
    )
    @pytest.mark.parametrize("value", [[1.0, 0.0, 1.0], 1.0], ids=["list", "float"])
    def test_refuses_non_arrays(
        self, xp: ModuleType, argument: str, value: object
    ) -> None:
        arguments = {
            "observed_ratings": support.asarray(xp, [1.0, 0.0, 1.0], xp.float32),
            "predicted_ratings": support.asarray(xp, [0.5, 1.5, 2.5], xp.float32),
            "mask": support.asarray(xp, [True, False, True], xp.bool),
        }
        arguments[argument] = value
        with pytest.raises(TypeError, match=rf"{argument} must be an array"):
            self.loss(**arguments)


# --- regression_loss -----------------------------------------------------------------


class TestRegressionLoss(_ExplicitLossContract):
    reference = staticmethod(support.ref_regression)

    @staticmethod
    def loss(*args: Any, **kwargs: Any) -> Array:
        return regression_loss(*args, **kwargs)

    @staticmethod
    def observed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.integers(1, 6, size=shape)  # star ratings 1..5

    @staticmethod
    def predicted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(3.0, 1.5, size=shape)

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str, reduction: str) -> None:
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, [5, 3, 1], xp.int64)
        predicted = support.asarray(xp, [4.5, 3.0, 2.0], dtype)

        result = regression_loss(observed, predicted, reduction=reduction)

        # by hand: (5 - 4.5)² = 0.25, (3 - 3)² = 0, (1 - 2)² = 1; sum 1.25, mean 1.25 / 3
        expected = {"none": [0.25, 0.0, 1.0], "sum": 1.25, "mean": 1.25 / 3}[reduction]
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=predicted,
            shape=reduced_shape((3,), reduction),
        )

    @pytest.mark.parametrize("mask_dtype_name", ["bool", "int32", "float64"])
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_masked_out_inf_contributes_zero(
        self, xp: ModuleType, reduction: str, mask_dtype_name: str
    ) -> None:
        observed = support.asarray(xp, [5, 3, 1], xp.int64)
        predicted = support.asarray(xp, [np.inf, 3.0, 2.0], xp.float32)
        mask = support.asarray(xp, [0, 1, 1], support.dtype_of(xp, mask_dtype_name))

        result = regression_loss(observed, predicted, mask, reduction=reduction)

        # by hand: L = (inf, 0, 1), the inf masked out: none (0, 0, 1), sum 1, mean 1 / 2
        # (Spotlight multiplies, inf·0 = NaN)
        expected = {"none": [0.0, 0.0, 1.0], "sum": 1.0, "mean": 0.5}[reduction]
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=predicted,
            shape=reduced_shape((3,), reduction),
        )


# --- poisson_loss --------------------------------------------------------------------


class TestPoissonLoss(_ExplicitLossContract):
    reference = staticmethod(support.ref_poisson)

    @staticmethod
    def loss(*args: Any, **kwargs: Any) -> Array:
        return poisson_loss(*args, **kwargs)

    @staticmethod
    def observed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.integers(0, 6, size=shape)  # counts, zeros included

    @staticmethod
    def predicted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(0.1, 4.0, size=shape)  # rates > 0

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_log_input(self, xp: ModuleType, dtype_name: str, reduction: str) -> None:
        rng = np.random.default_rng(10)
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, self.observed(rng, (B, T)), xp.int32)
        log_rate = support.asarray(xp, rng.normal(0.0, 1.5, size=(B, T)), dtype)

        result = poisson_loss(observed, log_rate, reduction=reduction, log_input=True)

        # expected: the log-rate formula e^x - y·x in float64 (support.ref_poisson)
        elementwise = support.ref_poisson(
            as_float64(observed), as_float64(log_rate), log_input=True
        )
        expected = support.ref_reduce(elementwise, reduction=reduction)
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=log_rate,
            shape=reduced_shape((B, T), reduction),
        )

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_log_input_agrees_with_rate(self, xp: ModuleType, dtype_name: str) -> None:
        rng = np.random.default_rng(11)
        dtype = support.dtype_of(xp, dtype_name)
        counts = self.observed(rng, (B, T))
        log_rate_values = rng.normal(0.0, 1.5, size=(B, T))
        observed = support.asarray(xp, counts, xp.int32)
        log_rate = support.asarray(xp, log_rate_values, dtype)
        rate = support.asarray(xp, np.exp(as_float64(log_rate)), dtype)

        from_log_rate = poisson_loss(
            observed, log_rate, reduction="none", log_input=True
        )
        from_rate = poisson_loss(observed, rate, reduction="none")

        # expected: Spotlight's rate formula ŷ - y·log(ŷ) in float64 at ŷ = e^x, which
        # both spellings must give (up to the rounding of e^x to the dtype)
        expected = support.ref_poisson(
            counts.astype(np.float64), np.exp(as_float64(log_rate))
        )
        support.assert_close(
            from_log_rate, expected, xp=xp, like=log_rate, shape=(B, T)
        )
        support.assert_close(from_rate, expected, xp=xp, like=rate, shape=(B, T))

    # A rate of 0 is outside the loss's domain, as in Spotlight: NumPy-based
    # backends warn of log(0) and of 0·inf as they compute it
    @pytest.mark.filterwarnings(
        "ignore:divide by zero encountered in log:RuntimeWarning"
    )
    @pytest.mark.filterwarnings(
        "ignore:invalid value encountered in multiply:RuntimeWarning"
    )
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_zero_count_at_zero_rate_is_nan_as_in_spotlight(
        self, xp: ModuleType, dtype_name: str
    ) -> None:
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, [0, 2], xp.int64)
        predicted = support.asarray(xp, [0.0, 1.0], dtype)

        result = poisson_loss(observed, predicted, reduction="none")

        # by hand: 0 - 0·log 0 = 0 - 0·(-inf) = NaN (Spotlight's value);
        # 1 - 2·log 1 = 1
        support.assert_close(result, [math.nan, 1.0], xp=xp, like=predicted, shape=(2,))

    # NumPy (and array-api-strict, Dask) warn of the log(0) that makes this loss inf:
    # the warning is about an impossible observation the caller really made
    @pytest.mark.filterwarnings(
        "ignore:divide by zero encountered in log:RuntimeWarning"
    )
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_positive_count_at_zero_rate_is_inf(
        self, xp: ModuleType, dtype_name: str
    ) -> None:
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, [3, 1], xp.int64)
        predicted = support.asarray(xp, [0.0, 1.0], dtype)

        result = poisson_loss(observed, predicted, reduction="none")

        # by hand: 0 - 3·log 0 = inf; 1 - 1·log 1 = 1
        support.assert_close(result, [math.inf, 1.0], xp=xp, like=predicted, shape=(2,))

    # A rate of 0 for a positive count is outside the loss's domain (rate > 0):
    # NumPy-based backends report log(0) as they compute that element, masked or
    # not; the value is exact all the same.
    @pytest.mark.filterwarnings(
        "ignore:divide by zero encountered in log:RuntimeWarning"
    )
    @pytest.mark.parametrize("mask_dtype_name", ["bool", "float64"])
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_masked_out_zero_rate_contributes_zero(
        self, xp: ModuleType, reduction: str, mask_dtype_name: str
    ) -> None:
        observed = support.asarray(xp, [3, 1], xp.int64)
        predicted = support.asarray(xp, [0.0, 1.0], xp.float32)
        mask = support.asarray(xp, [0, 1], support.dtype_of(xp, mask_dtype_name))

        result = poisson_loss(observed, predicted, mask, reduction=reduction)

        # by hand: L = (inf, 1), the inf masked out: none (0, 1), sum 1, mean 1
        # (Spotlight multiplies, inf·0 = NaN)
        expected = {"none": [0.0, 1.0], "sum": 1.0, "mean": 1.0}[reduction]
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=predicted,
            shape=reduced_shape((2,), reduction),
        )

    @pytest.mark.parametrize(
        ("log_input", "named"),
        [
            (1, "int"),
            (0, "int"),
            ("True", "str"),
            (None, "NoneType"),
            # NumPy's bool, named by its module: 'got bool' would contradict itself
            (np.True_, "numpy.bool"),
        ],
    )
    def test_refuses_log_input_not_a_bool(
        self, xp: ModuleType, log_input: object, named: str
    ) -> None:
        observed = support.asarray(xp, [1, 0, 2], xp.int32)
        predicted = support.asarray(xp, [0.5, 1.5, 2.5], xp.float32)
        with pytest.raises(
            TypeError, match=rf"log_input must be True or False, got {named} "
        ):
            poisson_loss(observed, predicted, log_input=log_input)


# --- logistic_loss -------------------------------------------------------------------


def _naive_cross_entropy(z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The binary cross-entropy -z·log σ(x) - (1 - z)·log(1 - σ(x)) of logits ``x``
    against classes ``z``, naively in float64: exact enough for moderate logits,
    and written independently of the package's stable forms."""
    sigma = 1.0 / (1.0 + np.exp(-x))
    return -z * np.log(sigma) - (1.0 - z) * np.log(1.0 - sigma)


class TestLogisticLoss(_ExplicitLossContract):
    reference = staticmethod(support.ref_logistic)

    @staticmethod
    def loss(*args: Any, **kwargs: Any) -> Array:
        return logistic_loss(*args, **kwargs)

    @staticmethod
    def observed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.choice(np.array([-1, 1]), size=shape)  # Spotlight's ±1

    @staticmethod
    def predicted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(0.0, 3.0, size=shape)  # logits

    @pytest.mark.parametrize(
        "encoding", LOGISTIC_ENCODINGS.values(), ids=LOGISTIC_ENCODINGS.keys()
    )
    @pytest.mark.parametrize("reduction", MEAN_AND_NONE)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_minus_one_and_zero_mean_negative(
        self,
        xp: ModuleType,
        dtype_name: str,
        reduction: str,
        encoding: tuple[np.ndarray, str],
    ) -> None:
        dtype = support.dtype_of(xp, dtype_name)
        values, observed_dtype_name = encoding
        observed = support.asarray(
            xp, values, support.dtype_of(xp, observed_dtype_name)
        )
        logit = support.asarray(xp, [-2.0, -0.5, 0.0, 0.5, 3.0], dtype)

        result = logistic_loss(observed, logit, reduction=reduction)

        # by hand: z = clip(y, 0, 1) = (1, 0, 1, 0, 1) in every encoding
        z = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
        elementwise = _naive_cross_entropy(z, as_float64(logit))
        expected = {"none": elementwise, "mean": elementwise.mean()}[reduction]
        support.assert_close(
            result, expected, xp=xp, like=logit, shape=reduced_shape((5,), reduction)
        )

    @pytest.mark.parametrize("reduction", MEAN_AND_NONE)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_observations_beyond_the_two_classes_are_clipped(
        self, xp: ModuleType, dtype_name: str, reduction: str
    ) -> None:
        # the contract's z = clip(y, 0, 1) where y is no class label: a rating, a
        # fraction. by hand, z = (0, 0, 0.25, 0.5, 1, 1), and the gradient with
        # respect to x of the summed loss, σ(x) - z
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, [-3.0, -0.5, 0.25, 0.5, 2.0, 7.0], dtype)
        logit = support.asarray(xp, [1.0, -1.0, 0.5, 2.0, 1.0, -0.3], dtype)

        result = logistic_loss(observed, logit, reduction=reduction)

        x = as_float64(logit)
        z = np.array([0.0, 0.0, 0.25, 0.5, 1.0, 1.0])
        elementwise = _naive_cross_entropy(z, x)
        expected = {"none": elementwise, "mean": elementwise.mean()}[reduction]
        support.assert_close(
            result, expected, xp=xp, like=logit, shape=reduced_shape((6,), reduction)
        )
        # the package's own function: this module's global is patched per backend
        _, gradient = arraylosses.value_and_grad(arraylosses.logistic_loss)(
            observed, logit, reduction="sum"
        )
        sigma = 1.0 / (1.0 + np.exp(-x))
        support.assert_close(gradient, sigma - z, xp=xp, like=logit, shape=(6,))

    @pytest.mark.parametrize(
        ("observed_shape", "logit_shape"),
        [((3, 4), (4,)), ((4,), (3, 4)), ((4,), ()), ((), (4,)), ((), ())],
        ids=["observed-wider", "logits-wider", "0-d-logit", "0-d-observed", "0-d"],
    )
    def test_each_broadcast_and_0d_form(
        self,
        xp: ModuleType,
        observed_shape: tuple[int, ...],
        logit_shape: tuple[int, ...],
    ) -> None:
        # NumPy writes this loss into buffers of its own, which 0-d logits can't be
        rng = np.random.default_rng(11)
        observed = support.asarray(xp, self.observed(rng, observed_shape), xp.float64)
        logit = support.asarray(xp, self.predicted(rng, logit_shape), xp.float64)

        result = logistic_loss(observed, logit, reduction="none")

        # expected: Spotlight's formula in float64 (support.ref_logistic), broadcast
        expected = support.ref_logistic(as_float64(observed), as_float64(logit))
        loss_shape = np.broadcast_shapes(observed_shape, logit_shape)
        support.assert_close(result, expected, xp=xp, like=logit, shape=loss_shape)

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_extreme_logits_are_finite(
        self, xp: ModuleType, dtype_name: str, reduction: str
    ) -> None:
        # filterwarnings=error: an overflow warning from NumPy fails this test
        dtype = support.dtype_of(xp, dtype_name)
        observed = support.asarray(xp, [-1, 1, 1, -1], xp.int32)
        logit = support.asarray(xp, [1e4, -1e4, 1e4, -1e4], dtype)

        result = logistic_loss(observed, logit, reduction=reduction)

        # by hand, the stable formula max(x, 0) - x·z + log1p(e^-|x|) in float64:
        # (x, y) = (1e4, -1): 1e4; (-1e4, 1): 1e4; (1e4, 1): 0; (-1e4, -1): 0
        elementwise = np.array([1e4, 1e4, 0.0, 0.0])
        expected = {
            "none": elementwise,
            "sum": elementwise.sum(),
            "mean": elementwise.mean(),
        }[reduction]
        support.assert_close(
            result, expected, xp=xp, like=logit, shape=reduced_shape((4,), reduction)
        )
