"""Early warnings: what precedes a NaN or a blow-up, read off the curves of a run that is still going.

A layer of its own, beside the diagnosis: `early_warnings(log)` never changes the `Diagnosis` (its
symptom, causes, findings), so the accuracy figures of `python -m diagnostics.evaluate` and the fit
of `fitted_params.json` are untouched. It judges the *latest* point of what was logged so far, the way
the watch sees a run, with five rules (ids in the LD4xx range, texts in `i18n/watch.toml`, documented
in `docs/rules.md`):

* LD401 grad-norm growth: the gradient norm well above its recent median, for the last few points;
* LD402 loss-scale collapse: an fp16 loss scale halved again and again (when a `loss_scale` is logged);
* LD403 loss rising on a log scale: the last few losses have given back much of the way down from the
  first loss to the best one (on a log scale);
* LD404 spikes getting taller: successive loss spikes, each taller than the one before;
* LD405 first loss far above chance: a classifier whose first loss is many times ln(C) (C from the
  configuration; without it, once an accuracy is logged, LD110's bound on C), and still is: summed
  losses, raw-pixel inputs and the like NaN within a few steps, often at the second logged point,
  where no trend can warn yet;
* LD406 settings that blow up: a config check whose finding means a blow-up (LD306's summed loss with an
  lr for an averaged one; LD314's SGD lr many times the linear scaling rule), with the lr stated by the
  log's settings, so from the first logged point on;
* LD407 loss climbing as the lr rises: the loss (its trailing median) gave back a share of the way down
  (measured as LD403 does) since its best point while the logged lr rose to several times its value
  there: the diagnosis's LD115 as a run that is still going sees it (a warm-up past what the net
  tolerates, a re-warm of a continued run), at a lower bar than LD403's since the lr says why;
* LD408 lr far above its usual range: the lr (a stated one, or the logged lr so far, whichever is
  larger) many times the highest lr the optimiser usually trains with (LD309's range): runs with an lr
  off the chart NaN within their first logged points, and a warm-up climbing there says so before it
  arrives.

Once the loss is non-finite the NaN has happened: the verdict says so and no
warning is given. Each warning carries a predicted horizon: the steps until the loss reaches
`BLOWUP_FACTOR` times its first value at its current log-slope (for LD402: until the scale reaches 1
at its current halving rate); None when the trend gives no estimate.

The thresholds are fitted on the training split of the labelled corpus (`diagnostics.early_warning_fit`,
written to `early_warning_params.json`); without that file the hand-set priors apply.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diagnostics import fitted
from diagnostics.context import Context
from diagnostics.model import Evidence, Finding
from diagnostics.registry import rule_by_id
from diagnostics.rules.config import usual_lr_range
from i18n import t
from parsers.model import LogLine, TrainingLog

PARAMS_FILE = Path(__file__).with_name("early_warning_params.json")
# A loss this many times its first finite value is a blow-up (the benchmark's onset, the horizon's goal).
BLOWUP_FACTOR = 100.0
RECENT_POINTS = 2000  # points of a long curve the spike rule looks at (the watch judges the present)
CATCH_UP_POINTS = 200  # points logged between two polls that are judged one by one
SLOPE_POINTS = 5  # latest points the log-slope of the horizon is estimated on (the trend that warned)
MEDIAN_POINTS = 20  # earlier points the gradient norm's usual level is the median of
TREND_POINTS = 5  # LD407 reads the loss's trailing median of this many points: one noisy batch is no climb
# Halvings of the loss scale are counted over the last this many steps: shorter than the growth window
# of every dynamic scaler (DeepSpeed and Megatron 1,000 clean steps, torch's GradScaler 2,000), so the
# scale cannot have grown back in between.
SCALE_SPAN_STEPS = 100
SCALE_METRICS = ("loss_scale", "scale", "loss scale", "loss-scale")


@dataclass(frozen=True)
class WarningRule:
    id: str
    name: str  # kebab-case, names the pattern
    needs: str  # the series it reads, for the docs


WARNING_RULES = (
    WarningRule("LD401", "grad-norm-growth", "`train/grad_norm`"),
    WarningRule("LD402", "loss-scale-collapse", "`train/loss_scale`"),
    WarningRule("LD403", "loss-rising-log-scale", "`train_loss`"),
    WarningRule("LD404", "spikes-growing-taller", "`train_loss`"),
    WarningRule(
        "LD405",
        "first-loss-far-above-chance",
        "`train_loss`, `meta.num_classes` | `meta.echoed_classes` | an `accuracy`",
    ),
    WarningRule("LD406", "settings-known-to-blow-up", "`train_loss`, a stated `meta.base_lr`, LD306 | LD314"),
    WarningRule("LD407", "loss-climbs-as-lr-rises", "`train_loss`, `train/lr`"),
    WarningRule("LD408", "lr-far-above-usual-range", "stated `meta.base_lr` | `train/lr`, `meta.optimizer`"),
)
# The config checks whose finding means the run blows up whatever its curve shows so far, with the
# measurement that says so (None: any finding): a summed loss with an lr for an averaged one, and an
# SGD lr many times the linear scaling rule's for its batch.
BLOW_UP_SETTINGS: dict[str, tuple[str, float] | None] = {"LD306": ("lr_for_other_loss", -1.0), "LD314": None}


def _w(default: float, rule: str, doc: str, grid: tuple) -> Any:
    return field(default=default, metadata={"rule": rule, "doc": doc, "grid": grid})


@dataclass(frozen=True)
class WarningParams:
    """The early-warning thresholds: a default (the prior), the rule that judges with it, a fit grid."""

    grad_ratio: float = _w(
        5.0, "LD401", "gradient norm over its recent median", (2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
    )
    grad_sustain: int = _w(2, "LD401", "last points that must all be that high", (1, 2, 3))
    scale_halvings: int = _w(3, "LD402", f"halvings of the loss scale in its last {SCALE_SPAN_STEPS} steps",
                             (2, 3, 4, 6))  # fmt: skip
    # Before the loss has made progress, "the way down" is nothing and any bump is a share of it: the way
    # down counts as at least this (ln units; 0.7 is a halving), so an early bump is measured in it.
    # (Before rise_lost: the fit sets the unit before the threshold measured in it.)
    rise_floor: float = _w(
        0.1,
        "LD403",
        "ln(first / best) below this counts as this: a run that made no progress yet (also LD407)",
        (0.1, 0.2, 0.35, 0.7),
    )
    rise_lost: float = _w(
        1.0,
        "LD403",
        "share of the way down from the first loss (log scale) the last points gave back",
        (0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
    )
    rise_sustain: int = _w(2, "LD403", "last points that must all be that high", (1, 2, 3))
    spike_height: float = _w(0.5, "LD404", "ln(loss / median of the 10 points before) of a spike",
                             (0.2, 0.3, 0.5, 0.7, 1.0, 1.5))  # fmt: skip
    spike_count: int = _w(3, "LD404", "spikes in a row, each taller than the one before", (2, 3, 4, 5))
    start_ratio: float = _w(
        20.0,
        "LD405",
        "first loss (and latest) over ln(C) of a classification loss",
        (5.0, 10.0, 20.0, 50.0, 100.0),
    )
    lr_range_factor: float = _w(
        20.0,
        "LD408",
        "the lr over the highest usual lr of its optimiser (LD309's `high_lr_sgd`, `high_lr_adaptive`)",
        (5.0, 10.0, 20.0, 50.0, 100.0),
    )
    lr_rise: float = _w(
        2.0, "LD407", "logged lr now over the lr at the loss's best point", (1.5, 2.0, 3.0, 5.0, 10.0)
    )
    lr_gave_back: float = _w(
        0.5,
        "LD407",
        f"share of the way down (LD403's log scale; trailing median of {TREND_POINTS}) the loss gave back",
        (0.2, 0.3, 0.5, 0.75, 1.0),
    )
    lr_sustain: int = _w(2, "LD407", "last points that must all be that high", (1, 2, 3))
    # Each rule can be switched off by the fit: one that warns first on no training run it should warn
    # on adds no lead time, and whatever it warns on is a false warning.
    ld401_on: bool = _w(True, "LD401", "the rule warns at all", (True, False))
    ld402_on: bool = _w(True, "LD402", "the rule warns at all", (True, False))
    ld403_on: bool = _w(True, "LD403", "the rule warns at all", (True, False))
    ld404_on: bool = _w(True, "LD404", "the rule warns at all", (True, False))
    ld405_on: bool = _w(True, "LD405", "the rule warns at all", (True, False))
    ld406_on: bool = _w(True, "LD406", "the rule warns at all", (True, False))
    ld407_on: bool = _w(True, "LD407", "the rule warns at all", (True, False))
    ld408_on: bool = _w(True, "LD408", "the rule warns at all", (True, False))

    def is_on(self, rule: str) -> bool:
        return bool(getattr(self, f"{rule.lower()}_on"))


def load_params(path: Path = PARAMS_FILE) -> tuple[WarningParams, dict]:
    """(thresholds, the fit's record) from the fitted file; the priors when it is absent."""
    if not path.exists():
        return WarningParams(), {}
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in dataclasses.fields(WarningParams)}
    values = {k: v for k, v in data.get("params", {}).items() if k in known}
    return dataclasses.replace(WarningParams(), **values), data.get("fit", {})


