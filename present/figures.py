"""Plotly figures of one or several runs: curves, NaN markers, finding regions, lr decays, events.

One figure with stacked subplots (loss / accuracy / learning rate / gradient norm) sharing the step
axis: browsers cap WebGL contexts, so one GL figure per page. Series are downsampled for display
only (present.downsample); every log-derived string goes through present.safe.plot_text because
plotly.js renders a subset of HTML in names and hover text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from diagnostics.features import lr_decays
from diagnostics.model import Diagnosis
from i18n import t
from parsers.model import TrainingLog, purge_orphans
from parsers.names import CONSUMED_SAMPLES, LOSS_SYNONYMS
from present.downsample import DEFAULT_POINTS, downsample, ema
from present.safe import plot_text

# Panels in display order: key -> metrics drawn in it.
PANELS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "loss_raw"),
    "quality": ("accuracy", "top5", "map", "perplexity"),
    "lr": ("lr",),
    "grad_norm": ("grad_norm",),
    "loss_scale": ("loss_scale",),  # fp16's dynamic loss scale: powers of two, on a log axis
    "other": (),  # every remaining metric (loss_cls, box_loss, bleu, ...), up to MAX_OTHER_METRICS
}
PANEL_HEIGHTS = {"loss": 3.0, "quality": 1.6, "lr": 1.2, "grad_norm": 1.2, "loss_scale": 1.2, "other": 1.8}
MAX_OTHER_METRICS = 6
SPLIT_COLOURS = {"train": "#2563eb", "val": "#ea580c", "test": "#16a34a"}
METRIC_COLOURS = {"lr": "#7c3aed", "grad_norm": "#0891b2", "loss_scale": "#b45309"}
RUN_COLOURS = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#be123c", "#854d0e", "#4b5563")
SEVERITY_COLOURS = {"critical": "#dc2626", "warning": "#f59e0b", "info": "#3b82f6"}
NONFINITE_COLOUR = "#dc2626"
# Above this many points a series is drawn with WebGL.
GL_THRESHOLD = 1500
# An lr that falls below this fraction of its previous value counts as a decay (`features.lr_decays`,
# the definition the rules use; the rules judge with their own factors, see Params).
LR_DROP_RATIO = 0.7
MAX_DECAY_MARKS = 30
# Events (parsers/events.py) on the loss panel: plotly marker symbol and colour per kind.
EVENT_STYLES = {
    "overflow": ("triangle-down", "#d97706"),
    "loss_scale": ("diamond", "#7c3aed"),
    "skipped": ("triangle-down-open", "#b45309"),
    "fatal": ("x-thin-open", "#991b1b"),
    "restart": ("circle-open", "#111827"),
    "rollback": ("circle-x-open", "#111827"),
    "checkpoint_save": ("square-open", "#6b7280"),
    "checkpoint_load": ("square", "#6b7280"),
}
MAX_EVENT_MARKERS = 500  # per kind: evenly chosen beyond it (the table lists them all)


@dataclass
class RunView:
    """One run to draw: its label (file name or example name), parsed log and diagnosis."""

    label: str
    log: TrainingLog
    diagnosis: Diagnosis | None = None
    offers: list = field(default_factory=list)  # corrected config files (diagnostics.corrections.Offer)


@dataclass(frozen=True)
class ChartSettings:
    smoothing: float = 0.6  # EMA weight, 0 = raw only
    log_scale: bool = False  # loss panel on a log axis
    ignore_outliers: bool = True  # y ranges fit the bulk of the points, as TensorBoard does by default
    lang: str = "en"
    max_points: int = DEFAULT_POINTS


def build_figure(runs: list[RunView], settings: ChartSettings = ChartSettings()) -> go.Figure:
    """The curves of every run overlaid; finding regions and decays of a single run marked."""
    pairs = {id(run.log): _pairs(run.log) for run in runs}
    panels = [key for key in PANELS if any(_series_keys(pairs[id(run.log)], key) for run in runs)]
    if not panels:
        panels = ["loss"]
    heights = [PANEL_HEIGHTS[p] for p in panels]
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06 if len(panels) > 1 else 0.02,
        row_heights=[h / sum(heights) for h in heights],
        subplot_titles=[t(f"ui.panel.{p}", settings.lang) for p in panels],
    )
    compare = len(runs) > 1
    for run_index, run in enumerate(runs):
        for row, panel in enumerate(panels, start=1):
            keys = _series_keys(pairs[id(run.log)], panel)
            for series_index, (split, metric) in enumerate(keys):
                colour = (
                    RUN_COLOURS[run_index % len(RUN_COLOURS)]
                    if compare
                    else _series_colour(split, metric, series_index)
                )
                # Caffe's per-iteration loss beside its smoothed display loss: one click away, not drawn.
                hidden = metric == "loss_raw" and ("train", "loss") in keys
                _add_series(fig, run, split, metric, row, colour, compare, settings, hidden)
    for row, panel in enumerate(panels, start=1):
        _add_nonfinite_markers(fig, runs, pairs, panel, row, settings)
    labels = LabelSlots(_step_extent(runs))
    # The onsets are placed first: the verdict's marker keeps its label when a finding sits beside it.
    onsets = [
        (i, run.diagnosis, run.diagnosis.symptom.onset_step, labels.place(run.diagnosis.symptom.onset_step))
        for i, run in enumerate(runs)
        if run.diagnosis is not None and run.diagnosis.symptom.onset_step is not None
    ]
    if not compare and runs and runs[0].diagnosis is not None:
        _add_findings(fig, runs[0].diagnosis, settings.lang, len(panels), labels)
    for run_index, diagnosis, onset, position in onsets:
        colour = RUN_COLOURS[run_index % len(RUN_COLOURS)] if compare else "#111827"
        label = t("ui.chart.onset", settings.lang, symptom=_symptom_title(diagnosis, settings.lang))
        # A run's label is a file name, maybe long: the marker names "Run n", as the tabs do.
        label = f"{t('ui.run_n', settings.lang, n=run_index + 1)}: {label}" if compare else label
        _mark_step(
            fig,
            len(panels),
            onset,
            None,
            {"line": {"color": colour, "width": 1.5, "dash": "dash"}},
            label if position else None,
            {"annotation_position": position, "annotation_font_size": 11},
        )
    if runs and "lr" in panels:
        _add_lr_decays(fig, runs[0].log, panels.index("lr") + 1, settings.lang)
    if not compare and runs and "loss" in panels:
        _add_events(fig, runs[0].log, panels.index("loss") + 1, settings.lang)
    loss_row = panels.index("loss") + 1 if "loss" in panels else None
    log_rows = {panels.index("loss_scale") + 1} if "loss_scale" in panels else set()
    if "lr" in panels and _spans_decades(runs, "lr"):
        log_rows.add(panels.index("lr") + 1)
    if settings.log_scale and loss_row is not None:
        log_rows.add(loss_row)
    _pad_constant_axes(fig, len(panels), log_rows)
    if settings.ignore_outliers:
        _fit_bulk(fig, len(panels), log_rows)
    for row in log_rows - {loss_row}:
        fig.update_yaxes(type="log", row=row, col=1, exponentformat="power")
    if settings.log_scale and loss_row is not None:
        fig.update_yaxes(type="log", row=loss_row, col=1)
    fig.update_xaxes(title_text=t("ui.chart.step", settings.lang), row=len(panels), col=1)
    fig.update_xaxes(showgrid=True, gridcolor="#eef0f3", zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor="#eef0f3", zeroline=False)
    fig.update_layout(
        height=int(160 * sum(heights) + 80),
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        hovermode="x unified" if not compare else "closest",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        font={"size": 12},
    )
    return fig


def _pairs(log: TrainingLog) -> set[tuple[str, str]]:
    """(split, metric) pairs present: computed once per figure (a scan of up to millions of rows)."""
    counts = log.metrics.groupby(["split", "metric"], observed=True).size()
    return {(str(split), str(metric)) for split, metric in counts[counts > 0].index}


def _series_keys(available: set[tuple[str, str]], panel: str) -> list[tuple[str, str]]:
    """(split, metric) pairs of this panel present in the run, train first."""
    metrics = PANELS[panel]
    if panel == "loss" and not any(m in {a[1] for a in available} for m in metrics):
        # No canonical loss: fall back to the first metric whose name says "loss" (e.g. loss_cls), else
        # to the loss under another name (nll, xent, ...), as the diagnosis does.
        named = sorted({m for _, m in available if "loss" in m and m != "loss_scale"})
        present = {m for _, m in available}
        metrics = tuple((named or [m for m in LOSS_SYNONYMS if m in present])[:1])
    if panel == "other":
        shown = {m for key in PANELS if key != "other" for _, m in _series_keys(available, key)}
        fixed = {m for key in PANELS for m in PANELS[key]} | {CONSUMED_SAMPLES}
        metrics = tuple(sorted({m for _, m in available} - shown - fixed))[:MAX_OTHER_METRICS]
    return [(s, m) for m in metrics for s in ("train", "val", "test") if (s, m) in available]


def _series_colour(split: str, metric: str, index: int) -> str:
    if metric in ("loss_raw", "top5"):
        return "#93c5fd" if split == "train" else "#fdba74"
    if split == "train" and metric in METRIC_COLOURS:
        return METRIC_COLOURS[metric]
    return SPLIT_COLOURS.get(split, RUN_COLOURS[index % len(RUN_COLOURS)])


def _trace_name(run: RunView, split: str, metric: str, compare: bool, lang: str) -> str:
    name = t("ui.chart.series", lang, split=t(f"ui.split.{split}", lang), metric=metric)
    return plot_text(f"{run.label} · {name}" if compare else name)


def _add_series(
    fig: go.Figure,
    run: RunView,
    split: str,
    metric: str,
    row: int,
    colour: str,
    compare: bool,
    settings: ChartSettings,
    hidden: bool = False,
) -> None:
    series = purge_orphans(run.log.series(metric, split))
    steps = series["step"].to_numpy(dtype=np.float64)
    values = series["value"].to_numpy(dtype=np.float64)
    name = _trace_name(run, split, metric, compare, settings.lang)
    smooth = settings.smoothing > 0 and metric not in ("lr",) and np.isfinite(values).sum() > 20
    raw = downsample(steps, values, settings.max_points)
    trace_type = go.Scattergl if len(raw.x) > GL_THRESHOLD else go.Scatter
    hover = "step %{x}<br>%{y:.5g}<extra>%{fullData.name}</extra>"  # the name is not a template
    fig.add_trace(
        trace_type(
            x=raw.x,
            y=raw.y,
            mode="lines" if len(raw.x) > 1 else "markers",
            name=name + (t("ui.chart.raw_suffix", settings.lang) if smooth else ""),
            line={"color": colour, "width": 1 if smooth else 1.6},
            opacity=0.25 if smooth else 1.0,
            legendgroup=name,
            showlegend=not smooth,
            hovertemplate=hover,
            visible="legendonly" if hidden else True,
        ),
        row=row,
        col=1,
    )
    if smooth:
        smoothed = downsample(steps, ema(values, settings.smoothing), settings.max_points)
        fig.add_trace(
            trace_type(
                x=smoothed.x,
                y=smoothed.y,
                mode="lines",
                name=name,
                line={"color": colour, "width": 1.8},
                legendgroup=name,
                hovertemplate=hover,
                visible="legendonly" if hidden else True,
            ),
            row=row,
            col=1,
        )


def _add_nonfinite_markers(
    fig: go.Figure,
    runs: list[RunView],
    pairs: dict[int, set[tuple[str, str]]],
    panel: str,
    row: int,
    settings: ChartSettings,
) -> None:
    """Red x markers at the top of the panel for every NaN/inf value, hover says which and where."""
    xs: list[float] = []
    texts: list[str] = []
    tops: list[float] = []
    for run in runs:
        for split, metric in _series_keys(pairs[id(run.log)], panel):
            series = run.log.series(metric, split)
            values = series["value"].to_numpy(dtype=np.float64)
            finite = np.isfinite(values)
            if finite.any():
                tops.append(float(values[finite].max()))
            bad = ~finite
            if not bad.any():
                continue
            steps = series["step"].to_numpy()[bad]
            lines = series["line"].to_numpy()[bad]
            for step, value, line in zip(steps, values[bad], lines, strict=True):
                xs.append(float(step))
                texts.append(
                    plot_text(
                        t(
                            "ui.chart.nonfinite_hover",
                            settings.lang,
                            metric=f"{split} {metric}",
                            value=_value_word(value),
                            step=int(step),
                            line=int(line),
                        )
                    )
                )
    if not xs:
        return
    top = max(tops) if tops else 1.0
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[top] * len(xs),
            mode="markers",
            marker={"symbol": "x", "color": NONFINITE_COLOUR, "size": 9, "line": {"width": 2}},
            name=t("ui.chart.nonfinite", settings.lang),
            text=texts,
            hovertemplate="%{text}<extra></extra>",
            showlegend=row == 1,
            legendgroup="nonfinite",
        ),
        row=row,
        col=1,
    )
    fig.add_vline(x=min(xs), line={"color": NONFINITE_COLOUR, "width": 1}, row=row, col=1)


def _add_events(fig: go.Figure, log: TrainingLog, row: int, lang: str) -> None:
    """A marker per event on the train loss curve (at the loss of its step), one legend entry per kind;
    the hover quotes the log line, escaped."""
    events = log.events
    loss = log.series("loss")
    if events.empty or loss.empty:
        return
    steps, values = loss["step"].to_numpy(dtype=np.float64), loss["value"].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return
    order = np.argsort(steps[finite], kind="stable")  # a resumed run's steps go back: np.interp wants order
    steps, values = steps[finite][order], values[finite][order]
    for kind, (symbol, colour) in EVENT_STYLES.items():
        chosen = events[events["kind"] == kind]
        if chosen.empty:
            continue
        if len(chosen) > MAX_EVENT_MARKERS:
            chosen = chosen.iloc[np.linspace(0, len(chosen) - 1, MAX_EVENT_MARKERS).astype(int)]
        xs = chosen["step"].to_numpy(dtype=np.float64)
        label = t(f"ui.event.{kind}", lang)
        texts = [
            plot_text(
                t("ui.chart.event_hover", lang, kind=label, step=int(step), line=int(line), detail=detail)
            )
            for step, line, detail in zip(chosen["step"], chosen["line"], chosen["detail"], strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=np.interp(xs, steps, values),
                mode="markers",
                marker={
                    "symbol": symbol,
                    "color": colour,
                    "size": 9,
                    "line": {"width": 1.5, "color": colour},
                },
                name=plot_text(label),
                text=texts,
                hovertemplate="%{text}<extra></extra>",
                legendgroup=f"event-{kind}",
            ),
            row=row,
            col=1,
        )


def _value_word(value: float) -> str:
    if np.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _step_extent(runs: list[RunView]) -> tuple[float, float]:
    steps = [run.log.metrics["step"] for run in runs if len(run.log.metrics)]
    return (min(float(s.min()) for s in steps), max(float(s.max()) for s in steps)) if steps else (0.0, 1.0)


class LabelSlots:
    """Where marker labels go: into the wider side of their line (plotly stretches the step axis to fit
    a label, so a long label left of an early onset would add empty negative steps), at the top of the
    chart, or at the bottom when a label already sits near that step; with both taken, the line stays
    unlabelled rather than printing one label over another."""

    NEAR = 0.12  # of the step axis: closer labels overlap (a label is about this wide)

    def __init__(self, extent: tuple[float, float]):
        self.start, self.end = extent
        self.taken: list[tuple[float, str]] = []

    def place(self, step: float) -> str | None:
        span = (self.end - self.start) or 1.0
        side = "right" if step - self.start < 0.6 * span else "left"
        for edge in ("top", "bottom"):
            if not any(e == edge and abs(x - step) < self.NEAR * span for x, e in self.taken):
                self.taken.append((step, edge))
                return f"{edge} {side}"
        return None


def _add_findings(fig: go.Figure, diagnosis: Diagnosis, lang: str, rows: int, labels: LabelSlots) -> None:
    """Shade each finding's step range (or a line at its step), coloured by severity."""
    # The onset line is drawn and labelled separately: a point finding at the same step adds nothing.
    labelled: set[tuple[int | None, int | None]] = {(diagnosis.symptom.onset_step, None)}
    for finding in diagnosis.findings:
        if finding.step is None:
            continue
        colour = SEVERITY_COLOURS.get(finding.severity, "#6b7280")
        key = (finding.step, finding.step_end if finding.step_end != finding.step else None)
        if key in labelled and key[1] is None:
            continue
        position = labels.place(finding.step) if key not in labelled else None
        label = plot_text(f"{finding.rule} {finding.title(lang)}") if position else None
        labelled.add(key)
        if finding.step_end is not None and finding.step_end > finding.step:
            style = {"fillcolor": colour, "opacity": 0.10, "line_width": 0}
        else:
            style = {"line": {"color": colour, "width": 1, "dash": "dot"}}
        _mark_step(
            fig,
            rows,
            finding.step,
            finding.step_end,
            style,
            label,
            {"annotation_position": position, "annotation_font_size": 10, "annotation_font_color": colour},
        )


