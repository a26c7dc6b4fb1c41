"""Property tests: Hypothesis draws float64 NumPy inputs of random small shapes.

For every loss: bounds of the elementwise loss, the reductions' relations to each
other ('none' summed is 'sum'; 'mean' is 'sum' over the element count, or the
weighted average under a mask), and agreement of the backend under test with NumPy
and with the float64 reference. Shapes are 1-d or 2-d, with one argument (and the
mask) possibly of a shape that broadcasts to the other's.

The ``xp`` fixture is function-scoped; Hypothesis reruns the test body with it, which
is safe (it is the backend's namespace, with the conftest's lazy_xp_function patch in
place for the whole test), so the health check is suppressed explicitly. The number
of examples comes from the profile the conftest loads (50 dev, 200 ci).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import array_api_compat.numpy as np_xp
import numpy as np
import pytest
import support
from array_api_extra.testing import lazy_xp_function
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import arraylosses as al
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

# The namespace fixture is reused across examples on purpose (see the module docstring).
# Examples are capped at half the profile's count (25 dev, 100 ci): with the profile's
# full count this file took over 3 minutes on all backends (most of it JAX, which
# compiles each new combination of shapes under jit, and Dask), far past the ~90 s
# budget; the cheap backends could afford more, but the cap is per test.
PROPERTY = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    max_examples=max(10, settings.default.max_examples // 2),
)

# bounded: no NaN, no inf; no subnormals, which XLA on CPU flushes to 0
SCORES = st.floats(-50.0, 50.0, allow_subnormal=False)
COUNTS = st.integers(0, 20).map(float)
RATES = st.floats(1e-3, 50.0)
SIGNS = st.sampled_from([-1.0, 0.0, 1.0])
# weights: exactly 0 (masked out) or of a sane size
WEIGHTS = st.one_of(st.just(0.0), st.floats(1e-3, 3.0))

# agreement of two float64 computations of one loss: a few ulps of each term, and an
# absolute slack scaled by the magnitude of the terms for sums that cancel
RTOL = 1e-12
ATOL_PER_MAGNITUDE = 1e-12


def _poisson_floor(observed: np.ndarray) -> np.ndarray:
    """min over rates of ŷ - y·log(ŷ): at ŷ = y it is y - y·log(y) (0 for y = 0)."""
    safe = np.where(observed > 0, observed, 1.0)
    return np.where(observed > 0, observed - observed * np.log(safe), 0.0)


class Case(NamedTuple):
    id: str
    name: str  # the function's name in arraylosses (and in this module's globals)
    reference: Callable[..., np.ndarray]  # elementwise L, Spotlight's formula
    first: st.SearchStrategy[float]
    second: st.SearchStrategy[float]
    # (L, first, second) -> (lower, upper) bounds of L, by hand
    bounds: Callable[..., tuple[Any, Any]]
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def stacked(self) -> bool:
        return self.name == "adaptive_hinge_loss"


CASES = (
    # (1 - σ(p)) + σ(n): each term in [0, 1]
    Case(
        "pointwise",
        "pointwise_loss",
        support.ref_pointwise,
        SCORES,
        SCORES,
        lambda *_: (0, 2),
    ),
    # 1 - σ(p - n)
    Case("bpr", "bpr_loss", support.ref_bpr, SCORES, SCORES, lambda *_: (0, 1)),
    # max(n - p + m, 0)
    Case(
        "hinge", "hinge_loss", support.ref_hinge, SCORES, SCORES, lambda *_: (0, np.inf)
    ),
    Case(
        "adaptive_hinge",
        "adaptive_hinge_loss",
        support.ref_adaptive_hinge,
        SCORES,
        SCORES,
        lambda *_: (0, np.inf),
    ),
    # (y - ŷ)²
    Case(
        "regression",
        "regression_loss",
        support.ref_regression,
        SCORES,
        SCORES,
        lambda *_: (0, np.inf),
    ),
    # ŷ - y·log(ŷ) is smallest at ŷ = y; with y = 0 it is ŷ >= 0
    Case(
        "poisson",
        "poisson_loss",
        support.ref_poisson,
        COUNTS,
        RATES,
        lambda _, y, __: (_poisson_floor(y), np.inf),
    ),
    # e^x - y·x, the same function of the rate e^x
    Case(
        "poisson-log",
        "poisson_loss",
        support.ref_poisson,
        COUNTS,
        SCORES,
        lambda _, y, __: (_poisson_floor(y), np.inf),
        (("log_input", True),),
    ),
    # a binary cross-entropy: >= 0
    Case(
        "logistic",
        "logistic_loss",
        support.ref_logistic,
        SIGNS,
        SCORES,
        lambda *_: (0, np.inf),
    ),
)
CASE_IDS = [case.id for case in CASES]


@st.composite
def _narrowed(
    draw, shape: tuple[int, ...], *, keep_ndim: bool = False
) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: some sizes set to 1, leading axes dropped."""
    ones = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    narrow = tuple(1 if one else size for one, size in zip(ones, shape, strict=True))
    if not keep_ndim:
        narrow = narrow[draw(st.integers(0, len(narrow))) :]
    return narrow


class Drawn(NamedTuple):
    first: np.ndarray
    second: np.ndarray
    mask: np.ndarray | None
    shape: tuple[int, ...]  # of the elementwise loss


