"""Benchmarks (``make bench``): retrieval and training costs against the alternatives."""
