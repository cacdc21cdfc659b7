"""A printable table of a model's layers, output shapes and parameters."""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class LayerRow:
    """One row of ``describe_model``: the layer, its class, output shape and weights."""

    name: str
    kind: str
    output_shape: str
    params: int
    parent: str = ""


def _shape_str(layer: keras.layers.Layer) -> str:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return "?"
    return "x".join(str(d) for d in shape[1:])


def describe_model(model: keras.Model, expand_nested: bool = True) -> list[LayerRow]:
    """Rows for every layer (nested models expanded, rows marked with their parent)."""
    rows: list[LayerRow] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if expand_nested and isinstance(layer, keras.Model):
            rows.extend(
                LayerRow(r.name, r.kind, r.output_shape, r.params, layer.name)
                for r in describe_model(layer, expand_nested)
            )
            continue
        rows.append(
            LayerRow(layer.name, type(layer).__name__, _shape_str(layer), layer.count_params(), "")
        )
    return rows


def format_table(rows: list[LayerRow]) -> str:
    """Markdown table of ``rows``."""
    lines = ["| stream | layer | type | output (HxWxC) | params |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.parent or '-'} | {r.name} | {r.kind} | {r.output_shape} | {r.params:,} |"
        )
    return "\n".join(lines)
