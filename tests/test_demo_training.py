"""The demo's model, training loop and metrics: ``arraylosses.demo`` model.py,
training.py and evaluation.py, on every backend (data.py: test_demo_data.py).

The loop is written once over the array API and runs on NumPy, PyTorch, JAX,
CuPy and array-api-strict; it is not for Dask (a documented non-goal: every
batch would be a task graph, and each epoch reads its loss back), so the ``xp``
tests skip Dask. Each test says where its expected values come from:

- "by hand": worked out in the comment beside them;
- "numpy.add.at": NumPy's own unbuffered scatter-add, for ``scatter_add``;
- "finite differences": central differences, in float64 NumPy, of the model
  written out naively (``support.ref_*`` for the losses). They share no code with
  the package nor with any autograd, so they run in every nox session;
- "torch autograd": the same model and losses written directly in float64 PyTorch
  (``torch.nn.functional`` where it has the loss), or ``torch.optim.Adam``; run
  where torch imports and skipped, with the reason, elsewhere;
- "the NumPy run": for the training loop itself, the same seed trained in this
  test run on NumPy, which every other backend must reproduce to float32
  precision (the batches and the initial model are drawn by NumPy on the host).

No function is tagged with ``lazy_xp_function``: the demo is an eager loop by
design (``train`` reads each epoch's loss back as a Python float), so on JAX these
tests run eagerly, as the demo does.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import array_api_compat
import array_api_compat.numpy as np_xp
import numpy as np
import pytest
import support

from arraylosses.demo import data as demo_data
from arraylosses.demo import evaluation as demo_evaluation
from arraylosses.demo import model as demo_model
from arraylosses.demo import training
from arraylosses.demo.data import Interactions, generator, synthetic
from arraylosses.demo.evaluation import (
    LIKE_THRESHOLD,
    observed_outcome,
    popularity_scores,
    predicted_outcome,
    random_scores,
    ranking_metrics,
    rmse,
)
from arraylosses.demo.model import Adam, Factorization, float32_matmuls, scatter_add
from arraylosses.demo.training import (
    EXPLICIT_LOSSES,
    IMPLICIT_LOSSES,
    Settings,
    explicit_target,
    train,
)

ALL_LOSSES = [*IMPLICIT_LOSSES, *EXPLICIT_LOSSES]
FD = "finite differences"
TORCH = "torch autograd"
FD_STEP = 1e-6  # float64 central differences: truncation ~STEP², rounding ~1e-16 / STEP
FD_RTOL, FD_ATOL = 1e-6, 1e-9  # what finite differences can promise


@pytest.fixture(autouse=True)
def _float32_matmuls(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each backend's test under the matrix-product precision the demo's command
    line trains with: JAX on a GPU would otherwise multiply in TF32."""
    if "xp" not in request.fixturenames:
        yield
        return
    backend = support.backend_of(request.getfixturevalue("xp"))
    with float32_matmuls(backend):
        yield


def usable(xp: ModuleType) -> str:
    """The backend's name; skips Dask, which the training loop is not for."""
    backend = support.backend_of(xp)
    if backend == "dask":
        pytest.skip(
            "the training loop is not for Dask: a documented non-goal (each batch "
            "would be a task graph and each epoch reads its loss back)"
        )
    return backend


def ints(xp: ModuleType, values: Any) -> Any:
    return support.asarray(xp, np.asarray(values, dtype=np.int64))


def same_namespace(array: Any, xp: ModuleType) -> None:
    assert array_api_compat.array_namespace(array) is xp


# --- scatter_add ---------------------------------------------------------------------


class TestScatterAdd:
    @pytest.mark.parametrize("dtype_name", ["float32", "float64"])
    def test_repeated_indices_accumulate_1d(
        self, xp: ModuleType, dtype_name: str
    ) -> None:
        usable(xp)
        dtype = support.dtype_of(xp, dtype_name)
        values = support.asarray(xp, [1.0, 2.0, 3.0, 4.0, 5.0], dtype)
        result = scatter_add(6, ints(xp, [2, 0, 2, 2, 4]), values, xp=xp)
        # by hand: row 0 gets 2, row 2 gets 1 + 3 + 4 = 8, row 4 gets 5, rows 1, 3, 5 none
        support.assert_close(
            result, [2.0, 0.0, 8.0, 0.0, 5.0, 0.0], xp=xp, like=values, shape=(6,)
        )
        # rows never indexed are exactly 0, not merely small
        assert (support.to_numpy(result)[[1, 3, 5]] == 0).all()

    @pytest.mark.parametrize("dtype_name", ["float32", "float64"])
    def test_repeated_indices_accumulate_2d(
        self, xp: ModuleType, dtype_name: str
    ) -> None:
        usable(xp)
        dtype = support.dtype_of(xp, dtype_name)
        values = support.asarray(
            xp, [[1.0, -1.0], [2.0, 10.0], [0.5, 0.25], [-4.0, 3.0]], dtype
        )
        result = scatter_add(5, ints(xp, [3, 1, 3, 3]), values, xp=xp)
        # by hand: row 1 = [2, 10]; row 3 = [1 + 0.5 - 4, -1 + 0.25 + 3] = [-2.5, 2.25]
        expected = [[0, 0], [2.0, 10.0], [0, 0], [-2.5, 2.25], [0, 0]]
        support.assert_close(result, expected, xp=xp, like=values, shape=(5, 2))
        assert (support.to_numpy(result)[[0, 2, 4]] == 0).all()

    @pytest.mark.parametrize(("rows", "m", "d"), [(7, 50, 3), (1, 4, 2), (9, 1, 5)])
    def test_against_numpy_add_at(
        self, xp: ModuleType, rows: int, m: int, d: int
    ) -> None:
        usable(xp)
        rng = np.random.default_rng(rows * 100 + m)
        index = rng.integers(0, rows, size=m)
        values = rng.standard_normal((m, d)).astype(np.float32)
        expected = np.zeros((rows, d))
        np.add.at(expected, index, values.astype(np.float64))  # expected: numpy.add.at
        like = support.asarray(xp, values, xp.float32)
        result = scatter_add(rows, ints(xp, index), like, xp=xp)
        support.assert_close(result, expected, xp=xp, like=like, shape=(rows, d))

    def test_int32_index(self, xp: ModuleType) -> None:
        usable(xp)
        values = support.asarray(xp, [1.0, 2.0, 3.0], xp.float32)
        index = support.asarray(xp, [1, 1, 0], xp.int32)
        result = scatter_add(3, index, values, xp=xp)
        # by hand: row 0 = 3, row 1 = 1 + 2
        support.assert_close(result, [3.0, 3.0, 0.0], xp=xp, like=values, shape=(3,))

    def test_no_values_gives_zeros(self, xp: ModuleType) -> None:
        usable(xp)
        values = support.asarray(xp, np.zeros((0, 2)), xp.float32)
        result = scatter_add(3, ints(xp, np.zeros(0)), values, xp=xp)
        support.assert_close(result, np.zeros((3, 2)), xp=xp, like=values, shape=(3, 2))

    def test_inputs_unchanged(self, xp: ModuleType) -> None:
        usable(xp)
        index = ints(xp, [0, 0, 1])
        values = support.asarray(xp, [[1.0], [2.0], [3.0]], xp.float32)
        before = support.to_numpy(index), support.to_numpy(values)
        scatter_add(2, index, values, xp=xp)
        np.testing.assert_array_equal(support.to_numpy(index), before[0])
        np.testing.assert_array_equal(support.to_numpy(values), before[1])


