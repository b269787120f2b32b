"""Caffe solver and net parameters (parsed text-format messages) -> RunMeta facts.

Used both for the parameter dumps in a glog log ("Initializing solver from parameters:", one
"Initializing net from parameters:" per phase) and for prototxt files uploaded beside the log.
Every fact is stored with the exact line that states it, so a diagnosis can quote it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from parsers.model import BatchNormLayer, FrozenLayer, LogLine, RunMeta, WeightFiller
from parsers.prototxt import Field, Message

# Keys only a SolverParameter has (a NetParameter has `layer`, `input`, `state`, ...).
_SOLVER_KEYS = {
    "base_lr",
    "lr_policy",
    "max_iter",
    "solver_type",
    "test_iter",
    "test_interval",
    "snapshot_prefix",
    "solver_mode",
    "net",
    "train_net",
    "net_param",
    "train_net_param",
    "iter_size",
    "average_loss",
    "clip_gradients",
    "stepsize",
    "stepvalue",
}

_SOLVER_SCALARS: dict[str, type] = {
    "base_lr": float,
    "momentum": float,
    "weight_decay": float,
    "iter_size": int,
    "max_iter": int,
    "average_loss": int,
    "display": int,
    "test_interval": int,
}

# Learning-rate schedule parameters (BVLC) and warm-up/ramp-up fields of forks (NVCaffe
# rampup_interval/rampup_lr/min_lr, Intel Caffe warmup_iter/warmup_start_lr, ...).
_LR_PARAM_KEYS = {"gamma", "stepsize", "stepvalue", "power"}
_LR_FORK_PARAM = re.compile(r"warm|ramp_?up|min_lr|max_lr|cycle", re.IGNORECASE)
_INTEGER_PARAM = re.compile(r"stepsize|stepvalue|max_iter|interval|_iter$|iters?$")

# V1 `layers { type: ENUM }` -> the layer type names of the current format (upgrade_proto.cpp).
_V1_LAYER_TYPES = {
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DATA": "Data",
    "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

Quote = Callable[[int], LogLine]  # line number -> that line, quoted

_DATA_TYPES = {"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "Input", "DummyData", "Python"}
_SHAPED_INPUTS = {"Input", "DummyData"}


def is_solver(msg: Message) -> bool:
    keys = {f.key for f in msg.fields}
    return bool(keys & _SOLVER_KEYS) and not keys & {"layer", "layers"}


def is_net(msg: Message) -> bool:
    keys = {f.key for f in msg.fields}
    return bool(keys & {"layer", "layers"}) or ("input" in keys and bool(keys & {"input_dim", "input_shape"}))


def solver_facts(msg: Message, meta: RunMeta, source: str) -> None:
    """Fill the optimisation facts of a SolverParameter (and the net facts of an embedded
    net_param). Facts already known in `meta` are kept."""

    def at(f: Field) -> LogLine:
        return LogLine(source, f.line, msg.line_text(f.line))

    for key, kind in _SOLVER_SCALARS.items():
        f = msg.find(key)
        number = msg.get_float(key)
        if f is not None and number is not None and (kind is float or math.isfinite(number)):
            meta.set(key, kind(number), at(f))
    clip = msg.find("clip_gradients")
    clip_value = msg.get_float("clip_gradients")
    if clip is not None and clip_value is not None and clip_value > 0:  # Caffe: negative = off
        meta.set("clip_gradients", clip_value, at(clip))

    policy = msg.find("lr_policy")
    if policy is not None and isinstance(policy.value, str):
        meta.set("lr_policy", policy.value.lower(), at(policy))
    lr_params, first_param = _lr_params(msg, (msg.get_str("lr_policy") or "").lower())
    if lr_params and first_param is not None:
        meta.set("lr_params", lr_params, at(first_param))

    optimizer = msg.find("type") or msg.find("solver_type")
    if optimizer is not None and isinstance(optimizer.value, str):
        meta.set("optimizer", optimizer.value.lower(), at(optimizer))
    else:
        meta.set("optimizer", "sgd")  # Caffe's default solver when neither field is set

    weights = msg.find("weights")
    if weights is not None and isinstance(weights.value, str) and weights.value:
        meta.set("pretrained", True, at(weights))
        meta.set("pretrained_from", weights.value, at(weights))

    echoed: dict[str, list[str]] = {}
    for f in msg.fields:
        if not isinstance(f.value, Message):
            echoed.setdefault(f.key, []).append(f.value if isinstance(f.value, str) else f.raw)
    for key, texts in echoed.items():
        meta.hyperparams.setdefault(key, ", ".join(texts))
    _record_comments(msg, meta, source)

    for key, phase in (("net_param", None), ("train_net_param", "train"), ("test_net_param", "test")):
        for net in msg.messages(key):
            net_facts(net, meta, source, phase)


def _lr_params(msg: Message, policy: str) -> tuple[dict[str, object], Field | None]:
    """Schedule parameters (ints for iteration counts, `stepvalue` always a list) and the first
    field that gave one."""
    params: dict[str, object] = {}
    first: Field | None = None
    for f in msg.fields:
        poly_end = (f.key, policy) == ("max_iter", "poly")
        wanted = f.key in _LR_PARAM_KEYS or _LR_FORK_PARAM.search(f.key) or poly_end
        if not wanted or not isinstance(f.value, float):
            continue
        whole = _INTEGER_PARAM.search(f.key) and math.isfinite(f.value)
        value: object = int(f.value) if whole else f.value
        if f.key == "stepvalue":
            params.setdefault("stepvalue", []).append(value)  # type: ignore[union-attr]
        else:
            params.setdefault(f.key, value)
        first = first or f
    return params, first


@dataclass
class _Layer:
    msg: Message
    line: int  # the `layer {` line
    name: str
    type: str  # current-format type name (V1 enums translated)
    phase: str  # train, test or any

    @property
    def name_line(self) -> int:
        return self.msg.line_of("name") or self.line

    def params(self) -> list[tuple[str, Message]]:
        """The `*_param { ... }` blocks of the layer."""
        return [
            (f.key, f.value)
            for f in self.msg.fields
            if f.key.endswith("_param") and isinstance(f.value, Message)
        ]

    def param(self, key: str) -> Message | None:
        found = self.msg.messages(key)
        return found[0] if found else None

    @property
    def is_weight_layer(self) -> bool:
        return self.type == "InnerProduct" or "convolution" in self.type.lower()  # + Deconvolution, forks

    @property
    def is_loss(self) -> bool:
        """A *Loss layer, or any layer given a loss_weight (Python loss layers)."""
        return self.type.lower().endswith("loss") or (self.msg.get_float("loss_weight") or 0.0) > 0

    @property
    def is_data(self) -> bool:
        return (
            self.type in _DATA_TYPES
            or self.type.endswith("Data")
            or any(key.endswith("data_param") for key, _ in self.params())
        )


def net_phase(msg: Message) -> str | None:
    """'train' or 'test' when the net was printed for one phase (`state { phase: TRAIN }`)."""
    for state in msg.messages("state"):
        phase = (state.get_str("phase") or "").lower()
        if phase in ("train", "test"):
            return phase
    return None


def net_facts(msg: Message, meta: RunMeta, source: str, phase: str | None = None) -> None:
    """Fill the model facts of a NetParameter. `phase` is the phase the log printed the net for;
    None reads `state { phase }` from the message, else (a train_val.prototxt) each layer's
    include/exclude rule decides. Facts already known in `meta` are kept; BatchNorm layers are
    added per (name, phase).

    A dump cut before its loss layer (glog truncates long messages) gives no num_classes or loss
    facts, since its last layers are not the classifier; its depth counts the layers seen."""
    phase = phase or net_phase(msg)
    layers = _layers(msg, phase)

    def at(line: int) -> LogLine:
        return LogLine(source, line, msg.line_text(line))

    name = msg.find("name")
    if name is not None and isinstance(name.value, str):
        meta.set("net_name", name.value, at(name.line))
    _record_comments(msg, meta, source)

    known_bn = {(bn.name, bn.phase) for bn in meta.batchnorm}
    for layer in layers:
        if layer.type == "BatchNorm" and (layer.name, layer.phase) not in known_bn:
            bn_param = layer.param("batch_norm_param")
            flag = bn_param.find("use_global_stats") if bn_param else None
            use_global = bn_param.get_bool("use_global_stats") if bn_param and flag else None
            line = flag.line if flag else layer.name_line
            meta.batchnorm.append(BatchNormLayer(layer.name, layer.phase, use_global, at(line)))

    # The layers of the phase being trained (all of them in a net printed for the TEST phase).
    active = [layer for layer in layers if layer.phase != "test"] if phase != "test" else layers
    losses = [i for i, layer in enumerate(active) if layer.is_loss]
    main_loss = _main_loss(active, losses)
    _input_facts(msg, active, meta, at, training=phase != "test", has_loss=bool(losses))
    fed_by_data = any(layer.is_data and layer.type not in _SHAPED_INPUTS for layer in active)
    complete = not msg.truncated and (main_loss is not None or not fed_by_data)
    if complete and main_loss is not None:
        _loss_facts(active[main_loss], meta, at)
    if complete:
        _classes(active, main_loss, meta, at)

    weight_layers = [layer for layer in active if layer.is_weight_layer]
    if phase != "test":
        _frozen_layers(weight_layers, meta, at)
    if weight_layers:
        meta.set("depth", len(weight_layers))
        meta.set("layer_widths", [w for layer in weight_layers if (w := _num_output(layer))])
        meta.set("weight_fillers", [f for layer in weight_layers if (f := _filler(layer, at))])
    residual = next((layer for layer in active if _is_shortcut(layer)), None)
    if residual is not None or (complete and active):
        meta.set("has_residual", residual is not None, at(residual.name_line) if residual else None)


def _layers(msg: Message, phase: str | None) -> list[_Layer]:
    out = []
    for f in msg.fields:
        if f.key not in ("layer", "layers") or not isinstance(f.value, Message):
            continue
        layer_type = f.value.get_str("type") or ""
        if f.key == "layers":
            layer_type = _V1_LAYER_TYPES.get(layer_type.upper(), layer_type)
        layer_phase = _layer_phase(f.value)
        if phase is not None:
            if layer_phase not in ("any", phase):
                continue  # not part of the net the log printed for this phase
            layer_phase = phase
        out.append(_Layer(f.value, f.line, f.value.get_str("name") or "", layer_type, layer_phase))
    return out


def _layer_phase(layer: Message) -> str:
    included = {(rule.get_str("phase") or "").lower() for rule in layer.messages("include")} - {""}
    excluded = {(rule.get_str("phase") or "").lower() for rule in layer.messages("exclude")} - {""}
    if len(included) == 1:
        return included.pop()
    if len(excluded) == 1:
        return "test" if excluded == {"train"} else "train"
    return "any"


def _main_loss(layers: list[_Layer], losses: list[int]) -> int | None:
    """The loss with the largest loss_weight (GoogLeNet's aux heads weigh 0.3, a center loss
    0.008); the last one on ties."""
    if not losses:
        return None
    return max(losses, key=lambda i: (layers[i].msg.get_float("loss_weight", 1.0) or 0.0, i))


def _input_facts(
    msg: Message, layers: list[_Layer], meta: RunMeta, at: Quote, training: bool, has_loss: bool
) -> None:
    """Transform, batch size, channels and input size of the first data layer of the phase, or of
    the net's own `input_dim`/`input_shape` (deploy nets). A deploy net's input batch (no loss
    layer) is not a training batch size."""
    data = [layer for layer in layers if layer.is_data]
    first = data[0] if data else None
    holders = [p for p in (layer.param("transform_param") for layer in data) if p is not None][:1]
    if first is not None:  # V1 nets kept scale/mean_file/crop_size in the data layer's own param
        holders += [
            p for _, p in first.params() if p.find("scale") or p.find("mean_file") or p.find("crop_size")
        ]
    for holder in holders:
        for key, name in (("scale", "input_scale"), ("mean_file", "mean_file"), ("crop_size", "crop_size")):
            f = holder.find(key)
            if f is not None and not isinstance(f.value, Message):
                meta.set(name, holder.get_int(key) if key == "crop_size" else f.value, at(f.line))
        means = [v for v in holder.get_all("mean_value") if isinstance(v, float)]
        if means:
            meta.set("mean_value", means, at(holder.line_of("mean_value")))
        if holder.get_bool("force_gray"):
            meta.set("input_channels", 1, at(holder.line_of("force_gray")))
        elif holder.get_bool("force_color"):
            meta.set("input_channels", 3, at(holder.line_of("force_color")))
    if meta.crop_size:
        meta.set("input_size", meta.crop_size, meta.where.get("crop_size"))

    if first is not None and first.type not in _SHAPED_INPUTS:
        for _, param in first.params():
            if training and param.get_int("batch_size"):
                meta.set("batch_size", param.get_int("batch_size"), at(param.line_of("batch_size")))
            if param.get_bool("is_color") is False:
                meta.set("input_channels", 1, at(param.line_of("is_color")))
            if param.get_int("channels"):
                meta.set("input_channels", param.get_int("channels"), at(param.line_of("channels")))
            if param.get_int("new_height"):
                meta.set("input_size", param.get_int("new_height"), at(param.line_of("new_height")))
    shape, shape_line = _input_shape(msg, first)
    if shape_line is not None:
        if training and has_loss:
            meta.set("batch_size", shape[0], at(shape_line))
        if len(shape) > 1:
            meta.set("input_channels", shape[1], at(shape_line))
        if len(shape) > 2:
            meta.set("input_size", shape[2], at(shape_line))


def _input_shape(msg: Message, layer: _Layer | None) -> tuple[list[int], int | None]:
    """Dimensions (N, C, H, W) of an Input/DummyData layer or of the net's own inputs."""
    shapes: list[Message] = []
    if layer is not None and layer.type in _SHAPED_INPUTS:
        for _, param in layer.params():
            shapes += param.messages("shape")
    elif layer is None:
        dims = msg.find("input_dim")
        if dims is not None:
            return [int(v) for v in msg.get_all("input_dim") if isinstance(v, float)], dims.line
        shapes = msg.messages("input_shape")
    if not shapes:
        return [], None
    dims = shapes[0].find("dim")
    values = [int(v) for v in shapes[0].get_all("dim") if isinstance(v, float)]
    return values, dims.line if dims else None


