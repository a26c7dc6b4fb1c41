"""The conformance suite of arraylosses: an independent parity matrix.

``python -m conformance`` (or ``nox -s conformance``) checks every public loss
against references that share no code with the package: the contract's
formulas for Spotlight's seven losses, written plainly in float64
(:mod:`conformance.references`), and peers' own functions where they compute the
same quantity (:mod:`conformance.peers`: ``torch.nn.functional``, optax). It runs
every backend x dtype x loss x shape x mask x reduction, values and gradients
(:mod:`conformance.cases`, :mod:`conformance.gradients`; the gradients by the
library's autograd where it has one, and in closed form through
``arraylosses.value_and_grad`` on every backend), one row per deliberate
deviation from Spotlight (:mod:`conformance.deviations`), and a drop-in training
run (:mod:`conformance.training`); then prints a table and writes a JSON report
(:mod:`conformance.report`). Tolerances and their reasoning are in
:mod:`conformance.tolerances`.

Only the public functions of :mod:`arraylosses` are called; nothing else of it
is imported.
"""
