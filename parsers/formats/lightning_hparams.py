"""Lightning's `hparams.yaml` (saved beside metrics.csv): config only, no metrics.

Lightning dumps `self.save_hyperparameters()` as YAML, in practice flat `key: value` lines with
the odd nested block or list. PyYAML is not a dependency: the settings are read by the same
line-based echo reader as the hyper-parameters printed in text logs (parsers.hparams), which keeps
every scalar (nested keys dotted: `model.d_model`) in `meta.hyperparams` and maps the well-known
names (lr/learning_rate, batch_size, max_epochs, optimizer, weight_decay, momentum, pretrained,
precision, gradient_clip_val) onto RunMeta with the line that states them. This module only
recognises the file.
"""

from __future__ import annotations

import re

from parsers.hparams import hyperparams_from_text
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "lightning_hparams"
FRAMEWORK = "pytorch"

_KEY_VALUE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.\-]*)\s*:(?:\s+(?P<value>.*?))?\s*$")
_LIST_ITEM = re.compile(r"^ *- ")

# Settings a Lightning module typically saves; two of them make an unnamed YAML file a candidate.
_KNOWN_KEYS = {
    "lr",
    "learning_rate",
    "batch_size",
    "max_epochs",
    "epochs",
    "optimizer",
    "weight_decay",
    "momentum",
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
    known = {m["key"].lower() for m in pairs if m} & _KNOWN_KEYS
    return 0.3 if len(known) >= 2 else 0.0


def parse(source: SourceFile) -> ParsedFile:
    if not any(_KEY_VALUE.match(line) for line in source.lines()):
        raise ParseError("no `key: value` lines found")
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(source.text, source.name, meta)
    return ParsedFile(metrics=None, meta=meta)
