"""The training loop, written once over the array API.

Batches are drawn on the host with NumPy from one seeded generator (shuffling
and uniform negative sampling), so that a seed gives the same run on every
backend, to float32 rounding; each epoch's arrays move to the model's library with
one ``xp.asarray`` each, and everything after that is array API operations on the
model's arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import arraylosses

from .. import value_and_grad
from . import EXPLICIT, IMPLICIT
from .data import Interactions, generator
from .evaluation import observed_outcome
from .model import Adam, Factorization

Array = Any
Namespace = Any

__all__ = [
    "EXPLICIT_LOSSES",
    "IMPLICIT_LOSSES",
    "Settings",
    "Trained",
    "explicit_target",
    "train",
]

IMPLICIT_LOSSES: dict[str, Callable[..., Array]] = {
    name: getattr(arraylosses, f"{name}_loss") for name in IMPLICIT
}
EXPLICIT_LOSSES: dict[str, Callable[..., Array]] = {
    name: getattr(arraylosses, f"{name}_loss") for name in EXPLICIT
}


@dataclass(frozen=True)
class Settings:
    """How a model is trained.

    Epochs, batch size and negatives are Spotlight's defaults. A smaller
    embedding, a smaller learning rate and a light L2 penalty (Spotlight: 32,
    1e-2 and 0) were chosen on the default dataset, where Spotlight's settings
    overfit within ten epochs.
    """

    epochs: int = 10
    dim: int = 16
    batch_size: int = 256
    learning_rate: float = 5e-3
    l2: float = 1e-5
    negatives: int = 5  # per positive, for the adaptive hinge; the others take 1
    seed: int = 0


@dataclass
class Trained:
    """A trained model and the mean training loss of each of its epochs."""

    model: Factorization
    epoch_losses: list[float] = field(default_factory=list)


def explicit_target(loss: str, ratings: np.ndarray) -> np.ndarray:
    """What the explicit ``loss`` is trained on: the observed outcome, with a
    like as +1 and anything else as -1 for the logistic loss (Spotlight's ±1)."""
    outcome = observed_outcome(loss, ratings)
    return 2 * outcome - 1 if loss == "logistic" else outcome


def train(
    loss: str,
    data: Interactions,
    *,
    xp: Namespace,
    settings: Settings,
    on_batch: Callable[[int, int, int], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> Trained:
    """Train a :class:`Factorization` on ``data`` with the loss named ``loss``.

    Implicit losses score each (user, positive item) pair against uniformly
    sampled negatives; explicit losses fit :func:`explicit_target` of the
    ratings, the Poisson loss through a log-rate (``log_input=True``), so that
    the rate stays positive. The gradients are matrix products: on JAX with a GPU,
    call it inside :func:`~arraylosses.demo.model.float32_matmuls` as the command
    line does, or they are summed in TF32.

    Parameters
    ----------
    loss : str
        A key of :data:`IMPLICIT_LOSSES` or :data:`EXPLICIT_LOSSES`.
    data : Interactions
        Training interactions; explicit losses need their ratings.
    xp : namespace
        The array API namespace to train in.
    settings : Settings
    on_batch : callable, optional
        Called as ``on_batch(epoch, batches_done, batches)`` after each batch.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, mean_loss)`` after each epoch.

    Returns
    -------
    Trained
    """
    targets = None
    if loss in EXPLICIT_LOSSES:
        if data.ratings is None:
            msg = f"the {loss} loss needs ratings, and these interactions have none"
            raise ValueError(msg)
        targets = explicit_target(loss, data.ratings)
    rng = generator(settings.seed, "batches")
    model = Factorization.initial(
        data.n_users, data.n_items, settings.dim, xp=xp, seed=settings.seed
    )
    optimizer = Adam(learning_rate=settings.learning_rate, weight_decay=settings.l2)
    state = optimizer.initial_state(model.parameters, xp)
    step = _implicit_step(loss) if targets is None else _explicit_step(loss)
    negatives = settings.negatives if loss == "adaptive_hinge" else 0

    trained = Trained(model)
    size = len(data)
    batches = -(-size // settings.batch_size)
    for epoch in range(settings.epochs):
        order = rng.permutation(size)
        users = xp.asarray(data.users[order])
        items = xp.asarray(data.items[order])
        if targets is None:
            sampled = rng.integers(0, data.n_items, size=(max(negatives, 1), size))
            third = xp.asarray(sampled if negatives else sampled[0])
        else:
            third = xp.asarray(targets[order])
        total = xp.zeros((), dtype=xp.float32)
        for batch in range(batches):
            start = batch * settings.batch_size
            # the standard leaves a slice past the end unspecified
            stop = min(start + settings.batch_size, size)
            value, gradients = step(
                model, users[start:stop], items[start:stop], third[..., start:stop]
            )
            parameters, state = optimizer.update(model.parameters, gradients, state, xp)
            model = model.with_parameters(parameters)
            total = total + value * (stop - start)
            if on_batch is not None:
                on_batch(epoch, batch + 1, batches)
        mean_loss = float(total) / size
        trained.epoch_losses.append(mean_loss)
        if on_epoch is not None:
            on_epoch(epoch, mean_loss)
    trained.model = model
    return trained


Step = Callable[[Factorization, Array, Array, Array], tuple[Array, tuple[Array, ...]]]


def _implicit_step(loss: str) -> Step:
    loss_and_grad = value_and_grad(IMPLICIT_LOSSES[loss])

    def step(
        model: Factorization, users: Array, positives: Array, negatives: Array
    ) -> tuple[Array, tuple[Array, ...]]:
        positive_scores, user_rows, positive_rows = model.score(users, positives)
        negative_scores, _, negative_rows = model.score(
            users, negatives, user_rows=user_rows
        )
        value, (d_positive, d_negative) = loss_and_grad(
            positive_scores, negative_scores
        )
        gradients = model.gradients(
            users,
            user_rows,
            [
                (positives, positive_rows, d_positive),
                (negatives, negative_rows, d_negative),
            ],
        )
        return value, gradients

    return step


def _explicit_step(loss: str) -> Step:
    loss_and_grad = value_and_grad(EXPLICIT_LOSSES[loss])
    options = {"log_input": True} if loss == "poisson" else {}

    def step(
        model: Factorization, users: Array, items: Array, targets: Array
    ) -> tuple[Array, tuple[Array, ...]]:
        scores, user_rows, item_rows = model.score(users, items)
        value, d_scores = loss_and_grad(targets, scores, **options)
        return value, model.gradients(users, user_rows, [(items, item_rows, d_scores)])

    return step
