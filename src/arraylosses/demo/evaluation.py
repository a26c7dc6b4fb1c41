"""Test metrics, computed over the array API, and the baselines they are read against."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Interactions, distinct_pairs, generator

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
    precision_at_k: float
    k: int


# test interactions ranked at a time: each needs a row of every item's score
_BLOCK = 1024


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
    n_items)), the user's training items excluded. A test item's rank counts
    the items scored above it, and half of those tied with it (the average rank
    of a tie, as ``scipy.stats.rankdata`` gives Spotlight); a user's reciprocal
    rank is the mean of ``1 / rank`` over their test items, a pair that repeats
    in ``test`` counted once (Spotlight's ``tocsr`` sums repeats into one
    entry). Precision is the share of the user's ``k`` highest-scored items
    (ties broken by item id) that are test items, of all the items where there
    are fewer than ``k``, as Spotlight's slice of the first ``k`` gives it. Both
    are averaged over the users who have test items.

    Raises
    ------
    ValueError
        If ``test`` is empty: there is nothing to rank.
    """
    if len(test) == 0:
        msg = "there are no test interactions to rank"
        raise ValueError(msg)
    shape = (train.n_users, train.n_items)
    # seen items sink to the bottom, never above an unseen one
    scores = xp.where(xp.asarray(_dense(train, shape)), -xp.inf, scores)

    _, first_rows = distinct_pairs(test)
    test_users, test_items = test.users[first_rows], test.items[first_rows]
    test_counts = np.bincount(test_users, minlength=train.n_users)
    tested_users = np.flatnonzero(test_counts)
    # each pair's share of the mean over users of their mean reciprocal rank
    shares = 1.0 / (test_counts[test_users] * len(tested_users))
    mrr = 0.0
    for start in range(0, len(test_users), _BLOCK):
        block = slice(start, start + _BLOCK)
        rows = xp.take(scores, xp.asarray(test_users[block]), axis=0)
        own = xp.take_along_axis(rows, xp.asarray(test_items[block])[:, None], axis=1)
        above = xp.sum(xp.astype(rows > own, xp.float32), axis=1)
        tied = xp.sum(xp.astype(rows == own, xp.float32), axis=1)  # itself included
        # a NaN score has no rank (and no tie with itself, which would read as 2)
        unranked = xp.isnan(own[:, 0])
        reciprocal_rank = xp.where(unranked, xp.nan, 1.0 / (above + (tied + 1.0) / 2.0))
        share = xp.asarray(shares[block].astype(np.float32))
        mrr += float(xp.sum(reciprocal_rank * share))

    # the standard leaves a slice past the end unspecified: fewer items than k
    ranked = min(k, train.n_items)
    top = xp.argsort(-scores, axis=1, stable=True)[:, :ranked]
    relevant = xp.astype(xp.asarray(_dense(test, shape)), xp.float32)
    hits = xp.sum(xp.take_along_axis(relevant, top, axis=1), axis=1)
    precision = float(xp.sum(xp.take(hits, xp.asarray(tested_users))))
    return Ranking(
        mrr=mrr, precision_at_k=precision / (ranked * len(tested_users)), k=k
    )


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
    rng = generator(seed, "random baseline")
    return rng.random((n_users, n_items)).astype(np.float32)


def popularity_scores(train: Interactions) -> np.ndarray:
    """Each item's number of training interactions, the same for every user."""
    counts = np.bincount(train.items, minlength=train.n_items).astype(np.float32)
    # a copy, not a read-only broadcast view: torch warns when it wraps one
    return np.tile(counts, (train.n_users, 1))


def _dense(data: Interactions, shape: tuple[int, int]) -> np.ndarray:
    matrix = np.zeros(shape, dtype=bool)
    matrix[data.users, data.items] = True
    return matrix
