"""Experiments built from the layers below: ``demo`` (``make demo``), ``table2`` (the
paper's Table 2 for one data set), ``fashion`` (``make fashion``), ``ablation``
(``make ablation``), ``report`` (their shared summaries), ``reuse`` (finished stages
found again), and ``kept_inputs`` and ``fashion_keep`` (work kept across sessions).

``configs/*.yaml`` are the experiment files (package data; the repository's top-level
``experiments/`` links to them): see ``rol_hashing.training.config.find_experiment``.
"""
