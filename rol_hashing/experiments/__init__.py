"""Experiments built from the layers below: ``demo`` (``make demo``), ``table2`` (the
paper's Table 2 for one data set) and ``report`` (their shared summaries).

``configs/*.yaml`` are the experiment files (package data; the repository's top-level
``experiments/`` links to them): see ``rol_hashing.training.config.find_experiment``.
"""
