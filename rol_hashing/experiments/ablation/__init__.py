"""``make ablation``: when does the ROL help? A pre-registered grid with mask controls.

On the demo's data, backbone and segmentation stream (per seed, in the demo's work
folder, so finished demo runs are reused), it trains and evaluates:

1. sources x forms, at 12 and 48 bits, the demo's schedule: ``ssdh``; ``rol`` with
   masks ``predicted`` / ``oracle`` / ``ones`` / ``shuffled`` (soft); ``rol`` with
   ``predicted`` / ``oracle`` masks in the ``binary`` and ``normalized`` forms;
2. schedule: ``ssdh`` and ``rol`` (predicted, soft) at 3x the demo's epochs (the
   learning-rate drop moves with them), at 12 bits;
3. grid resolution: ``ssdh``, ``rol`` predicted and oracle (soft) at twice the demo's
   input (128: an 8x8 ROL grid instead of 4x4), 12 bits, with a segmentation stream
   trained at that size; these runs and that stream train half the demo's epochs.

Groups 2 and 3 are cut (12 bits only; half the epochs at 2x input) so that three seeds
finish within 90 minutes on two CPU cores; see docs/ablation.md.

Every run folder that holds ``model.keras`` and ``metrics.json`` is reused, so an
interrupted study resumes. Results (``out_dir``): ``results.md`` (mean ± std over seeds,
the paired difference to the SSDH run of the same group, seed and bits, its sign
count, and the verdict of the decision rule), ``results.json``, ``ablation_map.png``
(MAP per variant) and ``ap_vs_mask_quality.png`` (per-query AP of ROL minus SSDH
against the IoU of that query's ``R > 0.5`` with its ground-truth object).

The decision rule (docs/ablation.md, written before the study ran): a factor explains
the gap when changing it closes at least half of the mean SSDH - ROL gap of the
paper's configuration (predicted, soft, the profile's schedule) in that group and the change
has the same sign in at least 5 of 6 (seed, bits) pairs (all 3 seeds where the group
has one code length).

The package: ``grid`` (the variants, the grid and the decision rule's verdicts),
``runner`` (the runs of one seed and the study) and ``report`` (``results.md`` and the
figures).
"""

from rol_hashing.experiments.ablation.grid import (
    CONTROLS,
    FACTORS,
    GRIDS,
    GROUPS,
    QUESTIONS,
    Variant,
    ablation_grid,
    answer_questions,
    factor_verdicts,
    group_baseline,
    paired_counts,
    run_folder,
    scaled_epochs,
    select_variants,
    summarize,
    variant_config,
)
from rol_hashing.experiments.ablation.report import results_markdown, write_figures
from rol_hashing.experiments.ablation.runner import (
    QUICK,
    mask_quality,
    prepare_seed,
    query_ap,
    run_ablation,
    run_variant,
)

__all__ = [
    "CONTROLS",
    "FACTORS",
    "GRIDS",
    "GROUPS",
    "QUESTIONS",
    "QUICK",
    "Variant",
    "ablation_grid",
    "answer_questions",
    "factor_verdicts",
    "group_baseline",
    "mask_quality",
    "paired_counts",
    "prepare_seed",
    "query_ap",
    "results_markdown",
    "run_ablation",
    "run_folder",
    "run_variant",
    "select_variants",
    "scaled_epochs",
    "summarize",
    "variant_config",
    "write_figures",
]
