"""Config facts that can be faults on their own, from the settings and messages of non-Caffe logs:
frozen weights, BatchNorm put in inference mode, the input normalisation, a summed loss.

Two readers: `echo_facts` maps echoed settings (`Namespace(freeze_backbone=True)`, mmcv's
`frozen_stages=1`, `img_norm_cfg = dict(mean=[...], std=[...])`, hparams.yaml keys) and
`line_facts` reads messages (`Freezing layers: ...`, `fc.weight requires_grad=False`,
`Normalize(mean=[...], std=[...])`, detectron2's YAML lists under `PIXEL_MEAN:`). Caffe's own
facts (`param { lr_mult: 0 }`, `use_global_stats`, `transform_param`) come from `caffe_config`.
Each fact keeps the line that states it; the first statement wins. Nothing is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol

from parsers.model import BatchNormLayer, FrozenLayer, LogLine, RunMeta, WeightFiller


class EchoLike(Protocol):
    path: tuple[str, ...]
    key: str
    value: str
    where: LogLine


TRUE_WORDS = {"true", "yes", "on", "1"}  # 0/1 too: TensorBoard's hparams record stores a boolean as a number
FALSE_WORDS = {"false", "no", "off", "0"}
_FALSE = FALSE_WORDS | {"none", "null", "", "-1", "[]", "()", "''", '""'}

# Settings that freeze weights: `freeze`, `freeze_backbone`, `freeze_layers`, `frozen_stages`
# (mmdet/mmengine), `FREEZE_AT` (detectron2), `--freeze-layers`. Not: BatchNorm settings (below),
# temporary freezes (`freeze_prototypes_niters`, `unfreeze_epoch`), booleans about something else.
_FREEZE_KEY = re.compile(r"^(?:freeze|frozen)(?:_(?P<what>\w+))?$|^(?P<pre>\w+?)_(?:frozen|freeze)$")
_FREEZE_NOT = re.compile(r"bn|batch_?norm|norm|stat|iter|epoch|step|until|after|prototype|unfreeze")
_FREEZE_COUNTS = {
    "frozen_stages": "stages",
    "freeze_at": "stages",
    "freeze": "layers",
    "freeze_layers": "layers",
}
# DETR-style: a backbone lr of 0 freezes it.
_ZERO_LR_KEYS = {"lr_backbone": "backbone", "backbone_lr": "backbone"}

# Settings that keep BatchNorm in inference mode while training.
_BN_EVAL_KEYS = {"norm_eval", "freeze_bn", "bn_eval", "frozen_bn", "fix_bn", "fixbn", "bn_frozen"}
_BN_EVAL_KEYS |= {"freeze_batchnorm", "freeze_batch_norm", "eval_bn", "bn_freeze", "use_global_stats"}

# Settings that put BatchNorm layers in the net (`batch_norm: true`, `--use-bn`): they compute batch
# statistics while training unless a setting above freezes them.
_BN_ON_KEYS = {"batch_norm", "batchnorm", "use_bn", "use_batchnorm", "use_batch_norm", "with_bn", "bn"}
# Architectures built with BatchNorm (torchvision's ResNets, DenseNets, MobileNets, EfficientNets,
# Inception v3, `vgg16_bn`): named in the settings, they say the net has BatchNorm.
_BN_ARCH = re.compile(
    r"resnet|resnext|densenet|mobilenet|efficientnet|inception_?v3|regnet|_bn\b", re.IGNORECASE
)

# Architectures normalised by LayerNorm or nothing, not by BatchNorm (transformers, recurrent nets).
_NO_BN_ARCH = re.compile(
    r"gpt|transformer|bert|llama|\bt5|\bvit|lstm|gru\b|rnn|char_?lm|mamba", re.IGNORECASE
)

_MEAN_KEYS = {"mean", "pixel_mean", "img_mean", "image_mean", "norm_mean", "input_mean", "rgb_mean"}
_MEAN_KEYS |= {"data_mean", "normalize_mean", "mean_values"}
_STD_KEYS = {"std", "pixel_std", "img_std", "image_std", "norm_std", "input_std", "rgb_std", "data_std"}
_STD_KEYS |= {"normalize_std", "std_values"}
# A bare `mean`/`std` is a normalisation only inside one of these sections (or with 3 values).
_NORM_PARENT = re.compile(r"norm|preprocess|transform|pixel|input|image|img|data")
# Sections whose mean/std are mmcv/mmengine/detectron2 pixel statistics: pixels in 0..255.
_BYTE_PIXEL_PARENT = re.compile(r"img_norm_cfg|data_preprocessor|^model$")
_NUMBER = r"[-+]?(?:\d++\.?\d*+|\.\d++)(?:[eE][-+]?\d++)?"  # possessive: see _textlog.NUMBER
_NUMBERS = re.compile(_NUMBER)

_GROUPED_COUNT = re.compile(r"\d{1,3}(?:,\d{3})+")

# The weight initialisation a script was told to use (`--init normal(0, 0.01)`, `init='xavier'`): a fixed
# gaussian names its std; the scaled inits (Xavier/Glorot, He/Kaiming/MSRA) keep the signal at any depth.
_INIT_KEYS = {"init", "weight_init", "init_method", "initializer", "init_type", "initialization"}
_GAUSSIAN_INIT = re.compile(
    r"^(?:normal|gaussian|randn)_?\(\s*(?:(?:mean\s*=\s*)?[-+]?0(?:\.0*)?\s*,\s*)?(?:std\s*=\s*)?"
    r"(?P<std>\d*\.?\d+(?:[eE][-+]?\d+)?)\s*\)$",
    re.IGNORECASE,
)
_SCALED_INITS = {
    "xavier": re.compile(r"^(?:xavier|glorot)(?![a-z])", re.IGNORECASE),
    "msra": re.compile(r"^(?:kaiming|msra|he)(?![a-z])", re.IGNORECASE),
}
# Per-layer widths of a plain stack (`--widths 16 32 32`, `hidden=[128, 64]`): the net has one weight layer
# per width plus its output layer. A single number (`channels: 3`) is more often the input's channels.
_WIDTH_KEYS = {"widths", "channels", "hidden", "hidden_sizes", "hidden_dims", "hidden_units", "filters"}
# Architectures with shortcuts (residual or dense connections, transformer blocks): the signal does not
# have to pass every layer's weights.
_SHORTCUT_ARCH = re.compile(
    r"resne|densenet|convnext|gpt|transformer|bert|llama|\bt5|\bvit|swin|mobilenet_?v[23]|efficientnet",
    re.IGNORECASE,
)

_LOSS_REDUCTION_KEYS = {"reduction", "loss_reduction", "reduce", "loss_reduce"}
_CLASS_COUNT_KEYS = {"num_classes", "n_classes", "nb_classes", "num_class", "num_labels", "classes"}
_CLASS_COUNT_KEYS |= {"vocab_size", "n_vocab", "ntokens", "num_tokens"}

# ------------------------------------------------------------------------------------ messages
_NORMALIZE_CALL = re.compile(
    rf"Normalize\(\s*mean\s*=\s*[\[(]\s*((?:{_NUMBER}\s*+,?\s*+)++)[\])]\s*,\s*std\s*=\s*[\[(]\s*((?:{_NUMBER}\s*+,?\s*+)++)[\])]"
)
_TO_UNIT_RANGE = re.compile(
    r"\bToTensor\(\)|\brescale\s*=\s*1\.?0?\s*/\s*255|\bRescaling\(\s*(?:scale\s*=\s*)?1\.?0?\s*/\s*255"
)
_REQUIRES_GRAD = re.compile(
    r"^\s*(?:[Pp]arameter\s+|[Ll]ayer\s+)?['\"]?(?P<name>[A-Za-z_][\w.]*?)(?:\.(?:weight|bias))?['\"]?"
    r"\s*+[:,]?\s*+(?:\.?requires_grad\s*+(?:=|:|->)\s*+|requires_grad\s++)False\b"
)
_FREEZING = re.compile(
    r"^\s*(?:[Ff]reezing|FREEZING|[Ff]roze|[Ff]rozen|FROZEN)\b"
    r"(?:\s+(?:the\s+)?(?:layers?|parameters|params|modules|weights)\b)?\s*:?\s*(?P<what>.+?)\s*\.?$"
)
_FC_ONLY = re.compile(
    r"\b(?:train(?:ing)?|fine-?tun(?:e|ing)|updat(?:e|ing))\s+(?:only\s+)?(?:the\s+)?"
    r"(?P<a>fc|classifier|head|last\s+layers?|final\s+layers?|top\s+layers?|linear\s+layer)\s+only\b"
    r"|\bonly\s+(?:train(?:ing)?|updat(?:e|ing)|fine-?tun(?:e|ing))\s+(?:the\s+)?"
    r"(?P<b>fc|classifier|head|last\s+layers?|final\s+layers?|top\s+layers?|linear\s+layer)\b",
    re.IGNORECASE,
)
_BN_WORD = r"(?:BatchNorm\w*|batch[ _-]?norm\w*|BN)"
_BN_EVAL_TEXT = re.compile(
    rf"\b{_BN_WORD}\s+(?:layers?\s+|statistics\s+|stats\s+)?(?:(?:are|is|set|put|kept|frozen|in|to|into|will\s+be)\s+)+"
    rf"(?:eval(?:uation)?|inference)\s+mode\b"
    rf"|\b(?:[Ff]reez(?:e|ing)|[Ff]rozen|FROZEN)\s+(?:all\s+)?(?:the\s+)?{_BN_WORD}\b",
    re.IGNORECASE,
)
_SUM_REDUCTION = re.compile(r"\b(?:loss_)?reduction\s*[:=]\s*['\"]?sum\b|\bsize_average\s*[:=]\s*False\b")
_YAML_LIST_OPENER = re.compile(r"^\s*(PIXEL_MEAN|PIXEL_STD)\s*:\s*$")
_YAML_ITEM = re.compile(rf"^\s*-\s*({_NUMBER})\s*$")
# Cheap pre-check for `line_facts`: every message pattern above contains one of these words.
_LINE_HINT = re.compile(
    r"requires_grad|reez|roze|REEZ|ROZE|only|ONLY|Normalize|ToTensor|255|eval|inference|reduction|size_average|PIXEL_"
)


def echo_facts(echoes: Iterable[EchoLike], meta: RunMeta) -> None:
    """Map echoed settings onto the config-fault facts of `meta`."""
    echoes = list(echoes)
    means: list[tuple[list[float], LogLine, bool]] = []
    stds: list[tuple[list[float], LogLine, bool]] = []
    for echo in echoes:
        key = echo.key.lower().replace("-", "_")
        parents = [p.lower() for p in echo.path]
        value = echo.value.strip().strip("'\"").strip()
        lowered = value.lower()
        if key in _BN_EVAL_KEYS or (key == "norm" and lowered == "frozenbn"):
            if lowered in TRUE_WORDS or lowered == "frozenbn":
                _bn_flag(meta, ".".join([*echo.path, echo.key]), echo.where)
        elif key == "type" and lowered == "frozenbn" and any("norm" in p for p in parents):
            _bn_flag(meta, ".".join(echo.path), echo.where)
        elif key in _BN_ON_KEYS and lowered in TRUE_WORDS:
            _bn_layers(meta, ".".join([*echo.path, echo.key]), echo.where)
        elif key in _ZERO_LR_KEYS:
            if _float(value) == 0:
                _frozen(meta, _ZERO_LR_KEYS[key], "flag", echo.where)
        elif _FREEZE_KEY.match(key) and not _FREEZE_NOT.search(key):
            what = _frozen_by_setting(key, value)
            if what:
                _frozen(meta, what, "flag", echo.where)
        elif key in ("requires_grad",) and lowered == "false" and not any("norm" in p for p in parents):
            if parents:
                _frozen(meta, parents[-1], "requires_grad", echo.where)
        elif key in _MEAN_KEYS or key in _STD_KEYS:
            numbers = _float_list(value)
            bare = key in ("mean", "std")
            if not numbers or len(numbers) > 4:
                continue
            if bare and not (any(_NORM_PARENT.search(p) for p in parents) or len(numbers) == 3):
                continue
            byte_pixels = key.startswith("pixel_") or any(_BYTE_PIXEL_PARENT.search(p) for p in parents)
            (means if key in _MEAN_KEYS else stds).append((numbers, echo.where, byte_pixels))
        elif (key in _LOSS_REDUCTION_KEYS and lowered == "sum") or (
            key == "size_average" and lowered == "false"
        ):
            meta.set("loss_normalization", "NONE", echo.where)
        elif key in _CLASS_COUNT_KEYS and value.isdigit() and int(value) >= 2 and meta.echoed_classes is None:
            meta.set("echoed_classes", int(value), echo.where)
        elif key in _INIT_KEYS and not parents:
            _init(meta, key, value, echo.where)
        elif key in _WIDTH_KEYS and not parents:
            widths = _float_list(value)
            if len(widths) >= 2 and all(1 <= w < 1e9 and w == int(w) for w in widths):
                meta.set("depth", len(widths) + 1, echo.where)
                meta.set("layer_widths", [int(w) for w in widths], echo.where)
    if meta.net_name and _SHORTCUT_ARCH.search(meta.net_name):
        meta.set("has_residual", True, meta.where.get("net_name"))
    if meta.net_name and _BN_ARCH.search(meta.net_name) and not any(_bn_off(e.key, e.value) for e in echoes):
        _bn_layers(meta, meta.net_name, meta.where.get("net_name"))
    if means and stds:
        # a pair stated together (same section) first; the mean alone is not a normalisation
        mean, mean_where, byte_pixels = means[0]
        std, std_where, _ = stds[0]
        meta.set("input_norm_mean", mean, mean_where)
        meta.set("input_norm_std", std, std_where)
        if byte_pixels:
            meta.set("input_range", "0-255", mean_where)


def line_facts(lines: Mapping[int, str], source: str, meta: RunMeta, strip=lambda line: line) -> None:
    """Config facts stated by messages in `lines` (line number -> text); `strip` removes a log prefix."""
    yaml_lists: dict[str, tuple[list[float], LogLine]] = {}
    for number in sorted(lines):
        line = lines[number]
        if not _LINE_HINT.search(line):
            continue
        message = strip(line)
        where = LogLine(source, number, line.strip())
        opener = _YAML_LIST_OPENER.match(message)
        if opener:
            values = []
            for following in range(number + 1, number + 9):
                item = _YAML_ITEM.match(lines.get(following, ""))
                if not item:
                    break
                values.append(float(item[1]))
            if values:
                yaml_lists.setdefault(opener[1], (values, where))
            continue
        call = _NORMALIZE_CALL.search(message)
        if call:
            meta.set("input_norm_mean", _float_list(call[1]), where)
            meta.set("input_norm_std", _float_list(call[2]), where)
        if _TO_UNIT_RANGE.search(message):
            meta.set("input_range", "0-1", where)
        if _SUM_REDUCTION.search(message):
            meta.set("loss_normalization", "NONE", where)
        if _BN_EVAL_TEXT.search(message):
            _bn_flag(meta, message.strip()[:60], where)
            continue
        grad = _REQUIRES_GRAD.match(message)
        if grad:
            _frozen(meta, grad["name"], "requires_grad", where)
            continue
        freezing = _FREEZING.match(message)
        if freezing and not re.search(r"unfreez|\b0 (?:layers|params|parameters)\b", message, re.IGNORECASE):
            what = freezing["what"].strip(" :'\"")
            if _GROUPED_COUNT.fullmatch(what) or what.isdigit():
                what = f"{what} parameters"
            if what and not re.match(r"(?:none|nothing|no\b)", what, re.IGNORECASE):
                _frozen(meta, what[:80], "text", where)
            continue
        only = _FC_ONLY.search(message)
        if only:
            _frozen(meta, f"all but {(only['a'] or only['b']).lower()}", "text", where)
    if "PIXEL_MEAN" in yaml_lists and "PIXEL_STD" in yaml_lists:
        meta.set("input_norm_mean", yaml_lists["PIXEL_MEAN"][0], yaml_lists["PIXEL_MEAN"][1])
        meta.set("input_norm_std", yaml_lists["PIXEL_STD"][0], yaml_lists["PIXEL_STD"][1])
        meta.set("input_range", "0-255", yaml_lists["PIXEL_MEAN"][1])


def _init(meta: RunMeta, key: str, value: str, where: LogLine) -> None:
    """A stated weight initialisation as the net's one filler: a fixed gaussian with its std, or a
    scaled init; the framework default (`default`, `none`) says nothing."""
    gaussian = _GAUSSIAN_INIT.match(value.strip())
    if gaussian:
        meta.set("weight_fillers", [WeightFiller(key, "gaussian", float(gaussian["std"]), where)], where)
        return
    for kind, pattern in _SCALED_INITS.items():
        if pattern.match(value.strip()):
            meta.set("weight_fillers", [WeightFiller(key, kind, None, where)], where)
            return


def _frozen_by_setting(key: str, value: str) -> str | None:
    """What a freeze setting freezes ("backbone", "2 stages", "layers 0,1,2,3"), or None when it
    freezes nothing (False, 0, -1, an empty list)."""
    lowered = value.lower()
    if lowered in _FALSE:
        return None
    found = _FREEZE_KEY.match(key)
    assert found is not None
    what = (found["what"] or found["pre"] or "").replace("_", " ")
    if lowered in ("true", "yes", "on"):
        return what or "layers"
    if _GROUPED_COUNT.fullmatch(value.strip()):
        return f"{value.strip()} parameters"  # `Frozen: 85,017,600` is a parameter count
    number = _float(value)
    if number is not None:
        if number < 1:
            return None
        unit = _FREEZE_COUNTS.get(key, what or "layers")
        return f"{number:g} {unit}"
    numbers = _float_list(value)
    if numbers or re.fullmatch(r"[\[(]?\s*[\w.]+(?:\s*,\s*[\w.]+)*\s*[\])]?", value):
        return f"{what or 'layers'} {value.strip('[]()')}".strip()
    return None


def _frozen(meta: RunMeta, name: str, how: str, where: LogLine) -> None:
    if any((f.name, f.how) == (name, how) or f.where == where for f in meta.frozen_layers):
        return  # one fact per line (`Frozen: 85,017,600` is both a setting and a message)
    meta.frozen_layers.append(FrozenLayer(name, how, where))
    meta.where.setdefault("frozen_layers", where)


def _bn_flag(meta: RunMeta, name: str, where: LogLine) -> None:
    if any(b.name == name for b in meta.batchnorm_flags):
        return
    meta.batchnorm_flags.append(BatchNormLayer(name, "train", True, where, source="flag"))
    meta.where.setdefault("batchnorm_flags", where)


def _bn_layers(meta: RunMeta, name: str, where: LogLine | None) -> None:
    """The net has BatchNorm, stated by a setting (not by its layers, which only Caffe's prototxt lists)."""
    if meta.batchnorm:
        return
    meta.batchnorm.append(BatchNormLayer(name, "any", None, where, source="setting"))
    if where is not None:
        meta.where.setdefault("batchnorm", where)


def states_no_batchnorm(meta: RunMeta) -> bool:
    """The settings say the net has no BatchNorm: `batch_norm: false`, or a LayerNorm architecture."""
    if meta.batchnorm:
        return False
    off = any(_bn_off(key.rsplit(".", 1)[-1], value) for key, value in meta.hyperparams.items())
    return off or bool(meta.net_name and _NO_BN_ARCH.search(meta.net_name))


def _bn_off(key: str, value: str) -> bool:
    """The setting `key: value` says the net has no BatchNorm (`batch_norm: false`)."""
    return key.lower().replace("-", "_") in _BN_ON_KEYS and value.strip().strip("'\"").lower() in _FALSE


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _float_list(value: str) -> list[float]:
    """`[123.675, 116.28, 103.53]`, `(0.5,)`, `0.5`, `16 32 32` -> floats; [] when anything else is in
    the text."""
    text = value.strip().strip("[]()").strip()
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    if not parts or not all(re.fullmatch(_NUMBER, p) for p in parts):
        return []
    return [float(p) for p in parts]
