"""Map the many spellings of metric names onto (split, canonical metric).

`val_loss`, `eval_loss`, `valid/loss`, `test_loss`, `Test net output #1: loss` all end as
metric "loss" with the split in its own column; the original spelling stays in the `name` column.
"""

from __future__ import annotations

import hashlib
import re

from parsers.source import budget

_SPLIT_PREFIXES = (
    ("train", "train"),
    ("training", "train"),
    ("tr", "train"),
    ("val", "val"),
    ("valid", "val"),
    ("validation", "val"),
    ("eval", "val"),
    ("dev", "val"),
    ("test", "test"),
)
# The samples a run has read by a step, as the log counts them (Megatron's `consumed samples`): a
# position in the data order, not a curve to draw; cross-run rules align runs on it.
CONSUMED_SAMPLES = "consumed_samples"
# Metric names longer than this (LOSS_DOCTOR_MAX_NAME_CHARS) are shortened to their start, an ellipsis
# and a hash of the whole name: no real metric name is that long, two long names stay two series, and
# a label's memory stays bounded (a 300,000-character name once cost GBs, copied per row).
MAX_NAME_CHARS = 200
_HASH_CHARS = 8
# Per-key caches of the format plug-ins hold at most this many keys: keys come from uploads, and a
# cache lives as long as the server process (an unbounded one grows with every file ever read).
KEY_CACHE_SIZE = 4096
_SEPARATORS = re.compile(r"[/_\-. ]+")
# The loss under a name without "loss" in it (a negative log-likelihood, a cross-entropy, a cost), in
# this order of preference: judged and drawn as the loss only when no metric of the split is named one.
LOSS_SYNONYMS = ("nll", "cross_entropy", "xent", "ce", "cost")

_ALIASES = {
    "loss": "loss",
    "total_loss": "loss",
    "objective": "loss",
    "lr": "lr",
    "learning_rate": "lr",
    "lr0": "lr",
    "acc": "accuracy",
    "accuracy": "accuracy",
    "acc1": "accuracy",
    "top1": "accuracy",
    "accuracy_top1": "accuracy",
    "accuracy_top_1": "accuracy",
    "accuracy_top-1": "accuracy",
    "acc5": "top5",
    "top5": "top5",
    "accuracy_top5": "top5",
    "accuracy_top_5": "top5",
    "accuracy_top-5": "top5",
    "grad_norm": "grad_norm",
    "gradient_norm": "grad_norm",
    "ppl": "perplexity",
    "perplexity": "perplexity",
    "map": "map",
    "bbox_map": "map",
    "bbox_ap": "map",  # detectron2's bbox/AP (COCO mAP@[.5:.95])
    "detection_eval": "map",
}


def capped_name(name: str) -> str:
    """`name`, or when longer than the cap its start, `…` and a hash of the whole name."""
    cap = budget("MAX_NAME_CHARS", MAX_NAME_CHARS)
    if len(name) <= cap:
        return name
    digest = hashlib.blake2b(name.encode("utf-8", "replace"), digest_size=_HASH_CHARS // 2).hexdigest()
    return f"{name[: max(cap - _HASH_CHARS - 1, 1)]}…{digest}"


def canonical_metric(name: str) -> str:
    """Canonical metric for a name that carries no split ("Top-5 Accuracy" -> "top5")."""
    name = capped_name(name)
    key = _SEPARATORS.sub("_", name.strip().lower()).strip("_")
    key_dash = name.strip().lower().replace("/", "_")
    return _ALIASES.get(key) or _ALIASES.get(key_dash) or key


def split_and_metric(name: str, default_split: str = "train") -> tuple[str, str]:
    """Split a name like "val_loss" or "train/box_loss" into ("val", "loss") / ("train", "box_loss").
    Names with no split prefix keep `default_split`."""
    name = capped_name(name)
    lowered = name.strip().lower()
    parts = _SEPARATORS.split(lowered, maxsplit=1)
    if len(parts) == 2:
        for prefix, split in _SPLIT_PREFIXES:
            if parts[0] == prefix and parts[1]:
                return split, canonical_metric(parts[1])
    return default_split, canonical_metric(name)
