"""Caffe solver.prototxt / train_val.prototxt / deploy.prototxt uploaded beside a training log.

Config only (no metrics): the facts it gives (base_lr, BatchNorm settings, input scale, num_output,
the `# lr for unnormalized softmax` comments, ...) are merged into the run by `parsers.load`. A
glog log also contains solver and net dumps; it is left to the Caffe log parser (sniff 0).
"""

from __future__ import annotations

import re

from parsers.caffe_config import is_net, is_solver, net_facts, solver_facts
from parsers.model import ParseWarning, RunMeta
from parsers.prototxt import parse_prototxt
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "caffe_prototxt"
FRAMEWORK = "caffe"

MAX_WARNINGS = 20

_GLOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+", re.MULTILINE)
# Indents are blanks within the line, possessive: `^\s*` ran on over line breaks from every line start
# (quadratic on a run of empty lines), and `\s*:?\s*` split a run of blanks every way.
_NET = re.compile(r"^[ \t\r\f\v]*+layers?\s*+:?\s*+[{<]", re.MULTILINE)
_LAYER_TYPE = re.compile(r"\btype\s*+:")
_SOLVER_LR = re.compile(r"^[ \t\r\f\v]*+base_lr\s*+:", re.MULTILINE)
_SOLVER_OTHER = re.compile(r"^[ \t\r\f\v]*+(?:lr_policy|max_iter)\s*+:", re.MULTILINE)


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text()
    if _GLOG_LINE.search(head):
        return 0.0
    if _NET.search(head) and _LAYER_TYPE.search(head):
        return 0.9
    if _SOLVER_LR.search(head) and _SOLVER_OTHER.search(head):
        return 0.9
    return 0.0


def parse(source: SourceFile) -> ParsedFile:
    msg = parse_prototxt(source.text)
    solver, net = is_solver(msg), is_net(msg)
    if not solver and not net:
        raise ParseError("no Caffe solver parameter (base_lr, lr_policy, ...) or net layer found")
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    if solver:
        solver_facts(msg, meta, source.name)
    if net:
        net_facts(msg, meta, source.name)
    warnings = [ParseWarning(source.name, line, message) for line, message in msg.problems[:MAX_WARNINGS]]
    if len(msg.problems) > MAX_WARNINGS:
        rest = len(msg.problems) - MAX_WARNINGS
        warnings.append(ParseWarning(source.name, 0, f"{rest} more unreadable part(s) skipped"))
    skipped = len({line for line, message in msg.problems if message.startswith("skipped")})
    return ParsedFile(metrics=None, meta=meta, warnings=warnings, skipped_lines=skipped)
