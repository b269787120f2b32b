"""What the rules look at: the judged curves of a run, chosen once, plus the run facts.

Choosing the series is part of the diagnosis: Caffe's smoothed display loss for trends (its raw
per-iteration loss for the first NaN), the validation/test loss for overfitting, the summed loss
components when a detector only logs `box_loss`, `cls_loss`, ...
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from diagnostics.features import Curve, recognise_classes
from diagnostics.model import Cause, Finding, SymptomResult
from diagnostics.params import KNOWN_CLASS_COUNTS, Params
from parsers.model import LogLine, RunMeta, TrainingLog, purge_orphans
from parsers.names import LOSS_SYNONYMS

# Metrics named like a loss that are no term of it: Caffe's raw display loss, an fp16 loss scale.
NOT_LOSS_TERMS = {"loss_raw", "loss_scale"}
# ... nor the same loss summarised or split another way (an epoch's mean, a running average).
SAME_LOSS = {"loss_epoch", "epoch_loss", "avg_loss", "mean_loss", "running_loss", "train_loss", "val_loss"}
DEEP_ARCHITECTURES = (
    "vgg",
    "resnet",
    "fcn",
    "googlenet",
    "inception",
    "densenet",
    "deeplab",
    "segnet",
    "unet",
)


@dataclass
class Context:
    log: TrainingLog
    params: Params
    symptoms: dict[str, SymptomResult] = field(default_factory=dict)  # detected, by symptom name
    findings: dict[str, list[Finding]] = field(default_factory=dict)  # by rule id
    primary: SymptomResult | None = None  # set by the runner before cause rules run
    causes: list[Cause] = field(default_factory=list)
    # Measurements more than one rule reads (e.g. LD115's overshoot, also read by LD102), computed once.
    measured: dict[str, Any] = field(default_factory=dict)
    # `rows` by (metric, split): the rules ask for the same few series a dozen times per diagnosis, and
    # filtering the long metrics table is most of a diagnosis's time (the fit diagnoses ~100,000 times).
    _rows: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict, init=False, repr=False)

    @property
    def meta(self) -> RunMeta:
        return self.log.meta

    # ----- curves --------------------------------------------------------------------------
    @cached_property
    def train_loss(self) -> Curve | None:
        """The training loss judged for trends (Caffe: the smoothed display loss)."""
        return self._loss_curve("train")

    @cached_property
    def train_loss_raw(self) -> Curve | None:
        rows = self.rows("loss_raw", "train")
        return Curve.from_rows(rows, "train/loss_raw (raw)", self.params) if len(rows) else None

    @cached_property
    def val_loss(self) -> Curve | None:
        for split in ("val", "test"):
            curve = self._loss_curve(split)
            if curve is not None:
                return curve
        return None

    @cached_property
    def lr(self) -> Curve | None:
        rows = self.rows("lr", "train")
        return Curve.from_rows(rows, "train/lr", self.params) if len(rows) else None

    def rows(self, metric: str, split: str) -> pd.DataFrame:
        """One run's rows of a metric (see `_one_run`); evaluations made before the first update are
        left out, since they measure the untrained net, not the training."""
        key = (metric, split)
        if key not in self._rows:
            rows = _one_run(self.log.series(metric, split))
            self._rows[key] = rows if split == "train" else _without_pretraining_eval(rows)
        return self._rows[key]

    def before_breakdown(self, steps: np.ndarray) -> np.ndarray:
        """Which of these steps come before the training loss turned non-finite for good: an
        evaluation after it measures a net whose weights are gone (its accuracy falls to chance
        because of the NaN, not because the model overfits)."""
        broken = self.train_loss.broken_from if self.train_loss is not None else None
        return np.ones(len(steps), dtype=bool) if broken is None else np.asarray(steps) < broken

    def has_curve(self, name: str) -> bool:
        curve = getattr(self, name)
        return curve is not None and len(curve) >= (2 if name == "val_loss" else 1)

    def _loss_curve(self, split: str) -> Curve | None:
        rows = self.rows("loss", split)
        if len(rows):
            label = f"{split}/loss"
            if split == "train" and self._has_raw:
                window = self.meta.average_loss
                label += f" (smoothed, average_loss={window})" if window else " (smoothed)"
            return Curve.from_rows(rows, label, self.params)
        return self._summed_components(split) or self._loss_by_another_name(split)

    @cached_property
    def _has_raw(self) -> bool:
        m = self.log.metrics
        return bool(((m["metric"] == "loss_raw") & (m["split"] == "train")).any())

    def _summed_components(self, split: str) -> Curve | None:
        """Detectors (YOLO, ...) log only loss components: judge their sum at the shared steps."""
        m = self.log.metrics
        names = sorted(
            {str(x) for x in m.loc[m["split"] == split, "metric"].unique() if "loss" in str(x)}
            - NOT_LOSS_TERMS
        )
        if not names:
            return None
        parts = [self.rows(name, split).drop_duplicates("step", keep="last") for name in names]
        merged = parts[0][["step", "value", "line", "source"]]
        for part in parts[1:]:
            merged = merged.merge(part[["step", "value"]], on="step", suffixes=("", "_"))
            merged["value"] = merged["value"] + merged.pop("value_")
        if not len(merged):
            return None
        return Curve.from_rows(merged, f"{split}/{'+'.join(names)} (sum)", self.params)

    def _loss_by_another_name(self, split: str) -> Curve | None:
        """`nll`, `xent`, `cost`...: the loss, for a log that logs it under no name with "loss" in it."""
        for name in LOSS_SYNONYMS:
            rows = self.rows(name, split)
            if len(rows):
                return Curve.from_rows(rows, f"{split}/{name}", self.params)
        return None

    # ----- facts ---------------------------------------------------------------------------
    @cached_property
    def classification_loss(self) -> bool:
        """The loss may be a classifier's (a log that names no loss type is taken to be one)."""
        loss_type = (self.meta.loss_type or "softmax").lower().replace("_", "")
        return any(kind in loss_type for kind in ("softmax", "crossentropy", "nll", "ce"))

    @cached_property
    def loss_has_parts(self) -> bool:
        """The log names parts of its loss (`loss_cls`, `box_loss`, ...): the loss is a sum of several
        losses (a detector's), not one classifier's, even when an accuracy is logged beside it."""
        return any(
            (name.startswith("loss_") or name.endswith("_loss")) and name not in NOT_LOSS_TERMS | SAME_LOSS
            for name in map(str, self.log.metrics["metric"].unique())
        )

    @cached_property
    def accuracy_from(self) -> int | None:
        """The first step a finite accuracy is logged at (any split), or None when none is."""
        rows = self.log.metrics
        rows = rows[(rows["metric"] == "accuracy") & np.isfinite(rows["value"].to_numpy(dtype=float))]
        return int(rows["step"].min()) if len(rows) else None

    @cached_property
    def one_classifier_loss(self) -> bool:
        """The loss is known to be one classifier's: a classification loss, not a sum of parts, and an
        accuracy is logged beside it. Only then does ln of any class count bound its untrained value."""
        return self.classification_loss and not self.loss_has_parts and self.accuracy_from is not None

    @cached_property
    def classes(self) -> tuple[int, str] | None:
        """(C, how it is known): from the last layer's num_output, or from an initial loss of ln(C).
        Only for a classification loss: ln(C) means nothing for a detection or regression loss."""
        if not self.classification_loss:
            return None
        if self.meta.num_classes and self.meta.num_classes >= 2:
            return self.meta.num_classes, "num_output"
        curve = self.train_loss
        if curve is None or not len(curve.by):
            return None
        first = float(curve.trend_values[0]) if len(curve.trend_index) else math.nan
        echoed = self.meta.echoed_classes
        if echoed and abs(first - math.log(echoed)) <= self.params.lnc_tolerance * math.log(echoed):
            return echoed, "echoed"  # the settings name C and the run starts at ln(C): untrained
        c = recognise_classes(first, self.params.lnc_tolerance)
        # Losses between ~1.3 and ~2.4 are all within 4% of some ln(C) of a small C: the first value
        # names C only when it is the loss of an untrained net, or when the loss stays at that level.
        if c is not None:
            stays = abs(curve.end_level - math.log(c)) <= self.params.lnc_tolerance * math.log(c)
            if stays or self.starts_untrained(curve):
                return c, "initial_loss"
        held = self._accuracy_held_at_chance()
        return (held, "chance_accuracy") if held else None

    def _accuracy_held_at_chance(self) -> int | None:
        """C when the evaluation accuracy ends on exactly 1/C for its last three values: the net gives
        every input the same class (a constant accuracy of 0.1000 is chance for 10 classes)."""
        accuracy = self.eval_accuracy()
        if accuracy is None:
            return None
        values, scale = accuracy
        for c in KNOWN_CLASS_COUNTS:
            if np.all(np.abs(values[-3:] / scale * c - 1) <= self.params.chance_accuracy_tolerance):
                return c
        return None

    def eval_accuracy_frozen(self) -> tuple[float, int] | None:
        """(value, evaluations) when the evaluation accuracy took one value (to `frozen_accuracy_spread`)
        at `frozen_accuracy_evals` or more evaluations, below `frozen_accuracy_level`: the evaluated model
        gave every input the same answers all run (a constant prediction scores the most frequent class's
        share, e.g. the background pixels of a segmentation), whatever the number of classes."""
        accuracy = self.eval_accuracy()
        if accuracy is None:
            return None
        values, scale = accuracy
        p = self.params
        if len(values) < p.frozen_accuracy_evals or np.ptp(values) > p.frozen_accuracy_spread * scale:
            return None
        if values.max() >= p.frozen_accuracy_level * scale:
            return None
        return float(values[-1]), len(values)

    def eval_never_beat_chance(self) -> bool:
        """The evaluation accuracy (3-point median) never got above `chance_accuracy_ceiling`: whatever
        training learned, the evaluated model never worked."""
        accuracy = self.eval_accuracy()
        if self.classes is None or accuracy is None:
            return False
        values, scale = accuracy
        padded = np.r_[values[0], values, values[-1]]  # 3-point median, edges repeated
        smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
        return bool(smooth.max() <= scale * self.chance_accuracy_ceiling())

    def chance_accuracy_ceiling(self) -> float:
        """The accuracy (as a fraction) up to which a classifier of C classes has learned nothing: twice
        chance (0.002 for 1000 classes), but no more than `chance_accuracy_margin` of the way from
        chance to perfect (0.2 for 10 classes, 0.556 for 2, where twice chance would be everything)."""
        assert self.classes is not None
        p, chance = self.params, 1 / self.classes[0]
        return min(p.chance_accuracy_multiple * chance, chance + p.chance_accuracy_margin * (1 - chance))

    def eval_accuracy(self) -> tuple[np.ndarray, float] | None:
        """The finite accuracy values of the first evaluation split with three or more, and 100 when
        they are percentages (else 1)."""
        for split in ("val", "test"):
            values = self.rows("accuracy", split)["value"].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if len(values) >= 3:
                return values, 100.0 if values.max() > 1.5 else 1.0
        return None

    def starts_untrained(self, curve: Curve) -> bool:
        """The curve's first point is logged at the first update of a net that was not trained before:
        not after an epoch (per-epoch logs), not after `logging_steps` updates, not a fine-tune or a
        resumed run."""
        first_step = int(curve.steps[curve.trend_index[0]]) if len(curve.trend_index) else -1
        if first_step not in (0, 1) or self.meta.pretrained or self.meta.resumed:
            return False
        return not self.logged_per_epoch()

    def logged_per_epoch(self) -> bool:
        """The training loss is logged once per epoch (its steps are the epoch numbers: Keras's rows, any
        log whose only counter is the epoch): each point comes after a whole epoch of training, the first
        one too."""
        rows = self.log.series("loss", "train")
        epochs = rows["epoch"].to_numpy(dtype=float)
        known = np.isfinite(epochs)
        return bool(known.any() and np.allclose(epochs[known], rows["step"].to_numpy()[known]))

    @property
    def lnc(self) -> float | None:
        return math.log(self.classes[0]) if self.classes else None

    def at_chance(self, level: float) -> bool:
        lnc = self.lnc
        return lnc is not None and abs(level - lnc) <= self.params.lnc_tolerance * lnc

    def quote(self, field_name: str) -> LogLine | None:
        return self.meta.where.get(field_name)

    def curve_quote(self, curve: Curve, index: int) -> LogLine | None:
        """Where one point of a curve was logged (None when the format has no line numbers). The
        metrics frame keeps no line text, so the quote carries the location with an empty text."""
        if index < 0 or index >= len(curve) or curve.lines[index] <= 0:
            return None
        return LogLine(str(curve.sources[index]), int(curve.lines[index]), "")

    @cached_property
    def frozen_bn(self) -> list:
        """BatchNorm layers that use running statistics while training (TRAIN or shared phase)."""
        return self.meta.frozen_batchnorm()

    @cached_property
    def deep_architecture(self) -> str | None:
        """The architecture family when it is a deep net that is normally fine-tuned (vgg, resnet, fcn...)."""
        name = (self.meta.net_name or "").lower()
        for arch in DEEP_ARCHITECTURES:
            if arch in name:
                return arch
        if self.meta.depth and self.meta.depth >= self.params.deep_layers:
            return "deep"
        return None

    @property
    def optimizer_is_adaptive(self) -> bool:
        return (self.meta.optimizer or "").lower() in (
            "adam",
            "adamw",
            "rmsprop",
            "adagrad",
            "adamax",
            "nadam",
        )

    @cached_property
    def lr_value(self) -> float | None:
        """The lr the run trained with: base_lr when a line of the log states it, else the peak of the
        logged lr (a base_lr filled from the first logged value is a warm-up start, not the lr)."""
        stated = self.meta.base_lr if "base_lr" in self.meta.where else None
        for value in (stated, self.meta.peak_lr, self.meta.base_lr):
            if value is not None and math.isfinite(value) and value > 0:
                return float(value)
        if self.lr is not None:
            logged = self.lr.values[np.isfinite(self.lr.values) & (self.lr.values > 0)]
            if len(logged):
                return float(logged.max())
        return None

    @property
    def lr_quote(self) -> LogLine | None:
        """The line stating `lr_value` (None when the value is the logged peak, not a stated base_lr)."""
        where = self.meta.where.get("base_lr")
        return where if where is not None and self.lr_value == self.meta.base_lr else None

    def finding(self, rule_id: str) -> Finding | None:
        found = self.findings.get(rule_id)
        return found[0] if found else None

    def measure(self, name: str, compute: Callable[[], Any]) -> Any:
        """`compute()`, once per run: rules that read the same measurement share it."""
        if name not in self.measured:
            self.measured[name] = compute()
        return self.measured[name]


