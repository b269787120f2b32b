"""`python -m diagnostics watch PATH [--interval S] [--on-alarm CMD] [--exit-on-alarm] [--lang zh]`.

Follows a log (or a run folder) while the job writes it (`diagnostics.watch`), prints one line per
change of verdict or of early warnings, and on an alarm runs CMD (through the shell) with the verdict
as JSON on its stdin. `--exit-on-alarm` exits 1 after the first alarm, so that a job wrapper or a
scheduler can stop the run; `--idle-exit S` ends the watch once nothing was appended for S seconds
(the job has finished), with the usual status: 0 healthy, 1 a problem. An unreadable path is
status 2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from diagnostics.early_warning import EarlyWarning
from diagnostics.watch import Watcher, WatchState
from i18n import LANGUAGES, t

EXIT_HEALTHY, EXIT_ALARM, EXIT_UNREADABLE = 0, 1, 2
ALARM_LEVELS = ("warning", "problem", "nan")
PRINT = partial(print, flush=True)  # each line reaches a pipe (a job log) at once
ALARM_TIMEOUT = 60.0  # seconds the alarm command may run


def is_alarm(state: WatchState, level: str) -> bool:
    """`nan`: the verdict is NaN or divergence; `problem`: also any sure problem verdict; `warning`:
    also any early warning."""
    d = state.diagnosis
    if d is None:
        return False
    if d.symptom.symptom in ("nan", "diverging") and not d.uncertain:
        return True
    if level == "nan":
        return False
    if not d.healthy and not d.uncertain:
        return True
    return level == "warning" and bool(state.warnings)


def describe(state: WatchState, lang: str) -> str:
    """One line: when, how much was read, the verdict, and each warning with its horizon."""
    when = time.strftime("%H:%M:%S", time.localtime(state.read_at))
    head = t("watch.line", lang, time=when, kb=f"{state.bytes_read / 1024:,.1f}", step=state.last_step)
    d = state.diagnosis
    if d is None:
        return f"{head} · {t('watch.unreadable_yet', lang, error=state.error or '')}"
    if d.uncertain:
        verdict = d.uncertain_text(lang, "cli")
    else:
        verdict = f"{t(f'symptoms.{d.symptom.symptom}.title', lang)} ({round(100 * d.symptom.confidence)}%)"
        if d.symptom.onset_step is not None and not d.healthy:
            verdict += " " + t("watch.from_step", lang, step=d.symptom.onset_step)
    parts = [head, verdict]
    parts += [f"[{w.rule} {w.severity}] {w.title(lang)}, {w.horizon_text(lang)}" for w in state.warnings]
    return " · ".join(parts)


def render_warnings(warnings: list[EarlyWarning], lang: str) -> str:
    """The early warnings of a finished run's last point, for `python -m diagnostics LOG`."""
    out = ["== " + t("watch.early_warnings", lang)]
    for w in warnings:
        out.append(f"[{w.rule} {w.severity}] {w.title(lang)} @ {w.step}: {w.horizon_text(lang)}")
        out += [f"   - {e.text(lang)}" for e in w.evidence]
    return "\n".join(out) + "\n"


def run_alarm(command: str, state: WatchState, path: str, lang: str) -> str | None:
    """Run the alarm command with the verdict as JSON on stdin; an error message, or None."""
    payload = json.dumps(
        state.to_json(lang) | {"path": path}, ensure_ascii=False, default=str, allow_nan=False
    )
    try:
        done = subprocess.run(
            command, shell=True, input=payload.encode("utf-8"), timeout=ALARM_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return t("watch.alarm_failed", lang, status=done.returncode) if done.returncode else None


def watch(
    path: str,
    *,
    interval: float,
    on_alarm: str | None,
    exit_on_alarm: bool,
    alarm_on: str,
    idle_exit: float | None,
    lang: str,
    out: Callable[[str], None] = PRINT,
    sleep: Callable[[float], None] = time.sleep,
    min_gap_factor: float = 4.0,
) -> int:
    """The watch loop (returns the exit status). `min_gap_factor`: see `Watcher.due`."""
    watcher = Watcher(path, min_gap_factor)
    shown: tuple | None = None
    alarmed: tuple | None = None
    state: WatchState | None = None
    last_growth = time.monotonic()
    while True:
        poll = watcher.poll()
        for name, reason in poll.restarted.items():
            out(t(f"watch.{reason}", lang, file=name))
        if poll.changed:
            last_growth = time.monotonic()
        idle = idle_exit is not None and time.monotonic() - last_growth >= idle_exit
        if watcher.due() or (idle and watcher.pending):  # the last lines are judged before leaving
            state = watcher.diagnose()
            if state.key() != shown:
                shown = state.key()
                out(describe(state, lang))
            if is_alarm(state, alarm_on) and state.key() != alarmed:
                alarmed = state.key()
                if on_alarm:
                    failure = run_alarm(on_alarm, state, path, lang)
                    if failure:
                        print(t("watch.alarm_error", lang, error=failure), file=sys.stderr)
                if exit_on_alarm:
                    return EXIT_ALARM
        if idle:
            if state is None or state.diagnosis is None:
                return EXIT_UNREADABLE
            return EXIT_HEALTHY if state.diagnosis.healthy else EXIT_ALARM
        sleep(interval)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diagnostics watch", description="Follow a training log while it is written."
    )
    parser.add_argument("path", help="a log file, or a run folder (every file in it, new ones too)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    parser.add_argument(
        "--on-alarm", metavar="CMD", help="shell command run on an alarm, the verdict as JSON on stdin"
    )
    parser.add_argument("--exit-on-alarm", action="store_true", help="exit 1 after the first alarm")
    parser.add_argument(
        "--alarm-on",
        choices=ALARM_LEVELS,
        default="warning",
        help="an alarm is: an early warning or worse (default), a sure problem verdict, or NaN/divergence",
    )
    parser.add_argument(
        "--idle-exit", type=float, metavar="S", help="stop when nothing was appended for S seconds"
    )
    parser.add_argument("--lang", choices=sorted(LANGUAGES), default="en")
    args = parser.parse_args(argv)
    if not args.interval > 0:
        parser.error("--interval must be a positive number of seconds")
    if not Path(args.path).exists():
        print(t("watch.no_such_path", args.lang, path=args.path), file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        return watch(
            args.path,
            interval=args.interval,
            on_alarm=args.on_alarm,
            exit_on_alarm=args.exit_on_alarm,
            alarm_on=args.alarm_on,
            idle_exit=args.idle_exit,
            lang=args.lang,
        )
    except KeyboardInterrupt:
        return EXIT_HEALTHY
    except OSError as err:
        print(t("watch.read_error", args.lang, error=err), file=sys.stderr)
        return EXIT_UNREADABLE