def _mark_step(
    fig: go.Figure,
    rows: int,
    x0: float,
    x1: float | None,
    style: dict,
    label: str | None,
    label_style: dict,
) -> None:
    """A line at x0 (or a band x0..x1) across every panel, labelled once on the top panel."""
    for row in range(1, rows + 1):
        extra = {"annotation_text": label, **label_style} if label and row == 1 else {}
        if x1 is not None and x1 > x0:
            fig.add_vrect(x0=x0, x1=x1, row=row, col=1, **style, **extra)
        else:
            fig.add_vline(x=x0, row=row, col=1, **style, **extra)


def lr_decay_steps(log: TrainingLog) -> list[int]:
    """Steps where the learning rate is cut: from the solver's step/multistep schedule when stated,
    otherwise from drops in the logged lr series."""
    meta = log.meta
    policy = (meta.lr_policy or "").lower()
    last_step = int(log.metrics["step"].max()) if len(log.metrics) else 0
    if policy == "multistep" and meta.lr_params.get("stepvalue") is not None:
        values = meta.lr_params["stepvalue"]
        values = values if isinstance(values, (list, tuple)) else [values]
        return sorted(int(float(v)) for v in values if float(v) <= max(last_step, 0))[:MAX_DECAY_MARKS]
    if policy == "step" and meta.lr_params.get("stepsize"):
        stepsize = int(float(meta.lr_params["stepsize"]))
        if stepsize > 0:
            return list(range(stepsize, last_step + 1, stepsize))[:MAX_DECAY_MARKS]
    lr = log.series("lr", "train")
    values = lr["value"].to_numpy(dtype=np.float64)
    steps = lr["step"].to_numpy()
    # A smooth schedule (cosine, poly) drops a little every step: only sharp cuts count.
    return [decay.step for decay in lr_decays(steps, values, LR_DROP_RATIO)][:MAX_DECAY_MARKS]


