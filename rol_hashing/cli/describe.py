"""``rol-hashing describe``: the layer and shape table of a model, as in Table 1."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``describe`` command."""
    p = subparsers.add_parser(
        "describe",
        help="print a model's layers, output shapes and parameter counts",
        description="Builds a model (untrained) and prints its layers as a markdown table.",
    )
    p.add_argument(
        "--method", choices=("rol", "ssdh", "segmentation"), default="rol", help="which model"
    )
    p.add_argument("--vgg", choices=("C", "D"), default="C", help="VGG16 configuration")
    p.add_argument("--input-size", type=int, default=224, help="square input side (paper: 224)")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier (paper: 1.0)")
    p.add_argument("--bits", type=int, default=48, help="code length")
    p.add_argument("--num-classes", type=int, default=10, help="classifier classes")
    p.add_argument("--seg-classes", type=int, default=21, help="segmentation classes (VOC: 21)")
    p.add_argument(
        "--rol-at",
        choices=("block5_conv3", "block5_pool"),
        default="block5_conv3",
        help="the feature map the ROL multiplies",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Builds the requested model and prints its table and parameter count."""
    from rol_hashing.models import (  # lazy: Keras, not needed for --help
        build_hashing_model,
        build_segmentation_model,
        describe_model,
        format_table,
    )

    seg = build_segmentation_model(args.seg_classes, args.vgg, args.input_size, args.width)
    if args.method == "segmentation":
        model = seg
    else:
        model = build_hashing_model(
            args.method,
            args.bits,
            args.num_classes,
            segmentation_model=seg if args.method == "rol" else None,
            vgg=args.vgg,
            input_size=args.input_size,
            width=args.width,
            rol_at=args.rol_at,
        )
    print(f"# {model.name}: VGG16 config {args.vgg}, input {args.input_size}, width {args.width}")
    print(format_table(describe_model(model)))
    print(f"\ntotal parameters: {model.count_params():,}")
    return 0
