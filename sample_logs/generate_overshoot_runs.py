"""Real runs for the LD115 tests: recipes of the corpus's training-split groups warmed up over the whole
run to 30x / 100x / 300x their tuned lr, trained on the CPU and written in each group's own log format to
`tests/fixtures/lr_overshoot/`, with the symptom the generator's outcome check sees (`labels.csv`).

    /work/train-venv/bin/python sample_logs/generate_overshoot_runs.py

The corpus holds such runs too (`warmup_to_lr_x*`), but few in the training split; these are test data
only: no fit and no evaluation reads them.
"""

from __future__ import annotations

import copy
import csv
import math
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generator.corpus import outcome  # noqa: E402
from generator.corpus.emit import emit  # noqa: E402
from generator.corpus.runner import FLOORS  # noqa: E402
from generator.corpus.scenarios import build  # noqa: E402
from generator.corpus.train import train  # noqa: E402

OUT = HERE.parent / "tests" / "fixtures" / "lr_overshoot"
SPLIT = HERE / "corpus" / "split.csv"
FAMILIES = ("charlm", "mlp", "cnn", "resnet")
PER_FAMILY = 3
FACTORS = (30, 100, 300)


def training_groups() -> set[str]:
    with SPLIT.open(encoding="utf-8") as fh:
        return {row["group"] for row in csv.DictReader(fh) if row["split"] == "train"}


def recipes():
    """(overshoot recipe, its group's healthy base): the first training-split groups of each family."""
    train_groups, taken = training_groups(), dict.fromkeys(FAMILIES, 0)
    for group in build(90):
        base = group[0]
        if base.family not in taken or taken[base.family] >= PER_FAMILY or base.group not in train_groups:
            continue
        factor = FACTORS[taken[base.family] % len(FACTORS)]
        taken[base.family] += 1
        r = copy.deepcopy(base)
        r.run_id, r.scenario = f"{base.group}_overshoot_x{factor}", f"overshoot_x{factor}"
        r.symptom, r.cause, r.severity = "", "lr_too_high", factor
        r.schedule, r.sched, r.clip = "ramp", {"peak": factor, "stop_diverged": True}, None
        r.epochs = max(base.epochs, 6)
        yield r, base


def main() -> int:
    import torch

    torch.set_num_threads(1)
    np.seterr(all="ignore")
    shutil.rmtree(OUT, ignore_errors=True)
    rows = []
    for r, base in recipes():
        chance = math.log(r.vocab if r.data == "tokens" else 3 if r.data == "segmentation" else r.n_classes)
        ref_rec, _ = train(base)
        ref = outcome.measure(ref_rec.losses, ref_rec.evals, [s[0] for s in ref_rec.steps], chance)
        rec, _ = train(r)
        m = outcome.measure(rec.losses, rec.evals, [s[0] for s in rec.steps], chance)
        healthy, _ = outcome.is_healthy(m, ref, FLOORS[r.data])
        symptom = "healthy" if healthy else outcome.classify(m, ref) or "unclear"
        emit(r, rec, OUT / r.run_id)
        finite = rec.losses[np.isfinite(rec.losses)]
        rows.append(
            {
                "path": r.run_id,
                "format": r.fmt,
                "family": r.family,
                "factor": r.severity,
                "symptom": symptom,
                "first_loss": f"{rec.losses[0]:.4g}",
                "min_loss": f"{finite.min():.4g}" if len(finite) else "nan",
                "final_loss": f"{rec.losses[-1]:.4g}",
            }
        )
        print(rows[-1], flush=True)
    with (OUT / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
