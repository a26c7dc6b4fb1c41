"""Unit tests of the implicit-feedback losses: pointwise, BPR, hinge and adaptive hinge.

One class per loss. What every implicit loss shares (values against Spotlight's
formulas, masks, reductions, dtypes, refusals) is written once in
``_ImplicitLossContract``, and the margin of the two hinges in ``_HingeTests``; each
``Test*`` class names its loss, its float64 reference and the shape of its
negatives, and adds what only that loss needs. Every expected value comes from
Spotlight's formulas in float64 (``support.ref_*``) or from a hand calculation,
as the comment on each test says.

Gradients, jit/vmap/compile, half precision and property-based tests are not in
this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pytest
import support
from array_api_extra.testing import lazy_xp_function

import arraylosses
from arraylosses import adaptive_hinge_loss, bpr_loss, hinge_loss, pointwise_loss

# On JAX every call to these runs under jax.jit; on Dask it must compute nothing.
lazy_xp_function(pointwise_loss)
lazy_xp_function(bpr_loss)
lazy_xp_function(hinge_loss)
lazy_xp_function(adaptive_hinge_loss)

Shape = tuple[int, ...]

DTYPES = ("float32", "float64")
REDUCTIONS = ("mean", "sum", "none")
B, T = 4, 5  # batch and sequence lengths of the 2-d cases
K = 3  # negatives per positive for adaptive_hinge_loss


def scores(seed: int, shape: Shape) -> np.ndarray:
    """Seeded scores, exactly representable in float32, so that one float64
    reference serves both dtypes. Spread wide enough that hinges are both 0 and not."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 2.0, size=shape).astype(np.float32).astype(np.float64)


# (positive shape, shape of one negative): the elementwise loss has their broadcast shape
SHAPE_CASES = [
    pytest.param((), (), id="0d"),
    pytest.param((B,), (B,), id="1d"),
    pytest.param((B, T), (B, T), id="2d-batch-sequence"),
    pytest.param((B, 1), (B, T), id="broadcast-B1-against-BT"),
    pytest.param((B, T), (B, 1), id="broadcast-BT-against-B1"),
    pytest.param((T,), (B, T), id="broadcast-T-against-BT"),
]

# masks of a (B, T) elementwise loss, each with zeros in it: (values, dtype name)
FLOAT_WEIGHTS = np.array(
    [
        [0.5, 1.0, 0.0, 2.0, 0.0],
        [0.0, 0.25, 1.0, 1.0, 3.0],
        [1.0, 0.0, 0.0, 1.5, 1.0],
        [1.0, 1.0, 0.75, 0.0, 0.0],
    ]
)
INT_WEIGHTS = np.array(
    [
        [1, 2, 0, 1, 0],
        [0, 3, 1, 1, 1],
        [2, 0, 0, 1, 1],
        [1, 1, 4, 0, 0],
    ]
)
MASK_CASES = [
    pytest.param(FLOAT_WEIGHTS != 0, "bool", id="bool"),
    pytest.param(INT_WEIGHTS, "int64", id="int64-weights"),
    pytest.param(FLOAT_WEIGHTS, "float64", id="float64-weights"),
    pytest.param(
        np.array([[True], [False], [True], [True]]), "bool", id="bool-B1-broadcast"
    ),
    pytest.param(
        np.array([[0.5], [0.0], [2.0], [1.0]]), "float64", id="float64-B1-broadcast"
    ),
    pytest.param(np.array([1, 0, 2, 1, 0]), "int64", id="int64-T-broadcast"),
]
# one mask per way a mask weights L: bool, integer, floating, broadcast floating
POISON_MASK_CASES = [MASK_CASES[0], MASK_CASES[1], MASK_CASES[2], MASK_CASES[4]]
# all-zero masks: (values, mask dtype name, predictions' dtype name)
ZERO_MASK_CASES = [
    pytest.param(np.zeros((B, T), dtype=bool), "bool", "float32", id="bool-float32"),
    pytest.param(
        np.zeros((B, T), dtype=np.int64), "int64", "float64", id="int64-float64"
    ),
    pytest.param(np.zeros((B, T)), "float64", "float32", id="float64-float32"),
    pytest.param(np.zeros((B, 1), dtype=bool), "bool", "float64", id="bool-B1-float64"),
]

# scores large enough that a naive exp overflows float32 (e^1e4 > 3.4e38)
LARGE_POSITIVE = np.array([1e4, -1e4, 1e4, -1e4])
LARGE_NEGATIVE = np.array([1e4, -1e4, -1e4, 1e4])


def first_masked_position(mask: np.ndarray) -> tuple[int, ...]:
    """Index in the (B, T) loss of the first element that ``mask`` leaves out."""
    return tuple(int(i) for i in np.argwhere(np.broadcast_to(mask, (B, T)) == 0)[0])


def numpy_copy(x: Any) -> np.ndarray:
    """A NumPy copy of ``x`` that later changes to ``x`` cannot reach."""
    return np.array(support.to_numpy(x), copy=True)


