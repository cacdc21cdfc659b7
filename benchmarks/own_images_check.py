"""The "Your own images" route on a second data family: digits on textured backgrounds.

Not the shapes generator: the ten digits 0-9 drawn with a TrueType font at random sizes,
angles and colours over smooth colour noise with random bright and dark patches, as
class folders (``digits/<d>/*.png``) plus a VOC-layout devkit with each digit's mask.
Then, with the ``cpu`` profile of ``experiments/folders.yaml`` and its defaults (the
generic backbone of weights/), exactly the README's commands: train-seg, train-hash SSDH
and ROL, evaluate (``--pretrain-epochs N``: first pre-train an own backbone, the route's
optional step, ``--no-turns``: a turned 6 is a 9). Writes the MAP of both against chance
to ``--results`` (markdown).

    python -m benchmarks.own_images_check --work runs/own_images --bits 48
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from rol_hashing.cli.main import main as cli
from rol_hashing.machine import machine
from rol_hashing.models.weights import read_provenance
from rol_hashing.training.config import load_config

DIGITS = tuple(str(d) for d in range(10))


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    coarse = rng.normal(0, 1, (6, 6, 3))
    img = Image.fromarray(np.clip(coarse * 45 + 128, 0, 255).astype(np.uint8), "RGB")
    img = img.resize((size, size), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 3))):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        shade = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.rectangle([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=shade)
    return img.filter(ImageFilter.GaussianBlur(1.5))


def render_digit(
    rng: np.random.Generator, digit: int, size: int, font_path: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(image (S, S, 3) uint8, mask (S, S) uint8: 0 background, digit+1, 255 border)."""
    big = size * 2
    glyph = Image.new("L", (big, big), 0)
    font_size = int(rng.uniform(0.7, 0.95) * big)
    font = (
        ImageFont.truetype(font_path, font_size)
        if font_path
        else ImageFont.load_default(size=font_size)
    )
    ImageDraw.Draw(glyph).text((big / 2, big / 2), str(digit), fill=255, font=font, anchor="mm")
    glyph = glyph.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    shift = rng.integers(-big // 10, big // 10 + 1, 2)
    glyph = glyph.transform(glyph.size, Image.AFFINE, (1, 0, int(shift[0]), 0, 1, int(shift[1])))
    alpha = np.asarray(glyph.resize((size, size), Image.BILINEAR), np.float32) / 255.0
    image = np.asarray(_background(rng, size), np.float32)
    colour = rng.uniform(0, 255, 3)
    while np.abs(colour - image.mean((0, 1))).sum() < 150:
        colour = rng.uniform(0, 255, 3)
    image = image * (1 - alpha[..., None]) + colour * alpha[..., None]
    image += rng.normal(0, 6, image.shape)
    inside = Image.fromarray(((alpha >= 0.5) * 255).astype(np.uint8), "L")
    grown = np.asarray(inside.filter(ImageFilter.MaxFilter(3))) > 0
    shrunk = np.asarray(inside.filter(ImageFilter.MinFilter(3))) > 0
    mask = np.zeros((size, size), np.uint8)
    mask[np.asarray(inside) > 0] = digit + 1
    mask[grown & ~shrunk] = 255
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


def _font() -> str | None:
    for candidate in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ):
        if Path(candidate).is_file():
            return candidate
    return None  # Pillow's own scalable default font