def _loss_facts(loss: _Layer, meta: RunMeta, at: Quote) -> None:
    meta.set("loss_type", loss.type, at(loss.msg.line_of("type") or loss.line))
    loss_param = loss.param("loss_param")
    if loss_param is None:
        return
    normalize = loss_param.find("normalize")
    if normalize is not None and loss_param.get_bool("normalize") is not None:
        meta.set("loss_normalize", loss_param.get_bool("normalize"), at(normalize.line))
    normalization = loss_param.find("normalization")
    if normalization is not None and isinstance(normalization.value, str):
        meta.set("loss_normalization", normalization.value, at(normalization.line))


def _classes(layers: list[_Layer], main_loss: int | None, meta: RunMeta, at: Quote) -> None:
    """C = the loss's own num_classes (SSD MultiBoxLoss) or the num_output of the last weight
    layer before the loss (the whole net for a deploy net without a loss)."""
    if main_loss is not None:
        for _, param in layers[main_loss].params():
            classes = param.find("num_classes")
            if classes is not None and param.get_int("num_classes"):
                meta.set("num_classes", param.get_int("num_classes"), at(classes.line))
                return
    before = layers if main_loss is None else layers[:main_loss]
    for layer in reversed(before):
        if not layer.is_weight_layer:
            continue
        for _, param in layer.params():
            outputs = param.find("num_output")
            if outputs is not None and param.get_int("num_output"):
                meta.set("num_classes", param.get_int("num_output"), at(outputs.line))
                return


