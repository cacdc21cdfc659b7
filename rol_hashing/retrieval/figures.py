"""Writing matplotlib figures atomically (no pyplot: figures are plain ``Figure`` objects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rol_hashing.atomic import atomic_open


def save_figure(fig: Any, out_png: str | Path, dpi: int = 100) -> Path:
    """``fig.savefig`` as PNG to a temporary file in the same folder, then rename."""
    out_png = Path(out_png)
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    return out_png