PARAMS, FIT_RECORD = load_params()


@dataclass
class EarlyWarning(Finding):
    """A finding of severity "warning" with the predicted steps to a NaN or blow-up (None: unknown)."""

    horizon: int | None = None

    def horizon_text(self, lang: str = "en") -> str:
        if self.horizon is None or self.step is None:
            return t("watch.horizon_unknown", lang)
        if self.horizon == 0:
            return t("watch.horizon_now", lang, factor=f"{BLOWUP_FACTOR:g}")
        return t("watch.horizon", lang, steps=self.horizon, step=self.step + self.horizon)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return super().to_json(lang) | {"horizon": self.horizon}


def _warning(rule: str, series: Series, horizon: int | None, evidence: Evidence) -> EarlyWarning:
    """A warning at the latest point of `series`."""
    step = int(series.steps[-1])
    return EarlyWarning(rule, "warning", [evidence], step, series=series.label, horizon=horizon)


@dataclass(frozen=True)
class Series:
    steps: np.ndarray
    values: np.ndarray
    lines: np.ndarray
    sources: np.ndarray
    label: str
    # Of the loss: each point's spike height (see `spike_heights`) and trailing median (see
    # `trailing_median`), NaN where none was measured. Each depends only on the points before, so a
    # prefix keeps its slice: computed once per refresh.
    heights: np.ndarray | None = None
    trend: np.ndarray | None = None

    def upto(self, step: int) -> Series:
        """The points logged at or before `step` (the series as the watch saw it then)."""
        n = int(np.searchsorted(self.steps, step, side="right"))
        heights = self.heights[:n] if self.heights is not None else None
        trend = self.trend[:n] if self.trend is not None else None
        return Series(
            self.steps[:n], self.values[:n], self.lines[:n], self.sources[:n], self.label, heights, trend
        )

    def quote(self, index: int) -> LogLine | None:
        if self.lines[index] <= 0:
            return None
        return LogLine(str(self.sources[index]), int(self.lines[index]), "")

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Signals:
    """The series the warnings read: the judged training loss (Caffe: its smoothed display loss,
    Caffe's clamp 87.3365 as non-finite), the gradient norm and the loss scale when logged."""

    loss: Series | None
    grad_norm: Series | None
    loss_scale: Series | None
    lr: Series | None = None
    # ln(C) of a classification loss whose class count the configuration states before training
    # (num_output, an echoed num_classes): what a freshly initialised net's loss is.
    chance_loss: float | None = None
    # Without it, for a classifier (an accuracy is logged, from step `classifier_from` on): ln of the
    # class count few classifiers exceed (`ld110_max_classes`), above any untrained one's loss.
    bound_chance: float | None = None
    classifier_from: int | None = None
    # The evidence of the settings that blow a run up (BLOW_UP_SETTINGS), known before training.
    blow_up_settings: tuple[Evidence, ...] = ()
    # What LD408 reads: the highest usual lr of the run's optimiser (LD309's range), and the lr a line
    # of the log states (known before training; a logged lr is read only up to the point judged).
    usual_lr: UsualLr | None = None

    def upto(self, step: int) -> Signals:
        series = {name: getattr(self, name) for name in ("loss", "grad_norm", "loss_scale", "lr")}
        cut = {name: s.upto(step) if s is not None else None for name, s in series.items()}
        return dataclasses.replace(self, **cut)


