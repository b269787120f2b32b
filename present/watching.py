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

from diagnostics.watch import WatchState
from i18n import t
from present.panels import human_size

WATCH_DIRS_ENV = "LOSS_DOCTOR_WATCH_DIRS"


class WatchRefused(Exception):
    """A path the page will not watch; the message is for the user (in their language)."""


def allowed_dirs() -> list[Path]:
    """The directories the operator allows, resolved (entries that are empty are skipped)."""
    raw = os.environ.get(WATCH_DIRS_ENV, "")
    return [
        Path(os.path.realpath(os.path.expanduser(part))) for part in raw.split(os.pathsep) if part.strip()
    ]


def watch_path(text: str, lang: str) -> Path:
    """The resolved path to watch; raises WatchRefused (why, in `lang`) when it may not be watched."""
    roots = allowed_dirs()
    if not roots:
        raise WatchRefused(t("ui.watch.disabled", lang, env=WATCH_DIRS_ENV))
    if not text.strip():
        raise WatchRefused(t("ui.watch.empty", lang))
    path = Path(os.path.realpath(os.path.expanduser(text.strip())))
    if not any(path == root or root in path.parents for root in roots):
        listed = ", ".join(str(r) for r in roots)
        raise WatchRefused(t("ui.watch.outside", lang, path=str(path), dirs=listed, env=WATCH_DIRS_ENV))
    if not path.exists():
        raise WatchRefused(t("ui.watch.missing", lang, path=str(path)))
    return path


def status_line(state: WatchState, lang: str) -> str:
    """ "Last read at 14:02:11 · 1.2 MB read · last step 4,200 · parsed in 0.3 s"."""
    return t(
        "ui.watch.status",
        lang,
        time=time.strftime("%H:%M:%S", time.localtime(state.read_at)),
        size=human_size(state.bytes_read),
        step="-" if state.last_step is None else f"{state.last_step:,}",
        seconds=f"{state.parse_seconds:.2f}",
    )
