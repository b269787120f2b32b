"""Fixes -> edits of a PyTorch-ecosystem run's own settings, the non-Caffe half of `corrections`.

A settings file uploaded beside the log (Lightning's hparams.yaml, HF's training_args.json, an
mmcv/mmengine config .py, any YAML/JSON/TOML/INI config or shell script) gets the changed value
written into the span that holds it: `lr: 0.1` in YAML, `"learning_rate": 0.1` in JSON, `lr=0.1` in a
Python config, `--lr 0.1` on a command line. Only that number changes; the rest of the file stays
byte-identical. Without such a file, the argparse `Namespace(...)` or the `python train.py --lr ...`
command the log echoes comes back changed, for the user to re-run.

A value is only edited where it equals the value the fix starts from (the run's lr), so a warm-up lr,
a scheduler's `min_lr` or another optimiser's lr in the same file is left alone. The fixes that are no
lr change start from the tool's "off" value: a warm-up of 0 steps, gradient accumulation over 1 batch,
a clip norm of 0 (HF, nanoGPT, Lightning, DeepSpeed and Megatron all read 0 as "do not clip"), or, to
lengthen a warm-up, the warm-up the log showed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from diagnostics.model import Fix

# Which settings a fix changes, and the names those settings go by.
SETTING_NAMES = {
    "lr": ("lr", "learning_rate", "base_lr", "BASE_LR", "lr0", "max_lr", "peak_lr"),
    "adam_beta2": ("adam_beta2", "beta2"),
    "warmup": ("warmup_steps", "warmup_iters", "lr_warmup_iters", "warmup_num_steps", "WARMUP_ITERS"),
    "accumulation": ("gradient_accumulation_steps", "accumulate_grad_batches", "accumulative_counts"),
    "clip": ("max_grad_norm", "grad_clip", "gradient_clip_val", "gradient_clipping", "clip_grad"),
}
FIX_SETTINGS = {"fixes.lower_lr": "lr", "fixes.raise_lr": "lr", "fixes.adam_beta2": "adam_beta2"}
CLIP_NORM = "1.0"  # the norm the clipping fixes set (fixes.clip_gradients)
SETTINGS_SUFFIXES = (".yaml", ".yml", ".json", ".py", ".toml", ".cfg", ".ini", ".sh", ".conf")
MAX_SETTINGS_BYTES = 1024 * 1024  # a config is small; a bigger file is a log, not settings
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ECHOED_COMMAND = re.compile(r"(?:Namespace\(.*\)|(?:python\S*|torchrun|accelerate launch)\s+\S+\.py\s.*)")


@dataclass(frozen=True)
class Change:
    """What a fix asks of the settings: the setting, the value the run used and the new one."""

    setting: str
    old: float | None
    new: str


def change_of(fix: Fix) -> Change | None:
    """The settings change a fix stands for (None: the fix is no value change, e.g. a data check)."""
    params = fix.params
    if fix.key == "fixes.warmup":
        return Change("warmup", 0.0, str(params["steps"]))
    if fix.key == "fixes.longer_warmup":
        return Change("warmup", _float(params["old"]), str(params["new"]))
    if fix.key == "fixes.accumulate":
        return Change("accumulation", 1.0, str(params["iter_size"]))
    if fix.key == "fixes.clip_gradients":
        return Change("clip", 0.0, CLIP_NORM)
    setting = FIX_SETTINGS.get(fix.key)
    if setting is None or "new" not in params:
        return None
    return Change(setting, _float(params.get("old")), str(params["new"]))


def is_settings_file(name: str, data: bytes) -> bool:
    """A small text file named like a config (the log itself is never one)."""
    return (
        name.lower().endswith(SETTINGS_SUFFIXES)
        and len(data) <= MAX_SETTINGS_BYTES
        and b"\0" not in data[:4096]
        and not _is_metrics_json(data)
    )


def _is_metrics_json(data: bytes) -> bool:
    """HF's trainer_state.json and other logs saved as JSON hold the lr per logged step: not settings."""
    head = data[:65536]
    return b'"log_history"' in head or head.count(b'"step"') > 3


def value_spans(line: str, names: Sequence[str]) -> list[tuple[int, int, float]]:
    """(start, end, value) of every number assigned to one of `names` on a line: `name: 1`, `name = 1`,
    `"name": 1`, `name=1`, `--name 1`, `--name=1` (dashes and underscores alike on the command line)."""
    stripped = line.lstrip()
    if stripped.startswith(("#", "//", ";")):
        return []
    spans = []
    for name in names:
        dashed = re.escape(name).replace("_", "[-_]")
        patterns = (
            rf"(?<![\w.\-])[\"']?{re.escape(name)}[\"']?\s*[:=]\s*[\"']?({_NUMBER})(?![\w.])",
            rf"(?<![\w\-])--{dashed}(?:=|\s+)[\"']?({_NUMBER})(?![\w.])",
        )
        for pattern in patterns:
            for match in re.finditer(pattern, line):
                value = _float(match.group(1))
                if value is not None:
                    spans.append((match.start(1), match.end(1), value))
    return sorted(set(spans))


def changed_lines(lines: Iterable[str], change: Change) -> list[tuple[int, str, str]]:
    """(line number from 1, before, after) for every line holding the setting at the run's value."""
    names = SETTING_NAMES[change.setting]
    out = []
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\n").removesuffix("\r")
        spans = [s for s in value_spans(text, names) if _same(s[2], change.old)]
        if not spans:
            continue
        after = text
        for start, end, _ in reversed(spans):
            after = after[:start] + change.new + after[end:]
        if after != text:
            out.append((number, text, after))
    return out


def echoed_command(log_text: str, change: Change) -> str | None:
    """The Namespace or command line the log echoes, with the setting changed (None when it echoes
    neither, or not with the run's value)."""
    for line in log_text.splitlines()[:500]:
        match = _ECHOED_COMMAND.search(line)
        if match is None:
            continue
        changed = changed_lines([match.group(0)], change)
        if changed:
            return changed[0][2]
    return None


def _same(value: float, old: float | None) -> bool:
    return old is not None and math.isclose(value, old, rel_tol=1e-4)


def _float(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