@dataclass(frozen=True)
class UsualLr:
    """The optimiser's usual lr range's top (LD309), and the lr a line of the log states."""

    high: float
    optimizer: str  # as the log names it; "" when it does not
    stated: float | None
    stated_line: LogLine | None


def signals_of(log: TrainingLog) -> Signals:
    ctx = Context(log, fitted.PARAMS)
    curve = ctx.train_loss
    loss = None
    if curve is not None and len(curve):
        values = np.where(curve.bad, np.nan, curve.values)  # the clamp counts as the NaN it stands for
        heights, trend = spike_heights(values), trailing_median(values)
        loss = Series(curve.steps, values, curve.lines, curve.sources, curve.label, heights, trend)
    signals = (loss, _series(ctx, ("grad_norm",)), _series(ctx, SCALE_METRICS), _series(ctx, ("lr",)))
    settings = _blow_up_settings(log, int(loss.steps[0])) if loss is not None else ()
    classifier = ctx.one_classifier_loss
    return Signals(
        *signals,
        chance_loss=_chance_loss(ctx),
        bound_chance=math.log(ctx.params.ld110_max_classes) if classifier else None,
        classifier_from=ctx.accuracy_from if classifier else None,
        blow_up_settings=settings,
        usual_lr=_usual_lr(ctx),
    )


