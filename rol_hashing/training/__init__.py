"""Training: YAML configs, the segmentation (AdaGrad) and hashing (SGD) trainers, runs.

Entry points: ``train_segmentation(config)`` in ``segmentation.py`` and
``train_hashing(config, method, bits)`` in ``hashing.py``; ``config.load_config``
reads ``experiments/*.yaml``.
"""