@st.composite
def _inputs(draw, case: Case, *, masks: bool = True) -> Drawn:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=5))
    narrow = draw(st.sampled_from(["neither", "first", "second"]))
    first_shape = draw(_narrowed(shape)) if narrow == "first" else shape
    # the negatives axis must stay leading: the stacked argument keeps its dimensions
    second_shape = (
        draw(_narrowed(shape, keep_ndim=case.stacked)) if narrow == "second" else shape
    )
    if case.stacked:
        second_shape = (draw(st.integers(1, 3)), *second_shape)
    first = draw(hnp.arrays(np.float64, first_shape, elements=case.first))
    second = draw(hnp.arrays(np.float64, second_shape, elements=case.second))
    mask = None
    if masks:
        mask_shape = draw(_narrowed(shape))
        mask = draw(
            st.one_of(
                st.none(),
                hnp.arrays(np.bool_, mask_shape),
                hnp.arrays(np.float64, mask_shape, elements=WEIGHTS),
            )
        )
    return Drawn(first, second, mask, shape)


def _on(xp, drawn: Drawn):
    """The drawn arrays in ``xp``: float64 values, the mask keeping its dtype."""
    first = support.asarray(xp, drawn.first, xp.float64)
    second = support.asarray(xp, drawn.second, xp.float64)
    mask = None
    if drawn.mask is not None:
        dtype = xp.bool if drawn.mask.dtype == np.bool_ else xp.float64
        mask = support.asarray(xp, drawn.mask, dtype)
    return first, second, mask


def _call(case: Case, first, second, mask, reduction):
    function = globals()[case.name]  # the tagged global: jitted on JAX, lazy on Dask
    return function(first, second, mask, reduction=reduction, **case.kwargs)


def _atol(*terms) -> float:
    """Absolute slack for sums of ``terms`` that may cancel."""
    magnitude = sum(float(np.sum(np.abs(t))) for t in terms)
    return ATOL_PER_MAGNITUDE * (1.0 + magnitude)


def _weights(drawn: Drawn) -> np.ndarray:
    """The mask as float weights at the loss's shape (all ones without a mask)."""
    if drawn.mask is None:
        return np.ones(drawn.shape)
    return np.broadcast_to(drawn.mask.astype(np.float64), drawn.shape)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
class TestBounds:
    @PROPERTY
    @given(data=st.data())
    def test_elementwise_loss_within_bounds(self, xp, case, data):
        drawn = data.draw(_inputs(case, masks=False))
        first, second, _ = _on(xp, drawn)

        loss = _call(case, first, second, None, "none")

        support.assert_close(
            loss,
            _reference(case, drawn, "none"),
            xp=xp,
            like=second,
            shape=drawn.shape,
            rtol=RTOL,
            atol=_atol(_reference(case, drawn, "none")),
        )
        values = support.to_numpy(loss)
        lower, upper = case.bounds(
            values,
            np.broadcast_to(drawn.first, drawn.shape),
            drawn.second,
        )
        # bounds by hand (the comments on CASES), with a rounding slack for the floor
        # of the Poisson losses, which the loss reaches where ŷ = y
        slack = 1e-12 * (1.0 + np.abs(values))
        assert np.all(values >= lower - slack), (values, lower)
        assert np.all(values <= upper), (values, upper)


def _reference(case: Case, drawn: Drawn, reduction: str, *, masked: bool = True):
    # expected: Spotlight's formula in float64 (support.ref_*), reduced by ref_reduce
    loss = case.reference(drawn.first, drawn.second, **case.kwargs)
    return support.ref_reduce(loss, drawn.mask if masked else None, reduction)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
class TestReductions:
    @PROPERTY
    @given(data=st.data())
    def test_none_sum_and_mean_agree(self, xp, case, data):
        drawn = data.draw(_inputs(case))
        first, second, mask = _on(xp, drawn)

        weighted = support.to_numpy(_call(case, first, second, mask, "none"))  # L·w
        total = _call(case, first, second, mask, "sum")
        mean = _call(case, first, second, mask, "mean")

        atol = _atol(weighted)
        # expected: the 'none' result of the same call, summed in float64
        support.assert_close(
            total, weighted.sum(), xp=xp, like=second, rtol=RTOL, atol=atol
        )
        count = _weights(drawn).sum()  # the mask counted at the loss's shape
        if drawn.mask is None:
            # 'sum' over the number of elements of the (broadcast) loss
            assert count == weighted.size
            expected = support.to_numpy(total) / count
        elif count == 0:
            expected = 0.0  # contract: an all-zero mask gives 0
        else:
            # Spotlight's masked mean: sum(L·w) / sum(w)
            expected = support.to_numpy(total) / count
            support.assert_close(
                mean,
                weighted.sum() / count,
                xp=xp,
                like=second,
                rtol=RTOL,
                atol=atol / count,
            )
        support.assert_close(
            mean, expected, xp=xp, like=second, rtol=RTOL, atol=atol / max(count, 1.0)
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
class TestBackendAgreement:
    @PROPERTY
    @given(data=st.data(), reduction=st.sampled_from(["mean", "sum", "none"]))
    def test_agrees_with_numpy_and_the_reference(self, xp, case, data, reduction):
        drawn = data.draw(_inputs(case))
        first, second, mask = _on(xp, drawn)
        shape = drawn.shape if reduction == "none" else ()

        result = _call(case, first, second, mask, reduction)

        reference = _reference(case, drawn, reduction)
        atol = _atol(_reference(case, drawn, "none"))
        # expected: Spotlight's formula in float64 (support.ref_*)
        support.assert_close(
            result, reference, xp=xp, like=second, shape=shape, rtol=RTOL, atol=atol
        )
        if support.backend_of(xp) != "numpy":
            # expected: the package on NumPy float64 arrays (this property is about
            # backends agreeing; the reference check above is the independent one)
            numpy_args = _on(np_xp, drawn)
            numpy_result = getattr(al, case.name)(
                *numpy_args, reduction=reduction, **case.kwargs
            )
            support.assert_close(
                result,
                numpy_result,
                xp=xp,
                like=second,
                shape=shape,
                rtol=RTOL,
                atol=atol,
            )
