"""The training demo: a factorization model trained with each loss, over the array API."""
