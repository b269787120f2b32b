"""The one shape every log format ends up in: a tidy metrics frame plus typed run facts.

Like tbparse, the rest of the code never knows which format a run came from: diagnostics read
`TrainingLog.metrics` (long format, one row per logged value) and `TrainingLog.meta` (typed facts
such as base_lr, BatchNorm settings, whether pretrained weights were loaded, each with the log
line that states it so that a diagnosis can quote it as evidence).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
# A step, epoch or batch counter beyond this is corruption, not a position in a run: it could not be
# exact in float64 (the diagnosis computes with steps as floats) and would overflow int64 arithmetic.
MAX_COUNTER = 2**53

# Column order and dtypes of TrainingLog.metrics (the contract every parser honours).
METRIC_COLUMNS: dict[str, str] = {
    "step": "int64",  # iteration / global step (epoch-only logs: the epoch number)
    "epoch": "float64",  # NaN when unknown
    "split": "category",  # train / val / test
    "metric": "category",  # canonical name: loss, loss_raw, lr, accuracy, top5, grad_norm, ...
    "name": "category",  # the name as the log wrote it: "Train net output #1: loss1/loss", "eval_loss"
    "value": "float64",  # NaN and +-inf are values, never dropped
    "wall_time": "float64",  # seconds since the first record of the run; NaN when unknown
    "line": "int64",  # 1-based line (or record) number in `source`; 0 when not applicable
    "segment": "int64",  # 0, 1, ...: a new segment starts where a run was resumed or appended
    "source": "category",  # file name the row came from
}

# Canonical metric names with a fixed meaning (others are the lower-cased original name).
CANONICAL_METRICS = {
    "loss": "training objective as the framework reports it (Caffe: the smoothed display loss)",
    "loss_raw": "per-iteration unsmoothed training loss when a smoothed `loss` exists too",
    "lr": "learning rate (the first parameter group when there are several)",
    "accuracy": "top-1 accuracy in [0, 1] or percent as logged",
    "top5": "top-5 accuracy",
    "grad_norm": "gradient norm",
    "perplexity": "perplexity",
    "map": "mean average precision (detection)",
}


@dataclass(frozen=True)
class LogLine:
    """A line of a source file, kept so that evidence can quote it verbatim (as plain text)."""

    source: str
    line: int
    text: str


@dataclass(frozen=True)
class ParseWarning:
    source: str
    line: int
    message: str


@dataclass(frozen=True)
class BatchNormLayer:
    """One BatchNorm layer and how it computes statistics in one phase."""

    name: str
    phase: str  # "train", "test" or "any" (the layer is shared by both phases)
    use_global_stats: bool | None  # None: not set, so the framework default for the phase applies
    where: LogLine | None = None
    # "net": a layer of the net definition (Caffe prototxt); "flag": a setting or message that puts
    # the net's BatchNorm in inference mode while training (norm_eval=True, freeze_bn, FrozenBN);
    # "setting": a setting that says the net has BatchNorm (`batch_norm: true`, `arch: resnet18`)
    source: str = "net"


@dataclass(frozen=True)
class FrozenLayer:
    """Weights the run does not train, and how the log says so."""

    name: str  # layer/module name, or what a flag freezes ("backbone", "stages 1-2", "10 layers")
    how: str  # lr_mult_0 (Caffe param { lr_mult: 0 }), requires_grad, flag (a setting), text (a message)
    where: LogLine | None = None


@dataclass(frozen=True)
class WeightFiller:
    layer: str
    type: str  # gaussian, xavier, msra, constant, ...
    std: float | None = None
    where: LogLine | None = None


@dataclass
class RunMeta:
    """Facts about the run, whichever format stated them. None means "the log does not say"."""

    framework: str = "unknown"  # caffe, pytorch, keras, tensorflow, mxnet
    format: str = "unknown"  # detected format id of the file that gave the metrics
    formats: list[str] = field(default_factory=list)  # every file's detected format
    # optimisation
    base_lr: float | None = None
    peak_lr: float | None = None  # largest lr seen in the metrics (after warm-up)
    lr_policy: str | None = None  # fixed, step, multistep, poly, exp, inv, cosine, linear, ...
    lr_params: dict[str, Any] = field(default_factory=dict)  # gamma, stepsize, stepvalue, power, warmup
    optimizer: str | None = None  # sgd, adam, adamw, rmsprop, adadelta, ...
    momentum: float | None = None
    adam_beta2: float | None = None  # Adam's second-moment decay: 0.999 by default, 0.95 steadies spiky runs
    weight_decay: float | None = None
    batch_size: int | None = None  # per iteration (Caffe: TRAIN data layer batch_size)
    iter_size: int | None = None
    max_iter: int | None = None
    epochs: int | None = None
    clip_gradients: float | None = None
    average_loss: int | None = None  # Caffe's display smoothing window
    display: int | None = None
    test_interval: int | None = None
    precision: str | None = None  # fp32, fp16, bf16, mixed
    # model
    net_name: str | None = None
    input_scale: float | None = None  # Caffe transform_param scale
    mean_file: str | None = None
    mean_value: list[float] = field(default_factory=list)
    crop_size: int | None = None
    input_channels: int | None = None
    input_size: int | None = None  # spatial size fed to the net (crop, or image size)
    num_classes: int | None = None  # the last layer's num_output
    # a class or vocabulary count echoed in the settings (`num_classes=10`, `vocab_size=16`): weaker
    # than num_output, it may belong to another head, so the diagnosis checks it against the first loss
    echoed_classes: int | None = None
    loss_type: str | None = None  # SoftmaxWithLoss, CrossEntropyLoss, ...
    loss_normalize: bool | None = None  # Caffe loss_param normalize
    # Caffe loss_param normalization (VALID, BATCH_SIZE, NONE); "NONE" too for a summed PyTorch-style
    # loss (reduction='sum', size_average=False)
    loss_normalization: str | None = None
    weight_fillers: list[WeightFiller] = field(default_factory=list)
    depth: int | None = None  # number of weight layers (conv + fully connected)
    # outputs of the weight layers in order (conv channels, dense units), where the config states them
    layer_widths: list[int] = field(default_factory=list)
    has_residual: bool | None = None
    batchnorm: list[BatchNormLayer] = field(default_factory=list)
    # BatchNorm put in inference mode by a setting of a non-Caffe run (source "flag", phase "train",
    # use_global_stats True); kept apart from `batchnorm` (the net's own layers, which LD301 judges)
    batchnorm_flags: list[BatchNormLayer] = field(default_factory=list)
    frozen_layers: list[FrozenLayer] = field(default_factory=list)  # weights not trained (any source)
    # input normalisation (non-Caffe): per-channel mean/std the pixels are normalised with, in the
    # units the log gives them, and the pixel range before it when the log says ("0-1", "0-255")
    input_norm_mean: list[float] = field(default_factory=list)
    input_norm_std: list[float] = field(default_factory=list)
    input_range: str | None = None
    # initialisation
    pretrained: bool | None = None  # True: weights were loaded; False: the log shows a from-scratch start
    pretrained_from: str | None = None
    resumed: bool = False
    # the HF Trainer's end-of-training summary (`train_loss`): the mean training loss over the whole
    # run, one number, not a point of the curve; where no per-step loss was logged it is the only one
    train_loss_mean: float | None = None
    # where each scalar fact above was read: field name -> line
    where: dict[str, LogLine] = field(default_factory=dict)
    # every hyper-parameter echo found, verbatim key -> value text
    hyperparams: dict[str, str] = field(default_factory=dict)
    # config comments worth quoting (e.g. "# lr for unnormalized softmax")
    comments: list[LogLine] = field(default_factory=list)

    def set(self, name: str, value: Any, where: LogLine | None = None) -> None:
        """Set a fact (only if not known yet) and remember the line that states it."""
        if getattr(self, name) in (None, [], {}):
            setattr(self, name, value)
            if where is not None:
                self.where[name] = where

    def frozen_batchnorm(self) -> list[BatchNormLayer]:
        """BatchNorm layers that use running statistics while training (TRAIN or shared phase): case
        1's fault, counted alike by the rules, the page and the CLI."""
        return [bn for bn in self.batchnorm if bn.use_global_stats and bn.phase in ("train", "any")]

    def merge(self, other: RunMeta) -> None:
        """Fill facts this object lacks from `other` (e.g. a prototxt uploaded beside the log)."""
        for name in self.__dataclass_fields__:
            if name in ("where", "hyperparams", "formats", "comments", "resumed"):
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine in (None, [], {}, "unknown") and theirs not in (None, [], {}, "unknown"):
                setattr(self, name, theirs)
                if name in other.where:
                    self.where[name] = other.where[name]
        self.hyperparams = {**other.hyperparams, **self.hyperparams}
        self.formats += [f for f in other.formats if f not in self.formats]
        self.comments += other.comments
        self.resumed = self.resumed or other.resumed
        if other.resumed and "resumed" in other.where:
            self.where.setdefault("resumed", other.where["resumed"])

    def requote(self, move: Callable[[LogLine], LogLine]) -> None:
        """Replace every quoted line of the facts by `move(line)` (settings read from a text embedded in
        another file are quoted where they sit in that file). Walks the fields, so a fact added later
        is moved too: a LogLine, or a list or dict of LogLines or of facts that carry one in `where`."""
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, {key: _requoted(item, move) for key, item in value.items()})
            elif isinstance(value, list):
                setattr(self, name, [_requoted(item, move) for item in value])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _requoted(item: Any, move: Callable[[LogLine], LogLine]) -> Any:
    if isinstance(item, LogLine):
        return move(item)
    if isinstance(getattr(item, "where", None), LogLine):
        return replace(item, where=move(item.where))
    return item


