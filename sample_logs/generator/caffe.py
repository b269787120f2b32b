"""A small BVLC Caffe 1.0 in PyTorch: it builds the net from the same layer dicts that are printed as the
prototxt, trains it with Caffe's own semantics (SGD update with history, lr policies, lr/decay mults,
BatchNorm blobs with use_global_stats, SoftmaxWithLoss -log(max(p, FLT_MIN)) and its normalization,
Accuracy counting, average_loss smoothing, test passes) and writes the glog lines `caffe train` writes.

Every number in the log comes from the computation; only the glog plumbing (thread id, timestamps offset
from a fixed start date by the real elapsed time) is formatted here. File:line tags are those of BVLC
Caffe 1.0 as seen in a 2018 log (solver.cpp:218 Iteration, solver.cpp:237 Train net output, ...).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import ImageSet
from .prototxt import Enum, cpp, text_lines

FLT_MIN = float(np.finfo(np.float32).tiny)
LOSS_TYPES = {"SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss"}


class Glog:
    """glog lines `I1124 10:15:03.123456  1234 file.cpp:123] msg`, time = start + real elapsed time."""

    def __init__(self, path: Path, start: datetime):
        self.fh = path.open("w", encoding="utf-8")
        self.start = start
        self.t0 = time.perf_counter()
        self.tid = threading.get_native_id() % 100000

    def _prefix(self, level: str, where: str) -> str:
        now = self.start + timedelta(seconds=time.perf_counter() - self.t0)
        return f"{level}{now:%m%d %H:%M:%S}.{now.microsecond:06d} {self.tid:5d} {where}] "

    def info(self, where: str, msg: str) -> None:
        self.fh.write(self._prefix("I", where) + msg + "\n")

    def raw(self, text: str) -> None:
        self.fh.write(text + "\n")

    def close(self) -> None:
        self.fh.close()


# --- layers -------------------------------------------------------------------------------------------


def fill(blob: torch.Tensor, filler: dict | None) -> None:
    """Caffe's fillers (FillerParameter defaults: constant 0, gaussian std 1, xavier/msra FAN_IN)."""
    filler = filler or {}
    kind = filler.get("type", "constant")
    shape = blob.shape
    fan_in = blob.numel() / shape[0]
    fan_out = blob.numel() / shape[1] if len(shape) > 1 else fan_in
    norm = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}
    n = norm[str(filler.get("variance_norm", "FAN_IN"))]
    with torch.no_grad():
        if kind == "constant":
            blob.fill_(float(filler.get("value", 0.0)))
        elif kind == "gaussian":
            blob.normal_(float(filler.get("mean", 0.0)), float(filler.get("std", 1.0)))
        elif kind == "uniform":
            blob.uniform_(float(filler.get("min", 0.0)), float(filler.get("max", 1.0)))
        elif kind == "xavier":
            scale = math.sqrt(3.0 / n)
            blob.uniform_(-scale, scale)
        elif kind == "msra":
            blob.normal_(0.0, math.sqrt(2.0 / n))
        elif kind == "bilinear":
            k = shape[-1]
            f = math.ceil(k / 2.0)
            c = (2 * f - 1 - f % 2) / (2.0 * f)
            xs = 1 - torch.abs(torch.arange(k, dtype=torch.float32) / f - c)
            blob.copy_((xs[None, :] * xs[:, None]).expand_as(blob))
        else:
            raise ValueError(kind)


class Layer:
    """One Caffe layer: `p` is its LayerParameter dict; blobs are shared with the test net by name."""

    def __init__(self, p: dict):
        self.p = p
        self.name: str = p["name"]
        self.type: str = p["type"]
        self.blobs: list[torch.Tensor] = []

    def param_specs(self) -> list[dict]:
        specs = self.p.get("param", [])
        specs = specs if isinstance(specs, list) else [specs]
        return [specs[i] if i < len(specs) else {} for i in range(len(self.blobs))]

    def loss_weight(self) -> float:
        return float(self.p.get("loss_weight", 1.0 if self.type in LOSS_TYPES else 0.0))

    def forward(self, bottoms: list[torch.Tensor], phase: str, dry: bool) -> list[torch.Tensor]:
        raise NotImplementedError