# --- the factorization model -----------------------------------------------------------

# A model of 4 users and 6 items of dimension 3, its values exact in float32 so that
# both dtypes see the same numbers. Item 4's large bias makes its hinge terms as a
# positive inactive (n - p + 1 < 0) and as a negative active.
_rng = np.random.default_rng(7)
USERS_TABLE = (0.3 * _rng.standard_normal((4, 3))).astype(np.float32).astype(np.float64)
ITEMS_TABLE = (0.3 * _rng.standard_normal((6, 3))).astype(np.float32).astype(np.float64)
BIASES = np.array([0.125, -0.25, 0.0, 0.375, 2.5, -0.125])
TABLES = (USERS_TABLE, ITEMS_TABLE, BIASES)

# A batch of 6 with repeated users (0 three times, 2 twice), a repeated (user,
# item) pair (0, 1), items both positive and negative, and user 3 and item 5 in no
# row: their gradient rows must be exactly 0.
BATCH_USERS = np.array([0, 2, 0, 1, 2, 0])
POSITIVES = np.array([1, 3, 1, 0, 4, 3])
# 3 negatives per positive; column 0 draws item 2 twice: a tie for the adaptive
# hinge's maximum, whose two copies must share its gradient
NEGATIVES = np.array(
    [
        [2, 0, 3, 2, 1, 2],
        [2, 2, 0, 4, 0, 1],
        [0, 4, 2, 3, 1, 0],
    ]
)
RATINGS = np.array([4.0, 2.0, 5.0, 1.0, 3.0, 4.0])
# by hand: a like (rating >= 4) is +1, anything else -1
LOGISTIC_TARGETS = np.array([1.0, -1.0, 1.0, -1.0, -1.0, 1.0])


def model_of(xp: ModuleType, dtype_name: str, tables: Any = TABLES) -> Factorization:
    dtype = support.dtype_of(xp, dtype_name)
    users, items, biases = (support.asarray(xp, table, dtype) for table in tables)
    return Factorization(users, items, biases, xp)


def ref_scores(users: np.ndarray, items: np.ndarray, tables: Any = TABLES) -> Any:
    """U_u · V_i + b_i in float64, ``items`` with any leading axes."""
    user_table, item_table, biases = tables
    return np.sum(user_table[users] * item_table[items], axis=-1) + biases[items]