@dataclass
class TrainingLog:
    """Everything parsed from the files of one training run."""

    metrics: pd.DataFrame
    meta: RunMeta
    warnings: list[ParseWarning] = field(default_factory=list)
    skipped_lines: int = 0
    sources: list[str] = field(default_factory=list)
    # step, kind, value, detail, line, source: loss-scale changes, skipped steps, checkpoints, restarts,
    # fatal errors (see parsers/events.py)
    events: pd.DataFrame = field(default_factory=lambda: _empty_events())
    # row positions of each (metric, split) of `_grouped` (see `_positions`)
    _groups: dict[tuple[str, str], np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _grouped: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)

    def series(
        self, metric: str, split: str = "train", name: str | None = None, segment: int | None = None
    ) -> pd.DataFrame:
        """One curve (rows sorted by step). When several original names share the canonical
        metric (e.g. two test nets), the first one in the log is taken unless `name` says."""
        m = self.metrics
        rows = m.iloc[self._positions(metric, split)]
        if name is not None:
            rows = rows[rows["name"] == name]
        elif rows["name"].nunique() > 1:
            rows = rows[rows["name"] == rows["name"].iloc[0]]
        if segment is not None:
            rows = rows[rows["segment"] == segment]
        return rows if _in_order(rows) else rows.sort_values(["segment", "step"], kind="stable")

    def _positions(self, metric: str, split: str) -> np.ndarray:
        """Row positions of one (metric, split), the metrics table grouped once: a diagnosis asks for a
        dozen series, and comparing every row each time was most of its cost. Grouped again when
        `metrics` is another table or changed length (the table kept here, so its id cannot be reused)."""
        m = self.metrics
        if self._grouped is not m or len(self._grouped) != len(m):
            indices = m.groupby(["metric", "split"], observed=True, sort=False).indices
            self._groups = {(str(k[0]), str(k[1])): v for k, v in indices.items()}
            self._grouped = m
        return self._groups.get((metric, split), np.zeros(0, dtype=np.intp))

    def available(self) -> list[tuple[str, str]]:
        """(split, metric) pairs present, in a stable order."""
        pairs = self.metrics[["split", "metric"]].drop_duplicates()
        return sorted((str(s), str(m)) for s, m in pairs.itertuples(index=False))


