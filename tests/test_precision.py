"""Precision: half-precision inputs, and extreme inputs that must not overflow.

Contract (the backends guide): half-precision predictions (float16, and bfloat16
where the backend has it) are computed in float32 internally and the result comes
back in the input's dtype; the stable forms never overflow (no NumPy overflow
warning at |x| = 1e4 in float32; pyproject's filterwarnings = error turns any
warning into a failure).

A true loss beyond float16's range (65504) rounds to inf, as any float16 result
must; the extreme inputs below are chosen so that the true loss fits.

Expected values: Spotlight's formulas in float64 (the references in ``support.py``)
evaluated on the inputs as rounded to the half dtype, or a hand calculation where
the comment says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
import support
from array_api_extra.testing import lazy_xp_function

from arraylosses import (
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    logistic_loss,
    pointwise_loss,
    poisson_loss,
    regression_loss,
)

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

HALVES = ("float16", "bfloat16")


def _half(xp, name: str):
    """``xp``'s half dtype ``name``; skips where the backend has none.

    array-api-compat's Dask namespace does not name float16 (the standard has no
    half types), but Dask arrays hold NumPy's float16 like any NumPy dtype.
    """
    if name == "float16" and support.backend_of(xp) == "dask":
        return np.float16
    return support.dtype_of(xp, name)


class Case(NamedTuple):
    id: str
    name: str  # the function's name in this module's globals (tagged)
    reference: Callable[..., np.ndarray]  # elementwise L, Spotlight's formula
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)


CASES = {
    case.id: case
    for case in (
        Case("pointwise", "pointwise_loss", support.ref_pointwise),
        Case("bpr", "bpr_loss", support.ref_bpr),
        Case("hinge", "hinge_loss", support.ref_hinge),
        Case("adaptive_hinge", "adaptive_hinge_loss", support.ref_adaptive_hinge),
        Case("regression", "regression_loss", support.ref_regression),
        Case("poisson", "poisson_loss", support.ref_poisson),
        Case(
            "poisson-log", "poisson_loss", support.ref_poisson, (("log_input", True),)
        ),
        Case("logistic", "logistic_loss", support.ref_logistic),
    )
}


def _call(case: Case, first, second, mask=None, reduction="mean"):
    function = globals()[case.name]  # the tagged global: jitted on JAX, lazy on Dask
    return function(first, second, mask, reduction=reduction, **case.kwargs)


def _rounded(xp, values, dtype):
    """``values`` as an ``xp`` array of ``dtype``, and the rounded values in float64."""
    array = support.asarray(xp, np.asarray(values, dtype=np.float64), dtype)
    return array, support.to_numpy(array)


def _expected(case: Case, first, second, mask=None, reduction="mean"):
    # expected: Spotlight's formula in float64 (support.ref_*), reduced by ref_reduce
    return support.ref_reduce(
        case.reference(first, second, **case.kwargs), mask, reduction
    )


def _random_inputs(case: Case, rng: np.random.Generator, shape=(3, 4)):
    if case.id in {"regression", "poisson", "poisson-log"}:
        first = rng.integers(0, 5, shape).astype(np.float64)
    elif case.id == "logistic":
        first = rng.choice([-1.0, 1.0], shape)
    else:
        first = rng.normal(0.0, 2.0, shape)
    if case.id == "poisson":
        second = rng.uniform(0.1, 4.0, shape)
    elif case.id == "adaptive_hinge":
        second = rng.normal(0.0, 2.0, (3, *shape))
    else:
        second = rng.normal(0.0, 2.0, shape)
    return first, second


class TestHalfPrecisionValues:
    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
    @pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
    @pytest.mark.parametrize("dtype_name", HALVES)
    def test_result_dtype_and_values(self, xp, dtype_name, case, masked, reduction):
        dtype = _half(xp, dtype_name)
        rng = np.random.default_rng(41)
        first_np, second_np = _random_inputs(case, rng)
        first, first_np = _rounded(xp, first_np, dtype)
        second, second_np = _rounded(xp, second_np, dtype)
        mask = mask_np = None
        if masked:
            mask, mask_np = _rounded(xp, rng.uniform(0.0, 2.0, (3, 4)), dtype)

        result = _call(case, first, second, mask, reduction)

        # the half dtype comes back; the values are within the half tolerance of the
        # float64 reference on the rounded inputs
        support.assert_close(
            result,
            _expected(case, first_np, second_np, mask_np, reduction),
            xp=xp,
            like=second,
            shape=(3, 4) if reduction == "none" else (),
        )

    @pytest.mark.parametrize("dtype_name", HALVES)
    def test_integer_ratings_take_the_half_dtype(self, xp, dtype_name):
        dtype = _half(xp, dtype_name)
        observed = support.asarray(xp, np.array([5, 3, 1]), xp.int64)
        predicted, _ = _rounded(xp, [4.5, 3.0, 2.0], dtype)  # exact in both halves
        result = regression_loss(observed, predicted)
        # by hand: (0.25 + 0 + 1) / 3
        support.assert_close(result, 1.25 / 3, xp=xp, like=predicted)


class TestComputedInFloat32:
    """Cases where computing in float16 would overflow but float32 does not."""

    def test_bpr_difference_beyond_float16(self, xp):
        dtype = _half(xp, "float16")
        p, _ = _rounded(xp, [-6e4], dtype)
        n, _ = _rounded(xp, [6e4], dtype)
        # by hand: n - p = 1.2e5 overflows float16 (NumPy would warn), but in float32
        # σ(1.2e5) is 1 exactly, so the loss is 1.0 exactly
        support.assert_close(bpr_loss(p, n), 1.0, xp=xp, like=p, rtol=0, atol=0)

    def test_hinge_difference_beyond_float16(self, xp):
        dtype = _half(xp, "float16")
        p, _ = _rounded(xp, [6e4], dtype)
        n, _ = _rounded(xp, [-6e4], dtype)
        # by hand: n - p + 1 = -119999 (-inf in float16), max(., 0) = 0 exactly
        support.assert_close(hinge_loss(p, n), 0.0, xp=xp, like=p, rtol=0, atol=0)

    def test_poisson_exponential_beyond_float16(self, xp):
        dtype = _half(xp, "float16")
        observed, observed_np = _rounded(xp, [3000.0], dtype)
        log_rate, log_rate_np = _rounded(xp, [11.5], dtype)
        # e^11.5 = 98715.8 is inf in float16, yet L = e^11.5 - 3000·11.5 = 64215.8 fits
        expected = support.ref_poisson(observed_np, log_rate_np, log_input=True)
        assert 6e4 < expected[0] < 65504
        result = poisson_loss(observed, log_rate, log_input=True)
        support.assert_close(result, expected.mean(), xp=xp, like=log_rate)

    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
    def test_mean_whose_sum_is_beyond_float16(self, xp, masked):
        dtype = _half(xp, "float16")
        observed, _ = _rounded(xp, [0.0, 0.0, 0.0, 0.0], dtype)
        predicted, _ = _rounded(xp, [200.0, 200.0, 200.0, 200.0], dtype)
        mask = _rounded(xp, [1.0, 1.0, 1.0, 1.0], dtype)[0] if masked else None
        # by hand: each L = 200² = 40000; their sum 160000 overflows float16, their
        # mean 40000 does not (and is a float16 value)
        result = regression_loss(observed, predicted, mask)
        support.assert_close(result, 40000.0, xp=xp, like=predicted, rtol=0, atol=0)


# Each: case id, first and second inputs of magnitude 6e4 where the true loss fits
# float16 (|L| <= 65504), and the loss by hand. Inputs whose true loss is beyond
# 65504 (say regression with y = 6e4, ŷ = -6e4) are left out on purpose: such a loss
# rounds to inf, as any float16 result must; no computation can do better.
EXTREMES = (
    # (1 - σ(p)) + σ(n): σ(±6e4) is 1 or 0
    ("pointwise", [6e4, -6e4, 6e4], [-6e4, 6e4, 6e4], [0.0, 2.0, 1.0]),
    # 1 - σ(p - n)
    ("bpr", [-6e4, 6e4, 6e4], [6e4, -6e4, 6e4], [1.0, 0.0, 0.5]),
    # max(n - p + 1, 0)
    ("hinge", [6e4, 6e4, -6e4], [-6e4, 6e4, -6e4], [0.0, 1.0, 1.0]),
    # hinge against the larger of two negatives: -6e4 and 6e4
    ("adaptive_hinge", [6e4, 6e4], [[-6e4, 6e4], [-6e4, -6e4]], [0.0, 1.0]),
    # (y - ŷ)²
    ("regression", [6e4, -6e4], [6e4, -6e4], [0.0, 0.0]),
    # ŷ - y·log(ŷ): 6e4 - log(6e4) for a count of 1, 6e4 for a count of 0
    ("poisson", [1.0, 0.0], [6e4, 6e4], [6e4 - np.log(6e4), 6e4]),
    # e^x - y·x at x = -6e4: 0 for a count of 0, 6e4 for a count of 1
    ("poisson-log", [0.0, 1.0], [-6e4, -6e4], [0.0, 6e4]),
    # softplus(x) - x·z: 0 when the sign agrees, |x| = 6e4 when not
    ("logistic", [1.0, -1.0, 1.0, -1.0], [6e4, -6e4, -6e4, 6e4], [0.0, 0.0, 6e4, 6e4]),
)


class TestExtremeHalfInputs:
    @pytest.mark.parametrize("reduction", ["none", "mean"])
    @pytest.mark.parametrize(
        ("case_id", "first", "second", "by_hand"),
        EXTREMES,
        ids=[e[0] for e in EXTREMES],
    )
    @pytest.mark.parametrize("dtype_name", HALVES)
    def test_finite_and_right(
        self, xp, dtype_name, case_id, first, second, by_hand, reduction
    ):
        case = CASES[case_id]
        dtype = _half(xp, dtype_name)
        first, first_np = _rounded(xp, first, dtype)
        second, second_np = _rounded(xp, second, dtype)

        result = _call(case, first, second, reduction=reduction)

        assert np.all(np.isfinite(support.to_numpy(result)))
        expected = _expected(case, first_np, second_np, reduction=reduction)
        shape = (len(by_hand),) if reduction == "none" else ()
        support.assert_close(result, expected, xp=xp, like=second, shape=shape)
        # and the hand calculation on the unrounded inputs agrees within the tolerance
        by_hand = np.asarray(by_hand)
        support.assert_close(
            result,
            by_hand if reduction == "none" else by_hand.mean(),
            xp=xp,
            like=second,
            shape=shape,
        )


# Each: case id, first and second inputs at |x| = 1e4 for the losses whose formula
# has an exponential, and the loss by hand.
FLOAT32_EXTREMES = (
    # σ(±1e4) is 1 or 0
    ("pointwise", [1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, 1e4, -1e4], [0.0, 2.0, 1.0, 1.0]),
    ("bpr", [1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, 1e4, 0.0], [0.0, 1.0, 0.5, 1.0]),
    # log(1 + e^x) - x·z: 0 when the sign agrees, |x| when not
    ("logistic", [1.0, -1.0, 1.0, -1.0], [1e4, -1e4, -1e4, 1e4], [0.0, 0.0, 1e4, 1e4]),
    # e^x - y·x at x = -1e4 (at x = +1e4 the true loss is e^1e4, beyond float32)
    ("poisson-log", [0.0, 1.0, 2.0], [-1e4, -1e4, -1e4], [0.0, 1e4, 2e4]),
)


class TestFloat32NoOverflow:
    """Contract: no overflow (and no NumPy overflow warning) at |x| = 1e4 in float32."""

    @pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
    @pytest.mark.parametrize(
        ("case_id", "first", "second", "by_hand"),
        FLOAT32_EXTREMES,
        ids=[e[0] for e in FLOAT32_EXTREMES],
    )
    def test_no_overflow(self, xp, case_id, first, second, by_hand, reduction):
        case = CASES[case_id]
        first = support.asarray(xp, first, xp.float32)
        second = support.asarray(xp, second, xp.float32)
        result = _call(case, first, second, reduction=reduction)
        by_hand = np.asarray(by_hand)
        expected = {"none": by_hand, "mean": by_hand.mean(), "sum": by_hand.sum()}[
            reduction
        ]
        # by hand (the comments on FLOAT32_EXTREMES)
        support.assert_close(
            result,
            expected,
            xp=xp,
            like=second,
            shape=by_hand.shape if reduction == "none" else (),
        )
