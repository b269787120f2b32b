"""Caffe groups: the recipe is turned into a solver + net prototxt and trained by the mini-Caffe of
generator.caffe (which writes the glog itself); the per-iteration losses and the test outputs it logged
are read back into a Record for the outcome check."""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from generator import data
from generator import layers as L
from generator.caffe import CaffeRun, NetSpec, learning_rate
from generator.caffe_runs import VGG_SMALL_BLOCKS, caffe_cmd, fcn, lenet, resnet, vgg, write_run_folder
from generator.common import START
from generator.prototxt import Enum

from . import datasets
from .emit import gzip_file
from .recipe import Recipe
from .train import Record

SRC = "examples/patterns/patterns"
TEST_BATCH = 50


def mlp_net(r: Recipe, scale: float | None) -> NetSpec:
    x, c = L.filler("xavier"), L.filler("constant")
    mults = L.params((1, 1), (2, 0))
    layers = [
        L.data("data", f"{SRC}_train_lmdb", r.batch, L.TRAIN, scale=scale),
        L.data("data", f"{SRC}_test_lmdb", TEST_BATCH, L.TEST, scale=scale),
    ]
    prev = "data"
    for i, h in enumerate(r.model["hidden"], start=1):
        layers += [L.ip(f"ip{i}", prev, h, weight=x, bias=c, mults=mults), L.relu(f"relu{i}", f"ip{i}")]
        prev = f"ip{i}"
    layers += [
        L.ip("score", prev, r.n_classes, weight=x, bias=c, mults=mults),
        L.accuracy("accuracy", "score"),
        L.loss("loss", "score"),
    ]
    return NetSpec("MLP", layers, "train_val.prototxt")


def _walk_fillers(net: NetSpec, filler: dict) -> None:
    for layer in net.layers:
        for key in ("convolution_param", "inner_product_param"):
            p = layer.get(key)
            if p and "weight_filler" in p and p["weight_filler"].get("type") != "bilinear":
                p["weight_filler"] = dict(filler)


def build_net(r: Recipe) -> NetSpec:
    scale = {"standard": 0.00390625, "raw": None, "scaled256": 0.00390625}[r.input_norm]
    if r.family == "mlp":
        net = mlp_net(r, scale)
    elif r.family == "cnn":
        net = lenet(r.n_classes, r.batch, TEST_BATCH, SRC, scale=scale, ip1=r.model.get("ip1", 200))
        net.file = "train_val.prototxt"
    elif r.family == "vgg":
        mean = "data/patterns_mean.binaryproto" if r.input_norm != "raw" else None
        sc = {"standard": 0.017, "raw": None, "scaled256": 0.00390625}[r.input_norm]
        net = vgg(
            r.n_classes,
            SRC,
            r.batch,
            TEST_BATCH,
            scale=sc,
            mean_file=mean,
            fc_width=r.model.get("fc", 64),
            blocks=tuple(tuple(b) for b in r.model.get("blocks", VGG_SMALL_BLOCKS)),
        )
        net.layers = [x for x in net.layers if x["name"] != "accuracy_top5"]
    elif r.family == "resnet":
        net = resnet(
            "resnet-patterns",
            1,
            SRC,
            r.batch,
            TEST_BATCH,
            frozen_bn=r.bn_mode == "frozen_eval",
            n_classes=r.n_classes,
            widths=tuple(r.model["widths"]),
        )
        for layer in net.layers:
            if layer["type"] == "Data":
                layer["data_param"]["source"] = layer["data_param"]["source"].replace("_val_", "_test_")
    else:
        net = fcn(L.filler("xavier"), normalize=r.reduction == "mean")
        for layer in net.layers:
            if layer["type"] == "Data" and layer["include"]["phase"] == L.TRAIN:
                layer["data_param"]["batch_size"] = r.batch
    if r.init_std is not None:
        _walk_fillers(net, L.filler("gaussian", std=r.init_std))
    if r.freeze:
        head = {"mlp": "score", "cnn": "ip2", "vgg": "fc8", "resnet": "fc", "fcn": "score_fr"}[r.family]
        for layer in net.layers:
            if layer["name"] == head:
                layer["name"] = f"{head}_taskB"
                layer["top"] = [f"{head}_taskB"]
                layer["param"] = L.params((10, 1), (20, 0))
            elif (
                layer["type"] in ("Convolution", "InnerProduct")
                and layer.get("param")
                and layer["param"][0].get("lr_mult") != 0
            ):
                layer["param"] = [{"lr_mult": 0, "decay_mult": 0} for _ in layer["param"]]
            if "bottom" in layer:
                layer["bottom"] = [f"{head}_taskB" if b == head else b for b in layer["bottom"]]
    return net