def _add_lr_decays(fig: go.Figure, log: TrainingLog, lr_row: int, lang: str) -> None:
    """A dotted line at each decay; the first one labelled. The others get no annotation at all: plotly
    draws an annotation whose text is empty as its placeholder "new text"."""
    for index, step in enumerate(lr_decay_steps(log)):
        label = {}
        if index == 0:
            label = {
                "annotation_text": t("ui.chart.lr_decay", lang),
                "annotation_position": "top right",
                "annotation_font_size": 10,
            }
        fig.add_vline(
            x=step, line={"color": "#6b7280", "width": 1, "dash": "dot"}, row=lr_row, col=1, **label
        )


def _axis_values(fig: go.Figure, row: int) -> np.ndarray:
    """The finite y values drawn in one panel."""
    axis = "y" if row == 1 else f"y{row}"
    values = [np.asarray(tr.y, dtype=np.float64) for tr in fig.data if tr.yaxis == axis and tr.y is not None]
    values = np.concatenate(values) if values else np.array([])
    return values[np.isfinite(values)]


def _pad_constant_axes(fig: go.Figure, rows: int, log_rows: set[int]) -> None:
    """A constant curve (a fixed lr) gets a range around its value; plotly's default of +-1 around
    it would draw 0.01 as if it were 0."""
    for row in range(1, rows + 1):
        if row in log_rows:  # plotly takes a log axis range in log10 units; autorange copes there
            continue
        values = _axis_values(fig, row)
        if len(values) and values.min() == values.max() and values[0] != 0:
            value = abs(float(values[0]))
            fig.update_yaxes(range=[values[0] - value / 2, values[0] + value / 2], row=row, col=1)


