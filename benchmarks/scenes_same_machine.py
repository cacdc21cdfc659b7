"""A kept scenes-ablation group's SSDH trained again on this machine (a post-hoc check).

usage: python benchmarks/scenes_same_machine.py [--seed 2] [--bits 48]

The scenes ablation (docs/ablation_scenes.md) keeps each finished run, so one (seed, bits)
group can hold runs from two machines. Its control, ``rol-ones-soft`` equal to ``ssdh``,
holds only when both ran on one machine (TensorFlow's CPU kernels differ between CPU
vendors, and training amplifies the difference). This trains the group's SSDH again here,
from the config of the group's ``rol-ones-soft`` run in the work folder (the same backbone,
split, schedule and seed; nothing else is prepared or trained), into
``<work>/seed<k>/same_machine/`` (reused when there), and prints its MAP@1000 beside the
group's kept runs and their machines. The pre-registered verdict is not changed by it;
docs/ablation_scenes.md reports it beside the verdict. Needs that run's folder, so run it
in the session that trained the group's ``rol-ones-soft`` (``make ablation-scenes``).
Appends a JSON line to ``benchmarks/scenes_same_machine.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rol_hashing.quiet import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

from rol_hashing.clock import Stopwatch  # noqa: E402
from rol_hashing.experiments import reuse  # noqa: E402
from rol_hashing.experiments.ablation.grid import ablation_grid, variant_config  # noqa: E402
from rol_hashing.machine import machine  # noqa: E402
from rol_hashing.training.config import load_run_config  # noqa: E402
from rol_hashing.training.layout import hashing_run_name  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/fashion"))
    parser.add_argument("--keep", type=Path, default=REPO / "docs" / "ablation_scenes" / "groups")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    args = parser.parse_args()

    group = args.keep / f"seed{args.seed}_{args.bits}b"
    kept = {}
    for path in sorted(group.glob("*.json")):
        stored = json.loads(path.read_text())
        kept[path.stem] = {"map": stored["row"]["map"], "machine": stored["machine"]}
    if not kept:
        raise SystemExit(f"{group}: no kept runs of seed {args.seed} at {args.bits} bits")

    ones = args.work_dir / f"seed{args.seed}" / "runs" / "ablation" / f"rol-ones-soft-{args.bits}b"
    if not (ones / "config.yaml").is_file():
        raise SystemExit(f"{ones}: not found; run it where make ablation-scenes trained it")
    base = load_run_config(ones)
    ssdh = next(v for v in ablation_grid(kind="sources") if v.name == "ssdh")
    config = variant_config(base, ssdh, Path(base.hashing.segmentation_model))
    name = hashing_run_name(config.dataset, "ssdh", args.bits)
    run_dir = args.work_dir / f"seed{args.seed}" / "same_machine" / name
    clock = Stopwatch()
    metrics, made = reuse.hashing(config, "ssdh", args.bits, run_dir)
    row = {"map": float(metrics["map_at_k"]), "seconds": round(clock(), 1), "reused": not made}
    result = {
        "seed": args.seed,
        "bits": args.bits,
        "ssdh_here": row["map"],
        "machine": machine(),
        "seconds": row["seconds"],
        "reused": row["reused"],
        "kept": kept,
    }
    print(f"ssdh trained here: MAP@1000 {row['map']:.4f} ({machine()})")
    for name, entry in kept.items():
        print(f"kept {name}: MAP@1000 {entry['map']:.4f} ({entry['machine']})")
    with open(args.out, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
