"""Is the generated data set learnable by shape and not by colour? (``make generated-check``)

A small CNN (four conv blocks, 20 epochs of Adam) and a colour-histogram logistic
regression, trained on 960 generated images and tested on 240 (48 px, 6 classes):
the CNN should beat chance (1/6) by far and the histogram should stay near it.
Writes ``--results`` (markdown, appended); about 2 minutes on two cores.

    python -m benchmarks.generated_check --work runs/generated_check
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rol_hashing.data.generated import load_generated, make_generated_dataset


def colour_histograms(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 24) per-channel 8-bin histograms, as fractions."""
    pixels = images.shape[1] * images.shape[2]
    return np.stack(
        [
            np.concatenate([np.histogram(im[..., c], 8, (0, 256))[0] for c in range(3)])
            for im in images
        ]
    ) / float(pixels)


def run(work: Path, num_images: int = 1200, size: int = 48, epochs: int = 20) -> dict:
    """Both classifiers' test accuracies and chance."""
    import keras
    from sklearn.linear_model import LogisticRegression

    root = make_generated_dataset(
        work / "data", num_images=num_images, num_seg_images=2, image_size=size, force=False
    )
    record = load_generated(root)
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in record.paths])
    labels = record.labels
    order = np.random.default_rng(0).permutation(len(labels))
    cut = int(0.8 * len(order))
    train, test = order[:cut], order[cut:]
    hist = colour_histograms(images)
    colour = LogisticRegression(max_iter=3000).fit(hist[train], labels[train])
    keras.utils.set_random_seed(0)
    layers = [keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1)]
    for filters in (32, 64, 64):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
        ]
    layers += [
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(record.num_classes, activation="softmax"),
    ]
    model = keras.Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images[train], labels[train], epochs=epochs, batch_size=32, verbose=0)
    return {
        "cnn": float(model.evaluate(images[test], labels[test], verbose=0)[1]),
        "colour": float(colour.score(hist[test], labels[test])),
        "chance": 1.0 / record.num_classes,
        "train": len(train),
        "test": len(test),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path("runs/generated_check"))
    p.add_argument("--results", type=Path, default=Path("benchmarks/generated_check.md"))
    p.add_argument("--images", type=int, default=1200)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args(argv)
    start = time.perf_counter()
    out = run(args.work, args.images, epochs=args.epochs)
    line = (
        f"| {time.strftime('%Y-%m-%d')} | {out['train']} / {out['test']} | {out['cnn']:.2f} | "
        f"{out['colour']:.2f} | {out['chance']:.2f} | {time.perf_counter() - start:.0f} s |\n"
    )
    if not args.results.is_file():
        args.results.write_text(
            "# Generated data: learnable by shape, not by colour\n\n"
            "| date | train / test | small CNN | colour histogram | chance | time |\n"
            "|---|---|---|---|---|---|\n"
        )
    with open(args.results, "a") as f:
        f.write(line)
    print(line, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
