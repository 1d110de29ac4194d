"""`print_summary`: the Keras-style model table."""

from __future__ import annotations

import shutil


def _format_shape(layer) -> str:
    try:
        shape = layer.output_shape
    except (AttributeError, ValueError):
        return "?"
    return str(shape).replace("'", "")


def _params(weights) -> int:
    return int(sum(w.numel() for w in weights))


def print_summary(
    model,
    line_length=None,
    positions=None,
    print_fn=None,
    expand_nested=False,
    show_trainable=False,
) -> None:
    """Prints layer names/types, output shapes and parameter counts, then the totals."""
    print_fn = print_fn or print
    width = line_length or min(max(shutil.get_terminal_size((98, 20)).columns, 65), 98)
    cols = positions or [0.45, 0.8, 1.0]
    stops = [int(width * p) if p <= 1 else int(p) for p in cols]
    headers = ["Layer (type)", "Output Shape", "Param #"]
    if show_trainable:
        headers.append("Trainable")
        stops.append(stops[-1] + 11)
        width = stops[-1]

    def row(fields):
        line, start = "", 0
        for field, stop in zip(fields, stops, strict=False):
            cell = str(field)[: max(stop - start - 1, 1)]
            line += cell.ljust(stop - start)
            start = stop
        return line.rstrip()

    def rows_for(layers, prefix=""):
        for layer in layers:
            count = _params(layer.weights) if layer.built else 0
            fields = [
                f"{prefix}{layer.name} ({type(layer).__name__})",
                _format_shape(layer),
                f"{count:,}",
            ]
            if show_trainable:
                fields.append("Y" if layer.trainable else "N")
            print_fn(row(fields))
            if expand_nested and hasattr(layer, "layers") and layer.layers:
                yield from rows_for(layer.layers, prefix + " ")
            yield layer

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * width)
    print_fn(row(headers))
    print_fn("=" * width)
    for _ in rows_for(model.layers):
        pass
    print_fn("=" * width)
    weights = model.weights
    trainable = _params(model.trainable_weights)
    total = _params(weights)
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * width)