class _ImplicitLossContract:
    """Tests every implicit loss shares.

    A subclass sets ``loss_name`` and ``reference`` and, where the negatives
    stack on a leading axis, overrides ``negatives_shape``.
    """

    loss_name: ClassVar[str]
    # Spotlight's elementwise formula in float64, from support
    reference: ClassVar[Callable[..., np.ndarray]]

    def loss(self, *args: Any, **kwargs: Any) -> Any:
        # Looked up in this module's globals at each call: that is where the xp
        # fixture patches the tagged function (jax.jit on JAX, no compute on Dask).
        # A reference to the function kept on the class would bypass the patch.
        return globals()[self.loss_name](*args, **kwargs)

    def negatives_shape(self, shape: Shape) -> Shape:
        """Shape of the negatives argument when one negative has ``shape``."""
        return shape

    def inputs(
        self,
        xp: ModuleType,
        dtype_name: str,
        p_shape: Shape = (B, T),
        n_shape: Shape = (B, T),
    ) -> tuple[np.ndarray, np.ndarray, Any, Any]:
        """Seeded predictions as NumPy float64 values and as ``xp`` arrays."""
        dtype = support.dtype_of(xp, dtype_name)
        p_np = scores(1, p_shape)
        n_np = scores(2, self.negatives_shape(n_shape))
        return (
            p_np,
            n_np,
            support.asarray(xp, p_np, dtype),
            support.asarray(xp, n_np, dtype),
        )

    # --- values ---------------------------------------------------------------------

    @pytest.mark.parametrize("dtype_name", DTYPES)
    @pytest.mark.parametrize(("p_shape", "n_shape"), SHAPE_CASES)
    def test_values(
        self, xp: ModuleType, dtype_name: str, p_shape: Shape, n_shape: Shape
    ) -> None:
        # expected: Spotlight's formula in float64 (support.ref_*); the default
        # reduction is Spotlight's mean over every element
        p_np, n_np, p, n = self.inputs(xp, dtype_name, p_shape, n_shape)
        expected = np.asarray(self.reference(p_np, n_np))
        support.assert_close(self.loss(p, n), expected.mean(), xp=xp, like=p)
        support.assert_close(
            self.loss(p, n, reduction="none"),
            expected,
            xp=xp,
            like=p,
            shape=expected.shape,
        )

    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "float-weights"])
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_reduction(
        self, xp: ModuleType, dtype_name: str, reduction: str, *, masked: bool
    ) -> None:
        # expected: Spotlight's formula in float64, reduced by support.ref_reduce
        p_np, n_np, p, n = self.inputs(xp, dtype_name)
        weights = FLOAT_WEIGHTS if masked else None
        mask = None if weights is None else support.asarray(xp, weights, xp.float64)
        result = self.loss(p, n, mask, reduction=reduction)
        expected = support.ref_reduce(self.reference(p_np, n_np), weights, reduction)
        shape = (B, T) if reduction == "none" else ()
        support.assert_close(result, expected, xp=xp, like=p, shape=shape)
        if reduction == "none" and weights is not None:
            # 'none' returns L * mask: the masked-out elements are exactly 0
            assert np.all(support.to_numpy(result)[weights == 0] == 0)

    # --- masks ----------------------------------------------------------------------

    @pytest.mark.parametrize(("mask_np", "mask_dtype"), MASK_CASES)
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_mask(
        self, xp: ModuleType, dtype_name: str, mask_np: np.ndarray, mask_dtype: str
    ) -> None:
        # expected: Spotlight's masked mean in float64, sum(L * w) / sum(w) with w
        # counted at its broadcast shape (support.ref_reduce); the result keeps the
        # predictions' dtype whatever the mask's
        p_np, n_np, p, n = self.inputs(xp, dtype_name)
        mask = support.asarray(xp, mask_np, getattr(xp, mask_dtype))
        loss = self.reference(p_np, n_np)
        support.assert_close(
            self.loss(p, n, mask=mask), support.ref_reduce(loss, mask_np), xp=xp, like=p
        )
        result = self.loss(p, n, mask=mask, reduction="none")
        expected = support.ref_reduce(loss, mask_np, "none")
        support.assert_close(result, expected, xp=xp, like=p, shape=(B, T))
        assert np.all(support.to_numpy(result)[expected == 0] == 0)

    @pytest.mark.parametrize(("mask_np", "mask_dtype", "dtype_name"), ZERO_MASK_CASES)
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_all_zero_mask_gives_exactly_zero(
        self,
        xp: ModuleType,
        reduction: str,
        mask_np: np.ndarray,
        mask_dtype: str,
        dtype_name: str,
    ) -> None:
        # by hand: nothing is left to average, so 0, where Spotlight's 0 / 0 is NaN
        _, _, p, n = self.inputs(xp, dtype_name)
        mask = support.asarray(xp, mask_np, getattr(xp, mask_dtype))
        shape = (B, T) if reduction == "none" else ()
        result = self.loss(p, n, mask, reduction=reduction)
        support.assert_close(
            result, np.zeros(shape), xp=xp, like=p, shape=shape, rtol=0, atol=0
        )

    @pytest.mark.parametrize(("mask_np", "mask_dtype"), POISON_MASK_CASES)
    @pytest.mark.parametrize("reduction", ["mean", "none"])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_masked_nan_contributes_zero(
        self,
        xp: ModuleType,
        dtype_name: str,
        reduction: str,
        mask_np: np.ndarray,
        mask_dtype: str,
    ) -> None:
        # expected: the float64 reference on the data before the NaN went in, i.e.
        # over the unmasked elements only (Spotlight's L * mask would give NaN)
        p_np, n_np, _, _ = self.inputs(xp, dtype_name)
        expected = support.ref_reduce(self.reference(p_np, n_np), mask_np, reduction)
        poisoned = p_np.copy()
        poisoned[first_masked_position(mask_np)] = np.nan  # so L is NaN there
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, poisoned, dtype)
        n = support.asarray(xp, n_np, dtype)
        mask = support.asarray(xp, mask_np, getattr(xp, mask_dtype))
        shape = (B, T) if reduction == "none" else ()
        result = self.loss(p, n, mask, reduction=reduction)
        support.assert_close(result, expected, xp=xp, like=p, shape=shape)

    @pytest.mark.parametrize("mask_dtype_name", ["bool", "float64"])
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_masked_nan_of_a_0d_call_contributes_zero(
        self, xp: ModuleType, reduction: str, mask_dtype_name: str
    ) -> None:
        # a 0-d loss takes paths of its own (NumPy masks a scalar's bits). expected:
        # by hand, exactly +0.0 for every reduction: the one element is masked out,
        # and the mean over an all-zero mask is 0 (Spotlight: NaN)
        _, n_np, _, _ = self.inputs(xp, "float32", (), ())
        p = support.asarray(xp, np.asarray(np.nan), xp.float32)
        n = support.asarray(xp, n_np, xp.float32)
        mask = support.asarray(xp, np.asarray(0), support.dtype_of(xp, mask_dtype_name))
        result = self.loss(p, n, mask, reduction=reduction)
        support.assert_close(result, np.float64(0.0), xp=xp, like=p, rtol=0, atol=0)
        assert not np.signbit(support.to_numpy(result))

    # --- dtypes and inputs ----------------------------------------------------------

    @pytest.mark.parametrize(
        ("p_dtype", "n_dtype"), [("float32", "float64"), ("float64", "float32")]
    )
    def test_mixed_dtypes_promote_to_float64(
        self, xp: ModuleType, p_dtype: str, n_dtype: str
    ) -> None:
        # expected: Spotlight's formula in float64; the float32 values are exact in
        # float64, so the promoted result meets float64 tolerances
        p_np, n_np, _, _ = self.inputs(xp, "float64")
        p = support.asarray(xp, p_np, getattr(xp, p_dtype))
        n = support.asarray(xp, n_np, getattr(xp, n_dtype))
        expected = self.reference(p_np, n_np)
        support.assert_close(
            self.loss(p, n), expected.mean(), xp=xp, like=p, dtype=xp.float64
        )
        support.assert_close(
            self.loss(p, n, reduction="none"),
            expected,
            xp=xp,
            like=p,
            dtype=xp.float64,
            shape=(B, T),
        )

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_inputs_unchanged(self, xp: ModuleType, reduction: str) -> None:
        # by hand: the call must leave every argument as it found it
        _, _, p, n = self.inputs(xp, "float32")
        mask = support.asarray(xp, INT_WEIGHTS, xp.int64)
        before = [numpy_copy(x) for x in (p, n, mask)]
        self.loss(p, n, mask, reduction=reduction)
        for old, new in zip(before, (p, n, mask), strict=True):
            np.testing.assert_array_equal(support.to_numpy(new), old, strict=True)

    # --- refusals -------------------------------------------------------------------

    @pytest.mark.parametrize("bad_dtype", ["int64", "bool"])
    @pytest.mark.parametrize(
        "argument", ["positive_predictions", "negative_predictions"]
    )
    def test_refuses_non_floating_predictions(
        self, xp: ModuleType, argument: str, bad_dtype: str
    ) -> None:
        p_np, n_np, p, n = self.inputs(xp, "float32")
        if argument == "positive_predictions":
            p = support.asarray(xp, p_np > 0, getattr(xp, bad_dtype))
        else:
            n = support.asarray(xp, n_np > 0, getattr(xp, bad_dtype))
        with pytest.raises(
            TypeError, match=rf"{argument} .*real floating.*{bad_dtype}"
        ):
            self.loss(p, n)

    def test_refuses_shapes_that_do_not_broadcast(self, xp: ModuleType) -> None:
        _, _, p, n = self.inputs(xp, "float32", (B, T), (B, T + 1))
        with pytest.raises(
            ValueError,
            match=r"positive_predictions with shape \(4, 5\) and negative_predictions.* "
            r"with shape \(4, 6\) do not broadcast",
        ):
            self.loss(p, n)

    def test_refuses_one_positive_per_row_without_its_axis_with_the_way_out(
        self, xp: ModuleType
    ) -> None:
        # Spotlight's sequence models score (B, T) negatives against (B, 1) positives:
        # (B,) does not broadcast, and the message gives the shape that does
        _, _, p, n = self.inputs(xp, "float32", (B,), (B, T))
        with pytest.raises(
            ValueError,
            match=r"do not broadcast together; .*; for one element of "
            rf"positive_predictions per row of the other, give it shape \({B}, 1\)",
        ):
            self.loss(p, n)
        # a mask of one element per row alike
        _, _, p, n = self.inputs(xp, "float32", (B, T), (B, T))
        mask = support.asarray(xp, np.ones(B, dtype=bool), xp.bool)
        with pytest.raises(
            ValueError,
            match=rf"mask with shape \({B},\) does not broadcast .*; for one element "
            rf"of mask per row of the other, give it shape \({B}, 1\)",
        ):
            self.loss(p, n, mask)

    @pytest.mark.parametrize(("p_shape", "n_shape"), [((B,), (B, 1)), ((B, 1), (1, B))])
    def test_refuses_outer_product(
        self, xp: ModuleType, p_shape: Shape, n_shape: Shape
    ) -> None:
        # (B,) against (B, 1), or (B, 1) against (1, B), broadcasts to (B, B): an
        # accidental outer product, refused
        _, _, p, n = self.inputs(xp, "float32", p_shape, n_shape)
        with pytest.raises(
            ValueError, match=r"broadcast to \(4, 4\), an outer product"
        ):
            self.loss(p, n)

    @pytest.mark.parametrize(
        ("mask_shape", "shown"),
        [((T + 1,), r"\(6,\)"), ((B,), r"\(4,\)"), ((2, B, T), r"\(2, 4, 5\)")],
        ids=["mismatch", "batch-without-trailing-axis", "beyond-the-loss"],
    )
    def test_refuses_mask_that_does_not_broadcast_to_the_loss(
        self, xp: ModuleType, mask_shape: Shape, shown: str
    ) -> None:
        _, _, p, n = self.inputs(xp, "float32")
        mask = support.asarray(xp, np.ones(mask_shape, dtype=bool), xp.bool)
        with pytest.raises(
            ValueError, match=rf"mask with shape {shown} does not broadcast .*\(4, 5\)"
        ):
            self.loss(p, n, mask)

    @pytest.mark.parametrize(("reduction", "type_name"), support.REFUSED_REDUCTIONS)
    def test_refuses_unknown_reduction(
        self, xp: ModuleType, reduction: object, type_name: str
    ) -> None:
        _, _, p, n = self.inputs(xp, "float32")
        support.assert_reduction_refused(
            lambda reduction: self.loss(p, n, reduction=reduction),
            reduction,
            type_name,
        )

    @pytest.mark.parametrize("kind", ["list", "float"])
    @pytest.mark.parametrize(
        "argument", ["positive_predictions", "negative_predictions", "mask"]
    )
    def test_refuses_non_arrays(self, xp: ModuleType, argument: str, kind: str) -> None:
        p_np, n_np, p, n = self.inputs(xp, "float32")
        arguments = {"positive_predictions": p, "negative_predictions": n, "mask": None}
        plain = {
            "positive_predictions": p_np,
            "negative_predictions": n_np,
            "mask": FLOAT_WEIGHTS,
        }
        arguments[argument] = plain[argument].tolist() if kind == "list" else 0.5
        with pytest.raises(TypeError, match=rf"{argument} must be an array"):
            self.loss(**arguments)


