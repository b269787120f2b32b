"""Runs one group (base first, then its siblings): train, check the label against the outcome, write the
kept runs gzipped under corpus/runs/<run_id>/ and return their label rows (and the dropped ones)."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from . import outcome
from .emit import emit, logged_losses
from .recipe import Recipe
from .train import Record, train

FLOORS = {"images": 0.5, "tabular": 0.6, "segmentation": 0.6, "tokens": 0.25}
COLUMNS = [
    "path",
    "format",
    "family",
    "data",
    "group",
    "seed",
    "scenario",
    "severity",
    "symptom",
    "cause",
    "steps",
    "first_loss",
    "min_loss",
    "final_loss",
    "final_metric",
    "relabelled_from",
    "description",
]


def g4(x: float) -> str:
    return "" if x is None else ("nan" if not math.isfinite(x) else f"{x:.4g}")


def describe(r: Recipe, rec: Record, symptom: str, first: float, lo: float, final: float, acc: float) -> str:
    opt = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}[r.optimizer]
    if r.optimizer == "sgd" and r.momentum:
        opt += f" momentum {r.momentum:g}" + (" nesterov" if r.nesterov else "")
    sched = {"fixed": "constant lr", "ramp": "linear warm-up"}.get(r.schedule, f"{r.schedule} schedule")
    what = {
        "images": "pattern images",
        "tabular": "tabular features",
        "tokens": "Markov token sequences",
        "segmentation": "shape segmentation",
    }[r.data]
    metric = "pixel" if r.data == "segmentation" else "token" if r.data == "tokens" else ""
    tail = (
        f"final val {metric + ' ' if metric else ''}accuracy {acc:.0%}"
        if math.isfinite(acc)
        else "no finite eval"
    )
    about = f" ({r.about})" if r.about else ""
    end = "non-finite from then on" if not math.isfinite(final) else f"{final:.3g} at the end"
    return (
        f"{r.family} on {r.n_train} {what}, {opt} lr {r.lr:.3g}, batch {r.batch}, {sched}, "
        f"{len(rec.steps)} steps{about}: loss {first:.3g} at the start, lowest {lo:.3g}, {end}; "
        f"{tail} ({symptom})."
    )


def run_group(recipes: list[Recipe], out_root: Path, engine_caffe=None) -> list[dict]:
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    rows: list[dict] = []
    refs: dict[str, outcome.Measures] = {}
    state = None
    for r in recipes:
        t0 = time.perf_counter()
        try:
            if r.engine == "caffe":
                rec, files_fn = engine_caffe(r, state)
                model_state = None
            else:
                rec, model = train(r, pretrained=state if r.pretrained else None)
                model_state = model.state_dict() if r.scenario == "healthy_base" else None
        except Exception as exc:  # a recipe that crashes is dropped, with the reason
            rows.append({"run_id": r.run_id, "dropped": f"error: {type(exc).__name__}: {exc}", "recipe": r})
            continue
        if model_state is not None:
            state = model_state
        if r.engine == "caffe" and r.scenario == "healthy_base":
            state = rec.snapshot
        chance = math.log(r.vocab if r.data == "tokens" else 3 if r.data == "segmentation" else r.n_classes)
        m = outcome.measure(rec.losses, rec.evals, [s[0] for s in rec.steps], chance)
        ref = refs.get("taskB" if r.freeze else "base")
        v = outcome.decide(r.symptom, r.cause, m, ref, FLOORS[r.data])
        if v.keep and v.symptom != "healthy":
            # The label is for a reader of the log: the symptom must also show in what the format records
            # (per-epoch means hide a spike, a logging window averages it away).
            steps, values = logged_losses(r, rec)
            if len(values) >= 3:
                seen = outcome.decide(
                    v.symptom, r.cause, outcome.measure(values, rec.evals, steps, chance), ref, FLOORS[r.data]
                )
                if not seen.keep:
                    v = outcome.Verdict(False, "", reason=f"{seen.reason} in the logged series")
                elif seen.symptom != v.symptom:
                    v = outcome.Verdict(True, seen.symptom, v.relabelled_from or v.symptom)
        if v.keep and r.symptom == "healthy":
            if r.scenario == "healthy_base":
                refs["base"] = m
            if r.pretrained:
                refs["taskB"] = m
        seconds = time.perf_counter() - t0
        if not v.keep:
            rows.append({"run_id": r.run_id, "dropped": v.reason, "recipe": r, "seconds": seconds})
            continue
        folder = out_root / r.run_id
        if folder.exists():
            shutil.rmtree(folder)
        try:
            if r.engine == "caffe":
                files_fn(folder)
            else:
                emit(r, rec, folder)
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            rows.append(
                {"run_id": r.run_id, "dropped": f"writer error: {type(exc).__name__}: {exc}", "recipe": r}
            )
            continue
        L = rec.losses
        fin = L[np.isfinite(L)]
        first = float(L[0])
        lo = float(fin.min()) if len(fin) else math.nan
        k = max(1, len(L) // 20)
        tailv = L[-k:]
        final = float(np.median(tailv)) if np.isfinite(tailv).all() else math.nan
        acc = m.acc_final
        rows.append(
            {
                "path": f"runs/{r.run_id}",
                "format": r.fmt,
                "family": r.family,
                "data": r.data,
                "group": r.group,
                "seed": r.seed,
                "scenario": r.scenario,
                "severity": "" if r.severity is None else f"{r.severity:g}",
                "symptom": v.symptom,
                "cause": r.cause,
                "steps": len(rec.steps),
                "first_loss": g4(first),
                "min_loss": g4(lo),
                "final_loss": g4(final),
                "final_metric": g4(acc),
                "relabelled_from": v.relabelled_from,
                "description": describe(r, rec, v.symptom, first, lo, final, acc),
                "seconds": seconds,
            }
        )
    return rows