def _empty_events() -> pd.DataFrame:
    from parsers.events import empty_events  # events.py reads MAX_COUNTER from this module

    return empty_events()


def as_counter(number: float) -> int | None:
    """A logged counter as int; None when it is NaN, infinite or beyond MAX_COUNTER (mutated or
    corrupt logs write such), so that the record is skipped instead of crashing the parse."""
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return int(number) if abs(number) <= MAX_COUNTER else None


def _in_order(rows: pd.DataFrame) -> bool:
    """Whether rows are already sorted by (segment, step), as parsers usually leave them."""
    segment, step = rows["segment"].to_numpy(), rows["step"].to_numpy()
    later_segment = segment[1:] > segment[:-1]
    return bool(np.all(later_segment | ((segment[1:] == segment[:-1]) & (step[1:] >= step[:-1]))))


def purge_orphans(series: pd.DataFrame) -> pd.DataFrame:
    """TensorBoard's purge of orphaned data: when a resumed job logs steps again (it went back to an
    earlier checkpoint), the old job's points from that step on are dropped, so the line does not zigzag
    between the two jobs over the re-logged steps. A run that starts over from its first step (a new
    run appended to the file) is kept whole."""
    segments = series["segment"].to_numpy()
    if not len(series) or segments.min() == segments.max():
        return series
    steps = series["step"].to_numpy()
    first = steps[segments == segments[0]].min()
    keep = np.ones(len(series), dtype=bool)
    for segment in pd.unique(segments)[1:]:
        start = steps[segments == segment].min()
        if start > first:
            keep &= ~((segments < segment) & (steps >= start))
    return series[keep]