class _HingeTests(_ImplicitLossContract):
    """Tests both hinge losses share: the margin, and inf under a mask."""

    # any real number: a NumPy float64 margin used to turn float32 predictions' loss
    # into float64 on NumPy, and a Fraction failed on PyTorch
    @pytest.mark.parametrize(
        "margin",
        [0.5, 0.0, 1, np.float64(0.5), np.float32(0.5), np.int64(1), Fraction(1, 2)],
        ids=["0.5", "0.0", "1", "numpy-float64", "numpy-float32", "numpy-int64", "1/2"],
    )
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_margin(self, xp: ModuleType, dtype_name: str, margin: Any) -> None:
        # expected: Spotlight's formula in float64 with the margin in place of its 1,
        # in the predictions' dtype whatever the margin's type
        p_np, n_np, p, n = self.inputs(xp, dtype_name)
        expected = self.reference(p_np, n_np, margin=float(margin))
        support.assert_close(
            self.loss(p, n, margin=margin), expected.mean(), xp=xp, like=p
        )
        support.assert_close(
            self.loss(p, n, reduction="none", margin=margin),
            expected,
            xp=xp,
            like=p,
            shape=(B, T),
        )

    @pytest.mark.parametrize("p_shape", [(), (B, T)], ids=["0d", "2d"])
    def test_margin_is_rounded_to_the_dtype_once(
        self, xp: ModuleType, p_shape: Shape
    ) -> None:
        # expected: the formula in NumPy in each dtype, with the margin in that dtype:
        # n - p + m and the maximum are exactly rounded, so every library gives these
        # bits. The dtypes alternate, as a cache of margins must not mix them up
        for dtype_name in ("float32", "float64", "float32"):
            p_np, n_np, p, n = self.inputs(xp, dtype_name, p_shape, p_shape)
            numpy_dtype = np.dtype(dtype_name).type
            expected = self.reference(
                p_np.astype(numpy_dtype),
                n_np.astype(numpy_dtype),
                margin=numpy_dtype(0.1),
            )
            actual = self.loss(p, n, reduction="none", margin=0.1)
            assert actual.dtype == p.dtype
            np.testing.assert_array_equal(support.to_numpy(actual), expected)

    # NumPy's relu works in place, row by row, on arrays of 128 KiB and more: 200 × 200
    # is four rows of 8,192 elements and a rest. Transposed inputs give a loss that
    # is not C-contiguous, which takes the other path
    @pytest.mark.parametrize("layout", ["contiguous", "transposed"])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_large_arrays(self, xp: ModuleType, dtype_name: str, layout: str) -> None:
        # expected: Spotlight's formula in float64
        shape = (200, 200)
        p_np, n_np, p, n = self.inputs(xp, dtype_name, shape, shape)
        if layout == "transposed":
            dtype = support.dtype_of(xp, dtype_name)
            p, n = (
                _transposed(xp, support.asarray(xp, np.swapaxes(x, -1, -2), dtype))
                for x in (p_np, n_np)
            )
        expected = self.reference(p_np, n_np)
        support.assert_close(
            self.loss(p, n, reduction="none"), expected, xp=xp, like=p, shape=shape
        )
        support.assert_close(self.loss(p, n), expected.mean(), xp=xp, like=p)
        for given, values in ((p, p_np), (n, n_np)):  # the inputs are unchanged
            np.testing.assert_array_equal(support.to_numpy(given), values)

    @pytest.mark.parametrize(
        ("margin", "error", "message"),
        [
            # a value that is no array gets no advice about arrays
            (
                "1.0",
                TypeError,
                r"margin must be a real number, .*, got str '1\.0'(?!; pass)",
            ),
            (None, TypeError, "margin must be a real number"),
            # a bool, which Python counts as a number, and NumPy's, which has a
            # shape: no number either, and no advice to convert it
            (True, TypeError, r"margin must be a real number, .*, got bool True(?!;)"),
            pytest.param(
                np.True_,
                TypeError,
                r"margin must be a real number, .*, got numpy\.bool np\.True_(?!;)",
                id="numpy-bool",
            ),
            (math.inf, ValueError, "margin must be finite"),
            (-math.inf, ValueError, "margin must be finite"),
            (math.nan, ValueError, "margin must be finite"),
            # an int no float holds: its first 40 characters, not an OverflowError
            pytest.param(
                -(10**400),
                ValueError,
                r"margin must be finite, got -1000+\.\.\.",
                id="int-beyond-float",
            ),
        ],
    )
    def test_refuses_bad_margin(
        self, xp: ModuleType, margin: object, error: type[Exception], message: str
    ) -> None:
        _, _, p, n = self.inputs(xp, "float32")
        with pytest.raises(error, match=message):
            self.loss(p, n, margin=margin)

    @pytest.mark.parametrize(("mask_np", "mask_dtype"), POISON_MASK_CASES)
    @pytest.mark.parametrize("reduction", ["mean", "none"])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_masked_inf_contributes_zero(
        self,
        xp: ModuleType,
        dtype_name: str,
        reduction: str,
        mask_np: np.ndarray,
        mask_dtype: str,
    ) -> None:
        # expected: the float64 reference on the data before the inf went in, i.e.
        # over the unmasked elements only (Spotlight's inf * 0 would give NaN)
        p_np, n_np, _, _ = self.inputs(xp, dtype_name)
        expected = support.ref_reduce(self.reference(p_np, n_np), mask_np, reduction)
        poisoned = n_np.copy()
        poisoned[(..., *first_masked_position(mask_np))] = np.inf  # so L is inf there
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, p_np, dtype)
        n = support.asarray(xp, poisoned, dtype)
        mask = support.asarray(xp, mask_np, getattr(xp, mask_dtype))
        shape = (B, T) if reduction == "none" else ()
        result = self.loss(p, n, mask, reduction=reduction)
        support.assert_close(result, expected, xp=xp, like=p, shape=shape)

    @pytest.mark.parametrize("size", [10, 200], ids=["small", "relu-by-rows"])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_nan_positive_propagates_at_any_size(
        self, xp: ModuleType, dtype_name: str, size: int
    ) -> None:
        # NumPy takes the relu in place, row by row, from 128 KiB of loss on (200 ×
        # 200 float32 is 160 KiB): a NaN score gives NaN there as on small arrays, as
        # Spotlight's clamp does. expected: Spotlight's formula in float64, NaN in the
        # NaN score's element, the hinge elsewhere. Called on arrays, through the
        # module's attribute, which the conftest leaves untraced: under jax.jit XLA
        # drops a NaN in max(·, 0) from about 4,096 elements whatever the loss does
        # (docs/guides/backends-and-devices.md)
        loss = getattr(arraylosses, self.loss_name)
        p_np, n_np, _, _ = self.inputs(xp, dtype_name, (size, size), (size, size))
        p_np[3, 7] = math.nan
        dtype = support.dtype_of(xp, dtype_name)
        p, n = support.asarray(xp, p_np, dtype), support.asarray(xp, n_np, dtype)
        expected = self.reference(p_np, n_np)
        assert np.isnan(expected[3, 7]), "the reference propagates the NaN"
        support.assert_close(
            loss(p, n, reduction="none"), expected, xp=xp, like=p, shape=(size, size)
        )


