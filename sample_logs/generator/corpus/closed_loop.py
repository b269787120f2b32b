"""The corpus's closed loop, training side: re-train a corpus run with the fix Loss Doctor offered first,
same seed and data, and judge the outcome with the generator's own numpy checks (`outcome`).

Reads a plan (JSON on stdin: run id, fix key, fix numbers) written by sample_logs/corpus_closed_loop.py,
prints one JSON result per line. The recipe of each run is rebuilt by `scenarios.build` exactly as
generate_corpus.py built it; the group's healthy base is re-trained too, as the reference the outcome
check compares with (and the source of the weights a fine-tuning fix loads).
"""

from __future__ import annotations

import copy
import json
import math
import sys

import numpy as np
import torch

from . import outcome
from .recipe import Recipe
from .runner import FLOORS
from .scenarios import build
from .train import train

# A fix the user applies as a change of the training script's settings -> the same change of the recipe.
# Fixes that are no setting (check the data, add early stopping) are not re-trained.
SETTING_FIXES = {
    "fixes.lower_lr",
    "fixes.lr_from_warmup",
    "fixes.raise_lr",
    "fixes.normalize_input",
    "fixes.bn_use_batch_stats",
    "fixes.bn_train_eval",
    "fixes.bn_remove_param",
    "fixes.load_weights_torch",
    "fixes.finetune_modes",
    "fixes.msra_init",
    "fixes.add_batchnorm",
    "fixes.normalize_true",
    "fixes.normalize_true_keep_lr",
    "fixes.reduction_mean",
    "fixes.reduction_mean_no_lr",
    "fixes.reduction_mean_check",
    "fixes.sum_smaller_lr",
}


def apply_fix(r: Recipe, fix: str, params: dict) -> str:
    """Change the recipe as the fix says; '' when applied, else why it cannot be."""
    if fix in ("fixes.accumulate", "fixes.groupnorm", "fixes.iter_size"):
        return "the generator has no gradient accumulation or GroupNorm to re-train this fix with"
    if fix not in SETTING_FIXES:
        return f"{fix} is not a settings change"
    if fix in ("fixes.lower_lr", "fixes.lr_from_warmup", "fixes.raise_lr"):
        old, new = float(params["old"]), float(params["new"])
        if r.schedule == "ramp":  # the logged lr is the ramp's; its peak moves by the same factor
            r.sched = {**r.sched, "peak": r.sched["peak"] * new / old}
        else:
            r.lr *= new / old
    elif fix == "fixes.normalize_input":
        r.input_norm = "standard"
    elif fix in ("fixes.bn_use_batch_stats", "fixes.bn_train_eval", "fixes.bn_remove_param"):
        r.bn_mode, r.bn_momentum = "", 0.1
    elif fix in ("fixes.load_weights_torch", "fixes.finetune_modes"):
        r.pretrained = True
    elif fix == "fixes.msra_init":
        r.init_std = None
    elif fix == "fixes.add_batchnorm":
        r.model = {**r.model, "bn": True}
    elif fix in ("fixes.normalize_true", "fixes.normalize_true_keep_lr") or fix.startswith(
        "fixes.reduction_mean"
    ):
        r.reduction = "mean"
    elif fix == "fixes.sum_smaller_lr":
        r.lr /= float(params.get("factor", r.batch))
    return ""


def _recipes() -> dict[str, tuple[Recipe, Recipe]]:
    """run id -> (recipe, its group's healthy base)."""
    out = {}
    for group in build(90):
        base = next(r for r in group if r.scenario == "healthy_base")
        out.update({r.run_id: (r, base) for r in group})
    return out


def _summary(rec, m: outcome.Measures) -> dict:
    losses = rec.losses
    finite = losses[np.isfinite(losses)]
    k = max(1, len(losses) // 20)
    tail = losses[-k:]
    return {
        "final_loss": float(np.median(tail)) if np.isfinite(tail).all() else math.nan,
        "min_loss": float(finite.min()) if len(finite) else math.nan,
        "accuracy": m.acc_final,
    }


def main() -> int:
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    plan = json.load(sys.stdin)
    recipes = _recipes()
    bases: dict[str, tuple[outcome.Measures, dict]] = {}
    for row in plan:
        recipe, base = recipes[row["run_id"]]
        fixed = copy.deepcopy(recipe)
        why = apply_fix(fixed, row["fix"], row["params"])
        result = {"row": row["row"], "not_retrained": why}
        if not why:
            classes = {"tokens": recipe.vocab, "segmentation": 3}.get(recipe.data, recipe.n_classes)
            chance = math.log(classes)
            if base.run_id not in bases:
                rec, model = train(base)
                m = outcome.measure(rec.losses, rec.evals, [s[0] for s in rec.steps], chance)
                bases[base.run_id] = (m, model.state_dict())
            ref, state = bases[base.run_id]
            rec, _ = train(fixed, pretrained=state if fixed.pretrained else None)
            m = outcome.measure(rec.losses, rec.evals, [s[0] for s in rec.steps], chance)
            healthy, reason = outcome.is_healthy(m, ref, FLOORS[recipe.data])
            result |= _summary(rec, m) | {
                "after": "healthy" if healthy else outcome.classify(m, ref) or "unclear",
                "reason": reason,
            }
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
