"""fairseq / fairseq-hydra-train logs: `--log-format json` records, and the plain `simple` format.

JSON records follow a logging prefix that names the record kind (hydra `[ts][train_inner][INFO] - `,
simple `ts | INFO | train_inner | `, or none in old versions) and hold numbers as JSON STRINGS:
    {"epoch": 1, "update": 0.416, "loss": "9.276", ..., "num_updates": "200", "lr": "3.125e-06"}
`train_inner` records are the curve, at step `num_updates` (`update` is the fractional epoch);
the per-epoch `train` summary and the validation records (tag = the subset: `valid`, `test`,
`dev_clean`, ...) prefix every key with the tag (`valid_loss`, `valid_num_updates`) and land at
their own `*_num_updates`, split train / val / test. The plain format writes the same records as
`epoch 001:    100 / 1563 loss=9.2, ..., num_updates=100` and
`epoch 001 | valid on 'valid' subset | loss 7.9 | ... | num_updates 1563`.
Throughput, counters and timings (`wps`, `ups`, `bsz`, `ntokens`, `wall`, ...) and running bests
(`best_loss`) are left out; `gnorm` is the grad norm, `ppl` the perplexity, and `loss_scale` (fp16's
dynamic loss scale) is kept: its slide is evidence of overflow (LD211).

The config dump at the top (hydra: a Python dict repr; older fairseq: `Namespace(...)`) gives the
lr, optimizer, schedule and update count. Its `batch_size`/`max_tokens` are per GPU, so they stay
hyper-parameters; `update_freq` (gradient accumulation) is the iter_size. wall_time counts from
the first timestamped line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from parsers.formats._jsonlines import ColumnRows, Problems, as_number, as_step, keys_of, numeric_column
from parsers.model import LogLine, RunMeta
from parsers.names import canonical_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "fairseq_json"
FRAMEWORK = "pytorch"

_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)?"
_PREFIX = (
    rf"(?:\[(?P<hydra_time>{_TIME})\]\[(?P<hydra_tag>[\w.\-]+)\]\[\w+\] - "  # hydra
    rf"|(?P<time>{_TIME}) \| \w+ \| (?P<tag>[\w.\-]+) \| "  # simple, json
    r"|\| )?"  # fairseq < 0.10
)
_RECORD = re.compile(
    rf"^{_PREFIX}(?:(?P<json>\{{\".*\}})"
    r"|epoch (?P<epoch>\d+)(?::\s+(?P<index>\d+) / (?P<size>\d+) (?P<inner>.*)| \| (?P<summary>.*)))[ \t]*$",
    re.MULTILINE,
)
_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:,(\d+))?")
_INNER_PAIR = re.compile(r"(?<![\w/])([\w/]++)=([^,\s]++)")  # from a key's start only: linear
_VALID_ON = re.compile(r"^valid on '([^']+)' subset \| ")
_NOT_METRICS = {
    "epoch", "update", "num_updates", "ntokens", "nsentences", "sample_size", "wps", "ups", "wpb", "bsz",
    "train_wall", "gb_free", "wall", "clip", "oom",
}  # fmt: skip
_ALIASES = {"gnorm": "grad_norm", "ppl": "perplexity"}
_ZERO_IS_OFF = {"max_update", "max_epoch", "clip_norm"}  # 0 means unlimited / no clipping
_CONFIG = re.compile(r"\{'_name': |Namespace\(")
# `simple`-format lines: only the first `epoch NNN` of a line is tried (atomic group): when a later one
# is followed by `num_updates`, so is the first, and trying each against the rest of the line was
# quadratic on a line of repeats.
_SIMPLE_INNER = re.compile(r"(?m)^(?>.*?epoch \d{3}:\s++\d++ / \d++ ).*num_updates=")
_SIMPLE_SUMMARY = re.compile(r"(?m)^(?>.*?epoch \d{3} \| ).*\| num_updates \d")
_NO_CHECKPOINT = re.compile(r"No existing checkpoint found")
_LOADED_CHECKPOINT = re.compile(r"[Ll]oaded checkpoint (\S+) \(epoch \d+ @ \d+ updates\)")


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text()
    if "][train_inner][" in head or "| train_inner |" in head or '"num_updates": ' in head:
        return 0.9
    if _SIMPLE_INNER.search(head) or _SIMPLE_SUMMARY.search(head):
        return 0.9
    return 0.6 if "fairseq_cli.train" in head or "fairseq.trainer" in head else 0.0


@dataclass
class _Record:
    kind: str  # "train_inner" or the tag of a summary: "train", "valid", "test", a subset name
    values: dict[str, object]  # keys without the tag prefix
    prefix: str  # what the log put before each key: "valid_" in JSON summaries, else ""
    offset: int
    time: str | None


@cache
def _metric(key: str) -> str | None:
    if key in _NOT_METRICS or key.startswith("best_"):
        return None
    return _ALIASES.get(key) or canonical_metric(key)


def _split(kind: str) -> str:
    if kind in ("train", "train_inner"):
        return "train"
    return "test" if kind.startswith("test") else "val"


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    problems = Problems(source.name)
    records: list[_Record] = []
    steps, lines, epochs = [], [], []
    line, counted = 1, 0
    for record in _records(text, problems):
        line += text.count("\n", counted, record.offset)
        counted = record.offset
        step = as_step(record.values.get("num_updates"))
        if step is None:
            problems.add(line, "fairseq record without num_updates; skipped")
            continue
        records.append(record)
        steps.append(step)
        lines.append(line)
        epochs.append(as_number(record.values.get("update" if record.kind == "train_inner" else "epoch")))
    first_stamp = _STAMP.search(text)
    origin = _timestamps([first_stamp[0] if first_stamp else None])[0]
    wall_time = (_timestamps([record.time for record in records]) - origin).dt.total_seconds()
    rows = ColumnRows(
        np.array(steps, dtype=np.int64),
        lines,
        epoch=np.array(epochs, dtype=float),
        wall_time=wall_time.to_numpy(dtype=float, na_value=np.nan),
    )
    objects = [record.values for record in records]
    groups = np.array([f"{record.kind} {record.prefix}" for record in records], dtype=object)
    for group in dict.fromkeys(groups):
        kind, prefix = group.split(" ")
        only = groups == group
        for key in keys_of([obj for obj, member in zip(objects, only, strict=True) if member]):
            metric = _metric(key)
            if metric is not None:
                values, present = numeric_column(objects, key)
                rows.add(values, present & only, _split(kind), metric, prefix + key)
    return rows.parsed(source.name, _meta(source.name, text), problems, "no fairseq train/valid records")


def _timestamps(times: list[str | None]) -> pd.Series:
    """`2022-04-08 18:48:05,372` / `2023-06-13 17:31:54` as datetimes (NaT where there is none)."""
    text = pd.Series(times, dtype="string").str.replace(",", ".", regex=False)
    return pd.to_datetime(text, format="ISO8601", errors="coerce")


def _records(text: str, problems: Problems) -> Iterator[_Record]:
    """Every train_inner / train / valid record of the log, JSON or plain, in file order."""
    for match in _RECORD.finditer(text):
        tag = match["hydra_tag"] or match["tag"]
        if tag is not None and "." in tag:
            continue  # a module logger (fairseq_cli.train, fairseq.trainer): not a stats record
        time = match["hydra_time"] or match["time"]
        if match["json"] is not None:
            try:
                obj = json.loads(match["json"])
            except ValueError:
                problems.add(text.count("\n", 0, match.start()) + 1, "unreadable JSON record; skipped")
                continue
            if isinstance(obj, dict):
                yield _json_record(obj, tag, match.start(), time)
        elif match["inner"] is not None:
            values: dict[str, object] = dict(_INNER_PAIR.findall(match["inner"]))
            values["update"] = int(match["epoch"]) - 1 + int(match["index"]) / max(int(match["size"]), 1)
            yield _Record("train_inner", values, "", match.start(), time)
        else:
            summary = match["summary"]
            subset = _VALID_ON.match(summary)
            kind = subset[1] if subset else (tag or "train")
            body = summary[subset.end() :] if subset else summary
            values = dict(part.strip().rsplit(" ", 1) for part in body.split(" | ") if " " in part.strip())
            yield _Record(kind, {**values, "epoch": match["epoch"]}, "", match.start(), time)


def _json_record(obj: dict[str, object], tag: str | None, offset: int, time: str | None) -> _Record:
    """A JSON stats record; summaries prefix their keys with the tag (`valid_loss`)."""
    if tag is None:  # old fairseq printed records without a logging prefix
        counters = [key[: -len("_num_updates")] for key in obj if key.endswith("_num_updates")]
        tag = counters[0] if counters else "train_inner"
    if tag == "train_inner":
        return _Record(tag, obj, "", offset, time)
    prefix = f"{tag}_"
    values = {key.removeprefix(prefix): value for key, value in obj.items()}
    return _Record(tag, values, prefix, offset, time)


# config key -> the same key in the hydra dict repr (`'lr': [0.0005]`) or a Namespace (`lr=[0.0005]`)
_CONFIG_KEYS = (
    "lr", "optimizer", "lr_scheduler", "max_update", "max_epoch", "max_tokens", "batch_size", "update_freq",
    "clip_norm", "weight_decay", "momentum", "warmup_updates", "arch", "model", "criterion", "task", "fp16",
    "bf16", "seed", "finetune_from_model", "w2v_path", "restore_file", "adam_betas",
)  # fmt: skip


def _config_values(config: str) -> dict[str, tuple[str, str]]:
    """The first value of each config key as (value text, the text that states it); a hydra
    section such as `'optimizer': {'_name': 'adam', ...}` gives its `_name`."""
    found: dict[str, tuple[str, str]] = {}
    for key in _CONFIG_KEYS:
        pattern = rf"(?:'{key}': (?:\{{'_name': )?|\b{key}=)(\[[^\]]*\]|'[^']*'|[-+\w.]+)"
        match = re.search(pattern, config)
        if match:
            found[key] = (match[1].strip("'"), match[0])
    return found


def _line_of(name: str, text: str, found: re.Match[str]) -> LogLine:
    """The whole line that holds a match (patterns start with a literal, so searching is fast)."""
    start = text.rfind("\n", 0, found.start()) + 1
    end = text.find("\n", found.end())
    return LogLine(name, text.count("\n", 0, start) + 1, text[start : end if end >= 0 else len(text)])


def _meta(name: str, text: str) -> RunMeta:
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    config = _CONFIG.search(text)
    if config:
        _config_facts(meta, _line_of(name, text, config))
    if meta.pretrained is None and (scratch := _NO_CHECKPOINT.search(text)):
        meta.set("pretrained", False, _line_of(name, text, scratch))
    loaded = _LOADED_CHECKPOINT.search(text)
    if loaded:
        where = _line_of(name, text, loaded)
        if loaded[1].endswith("checkpoint_last.pt"):  # the default --restore-file: a resume
            meta.resumed = True
            meta.where["resumed"] = where
        else:  # --restore-file pointing at other weights: fine-tuning
            meta.set("pretrained", True, where)
            meta.set("pretrained_from", loaded[1], where)
    return meta


def _config_facts(meta: RunMeta, config: LogLine) -> None:
    values = _config_values(config.text)

    def quote(key: str) -> LogLine:
        return LogLine(config.source, config.line, values[key][1])

    meta.hyperparams.update({key: value for key, (value, _) in values.items()})
    facts = (
        ("lr", "base_lr", lambda v: float(v.strip("[]").split(",")[0])),
        ("optimizer", "optimizer", str.lower),
        ("lr_scheduler", "lr_policy", str.lower),
        ("weight_decay", "weight_decay", float),
        ("momentum", "momentum", float),
        ("max_update", "max_iter", int),
        ("max_epoch", "epochs", int),
        ("clip_norm", "clip_gradients", float),
        ("update_freq", "iter_size", lambda v: int(v.strip("[]").split(",")[0])),
        ("arch", "net_name", str),
        ("model", "net_name", str),
        ("adam_betas", "adam_beta2", lambda v: float(v.strip("()[] ").split(",")[1])),  # '(0.9,0.98)'
    )
    for key, fact, convert in facts:
        if key not in values:
            continue
        try:
            value = convert(values[key][0])
        except (ValueError, IndexError):
            continue
        if not (key in _ZERO_IS_OFF and value == 0):
            meta.set(fact, value, quote(key))
    if "warmup_updates" in values:
        meta.lr_params["warmup_updates"] = values["warmup_updates"][0]
    for key in ("bf16", "fp16"):
        if values.get(key, ("",))[0] == "True":
            meta.set("precision", key, quote(key))
    if meta.precision is None and "fp16" in values:
        meta.set("precision", "fp32", quote("fp16"))
    for key in ("finetune_from_model", "w2v_path"):
        if values.get(key, ("None",))[0] not in ("None", ""):
            meta.set("pretrained", True, quote(key))
            meta.set("pretrained_from", values[key][0], quote(key))