def _transposed(xp: ModuleType, x: Any) -> Any:
    """``x`` with its last two axes swapped: a view, not C-contiguous, where the
    library has views."""
    axes = list(range(x.ndim))
    axes[-2:] = axes[-1], axes[-2]
    return xp.permute_dims(x, tuple(axes))


class _SigmoidLossTests(_ImplicitLossContract):
    """Tests both sigmoid-based losses share: no overflow at large scores."""

    expected_at_large_scores: ClassVar[list[float]]  # by hand, for LARGE_*

    # NumPy caps the exponent on small arrays, and lets it overflow quietly from
    # 2,048 elements: 1,024 copies of the four scores take the second path
    @pytest.mark.parametrize("copies", [1, 1024])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_no_overflow_at_large_scores(
        self, xp: ModuleType, dtype_name: str, copies: int
    ) -> None:
        # expected: by hand, in each subclass; a naive sigmoid overflows exp at
        # |x| = 1e4, which NumPy reports as a warning, an error under this suite
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, np.tile(LARGE_POSITIVE, copies), dtype)
        n = support.asarray(xp, np.tile(LARGE_NEGATIVE, copies), dtype)
        expected = np.tile(self.expected_at_large_scores, copies)
        support.assert_close(
            self.loss(p, n, reduction="none"),
            expected,
            xp=xp,
            like=p,
            shape=(4 * copies,),
        )
        support.assert_close(self.loss(p, n), expected.mean(), xp=xp, like=p)