def make_digits(root: Path, per_class: int, seg_images: int, size: int, seed: int) -> Path:
    """Writes ``root/digits/<d>/*.png`` and ``root/digits_voc/VOCdevkit/VOC2012``."""
    font = _font()
    folders = root / "digits"
    devkit = root / "digits_voc" / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (devkit / sub).mkdir(parents=True, exist_ok=True)
    palette = np.zeros((256, 3), np.uint8)
    palette[1:11] = np.array([[40 * k % 256, 90 * k % 256, 150 * k % 256] for k in range(1, 11)])
    for d in range(10):
        (folders / DIGITS[d]).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image, _ = render_digit(np.random.default_rng([seed, 1, d, i]), d, size, font)
            Image.fromarray(image).save(folders / DIGITS[d] / f"d{d}_{i:04d}.png")
    ids = []
    for i in range(seg_images):
        d = i % 10
        image, mask = render_digit(np.random.default_rng([seed, 2, i]), d, size, font)
        key = f"seg_{i:05d}"
        Image.fromarray(image).save(devkit / "JPEGImages" / f"{key}.jpg", quality=92)
        png = Image.fromarray(mask, "P")
        png.putpalette(palette.reshape(-1).tolist())
        png.save(devkit / "SegmentationClass" / f"{key}.png")
        ids.append(key)
    n_val = max(1, seg_images // 6)
    lists = devkit / "ImageSets" / "Segmentation"
    (lists / "val.txt").write_text("".join(f"{k}\n" for k in ids[:n_val]))
    (lists / "train.txt").write_text("".join(f"{k}\n" for k in ids[n_val:]))
    (devkit / "classes.txt").write_text("".join(f"digit_{d}\n" for d in DIGITS))
    return root


def _val_accuracy(backbone: Path) -> float | None:
    """The backbone's held-out accuracy: from its provenance record, else from the
    sidecar ``.json`` a generic backbone ships with; None when neither has it."""
    meta = read_provenance(backbone) or {}
    if "val_accuracy" in meta:
        return float(meta["val_accuracy"])
    sidecar = backbone.with_suffix(".json")
    if sidecar.is_file():
        value = json.loads(sidecar.read_text()).get("report", {}).get("val_accuracy")
        return None if value is None else float(value)
    return None


def run_route(work: Path, bits: int, pretrain_epochs: int = 0) -> dict:
    """The README's commands on the digits; returns MAP, chance and seconds per step
    (``pretrain_epochs`` 0: the profile's backbone, else an own one pre-trained first)."""
    data, devkit = work / "digits", work / "digits_voc"
    runs = work / "runs"
    common = ["--profile", "cpu", "--runs-dir", str(runs), "--verbose", "0"]
    steps: dict[str, list[str]] = {}
    own = work / "weights" / "pretrained_folders_cpu.h5"
    backbone_arg = ["--backbone-weights", str(own)] if pretrain_epochs else []
    if pretrain_epochs:
        steps["pretrain"] = (
            ["pretrain", "--config", "folders", "--data-root", str(data)]
            + ["--profile", "cpu", "--no-turns", "--out", str(own), "--overwrite"]
            + ["--epochs", str(pretrain_epochs), "--verbose", "0"]
        )
    steps["segmentation"] = (
        ["train-seg", "--config", "folders", "--data-root", str(devkit)]
        + common
        + backbone_arg
        + ["--overwrite"]
    )
    for method in ("ssdh", "rol"):
        steps[method] = (
            ["train-hash", "--config", "folders", "--data-root", str(data), "--method", method]
            + ["--bits", str(bits), "--overwrite"]
            + backbone_arg
            + ["--segmentation-model", str(runs / "digits_voc-seg" / "model.keras")]
            + ["--seg-data-root", str(devkit)]
            + common
        )
    seconds = {}
    for name, argv in steps.items():
        start = time.perf_counter()
        if cli(argv) != 0:
            raise SystemExit(f"step {name} failed: {argv}")
        seconds[name] = round(time.perf_counter() - start, 1)
    out = {"seconds": seconds, "bits": bits}
    for method in ("ssdh", "rol"):
        run = runs / f"folders-{method}-{bits}b"
        if cli(["evaluate", str(run), "--verbose", "0"]) != 0:
            raise SystemExit(f"evaluate {run} failed")
        metrics = json.loads((run / "metrics.json").read_text())
        out[method] = {"map": metrics["map_at_k"], "chance": metrics["chance"]}
        out["top_k"] = metrics["top_k"]
        out["queries"], out["gallery"] = metrics["num_queries"], metrics["num_gallery"]
    backbone = (
        own if pretrain_epochs else Path(load_config("folders", "cpu").model.backbone_weights)
    )
    out["backbone"] = backbone.name
    out["pretrain_val_accuracy"] = _val_accuracy(backbone)
    seg = json.loads((runs / "digits_voc-seg" / "metrics.json").read_text())
    out["seg_mean_iou"] = seg["val_mean_iou"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/own_images", help="data and runs")
    p.add_argument("--per-class", type=int, default=100, help="hashing images per digit")
    p.add_argument("--seg-images", type=int, default=600, help="segmentation images")
    p.add_argument(
        "--pretrain-epochs",
        type=int,
        default=0,
        help="0: the cpu profile's backbone (default); N: pre-train an own one for N epochs",
    )
    p.add_argument("--size", type=int, default=80, help="image side in pixels")
    p.add_argument("--bits", type=int, default=48, help="code length")
    p.add_argument("--seed", type=int, default=0, help="data seed")
    p.add_argument("--results", default="benchmarks/own_images_results.md", help="markdown out")
    args = p.parse_args(argv)
    work = Path(args.work)
    start = time.perf_counter()
    make_digits(work, args.per_class, args.seg_images, args.size, args.seed)
    result = run_route(work, args.bits, args.pretrain_epochs)
    wall = time.perf_counter() - start
    chance = result["ssdh"]["chance"]
    lines = [
        f"## Own-images route on digits ({time.strftime('%Y-%m-%d')})",
        "",
        f"10 digit classes, {args.per_class} images each at {args.size} px, {args.seg_images} "
        f"segmentation images; cpu profile of experiments/folders.yaml, {args.bits} bits; "
        f"{result['queries']} queries against {result['gallery']} gallery images.",
        "",
        f"| method | MAP@{result['top_k']} | chance |",
        "|---|---|---|",
        *(
            f"| {m.upper()} | {result[m]['map']:.3f} | {result[m]['chance']:.3f} |"
            for m in ("ssdh", "rol")
        ),
        "",
        f"Backbone {result['backbone']} (held-out accuracy "
        f"{result['pretrain_val_accuracy'] or float('nan'):.3f}"
        + (f", pre-trained here for {args.pretrain_epochs} epochs" if args.pretrain_epochs else "")
        + "); "
        f"segmentation val mean IoU {result['seg_mean_iou']:.3f}; step seconds "
        f"{result['seconds']}; wall {wall:.0f} s. Chance = {chance:.3f}.",
        "",
        f"Machine: {machine()}.",  # numbers move between CPUs
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with open(args.results, "a", encoding="utf-8") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