class TestFactorization:
    def test_score_one_item_per_user(self, xp: ModuleType) -> None:
        usable(xp)
        model = model_of(xp, "float32")
        scores, user_rows, item_rows = model.score(
            ints(xp, BATCH_USERS), ints(xp, POSITIVES)
        )
        like = model.users
        # expected: U_u · V_i + b_i in float64 NumPy
        expected = ref_scores(BATCH_USERS, POSITIVES)
        support.assert_close(scores, expected, xp=xp, like=like, shape=(6,))
        # the gathered rows, for the backward pass
        support.assert_close(
            user_rows, USERS_TABLE[BATCH_USERS], xp=xp, like=like, shape=(6, 3)
        )
        support.assert_close(
            item_rows, ITEMS_TABLE[POSITIVES], xp=xp, like=like, shape=(6, 3)
        )

    def test_score_with_a_leading_negatives_axis(self, xp: ModuleType) -> None:
        usable(xp)
        model = model_of(xp, "float64")
        scores, user_rows, item_rows = model.score(
            ints(xp, BATCH_USERS), ints(xp, NEGATIVES)
        )
        like = model.users
        # expected: U_u · V_i + b_i in float64 NumPy, user u of column b for all k
        expected = ref_scores(BATCH_USERS, NEGATIVES)
        support.assert_close(scores, expected, xp=xp, like=like, shape=(3, 6))
        support.assert_close(
            item_rows, ITEMS_TABLE[NEGATIVES], xp=xp, like=like, shape=(3, 6, 3)
        )
        support.assert_close(
            user_rows, USERS_TABLE[BATCH_USERS], xp=xp, like=like, shape=(6, 3)
        )

    @pytest.mark.parametrize("dtype_name", ["float32", "float64"])
    def test_all_scores(self, xp: ModuleType, dtype_name: str) -> None:
        usable(xp)
        model = model_of(xp, dtype_name)
        # expected: U Vᵀ + b in float64 NumPy, one row per user
        expected = USERS_TABLE @ ITEMS_TABLE.T + BIASES
        support.assert_close(
            model.all_scores(), expected, xp=xp, like=model.users, shape=(4, 6)
        )

    def test_initial_model(self, xp: ModuleType) -> None:
        usable(xp)
        model = Factorization.initial(200, 300, 8, xp=xp, seed=3)
        for array, shape in (
            (model.users, (200, 8)),
            (model.items, (300, 8)),
            (model.item_biases, (300,)),
        ):
            same_namespace(array, xp)
            assert array.dtype == xp.float32
            assert tuple(array.shape) == shape
        users, items = support.to_numpy(model.users), support.to_numpy(model.items)
        assert (support.to_numpy(model.item_biases) == 0).all()
        # Spotlight's ScaledEmbedding: normal with standard deviation 1 / dim = 0.125
        # (not 1 / sqrt(dim) = 0.35); 4000 draws put the sample's within 5 %
        for table in (users, items):
            assert abs(table.std() - 0.125) < 0.125 * 0.05
            assert abs(table.mean()) < 0.01
        # drawn by NumPy on the host: the same tables on every backend, per seed
        reference = Factorization.initial(200, 300, 8, xp=np_xp, seed=3)
        np.testing.assert_array_equal(users, reference.users)
        np.testing.assert_array_equal(items, reference.items)
        other = Factorization.initial(200, 300, 8, xp=np_xp, seed=4)
        assert not np.array_equal(other.users, reference.users)

    def test_with_parameters_replaces_the_tables_only(self, xp: ModuleType) -> None:
        usable(xp)
        model = model_of(xp, "float32")
        tables = tuple(xp.zeros_like(table) for table in model.parameters)
        replaced = model.with_parameters(tables)
        assert replaced.parameters == tables
        assert replaced.xp is xp
        # the original model is untouched (a frozen dataclass, replaced not mutated)
        np.testing.assert_array_equal(support.to_numpy(model.users), USERS_TABLE)


# --- gradients of a training step ---------------------------------------------------------


def ref_objective(loss: str, tables: Any, third: np.ndarray) -> float:
    """The mean loss of the batch as a function of the three tables, in float64:
    Spotlight's formulas (``support.ref_*``) on the model's scores."""
    if loss in EXPLICIT_LOSSES:
        x = ref_scores(BATCH_USERS, POSITIVES, tables)
        elementwise = {
            "regression": lambda: support.ref_regression(third, x),
            "poisson": lambda: support.ref_poisson(third, x, log_input=True),
            "logistic": lambda: support.ref_logistic(third, x),
        }[loss]()
        return float(np.mean(elementwise))
    p = ref_scores(BATCH_USERS, POSITIVES, tables)
    n = ref_scores(BATCH_USERS, third, tables)
    reference = {
        "pointwise": support.ref_pointwise,
        "bpr": support.ref_bpr,
        "hinge": support.ref_hinge,
        "adaptive_hinge": support.ref_adaptive_hinge,
    }[loss]
    return float(np.mean(reference(p, n)))


def keep_clear_of_kinks(loss: str, third: np.ndarray) -> None:
    """A difference quotient is the derivative only away from the hinge's margin
    and from ties between different items for the adaptive hinge's maximum."""
    p = ref_scores(BATCH_USERS, POSITIVES)
    n = ref_scores(BATCH_USERS, third)
    if loss == "adaptive_hinge":
        for column in range(n.shape[1]):
            distinct = sorted(set(n[:, column].tolist()), reverse=True)
            assert len(distinct) == 1 or distinct[0] - distinct[1] > 1e-3
        n = n.max(axis=0)
    if loss in ("hinge", "adaptive_hinge"):
        assert np.abs(n - p + 1).min() > 1e-3