class Convolution(Layer):
    def __init__(self, p: dict, in_channels: int):
        super().__init__(p)
        cp = p["convolution_param"]
        self.k, self.stride = int(cp["kernel_size"]), int(cp.get("stride", 1))
        self.pad, self.group = int(cp.get("pad", 0)), int(cp.get("group", 1))
        out = int(cp["num_output"])
        deconv = self.type == "Deconvolution"
        shape = (in_channels, out // self.group) if deconv else (out, in_channels // self.group)
        w = torch.empty(*shape, self.k, self.k)
        fill(w, cp.get("weight_filler"))
        self.blobs = [torch.nn.Parameter(w)]
        if cp.get("bias_term", True):
            b = torch.empty(out)
            fill(b, cp.get("bias_filler"))
            self.blobs.append(torch.nn.Parameter(b))

    def forward(self, bottoms, phase, dry):
        bias = self.blobs[1] if len(self.blobs) > 1 else None
        fn = F.conv_transpose2d if self.type == "Deconvolution" else F.conv2d
        return [fn(bottoms[0], self.blobs[0], bias, self.stride, self.pad, groups=self.group)]


class InnerProduct(Layer):
    def __init__(self, p: dict, in_features: int):
        super().__init__(p)
        ip = p["inner_product_param"]
        w = torch.empty(int(ip["num_output"]), in_features)
        fill(w, ip.get("weight_filler"))
        self.blobs = [torch.nn.Parameter(w)]
        if ip.get("bias_term", True):
            b = torch.empty(int(ip["num_output"]))
            fill(b, ip.get("bias_filler"))
            self.blobs.append(torch.nn.Parameter(b))

    def forward(self, bottoms, phase, dry):
        bias = self.blobs[1] if len(self.blobs) > 1 else None
        return [F.linear(bottoms[0].flatten(1), self.blobs[0], bias)]


class BatchNorm(Layer):
    """Caffe BatchNorm: blobs mean, variance, moving-average factor (all 0 at start). With
    use_global_stats (default: TEST phase) it normalises with mean/factor and var/factor; from
    zero blobs that is x / sqrt(0 + eps)."""

    def __init__(self, p: dict, channels: int):
        super().__init__(p)
        self.blobs = [torch.zeros(channels), torch.zeros(channels), torch.zeros(1)]

    def forward(self, bottoms, phase, dry):
        bp = self.p.get("batch_norm_param", {})
        x = bottoms[0]
        eps = float(bp.get("eps", 1e-5))
        maf = float(bp.get("moving_average_fraction", 0.999))
        global_stats = bool(bp.get("use_global_stats", phase == "TEST"))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if global_stats:
            sf = float(self.blobs[2][0])
            factor = 0.0 if sf == 0 else 1.0 / sf
            mean, var = self.blobs[0] * factor, self.blobs[1] * factor
            return [(x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)]
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dim=dims)
        var = ((x - mean.view(shape)) ** 2).mean(dim=dims)
        if not dry:
            m = x.numel() // x.shape[1]
            with torch.no_grad():
                self.blobs[2].mul_(maf).add_(1.0)
                self.blobs[0].mul_(maf).add_(mean.detach())
                self.blobs[1].mul_(maf).add_(var.detach() * (m / (m - 1) if m > 1 else 1.0))
        return [(x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)]


class Scale(Layer):
    def __init__(self, p: dict, channels: int):
        super().__init__(p)
        sp = p.get("scale_param", {})
        w = torch.empty(channels)
        fill(w, sp.get("filler", {"type": "constant", "value": 1.0}))
        self.blobs = [torch.nn.Parameter(w)]
        if sp.get("bias_term", False):
            b = torch.empty(channels)
            fill(b, sp.get("bias_filler"))
            self.blobs.append(torch.nn.Parameter(b))

    def forward(self, bottoms, phase, dry):
        x = bottoms[0]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = x * self.blobs[0].view(shape)
        return [y + self.blobs[1].view(shape) if len(self.blobs) > 1 else y]