def _usual_lr(ctx: Context) -> UsualLr:
    stated = ctx.meta.base_lr if "base_lr" in ctx.meta.where else None
    if stated is not None and not (math.isfinite(stated) and stated > 0):
        stated = None
    return UsualLr(usual_lr_range(ctx)[1], ctx.meta.optimizer or "", stated, ctx.quote("base_lr"))


def _chance_loss(ctx: Context) -> float | None:
    """ln(C) from the configuration only (never from the curve itself, nor from later evaluations)."""
    classes = ctx.classes
    if classes is not None and classes[1] == "num_output":
        return math.log(classes[0])
    echoed = ctx.meta.echoed_classes
    return math.log(echoed) if echoed and echoed >= 2 and ctx.classification_loss else None


def _blow_up_settings(log: TrainingLog, first_step: int) -> tuple[Evidence, ...]:
    """The evidence of BLOW_UP_SETTINGS's checks as the watch sees the run at its first logged loss:
    the settings with the first point, when a line of the log states the lr (otherwise the checks
    would read the peak of the logged lr, the future of a running job)."""
    if "base_lr" not in log.meta.where:
        return ()
    start = dataclasses.replace(log, metrics=log.metrics[log.metrics["step"] <= first_step])
    ctx = Context(start, fitted.PARAMS)
    found: list[Evidence] = []
    for rule_id, measured in BLOW_UP_SETTINGS.items():
        check = rule_by_id(rule_id)
        result = check.check(ctx) if check.applies(ctx) else None
        for finding in result.findings if result is not None else []:
            if measured is None or finding.measurements.get(measured[0]) == measured[1]:
                found += finding.evidence
    return tuple(found)


def _series(ctx: Context, metrics: tuple[str, ...]) -> Series | None:
    for metric in metrics:
        rows = ctx.rows(metric, "train")
        if len(rows):
            rows = rows.drop_duplicates(["segment", "step"], keep="last")
            return Series(
                rows["step"].to_numpy(np.int64),
                rows["value"].to_numpy(np.float64),
                rows["line"].to_numpy(np.int64),
                rows["source"].astype(str).to_numpy(),
                f"train/{metric}",
            )
    return None


