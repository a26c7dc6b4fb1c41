"""Losses for explicit feedback: observed ratings against predicted ones.

These are Spotlight's regression, Poisson and logistic losses [1]_.

References
----------
.. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
   https://github.com/maciejkula/spotlight
"""

from __future__ import annotations

from typing import Any

from ._call import prepare
from ._docstrings import shared_sections
from ._validation import Reduction, check_flag

Array = Any

__all__ = ["logistic_loss", "poisson_loss", "regression_loss"]

_NAMES = ("observed_ratings", "predicted_ratings")


@shared_sections
def regression_loss(
    observed_ratings: Array,
    predicted_ratings: Array,
    mask: Array | None = None,
    *,
    reduction: Reduction = "mean",
) -> Array:
    r"""Squared error between observed and predicted ratings.

    .. math::

        L = (y - \hat y)^2

    averaged as ``reduction`` says: with 'mean', the mean squared error [2]_.

    Parameters
    ----------
    observed_ratings : array of shape S
        Observed ratings: bool, integer or real floating, converted to the
        predictions' dtype (float32 for half precision, which is computed in
        float32).
    predicted_ratings : array of shape S
        Predicted ratings; real floating. The two shapes broadcast as long as the
        result is one of them.
    {mask}
    {reduction}

    {returns}

    {raises}

    Notes
    -----
    {spotlight_explicit}

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight
    .. [2] Koren, Yehuda, Robert Bell and Chris Volinsky. "Matrix factorization
       techniques for recommender systems." Computer 42(8), IEEE, 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import regression_loss
    >>> observed = np.asarray([5, 3, 1])
    >>> predicted = np.asarray([4.5, 3.0, 2.0], dtype=np.float32)
    >>> round(float(regression_loss(observed, predicted)), 4)
    0.4167
    """
    call = prepare(
        observed_ratings,
        predicted_ratings,
        mask,
        reduction,
        names=_NAMES,
        second_has_negatives_axis=False,
        first_is_rating=True,
    )
    fused = call.fused("regression")
    if fused is not None:
        return fused
    return call.finish(call.backend.square(call.second - call.first))


@shared_sections
def poisson_loss(
    observed_ratings: Array,
    predicted_ratings: Array,
    mask: Array | None = None,
    *,
    reduction: Reduction = "mean",
    log_input: bool = False,
) -> Array:
    r"""Poisson negative log-likelihood of observed counts, up to a constant.

    .. math::

        L = \hat y - y \log \hat y
        \qquad\text{or, with log_input,}\qquad
        L = e^{x} - y\,x

    for predicted rate :math:`\hat y > 0` (or predicted log-rate :math:`x`),
    averaged as ``reduction`` says: the likelihood of Poisson factorization
    models of counts [2]_. The term :math:`\log y!`, which does not depend on
    the prediction, is left out, as Spotlight and
    :func:`torch.nn.functional.poisson_nll_loss` leave it out.

    As in Spotlight, a rate of 0 lies outside the loss's domain: it gives inf
    for a positive count and NaN (0 · log 0) for a zero count, and NumPy warns
    of the log(0). A model whose rate can reach 0 (a ReLU output, say) should
    predict the log-rate instead and pass ``log_input=True``: no log of 0,
    finite wherever the rate :math:`e^x` itself is (up to
    :math:`x \approx 88.7` in float32), and the cheapest form.

    Parameters
    ----------
    observed_ratings : array of shape S
        Observed counts: bool, integer or real floating, converted to the
        predictions' dtype (float32 for half precision, which is computed in
        float32).
    predicted_ratings : array of shape S
        Predicted rates (> 0), or log-rates with ``log_input=True``; real
        floating. The two shapes broadcast as long as the result is one of them.
    {mask}
    {reduction}
    log_input : bool, default False
        Whether ``predicted_ratings`` holds log-rates, as
        :func:`torch.nn.functional.poisson_nll_loss` with ``log_input=True``.

    {returns}

    {raises}
        Also TypeError if ``log_input`` is not True or False.

    Notes
    -----
    {spotlight_explicit}
    ``log_input`` is new; its default is Spotlight's: a rate.

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight
    .. [2] Gopalan, Prem, Jake M. Hofman and David M. Blei. "Scalable
       recommendation with hierarchical Poisson factorization." Proceedings of
       the Thirty-First Conference on Uncertainty in Artificial Intelligence
       (UAI), 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import poisson_loss
    >>> observed = np.asarray([2, 0, 1])
    >>> predicted = np.asarray([1.5, 0.5, 1.0], dtype=np.float32)
    >>> round(float(poisson_loss(observed, predicted)), 4)
    0.7297
    """
    # the check's test in line, where it passes: a call costs a tenth of a
    # microsecond, and torch.compile a guard on each global it reads. Unreachable
    # for a type checker, not for a caller without one
    if log_input is not False and log_input is not True:
        check_flag("log_input", log_input)  # type: ignore[unreachable]
    call = prepare(
        observed_ratings,
        predicted_ratings,
        mask,
        reduction,
        names=_NAMES,
        second_has_negatives_axis=False,
        first_is_rating=True,
    )
    xp, observed, predicted = call.backend.xp, call.first, call.second
    if log_input:
        # with rate e^x: rate - y·log(rate) = e^x - y·x
        return call.finish(xp.exp(predicted) - observed * predicted)
    if call.broadcasts:
        return call.finish(predicted - observed * xp.log(predicted))
    # rate - y·log(rate) into log(rate)'s own buffer: one new buffer where the
    # expression takes three
    return call.finish(
        call.backend.subtract_product(predicted, observed, xp.log(predicted))
    )