class Elementwise(Layer):
    """ReLU / TanH / Sigmoid / Dropout / Softmax / Split / Eltwise SUM / Crop / Pooling."""

    def forward(self, bottoms, phase, dry):
        x = bottoms[0]
        if self.type == "ReLU":
            return [F.leaky_relu(x, float(self.p.get("relu_param", {}).get("negative_slope", 0.0)))]
        if self.type == "TanH":
            return [torch.tanh(x)]
        if self.type == "Sigmoid":
            return [torch.sigmoid(x)]
        if self.type == "Dropout":
            ratio = float(self.p.get("dropout_param", {}).get("dropout_ratio", 0.5))
            return [F.dropout(x, ratio, training=phase == "TRAIN" and not dry)]
        if self.type == "Softmax":
            return [torch.softmax(x, dim=1)]
        if self.type == "Split":
            return [x for _ in self.p["top"]]
        if self.type == "Eltwise":
            return [sum(bottoms[1:], bottoms[0])]
        if self.type == "Crop":
            cp = self.p.get("crop_param", {})
            off = int(cp.get("offset", 0))
            h, w = bottoms[1].shape[2:]
            return [x[:, :, off : off + h, off : off + w]]
        if self.type == "Pooling":
            pp = self.p["pooling_param"]
            if pp.get("global_pooling"):
                return [x.mean(dim=(2, 3), keepdim=True)]
            k, s, pad = int(pp["kernel_size"]), int(pp.get("stride", 1)), int(pp.get("pad", 0))
            if str(pp.get("pool", "MAX")) == "MAX":
                return [F.max_pool2d(x, k, s, pad, ceil_mode=True)]
            return [F.avg_pool2d(x, k, s, pad, ceil_mode=True)]
        raise ValueError(self.type)