class TestPointwiseLoss(_SigmoidLossTests):
    loss_name = "pointwise_loss"
    reference = staticmethod(support.ref_pointwise)
    # σ(-p) + σ(n) at p, n = ±1e4: σ is 0 or 1 to within e^-1e4
    expected_at_large_scores: ClassVar[list[float]] = [1.0, 1.0, 0.0, 2.0]

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: σ(0) = 1/2 gives (1 - 1/2) + 1/2 = 1; σ(ln 3) = 3/4 and
        # σ(-ln 3) = 1/4 give (1 - 3/4) + 1/4 = 1/2
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, math.log(3.0)], dtype)
        n = support.asarray(xp, [0.0, -math.log(3.0)], dtype)
        support.assert_close(
            pointwise_loss(p, n, reduction="none"),
            [1.0, 0.5],
            xp=xp,
            like=p,
            shape=(2,),
        )
        support.assert_close(pointwise_loss(p, n), 0.75, xp=xp, like=p)


class TestBprLoss(_SigmoidLossTests):
    loss_name = "bpr_loss"
    reference = staticmethod(support.ref_bpr)
    # 1 - σ(p - n) with p - n = 0, 0, 2e4, -2e4
    expected_at_large_scores: ClassVar[list[float]] = [0.5, 0.5, 0.0, 1.0]

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: 1 - σ(0) = 1/2; 1 - σ(ln 3) = 1 - 3/4 = 1/4. This is Spotlight's
        # bounded form, not Rendle's -log σ(p - n) (which would give ln 2, ln 4/3)
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, math.log(3.0)], dtype)
        n = support.asarray(xp, [0.0, 0.0], dtype)
        support.assert_close(
            bpr_loss(p, n, reduction="none"), [0.5, 0.25], xp=xp, like=p, shape=(2,)
        )
        support.assert_close(bpr_loss(p, n), 0.375, xp=xp, like=p)