def reveal_hidden_nan(frame: pd.DataFrame) -> int:
    """Read as NaN, in place, every logged loss of exactly 0.0 beside a non-finite grad norm of the same
    split, step and segment, and return how many. HF's Trainer logs so (its `logging_nan_inf_filter`,
    on by default, replaces a NaN/inf step's loss by the mean of the window so far, so a window where
    every step was NaN logs 0.0) to its stdout, `trainer_state.json`, TensorBoard, W&B and MLflow alike;
    a loss that really is 0 has a gradient of 0, not NaN, so the reading holds whatever the writer."""
    metric = frame["metric"]
    grad_norm = (metric == "grad_norm").to_numpy()
    if not grad_norm.any():
        return 0
    values = frame["value"].to_numpy()
    broken = grad_norm & ~np.isfinite(values)
    zero_loss = (metric == "loss").to_numpy() & (values == 0.0)
    if not broken.any() or not zero_loss.any():
        return 0
    keys = ["split", "step", "segment"]
    at_broken = pd.MultiIndex.from_frame(frame.loc[broken, keys].astype({"split": str}))
    zero_rows = frame.loc[zero_loss, keys].astype({"split": str})
    hidden = zero_rows.index[pd.MultiIndex.from_frame(zero_rows).isin(at_broken)]
    frame.loc[hidden, "value"] = np.nan
    return len(hidden)


def hidden_nan_note(count: int) -> str:
    return (
        f"{count} logged loss(es) of 0.0 beside a NaN/inf grad_norm read as NaN (HF Trainer's "
        "logging_nan_inf_filter logs a window of NaN steps as 0.0)"
    )


def empty_metrics() -> pd.DataFrame:
    return frame_from_columns({name: [] for name in METRIC_COLUMNS})


def frame_from_columns(columns: dict[str, Any]) -> pd.DataFrame:
    """Build a metrics frame with the contract's dtypes from lists/arrays (missing columns get
    defaults: epoch/wall_time NaN, line/segment 0, source '')."""
    n = len(columns["step"])
    defaults: dict[str, Any] = {
        "epoch": np.full(n, np.nan),
        "wall_time": np.full(n, np.nan),
        "line": np.zeros(n, dtype=np.int64),
        "segment": np.zeros(n, dtype=np.int64),
        "source": [""] * n,
        "name": columns.get("metric", [""] * n),
    }
    data = {}
    for col, dtype in METRIC_COLUMNS.items():
        values = columns[col] if col in columns else defaults[col]
        if dtype == "category" and isinstance(values, pd.Categorical):
            data[col] = values  # built from codes by a fast parser: no per-row strings
        elif dtype == "category":
            # pandas' str conversion keeps Python strings: numpy's `astype(str)` made a fixed-width
            # array as wide as the longest label for every row (a 300,000-character name: GBs)
            data[col] = pd.Categorical(pd.Series(np.asarray(values, dtype=object), copy=False).astype(str))
        else:
            data[col] = np.asarray(values, dtype=dtype)
    return pd.DataFrame(data, copy=False)  # no consolidation copy: large runs stay in memory once


def validate_metrics(frame: pd.DataFrame) -> None:
    """Raise ValueError when a frame breaks the contract (used by tests on every parser)."""
    if list(frame.columns) != list(METRIC_COLUMNS):
        raise ValueError(f"columns {list(frame.columns)} != {list(METRIC_COLUMNS)}")
    for col, dtype in METRIC_COLUMNS.items():
        if str(frame[col].dtype) != dtype:
            raise ValueError(f"column {col} has dtype {frame[col].dtype}, expected {dtype}")
    bad = set(frame["split"].astype(str)) - set(SPLITS)
    if bad:
        raise ValueError(f"unknown split values {sorted(bad)}")
