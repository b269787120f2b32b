"""The page's "Watch a running job" mode: which server paths may be watched, and the status line.

A path typed into the page is read on the server, so the operator lists the directories that may be
watched in LOSS_DOCTOR_WATCH_DIRS (colon-separated, like PATH); unset, the mode is off. The typed path
and the listed directories are resolved (symlinks, `..`) before they are compared, so that neither a
link nor `../..` leads out of them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import plotly.graph_objects as go

from diagnostics.early_warning import EarlyWarning
from diagnostics.watch import WatchState
from i18n import t
from present.figures import ChartSettings, RunView, build_figure
from present.panels import human_size
from present.safe import md_literal, plot_text

WATCH_DIRS_ENV = "LOSS_DOCTOR_WATCH_DIRS"


class WatchRefused(Exception):
    """A path the page will not watch; the message is for the user (in their language)."""


def allowed_dirs() -> list[Path]:
    """The directories the operator allows, resolved (entries that are empty are skipped)."""
    raw = os.environ.get(WATCH_DIRS_ENV, "")
    return [
        Path(os.path.realpath(os.path.expanduser(part))) for part in raw.split(os.pathsep) if part.strip()
    ]


def dirs_text() -> str:
    """The allowed directories as Markdown-safe text (the messages are rendered as Markdown)."""
    return ", ".join(md_literal(str(root)) for root in allowed_dirs())


def watch_path(text: str, lang: str) -> Path:
    """The resolved path to watch; raises WatchRefused (why, in `lang`, as Markdown with the paths as
    code spans) when it may not be watched."""
    roots = allowed_dirs()
    if not roots:
        raise WatchRefused(t("ui.watch.disabled", lang, env=WATCH_DIRS_ENV))
    if not text.strip():
        raise WatchRefused(t("ui.watch.empty", lang))
    path = Path(os.path.realpath(os.path.expanduser(text.strip())))
    if not any(path == root or root in path.parents for root in roots):
        shown, listed = md_literal(str(path)), dirs_text()
        raise WatchRefused(t("ui.watch.outside", lang, path=shown, dirs=listed, env=WATCH_DIRS_ENV))
    if not path.exists():
        raise WatchRefused(t("ui.watch.missing", lang, path=md_literal(str(path))))
    return path


def status_line(state: WatchState, polled_at: float, bytes_read: int, lang: str) -> str:
    """ "Last read at 14:02:11 · 1.2 MB read · last step 4,200 · parsed in 0.3 s": the time of the
    last poll (the watch is alive even when the file did not grow), the diagnosis of the last parse."""
    return t(
        "ui.watch.status",
        lang,
        time=time.strftime("%H:%M:%S", time.localtime(polled_at)),
        size=human_size(bytes_read),
        step="-" if state.last_step is None else f"{state.last_step:,}",
        seconds=f"{state.parse_seconds:.2f}",
    )


def watch_figure(view: RunView, settings: ChartSettings, warnings: list[EarlyWarning]) -> go.Figure:
    """The run's figure with the warnings given so far marked."""
    return mark_warnings(build_figure([view], settings), warnings)


def mark_warnings(figure: go.Figure, warnings: list[EarlyWarning]) -> go.Figure:
    """A dotted orange line at the step of each rule's first warning, labelled with the rule id, so
    that the chart shows how far ahead of the NaN the warning came."""
    first: dict[str, int] = {}
    for w in warnings:
        if w.step is not None:
            first.setdefault(w.rule, w.step)
    for rule, step in first.items():
        figure.add_vline(
            x=step, line={"color": "#e8850c", "dash": "dot", "width": 1.5}, annotation_text=plot_text(rule),
            annotation_position="top left", annotation_font_color="#e8850c", row="all", col=1,
        )  # fmt: skip
    return figure