class SoftmaxWithLoss(Layer):
    """loss = sum(-log(max(p, FLT_MIN))) / normalizer; the gradient is Caffe's (p - onehot) / normalizer,
    which does not see the clamp (the straight-through term below)."""

    def forward(self, bottoms, phase, dry):
        logits, label = bottoms
        lp = self.p.get("loss_param", {})
        label = label.reshape(logits.shape[0], *logits.shape[2:]).long()
        ignore = lp.get("ignore_label")
        valid = torch.ones_like(label, dtype=torch.bool) if ignore is None else label != int(ignore)
        safe = torch.where(valid, label, torch.zeros_like(label))
        logp = torch.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        prob = torch.softmax(logits.detach(), dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        clamped = -torch.log(torch.clamp(prob, min=FLT_MIN))
        ce_sum = -(logp * valid).sum()
        value_sum = (clamped * valid).sum()
        if "normalization" in lp:
            mode = str(lp["normalization"])
        elif "normalize" in lp:
            mode = "VALID" if lp["normalize"] else "BATCH_SIZE"
        else:
            mode = "VALID"
        normalizer = {
            "FULL": label.numel(),
            "VALID": int(valid.sum()),
            "BATCH_SIZE": logits.shape[0],
            "NONE": 1,
        }[mode]
        normalizer = max(1.0, float(normalizer))
        # value of the clamped loss, gradient of the plain cross-entropy (no float cancellation)
        return [(value_sum.detach() + (ce_sum - ce_sum.detach())) / normalizer]


class Accuracy(Layer):
    """Caffe's count: correct when fewer than top_k scores are >= the true class score (so NaN scores
    count as correct and all-equal scores as wrong)."""

    def forward(self, bottoms, phase, dry):
        scores, label = bottoms
        top_k = int(self.p.get("accuracy_param", {}).get("top_k", 1))
        label = label.reshape(-1).long()
        scores = scores.detach().reshape(scores.shape[0], -1)
        true = scores.gather(1, label.unsqueeze(1))
        better = (scores >= true).sum(dim=1) - 1
        return [(better < top_k).float().mean()]


class Data(Layer):
    """Reads an ImageSet in order like an LMDB cursor; transform = crop, mirror, (x - mean) * scale."""

    def __init__(self, p: dict, dbs: dict[str, ImageSet], rng: np.random.Generator, phase: str, log: Glog):
        super().__init__(p)
        dp = p["data_param"]
        self.db = dbs[dp["source"]]
        self.batch = int(dp["batch_size"])
        self.cursor = 0
        self.rng = rng
        self.phase = phase
        self.log = log
        tp = p.get("transform_param", {})
        self.tp = tp
        self.mean = None
        if "mean_file" in tp:
            # the mean image of the set the mean file was computed from (compute_image_mean on train)
            self.mean = dbs.get(tp["mean_file"], self.db).images.astype(np.float32).mean(axis=0)
        elif "mean_value" in tp:
            mv = tp["mean_value"] if isinstance(tp["mean_value"], list) else [tp["mean_value"]]
            self.mean = np.array(mv, np.float32).reshape(-1, 1, 1)
        self.is_label_db = self.db.labels.ndim > 1 and len(p["top"]) == 1 and p["top"][0] == "label"

    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.db.images.shape[1:]
        if self.is_label_db:
            c = 1
        crop = int(self.tp.get("crop_size", 0))
        return (self.batch, c, crop or h, crop or w)

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        idx = []
        for _ in range(self.batch):
            idx.append(self.cursor)
            self.cursor += 1
            if self.cursor >= len(self.db):
                self.cursor = 0
                self.log.info("data_layer.cpp:73", "Restarting data prefetching from start.")
        return self.db.images[idx].astype(np.float32), self.db.labels[idx]

    def forward(self, bottoms, phase, dry):
        shape = self.out_shape()
        if dry:
            outs = [torch.zeros(shape), torch.zeros(shape[0])][: len(self.p["top"])]
            return outs
        images, labels = self.next_batch()
        if self.is_label_db:
            return [torch.from_numpy(labels[:, None].astype(np.float32))]
        crop = int(self.tp.get("crop_size", 0))
        h, w = images.shape[2:]
        mean = self.mean
        out = np.empty((len(images), images.shape[1], crop or h, crop or w), np.float32)
        for i, img in enumerate(images):
            m = mean
            if crop:
                if phase == "TRAIN":
                    y0, x0 = int(self.rng.integers(0, h - crop + 1)), int(self.rng.integers(0, w - crop + 1))
                else:
                    y0, x0 = (h - crop) // 2, (w - crop) // 2
                img = img[:, y0 : y0 + crop, x0 : x0 + crop]
                if m is not None and m.shape[1] > 1:
                    m = m[:, y0 : y0 + crop, x0 : x0 + crop]
            if self.tp.get("mirror") and phase == "TRAIN" and self.rng.integers(0, 2):
                img = img[:, :, ::-1]
                if m is not None and m.shape[2] > 1:
                    m = m[:, :, ::-1]
            if m is not None:
                img = img - m
            out[i] = img * float(self.tp.get("scale", 1.0))
        outs = [torch.from_numpy(out)]
        if len(self.p["top"]) > 1:
            outs.append(torch.from_numpy(labels.astype(np.float32)))
        return outs


# --- nets ---------------------------------------------------------------------------------------------


def phase_ok(layer: dict, phase: str) -> bool:
    include = layer.get("include")
    if include:
        rules = include if isinstance(include, list) else [include]
        return any(str(r.get("phase", phase)) == phase for r in rules)
    exclude = layer.get("exclude")
    rules = exclude if isinstance(exclude, list) else ([exclude] if exclude else [])
    return not any(str(r.get("phase")) == phase for r in rules)


def insert_splits(layers: list[dict]) -> list[dict]:
    """Caffe's InsertSplits: a blob read by several layers gets a Split layer after its producer."""
    last_top: dict[str, tuple[int, int]] = {}
    source_of: dict[tuple[int, int], tuple[int, int]] = {}
    consumers: dict[tuple[int, int], int] = {}
    for i, layer in enumerate(layers):
        for j, b in enumerate(layer.get("bottom", [])):
            src = last_top[b]
            source_of[(i, j)] = src
            consumers[src] = consumers.get(src, 0) + 1
        for j, t in enumerate(layer.get("top", [])):
            last_top[t] = (i, j)
    used: dict[tuple[int, int], int] = {}
    out: list[dict] = []
    for i, layer in enumerate(layers):
        new = dict(layer)
        bottoms = list(layer.get("bottom", []))
        for j, b in enumerate(bottoms):
            src = source_of[(i, j)]
            if consumers.get(src, 0) > 1:
                k = used.get(src, 0)
                used[src] = k + 1
                bottoms[j] = f"{b}_{layers[src[0]]['name']}_{src[1]}_split_{k}"
        if bottoms:
            new["bottom"] = bottoms
        out.append(new)
        for j, t in enumerate(layer.get("top", [])):
            n = consumers.get((i, j), 0)
            if n > 1:
                split = f"{t}_{layer['name']}_{j}_split"
                out.append(
                    {"name": split, "type": "Split", "bottom": [t], "top": [f"{split}_{k}" for k in range(n)]}
                )
    return out


@dataclass
class NetSpec:
    """What a prototxt says: the net param (name + layers with include rules)."""

    name: str
    layers: list[dict]
    file: str = "train_val.prototxt"

    def param(self) -> dict:
        return {"name": self.name, "layer": self.layers}


@dataclass
class Net:
    phase: str
    layers: list[Layer]
    blob_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    loss_weights: dict[str, float] = field(default_factory=dict)

    def forward(self, dry: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        blobs: dict[str, torch.Tensor] = {}
        loss = torch.zeros(())
        for layer in self.layers:
            bottoms = [blobs[b] for b in layer.p.get("bottom", [])]
            tops = layer.forward(bottoms, self.phase, dry)
            for name, value in zip(layer.p.get("top", []), tops, strict=True):
                blobs[name] = value
                w = self.loss_weights.get(name, 0.0)
                if w:
                    loss = loss + w * value
        return loss, {name: blobs[name] for name in self.outputs}

    def layer(self, name: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.name == name), None)


def build_net(
    spec: NetSpec,
    phase: str,
    state: dict,
    dbs: dict[str, ImageSet],
    rng: np.random.Generator,
    log: Glog,
    share_with: Net | None = None,
) -> Net:
    """Net::Init with its log lines; parameters are shared by layer name with `share_with` (the train
    net), as Caffe's test nets do."""
    filtered = []
    for layer in spec.layers:
        if phase_ok(layer, phase):
            filtered.append(layer)
        else:
            rule = layer.get("include") or layer.get("exclude")
            rule = rule[0] if isinstance(rule, list) else rule
            other = 1 if str(rule.get("phase")) == "TEST" else 0
            log.info(
                "net.cpp:294",
                f"The NetState phase ({0 if phase == 'TRAIN' else 1}) differed from the phase ({other}) "
                f"specified by a rule in layer {layer['name']}",
            )
    log.info("net.cpp:51", "Initializing net from parameters: ")
    for line in text_lines({"name": spec.name, "state": state, "layer": filtered}):
        log.raw(line)
    layers_p = insert_splits(filtered)
    net = Net(phase, [])
    shapes = net.blob_shapes
    memory = 0
    available: list[str] = []
    for p in layers_p:
        log.info("layer_factory.hpp:77", f"Creating layer {p['name']}")
        kind = p["type"]
        bottoms = p.get("bottom", [])
        in_shape = shapes[bottoms[0]] if bottoms else None
        if kind == "Data":
            log.info("db_lmdb.cpp:35", f"Opened lmdb {p['data_param']['source']}")
            layer: Layer = Data(p, dbs, rng, phase, log)
        elif kind in ("Convolution", "Deconvolution"):
            layer = Convolution(p, in_shape[1])
        elif kind == "InnerProduct":
            layer = InnerProduct(p, int(np.prod(in_shape[1:])))
        elif kind == "BatchNorm":
            layer = BatchNorm(p, in_shape[1])
        elif kind == "Scale":
            layer = Scale(p, in_shape[1])
        elif kind == "SoftmaxWithLoss":
            layer = SoftmaxWithLoss(p)
        elif kind == "Accuracy":
            layer = Accuracy(p)
        else:
            layer = Elementwise(p)
        if share_with is not None:
            src = share_with.layer(layer.name)
            if src is not None and len(src.blobs) == len(layer.blobs):
                layer.blobs = src.blobs
        log.info("net.cpp:84", f"Creating Layer {p['name']}")
        for b in bottoms:
            log.info("net.cpp:406", f"{p['name']} <- {b}")
            if b in available:
                available.remove(b)
        for t in p.get("top", []):
            if t in bottoms:
                log.info("net.cpp:367", f"{p['name']} -> {t} (in-place)")
            else:
                log.info("net.cpp:380", f"{p['name']} -> {t}")
        if kind == "Data":
            if "mean_file" in p.get("transform_param", {}):
                log.info(
                    "data_transformer.cpp:25", f"Loading mean file from: {p['transform_param']['mean_file']}"
                )
            log.info("data_layer.cpp:45", "output data size: " + ",".join(str(d) for d in layer.out_shape()))
        if kind == "SoftmaxWithLoss":
            log.info("layer_factory.hpp:77", f"Creating layer {p['name']}")
        with torch.no_grad():
            tops = layer.forward([torch.zeros(shapes[b]) for b in bottoms], phase, dry=True)
        log.info("net.cpp:122", f"Setting up {p['name']}")
        for t, value in zip(p.get("top", []), tops, strict=True):
            shapes[t] = tuple(value.shape)
            count = int(np.prod(value.shape)) if value.dim() else 1
            log.info("net.cpp:129", "Top shape: " + "".join(f"{d} " for d in value.shape) + f"({count})")
            if layer.loss_weight():
                log.info("net.cpp:132", f"    with loss weight {cpp(layer.loss_weight())}")
                net.loss_weights[t] = layer.loss_weight()
            memory += count
            available.append(t)
        log.info("net.cpp:137", f"Memory required for data: {memory * 4}")
        net.layers.append(layer)
    _log_backward(net, log)
    net.outputs = sorted(set(available))
    for name in net.outputs:
        log.info("net.cpp:242", f"This network produces output {name}")
    log.info("net.cpp:255", "Network initialization done.")
    return net


def _log_backward(net: Net, log: Glog) -> None:
    need: dict[str, bool] = {}
    layer_need = []
    for layer in net.layers:
        has_params = any(float(s.get("lr_mult", 1.0)) != 0 for s in layer.param_specs()) and not isinstance(
            layer, BatchNorm
        )
        n = has_params or any(need.get(b, False) for b in layer.p.get("bottom", []))
        for t in layer.p.get("top", []):
            need[t] = n
        layer_need.append(n)
    under_loss: set[str] = set()
    lines = []
    for layer, n in zip(reversed(net.layers), reversed(layer_need), strict=True):
        tops = layer.p.get("top", [])
        contributes = bool(layer.loss_weight()) or any(t in under_loss for t in tops)
        if contributes:
            under_loss.update(layer.p.get("bottom", []))
        if n and contributes:
            lines.append(("net.cpp:198", f"{layer.name} needs backward computation."))
        else:
            lines.append(("net.cpp:200", f"{layer.name} does not need backward computation."))
    for where, msg in lines:
        log.info(where, msg)


# --- solver -------------------------------------------------------------------------------------------


def learning_rate(sp: dict, it: int) -> float:
    base = float(sp["base_lr"])
    policy = sp["lr_policy"]
    gamma = float(sp.get("gamma", 0.0))
    if policy == "fixed":
        rate = base
    elif policy == "step":
        rate = base * gamma ** (it // int(sp["stepsize"]))
    elif policy == "multistep":
        steps = sp["stepvalue"] if isinstance(sp["stepvalue"], list) else [sp["stepvalue"]]
        rate = base * gamma ** sum(1 for s in steps if it >= int(s))
    elif policy == "poly":
        rate = base * (1.0 - it / int(sp["max_iter"])) ** float(sp["power"])
    elif policy == "inv":
        rate = base * (1.0 + gamma * it) ** (-float(sp["power"]))
    elif policy == "exp":
        rate = base * gamma**it
    else:
        raise ValueError(policy)
    return float(np.float32(rate))


@dataclass
class Snapshot:
    """A .caffemodel kept in memory: the train net's layer names (with splits) and their blobs."""

    file: str
    layers: list[tuple[str, list[torch.Tensor]]]


@dataclass
class CaffeRun:
    """One `caffe train` invocation."""

    solver: dict  # SolverParameter fields in proto order (incl. net: "...")
    net: NetSpec
    dbs: dict[str, ImageSet]
    out: Path
    seed: int
    start: datetime
    command: str | None = None  # a shell line printed before glog starts, like a launcher script does
    weights: Snapshot | None = None
    on_step: Callable[[int, Net], None] | None = None
    max_wall_seconds: float = 120.0
    stop_after_nan: int | None = None  # the user presses Ctrl-C this many iterations after the loss went NaN
    train: Net | None = None
    log: Glog | None = None
    snapshot: Snapshot | None = None
    losses: list[float] = field(default_factory=list)

    def run(self) -> CaffeRun:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        log = self.log = Glog(self.out, self.start)
        if self.command:
            log.raw(self.command)
        log.info("caffe.cpp:212", "Use CPU.")
        sp = dict(self.solver)
        sp["train_state"] = {"level": 0, "stage": ""}
        ordered = _solver_order(sp)
        log.info("solver.cpp:44", "Initializing solver from parameters: ")
        for line in text_lines(ordered):
            log.raw(line)
        has_old_bn = any(
            layer["type"] == "BatchNorm" and len(layer.get("param", [])) == 3 for layer in self.net.layers
        )
        log.info("solver.cpp:87", f"Creating training net from net file: {self.net.file}")
        if has_old_bn:
            _log_bn_upgrade(log, self.net.file)
        self.train = build_net(
            self.net, "TRAIN", {"phase": Enum("TRAIN"), "level": 0, "stage": ""}, self.dbs, rng, log
        )
        test = None
        if "test_iter" in sp:
            if has_old_bn:
                _log_bn_upgrade(log, self.net.file)
            log.info("solver.cpp:172", f"Creating test net (#0) specified by net file: {self.net.file}")
            test = build_net(
                self.net, "TEST", {"phase": Enum("TEST")}, self.dbs, rng, log, share_with=self.train
            )
        log.info("solver.cpp:56", "Solver scaffolding done.")
        if self.weights is not None:
            log.info("caffe.cpp:155", f"Finetuning from {self.weights.file}")
            for net in [self.train] + ([test] if test else []):
                _copy_trained_layers(net, self.weights, log, has_old_bn)
        log.info("caffe.cpp:248", "Starting Optimization")
        self._solve(sp, test, log)
        log.info("caffe.cpp:259", "Optimization Done.")
        log.close()
        return self

    def _solve(self, sp: dict, test: Net | None, log: Glog) -> None:
        net = self.train
        assert net is not None
        log.info("solver.cpp:272", f"Solving {self.net.name}")
        log.info("solver.cpp:273", f"Learning Rate Policy: {sp['lr_policy']}")
        params = []
        for layer in net.layers:
            if isinstance(layer, BatchNorm):
                continue
            for blob, spec in zip(layer.blobs, layer.param_specs(), strict=True):
                lr_mult = float(spec.get("lr_mult", 1.0))
                if lr_mult:
                    params.append((blob, lr_mult, float(spec.get("decay_mult", 1.0)), torch.zeros_like(blob)))
        display = int(sp.get("display", 0))
        average = int(sp.get("average_loss", 1))
        test_interval = int(sp.get("test_interval", 0))
        max_iter = int(sp["max_iter"])
        momentum, decay = float(sp.get("momentum", 0.0)), float(sp.get("weight_decay", 0.0))
        snapshot = int(sp.get("snapshot", 0))
        smoothed = np.float32(0.0)
        window: list[np.float32] = []
        timer, last = time.perf_counter(), 0
        wall0 = time.perf_counter()
        it = nan_iters = 0

        def smooth(loss: np.float32) -> None:
            nonlocal smoothed
            if len(window) < average:
                window.append(loss)
                smoothed = np.float32((smoothed * (len(window) - 1) + loss) / len(window))
            else:
                idx = it % average
                smoothed = np.float32(smoothed + (loss - window[idx]) / average)
                window[idx] = loss

        while it < max_iter:
            if (
                test
                and test_interval
                and it % test_interval == 0
                and (it > 0 or sp.get("test_initialization", True))
            ):
                self._test(test, sp, it, log)
            loss_t, outputs = net.forward()
            for blob, *_ in params:
                blob.grad = None
            loss_t.backward()
            loss = np.float32(loss_t.item())
            self.losses.append(float(loss))
            smooth(loss)
            if display and it % display == 0:
                lapse = time.perf_counter() - timer
                per_s = (it - last) / (lapse or 1.0)
                log.info(
                    "solver.cpp:218",
                    f"Iteration {it} ({cpp(np.float32(per_s))} iter/s, {cpp(np.float32(lapse))}s/{display} "
                    f"iters), loss = {cpp(smoothed)}",
                )
                timer, last = time.perf_counter(), it
                _log_outputs(log, "solver.cpp:237", "Train", net, outputs)
            rate = learning_rate(sp, it)
            if display and it % display == 0:
                log.info("sgd_solver.cpp:105", f"Iteration {it}, lr = {cpp(rate)}")
            with torch.no_grad():
                for blob, lr_mult, decay_mult, history in params:
                    grad = blob.grad if blob.grad is not None else torch.zeros_like(blob)
                    grad = grad + decay * decay_mult * blob
                    history.mul_(momentum).add_(rate * lr_mult * grad)
                    blob.sub_(history)
            if self.on_step:
                self.on_step(it, net)
            it += 1
            if snapshot and it % snapshot == 0:
                self._snapshot(sp, it, log)
            if np.isnan(smoothed) and self.stop_after_nan is not None:
                nan_iters += 1
                if nan_iters > self.stop_after_nan:
                    self._snapshot(sp, it, log)
                    log.info("solver.cpp:302", "Optimization stopped early.")
                    return
            if time.perf_counter() - wall0 > self.max_wall_seconds:
                raise RuntimeError(f"{self.out.name}: over {self.max_wall_seconds}s at iteration {it}")
        if sp.get("snapshot_after_train", True) and (not snapshot or it % snapshot != 0):
            self._snapshot(sp, it, log)
        if display and it % display == 0:
            with torch.no_grad():
                loss_t, _ = net.forward()
            smooth(np.float32(loss_t.item()))
            log.info("solver.cpp:310", f"Iteration {it}, loss = {cpp(smoothed)}")
        if test and test_interval and it % test_interval == 0:
            self._test(test, sp, it, log)
        log.info("solver.cpp:315", "Optimization Done.")

    def _test(self, test: Net, sp: dict, it: int, log: Glog) -> None:
        log.info("solver.cpp:330", f"Iteration {it}, Testing net (#0)")
        n = int(sp["test_iter"])
        sums: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for _ in range(n):
                _, outputs = test.forward()
                for name, value in outputs.items():
                    v = value.detach().reshape(-1).numpy().astype(np.float32)
                    sums[name] = v if name not in sums else (sums[name] + v).astype(np.float32)
        means = {name: (v / np.float32(n)).astype(np.float32) for name, v in sums.items()}
        _log_outputs(log, "solver.cpp:397", "Test", test, means)

    def _snapshot(self, sp: dict, it: int, log: Glog) -> None:
        base = f"{sp['snapshot_prefix']}_iter_{it}"
        log.info("solver.cpp:447", f"Snapshotting to binary proto file {base}.caffemodel")
        log.info("sgd_solver.cpp:273", f"Snapshotting solver state to binary proto file {base}.solverstate")
        assert self.train is not None
        self.snapshot = Snapshot(
            f"{base}.caffemodel",
            [(layer.name, [b.detach().clone() for b in layer.blobs]) for layer in self.train.layers],
        )


def _log_outputs(log: Glog, where: str, which: str, net: Net, outputs: dict) -> None:
    index = 0
    for name in net.outputs:
        values = outputs[name]
        flat = values.detach().reshape(-1).numpy() if isinstance(values, torch.Tensor) else values
        weight = net.loss_weights.get(name, 0.0)
        for v in flat:
            v32 = np.float32(v)
            msg = f" (* {cpp(weight)} = {cpp(np.float32(weight * v32))} loss)" if weight else ""
            log.info(where, f"    {which} net output #{index}: {name} = {cpp(v32)}{msg}")
            index += 1


def _log_bn_upgrade(log: Glog, file: str) -> None:
    log.info(
        "upgrade_proto.cpp:77", f"Attempting to upgrade batch norm layers using deprecated params: {file}"
    )
    log.info("upgrade_proto.cpp:80", "Successfully upgraded batch norm layers using deprecated params.")


def _copy_trained_layers(net: Net, weights: Snapshot, log: Glog, has_old_bn: bool) -> None:
    if has_old_bn:
        _log_bn_upgrade(log, weights.file)
    for name, blobs in weights.layers:
        target = net.layer(name)
        if target is None:
            log.info("net.cpp:744", f"Ignoring source layer {name}")
            continue
        log.info("net.cpp:747", f"Copying source layer {name}")
        for dst, src in zip(target.blobs, blobs, strict=True):
            if dst.shape != src.shape:
                raise ValueError(f"shape mismatch in {name}: rename the layer to learn it from scratch")
            with torch.no_grad():
                dst.copy_(src)


SOLVER_FIELD_ORDER = [
    "train_net",
    "test_net",
    "test_iter",
    "test_interval",
    "base_lr",
    "display",
    "max_iter",
    "lr_policy",
    "gamma",
    "power",
    "momentum",
    "weight_decay",
    "stepsize",
    "snapshot",
    "snapshot_prefix",
    "snapshot_diff",
    "solver_mode",
    "device_id",
    "test_compute_loss",
    "random_seed",
    "debug_info",
    "net",
    "train_state",
    "snapshot_after_train",
    "regularization_type",
    "delta",
    "test_initialization",
    "average_loss",
    "stepvalue",
    "clip_gradients",
    "iter_size",
    "rms_decay",
    "momentum2",
    "type",
]


def _solver_order(sp: dict) -> dict:
    unknown = set(sp) - set(SOLVER_FIELD_ORDER)
    if unknown:
        raise ValueError(f"unknown solver fields {unknown}")
    return {k: sp[k] for k in SOLVER_FIELD_ORDER if k in sp}


def solver_file_text(sp: dict, comments: dict[str, str] | None = None) -> str:
    """solver.prototxt as a person writes it (file order, optional `# comment` lines above a field)."""
    lines = []
    for key, value in sp.items():
        if comments and key in comments:
            lines.append(f"# {comments[key]}")
        lines += text_lines({key: value})
    return "\n".join(lines) + "\n"


def net_file_text(spec: NetSpec) -> str:
    return "\n".join(text_lines(spec.param())) + "\n"


def clone_spec(spec: NetSpec) -> NetSpec:
    return NetSpec(spec.name, copy.deepcopy(spec.layers), spec.file)
