"""Command line: `python -m diagnostics LOG [MORE_FILES_OF_THE_SAME_RUN ...] [--json] [--lang en|zh]
[--fix-dir DIR [--fix CAUSE[=N] ...]]`, `python -m diagnostics watch PATH ...` to follow a log while it
is written (`diagnostics.watch_cli`), and `python -m diagnostics scan ROOT ...` (`diagnostics.scan`).

Inputs that hold several runs (a folder of runs, a zip, an MLflow store, a W&B panel export) are
diagnosed run by run: one report each, a JSON list with `--json`.

`--fix-dir` writes the corrected Caffe configuration files and their `.patch` files (the first
option of the leading cause unless `--fix` chooses, e.g. `--fix lr_too_low --fix loss_normalization=1`).

A directory stands for every recognised file in it. Exit status: 0 healthy, 1 a problem was
diagnosed, 2 the input could not be read (the reason goes to stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from diagnostics import corrections, diagnose, watch_cli
from diagnostics.cross_run import CrossRunFinding, shared_spikes
from diagnostics.early_warning import early_warnings
from diagnostics.features import preload_stats
from diagnostics.model import Diagnosis
from i18n import LANGUAGES, t
from parsers import ParseError, load_paths
from parsers.background import while_parsing
from parsers.events import to_records
from parsers.model import TrainingLog
from parsers.runs import Run, any_zip, load_run, runs_from_paths
from parsers.trackers import is_mlflow_run, is_wandb_run

EXIT_HEALTHY, EXIT_PROBLEM, EXIT_UNREADABLE = 0, 1, 2
MAX_JSON_EVENTS = 1000  # the first events of a run; `events_total` counts them all
# Run facts listed in the summary (scalar RunMeta fields, in this order).
FACTS = (
    "net_name",
    "base_lr",
    "lr_policy",
    "optimizer",
    "momentum",
    "weight_decay",
    "batch_size",
    "iter_size",
    "max_iter",
    "epochs",
    "average_loss",
    "input_scale",
    "mean_file",
    "mean_value",
    "crop_size",
    "input_size",
    "num_classes",
    "loss_type",
    "loss_normalize",
    "loss_normalization",
    "depth",
    "has_residual",
    "pretrained",
    "pretrained_from",
    "precision",
    "train_loss_mean",
)


def parsed_summary(log: TrainingLog) -> dict[str, Any]:
    """What was read: formats, files, every curve with its point count and step range, the facts."""
    m = log.metrics
    steps = m.groupby(["split", "metric"], observed=True, sort=True)["step"].agg(["size", "min", "max"])
    curves = [
        {
            "split": str(split),
            "metric": str(metric),
            "points": int(points),
            "first_step": int(first),
            "last_step": int(last),
        }
        for (split, metric), points, first, last in steps.itertuples(name=None)
    ]
    facts: dict[str, Any] = {}
    for name in FACTS:
        value = getattr(log.meta, name)
        if value in (None, [], ""):
            continue
        where = log.meta.where.get(name)
        facts[name] = {
            "value": value,
            "line": where.line if where else None,
            "source": where.source if where else None,
        }
    if log.meta.batchnorm and log.meta.batchnorm[0].source == "setting":
        where = log.meta.batchnorm[0].where
        line = where.line if where else None
        facts["batchnorm"] = {"value": f"yes ({log.meta.batchnorm[0].name})", "line": line}
    elif log.meta.batchnorm:
        frozen = len(log.meta.frozen_batchnorm())
        facts["batchnorm"] = {
            "value": f"{len(log.meta.batchnorm)} layers, {frozen} frozen in TRAIN",
            "line": None,
        }
    return {
        "format": log.meta.format,
        "formats": log.meta.formats,
        "framework": log.meta.framework,
        "sources": log.sources,
        "rows": len(m),
        "curves": curves,
        "facts": facts,
        "warnings": len(log.warnings),
        "skipped_lines": log.skipped_lines,
    }


def render_text(log: TrainingLog, d: Diagnosis, lang: str) -> str:
    """The human-readable report: what was parsed, then the verdict, causes and findings."""
    summary = parsed_summary(log)
    out = [f"== {t('cli.parsed', lang)}"]
    files = ", ".join(summary["sources"])
    out.append(t("cli.format", lang, format=summary["format"], framework=summary["framework"], files=files))
    for c in summary["curves"]:
        out.append(
            "  "
            + t(
                "cli.metric",
                lang,
                split=c["split"],
                metric=c["metric"],
                points=c["points"],
                first=c["first_step"],
                last=c["last_step"],
            )
        )
    if summary["facts"]:
        out.append(t("cli.facts", lang) + ":")
        for name, fact in summary["facts"].items():
            where = f"  ({t('cli.fact_line', lang, line=fact['line'])})" if fact.get("line") else ""
            out.append(f"  {name} = {fact['value']}{where}")
    if summary["warnings"] or summary["skipped_lines"]:
        out.append(t("cli.warnings", lang, count=summary["warnings"], skipped=summary["skipped_lines"]))

    s = d.symptom
    title = t(f"symptoms.{s.symptom}.title", lang)
    if d.uncertain:
        out += ["", "== " + d.uncertain_text(lang, "cli")]
    else:
        out += ["", "== " + t("cli.verdict", lang, title=title, pct=round(100 * s.confidence))]
    detail = [t("cli.onset", lang, step=s.onset_step)] if s.onset_step is not None else []
    if s.series:
        detail.append(t("cli.series", lang, series=s.series))
    if detail:
        out.append("   " + "; ".join(detail))
    out.append("   " + t(f"symptoms.{s.symptom}.summary", lang))
    if d.secondary:
        names = ", ".join(t(f"symptoms.{x.symptom}.title", lang) for x in d.secondary)
        out.append(f"   {t('cli.secondary', lang)}: {names}")
    if not d.healthy:
        out += ["", "== " + t("cli.causes", lang)]
        if not d.causes:
            out.append("   " + t("cli.no_causes", lang))
        for rank, cause in enumerate(d.causes, 1):
            out.append(
                f"{rank}. {cause.title(lang)}  ({round(100 * cause.confidence)}%, {', '.join(cause.rules)})"
            )
            out += _evidence_lines(cause.evidence, lang)
            for fix in cause.fixes:
                out.append(f"   -> {t('cli.fix', lang)}: {fix.text(lang)}")
                if fix.snippet:
                    out += ["        " + line for line in fix.code(lang).splitlines()]
    if d.findings:
        out += ["", "== " + t("cli.findings", lang)]
        for f in d.findings:
            where = f" @ {f.step}" if f.step is not None else ""
            out.append(f"[{f.rule} {f.severity}] {f.title(lang)}{where}")
            out += _evidence_lines(f.evidence, lang)
    out.append("")
    if d.unchecked:
        out.append(t("cli.unchecked", lang, rules=", ".join(d.unchecked)))
    lacking_more = [rule for rule in d.not_applicable if rule not in d.unchecked]  # each said once, not twice
    if lacking_more:
        out.append(t("cli.not_applicable", lang, rules=", ".join(lacking_more)))
    if d.errors:
        out.append(t("cli.errors", lang, rules="; ".join(f"{r}: {e}" for r, e in d.errors)))
    return "\n".join(out)


def render_cross_run(found: list[CrossRunFinding], runs: int, lang: str) -> str:
    """The findings across the runs (LD5xx), after the runs' own reports."""
    out = ["== " + t("cli.cross_run", lang, count=runs)]
    for f in found:
        out.append(f"[{f.rule} {f.severity}] {f.title(lang)}")
        out += _evidence_lines(f.evidence, lang)
        out += [f"   -> {t('cli.fix', lang)}: {fix.text(lang)}" for fix in f.fixes]
    return "\n".join(out) + "\n"


