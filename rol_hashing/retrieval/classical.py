"""Classical hashing baselines from the paper's related work, on fixed features.

- ``LSH``: random hyperplanes through the training features' mean (Charikar 2002;
  sign random projections), ``codes = (X - mean) @ W > 0`` with Gaussian ``W``.
- ``ITQ``: iterative quantisation (Gong and Lazebnik 2011): PCA to ``bits`` dimensions
  (scikit-learn's ``PCA``), then the orthogonal rotation ``R`` that minimises
  ``||B - V R||`` by alternating ``B = sign(V R)`` and the Procrustes step (the SVD of
  ``V^T B``), 50 iterations from a seeded random rotation.

Both learn from the training features only (no labels) and encode any features into
bool (N, bits) codes that the rest of the package (MAP, the index) takes as they are.
``pooled_features`` gives the features the benchmarks use: a VGG16 backbone's
``block5_pool`` map, averaged over its positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from sklearn.decomposition import PCA

from rol_hashing.errors import InputError
from rol_hashing.retrieval.codes import check_bits

ITQ_ITERATIONS = 50


@dataclass
class LSH:
    """Random-hyperplane LSH: ``fit`` on (N, D) features, ``encode`` -> bool (M, bits)."""

    bits: int
    seed: int = 0
    mean: np.ndarray | None = None
    planes: np.ndarray | None = None

    def fit(self, features: np.ndarray) -> LSH:
        features = np.asarray(features, np.float64)
        check_bits(self.bits)
        rng = np.random.default_rng([self.seed, 47])
        self.mean = features.mean(axis=0)
        self.planes = rng.standard_normal((features.shape[1], self.bits))
        return self

    def encode(self, features: np.ndarray) -> np.ndarray:
        if self.planes is None:
            raise RuntimeError("LSH.encode before fit")
        return (np.asarray(features, np.float64) - self.mean) @ self.planes > 0


@dataclass
class ITQ:
    """PCA + iterative quantisation: ``fit`` on (N, D) features with D >= bits."""

    bits: int
    seed: int = 0
    iterations: int = ITQ_ITERATIONS
    pca: PCA | None = None
    rotation: np.ndarray | None = None

    def fit(self, features: np.ndarray) -> ITQ:
        features = np.asarray(features, np.float64)
        check_bits(self.bits)
        if features.shape[1] < self.bits:
            raise InputError(
                f"ITQ needs at least {self.bits} feature dimensions, got {features.shape[1]}"
            )
        self.pca = PCA(n_components=self.bits, random_state=self.seed).fit(features)
        v = self.pca.transform(features)
        rng = np.random.default_rng([self.seed, 53])
        r, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        for _ in range(self.iterations):
            b = np.where(v @ r >= 0, 1.0, -1.0)
            u, _, wt = np.linalg.svd(v.T @ b)
            r = u @ wt
        self.rotation = r
        return self

    def encode(self, features: np.ndarray) -> np.ndarray:
        if self.pca is None or self.rotation is None:
            raise RuntimeError("ITQ.encode before fit")
        return self.pca.transform(np.asarray(features, np.float64)) @ self.rotation >= 0


METHODS = {"lsh": LSH, "itq": ITQ}


def pooled_features(backbone: keras.Model, batches, verbose: int = 0) -> np.ndarray:
    """(N, C) float32: the mean over positions of ``backbone``'s output (a VGG16 without
    its top: (B, h, w, C) ``block5_pool``) for every image of ``batches`` (an iterable of
    image batches, or of ``(images, ...)`` tuples)."""
    pooled = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D()])
    return np.asarray(pooled.predict(batches, verbose=verbose), np.float32)
