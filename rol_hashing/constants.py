"""The paper's fixed choices that several layers share, defined once.

- ``METHODS``: the hashing methods, the SSDH baseline first (the order of every table).
- ``PAPER_BITS``: Table 2's code lengths.
- ``IGNORE_LABEL``: the VOC "void" label in segmentation masks; losses and metrics skip it.
"""

from __future__ import annotations

METHODS: tuple[str, ...] = ("ssdh", "rol")
PAPER_BITS: tuple[int, ...] = (12, 24, 32, 48)
IGNORE_LABEL = 255
