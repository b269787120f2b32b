"""HuggingFace Trainer stdout: the dicts `Trainer.log` prints between tqdm bars, banners and warnings.

    {'loss': 0.6931, 'grad_norm': 1.2, 'learning_rate': 4.9e-05, 'epoch': 0.01}
    {'eval_loss': 0.5166, 'eval_runtime': 642.6, 'eval_samples_per_second': 4.587, 'epoch': 0.05}
    {'train_runtime': 61.2, 'train_samples_per_second': 9.8, 'train_loss': 0.44, 'epoch': 3.0}

The dicts are found anywhere in a line (tqdm redraws with a bare CR, so a dict is often glued to a
progress bar) and their pairs are read with a regex, not `ast.literal_eval`: `nan` and `inf` are not
Python literals, and a diverged run is exactly the one that must load. The printed dicts carry no
step, and the bar they are glued to does not give it either (stdout is buffered while tqdm writes to
stderr), so the step is counted: the n-th train dict is at n x `logging_steps` (with `logging_first_step`:
1, then (n-1) x `logging_steps`) when the log echoes `logging_steps` (TrainingArguments or argparse);
otherwise it is n, and a warning says so. Eval dicts sit at the step of the last train dict. The
final summary dict is no point of the curve: its `train_loss` is the run's mean loss (the fact
`train_loss_mean`).
`epoch` going back starts a new segment (another run appended to the same file).
"""

from __future__ import annotations

import math
import re

from parsers.formats._textlog import NUMBER, At, LineCounter, Problems, Rows, WallClock, line_at, to_float
from parsers.formats.hf_trainer_state import metric_of
from parsers.hparams import hyperparams_from_text
from parsers.model import LogLine, ParseWarning, RunMeta, as_counter
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "hf_stdout"
FRAMEWORK = "pytorch"

_DICT = re.compile(r"""\{\s*['"][A-Za-z_][\w/.\-]*['"]\s*:[^{}\n]*\}""")
# transformers 5 prints the values formatted, as strings: {'loss': '3.704', 'grad_norm': 'nan', ...}
_PAIR = re.compile(rf"""['"]([A-Za-z_][\w/.\-]*)['"]\s*:\s*['"]?({NUMBER})['"]?\s*(?=[,}}])""")
_TRAIN_DICT = re.compile(r"""\{\s*'(?:loss|learning_rate|grad_norm)'\s*:""")
_SUMMARY_KEY = "train_runtime"


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text(1024 * 1024)  # wandb banners and tqdm bars can fill the first 200 KB
    if _TRAIN_DICT.search(head) or re.search(r"\{'eval_loss'\s*:", head):
        return 0.85
    return 0.0


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    interval, first_step = _logging_steps(meta)
    rows = Rows()
    problems = Problems(source.name)
    lines = LineCounter(text)
    clock = WallClock()
    logged = 0  # train dicts seen in the current segment
    step = 0
    segment = 0
    last_epoch = -math.inf
    for found in _DICT.finditer(text):
        pairs = dict(_PAIR.findall(found[0]))
        if _SUMMARY_KEY in pairs and "train_loss" in pairs:
            quote = LogLine(source.name, lines.line(found.start()), found[0])
            meta.set("train_loss_mean", to_float(pairs["train_loss"]), quote)
        if _SUMMARY_KEY in pairs or not pairs:
            continue
        train = not any(key.startswith(("eval_", "test_")) for key in pairs)
        if train and not {"loss", "learning_rate", "grad_norm"} & pairs.keys():
            continue  # some other printed dict (a config, a tokenizer setting)
        epoch = to_float(pairs["epoch"]) if "epoch" in pairs else None
        if epoch is not None and epoch < last_epoch:
            segment, logged = segment + 1, 0
        if epoch is not None:
            last_epoch = epoch
        if train:
            logged += 1
            # with logging_first_step the dicts are at 1, interval, 2 * interval, ...
            step = max(1, (logged - 1) * interval) if first_step else logged * interval
        elif logged == 0:
            step = 0
        at = At(
            step=step,
            line=lines.line(found.start()),
            segment=segment,
            epoch=epoch,
            wall_time=clock.since_start(line_at(text, found.start())),
        )
        for key, value in pairs.items():
            target = metric_of(key)
            if target is not None:
                rows.add(at, target[0], target[1], key, to_float(value))
    parsed = rows.parsed(source.name, meta, problems, "no HuggingFace Trainer dicts ({'loss': ...}) found")
    if not meta.hyperparams.get("logging_steps"):
        note = "the log does not echo logging_steps: the step is the count of logged train dicts (1, 2, ...)"
        parsed.warnings.insert(0, ParseWarning(source.name, 0, note))
    return parsed


def _logging_steps(meta: RunMeta) -> tuple[int, bool]:
    """(logging_steps, whether `logging_first_step` adds a dict at step 1)."""
    try:
        interval = max(1, as_counter(float(meta.hyperparams.get("logging_steps", "1"))) or 1)  # nan, inf: 1
    except ValueError:
        interval = 1
    return interval, meta.hyperparams.get("logging_first_step", "").lower() == "true"
