"""``python -m arraylosses``: the command line (``demo`` trains a model with each loss)."""

import os

# The demo's matrix products are small: a second BLAS thread saves little on an
# idle machine and, where another process holds the other core, OpenBLAS spins
# for it and runs several times slower. Set before NumPy is imported; a user's
# own setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from .demo.cli import main

raise SystemExit(main())
