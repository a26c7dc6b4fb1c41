"""The training demo: a factorization model trained with each loss, over the array API."""

# the losses the demo trains, by family, each arraylosses' f"{name}_loss": named
# here, where the command line reads them without importing NumPy
IMPLICIT = ("pointwise", "bpr", "hinge", "adaptive_hinge")
EXPLICIT = ("regression", "poisson", "logistic")