def dbs_for(r: Recipe) -> tuple[dict, int]:
    if r.family == "fcn":
        tr = data.shapes_segmentation(r.seed, r.n_train, r.size)
        va = data.shapes_segmentation(r.seed + 7919, r.n_val, r.size)
        names = ["data/shapes/train_img_lmdb", "data/shapes/train_label_lmdb"]
        dbs = dict.fromkeys(names, tr) | dict.fromkeys(
            ["data/shapes/val_img_lmdb", "data/shapes/val_label_lmdb"], va
        )
        return dbs, r.n_val
    x, y, vx, vy = datasets.images(
        r.seed,
        r.proto_seed,
        r.n_classes,
        r.n_train,
        r.n_val,
        size=r.size,
        channels=r.channels,
        contrast=r.contrast,
        noise=r.noise,
        gain_jitter=r.gain_jitter,
        offset_jitter=r.offset_jitter,
    )
    if r.fault:  # a stretch of black frames with stale labels in the LMDB (a crashed converter)
        n_bad = r.fault.get("frames", 64)
        at = min(r.fault.get("at", len(x) // 2), len(x) - n_bad)
        x = x.copy()
        x[at : at + n_bad] = r.fault.get("value", 0)
        y = y.copy()  # labels of whatever the converter had in its buffer
        y[at : at + n_bad] = np.random.default_rng(r.seed).integers(0, r.n_classes, n_bad)
    tr, va = data.ImageSet(x, y), data.ImageSet(vx, vy)
    dbs = {f"{SRC}_train_lmdb": tr, f"{SRC}_test_lmdb": va, f"{SRC}_val_lmdb": va}
    return dbs | {"data/patterns_mean.binaryproto": tr}, r.n_val


def solver_for(r: Recipe, n_val: int) -> dict:
    test_batch = 1 if r.family == "fcn" else TEST_BATCH
    sp: dict = {"net": "train_val.prototxt", "test_iter": max(1, n_val // test_batch)}
    sp["test_interval"] = r.eval_every
    sp["base_lr"] = r.lr
    sp["display"] = r.log_every
    if r.model.get("average_loss", 1) > 1:
        sp["average_loss"] = r.model["average_loss"]
    sp["max_iter"] = r.max_steps
    sp["lr_policy"] = r.schedule
    if r.schedule == "step":
        sp["gamma"], sp["stepsize"] = 0.1, r.sched["stepsize"]
    elif r.schedule == "multistep":
        sp["gamma"], sp["stepvalue"] = 0.1, r.sched["stepvalue"]
    elif r.schedule == "inv":
        sp["gamma"], sp["power"] = 1e-3, 0.75
    elif r.schedule == "poly":
        sp["power"] = 1.0
    sp["momentum"] = r.momentum
    sp["weight_decay"] = r.weight_decay
    sp["snapshot"] = r.max_steps
    sp["snapshot_prefix"] = f"snapshots/{r.group}"
    sp["solver_mode"] = Enum("CPU")
    return sp


TEST_RE = re.compile(r"Test net output #\d+: (\w+) = ([-+\w.]+)")
TESTING_RE = re.compile(r"Iteration (\d+), Testing net")


def read_tests(log_text: str) -> list[tuple[int, dict[str, float]]]:
    out: list[tuple[int, dict[str, float]]] = []
    for line in log_text.splitlines():
        m = TESTING_RE.search(line)
        if m:
            out.append((int(m.group(1)), {}))
            continue
        m = TEST_RE.search(line)
        if m and out:
            out[-1][1][m.group(1)] = float(m.group(2))
    return out


def run_caffe(r: Recipe, base_snapshot):
    tmp = Path(tempfile.mkdtemp(prefix="caffe_"))
    net = build_net(r)
    dbs, n_val = dbs_for(r)
    sp = solver_for(r, n_val)
    weights = base_snapshot if r.pretrained else None
    weights_file = f"snapshots/{r.group}_iter_{base_snapshot.file.split('_iter_')[-1]}" if weights else None
    run = CaffeRun(
        sp,
        net,
        dbs,
        tmp / "train.log",
        seed=r.seed,
        start=START,
        command=caffe_cmd("solver.prototxt", weights_file),
        weights=weights,
        max_wall_seconds=240.0,
        stop_after_nan=r.stop_after_nan,
    ).run()
    text = (tmp / "train.log").read_text(encoding="utf-8")
    rec = Record()
    per_epoch = max(1, math.ceil(r.n_train / r.batch))
    rec.steps_per_epoch, rec.total_steps = per_epoch, r.max_steps
    for it, loss in enumerate(run.losses):
        rec.steps.append((it + 1, (it + 1) / per_epoch, loss, learning_rate(sp, it), math.nan))
    for it, outs in read_tests(text):
        loss = outs.get("loss", math.nan)
        acc = outs.get("accuracy", math.nan)
        rec.evals.append((it, it / per_epoch, loss, acc))
        rec.eval_pos.append(it)
    if r.family == "fcn":  # FCN's net has no Accuracy layer: pixel accuracy is not logged
        rec.evals = [(a, b, c, math.nan) for a, b, c, _ in rec.evals]
    rec.snapshot = run.snapshot  # type: ignore[attr-defined]
    if run.snapshot is not None:
        rec.snapshot.file = f"{sp['snapshot_prefix']}_iter_{len(run.losses)}.caffemodel"  # type: ignore[attr-defined]

    def files(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp / "train.log"), folder / "train.log")
        write_run_folder(folder, sp, net)
        for f in sorted(folder.iterdir()):
            if not f.name.endswith(".gz"):
                gzip_file(f)
        shutil.rmtree(tmp, ignore_errors=True)

    return rec, files