@shared_sections
def logistic_loss(
    observed_ratings: Array,
    predicted_ratings: Array,
    mask: Array | None = None,
    *,
    reduction: Reduction = "mean",
) -> Array:
    r"""Binary cross-entropy of a logit against a ±1 (or 0/1) observation.

    .. math::

        z = \operatorname{clip}(y, 0, 1), \qquad
        L = \max(x, 0) - x z + \log\bigl(1 + e^{-|x|}\bigr)

    for predicted logit :math:`x`, averaged as ``reduction`` says: the binary
    cross-entropy :math:`-z\log\sigma(x) - (1 - z)\log(1 - \sigma(x))` in a form
    that never overflows [2]_. Observations of -1 and 0 both count as negative.

    Parameters
    ----------
    observed_ratings : array of shape S
        Observations, +1 or -1 (1 or 0, or bool, also work): bool, integer or
        real floating, converted to the predictions' dtype (float32 for half
        precision, which is computed in float32).
    predicted_ratings : array of shape S
        Predicted logits; real floating. The two shapes broadcast as long as the
        result is one of them.
    {mask}
    {reduction}

    {returns}

    {raises}

    Notes
    -----
    {spotlight_explicit} Like
    Spotlight's, it clips the observations to [0, 1] and computes the
    cross-entropy with logits.

    On PyTorch that is Spotlight's own call, ATen's binary cross-entropy with
    logits, and its bits. Its formula, :math:`(1 - z)x - \log\sigma(x)`, keeps
    the loss of a confident positive to the last bit but rounds that of a
    confident negative (:math:`z = 0`, :math:`x \ll 0`) with an absolute error of
    up to half an ulp of :math:`x`, and so to 0 below :math:`x \approx -14.6` in
    float32 (-33.3 in float64), where the loss is about :math:`e^x`. The other
    libraries take the formula above, which keeps both.

    References
    ----------
    .. [1] Kula, Maciej. "Spotlight." GitHub, 2017.
       https://github.com/maciejkula/spotlight
    .. [2] Johnson, Christopher C. "Logistic matrix factorization for implicit
       feedback data." NIPS Workshop on Distributed Machine Learning and Matrix
       Computations, 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from arraylosses import logistic_loss
    >>> observed = np.asarray([1, -1, 1])
    >>> predicted = np.asarray([2.0, -1.0, -0.5], dtype=np.float32)
    >>> round(float(logistic_loss(observed, predicted)), 4)
    0.4714
    """
    call = prepare(
        observed_ratings,
        predicted_ratings,
        mask,
        reduction,
        names=_NAMES,
        second_has_negatives_axis=False,
        first_is_rating=True,
    )
    fused = call.fused("logistic")
    if fused is not None:
        return fused
    return call.finish(call.backend.logistic(call.first, call.second))
