"""One PyTorch training loop for every family: it records each step's loss, lr and gradient norm, the
evaluations and the per-epoch means, plus the facts a script prints (freezing, loaded weights, resume)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import datasets, models
from .recipe import Recipe


@dataclass
class Record:
    steps: list[tuple[int, float, float, float, float]] = field(
        default_factory=list
    )  # step, epoch, loss, lr, gnorm
    evals: list[tuple[int, float, float, float]] = field(
        default_factory=list
    )  # step, epoch, val_loss, val_acc
    epochs: list[tuple[int, int, float, float]] = field(
        default_factory=list
    )  # epoch, step, train_loss, train_acc
    events: list[tuple[int, str]] = field(default_factory=list)  # (len(steps) when it happened, text)
    facts: list[str] = field(default_factory=list)  # config lines the script prints before training
    steps_per_epoch: int = 0
    total_steps: int = 0
    params: int = 0
    depth: int = 0
    stopped: str = ""
    eval_pos: list[int] = field(default_factory=list)  # len(steps) when each evaluation ran
    epoch_pos: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # wall seconds since the start, per step

    def add_eval(self, step: int, epoch: float, vl: float, va: float) -> None:
        self.evals.append((step, epoch, vl, va))
        self.eval_pos.append(len(self.steps))

    def add_epoch(self, epoch: int, step: int, loss: float, acc: float) -> None:
        self.epochs.append((epoch, step, loss, acc))
        self.epoch_pos.append(len(self.steps))

    @property
    def losses(self) -> np.ndarray:
        return np.array([s[2] for s in self.steps], np.float64)


def load_split(r: Recipe) -> datasets.Split:
    if r.data == "images":
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
        kind, raw_max, mean, std = "cls", 255.0, 128.0, 64.0
    elif r.data == "segmentation":
        x, y, vx, vy = datasets.segmentation(r.seed, r.n_train, r.n_val, r.size)
        if r.gain_jitter or r.offset_jitter:  # per-image exposure differences, as in images()
            x, vx = (
                datasets.exposure(x, r.seed, r.gain_jitter, r.offset_jitter),
                datasets.exposure(vx, r.seed + 1, r.gain_jitter, r.offset_jitter),
            )
        kind, raw_max, mean, std = "seg", 255.0, 110.0, 40.0
    elif r.data == "tabular":
        x, y, vx, vy = datasets.tabular(r.proto_seed, r.n_classes, r.n_train, r.n_val)
        kind, raw_max = "cls", float(np.abs(x).max())
        mean, std = x.mean(0), x.std(0) + 1e-6
    else:
        x, y, vx, vy = datasets.markov_tokens(r.proto_seed, r.vocab, r.n_train, r.n_val, r.seq_len)
        return datasets.Split(
            "lm",
            torch.from_numpy(x),
            torch.from_numpy(y),
            torch.from_numpy(vx),
            torch.from_numpy(vy),
            r.vocab,
            0,
        )
    x, vx = x.astype(np.float32), vx.astype(np.float32)
    if r.input_norm == "standard":
        x, vx = (x - mean) / std, (vx - mean) / std
    elif r.input_norm == "scaled256":
        x, vx = (x - mean) / 256.0, (vx - mean) / 256.0
    n_classes = 3 if kind == "seg" else r.n_classes
    t = torch.from_numpy
    return datasets.Split(
        kind, t(np.ascontiguousarray(x)), t(y), t(np.ascontiguousarray(vx)), t(vy), n_classes, raw_max
    )


def build_model(r: Recipe, split: datasets.Split) -> nn.Module:
    m = r.model
    if r.family == "mlp":
        d_in = int(np.prod(split.x.shape[1:]))
        model: nn.Module = models.MLPNet(
            d_in, m["hidden"], split.n_classes, bn=m.get("bn", False), dropout=m.get("dropout", 0.0)
        )
    elif r.family in ("cnn", "vgg"):
        model = models.ConvNet(
            split.x.shape[1],
            split.n_classes,
            m["blocks"],
            bn=m.get("bn", False),
            fc=m.get("fc", 0),
            dropout=m.get("dropout", 0.0),
        )
    elif r.family == "resnet":
        model = models.ResNet(split.x.shape[1], split.n_classes, tuple(m["widths"]))
    elif r.family == "fcn":
        model = models.FCN(split.x.shape[1], split.n_classes, m["widths"], bn=m.get("bn", False))
    else:
        model = models.CharLM(
            split.n_classes,
            m["dim"],
            kind=m["kind"],
            layers=m.get("layers", 1),
            dropout=m.get("dropout", 0.0),
        )
    if r.init_std is not None:
        models.gaussian_init(model, r.init_std)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            mod.momentum = r.bn_momentum
    return model


def make_optimizer(r: Recipe, params) -> torch.optim.Optimizer:
    if r.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov, weight_decay=r.weight_decay
        )
    if r.optimizer == "adam":
        return torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay)
    if r.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=r.lr, weight_decay=r.weight_decay or 0.01)
    return torch.optim.RMSprop(params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)


class Schedule:
    """lr of each step from the recipe's schedule (epoch-based decays, per-step warm-up and cosine,
    ReduceLROnPlateau fed with the validation loss)."""

    def __init__(self, r: Recipe, total: int, per_epoch: int):
        self.r, self.total, self.per_epoch = r, max(total, 1), max(per_epoch, 1)
        self.plateau_factor, self.best, self.bad = 1.0, math.inf, 0

    def lr(self, step: int) -> float:
        r, s = self.r, self.r.sched
        epoch = step // self.per_epoch
        base = r.lr
        warm = int(s.get("warmup", 0))
        if r.schedule == "ramp":  # linear warm-up over the whole run to a peak lr
            return base * s["peak"] * (step + 1) / self.total
        if r.schedule == "step":
            return base * s.get("gamma", 0.1) ** (epoch // s["step_size"])
        if r.schedule == "multistep":
            return base * s.get("gamma", 0.1) ** sum(epoch >= m for m in s["milestones"])
        if r.schedule == "plateau":
            return base * self.plateau_factor
        if r.schedule in ("cosine", "warmup_cosine", "warmup_linear"):
            if step < warm:
                return base * (step + 1) / warm
            frac = (step - warm) / max(self.total - warm, 1)
            if r.schedule == "warmup_linear":
                return base * max(0.0, 1.0 - frac)
            floor = s.get("min_lr", 0.0)
            return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        if r.schedule == "warmup":
            return base * min(1.0, (step + 1) / max(warm, 1))
        return base

    def on_val(self, val_loss: float) -> None:
        if self.r.schedule != "plateau":
            return
        s = self.r.sched
        if val_loss < self.best * (1 - 1e-4):
            self.best, self.bad = val_loss, 0
        else:
            self.bad += 1
            if self.bad > s.get("patience", 2):
                self.plateau_factor *= s.get("factor", 0.1)
                self.bad = 0


def criterion(r: Recipe, kind: str, out: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    if kind == "lm":
        out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1)
    return F.cross_entropy(out, y, reduction=reduction, label_smoothing=r.label_smoothing)


def accuracy(kind: str, out: torch.Tensor, y: torch.Tensor) -> float:
    pred = out.argmax(-1) if kind == "lm" else out.argmax(1)
    return float((pred == y).float().mean())


@torch.no_grad()
def evaluate(r: Recipe, model: nn.Module, split: datasets.Split) -> tuple[float, float]:
    was = model.training
    model.eval()
    total, acc, n = 0.0, 0.0, 0
    for i in range(0, len(split.vx), 200):
        xb, yb = split.vx[i : i + 200], split.vy[i : i + 200]
        out = model(xb)
        total += float(criterion(r, split.kind, out, yb, "mean")) * len(xb)
        acc += accuracy(split.kind, out, yb) * len(xb)
        n += len(xb)
    model.train(was)
    if was and r.bn_mode == "frozen_eval":
        set_bn_eval(model)
    return total / n, acc / n


def set_bn_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.eval()


def corrupt(
    r: Recipe, step: int, xb: torch.Tensor, yb: torch.Tensor, split: datasets.Split, gen: torch.Generator
):
    """The recipe's bad data, applied to the batch of `step` (1-based)."""
    f = r.fault
    if not f or step < f.get("start", 1) or (step - f.get("start", 1)) % f["every"]:
        return xb, yb
    kind = f["kind"]
    xb, yb = xb.clone(), yb.clone()
    if kind == "nan_pixels":
        xb.view(len(xb), -1)[0, : max(1, xb[0].numel() // 10)] = float("nan")
    elif kind == "garbage":  # a loader worker that skipped normalisation and mixed up the labels
        if split.kind == "lm":
            xb = torch.randint(0, split.n_classes, xb.shape, generator=gen)
            yb = torch.randint(0, split.n_classes, yb.shape, generator=gen)
        else:
            xb = xb * f.get("gain", 64.0) + f.get("offset", 128.0)
            yb = yb[torch.randperm(len(yb), generator=gen)]
    elif kind == "mislabel":
        if split.kind == "lm":
            yb = torch.randint(0, split.n_classes, yb.shape, generator=gen)
        else:
            yb = (yb + 1 + torch.randint(0, split.n_classes - 1, yb.shape, generator=gen)) % split.n_classes
    return xb, yb


def augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    shift = [int(v) for v in torch.randint(-2, 3, (2,), generator=gen)]
    xb = torch.roll(xb, shifts=shift, dims=(-2, -1))
    return xb + 0.6 * torch.randn(xb.shape, generator=gen)


def train(r: Recipe, pretrained: dict | None = None) -> tuple[Record, nn.Module]:
    torch.manual_seed(r.seed)
    gen = torch.Generator().manual_seed(r.seed)
    split = load_split(r)
    model = build_model(r, split)
    rec = Record(params=models.n_params(model), depth=models.depth_of(model))
    if pretrained is not None:
        own = model.state_dict()
        loaded = {k: v for k, v in pretrained.items() if not k.startswith("head") and k in own}
        model.load_state_dict(loaded, strict=False)
        rec.facts.append(
            f"Loaded pretrained weights from ckpt/{r.group}_taskA.pt "
            f"({len(loaded)} tensors, head re-initialised)"
        )
    if r.freeze:
        names = models.backbone_names(model)
        for name, p in model.named_parameters():
            if not name.startswith("head"):
                p.requires_grad_(False)
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        rec.facts.append(f"Freezing layers: {shown} (requires_grad=False)")
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rec.facts.append(f"Trainable parameters: {n_train} of {rec.params}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(r, params)
    n = len(split.x)
    per_epoch = math.ceil(n / r.batch)
    total = r.epochs * per_epoch if not r.max_steps else min(r.max_steps, r.epochs * per_epoch)
    rec.steps_per_epoch, rec.total_steps = per_epoch, total
    sched = Schedule(r, total, per_epoch)
    model.train()
    if r.bn_mode == "frozen_eval":
        set_bn_eval(model)
    step, epoch, nan_steps = 0, 0, 0
    recent: list[float] = []
    best = math.inf
    t0 = time.perf_counter()
    ckpt = None
    resumed = False
    while epoch < r.epochs and step < total:
        order = torch.randperm(n, generator=gen)
        ep_loss, ep_acc, ep_n = 0.0, 0.0, 0
        for i in range(0, n, r.batch):
            idx = order[i : i + r.batch]
            step += 1
            xb, yb = split.x[idx], split.y[idx]
            if r.augment:
                xb = augment(xb, gen)
            xb, yb = corrupt(r, step, xb, yb, split, gen)
            lr = sched.lr(step - 1)
            for g in opt.param_groups:
                g["lr"] = lr
            out = model(xb)
            loss = criterion(r, split.kind, out, yb, r.reduction)
            opt.zero_grad()
            loss.backward()
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, r.clip if r.clip else float("inf")))
            opt.step()
            lv = loss.item()
            rec.steps.append((step, epoch + (i + len(idx)) / n, lv, lr, gnorm))
            rec.times.append(time.perf_counter() - t0)
            ep_loss += lv
            ep_acc += accuracy(split.kind, out.detach(), yb) if math.isfinite(lv) else 0.0
            ep_n += 1
            if r.eval_every and step % r.eval_every == 0:
                vl, va = evaluate(r, model, split)
                rec.add_eval(step, epoch + (i + len(idx)) / n, vl, va)
                sched.on_val(vl)
            if r.sched.get("stop_diverged") and math.isfinite(lv):
                recent.append(lv)
                if len(recent) >= 20:
                    window = sum(recent[-20:]) / 20
                    best = min(best, window)
                    if window > 20 * best and step > 50:
                        rec.stopped = "stopped by the user: the loss kept growing"
                        break
            if not math.isfinite(lv):
                nan_steps += 1
                # Keras logs only at epoch ends: its users stop the run after an epoch of NaN
                if nan_steps >= r.stop_after_nan and r.fmt != "keras_csv":
                    rec.stopped = f"stopped by the user {nan_steps} steps after the loss became non-finite"
                    break
            if r.resume and not resumed and step == r.resume["crash_step"] and ckpt is not None:
                resumed = True
                rec.events.append((len(rec.steps), f"crash:{ckpt[0]}:{ckpt[1]}"))
                epoch, step = ckpt[0], ckpt[1]
                model.load_state_dict(ckpt[2])
                opt.load_state_dict(ckpt[3])
                gen.manual_seed(r.seed + 1)
                break
            if step >= total:
                break
        else:
            ep_loss_mean = ep_loss / max(ep_n, 1)
            rec.add_epoch(epoch, step, ep_loss_mean, ep_acc / max(ep_n, 1))
            if not r.eval_every:
                vl, va = evaluate(r, model, split)
                rec.add_eval(step, epoch + 1.0, vl, va)
                sched.on_val(vl)
            epoch += 1
            if nan_steps >= r.stop_after_nan:
                rec.stopped = (
                    f"stopped by the user after the epoch, {nan_steps} steps after the loss became non-finite"
                )
                break
            if r.resume and epoch == r.resume["ckpt_epoch"]:
                ckpt = (epoch, step, copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
            continue
        if rec.stopped:
            break
        if step >= total:
            if not rec.epochs or rec.epochs[-1][1] != step:
                rec.add_epoch(epoch, step, ep_loss / max(ep_n, 1), ep_acc / max(ep_n, 1))
                if not r.eval_every:
                    vl, va = evaluate(r, model, split)
                    rec.add_eval(step, epoch + 1.0, vl, va)
            break
    if r.eval_every and (not rec.evals or rec.evals[-1][0] != step) and not rec.stopped:
        vl, va = evaluate(r, model, split)
        rec.add_eval(step, rec.steps[-1][1], vl, va)
    return rec, model
