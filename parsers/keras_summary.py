"""Keras `model.summary()` tables printed into a log: the net's layers, the way a Caffe log lists its
prototxt. Keras 3 draws boxes (a long type gets a row of its own); Keras 2 and tf.keras print plain
columns and cut or wrap a long type (its first letters are kept, and they are enough: `Batch...`,
`Conv...`):

    │ batch_normalization_26          │ (None, 64)             │           256 │     (Keras 3)
    │ (BatchNormalization)            │                        │               │
    batch_normalization_1 (Batch (None, 64)                256                       (Keras 2)

What the rules need from it: whether the net has BatchNorm (and which layers), how many weight layers
it has, whether it adds skip connections, and the class count C, the last weight layer's width, when
the log reports an accuracy (a classifier: a regression head's width is no C). A summary of a nested
model (a pretrained base shown as one `Functional` row) hides its layers, so it gives no depth.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from parsers.model import BatchNormLayer, LogLine, RunMeta

_HEADER = re.compile(r"Layer \(type\)\s*[┃│|]?\s*Output Shape")
_END = re.compile(r"^\s*Total params:")
_BOX = re.compile(r"[│┃]")
# one row of the plain layouts: name, (type, maybe cut), output shape, parameter count
_PLAIN_ROW = re.compile(
    r"^\s*(?P<name>[\w./:-]+) \((?P<type>[A-Za-z0-9_]*)\)?"
    r"\s+(?P<shape>\(.*?\)|\[.*?\]|multiple)\s+(?P<params>[\d,]+)\b"
)
_BOX_NAME = re.compile(r"^(?P<name>[\w./:-]+)(?: \((?P<type>[A-Za-z0-9_]*)\)?)?$")
_WEIGHT_TYPES = re.compile(r"^(?:Dense|Conv\w*|SeparableConv\w*|DepthwiseConv\w*)$")
_NESTED_TYPES = {"Functional", "Model", "Sequential"}
_ACCURACY = re.compile(r" - (?:val_)?(?:sparse_categorical_|categorical_|binary_)?acc(?:uracy)?: ")
_MAX_CHARS = 2_000_000  # a table is read this far at most (10,000 layers), not to the end of a huge log


class Layer(NamedTuple):
    name: str
    type: str  # as printed: Keras 2 may cut it ("Batch"); Keras 3's own row for it is joined
    shape: str
    line: int
    text: str


def summary_facts(text: str, source_name: str, meta: RunMeta) -> None:
    """Set the facts of the first `model.summary()` table in `text` on `meta`."""
    layers = _first_table(text)
    if not layers:
        return
    for layer in layers:
        if layer.type.startswith("Batch") or layer.name.startswith("batch_normalization"):
            where = LogLine(source_name, layer.line, layer.text)
            meta.batchnorm.append(BatchNormLayer(layer.name, "any", None, where, source="net"))
            meta.where.setdefault("batchnorm", where)
    weights = [layer for layer in layers if _WEIGHT_TYPES.match(layer.type)]
    if weights and not any(layer.type in _NESTED_TYPES for layer in layers):
        meta.set("depth", len(weights), LogLine(source_name, weights[0].line, weights[0].text))
    added = next((layer for layer in layers if layer.type == "Add"), None)
    if added is not None:
        meta.set("has_residual", True, LogLine(source_name, added.line, added.text))
    if weights and _ACCURACY.search(text):
        last = weights[-1]
        width = _last_dimension(last.shape)
        if width is not None and width >= 2:
            meta.set("num_classes", width, LogLine(source_name, last.line, last.text))


def _last_dimension(shape: str) -> int | None:
    numbers = re.findall(r"(\d+|None)", shape)
    return int(numbers[-1]) if numbers and numbers[-1] != "None" else None


def _first_table(text: str) -> list[Layer]:
    """The layers of the first summary table, in order, up to its `Total params:` line."""
    header = _HEADER.search(text)
    if header is None:
        return []
    line = text.count("\n", 0, header.start()) + 1
    layers: list[Layer] = []
    start = text.find("\n", header.end()) + 1
    if start == 0:
        return []
    for raw in text[start : start + _MAX_CHARS].split("\n"):
        line += 1
        if _END.match(raw):
            break
        row = _BOX.split(raw) if _BOX.search(raw) else None
        if row is not None:
            _box_row([cell.strip() for cell in row[1:-1]], raw, line, layers)
            continue
        found = _PLAIN_ROW.match(raw)
        if found:
            layers.append(Layer(found["name"], found["type"], found["shape"], line, raw.strip()))
    return layers


def _box_row(cells: list[str], raw: str, line: int, layers: list[Layer]) -> None:
    """One row of Keras 3's table: a layer, or the rest of the one above (its type on a line of its own)."""
    if len(cells) < 3 or not cells[0]:
        return
    if not cells[1] and not cells[2] and layers and re.fullmatch(r"\(\w+\)", cells[0]):
        layers[-1] = layers[-1]._replace(type=cells[0].strip("()"))
        return
    found = _BOX_NAME.match(cells[0])
    if found and re.fullmatch(r"[\d,]+", cells[2]):
        layers.append(Layer(found["name"], found["type"] or "", cells[1], line, raw.strip()))