def finite_differences(loss: str, third: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """The objective and its gradient by central differences, in float64 NumPy."""
    if loss in IMPLICIT_LOSSES:
        keep_clear_of_kinks(loss, third)
    gradients = []
    for which, table in enumerate(TABLES):
        gradient = np.zeros_like(table)
        for place in np.ndindex(table.shape):
            shifted = []
            for sign in (1.0, -1.0):
                tables = [t.copy() for t in TABLES]
                tables[which][place] += sign * FD_STEP
                shifted.append(ref_objective(loss, tables, third))
            gradient[place] = (shifted[0] - shifted[1]) / (2 * FD_STEP)
        gradients.append(gradient)
    return ref_objective(loss, TABLES, third), gradients


def torch_autograd(loss: str, third: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """The objective and its gradient by PyTorch's autograd of the same model and
    losses, written directly in float64 torch."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    users_table, items_table, biases = (
        torch.tensor(table, dtype=torch.float64, requires_grad=True) for table in TABLES
    )
    user_rows = users_table[torch.as_tensor(BATCH_USERS)]

    def score(ids: np.ndarray) -> Any:
        ids = torch.as_tensor(ids)
        return (user_rows * items_table[ids]).sum(-1) + biases[ids]

    target = torch.as_tensor(third, dtype=torch.float64)
    p = score(POSITIVES)
    if loss == "regression":
        value = functional.mse_loss(p, target)
    elif loss == "poisson":  # with log_input: exp(x) - y·x
        value = functional.poisson_nll_loss(p, target, log_input=True)
    elif loss == "logistic":
        value = functional.binary_cross_entropy_with_logits(p, target.clamp(0, 1))
    else:
        n = score(third)
        value = {
            "pointwise": lambda: (1 - torch.sigmoid(p)) + torch.sigmoid(n),
            "bpr": lambda: 1 - torch.sigmoid(p - n),
            "hinge": lambda: torch.clamp(n - p + 1, min=0),
            "adaptive_hinge": lambda: torch.clamp(torch.amax(n, 0) - p + 1, min=0),
        }[loss]().mean()
    value.backward()
    gradients = [support.to_numpy(t.grad) for t in (users_table, items_table, biases)]
    return value.item(), gradients


# (loss, third argument of the step): the implicit losses as the loop calls them,
# with one negative per positive (the adaptive hinge: several), and BPR with a
# leading negatives axis too; the explicit losses with their targets
STEP_CASES = [
    pytest.param("pointwise", NEGATIVES[0], id="pointwise"),
    pytest.param("bpr", NEGATIVES[0], id="bpr"),
    pytest.param("bpr", NEGATIVES, id="bpr-k-negatives"),
    pytest.param("hinge", NEGATIVES[0], id="hinge"),
    pytest.param("adaptive_hinge", NEGATIVES, id="adaptive_hinge"),
    pytest.param("regression", RATINGS, id="regression"),
    pytest.param("poisson", RATINGS, id="poisson"),
    pytest.param("logistic", LOGISTIC_TARGETS, id="logistic"),
]
# each reference meets both dtypes between them; torch's autograd is float64-exact
REFERENCE_PAIRINGS = [("float32", FD), ("float64", FD), ("float64", TORCH)]


class TestTrainingStep:
    """One step's loss and its gradients with respect to the three tables."""

    @pytest.mark.parametrize(("dtype_name", "reference"), REFERENCE_PAIRINGS)
    @pytest.mark.parametrize(("loss", "third"), STEP_CASES)
    def test_gradients(
        self,
        xp: ModuleType,
        loss: str,
        third: np.ndarray,
        dtype_name: str,
        reference: str,
    ) -> None:
        usable(xp)
        # expected: see `reference`: central differences of Spotlight's formulas in
        # float64 NumPy, or PyTorch's autograd of the model written in float64 torch
        compute = finite_differences if reference == FD else torch_autograd
        expected_value, expected = compute(loss, third)
        model = model_of(xp, dtype_name)
        if loss in EXPLICIT_LOSSES:
            step = training._explicit_step(loss)
            last = support.asarray(xp, third, model.users.dtype)
        else:
            step = training._implicit_step(loss)
            last = ints(xp, third)
        value, gradients = step(model, ints(xp, BATCH_USERS), ints(xp, POSITIVES), last)
        # float32: support's float32 tolerances; float64 against torch: its float64
        # ones (both exact); float64 against differences: what those can promise
        use_fd_tolerance = reference == FD and dtype_name == "float64"
        tolerance = {"rtol": FD_RTOL, "atol": FD_ATOL} if use_fd_tolerance else {}
        like = model.users
        support.assert_close(value, expected_value, xp=xp, like=like, **tolerance)
        assert len(gradients) == 3
        for gradient, want, table in zip(gradients, expected, TABLES, strict=True):
            support.assert_close(
                gradient, want, xp=xp, like=like, shape=table.shape, **tolerance
            )
        d_users, d_items, d_biases = (support.to_numpy(g) for g in gradients)
        # user 3 and item 5 are in no row of the batch: exactly 0
        assert (d_users[3] == 0).all()
        assert (d_items[5] == 0).all()
        assert d_biases[5] == 0

    def test_step_leaves_the_model_and_batch_unchanged(self, xp: ModuleType) -> None:
        usable(xp)
        model = model_of(xp, "float32")
        batch = (ints(xp, BATCH_USERS), ints(xp, POSITIVES), ints(xp, NEGATIVES))
        before = [support.to_numpy(a) for a in (*model.parameters, *batch)]
        training._implicit_step("adaptive_hinge")(model, *batch)
        after = [support.to_numpy(a) for a in (*model.parameters, *batch)]
        for old, new in zip(before, after, strict=True):
            np.testing.assert_array_equal(new, old)


# --- Adam ------------------------------------------------------------------------------

PARAMETERS = (np.array([1.0, -2.0, 0.5, 3.0]), np.array([[0.25, -0.5], [1.5, 0.0]]))
GRADIENTS = (np.array([0.5, -4.0, 0.0, 1e-9]), np.array([[2.0, -0.125], [0.0, 1.0]]))


def as_arrays(xp: ModuleType, values: tuple[np.ndarray, ...], dtype: Any) -> tuple:
    return tuple(support.asarray(xp, v, dtype) for v in values)


class TestAdam:
    @pytest.mark.parametrize("dtype_name", ["float32", "float64"])
    def test_first_step_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        usable(xp)
        dtype = support.dtype_of(xp, dtype_name)
        parameters = as_arrays(xp, PARAMETERS, dtype)
        gradients = as_arrays(xp, GRADIENTS, dtype)
        adam = Adam(learning_rate=0.1)
        state = adam.initial_state(parameters, xp)
        assert state.step == 0
        new, state = adam.update(parameters, gradients, state, xp)
        assert state.step == 1
        for result, parameter, gradient, first, second, old in zip(
            new,
            PARAMETERS,
            GRADIENTS,
            state.first,
            state.second,
            parameters,
            strict=True,
        ):
            shape = parameter.shape
            # by hand: m = (1 - 0.9) g and v = (1 - 0.999) g², so the bias-corrected
            # m̂ = g and v̂ = g², and θ moves by lr · g / (|g| + eps): almost lr · sign(g),
            # 0 where g = 0, and lr / 11 where g = 1e-9 = eps / 10
            expected = parameter - 0.1 * gradient / (np.abs(gradient) + 1e-8)
            support.assert_close(result, expected, xp=xp, like=old, shape=shape)
            support.assert_close(first, 0.1 * gradient, xp=xp, like=old, shape=shape)
            support.assert_close(
                second, 0.001 * gradient**2, xp=xp, like=old, shape=shape
            )
        # spelled out: 1 - 0.1 / (1 + 2e-8), -2 + 0.1 / (1 + 2.5e-9), 0.5, 3 - 0.1 / 11
        np.testing.assert_allclose(
            support.to_numpy(new[0]),
            [0.9, -1.9, 0.5, 3 - 0.1 / 11],
            rtol=1e-6 if dtype_name == "float32" else 1e-7,
        )

    @pytest.mark.parametrize("weight_decay", [0.0, 0.1])
    def test_several_steps_as_torch_optim_adam(
        self, xp: ModuleType, weight_decay: float
    ) -> None:
        usable(xp)
        torch = pytest.importorskip("torch")
        rng = np.random.default_rng(11)
        steps = [
            tuple(rng.standard_normal(p.shape) for p in PARAMETERS) for _ in range(5)
        ]
        adam = Adam(learning_rate=0.05, weight_decay=weight_decay)
        parameters = as_arrays(xp, PARAMETERS, xp.float64)
        state = adam.initial_state(parameters, xp)
        # expected: torch.optim.Adam on float64 tensors, same hyperparameters
        tensors = [torch.tensor(p, dtype=torch.float64) for p in PARAMETERS]
        optimizer = torch.optim.Adam(tensors, lr=0.05, weight_decay=weight_decay)
        for gradients in steps:
            parameters, state = adam.update(
                parameters, as_arrays(xp, gradients, xp.float64), state, xp
            )
            for tensor, gradient in zip(tensors, gradients, strict=True):
                tensor.grad = torch.tensor(gradient, dtype=torch.float64)
            optimizer.step()
            for result, tensor in zip(parameters, tensors, strict=True):
                support.assert_close(
                    result,
                    support.to_numpy(tensor),
                    xp=xp,
                    like=result,
                    shape=tuple(tensor.shape),
                    dtype=xp.float64,
                )
        assert state.step == 5

    def test_defaults_are_pytorchs_with_spotlights_learning_rate(self) -> None:
        torch = pytest.importorskip("torch")
        defaults = torch.optim.Adam([torch.zeros(1)]).defaults
        adam = Adam()
        assert (adam.beta1, adam.beta2) == defaults["betas"]
        assert adam.eps == defaults["eps"]
        assert adam.weight_decay == defaults["weight_decay"]
        assert adam.learning_rate == 1e-2  # Spotlight's

    def test_inputs_unchanged(self, xp: ModuleType) -> None:
        usable(xp)
        adam = Adam(learning_rate=0.1, weight_decay=0.5)
        parameters = as_arrays(xp, PARAMETERS, xp.float32)
        gradients = as_arrays(xp, GRADIENTS, xp.float32)
        state = adam.initial_state(parameters, xp)
        new, state = adam.update(parameters, gradients, state, xp)
        arrays = (*new, *gradients, *state.first, *state.second)
        before = [support.to_numpy(a) for a in arrays]
        adam.update(new, gradients, state, xp)
        for old, array in zip(before, arrays, strict=True):
            np.testing.assert_array_equal(support.to_numpy(array), old)
        for array, original in zip(parameters, PARAMETERS, strict=True):
            np.testing.assert_array_equal(support.to_numpy(array), original)


# --- the training loop ---------------------------------------------------------------------

TINY = synthetic(n_users=30, n_items=40, mean_interactions=8, seed=3)
SETTINGS = Settings(epochs=2, dim=4, batch_size=16, seed=5)


@functools.cache
def trained(backend: str, loss: str, seed: int) -> training.Trained:
    """One run per (backend, loss, seed), shared by the tests that only read it."""
    xp = np_xp if backend == "numpy" else _NAMESPACES[backend]
    return train(loss, TINY, xp=xp, settings=dataclasses.replace(SETTINGS, seed=seed))


_NAMESPACES: dict[str, ModuleType] = {}


def run(xp: ModuleType, loss: str, seed: int = SETTINGS.seed) -> training.Trained:
    backend = usable(xp)
    _NAMESPACES[backend] = xp
    return trained(backend, loss, seed)


@pytest.mark.parametrize("loss", ALL_LOSSES)
class TestTrain:
    def test_finite_epoch_losses(self, xp: ModuleType, loss: str) -> None:
        losses = run(xp, loss).epoch_losses
        assert len(losses) == SETTINGS.epochs
        assert all(type(value) is float and math.isfinite(value) for value in losses)

    def test_model_arrays_are_the_backends(self, xp: ModuleType, loss: str) -> None:
        model = run(xp, loss).model
        assert model.xp is xp
        for array, shape in (
            (model.users, (TINY.n_users, SETTINGS.dim)),
            (model.items, (TINY.n_items, SETTINGS.dim)),
            (model.item_biases, (TINY.n_items,)),
        ):
            same_namespace(array, xp)
            assert array.dtype == xp.float32
            assert tuple(array.shape) == shape
            assert np.isfinite(support.to_numpy(array)).all()

    def test_same_seed_same_run(self, xp: ModuleType, loss: str) -> None:
        first = run(xp, loss)
        again = train(loss, TINY, xp=xp, settings=SETTINGS)
        assert again.epoch_losses == first.epoch_losses
        for mine, theirs in zip(
            again.model.parameters, first.model.parameters, strict=True
        ):
            np.testing.assert_array_equal(
                support.to_numpy(mine), support.to_numpy(theirs)
            )

    def test_same_run_as_on_numpy(self, xp: ModuleType, loss: str) -> None:
        # expected: the NumPy run of the same seed, computed in this test run; the
        # batches, negatives and initial model are drawn by NumPy on the host, so
        # every backend must follow it to float32 precision
        mine = run(xp, loss)
        reference = trained("numpy", loss, SETTINGS.seed)
        np.testing.assert_allclose(mine.epoch_losses, reference.epoch_losses, rtol=1e-5)
        # the model's scores more loosely: a gradient that cancels to 0 on one
        # backend and to a rounding residual of ~1e-9 on another moves its parameter
        # by Adam's lr · g / (|g| + eps), up to lr / 10 = 5e-4 apart
        np.testing.assert_allclose(
            support.to_numpy(mine.model.all_scores()),
            reference.model.all_scores(),
            rtol=1e-3,
            atol=2e-3,
        )


class TestTrainLoop:
    # one loss of each kind of step: one negative, several, and ratings
    @pytest.mark.parametrize("loss", ["bpr", "adaptive_hinge", "regression"])
    def test_other_seed_other_run(self, xp: ModuleType, loss: str) -> None:
        assert run(xp, loss, seed=6).epoch_losses != run(xp, loss).epoch_losses

    @pytest.mark.parametrize("loss", ALL_LOSSES)
    def test_training_decreases_the_loss(self, loss: str) -> None:
        # a learnable dataset (planted rank-8 preferences) and a brisk learning rate
        data = synthetic(n_users=40, n_items=30, mean_interactions=10, seed=0)
        settings = Settings(epochs=5, dim=8, batch_size=32, learning_rate=2e-2)
        losses = train(loss, data, xp=np_xp, settings=settings).epoch_losses
        if loss == "adaptive_hinge":
            # the hardest of 5 fresh negatives each epoch: noisy, but lower by the end
            assert losses[-1] < losses[0]
        else:
            assert all(b < a for a, b in itertools.pairwise(losses)), losses
            assert losses[-1] < losses[0] - 0.05 * abs(losses[0]), losses

    def test_each_random_draw_has_a_stream_of_its_own(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # one --seed feeds the data, the split, the first tables, the batches and
        # the random baseline. expected: each asks generator() for a purpose of its
        # own (one seed for all made the first user table the synthetic users'
        # planted factors), and a purpose's stream is reproducible
        asked: list[tuple[str, str]] = []
        for module in (demo_data, demo_evaluation, demo_model, training):
            real = module.generator

            def recording(seed: int, purpose: str, real=real, module=module) -> Any:
                asked.append((module.__name__.rsplit(".", 1)[1], purpose))
                return real(seed, purpose)

            monkeypatch.setattr(module, "generator", recording)
        seed = 7
        data = demo_data.synthetic(
            n_users=6, n_items=12, mean_interactions=6, seed=seed
        )
        demo_data.train_test_split(data, seed=seed)
        demo_evaluation.random_scores(6, 12, seed=seed)
        settings = Settings(epochs=1, dim=2, batch_size=100, seed=seed)
        trained = train("bpr", data, xp=np_xp, settings=settings)
        assert asked == [
            ("data", "data"),
            ("data", "split"),
            ("evaluation", "random baseline"),
            ("training", "batches"),
            ("model", "tables"),
        ]
        assert len({purpose for _, purpose in asked}) == len(asked)
        # the tables, drawn again from their own stream (by hand: N(0, 1/dim))
        model = Factorization.initial(6, 12, 2, xp=np_xp, seed=seed)
        tables = generator(seed, "tables").normal(0.0, 1.0 / 2, size=(6, 2))
        np.testing.assert_array_equal(model.users, tables.astype(np.float32))
        assert trained.epoch_losses  # the training ran through its batches

    def test_epoch_loss_is_the_mean_over_interactions(self, xp: ModuleType) -> None:
        usable(xp)
        # with a zero learning rate the model stays at its initial tables; the epoch
        # loss is then the mean squared error over all 220 interactions, the short
        # last batch (220 = 100 + 100 + 20) weighted by its size, not a mean of means
        assert len(TINY) == 220
        settings = Settings(epochs=1, dim=4, batch_size=100, learning_rate=0.0, seed=2)
        result = train("regression", TINY, xp=xp, settings=settings)
        initial = Factorization.initial(TINY.n_users, TINY.n_items, 4, xp=np_xp, seed=2)
        tables = tuple(t.astype(np.float64) for t in initial.parameters)
        # expected: (y - U_u · V_i - b_i)² averaged in float64 NumPy
        scores = np.sum(tables[0][TINY.users] * tables[1][TINY.items], axis=-1)
        expected = np.mean((TINY.ratings - scores - tables[2][TINY.items]) ** 2)
        assert result.epoch_losses == pytest.approx([expected], rel=1e-5)

    def test_callbacks(self) -> None:
        batches: list[tuple[int, int, int]] = []
        epochs: list[tuple[int, float]] = []
        settings = Settings(epochs=2, dim=4, batch_size=100)
        result = train(
            "bpr",
            TINY,
            xp=np_xp,
            settings=settings,
            on_batch=lambda *args: batches.append(args),
            on_epoch=lambda *args: epochs.append(args),
        )
        # by hand: 220 interactions in batches of 100 is 3 batches per epoch
        assert batches == [(e, b, 3) for e in range(2) for b in (1, 2, 3)]
        assert epochs == list(enumerate(result.epoch_losses))

    def test_a_batch_larger_than_the_data(self) -> None:
        batches: list[tuple[int, int, int]] = []
        settings = Settings(epochs=2, dim=4, batch_size=10_000)
        result = train(
            "adaptive_hinge",
            TINY,
            xp=np_xp,
            settings=settings,
            on_batch=lambda *args: batches.append(args),
        )
        assert batches == [(0, 1, 1), (1, 1, 1)]
        assert all(math.isfinite(value) for value in result.epoch_losses)

    @pytest.mark.parametrize("loss", list(EXPLICIT_LOSSES))
    def test_explicit_loss_needs_ratings(self, loss: str) -> None:
        no_ratings = dataclasses.replace(TINY, ratings=None)
        with pytest.raises(ValueError, match=f"the {loss} loss needs ratings"):
            train(loss, no_ratings, xp=np_xp, settings=SETTINGS)

    @pytest.mark.parametrize("loss", list(IMPLICIT_LOSSES))
    def test_implicit_loss_ignores_ratings(self, loss: str) -> None:
        no_ratings = dataclasses.replace(TINY, ratings=None)
        without = train(loss, no_ratings, xp=np_xp, settings=SETTINGS)
        assert (
            without.epoch_losses == trained("numpy", loss, SETTINGS.seed).epoch_losses
        )


class TestExplicitTarget:
    def test_targets(self) -> None:
        ratings = np.array([1.0, 3.0, 3.5, 4.0, 5.0], dtype=np.float32)
        # by hand: the rating itself, and for the logistic loss ±1 for a like
        # (rating >= 4) or not
        for loss in ("regression", "poisson"):
            target = explicit_target(loss, ratings)
            assert target.dtype == np.float32
            np.testing.assert_array_equal(target, ratings)
        target = explicit_target("logistic", ratings)
        assert target.dtype == np.float32
        np.testing.assert_array_equal(target, [-1.0, -1.0, -1.0, 1.0, 1.0])


# --- evaluation --------------------------------------------------------------------------

# 3 users, 4 items. User 2 has no test items, so the averages leave them out.
RANKING_TRAIN = Interactions(
    np.array([0, 1, 2], dtype=np.int64), np.array([0, 3, 1], dtype=np.int64), None, 3, 4
)
RANKING_TEST = Interactions(
    np.array([0, 0, 1, 1], dtype=np.int64),
    np.array([1, 2, 0, 2], dtype=np.int64),
    None,
    3,
    4,
)
# user 0's training item 0 scores highest but must not be ranked above unseen ones
RANKING_SCORES = np.array(
    [[9.0, 1.0, 5.0, 3.0], [4.0, 2.0, 1.0, 8.0], [0.0, 1.0, 2.0, 3.0]]
)


class TestRankingMetrics:
    # by hand, training items excluded (ranked last):
    #   user 0 ranks items 2, 3, 1 (then 0): test items 1 and 2 at ranks 3 and 1,
    #   reciprocal rank (1/3 + 1) / 2 = 2/3; top 1 {2}: 1 hit; top 2 {2, 3}: 1;
    #   top 3 {2, 3, 1}: 2
    #   user 1 ranks items 0, 1, 2 (then 3): test items 0 and 2 at ranks 1 and 3,
    #   reciprocal rank 2/3; top 1 {0}: 1 hit; top 2 {0, 1}: 1; top 3: 2
    #   user 2 has no test items: left out of both averages
    # MRR = (2/3 + 2/3) / 2; P@k = mean over users of hits / k: P@1 = 1, P@2 = 1/2,
    # P@3 = 2/3, and P@10 = (2/4 + 2/4) / 2 = 0.5 (k beyond the 4 items divides by
    # the 4 ranked, as Spotlight's precision_recall_score divides by the length of
    # its slice of the first k)
    @pytest.mark.parametrize(
        ("k", "precision"), [(1, 1.0), (2, 0.5), (3, 2 / 3), (10, 0.5)]
    )
    def test_by_hand(self, xp: ModuleType, k: int, precision: float) -> None:
        usable(xp)
        scores = support.asarray(xp, RANKING_SCORES, xp.float32)
        ranking = ranking_metrics(scores, RANKING_TRAIN, RANKING_TEST, xp=xp, k=k)
        assert type(ranking.mrr) is float
        assert ranking.mrr == pytest.approx(2 / 3, rel=1e-6)
        # precision at the k passed
        assert ranking.precision_at_k == pytest.approx(precision, rel=1e-6)

    def test_a_repeated_test_pair_counts_once(self, xp: ModuleType) -> None:
        usable(xp)
        # user 0's test item 1 appears twice, as in an event log. expected: as
        # without the repeat (Spotlight's tocsr() sums a repeated pair into one
        # entry), test_by_hand's MRR 2/3 and P@2 1/2; counted twice, user 0's
        # reciprocal rank would read (1/3 + 1/3 + 1) / 3 = 5/9
        repeated = Interactions(
            np.concatenate([RANKING_TEST.users, [0]]),
            np.concatenate([RANKING_TEST.items, [1]]),
            None,
            RANKING_TEST.n_users,
            RANKING_TEST.n_items,
        )
        scores = support.asarray(xp, RANKING_SCORES, xp.float32)
        ranking = ranking_metrics(scores, RANKING_TRAIN, repeated, xp=xp, k=2)
        assert ranking.mrr == pytest.approx(2 / 3, rel=1e-6)
        assert ranking.precision_at_k == pytest.approx(0.5, rel=1e-6)

    def test_default_k_is_10(self, xp: ModuleType) -> None:
        usable(xp)
        scores = support.asarray(xp, RANKING_SCORES, xp.float32)
        ranking = ranking_metrics(scores, RANKING_TRAIN, RANKING_TEST, xp=xp)
        # by hand: P@10 of the 4 items, as in test_by_hand
        assert ranking.precision_at_k == pytest.approx(0.5, rel=1e-6)

    def test_perfect_and_worst_scores(self, xp: ModuleType) -> None:
        usable(xp)
        # by hand: scoring each user's test items above the rest ranks them 1 and 2
        # (MRR (1 + 1/2) / 2 = 3/4, P@2 = 1); scoring them lowest of the unseen
        # ranks them 2 and 3 (MRR (1/2 + 1/3) / 2 = 5/12, P@2 = 1/2)
        tested = np.zeros((3, 4))
        tested[RANKING_TEST.users, RANKING_TEST.items] = 1.0
        for scores, mrr, precision in ((tested, 3 / 4, 1.0), (-tested, 5 / 12, 0.5)):
            ranking = ranking_metrics(
                support.asarray(xp, scores + np.arange(4) * 1e-3, xp.float32),
                RANKING_TRAIN,
                RANKING_TEST,
                xp=xp,
                k=2,
            )
            assert ranking.mrr == pytest.approx(mrr, rel=1e-6)
            assert ranking.precision_at_k == pytest.approx(precision, rel=1e-6)

    def test_a_nan_score_gives_a_nan_mrr(self, xp: ModuleType) -> None:
        usable(xp)
        # a NaN score ties with nothing, not even itself: counted as such, its rank
        # would be 1/2 and its reciprocal rank 2, beyond any real one. expected: NaN
        scores = RANKING_SCORES.copy()
        scores[RANKING_TEST.users[0], RANKING_TEST.items[0]] = np.nan
        scores = support.asarray(xp, scores, xp.float32)
        ranking = ranking_metrics(scores, RANKING_TRAIN, RANKING_TEST, xp=xp)
        assert math.isnan(ranking.mrr)

    def test_scores_unchanged(self, xp: ModuleType) -> None:
        usable(xp)
        scores = support.asarray(xp, RANKING_SCORES, xp.float32)
        ranking_metrics(scores, RANKING_TRAIN, RANKING_TEST, xp=xp)
        np.testing.assert_array_equal(support.to_numpy(scores), RANKING_SCORES)


class TestOutcomes:
    @pytest.mark.parametrize("dtype_name", ["float32", "float64"])
    def test_rmse_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        usable(xp)
        dtype = support.dtype_of(xp, dtype_name)
        predicted = support.asarray(xp, [1.0, 2.0, 3.0, 4.0], dtype)
        observed = support.asarray(xp, [1.0, 4.0, 3.0, 0.0], dtype)
        # by hand: errors 0, -2, 0, 4; mean square (4 + 16) / 4 = 5
        result = rmse(predicted, observed, xp=xp)
        assert type(result) is float
        assert result == pytest.approx(math.sqrt(5), rel=1e-7)

    @pytest.mark.parametrize("dtype_name", ["float32", "float64"])
    def test_predicted_outcome_by_hand(self, xp: ModuleType, dtype_name: str) -> None:
        usable(xp)
        dtype = support.dtype_of(xp, dtype_name)
        scores = support.asarray(xp, [0.0, math.log(2), -math.log(3)], dtype)
        # by hand: the score itself; the rate e^score = 1, 2, 1/3; the probability
        # σ(score) = 1/2, 2/3 (σ(ln 2) = 1 / (1 + 1/2)), 1/4 (σ(-ln 3) = 1 / (1 + 3))
        expected = {
            "regression": [0.0, math.log(2), -math.log(3)],
            "poisson": [1.0, 2.0, 1 / 3],
            "logistic": [0.5, 2 / 3, 0.25],
        }
        for loss, values in expected.items():
            result = predicted_outcome(loss, scores, xp=xp)
            support.assert_close(result, values, xp=xp, like=scores, shape=(3,))

    def test_observed_outcome_by_hand(self) -> None:
        ratings = np.array([1.0, 3.5, 4.0, 5.0], dtype=np.float32)
        assert LIKE_THRESHOLD == 4.0
        # by hand: the rating for regression and Poisson; a like (>= 4) as 1 or 0
        for loss in ("regression", "poisson"):
            outcome = observed_outcome(loss, ratings)
            assert outcome.dtype == np.float32
            np.testing.assert_array_equal(outcome, ratings)
        outcome = observed_outcome("logistic", ratings)
        assert outcome.dtype == np.float32
        np.testing.assert_array_equal(outcome, [0.0, 0.0, 1.0, 1.0])
        np.testing.assert_array_equal(ratings, [1.0, 3.5, 4.0, 5.0])


class TestBaselines:
    def test_popularity_by_hand(self) -> None:
        data = Interactions(
            np.array([0, 1, 1, 2, 2], dtype=np.int64),
            np.array([0, 2, 3, 2, 2], dtype=np.int64),
            None,
            3,
            5,
        )
        scores = popularity_scores(data)
        # by hand: item 0 once, item 2 three times, item 3 once, items 1 and 4 never
        assert scores.dtype == np.float32
        # the demo hands these to xp.asarray: torch warns (once per process, so only
        # the first test to do so sees it) on a read-only NumPy array such as a view
        # made by np.broadcast_to
        assert scores.flags.writeable
        np.testing.assert_array_equal(
            scores, np.tile([1.0, 0.0, 3.0, 1.0, 0.0], (3, 1))
        )

    def test_popularity_ranks_on_every_backend(self, xp: ModuleType) -> None:
        usable(xp)
        train_data = Interactions(
            np.array([0, 0, 1, 2, 2, 2], dtype=np.int64),
            np.array([0, 3, 3, 3, 1, 0], dtype=np.int64),
            None,
            3,
            4,
        )
        test_data = Interactions(
            np.array([0, 0, 1, 2], dtype=np.int64),
            np.array([1, 2, 0, 2], dtype=np.int64),
            None,
            3,
            4,
        )
        # as the demo's baseline does: the host's popularity, moved to the backend
        scores = xp.asarray(popularity_scores(train_data))
        ranking = ranking_metrics(scores, train_data, test_data, xp=xp, k=2)
        # by hand: counts 2, 1, 0, 3 for items 0..3, no ties. Unseen items ranked:
        # user 0 {1, 2}: test items 1, 2 at ranks 1, 2 (RR 3/4, 2 hits in the top 2);
        # user 1 {0, 1, 2}: test item 0 at rank 1 (RR 1, 1 hit);
        # user 2 {2}: test item 2 at rank 1 (RR 1, 1 hit)
        # MRR = (3/4 + 1 + 1) / 3 = 11/12; P@2 = (2/2 + 1/2 + 1/2) / 3 = 2/3
        assert ranking.mrr == pytest.approx(11 / 12, rel=1e-6)
        assert ranking.precision_at_k == pytest.approx(2 / 3, rel=1e-6)

    def test_random_scores_are_seeded(self) -> None:
        scores = random_scores(3, 5, seed=1)
        assert scores.shape == (3, 5)
        assert scores.dtype == np.float32
        assert ((scores >= 0) & (scores < 1)).all()
        np.testing.assert_array_equal(random_scores(3, 5, seed=1), scores)
        assert not np.array_equal(random_scores(3, 5, seed=2), scores)