class TestHingeLoss(_HingeTests):
    loss_name = "hinge_loss"
    reference = staticmethod(support.ref_hinge)

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: max(n - p + 1, 0) = max(1, 0), max(-1, 0), max(1.75, 0) = 1, 0, 1.75;
        # with margin 0.5: 0.5, 0, 1.25
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, 2.0, 0.25], dtype)
        n = support.asarray(xp, [0.0, 0.0, 1.0], dtype)
        support.assert_close(
            hinge_loss(p, n, reduction="none"),
            [1.0, 0.0, 1.75],
            xp=xp,
            like=p,
            shape=(3,),
        )
        support.assert_close(hinge_loss(p, n), 2.75 / 3, xp=xp, like=p)
        support.assert_close(
            hinge_loss(p, n, reduction="sum", margin=0.5), 1.75, xp=xp, like=p
        )


class TestAdaptiveHingeLoss(_HingeTests):
    loss_name = "adaptive_hinge_loss"
    reference = staticmethod(support.ref_adaptive_hinge)

    def negatives_shape(self, shape: Shape) -> Shape:
        return (K, *shape)  # the negatives stack on a leading axis

    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        # by hand: the max over axis 0 of [[-1, 2], [3, -5]] is [3, 2], so with p = 0
        # the hinge is [4, 3] (a max over the last axis would give [3, 4] instead);
        # with margin 0.5 it is [3.5, 2.5]
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [0.0, 0.0], dtype)
        negatives = support.asarray(xp, [[-1.0, 2.0], [3.0, -5.0]], dtype)
        support.assert_close(
            adaptive_hinge_loss(p, negatives, reduction="none"),
            [4.0, 3.0],
            xp=xp,
            like=p,
            shape=(2,),
        )
        support.assert_close(adaptive_hinge_loss(p, negatives), 3.5, xp=xp, like=p)
        support.assert_close(
            adaptive_hinge_loss(p, negatives, reduction="none", margin=0.5),
            [3.5, 2.5],
            xp=xp,
            like=p,
            shape=(2,),
        )

    @pytest.mark.parametrize(
        ("p_shape", "s_shape"),
        [((B, T), (B, T)), ((B, 1), (B, T))],
        ids=["2d", "B1-against-kBT"],
    )
    @pytest.mark.parametrize("k", [1, 3, 8])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_number_of_negatives(
        self, xp: ModuleType, dtype_name: str, k: int, p_shape: Shape, s_shape: Shape
    ) -> None:
        # expected: Spotlight's formula in float64 (support.ref_adaptive_hinge): the
        # hinge against the max over axis 0 of the (k, *S) negatives
        dtype = support.dtype_of(xp, dtype_name)
        p_np, n_np = scores(3, p_shape), scores(4, (k, *s_shape))
        p, n = support.asarray(xp, p_np, dtype), support.asarray(xp, n_np, dtype)
        expected = support.ref_adaptive_hinge(p_np, n_np)
        support.assert_close(
            adaptive_hinge_loss(p, n, reduction="none"),
            expected,
            xp=xp,
            like=p,
            shape=expected.shape,
        )
        support.assert_close(adaptive_hinge_loss(p, n), expected.mean(), xp=xp, like=p)

    @pytest.mark.parametrize("k", [2, 5, 8])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_nan_negative_propagates(
        self, xp: ModuleType, dtype_name: str, k: int
    ) -> None:
        # expected: Spotlight's formula in float64, whose maximum (NumPy's)
        # propagates NaN: NaN in the NaN negative's column, the hinge elsewhere.
        # 2,048 columns, k rows: 4,096 elements or more, from where XLA's maximum
        # reduction on a CPU drops the NaN (JAX 0.10). Called on arrays, through the
        # module's attribute, which the conftest leaves untraced: under jax.jit XLA
        # drops it whatever the loss does (docs/guides/backends-and-devices.md)
        loss = arraylosses.adaptive_hinge_loss
        dtype = support.dtype_of(xp, dtype_name)
        columns = 2048
        p_np, n_np = scores(5, (columns,)), scores(6, (k, columns))
        n_np[k - 1, 7] = math.nan
        p, n = support.asarray(xp, p_np, dtype), support.asarray(xp, n_np, dtype)
        expected = support.ref_adaptive_hinge(p_np, n_np)
        assert np.isnan(expected[7]), "the reference propagates the NaN"
        support.assert_close(
            loss(p, n, reduction="none"), expected, xp=xp, like=p, shape=(columns,)
        )
        support.assert_close(loss(p, n), math.nan, xp=xp, like=p)

    @pytest.mark.parametrize("k", [1, 3])
    @pytest.mark.parametrize("dtype_name", DTYPES)
    def test_never_squeezes(self, xp: ModuleType, dtype_name: str, k: int) -> None:
        # by hand: the max over axis 0 of the negatives is [[0], [2]], so against
        # p = [[3], [0]] the hinge is [[max(0 - 3 + 1, 0)], [max(2 - 0 + 1, 0)]] =
        # [[0], [3]], of p's shape (2, 1), mean 1.5. Spotlight squeezes the max to
        # (2,) and its hinge broadcasts to the (2, 2) outer product [[0, 0], [1, 3]],
        # mean 1.0: the data tell the two apart.
        dtype = support.dtype_of(xp, dtype_name)
        p = support.asarray(xp, [[3.0], [0.0]], dtype)
        stacked = [[[0.0], [2.0]], [[-1.0], [1.0]], [[-2.0], [0.5]]]
        negatives = support.asarray(xp, stacked[:k], dtype)
        support.assert_close(
            adaptive_hinge_loss(p, negatives, reduction="none"),
            [[0.0], [3.0]],
            xp=xp,
            like=p,
            shape=(2, 1),
        )
        support.assert_close(adaptive_hinge_loss(p, negatives), 1.5, xp=xp, like=p)

    @pytest.mark.parametrize(
        ("reduction", "shape"),
        [("none", (0, T)), ("mean", ()), ("sum", ())],
        ids=["none", "mean", "sum"],
    )
    def test_empty_batch(self, xp: ModuleType, reduction: str, shape: Shape) -> None:
        # by hand: no elements, so "none" is empty with the positives' shape, and the
        # sum and the mean over no elements are 0. Dask computed the maximum over
        # the negatives of a (K, 0, T) array to shape (1, 0), and the loss failed
        p = support.asarray(xp, np.zeros((0, T)), xp.float32)
        n = support.asarray(xp, np.zeros((3, 0, T)), xp.float32)
        expected = np.zeros(shape)
        result = adaptive_hinge_loss(p, n, reduction=reduction)
        support.assert_close(result, expected, xp=xp, like=p, shape=shape)

    def test_one_dimensional_positives_against_a_stack(self, xp: ModuleType) -> None:
        # (n,) positives against (K, n) negatives take prepare()'s shortest path,
        # which must still compare n with the negatives' length. expected: a
        # ValueError naming both shapes for 4 against 6; and by hand, for one
        # positive of 0.5 broadcast against the negatives' maxima 1.0 to 1.4, the
        # hinges 1.5 to 1.9, whose mean under a (5,) mask keeping 1.5, 1.7 and 1.8
        # is 5 / 3, and under a (1,) mask that broadcasts, 1.7
        with pytest.raises(
            ValueError,
            match=r"^positive_predictions with shape \(4,\) and negative_predictions "
            r"\(after its negatives axis\) with shape \(6,\) do not broadcast",
        ):
            adaptive_hinge_loss(
                support.asarray(xp, np.zeros(4), xp.float32),
                support.asarray(xp, np.zeros((3, 6)), xp.float32),
            )
        p = support.asarray(xp, np.asarray([0.5]), xp.float32)
        n = support.asarray(xp, np.arange(15).reshape(3, 5) / 10, xp.float32)
        mask = support.asarray(xp, np.asarray([1, 0, 1, 1, 0]), xp.bool)
        support.assert_close(adaptive_hinge_loss(p, n, mask), 5 / 3, xp=xp, like=p)
        everything = support.asarray(xp, np.asarray([1]), xp.bool)
        support.assert_close(adaptive_hinge_loss(p, n, everything), 1.7, xp=xp, like=p)

    def test_refuses_empty_negatives_axis(self, xp: ModuleType) -> None:
        p = support.asarray(xp, scores(7, (B,)), xp.float32)
        n = support.asarray(xp, np.zeros((0, B)), xp.float32)
        with pytest.raises(
            ValueError,
            match=r"negative_predictions with shape \(0, 4\) has no negatives",
        ):
            adaptive_hinge_loss(p, n)

    @pytest.mark.parametrize(
        ("p_shape", "n_shape", "shown", "least"),
        [
            ((), (), r"\(\)", "1 dimension"),
            ((B,), (B,), r"\(4,\)", "2 dimensions"),
            ((B, T), (B, T), r"\(4, 5\)", "3 dimensions"),
            ((B, T), (T,), r"\(5,\)", "3 dimensions"),
        ],
        ids=["0d", "1d", "2d", "fewer-dims"],
    )
    def test_refuses_negatives_without_leading_axis(
        self, xp: ModuleType, p_shape: Shape, n_shape: Shape, shown: str, least: str
    ) -> None:
        p = support.asarray(xp, scores(8, p_shape), xp.float32)
        n = support.asarray(xp, scores(9, n_shape), xp.float32)
        with pytest.raises(
            ValueError,
            match=rf"negative_predictions with shape {shown} must stack the negatives"
            rf".*; so it needs at least {least}(?!\w)",
        ):
            adaptive_hinge_loss(p, n)

    def test_refuses_mask_shaped_like_the_negatives(self, xp: ModuleType) -> None:
        # the mask weights L, of shape S, not the (k, *S) negatives
        _, _, p, n = self.inputs(xp, "float32")
        mask = support.asarray(xp, np.ones((K, B, T), dtype=bool), xp.bool)
        with pytest.raises(
            ValueError, match=r"mask with shape \(3, 4, 5\) does not broadcast"
        ):
            adaptive_hinge_loss(p, n, mask)
