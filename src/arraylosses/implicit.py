"""Losses for implicit feedback: a positive item scored against sampled negatives.

These are Spotlight's pointwise, BPR, hinge and adaptive hinge losses [1]_. Like
Spotlight's, the pointwise and BPR losses are bounded "soft 0-1" forms built on
the sigmoid, not the log-likelihoods their names recall: their values match
Spotlight's, not those of a binary cross-entropy or of Rendle's log-sigmoid BPR.

References
----------
.. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
   https://github.com/maciejkula/spotlight
"""

from __future__ import annotations

from typing import Any, SupportsFloat

from ._call import prepare
from ._docstrings import shared_sections
from ._validation import Reduction, as_margin

Array = Any

__all__ = ["adaptive_hinge_loss", "bpr_loss", "hinge_loss", "pointwise_loss"]

_NAMES = ("positive_predictions", "negative_predictions")


@shared_sections
def pointwise_loss(
    positive_predictions: Array,
    negative_predictions: Array,
    mask: Array | None = None,
    *,
    reduction: Reduction = "mean",
) -> Array:
    r"""Spotlight's pointwise loss: push positives' sigmoid up, negatives' down.

    .. math::

        L = \bigl(1 - \sigma(p)\bigr) + \sigma(n)

    with :math:`\sigma` the logistic sigmoid, averaged as ``reduction`` says. Each
    element lies in [0, 2]. This is Spotlight's bounded form, not the binary
    cross-entropy :math:`-\log\sigma(p) - \log(1 - \sigma(n))`.

    Parameters
    ----------
    positive_predictions : array of shape S
        Scores of the known positive items; real floating.
    negative_predictions : array of shape S
        Scores of sampled negative items; real floating. The two shapes broadcast
        (for instance (B, 1) against (B, T)) as long as the result is one of them.
    {mask}
    {reduction}

    {returns}

    {raises}

    Notes
    -----
    {spotlight_implicit}
    The sigmoids are computed in a form that never overflows, on every backend.
    ``reduction`` is new; its default is Spotlight's mean.

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import pointwise_loss
    >>> positive = np.asarray([2.0, 0.5, -1.0], dtype=np.float32)
    >>> negative = np.asarray([-1.0, 0.0, 1.0], dtype=np.float32)
    >>> round(float(pointwise_loss(positive, negative)), 4)
    0.9093
    """
    call = prepare(
        positive_predictions,
        negative_predictions,
        mask,
        reduction,
        names=_NAMES,
        second_has_negatives_axis=False,
    )
    backend = call.backend
    # 1 - σ(p) = σ(-p)
    positives_loss = backend.sigmoid_of_negative(call.first)
    negatives_loss = backend.sigmoid(call.second)
    if call.broadcasts:
        return call.finish(positives_loss + negatives_loss)
    # into the first sigmoid's buffer: two buffers at the peak, where the sum takes
    # three, and a fresh one of a million elements can cost more than its pass
    return call.finish(backend.add(positives_loss, negatives_loss))


@shared_sections
def bpr_loss(
    positive_predictions: Array,
    negative_predictions: Array,
    mask: Array | None = None,
    *,
    reduction: Reduction = "mean",
) -> Array:
    r"""Spotlight's BPR loss: the sigmoid of how far a negative outranks a positive.

    .. math::

        L = 1 - \sigma(p - n)

    averaged as ``reduction`` says. Each element lies in [0, 1]. Spotlight names
    this Bayesian Personalised Ranking [2]_ but computes this bounded form, not
    Rendle's log-likelihood :math:`-\log\sigma(p - n)`; the numbers here are
    Spotlight's.

    Parameters
    ----------
    positive_predictions : array of shape S
        Scores of the known positive items; real floating.
    negative_predictions : array of shape S
        Scores of sampled negative items; real floating. The two shapes broadcast
        (for instance (B, 1) against (B, T)) as long as the result is one of them.
    {mask}
    {reduction}

    {returns}

    {raises}

    Notes
    -----
    {spotlight_implicit}
    The sigmoid is computed in a form that never overflows, on every backend.
    ``reduction`` is new; its default is Spotlight's mean.

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight
    .. [2] Rendle, Steffen, Christoph Freudenthaler, Zeno Gantner and Lars
       Schmidt-Thieme. "BPR: Bayesian personalized ranking from implicit
       feedback." Proceedings of the Twenty-Fifth Conference on Uncertainty in
       Artificial Intelligence (UAI), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import bpr_loss
    >>> positive = np.asarray([2.0, 0.5, -1.0], dtype=np.float32)
    >>> negative = np.asarray([-1.0, 0.0, 1.0], dtype=np.float32)
    >>> round(float(bpr_loss(positive, negative)), 4)
    0.4353
    """
    call = prepare(
        positive_predictions,
        negative_predictions,
        mask,
        reduction,
        names=_NAMES,
        second_has_negatives_axis=False,
    )
    # 1 - σ(p - n) = σ(n - p)
    return call.finish(call.backend.sigmoid_of_difference(call.second, call.first))