# The y range keeps the points between these quantiles, plus half their span above and a tenth below.
BULK_QUANTILES = (0.02, 0.98)


def _fit_bulk(fig: go.Figure, rows: int, log_rows: set[int]) -> None:
    """Fit each linear y axis to the bulk of its points when a few far-off ones (Caffe's pre-training
    evaluation at 87.3, one wild spike) would squash the rest into a flat line. The points are
    still drawn (their lines leave the top of the panel) and a double click shows everything."""
    for row in range(1, rows + 1):
        if row in log_rows:
            continue
        values = _axis_values(fig, row)
        if len(values) < 20:
            continue
        low, high = np.quantile(values, BULK_QUANTILES)
        span = high - low
        top, bottom = high + span / 2, low - span / 10
        if span > 0 and (values.max() > top or values.min() < bottom):
            fig.update_yaxes(range=[max(bottom, values.min()), min(top, values.max())], row=row, col=1)


def _spans_decades(runs: list[RunView], metric: str) -> bool:
    values = np.concatenate(
        [r.log.series(metric, "train")["value"].to_numpy(dtype=np.float64) for r in runs] or [np.array([])]
    )
    values = values[np.isfinite(values) & (values > 0)]
    return len(values) > 1 and values.max() / values.min() >= 100


def _symptom_title(diagnosis: Diagnosis, lang: str) -> str:
    return t(f"symptoms.{diagnosis.symptom.symptom}.title", lang)
