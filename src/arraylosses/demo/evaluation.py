"""Test metrics, computed over the array API, and the baselines they are read against."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Interactions

# A rating at least this high is a like: the positive class of the logistic loss.
LIKE_THRESHOLD = 4.0

Array = Any
Namespace = Any

__all__ = [
    "LIKE_THRESHOLD",
    "Ranking",
    "observed_outcome",
    "popularity_scores",
    "predicted_outcome",
    "random_scores",
    "ranking_metrics",
    "rmse",
]


@dataclass(frozen=True)
class Ranking:
    """Ranking quality on the test interactions, averaged over test users."""

    mrr: float
    precision_at_10: float


def ranking_metrics(
    scores: Array,
    train: Interactions,
    test: Interactions,
    *,
    xp: Namespace,
    k: int = 10,
) -> Ranking:
    """Mean reciprocal rank and precision at ``k`` of ``scores``, as Spotlight's
    ``mrr_score`` and ``precision_recall_score`` compute them.

    Every item is ranked for every user by ``scores`` (shape (n_users,
    n_items)), the user's training items excluded; a user's reciprocal rank is
    the mean of ``1 / rank`` over their test items, and their precision the
    share of the top ``k`` that are test items. Both are averaged over the
    users who have test items.
    """
    shape = (train.n_users, train.n_items)
    seen = xp.asarray(_dense(train, shape))
    tested = xp.asarray(_dense(test, shape))
    # seen items sink to the bottom, never above an unseen one
    scores = xp.where(seen, -xp.inf, scores)
    order = xp.argsort(-scores, axis=1, stable=True)
    ranks = xp.argsort(order, axis=1, stable=True) + 1  # 1 for the top item
    reciprocal = xp.where(tested, 1.0 / xp.astype(ranks, xp.float32), 0.0)
    in_top_k = xp.astype(tested & (ranks <= k), xp.float32)
    test_counts = xp.sum(xp.astype(tested, xp.float32), axis=1)
    has_test = test_counts > 0
    users = xp.sum(xp.astype(has_test, xp.float32))
    per_user_mrr = xp.sum(reciprocal, axis=1) / xp.where(has_test, test_counts, 1.0)
    mrr = float(xp.sum(per_user_mrr) / users)
    precision = float(xp.sum(in_top_k) / (k * users))
    return Ranking(mrr=mrr, precision_at_10=precision)


def rmse(predicted: Array, observed: Array, *, xp: Namespace) -> float:
    """Root mean squared error."""
    error = predicted - observed
    return math.sqrt(float(xp.mean(error * error)))


def observed_outcome(loss: str, ratings: np.ndarray) -> np.ndarray:
    """What an explicit ``loss``'s model predicts, as observed in ``ratings``:
    the rating for regression and Poisson, and 1 or 0, liked or not, for the
    logistic loss."""
    if loss == "logistic":
        return (ratings >= LIKE_THRESHOLD).astype(np.float32)
    return ratings.astype(np.float32)


def predicted_outcome(loss: str, scores: Array, *, xp: Namespace) -> Array:
    """The model's prediction of :func:`observed_outcome` from its ``scores``:
    the score itself, the rate ``e^score`` (Poisson, trained on log-rates), or
    the probability of a like ``σ(score)`` (logistic)."""
    if loss == "poisson":
        return xp.exp(scores)
    if loss == "logistic":
        return 1.0 / (1.0 + xp.exp(-scores))
    return scores


def random_scores(n_users: int, n_items: int, *, seed: int) -> np.ndarray:
    """Uniformly random scores: the floor any model must clear."""
    rng = np.random.default_rng(seed)
    return rng.random((n_users, n_items)).astype(np.float32)


def popularity_scores(train: Interactions) -> np.ndarray:
    """Each item's number of training interactions, the same for every user."""
    counts = np.bincount(train.items, minlength=train.n_items).astype(np.float32)
    return np.broadcast_to(counts, (train.n_users, train.n_items))


def _dense(data: Interactions, shape: tuple[int, int]) -> np.ndarray:
    matrix = np.zeros(shape, dtype=bool)
    matrix[data.users, data.items] = True
    return matrix