@shared_sections
def hinge_loss(
    positive_predictions: Array,
    negative_predictions: Array,
    mask: Array | None = None,
    *,
    reduction: Reduction = "mean",
    margin: SupportsFloat = 1.0,
) -> Array:
    r"""Hinge loss: positives should outscore negatives by at least a margin.

    .. math::

        L = \max(n - p + m, 0)

    with margin :math:`m` (1 in Spotlight), averaged as ``reduction`` says. At the
    kink, :math:`n - p + m = 0`, the gradient is 0, as the autograd of PyTorch's
    and JAX's ``relu`` gives (Spotlight's ``clamp`` passes it through there:
    :math:`\partial L / \partial n = 1`).

    Parameters
    ----------
    positive_predictions : array of shape S
        Scores of the known positive items; real floating.
    negative_predictions : array of shape S
        Scores of sampled negative items; real floating. The two shapes broadcast
        (for instance (B, 1) against (B, T)) as long as the result is one of them.
    {mask}
    {reduction}
    margin : real number, default 1.0
        How far a positive must outscore a negative before the loss is 0.
        Any finite real number (a NumPy scalar too), taken as a Python float:
        the loss keeps the predictions' dtype.

    {returns}

    {raises}
        Also ValueError if ``margin`` is not finite; TypeError if it is not a
        real number, or is a bool.

    Notes
    -----
    {spotlight_implicit}
    ``reduction`` and ``margin`` are new; their defaults are Spotlight's mean
    and margin of 1.

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import hinge_loss
    >>> positive = np.asarray([2.0, 0.5, -1.0], dtype=np.float32)
    >>> negative = np.asarray([-1.0, 0.0, 1.0], dtype=np.float32)
    >>> round(float(hinge_loss(positive, negative)), 4)
    1.1667
    """
    # as_margin's test in line, where it passes: the call costs 0.04 µs
    if type(margin) is not float or margin - margin != 0.0:
        margin = as_margin(margin)
    call = prepare(
        positive_predictions,
        negative_predictions,
        mask,
        reduction,
        names=_NAMES,
        second_has_negatives_axis=False,
    )
    backend = call.backend
    excess = backend.add_scalar(call.second - call.first, margin)
    return call.finish(backend.relu(excess))


@shared_sections
def adaptive_hinge_loss(
    positive_predictions: Array,
    negative_predictions: Array,
    mask: Array | None = None,
    *,
    reduction: Reduction = "mean",
    margin: SupportsFloat = 1.0,
) -> Array:
    r"""Hinge loss against the highest-scoring of several sampled negatives.

    .. math::

        L = \max\bigl(\max_k N_k - p + m, 0\bigr)

    with margin :math:`m` (1 in Spotlight), averaged as ``reduction`` says.
    Taking the negative closest to violating the ranking approximates the
    weighted approximate-rank pairwise (WARP) loss of Weston et al. [2]_.

    Unlike Spotlight, the maximum over the negatives is never squeezed: there,
    a (B, 1) positive met a squeezed (B,) maximum and silently became a (B, B)
    outer product; here the shapes are checked as for :func:`hinge_loss`.
    Where several negatives tie for the maximum, the gradient follows the
    library's own rule for ``max`` (PyTorch's ``amax`` and JAX split it evenly;
    Spotlight's ``torch.max(negatives, 0)`` gives it all to one of them).

    Parameters
    ----------
    positive_predictions : array of shape S
        Scores of the known positive items; real floating.
    negative_predictions : array of shape (k, \*S)
        Scores of ``k >= 1`` sampled negatives per positive, stacked on the
        leading axis; real floating. ``S`` broadcasts against the positives'
        shape as for :func:`hinge_loss`.
    {mask}
    {reduction}
    margin : real number, default 1.0
        How far a positive must outscore every negative before the loss is 0.
        Any finite real number (a NumPy scalar too), taken as a Python float:
        the loss keeps the predictions' dtype.

    {returns}

    {raises}
        Also ValueError if ``negative_predictions`` has no leading negatives
        axis (fewer dimensions than the positives plus one) or it is empty, or
        if ``margin`` is not finite; TypeError if ``margin`` is not a real
        number, or is a bool.

    Notes
    -----
    {spotlight_implicit}
    The maximum over the negatives is never squeezed (see above).
    ``reduction`` and ``margin`` are new; their defaults are Spotlight's mean
    and margin of 1.

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight
    .. [2] Weston, Jason, Samy Bengio and Nicolas Usunier. "WSABIE: Scaling up
       to large vocabulary image annotation." Proceedings of the Twenty-Second
       International Joint Conference on Artificial Intelligence (IJCAI), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import adaptive_hinge_loss
    >>> positive = np.asarray([2.0, 0.5, -1.0], dtype=np.float32)
    >>> negatives = np.asarray([[-1.0, 0.0, 1.0], [1.5, -2.0, 0.0]], dtype=np.float32)
    >>> round(float(adaptive_hinge_loss(positive, negatives)), 4)
    1.3333
    """
    # as_margin's test in line, where it passes: the call costs 0.04 µs
    if type(margin) is not float or margin - margin != 0.0:
        margin = as_margin(margin)
    call = prepare(
        positive_predictions,
        negative_predictions,
        mask,
        reduction,
        names=_NAMES,
        second_has_negatives_axis=True,
    )
    backend = call.backend
    highest = backend.max_over_first_axis(call.second)
    excess = backend.add_scalar(highest - call.first, margin)
    return call.finish(backend.relu(excess))
