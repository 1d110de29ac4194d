"""`plot_model` / `model_to_dot`: draw a model's layer graph with Graphviz."""

from __future__ import annotations

import os
import shutil
import subprocess

_FORMATS = {"png", "svg", "pdf", "jpg", "jpeg", "gif", "ps"}


def _shape_text(tensors) -> str:
    shapes = [tuple(t.shape) for t in tensors]
    if not shapes:
        return "?"
    text = ", ".join(str(s) for s in shapes)
    return text if len(shapes) == 1 else f"[{text}]"


def _graph_nodes(model) -> list:
    """The nodes (layer calls) of a functional or Sequential model's graph."""
    nodes = model.__dict__.get("_nodes")
    if nodes is None:
        nodes = model.__dict__.get("_graph_nodes")
    return list(nodes or [])


def _is_graph_model(layer) -> bool:
    return bool(_graph_nodes(layer)) and hasattr(layer, "layers")


class _Dot:
    def __init__(self, rankdir: str, dpi: int):
        self.lines = [
            "digraph G {",
            f"  graph [rankdir={rankdir}, dpi={int(dpi)}, concentrate=true];",
            "  node [shape=record, fontname=Helvetica];",
        ]
        self._indent = "  "

    def node(self, key: str, label: str) -> None:
        self.lines.append(f'{self._indent}"{key}" [label="{label}"];')

    def edge(self, a: str, b: str) -> None:
        self.lines.append(f'{self._indent}"{a}" -> "{b}";')

    def begin_cluster(self, key: str, title: str) -> None:
        self.lines.append(f'{self._indent}subgraph "cluster_{key}" {{')
        self._indent += "  "
        self.lines.append(f'{self._indent}label="{title}";')

    def end_cluster(self) -> None:
        self._indent = self._indent[:-2]
        self.lines.append(f"{self._indent}}}")

    def source(self) -> str:
        return "\n".join([*self.lines, "}"]) + "\n"


def _escape(text: str) -> str:
    # Record labels reserve {}|<> and the quote: escape them with a backslash.
    text = text.replace("\\", "\\\\")
    for ch in '{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text


def _label(layer, node, options) -> str:
    parts = []
    title = type(layer).__name__
    if options["show_layer_names"]:
        title = f"{layer.name} ({title})"
    parts.append(_escape(title))
    if options["show_layer_activations"] and getattr(layer, "activation", None) is not None:
        activation = getattr(layer.activation, "__name__", str(layer.activation))
        parts.append(_escape(f"activation: {activation}"))
    if options["show_trainable"]:
        parts.append("trainable" if layer.trainable else "frozen")
    if options["show_shapes"] and node is not None:
        parts.append(_escape(f"input: {_shape_text(node.input_tensors)}"))
        parts.append(_escape(f"output: {_shape_text(node.output_tensors)}"))
    if options["show_dtype"]:
        parts.append(_escape(f"dtype: {getattr(layer, 'dtype', '?')}"))
    return "{" + "|".join(parts) + "}" if len(parts) > 1 else parts[0]


def _add_model(dot: _Dot, model, prefix: str, options) -> tuple[dict, dict]:
    """Adds `model`'s layers; returns each layer's entry and exit node keys, by id."""
    entries: dict[int, list[str]] = {}
    exits: dict[int, list[str]] = {}
    nodes = _graph_nodes(model)
    first_node = {}
    for node in nodes:
        first_node.setdefault(id(node.layer), node)
    for layer in model.layers:
        key = f"{prefix}{layer.name}"
        if options["expand_nested"] and _is_graph_model(layer):
            dot.begin_cluster(key, _escape(layer.name))
            inner_entries, inner_exits = _add_model(dot, layer, f"{key}/", options)
            dot.end_cluster()
            # Edges into the nested model go to the layers reading its inputs (its input
            # layers themselves, when it lists them).
            input_ids = {id(t) for t in getattr(layer, "inputs", [])}
            readers = [t._keras_history[0] for t in getattr(layer, "inputs", [])]
            if not any(id(r) in inner_entries for r in readers):
                readers = [
                    n.layer
                    for n in _graph_nodes(layer)
                    if any(id(t) in input_ids for t in n.input_tensors)
                ]
            outputs = [t._keras_history[0] for t in getattr(layer, "outputs", [])]
            entries[id(layer)] = list(
                dict.fromkeys(k for r in readers for k in inner_entries.get(id(r), []))
            )
            exits[id(layer)] = [k for o in outputs for k in inner_exits.get(id(o), [])]
            continue
        dot.node(key, _label(layer, first_node.get(id(layer)), options))
        entries[id(layer)] = exits[id(layer)] = [key]
    if nodes:
        for node in nodes:
            for tensor in node.input_tensors:
                source = tensor._keras_history[0]
                for a in exits.get(id(source), []):
                    for b in entries.get(id(node.layer), []):
                        dot.edge(a, b)
    return entries, exits