def early_warnings(
    log: TrainingLog, params: WarningParams | None = None, since: int | None = None
) -> list[EarlyWarning]:
    """The warnings of the run's latest point; with `since` (the last step judged before, e.g. by
    the previous poll of a watch), of every point logged after it too (the last CATCH_UP_POINTS),
    so that a warning between two polls is not missed: each rule's latest. Empty once it is NaN."""
    signals = signals_of(log)
    params = params or PARAMS
    if since is None or signals.loss is None or nan_reached(signals):
        return judge(signals, params)
    steps = np.unique(signals.loss.steps)
    found: dict[str, EarlyWarning] = {}
    for step in steps[steps > since][-CATCH_UP_POINTS:]:
        found |= {w.rule: w for w in judge(signals.upto(int(step)), params)}
    return sorted(found.values(), key=lambda w: w.rule)


def nan_reached(signals: Signals) -> bool:
    """The loss is already non-finite: the NaN is here, not ahead. (A non-finite gradient norm alone is
    not: an fp16 run logs one for every overflowed step its loss scaler skips.)"""
    loss = signals.loss
    return loss is not None and len(loss) > 0 and not np.isfinite(loss.values).all()


def judge(
    signals: Signals, params: WarningParams, rules: tuple[str, ...] | None = None
) -> list[EarlyWarning]:
    """The warnings of `rules` (default: all) at the last point of `signals`."""
    if nan_reached(signals):
        return []
    out = []
    for rule_id, check in CHECKS.items():
        if (rules is None or rule_id in rules) and params.is_on(rule_id):
            found = check(signals, params)
            if found is not None:
                out.append(found)
    return out


def _horizon(loss: Series | None) -> int | None:
    """Steps until the loss reaches BLOWUP_FACTOR x its first value, at the log-slope (Theil-Sen, per
    step) of its last SLOPE_POINTS points; None when the loss is not rising."""
    if loss is None or len(loss) < 2:
        return None
    y, x = np.log(np.maximum(loss.values[-SLOPE_POINTS:], 1e-300)), loss.steps[-SLOPE_POINTS:].astype(float)
    i, j = np.triu_indices(len(y), 1)
    dx = x[j] - x[i]
    ok = dx > 0
    if not ok.any():
        return None
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok]))
    if slope <= 0:
        return None
    gap = math.log(BLOWUP_FACTOR * max(loss.values[0], 1e-300)) - y[-1]
    return max(0, math.ceil(gap / slope))


def _grad_growth(s: Signals, p: WarningParams) -> EarlyWarning | None:
    g = s.grad_norm
    k = p.grad_sustain
    if g is None or len(g) < k + 3:
        return None
    finite = g.values[np.isfinite(g.values)]  # overflowed fp16 steps log inf/NaN: skipped, not growth
    if len(finite) < k + 3 or not np.isfinite(g.values[-1]):
        return None
    usual = float(np.median(finite[max(0, len(finite) - k - MEDIAN_POINTS) : len(finite) - k]))
    latest = float(np.min(finite[-k:]))
    if not usual > 0 or latest < p.grad_ratio * usual:
        return None
    evidence = Evidence(
        "evidence.warn.grad_growth",
        {"ratio": latest / usual, "usual": usual, "latest": float(g.values[-1]), "points": k},
        int(g.steps[-1]),
        g.quote(len(g) - 1),
    )
    return _warning("LD401", g, _horizon(s.loss), evidence)


def _scale_collapse(s: Signals, p: WarningParams) -> EarlyWarning | None:
    sc = s.loss_scale
    if sc is None or len(sc) < 2:
        return None
    recent_steps = sc.steps >= sc.steps[-1] - SCALE_SPAN_STEPS
    recent = sc.values[recent_steps]
    finite = recent[np.isfinite(recent) & (recent > 0)]
    if len(finite) < 2 or not np.isfinite(sc.values[-1]) or sc.values[-1] > finite.min():
        return None  # the scale grew back since its low: a scaler at work, not a slide
    # halvings from the span's peak to now (a logged 8x drop is three halvings); in fewer steps than any
    # scaler's growth window they are overflow after overflow, not the saw-tooth of a healthy run
    halvings = math.floor(math.log2(finite.max() / finite[-1]) + 1e-9)
    if halvings < p.scale_halvings:
        return None
    span = max(int(sc.steps[-1] - sc.steps[recent_steps][0]), 1)
    scale = float(sc.values[-1])
    horizon = math.ceil(math.log2(scale) * span / halvings) if scale > 1 else 0
    evidence = Evidence(
        "evidence.warn.loss_scale",
        {"halvings": halvings, "span": span, "scale": scale},
        int(sc.steps[-1]),
        sc.quote(len(sc) - 1),
    )
    return _warning("LD402", sc, horizon, evidence)


