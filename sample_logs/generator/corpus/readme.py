"""corpus/README.md from the label rows: what the corpus is, how to regenerate it, the count tables."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from .outcome import SYMPTOMS
from .scenarios import CAUSES, FAMILIES

FORMATS = ["print_style", "hf_trainer_state", "lightning_csv", "keras_csv", "tfevents", "caffe_glog"]


def _table(rows: list[dict], col: str, keys: list[str]) -> list[str]:
    c = Counter((r[col], (r["cause"].split(";")[0] or "healthy")) for r in rows)
    heads = ["healthy", *CAUSES]
    out = [f"| {col} | " + " | ".join(heads) + " | total |", "|---" * (len(heads) + 2) + "|"]
    for k in keys:
        vals = [c[(k, h)] for h in heads]
        out.append(f"| {k} | " + " | ".join(str(v) for v in vals) + f" | {sum(vals)} |")
    tot = [sum(c[(k, h)] for k in keys) for h in heads]
    out.append("| total | " + " | ".join(str(v) for v in tot) + f" | {sum(tot)} |")
    return out


FRESH_INTRO = [
    "A second held-out set, made after the test split's mistakes had been read: the groups that follow "
    "the corpus's own in the same sampling (new group ids, so new seeds; no run is a sibling of a corpus "
    "run). Nothing is fitted on it and its mistakes are not read while rules change; "
    "`python -m diagnostics.evaluate --set corpus-fresh` scores it, and `split.csv` freezes it with "
    "checksums (`python -m diagnostics.split --check --corpus sample_logs/corpus_fresh`). Otherwise it is "
    "made exactly like the corpus, as described below.",
    "",
]

EXTRA_INTRO = [
    "More tuning data, made because the fit kept its alarms just outside the training split's healthy "
    "runs and that margin did not carry over to unseen healthy runs: the groups that follow the fresh "
    "set's in the same sampling (new ids and seeds), without the model family the test split holds out "
    "whole (vgg). Every run is `train`: `python -m diagnostics.fit` tunes on it beside the corpus's "
    "training split, `python -m diagnostics.evaluate --set corpus-extra` scores it as tuning data, and "
    "`split.csv` freezes it with checksums (`python -m diagnostics.split --check --corpus "
    "sample_logs/corpus_extra`). Otherwise it is made exactly like the corpus, as described below.",
    "",
]

UNSEEN_INTRO = [
    "A third held-out set, made on 2026-12-06 after the test split and the fresh set had both been read "
    "(in aggregate after each change, and their mistakes listed in earlier sessions): the groups that "
    "follow the extra set's in the same sampling (new ids and seeds; every family, the test split's "
    "held-out one included). Nothing is fitted on it, and it is read only in aggregate; "
    "`python -m diagnostics.evaluate --set corpus-unseen` scores it, and `split.csv` freezes it with "
    "checksums (`python -m diagnostics.split --check --corpus sample_logs/corpus_unseen`). Otherwise it "
    "is made exactly like the corpus, as described below.",
    "",
]

MEASURE = "for measuring the diagnosis on runs it was never tuned on"
TITLES = {  # folder: (title, introduction, generate_corpus.py flag, what the runs are for)
    "corpus": ("# Loss Doctor corpus", [], "", MEASURE),
    "corpus_fresh": ("# Loss Doctor fresh held-out set", FRESH_INTRO, " --fresh", MEASURE),
    "corpus_unseen": ("# Loss Doctor unseen held-out set", UNSEEN_INTRO, " --unseen", MEASURE),
    "corpus_extra": (
        "# Loss Doctor extra training set",
        EXTRA_INTRO,
        " --extra",
        "for tuning the rules' numbers",
    ),
}


def write(corpus: Path, rows: list[dict], dropped: list[dict], wall: float | None, jobs: int) -> None:
    path = corpus / "README.md"
    old_wall = None
    if wall is None and path.exists():
        m = re.search(r"<!-- wall: ([\d.]+) -->", path.read_text(encoding="utf-8"))
        old_wall = float(m.group(1)) if m else None
    wall = wall if wall is not None else old_wall
    n = len(rows)
    healthy = sum(1 for r in rows if r["symptom"] == "healthy")
    size = sum(f.stat().st_size for f in (corpus / "runs").rglob("*") if f.is_file())
    sym = Counter(r["symptom"] for r in rows)
    kinds = Counter(r["scenario"] for r in rows if r["symptom"] == "healthy")
    relab = sum(1 for r in rows if r.get("relabelled_from"))
    title, intro, flag, purpose = TITLES[corpus.name]
    lines = [
        title,
        "",
        *intro,
        f"{n} real training runs (PyTorch {'2.13'} on the CPU, tiny models, generated data, fixed seeds), "
        f"each written in one log format and gzip-compressed, {purpose} (issue 9). Every logged number "
        "comes from an actual training step; nothing is synthesised.",
        "",
        "Each group (`group` column) is one sampled base recipe (family, data, model, optimiser, lr, batch, "
        "schedule, logging and evaluation cadence, seeds): its healthy base run, one or two hard but "
        "healthy variants (step-decay drops, warm-up bumps, cosine tails, frozen-backbone fine-tuning from "
        "the base run's weights, small-batch noise, label smoothing / dropout floors, train-time "
        "augmentation, resumed runs with re-logged steps, short runs, slow learners, ReduceLROnPlateau) "
        "and faulty variants of the same recipe and seeds (siblings), one per cause of the catalogue with a "
        "severity drawn from a range. Caffe groups are trained by the mini-Caffe of `generator/caffe.py`.",
        "",
        "The label comes from the scenario and is then checked against the run's own numbers by "
        "`generator/corpus/outcome.py` (numpy only, nothing from the app): a diverging run must end well "
        "above its minimum, nan must be persistent, flat never clearly below its start, a plateau must "
        "stall worse than its healthy sibling, overfitting needs a validation minimum followed by a clear "
        "rise while training falls, a healthy run must reach its group's normal level. A run whose numbers "
        "show another symptom acceptable for its cause is relabelled (`relabelled_from`); otherwise it is "
        "dropped, never kept with a wrong label. A fault label is checked twice: on the per-step losses, "
        "and on the training losses as the chosen format records them (Keras epoch means, logging-window "
        "means, Caffe display iterations), since a spike averaged away by the log cannot be read off it.",
        "",
        "## Regenerate",
        "",
        "```",
        f"/work/train-venv/bin/python sample_logs/generate_corpus.py --jobs {jobs}{flag}",
        "```",
        "",
        (
            f"Measured wall time: {wall / 60:.1f} min on 2 CPU cores ({jobs} worker processes, one torch "
            f"thread each). <!-- wall: {wall:.0f} -->"
            if wall
            else "Wall time: not measured yet."
        ),
        "`--only SUBSTR` regenerates the groups with a matching run id, `--skip N` leaves out the first N "
        "groups, `--limit N` keeps the first N (all merge into labels.csv). Numbers are deterministic "
        "(seeds from the run ids); wall-clock "
        "fields (timestamps, runtimes) are real and differ between regenerations.",
        "",
        "## Files",
        "",
        "`runs/<run_id>/` holds the run's files, every one gzipped (`train.log.gz`, "
        "`trainer_state.json.gz`, `metrics.csv.gz` + `hparams.yaml.gz`, `training.csv.gz`, "
        "`events.out.tfevents.*.gz`, Caffe `train.log.gz` + `solver.prototxt.gz` + `train_val.prototxt.gz`). "
        "`labels.csv`: path (the run folder, relative to this folder), format, family, data, group, seed, "
        "scenario, severity, symptom, cause (empty when healthy; `a;b` where both are acceptable), steps, "
        "first_loss, min_loss, final_loss (median of the last 5 % of steps; nan when the run ended "
        "non-finite), final_metric (final validation accuracy: top-1, pixel or token; nan for the Caffe FCN "
        "runs, whose net has no Accuracy layer), relabelled_from, description. Losses are per-step "
        "values as trained (before the format's own averaging: HF windows, Caffe `average_loss`, Keras "
        "epoch means).",
        "",
        "Faults (cause ids of the catalogue) and how they are made: `lr_too_high` (lr x10 ... x1000, or a "
        "linear warm-up to 10-100x; some runs are stopped by the user once the loss keeps growing), "
        "`lr_too_low` (lr /100 ... /1e6), `input_scale` (raw 0..255 pixels or raw feature units with the lr "
        "for normalised inputs, (x - mean)/256 with the lr for unit variance, Caffe Data layers without "
        "`scale`), `bn_stats` (BatchNorm momentum 1e-4/3e-4, Caffe `use_global_stats: true` in TRAIN), "
        "`small_batch` (batch 1-2 with BatchNorm; cause `small_batch;bn_stats`), `depth_init` (6-20 weight "
        "layers, no BN, N(0, 0.01) weights / Caffe `gaussian std: 0.01`), `no_pretraining` (backbone frozen "
        "with `requires_grad=False` / `lr_mult: 0` but never loaded; the sibling that loads the task-A "
        "weights is healthy), `loss_normalization` (`reduction='sum'` / `normalize: false` with the lr for a "
        "mean), `overfitting` (12-80 training samples for a large model), `data_issue` (NaN pixels, batches "
        "from a broken loader worker, mislabelled batches, black LMDB frames with wrong labels).",
        "",
        "## Counts",
        "",
        f"{n} runs, {healthy} healthy ({100 * healthy / max(n, 1):.0f} %), {relab} relabelled by the "
        f"outcome check, {len(dropped)} dropped at the last regeneration; {size / 1e6:.1f} MB on disk.",
        "",
        "Symptoms: " + ", ".join(f"{s} {sym[s]}" for s in SYMPTOMS) + ".",
        "",
        "### Family x cause",
        "",
        *_table(rows, "family", FAMILIES),
        "",
        "### Format x cause",
        "",
        *_table(rows, "format", FORMATS),
        "",
        "### Healthy kinds",
        "",
        "| scenario | runs |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(kinds.items())],
        "",
    ]
    if dropped:
        lines += [
            "### Dropped at the last regeneration",
            "",
            "Runs whose numbers did not show the scenario's symptom (nor another symptom acceptable for "
            "its cause) are not written. Most are faults that turned out harmless on these small, easy "
            "tasks (BN nets shrug off a higher lr; random frozen features are good enough for a linear "
            "head) or healthy variants that fell short of their group's level.",
            "",
        ]
        lines += [f"- `{d['run_id']}`: {d['dropped']}" for d in dropped]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