def _num_output(layer: _Layer) -> int | None:
    """A weight layer's outputs (channels or units), when its parameters state them."""
    for _, param in layer.params():
        if param.get_int("num_output"):
            return param.get_int("num_output")
    return None


def _filler(layer: _Layer, at: Quote) -> WeightFiller | None:
    for _, param in layer.params():
        for filler in param.messages("weight_filler"):
            kind = filler.get_str("type") or "constant"  # FillerParameter's default type
            std = filler.get_float("std")
            if std is None and kind == "gaussian":
                std = 1.0  # FillerParameter's default std
            line = filler.line_of("type") or param.line_of("weight_filler") or layer.line
            return WeightFiller(layer.name, kind, std, at(line))
    return None


# Fillers that make a layer a fixed operation (FCN's bilinear upsampling, an averaging kernel): such
# a layer is meant to keep lr_mult 0.
_FIXED_OP_FILLERS = {"bilinear", "constant"}


def _frozen_layers(layers: list[_Layer], meta: RunMeta, at: Quote) -> None:
    """Weight layers of the TRAIN net whose weights get no update: the first `param { lr_mult: 0 }`
    (V1: `blobs_lr: 0`). A Deconvolution with an explicit bilinear/constant filler is a fixed
    upsampling, and an explicit bilinear filler anywhere a fixed operation: both are left out."""
    known = {f.name for f in meta.frozen_layers if f.how == "lr_mult_0"}
    for layer in layers:
        if layer.name in known:
            continue
        params = layer.msg.messages("param")
        if params and params[0].find("lr_mult") is not None:
            lr_mult, line = params[0].get_float("lr_mult"), params[0].line_of("lr_mult")
        elif layer.msg.find("blobs_lr") is not None:
            lr_mult, line = _as_number(layer.msg.get_all("blobs_lr")[0]), layer.msg.line_of("blobs_lr")
        else:
            continue
        if lr_mult != 0:
            continue
        filler = next((f for _, p in layer.params() for f in p.messages("weight_filler")), None)
        kind = (filler.get_str("type") or "constant").lower() if filler is not None else None
        if kind == "bilinear" or (kind in _FIXED_OP_FILLERS and layer.type == "Deconvolution"):
            continue
        meta.frozen_layers.append(FrozenLayer(layer.name, "lr_mult_0", at(line or layer.name_line)))
        meta.where.setdefault("frozen_layers", at(line or layer.name_line))
        known.add(layer.name)


def _as_number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _is_shortcut(layer: _Layer) -> bool:
    """An element-wise sum (Eltwise defaults to SUM; PROD and MAX are gates and maxout units)."""
    if layer.type != "Eltwise":
        return False
    param = layer.param("eltwise_param")
    operation = (param.get_str("operation") if param else None) or "SUM"
    return operation.upper() == "SUM"


def _record_comments(msg: Message, meta: RunMeta, source: str) -> None:
    """Every comment line of the config, quoted whole (`base_lr: 1e-4  # lr for unnormalized softmax`)."""
    known = {(c.source, c.line) for c in meta.comments}
    for line, _ in msg.comments:
        if (source, line) not in known:
            meta.comments.append(LogLine(source, line, msg.line_text(line)))
            known.add((source, line))