def _loss_rise(s: Signals, p: WarningParams) -> EarlyWarning | None:
    loss, k = s.loss, p.rise_sustain
    if loss is None or len(loss) <= k or not (loss.values > 0).all():
        return None
    best_at = int(np.argmin(loss.values[:-k]))
    first, best, latest = float(loss.values[0]), float(loss.values[best_at]), float(np.min(loss.values[-k:]))
    # The share of the progress (on a log scale) given back: 1 is back at the first loss. A loss near
    # zero moves by multiples from batch to batch; measured against the way down, that is noise.
    lost = math.log(latest / best) / max(math.log(first / best), p.rise_floor)
    if lost < p.rise_lost:
        return None
    params = {"lost": 100 * lost, "best": best, "best_step": int(loss.steps[best_at]), "first": first}
    evidence = Evidence(
        "evidence.warn.loss_rise",
        params | {"latest": float(loss.values[-1]), "points": k},
        int(loss.steps[-1]),
        loss.quote(len(loss) - 1),
    )
    return _warning("LD403", loss, _horizon(loss), evidence)


def spike_heights(values: np.ndarray, window: int = 10) -> np.ndarray:
    """ln(loss / median of the `window` points before it) of each of the last RECENT_POINTS +
    CATCH_UP_POINTS points (NaN elsewhere, and where fewer than half a window came before)."""
    out = np.full(len(values), np.nan)
    start = max(0, len(values) - RECENT_POINTS - CATCH_UP_POINTS)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(np.where(values > 0, values, np.nan)[start:])
    n = len(y)
    padded = np.concatenate([np.full(window, np.nan), y])
    before = np.lib.stride_tricks.sliding_window_view(padded[:-1], window)[:n]
    keep = np.sum(~np.isnan(before), axis=1) >= window // 2
    if keep.any():
        out[start:][keep] = y[keep] - np.nanmedian(before[keep], axis=1)
    return out


def _taller_spikes(s: Signals, p: WarningParams) -> EarlyWarning | None:
    loss = s.loss
    if loss is None or len(loss) < p.spike_count + 5 or not (loss.values > 0).all():
        return None
    heights = loss.heights if loss.heights is not None else spike_heights(loss.values)
    index = np.flatnonzero(np.isfinite(heights))[-RECENT_POINTS:]
    height = heights[index]
    spiky = height >= p.spike_height
    if not len(index) or not spiky[-1] or index[-1] != len(loss) - 1:
        return None  # the latest point is not a spike: nothing new to judge
    peaks, tops = index[spiky][-p.spike_count :], height[spiky][-p.spike_count :]
    if len(tops) < p.spike_count or not np.all(np.diff(tops) > 0):
        return None
    evidence = Evidence(
        "evidence.warn.spikes",
        {
            "count": int(p.spike_count),
            "steps": ", ".join(str(int(loss.steps[i])) for i in peaks),
            "ratios": ", ".join(f"x{math.exp(h):.3g}" for h in tops),
        },
        int(loss.steps[-1]),
        loss.quote(len(loss) - 1),
    )
    return _warning("LD404", loss, _horizon(loss), evidence)


