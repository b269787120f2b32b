"""Map the many spellings of metric names onto (split, canonical metric).

`val_loss`, `eval_loss`, `valid/loss`, `test_loss`, `Test net output #1: loss` all end as
metric "loss" with the split in its own column; the original spelling stays in the `name` column.
"""

from __future__ import annotations

import re

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
# Per-key caches of the format plug-ins hold at most this many keys: keys come from uploads, and a
# cache lives as long as the server process (an unbounded one grows with every file ever read).
KEY_CACHE_SIZE = 4096
_SEPARATORS = re.compile(r"[/_\-. ]+")

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


def canonical_metric(name: str) -> str:
    """Canonical metric for a name that carries no split ("Top-5 Accuracy" -> "top5")."""
    key = _SEPARATORS.sub("_", name.strip().lower()).strip("_")
    key_dash = name.strip().lower().replace("/", "_")
    return _ALIASES.get(key) or _ALIASES.get(key_dash) or key


def split_and_metric(name: str, default_split: str = "train") -> tuple[str, str]:
    """Split a name like "val_loss" or "train/box_loss" into ("val", "loss") / ("train", "box_loss").
    Names with no split prefix keep `default_split`."""
    lowered = name.strip().lower()
    parts = _SEPARATORS.split(lowered, maxsplit=1)
    if len(parts) == 2:
        for prefix, split in _SPLIT_PREFIXES:
            if parts[0] == prefix and parts[1]:
                return split, canonical_metric(parts[1])
    return default_split, canonical_metric(name)