def render_corrections(corrected: corrections.Corrected, written: list[str], lang: str) -> str:
    causes = ", ".join(dict.fromkeys(e.cause for e in corrected.edits)) or "-"
    out = ["== " + t("cli.corrections", lang, cause=causes)]
    for edit in corrected.edits:
        after = t("cli.deleted", lang) if edit.after is None else edit.after
        out.append(f"   {edit.file}:{edit.line}  {edit.before or ''} -> {after}")
        out.append(f"       {edit.explain(lang)}")
    out += [f"   {t('cli.command', lang)}: {command}" for command in corrected.commands]
    for name, log_name in corrected.rebuilt.items():
        out.append("   " + t("cli.rebuilt", lang, file=name, log=log_name))
    out += ["   " + t("cli.wrote", lang, path=path) for path in written]
    if not corrected.edits and not corrected.commands:
        out.append("   " + t("cli.no_corrections", lang))
    return "\n".join(out) + "\n"


def _files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for path in map(Path, paths):
        out += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return out


def _uploads(paths: list[str]) -> list[tuple[str, bytes]]:
    """The run's files as (name, bytes): the head of a large file (a log) is all the echo needs."""
    out = []
    for path in _files(paths):
        try:
            with path.open("rb") as fh:
                out.append((path.name, fh.read(corrections.HEAD_BYTES + 1)))
        except OSError:
            continue  # already read by the parsers; a file gone since has nothing to correct
    return out