def trailing_median(values: np.ndarray, window: int = TREND_POINTS) -> np.ndarray:
    """Each point's median with the `window` - 1 points before it (fewer at the start), non-finite
    points left out (NaN where all were)."""
    padded = np.concatenate([np.full(window - 1, np.nan), np.where(np.isfinite(values), values, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    out = np.full(len(values), np.nan)
    seen = ~np.all(np.isnan(windows), axis=1)
    if seen.any():
        out[seen] = np.nanmedian(windows[seen], axis=1)
    return out


def _climb_with_lr(s: Signals, p: WarningParams) -> EarlyWarning | None:
    loss, lr, k = s.loss, s.lr, p.lr_sustain
    if loss is None or lr is None or len(loss) <= max(k, TREND_POINTS) or len(lr) < 2:
        return None
    trend = loss.trend if loss.trend is not None else trailing_median(loss.values)
    earlier = trend[:-k]
    # judge() never gets here once the loss is non-finite; a NaN would be the minimum and fail `best > 0`
    best_at = int(np.argmin(earlier))
    first, best, latest = float(loss.values[0]), float(earlier[best_at]), float(np.min(trend[-k:]))
    if not (best > 0 and first > best and latest > 0 and math.isfinite(latest)):
        return None
    # LD403's measure (log scale, the way down floored at rise_floor), at the lower bar a rising lr earns
    lost = math.log(latest / best) / max(math.log(first / best), p.rise_floor)
    if lost < p.lr_gave_back:
        return None
    best_step = int(loss.steps[best_at])
    logged_at_best = int(np.searchsorted(lr.steps, best_step, side="right")) - 1
    if logged_at_best < 0:
        return None
    lr_best, lr_now = float(lr.values[logged_at_best]), float(lr.values[-1])
    if not (lr_best > 0 and math.isfinite(lr_now)) or lr_now < p.lr_rise * lr_best:
        return None
    params = {
        "best": best,
        "best_step": best_step,
        "lr_best": lr_best,
        "lr_now": lr_now,
        "latest": latest,
        "pct": 100 * lost,
        "points": TREND_POINTS,
    }
    evidence = Evidence("evidence.warn.lr_climb", params, int(loss.steps[-1]), loss.quote(len(loss) - 1))
    return _warning("LD407", loss, _horizon(loss), evidence)


def _explosive_start(s: Signals, p: WarningParams) -> EarlyWarning | None:
    loss, chance, key = s.loss, s.chance_loss, "evidence.warn.start"
    if loss is None or not len(loss):
        return None
    if chance is None and s.classifier_from is not None and s.classifier_from <= loss.steps[-1]:
        chance, key = s.bound_chance, "evidence.warn.start_any_c"  # C unknown: above any classifier's
    if chance is None or chance <= 0:
        return None
    first, latest = float(loss.values[0]), float(loss.values[-1])
    if min(first, latest) < p.start_ratio * chance:
        return None
    params = {"first": first, "ratio": first / chance, "classes": round(math.exp(chance)), "chance": chance}
    evidence = Evidence(key, params, int(loss.steps[0]), loss.quote(0))
    return _warning("LD405", loss, _horizon(loss), evidence)


def _lr_off_the_chart(s: Signals, p: WarningParams) -> EarlyWarning | None:
    """LD408: the larger of the stated lr and the logged lr so far, against the optimiser's usual top."""
    loss, usual = s.loss, s.usual_lr
    if loss is None or not len(loss) or usual is None or not usual.high > 0:
        return None
    lr, quote, step = usual.stated, usual.stated_line, int(loss.steps[0])
    if s.lr is not None and len(s.lr):
        logged = np.where(np.isfinite(s.lr.values) & (s.lr.values > 0), s.lr.values, 0.0)
        at = int(np.argmax(logged))
        if logged[at] > 0 and (lr is None or logged[at] > lr):
            lr, quote, step = float(logged[at]), s.lr.quote(at), int(s.lr.steps[at])
    if lr is None or lr < p.lr_range_factor * usual.high:
        return None
    params = {"lr": lr, "ratio": lr / usual.high, "high": usual.high, "optimizer": usual.optimizer or "?"}
    evidence = Evidence("evidence.warn.lr_range", params, step, quote)
    return _warning("LD408", loss, None, evidence)


def _settings_blow_up(s: Signals, p: WarningParams) -> EarlyWarning | None:
    loss = s.loss
    if not s.blow_up_settings or loss is None or not len(loss):
        return None
    step = int(loss.steps[-1])
    return EarlyWarning("LD406", "warning", list(s.blow_up_settings), step, series=loss.label, horizon=None)


CHECKS = {
    "LD401": _grad_growth,
    "LD402": _scale_collapse,
    "LD403": _loss_rise,
    "LD404": _taller_spikes,
    "LD405": _explosive_start,
    "LD406": _settings_blow_up,
    "LD407": _climb_with_lr,
    "LD408": _lr_off_the_chart,
}
