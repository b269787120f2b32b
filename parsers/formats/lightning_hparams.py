"""Lightning's `hparams.yaml` (saved beside metrics.csv): config only, no metrics.

Lightning dumps `self.save_hyperparameters()` as YAML, in practice flat `key: value` lines with
the odd nested block or list. PyYAML is not a dependency, so a line reader keeps every scalar
(nested keys dotted: `optimizer.lr`) in `meta.hyperparams` and maps the well-known names
(lr, batch_size, max_epochs, optimizer, weight_decay, momentum, pretrained) onto RunMeta with the
line that states them. Anchors, multi-line strings and flow mappings are kept as raw text.
"""

from __future__ import annotations

import re

from parsers.model import LogLine, RunMeta
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "lightning_hparams"
FRAMEWORK = "pytorch"

_KEY_VALUE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.\-]*)\s*:(?:\s+(?P<value>.*?))?\s*$")
_LIST_ITEM = re.compile(r"^ *- ")
_YAML_TAG = re.compile(r"^!!\S+\s*")
_NULLS = {"", "null", "~", "None"}
_TRUE, _FALSE = {"true", "yes", "on"}, {"false", "no", "off"}

# leaf key (lower case) -> (RunMeta field, converter name)
_FACTS = {
    "lr": ("base_lr", "float"),
    "learning_rate": ("base_lr", "float"),
    "base_lr": ("base_lr", "float"),
    "batch_size": ("batch_size", "int"),
    "train_batch_size": ("batch_size", "int"),
    "max_epochs": ("epochs", "int"),
    "epochs": ("epochs", "int"),
    "num_epochs": ("epochs", "int"),
    "max_steps": ("max_iter", "int"),
    "optimizer": ("optimizer", "name"),
    "optimizer_name": ("optimizer", "name"),
    "optim": ("optimizer", "name"),
    "weight_decay": ("weight_decay", "float"),
    "momentum": ("momentum", "float"),
    "pretrained": ("pretrained", "pretrained"),
    "pretrained_path": ("pretrained", "pretrained"),
    "pretrained_weights": ("pretrained", "pretrained"),
}


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text(16 * 1024).splitlines()
    lines = [ln for ln in head if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines or lines[0].lstrip().startswith(("{", "[")):
        return 0.0
    pairs = [_KEY_VALUE.match(ln) for ln in lines]
    yaml_like = sum(1 for m, ln in zip(pairs, lines, strict=True) if m or _LIST_ITEM.match(ln) or ln == "---")
    if yaml_like < 0.9 * len(lines):
        return 0.0
    if source.name.lower().endswith(("hparams.yaml", "hparams.yml")):
        return 0.8
    known = {m["key"].lower() for m in pairs if m} & _FACTS.keys()
    return 0.3 if len(known) >= 2 else 0.0


def read_pairs(lines: list[str]) -> list[tuple[str, str, int]]:
    """(dotted key, value text, 1-based line) for every scalar `key: value` line."""
    pairs = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    for number, line in enumerate(lines, start=1):
        match = _KEY_VALUE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        value = _YAML_TAG.sub("", match["value"] or "").strip()
        key = ".".join([*(k for _, k in parents), match["key"]])
        if value in ("", "|", ">") or value.startswith("&"):
            parents.append((indent, match["key"]))
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        pairs.append((key, value, number))
    return pairs


def _convert(kind: str, value: str) -> object:
    """The typed value, or None when the text does not fit (e.g. `lr: auto`)."""
    lowered = value.lower()
    try:
        if kind == "float":
            return float(value)
        if kind == "int":
            number = float(value)
            return int(number) if number.is_integer() and number > 0 else None
    except ValueError:
        return None
    if kind == "name":
        return lowered
    if kind == "pretrained":
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        return True
    return None


def parse(source: SourceFile) -> ParsedFile:
    lines = source.lines()
    pairs = read_pairs(lines)
    if not pairs:
        raise ParseError("no `key: value` lines found")
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    for key, value, number in pairs:
        meta.hyperparams[key] = value
        leaf = key.rsplit(".", 1)[-1].lower()
        if leaf not in _FACTS or value in _NULLS:
            continue
        field_name, kind = _FACTS[leaf]
        typed = _convert(kind, value)
        if typed is None:
            continue
        where = LogLine(source.name, number, lines[number - 1].strip())
        meta.set(field_name, typed, where)
        if field_name == "pretrained" and typed is True and value.lower() not in _TRUE:
            meta.set("pretrained_from", value, where)
    return ParsedFile(metrics=None, meta=meta)
