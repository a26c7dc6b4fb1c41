"""A factorization model, its gradients and an Adam update, over the array API.

Nothing here names an array library: every operation goes through the namespace
``xp`` of the model's own arrays, so one model trains on NumPy, PyTorch, JAX,
CuPy and array-api-strict alike. Gradients come from
:func:`arraylosses.value_and_grad`, and reach the embedding tables through
:func:`scatter_add`.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

from .data import generator

Array = Any
Namespace = Any

__all__ = ["Adam", "Factorization", "float32_matmuls", "scatter_add"]


@dataclass(frozen=True)
class Factorization:
    """User and item embeddings with item biases: ``score(u, i) = U_u · V_i + b_i``.

    The bilinear model of Spotlight's factorization models [1]_, less the user
    bias, which cannot change how one user ranks items.

    Attributes
    ----------
    users : array of shape (n_users, dim)
    items : array of shape (n_items, dim)
    item_biases : array of shape (n_items,)
    xp : namespace
        The array API namespace of the three arrays.

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight
    """

    users: Array
    items: Array
    item_biases: Array
    xp: Namespace

    @classmethod
    def initial(
        cls, n_users: int, n_items: int, dim: int, *, xp: Namespace, seed: int
    ) -> Factorization:
        """Embeddings drawn from a normal distribution of standard deviation
        1/dim, as Spotlight's scaled embeddings, and zero biases; float32, drawn
        by NumPy so that every backend starts alike."""
        rng = generator(seed, "tables")
        scale = 1.0 / dim

        def table(rows: int) -> Array:
            values = rng.normal(0.0, scale, size=(rows, dim)).astype(np.float32)
            return xp.asarray(values)

        users, items = table(n_users), table(n_items)
        return cls(users, items, xp.zeros(n_items, dtype=xp.float32), xp)

    @property
    def parameters(self) -> tuple[Array, Array, Array]:
        return self.users, self.items, self.item_biases

    def with_parameters(self, parameters: tuple[Array, ...]) -> Factorization:
        users, items, item_biases = parameters
        return replace(self, users=users, items=items, item_biases=item_biases)

    def score(
        self, users: Array, items: Array, *, user_rows: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """Scores of ``items`` for ``users`` (same shape, or ``items`` with a
        leading axis of several per user), with the gathered embeddings
        ``(scores, user_rows, item_rows)`` for the backward pass; ``user_rows``,
        the users' rows from an earlier call, saves gathering them again."""
        xp = self.xp
        if user_rows is None:
            user_rows = xp.take(self.users, users, axis=0)
        flat_items = xp.reshape(items, (-1,))
        item_rows = xp.reshape(
            xp.take(self.items, flat_items, axis=0), (*items.shape, -1)
        )
        biases = xp.reshape(xp.take(self.item_biases, flat_items), items.shape)
        # a leading axis of items broadcasts against the users' rows
        scores = xp.sum(user_rows * item_rows, axis=-1) + biases
        return scores, user_rows, item_rows

    def all_scores(self) -> Array:
        """Scores of every item for every user, shape (n_users, n_items)."""
        xp = self.xp
        return (
            xp.matmul(self.users, xp.permute_dims(self.items, (1, 0)))
            + self.item_biases
        )

    def gradients(
        self,
        users: Array,
        user_rows: Array,
        scored: list[tuple[Array, Array, Array]],
    ) -> tuple[Array, Array, Array]:
        """Gradients of the loss with respect to the three tables.

        ``scored`` lists, for each set of scores the loss saw, ``(items,
        item_rows, d_scores)``: the item ids, their gathered embeddings and the
        loss's gradient with respect to those scores.
        """
        xp = self.xp
        dim = user_rows.shape[-1]
        d_user_rows = xp.zeros_like(user_rows)
        item_ids, d_item_columns = [], []
        for items, item_rows, d_scores in scored:
            d_each = d_scores[..., None]
            # d(U·V + b)/dU = V, /dV = U and /db = 1; several items per user add up
            d_user_rows = d_user_rows + _sum_leading(d_each * item_rows, user_rows, xp)
            item_ids.append(xp.reshape(items, (-1,)))
            d_item_rows = xp.reshape(d_each * user_rows, (-1, dim))
            # the bias as one more column: one scatter for both tables
            d_item_columns.append(
                xp.concat([d_item_rows, xp.reshape(d_scores, (-1, 1))], axis=1)
            )
        d_items = scatter_add(
            self.items.shape[0], xp.concat(item_ids), xp.concat(d_item_columns), xp=xp
        )
        d_users = scatter_add(self.users.shape[0], users, d_user_rows, xp=xp)
        return d_users, d_items[:, :dim], d_items[:, dim]