def _write_fixes(corrected: corrections.Corrected, directory: str) -> list[str]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in corrected.files.items():
        for path, content in ((out / name, text), (out / f"{name}.patch", corrected.patches[name])):
            path.write_bytes(corrections.encode(content))
            written.append(str(path))
    return written


def _evidence_lines(evidence, lang: str) -> list[str]:
    lines = []
    for e in evidence:
        lines.append(f"   - {e.text(lang)}")
        if e.quote is not None and e.quote.line > 0:
            lines.append(f"       {e.quote.source}:{e.quote.line}  {e.quote.text}".rstrip())
    return lines


def _strict(value: Any) -> Any:
    """NaN/inf facts become strings so the output stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _runs_of(paths: list[str]) -> list[Run] | None:
    """The runs of the inputs (read and sniffed once), or None when a path is missing or cannot be
    read: `load_paths` then says why."""
    if not all(Path(p).exists() for p in paths):
        return None
    try:
        return runs_from_paths(paths) or None
    except (ParseError, OSError):
        return None


def _one_plain_run(runs: list[Run], paths: list[str]) -> bool:
    """One run of ordinary log and config files: reported as always (not a list, not a tracker's)."""
    names = [s.name for s in runs[0].sources]
    return len(runs) == 1 and not (is_mlflow_run(names) or is_wandb_run(names) or any_zip(paths))


def _main_runs(runs: list[Run], args: argparse.Namespace) -> int:
    """Each run's report in turn; exit 2 when none could be read, 1 when any has a problem or
    could not be read, 0 when every run is healthy."""
    if args.fix_dir:
        print(t("cli.fix_one_run", args.lang, count=len(runs)), file=sys.stderr)
        return EXIT_UNREADABLE
    reports, statuses, logs = [], [], []
    for n, run in enumerate(runs, 1):
        try:
            log = load_run(run.sources)
        except Exception as err:  # ParseError, OSError, or a parser bug on this input: a message
            reason = err if isinstance(err, (ParseError, OSError)) else f"{type(err).__name__}: {err}"
            print(t("cli.run_header", args.lang, n=n, count=len(runs), label=run.label), file=sys.stderr)
            print(t("cli.unreadable", args.lang, error=reason), file=sys.stderr)
            statuses.append(EXIT_UNREADABLE)
            continue
        diagnosis = diagnose(log)
        logs.append((run.label, log))
        statuses.append(EXIT_HEALTHY if diagnosis.healthy else EXIT_PROBLEM)
        if args.json:
            reports.append(
                {"run": run.label} | diagnosis.to_json(args.lang) | {"parsed": parsed_summary(log)}
            )
        else:
            print(t("cli.run_header", args.lang, n=n, count=len(runs), label=run.label))
            print(render_text(log, diagnosis, args.lang))
    across = shared_spikes(logs)  # beside the runs' diagnoses, never part of them
    if args.json:
        for report in reports:  # each run lists the cross-run findings it is part of
            report["cross_run"] = [f.to_json(args.lang) for f in across if f.involves(report["run"])]
        print(json.dumps(_strict(reports), ensure_ascii=False, indent=2, default=str, allow_nan=False))
    elif across:
        print(render_cross_run(across, len(logs), args.lang))
    if all(status == EXIT_UNREADABLE for status in statuses):
        return EXIT_UNREADABLE
    return EXIT_HEALTHY if all(status == EXIT_HEALTHY for status in statuses) else EXIT_PROBLEM


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # sub-commands; a file named like one is still a log
    if argv[:1] == ["scan"] and not Path("scan").is_file():
        from diagnostics import scan

        return scan.main(argv[1:])
    if argv[:1] == ["watch"] and not Path("watch").exists():
        return watch_cli.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m diagnostics", description="Diagnose a training run from its log."
    )
    parser.add_argument("paths", nargs="+", help="log file(s) of one run, config files, or a directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lang", choices=sorted(LANGUAGES), default="en")
    parser.add_argument("--fix-dir", help="write the corrected config files and .patch files here")
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="CAUSE[=N]",
        help="a cause's N-th correction (default: the first of the leading cause); repeat to combine",
    )
    args = parser.parse_args(argv)
    try:
        with while_parsing(preload_stats):
            runs = _runs_of(args.paths)
            if runs is not None and not _one_plain_run(runs, args.paths):
                return _main_runs(runs, args)
            log = load_run(runs[0].sources) if runs else load_paths(args.paths)
    except (ParseError, OSError) as err:
        print(t("cli.unreadable", args.lang, error=err), file=sys.stderr)
        return EXIT_UNREADABLE
    except Exception as err:  # a parser bug on this input: still a message and exit 2, not a traceback
        print(t("cli.unreadable", args.lang, error=f"{type(err).__name__}: {err}"), file=sys.stderr)
        return EXIT_UNREADABLE
    diagnosis = diagnose(log)
    warnings = early_warnings(log)  # beside the diagnosis, never part of it
    configs, options = (
        corrections.for_uploads(_uploads(args.paths), diagnosis) if diagnosis.causes else ([], [])
    )
    corrected = corrections.apply(configs, corrections.choose(options, args.fix))
    written = _write_fixes(corrected, args.fix_dir) if args.fix_dir else []
    if args.json:
        report = diagnosis.to_json(args.lang) | {"parsed": parsed_summary(log)}
        report |= {"events": to_records(log.events, MAX_JSON_EVENTS), "events_total": len(log.events)}
        report |= {
            "edits": [e.to_json(args.lang) for e in corrected.edits],
            "commands": corrected.commands,
            "rebuilt": corrected.rebuilt,
            "written": written,
            "warnings": [w.to_json(args.lang) for w in warnings],
        }
        print(json.dumps(_strict(report), ensure_ascii=False, indent=2, default=str, allow_nan=False))
    else:
        print(render_text(log, diagnosis, args.lang))
        if warnings:
            print(watch_cli.render_warnings(warnings, args.lang))
        if options and (args.fix_dir or args.fix):
            print(render_corrections(corrected, written, args.lang))
    return EXIT_HEALTHY if diagnosis.healthy else EXIT_PROBLEM


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written: skip tearing down pandas and scipy (a fifth of a second of a run).
    os._exit(status)
