"""Protobuf text format as Caffe prints it (DebugString): 2-space indent, floats as protobuf's SimpleFtoa,
enums bare. Messages are plain dicts whose key order is the proto field-number order (Caffe prints fields
in that order, not in the order the file wrote them), repeated fields are lists."""

from __future__ import annotations

import math
import re

import numpy as np


class Enum(str):
    """An enum value (MAX, LMDB, TRAIN, ...): printed without quotes."""


def proto_float(value: float) -> str:
    """protobuf SimpleFtoa: %.6g unless that does not round-trip through float32, then %.9g."""
    f32 = np.float32(value)
    short = f"{float(f32):.6g}"
    return short if np.float32(float(short)) == f32 else f"{float(f32):.9g}"


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return str(value)
    return proto_float(float(value))


def text_lines(message: dict, indent: int = 0) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for key, value in message.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                lines.append(f"{pad}{key} {{")
                lines += text_lines(item, indent + 1)
                lines.append(f"{pad}}}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    return lines


def cpp(value: float | int) -> str:
    """A number as C++ `ostream <<` prints it (precision 6, glibc spelling of NaN/inf incl. the sign)."""
    if isinstance(value, int | np.integer):
        return str(int(value))
    v = float(value)
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:g}"


# Fields that are lists in the generator's dicts even when the file has them once.
REPEATED = {"layer", "bottom", "top", "param", "stepvalue", "mean_value", "loss_weight"}
_TOKEN = re.compile(r'\s*(?:#[^\n]*|([{}])|(\w+)\s*:?\s*\{|(\w+)\s*:\s*("(?:[^"\\]|\\.)*"|[^\s{}#]+))')


def parse_text(text: str) -> dict:
    """Protobuf text (a prototxt as written by `text_lines`, comments allowed) back into the dicts the
    generator builds nets and solvers from: bare words become Enum, true/false bool, numbers int or
    float, keys in REPEATED (or given twice) lists."""
    stack: list[dict] = [{}]
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip():
                raise ValueError(f"prototxt: cannot read {text[pos : pos + 40]!r}")
            break
        pos = match.end()
        brace, opener, key, raw = match.groups()
        if brace == "}":
            stack.pop()
        elif brace == "{":
            raise ValueError("prototxt: '{' without a field name")
        elif opener:
            child: dict = {}
            _put(stack[-1], opener, child)
            stack.append(child)
        elif key:
            _put(stack[-1], key, _value(raw))
    if len(stack) != 1:
        raise ValueError("prototxt: unbalanced braces")
    return stack[0]


def _put(message: dict, key: str, value: object) -> None:
    if key in message:
        if not isinstance(message[key], list):
            message[key] = [message[key]]
        message[key].append(value)
    else:
        message[key] = [value] if key in REPEATED else value


def _value(raw: str) -> object:
    if raw.startswith('"'):
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return Enum(raw)