def model_to_dot(
    model,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    **kwargs,
) -> str:
    """Returns the Graphviz DOT source of `model`'s layer graph.

    Functional and Sequential models are drawn with their connections; a subclassed model,
    whose connections live in its Python `call`, as its list of layers.

    Args:
        model: the model.
        show_shapes: show each layer's input and output shapes.
        show_dtype: show each layer's dtype.
        show_layer_names: show layer names beside class names.
        rankdir: `"TB"` (vertical) or `"LR"` (horizontal).
        expand_nested: draw nested functional/Sequential models as clusters of their layers.
        dpi: the image resolution.
        show_layer_activations: show the activation of layers that have one.
        show_trainable: mark each layer as trainable or frozen.

    Returns:
        The DOT source, a string.
    """
    if kwargs:
        raise TypeError(f"model_to_dot() got unexpected keyword arguments: {sorted(kwargs)}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(
            f"Invalid value for argument rankdir. Expected 'TB', 'LR', 'BT' or 'RL'. "
            f"Received: rankdir={rankdir!r}"
        )
    if not getattr(model, "built", False):
        raise ValueError(
            "This model has not yet been built. Build the model first by calling `build()` or "
            "by calling the model on a batch of data."
        )
    options = {
        "show_shapes": show_shapes,
        "show_dtype": show_dtype,
        "show_layer_names": show_layer_names,
        "expand_nested": expand_nested,
        "show_layer_activations": show_layer_activations,
        "show_trainable": show_trainable,
    }
    dot = _Dot(rankdir, dpi)
    _add_model(dot, model, "", options)
    return dot.source()


def plot_model(
    model,
    to_file: str = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    **kwargs,
) -> None:
    """Draws `model`'s layer graph to an image file with Graphviz.

    A `.dot` file is written directly; other formats (`.png`, `.svg`, `.pdf`, ...) are rendered
    by Graphviz's `dot` program, which must be installed (the `graphviz` system package).

    Args:
        model: the model.
        to_file: the image file; its extension picks the format.
        show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
            show_layer_activations, show_trainable: as for `model_to_dot`.

    Raises:
        ImportError: rendering an image needs `dot` and it is not installed.

    Example:
        ```python
        ktorch.utils.plot_model(model, "model.png", show_shapes=True)
        ```
    """
    source = model_to_dot(
        model,
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        rankdir=rankdir,
        expand_nested=expand_nested,
        dpi=dpi,
        show_layer_activations=show_layer_activations,
        show_trainable=show_trainable,
        **kwargs,
    )
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1].lower().lstrip(".") or "png"
    if extension in ("dot", "gv"):
        with open(to_file, "w") as f:
            f.write(source)
        return
    if extension not in _FORMATS:
        raise ValueError(
            f"Unsupported image format for plot_model: '.{extension}'. Use one of "
            f"{sorted(_FORMATS | {'dot', 'gv'})}. Received: to_file={to_file}"
        )
    dot_program = shutil.which("dot")
    if dot_program is None:
        raise ImportError(
            "You must install Graphviz (its `dot` program, e.g. `apt install graphviz`) for "
            f"`plot_model` to render '{to_file}'; a `.dot` file can be written without it."
        )
    result = subprocess.run(
        [dot_program, f"-T{'jpg' if extension == 'jpeg' else extension}", "-o", to_file],
        input=source,
        text=True,
        capture_output=True,
    )
    if result.returncode != 0:
        raise OSError(f"Graphviz failed to render {to_file}: {result.stderr.strip()}")
