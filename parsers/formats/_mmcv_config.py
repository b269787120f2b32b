"""Run facts from an mmcv/mmdetection config dump (Python source: `optimizer = dict(type='SGD', lr=0.02,
...)`), which mmdet 2.x writes into the first line of its `.log.json` and at the top of its text log.

The config is read with a few regexes instead of being executed: it is user text, and only a
handful of settings matter for a diagnosis (the optimizer, the lr schedule, gradient clipping,
the schedule length, and whether weights were loaded: `load_from`, `pretrained=...` or an
`init_cfg=dict(type='Pretrained', ...)`). `samples_per_gpu` stays a hyper-parameter, not the
batch size: the number of GPUs, and so the batch per step, is not in the config.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from parsers.hparams import config_text_facts
from parsers.model import LogLine, RunMeta

_NUMBER = r"[-+]?(?:\d++\.?\d*+|\.\d++)(?:[eE][-+]?\d++)?"  # possessive: see _textlog.NUMBER
_BLOCK_START = re.compile(r"^(optimizer|optimizer_config|lr_config|runner)\s*=\s*dict\(", re.MULTILINE)
_SETTING = re.compile(rf"\b(\w+)\s*=\s*('[^']*'|\"[^\"]*\"|{_NUMBER}|\[[^\]]*\]|True|False|None)")
_TOTAL_EPOCHS = re.compile(r"^total_epochs\s*=\s*(\d+)", re.MULTILINE)
_LOAD_FROM = re.compile(r"^load_from\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_NO_LOAD_FROM = re.compile(r"^load_from\s*=\s*None\b", re.MULTILINE)
_RESUME_FROM = re.compile(r"^resume_from\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_PRETRAINED = re.compile(r"\bpretrained\s*=\s*['\"]([^'\"]+)['\"]")
_INIT_PRETRAINED = re.compile(
    r"init_cfg\s*=\s*dict\(\s*type\s*=\s*'Pretrained',\s*checkpoint\s*=\s*'([^']+)'"
)
_MODEL = re.compile(r"^model = dict\(\s*type='(\w+)'", re.MULTILINE)
_BACKBONE = re.compile(r"\bbackbone=dict\(\s*type='(\w+)'(?:,\s*depth=(\d+))?")
_SAMPLES_PER_GPU = re.compile(r"\bsamples_per_gpu\s*=\s*(\d+)")
_NESTED_DICT = re.compile(
    r"(?<!\w)\w++\s*+=\s*+dict\([^()]*+(?:\([^()]*+\)[^()]*+)*+\)"
)  # paramwise_cfg=dict(...)


def read_config_facts(meta: RunMeta, config: str, quote: Callable[[int], LogLine]) -> None:
    """Fill `meta` from config text; `quote(offset)` is the LogLine for a position in `config`."""
    # configs built from _base_ files can state a block twice; the first one is the one in force
    starts = reversed(list(_BLOCK_START.finditer(config)))
    blocks = {match[1]: _settings(config, match.end()) for match in starts}
    optimizer = blocks.get("optimizer", {})
    _set(meta, "optimizer", optimizer.get("type"), quote, str.lower)
    for key, fact in (("lr", "base_lr"), ("momentum", "momentum"), ("weight_decay", "weight_decay")):
        _set(meta, fact, optimizer.get(key), quote, float)
    clip = re.search(rf"grad_clip\s*=\s*dict\(\s*max_norm\s*=\s*({_NUMBER})", config)
    if clip:
        meta.set("clip_gradients", float(clip[1]), quote(clip.start()))
    schedule = blocks.get("lr_config", {})
    _set(meta, "lr_policy", schedule.get("policy"), quote, str.lower)
    for key in ("warmup", "warmup_iters", "warmup_ratio", "step", "gamma", "power", "min_lr"):
        if key in schedule:
            meta.lr_params[key] = schedule[key][0].strip("'\"")
    runner = blocks.get("runner", {})
    _set(meta, "epochs", runner.get("max_epochs"), quote, _whole)
    _set(meta, "max_iter", runner.get("max_iters"), quote, _whole)
    total = _TOTAL_EPOCHS.search(config)
    if total:
        meta.set("epochs", int(total[1]), quote(total.start()))
    for pattern in (_LOAD_FROM, _INIT_PRETRAINED, _PRETRAINED):
        found = pattern.search(config)
        if found:
            meta.set("pretrained", True, quote(found.start(1)))
            meta.set("pretrained_from", found[1], quote(found.start(1)))
    no_load = _NO_LOAD_FROM.search(config)
    if no_load and not any(p.search(config) for p in (_LOAD_FROM, _INIT_PRETRAINED, _PRETRAINED)):
        meta.set("pretrained", False, quote(no_load.start()))  # nothing loaded anywhere in the config
    resume = _RESUME_FROM.search(config)
    if resume:
        meta.resumed = True
        meta.where.setdefault("resumed", quote(resume.start()))
    model, backbone = _MODEL.search(config), _BACKBONE.search(config)
    if model:
        parts = [model[1], *([backbone[1] + (backbone[2] or "")] if backbone else [])]
        meta.set("net_name", " ".join(parts), quote(model.start(1)))
    samples = _SAMPLES_PER_GPU.search(config)
    if samples:
        meta.hyperparams["samples_per_gpu"] = samples[1]
    for name, settings in blocks.items():
        meta.hyperparams.update({f"{name}.{key}": value.strip("'\"") for key, (value, _) in settings.items()})
    config_text_facts(config, quote, meta)  # frozen stages, norm_eval, img_norm_cfg, ...


def _settings(config: str, start: int) -> dict[str, tuple[str, int]]:
    """`key=value` pairs (value text, offset) at the top level of the dict(...) opened before `start`."""
    depth, end = 1, start
    while end < len(config) and depth:
        depth += {"(": 1, ")": -1}.get(config[end], 0)
        end += 1
    flat = _NESTED_DICT.sub(lambda m: " " * len(m[0]), config[start:end])
    return {m[1]: (m[2], start + m.start()) for m in _SETTING.finditer(flat)}


def _set(
    meta: RunMeta,
    fact: str,
    setting: tuple[str, int] | None,
    quote: Callable[[int], LogLine],
    convert: Callable[[str], object],
) -> None:
    """Set a fact from a config value (None/True/False and values `convert` rejects are skipped)."""
    if setting is None or setting[0] in ("None", "True", "False"):
        return
    try:
        value = convert(setting[0].strip("'\""))
    except (ValueError, OverflowError):  # not a number, or an integer fact written as inf
        return
    meta.set(fact, value, quote(setting[1]))


def _whole(text: str) -> int:
    return int(float(text))


def quote_in_single_line(source_name: str, line: int, config: str) -> Callable[[int], LogLine]:
    """`quote` for a config embedded in one JSON line: the line number is the JSON line's, the text
    is the config line holding the setting."""

    def quote(offset: int) -> LogLine:
        start = config.rfind("\n", 0, offset) + 1
        end = config.find("\n", offset)
        return LogLine(source_name, line, config[start : end if end >= 0 else len(config)].strip())

    return quote
