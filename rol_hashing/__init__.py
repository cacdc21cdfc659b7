"""rol_hashing: the Reliability Object Layer (ROL) for deep hashing, in Keras 3.

Reproduces Gkountakos et al., "A Reliability Object Layer for Deep Hashing-based
Visual Indexing": a PSP segmentation stream whose per-pixel object confidence
multiplies the last VGG16 feature map before an SSDH hashing head.

Subpackages: ``models`` (networks, layers, losses), ``data`` (loaders, splits,
input pipeline), ``training``, ``retrieval`` (codes, Hamming index, search),
``evaluation`` (MAP, precision, run comparison), ``experiments`` (demo, ablation,
Table 2, Fashion-MNIST) and ``cli``; ``freshness`` keys every derived file and ``io``
writes every single file atomically. Importing the package itself is cheap; Keras
loads on first use.
"""

__version__ = "0.1.0"
