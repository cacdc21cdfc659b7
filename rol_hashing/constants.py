"""The paper's fixed choices that several layers share, defined once.

- ``METHODS``: the hashing methods, the SSDH baseline first (the order of every table).
- ``PAPER_BITS``: Table 2's code lengths.
- ``IGNORE_LABEL``: the VOC "void" label in segmentation masks; losses and metrics skip it.
- ``MASK_SOURCES``, ``MASK_FORMS``: where the ROL's mask R comes from and its form
  (``model.rol_mask``, ``model.rol_form``; the paper's are the first of each).
"""

from __future__ import annotations

METHODS: tuple[str, ...] = ("ssdh", "rol")
PAPER_BITS: tuple[int, ...] = (12, 24, 32, 48)
IGNORE_LABEL = 255
MASK_SOURCES: tuple[str, ...] = ("predicted", "oracle", "ones", "shuffled")
MASK_FORMS: tuple[str, ...] = ("soft", "binary", "normalized")
# How block5_pool's map enters fc1: "flatten" (VGG16, the paper) or "gap" (global
# average pooling; fc1 then sees C values whatever the input size).
POOLINGS = ("flatten", "gap")
# The hashing stream's optimisers: "sgd" (SSDH's solver) or "adam" (AdamW).
OPTIMIZERS = ("sgd", "adam")
# Training-time augmentations (rol_hashing/training/augment.py).
AUGMENTS = ("none", "crop", "crop_colour")