def _sum_leading(values: Array, like: Array, xp: Namespace) -> Array:
    """Sum ``values`` over the axes it has before ``like``'s."""
    extra = values.ndim - like.ndim
    return xp.sum(values, axis=tuple(range(extra))) if extra else values


def scatter_add(rows: int, index: Array, values: Array, *, xp: Namespace) -> Array:
    """A zero table of ``rows`` rows with ``values[j]`` added to row ``index[j]``.

    Repeated indices accumulate, as ``numpy.add.at`` and ``torch.index_add``
    do; the array API has neither, so this multiplies by the transposed one-hot
    matrix of ``index``: exact sums, at a cost of ``len(index) × rows``, which
    suits the batch sizes and catalogues of the demo. The sums are exact only where
    float32 matrices are multiplied in float32: JAX on a GPU does so only inside
    :func:`float32_matmuls`, where the demo's command line trains.

    Parameters
    ----------
    rows : int
        Rows of the table.
    index : array of shape (m,)
        Integer rows, each in ``[0, rows)``.
    values : array of shape (m,) or (m, d)
        What to add.

    Returns
    -------
    array of shape (rows,) or (rows, d)
    """
    row_ids = xp.arange(rows, dtype=index.dtype, device=index.device)
    # built as (rows, m), not transposed after: a contiguous operand halves the matmul
    one_hot = xp.astype(row_ids[:, None] == index[None, :], values.dtype)
    return xp.matmul(one_hot, values)


def float32_matmuls(backend: str) -> contextlib.AbstractContextManager[object]:
    """A context in which ``backend`` multiplies float32 matrices in float32.

    XLA on a GPU multiplies float32 matrices in TF32, 10 bits of mantissa, unless
    told otherwise; the model's gradients (:func:`scatter_add` is a matrix product)
    and its rankings would then drift from every other backend's run of the same
    seed.

    Parameters
    ----------
    backend : str
        One of the demo's ``--backend`` choices.

    Returns
    -------
    context manager
        ``jax.default_matmul_precision("highest")`` for JAX; for the others, which
        multiply in float32 unless told otherwise, one that does nothing.
    """
    if backend == "jax":
        jax = importlib.import_module("jax")
        return cast(
            "contextlib.AbstractContextManager[object]",
            jax.default_matmul_precision("highest"),
        )
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Adam:
    """Adam [1]_ over a tuple of arrays, without modifying any of them.

    The defaults are PyTorch's, with Spotlight's learning rate.

    References
    ----------
    .. [1] Kingma, Diederik P. and Jimmy Ba. "Adam: A method for stochastic
       optimization." International Conference on Learning Representations
       (ICLR), 2015.
    """

    learning_rate: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = (
        0.0  # an L2 penalty of weight_decay / 2 · ||θ||², as PyTorch's
    )

    def initial_state(self, parameters: tuple[Array, ...], xp: Namespace) -> AdamState:
        zeros = tuple(xp.zeros_like(p) for p in parameters)
        return AdamState(step=0, first=zeros, second=zeros)

    def update(
        self,
        parameters: tuple[Array, ...],
        gradients: tuple[Array, ...],
        state: AdamState,
        xp: Namespace,
    ) -> tuple[tuple[Array, ...], AdamState]:
        """One step: the new parameters and the new state."""
        step = state.step + 1
        # the bias corrections folded into the step size and epsilon, as in the paper
        step_size = (
            self.learning_rate
            * math.sqrt(1 - self.beta2**step)
            / (1 - self.beta1**step)
        )
        eps = self.eps * math.sqrt(1 - self.beta2**step)
        new_parameters, firsts, seconds = [], [], []
        for parameter, raw_gradient, old_first, old_second in zip(
            parameters, gradients, state.first, state.second, strict=True
        ):
            gradient = raw_gradient
            if self.weight_decay:
                gradient = gradient + self.weight_decay * parameter
            first = self.beta1 * old_first + (1 - self.beta1) * gradient
            second = self.beta2 * old_second + (1 - self.beta2) * (gradient * gradient)
            new_parameters.append(
                parameter - step_size * first / (xp.sqrt(second) + eps)
            )
            firsts.append(first)
            seconds.append(second)
        return tuple(new_parameters), AdamState(step, tuple(firsts), tuple(seconds))


@dataclass(frozen=True)
class AdamState:
    """Adam's step count and moment estimates."""

    step: int
    first: tuple[Array, ...]
    second: tuple[Array, ...]