def _without_pretraining_eval(rows: pd.DataFrame) -> pd.DataFrame:
    """Drop an evaluation at step 0 when steps count updates: Caffe's `Iteration 0` test pass
    (test_initialization), an evaluation on start. Where steps are epoch numbers (Keras counts them
    from 0, the epoch column equals the step, evaluations 1 apart) step 0 ends the first epoch."""
    at_start = (rows["step"] <= 0).to_numpy()
    if not at_start.any() or at_start.all():
        return rows
    steps = rows["step"].to_numpy()
    epochs = rows["epoch"].to_numpy(dtype=float)
    known = np.isfinite(epochs)
    numbered_by_epoch = bool(known.any()) and bool(np.allclose(epochs[known], steps[known]))
    first_interval = int(steps[~at_start].min())
    if numbered_by_epoch or first_interval <= 1:
        return rows
    return rows[~at_start]


def _one_run(rows: pd.DataFrame) -> pd.DataFrame:
    """One continuous curve from rows that may span several segments: a resumed run continues (its
    re-logged steps replace the old job's, `purge_orphans`), an appended fresh run (steps start over)
    replaces the earlier one."""
    if not len(rows):
        return rows
    segments = rows["segment"].to_numpy()
    if segments.min() != segments.max():
        starts = rows.groupby("segment", observed=True)["step"].min()
        ends = rows.groupby("segment", observed=True)["step"].max()
        last = starts.index[-1]
        restarted = len(starts) > 1 and starts.iloc[-1] <= starts.iloc[0] + 0.05 * (
            ends.iloc[0] - starts.iloc[0]
        )
        if restarted:
            counts = rows.groupby("segment", observed=True).size()
            keep = last if counts[last] >= 3 else counts.idxmax()
            rows = rows[rows["segment"] == keep]
        else:
            rows = purge_orphans(rows)
    steps = rows["step"].to_numpy()
    ordered = bool(np.all(steps[1:] > steps[:-1]))
    if ordered:
        return rows
    repeats = np.count_nonzero(np.diff(np.sort(steps)) == 0)
    if repeats <= 0.5 * len(steps):  # a resumed run re-logs some steps: the later value wins
        rows = rows.drop_duplicates("step", keep="last")
        return rows.sort_values("step", kind="stable")
    return rows  # steps are not unique by design (e.g. the epoch number on every batch line)
