"""Short builders for Caffe layer dicts, keys in proto field-number order (as Caffe prints them)."""

from __future__ import annotations

from .prototxt import Enum

TRAIN, TEST = Enum("TRAIN"), Enum("TEST")


def filler(kind: str, **kw: float | str) -> dict:
    out: dict = {"type": kind}
    for key in ("value", "min", "max", "mean", "std"):
        if key in kw:
            out[key] = kw[key]
    if "variance_norm" in kw:
        out["variance_norm"] = Enum(str(kw["variance_norm"]))
    return out


def params(*mults: tuple[float, float]) -> list[dict]:
    return [{"lr_mult": lr, "decay_mult": dm} for lr, dm in mults]


def data(
    name: str,
    source: str,
    batch: int,
    phase: Enum,
    *,
    tops: tuple[str, ...] = ("data", "label"),
    scale: float | None = None,
    mirror: bool = False,
    crop: int = 0,
    mean_file: str | None = None,
    mean_value: list[float] | None = None,
) -> dict:
    tp: dict = {}
    if scale is not None:
        tp["scale"] = scale
    if mirror:
        tp["mirror"] = True
    if crop:
        tp["crop_size"] = crop
    if mean_file:
        tp["mean_file"] = mean_file
    if mean_value:
        tp["mean_value"] = mean_value
    layer: dict = {"name": name, "type": "Data", "top": list(tops), "include": {"phase": phase}}
    if tp:
        layer["transform_param"] = tp
    layer["data_param"] = {"source": source, "batch_size": batch, "backend": Enum("LMDB")}
    return layer


def conv(
    name: str,
    bottom: str,
    num_output: int,
    kernel: int,
    *,
    stride: int = 1,
    pad: int = 0,
    weight: dict | None = None,
    bias: dict | None = None,
    bias_term: bool = True,
    mults: list[dict] | None = None,
    top: str | None = None,
    kind: str = "Convolution",
    group: int = 0,
) -> dict:
    cp: dict = {"num_output": num_output}
    if not bias_term:
        cp["bias_term"] = False
    if pad:
        cp["pad"] = pad
    cp["kernel_size"] = kernel
    if group:
        cp["group"] = group
    if stride != 1:
        cp["stride"] = stride
    if weight:
        cp["weight_filler"] = weight
    if bias and bias_term:
        cp["bias_filler"] = bias
    layer: dict = {"name": name, "type": kind, "bottom": [bottom], "top": [top or name]}
    if mults is not None:
        layer["param"] = mults
    layer["convolution_param"] = cp
    return layer


def ip(
    name: str,
    bottom: str,
    num_output: int,
    *,
    weight: dict,
    bias: dict | None = None,
    mults: list[dict] | None = None,
) -> dict:
    ipp: dict = {"num_output": num_output, "weight_filler": weight}
    if bias:
        ipp["bias_filler"] = bias
    layer: dict = {"name": name, "type": "InnerProduct", "bottom": [bottom], "top": [name]}
    if mults is not None:
        layer["param"] = mults
    layer["inner_product_param"] = ipp
    return layer


def relu(name: str, blob: str) -> dict:
    return {"name": name, "type": "ReLU", "bottom": [blob], "top": [blob]}


def act(name: str, kind: str, blob: str) -> dict:
    return {"name": name, "type": kind, "bottom": [blob], "top": [blob]}


def dropout(name: str, blob: str, ratio: float = 0.5) -> dict:
    return {
        "name": name,
        "type": "Dropout",
        "bottom": [blob],
        "top": [blob],
        "dropout_param": {"dropout_ratio": ratio},
    }


def pool(
    name: str, bottom: str, kernel: int = 2, stride: int = 2, *, kind: str = "MAX", global_pool: bool = False
) -> dict:
    pp: dict = {"pool": Enum(kind)}
    if global_pool:
        pp["global_pooling"] = True
    else:
        pp["kernel_size"] = kernel
        pp["stride"] = stride
    return {"name": name, "type": "Pooling", "bottom": [bottom], "top": [name], "pooling_param": pp}


def batchnorm(name: str, blob: str, *, use_global_stats: bool | None = None, old_params: bool = True) -> dict:
    layer: dict = {"name": name, "type": "BatchNorm", "bottom": [blob], "top": [blob]}
    if old_params:
        layer["param"] = params((0, 0), (0, 0), (0, 0))
    if use_global_stats is not None:
        layer["batch_norm_param"] = {"use_global_stats": use_global_stats}
    return layer


def scale(name: str, blob: str) -> dict:
    return {
        "name": name,
        "type": "Scale",
        "bottom": [blob],
        "top": [blob],
        "scale_param": {"bias_term": True},
    }


def eltwise(name: str, a: str, b: str) -> dict:
    return {
        "name": name,
        "type": "Eltwise",
        "bottom": [a, b],
        "top": [name],
        "eltwise_param": {"operation": Enum("SUM")},
    }


def loss(name: str, bottom: str, label: str = "label", *, loss_param: dict | None = None) -> dict:
    layer: dict = {"name": name, "type": "SoftmaxWithLoss", "bottom": [bottom, label], "top": [name]}
    if loss_param:
        layer["loss_param"] = loss_param
    return layer


def accuracy(
    name: str, bottom: str, label: str = "label", *, phase: Enum | None = TEST, top_k: int = 0
) -> dict:
    layer: dict = {"name": name, "type": "Accuracy", "bottom": [bottom, label], "top": [name]}
    if phase is not None:
        layer["include"] = {"phase": phase}
    if top_k:
        layer["accuracy_param"] = {"top_k": top_k}
    return layer
