"""The sampled recipes. Each group is one base recipe (family, data, model, optimiser, schedule, logging,
seeds): its healthy base run, one or two hard-but-healthy variants and a few faulty variants built from
the same recipe and seeds (siblings). Causes and formats are dealt out round-robin so that every cause
lands on several families and formats."""

from __future__ import annotations

import copy
import math
import random
import zlib
from collections import Counter

from .recipe import Recipe

FAMILIES = ["mlp", "cnn", "resnet", "vgg", "fcn", "charlm"]
TORCH_FORMATS = ["print_style", "hf_trainer_state", "lightning_csv", "keras_csv", "tfevents"]
PRINT_STYLES = ["epoch_step", "bracket", "logging", "iter", "kv"]
CAUSES = [
    "lr_too_high",
    "lr_too_low",
    "input_scale",
    "bn_stats",
    "no_pretraining",
    "depth_init",
    "small_batch",
    "loss_normalization",
    "overfitting",
    "data_issue",
]
HEALTHY_KINDS = [
    "step_decay",
    "warmup",
    "cosine_tail",
    "finetune_frozen",
    "small_batch_noise",
    "label_smoothing",
    "dropout_floor",
    "augment_val_below",
    "resumed",
    "short",
    "slow_steady",
    "plateau_sched",
]

# tuned base lr per optimiser (x a per-family factor)
OPT_LR = {
    "sgd_momentum": 0.05,
    "sgd_nesterov": 0.05,
    "sgd": 0.2,
    "adam": 2e-3,
    "adamw": 2e-3,
    "rmsprop": 7e-4,
}
FAMILY_LR = {"mlp": 1.0, "cnn": 1.0, "resnet": 1.0, "vgg": 0.5, "fcn": 1.0, "charlm": 1.0}


def seed_of(text: str) -> int:
    return zlib.crc32(text.encode()) % 100_000


def _optimizer(r: Recipe, rng: random.Random, family: str) -> None:
    names = list(OPT_LR)
    if family == "charlm":
        names = ["adam", "adamw", "rmsprop", "adam", "sgd_momentum"]
    name = rng.choice(names)
    lr = OPT_LR[name] * FAMILY_LR[family] * rng.choice([0.7, 1.0, 1.4])
    if family == "charlm" and name.startswith("sgd"):
        lr, r.clip = 1.0, 1.0
    r.optimizer = "sgd" if name.startswith("sgd") else name
    r.momentum = 0.9 if name in ("sgd_momentum", "sgd_nesterov") else 0.0
    r.nesterov = name == "sgd_nesterov"
    r.lr = float(f"{lr:.2g}")
    if rng.random() < 0.3:
        r.weight_decay = rng.choice([1e-4, 5e-4])


def _schedule(r: Recipe, rng: random.Random) -> None:
    kind = rng.choice(["fixed", "fixed", "step", "multistep", "cosine", "warmup_cosine", "plateau"])
    r.schedule = kind
    if kind == "step":
        r.sched = {"step_size": max(2, r.epochs // 3), "gamma": 0.1}
    elif kind == "multistep":
        r.sched = {"milestones": [r.epochs // 2, 3 * r.epochs // 4], "gamma": 0.1}
    elif kind == "warmup_cosine":
        r.sched = {"warmup": max(5, r.epochs * 100 // 10 // max(r.batch // 16, 1))}
    elif kind == "plateau":
        r.sched = {"patience": 1, "factor": 0.3}


def base_recipe(family: str, g: int, rng: random.Random) -> Recipe:
    group = f"{family}_{g:03d}"
    r = Recipe(group, group, family, "images", seed_of(group), "healthy_base", "", "healthy")
    r.proto_seed = seed_of(group + "/protos")
    if family == "mlp":
        if rng.random() < 0.45:
            r.data, r.n_classes = "tabular", rng.choice([3, 4, 5, 6])
            r.n_train, r.n_val = rng.choice([800, 1200, 2000]), 400
            r.model = {"hidden": rng.choice([[32, 32], [64, 32], [64, 64, 32]]), "bn": rng.random() < 0.3}
            r.epochs = rng.choice([15, 20, 30])
            r.batch = rng.choice([8, 16, 32, 64, 128])
            if rng.random() < 0.25:  # a long run: batch 8, many epochs, logged every N steps
                r.batch, r.epochs = 8, rng.choice([40, 60, 80])
        else:
            r.channels, r.contrast, r.noise = rng.choice([1, 3]), 50.0, 40.0
            r.n_train, r.n_val, r.n_classes = 1000, 300, rng.choice([5, 10])
            r.model = {"hidden": rng.choice([[128, 64], [256, 128], [128]]), "bn": rng.random() < 0.3}
            r.epochs, r.batch = rng.choice([8, 10, 12]), rng.choice([16, 32, 64, 128])
    elif family == "cnn":
        r.contrast, r.noise, r.n_train, r.n_val = 50.0, 40.0, 1000, 300
        r.n_classes = rng.choice([5, 10])
        r.model = {
            "blocks": rng.choice([[[16], [32], [32]], [[16], [32]], [[8], [16], [32]]]),
            "bn": rng.random() < 0.5,
        }
        r.epochs, r.batch = rng.choice([8, 10, 12]), rng.choice([16, 32, 64, 128, 256])
    elif family == "resnet":
        r.contrast, r.noise, r.n_train, r.n_val = 50.0, 40.0, 1000, 300
        r.n_classes = rng.choice([5, 10])
        r.model = {"widths": rng.choice([[8, 16, 32], [16, 16, 32], [8, 16]])}
        r.epochs, r.batch = rng.choice([5, 6, 8]), rng.choice([32, 64])
    elif family == "vgg":
        r.contrast, r.noise, r.n_train, r.n_val = 50.0, 40.0, 1000, 300
        r.n_classes = rng.choice([5, 10])
        r.model = {
            "blocks": rng.choice([[[16, 16], [32, 32], [32, 32]], [[16, 16], [32, 32, 32]]]),
            "fc": 64,
            "dropout": 0.0,
        }
        r.epochs, r.batch = rng.choice([8, 10]), rng.choice([32, 64, 128])
    elif family == "fcn":
        r.data, r.channels, r.n_train, r.n_val, r.size = "segmentation", 1, 700, 80, 24
        r.model = {"widths": rng.choice([[16, 32, 32, 32], [16, 32, 32]]), "bn": rng.random() < 0.6}
        r.epochs, r.batch = rng.choice([6, 8]), rng.choice([8, 16, 32])
    else:
        r.data, r.vocab, r.seq_len = "tokens", rng.choice([12, 16]), rng.choice([16, 24, 32])
        r.n_train, r.n_val = 1000, 200
        kind = rng.choice(["gru", "gru", "transformer"])
        r.model = {"dim": 48 if kind == "gru" else 32, "kind": kind, "layers": 1 if kind == "gru" else 2}
        r.epochs, r.batch = rng.choice([10, 12, 15]), rng.choice([16, 32, 64])
    target = {"mlp": 500, "cnn": 450, "resnet": 250, "vgg": 350, "fcn": 250, "charlm": 450}[family]
    if r.data == "tabular":
        target = 600 if r.batch > 8 else r.epochs * math.ceil(r.n_train / r.batch)
    else:
        target = int(target * min(1.0, (32 / r.batch) ** 0.5))  # large batches: fewer, costlier steps
    steps_per_epoch = math.ceil(r.n_train / r.batch)
    r.epochs = min(40, max(5, math.ceil(target * rng.uniform(0.8, 1.3) / steps_per_epoch)))
    _optimizer(r, rng, family)
    if family == "fcn" and not r.model.get("bn"):
        r.lr *= 0.5
    _schedule(r, rng)
    steps = r.epochs * math.ceil(r.n_train / r.batch)
    r.log_every = rng.choice([1, 5, 10, 20, 50]) if steps < 3000 else rng.choice([50, 100, 200])
    if r.log_every * 20 > steps:
        r.log_every = max(1, steps // 60)
    per_epoch = math.ceil(r.n_train / r.batch)
    r.eval_every = 0 if rng.random() < 0.55 else max(5, per_epoch // rng.choice([1, 2, 3]))
    if r.log_every > 1 and rng.random() < 0.3:
        r.log_mode = "last"
    return r


def _bn(r: Recipe) -> bool:
    return r.family == "resnet" or bool(r.model.get("bn"))


def eligible_causes(b: Recipe) -> list[str]:
    out = ["lr_too_high", "lr_too_low", "overfitting", "data_issue"]
    if b.family != "charlm" and not _bn(b):
        out.append("input_scale")
    if _bn(b):
        out += ["bn_stats", "small_batch"]
    if b.family != "charlm" and b.data != "tabular":
        out.append("no_pretraining")
    if b.family in ("mlp", "cnn", "vgg", "fcn"):
        out.append("depth_init")
    if b.optimizer == "sgd" and not _bn(b):
        out.append("loss_normalization")
    return out


def eligible_healthy(b: Recipe) -> list[str]:
    out = ["step_decay", "warmup", "cosine_tail", "label_smoothing", "augment_val_below", "resumed", "short"]
    out += ["slow_steady", "plateau_sched"]
    if b.family != "charlm" and b.data != "tabular":
        out.append("finetune_frozen")
    if not _bn(b):
        out.append("small_batch_noise")
    if b.family in ("mlp", "cnn", "vgg", "charlm"):
        out.append("dropout_floor")
    if b.data in ("tabular", "tokens"):
        out.remove("augment_val_below")
    return out


def variant(b: Recipe, name: str, symptom: str, cause: str = "", severity: float | None = None) -> Recipe:
    r = copy.deepcopy(b)
    r.run_id = f"{b.group}_{name}"
    r.scenario, r.symptom, r.cause, r.severity = name, symptom, cause, severity
    return r


def task_b(r: Recipe) -> None:
    """Fine-tuning data: another set of classes (other prototypes), few training images."""
    r.proto_seed = seed_of(r.group + "/taskB")
    r.seed = seed_of(r.group + "/taskB-data")
    if r.data == "images":
        r.n_classes = 5 if r.n_classes == 10 else 4
        r.n_train = 300
    else:
        r.n_train = 120
    r.lr = {"sgd": 0.05, "adam": 2e-3, "adamw": 2e-3, "rmsprop": 1e-3}[r.optimizer]
    r.momentum = 0.9 if r.optimizer == "sgd" else r.momentum
    r.epochs = max(r.epochs, 12)
    r.schedule, r.sched = "fixed", {}
    r.freeze = True
    r.eval_every = 0


def healthy_variant(b: Recipe, kind: str, rng: random.Random) -> Recipe:
    r = variant(b, f"healthy_{kind}", "healthy")
    per_epoch = math.ceil(b.n_train / b.batch)
    if kind == "step_decay":
        r.epochs = max(b.epochs, 9)
        r.schedule, r.sched = "step", {"step_size": r.epochs // 3, "gamma": 0.1}
        r.about = f"step decay x0.1 every {r.epochs // 3} epochs"
    elif kind == "warmup":
        r.schedule = "warmup_cosine"
        r.sched = {"warmup": max(10, per_epoch * rng.choice([1, 2]))}
        r.lr = b.lr * (1.5 if b.optimizer != "sgd" else 1.0)
        r.about = f"linear warm-up over {r.sched['warmup']} steps, then cosine"
    elif kind == "cosine_tail":
        r.schedule, r.sched = "cosine", {"min_lr": 0.0}
        r.epochs = b.epochs + b.epochs // 2
        r.about = "cosine decay to 0"
    elif kind == "finetune_frozen":
        task_b(r)
        r.pretrained = True
        r.about = (
            "fine-tuning the head on a new small task with the backbone loaded from the task-A run and frozen"
        )
    elif kind == "small_batch_noise":
        r.batch = rng.choice([2, 4, 8])
        r.lr = b.lr * (r.batch / b.batch) ** 0.5 if b.optimizer == "sgd" else b.lr * 0.5
        r.max_steps = min(per_epoch * b.epochs * b.batch // r.batch, 2500)
        r.log_every = max(r.log_every, 10)
        r.eval_every = 0 if not b.eval_every else max(50, r.eval_every * 4)
        r.about = f"batch {r.batch} without BatchNorm"
    elif kind == "label_smoothing":
        r.label_smoothing = rng.choice([0.1, 0.2, 0.3])
        r.about = f"label smoothing {r.label_smoothing}"
    elif kind == "dropout_floor":
        p = rng.choice([0.3, 0.5])
        r.model = {**b.model, "dropout": p}
        if b.family == "vgg":
            r.model["fc"] = 64
        r.about = f"dropout {p}"
    elif kind == "augment_val_below":
        r.augment = True
        r.about = "train-time augmentation (random shifts and pixel noise)"
    elif kind == "resumed":
        crash_epoch = max(2, b.epochs // 2)
        r.resume = {
            "ckpt_epoch": crash_epoch - 1,
            "crash_step": crash_epoch * per_epoch + per_epoch // 2,
            "keras_restart": rng.random() < 0.5,
        }
        r.about = "killed mid-epoch and resumed from the last epoch checkpoint (steps re-logged)"
    elif kind == "short":
        r.epochs = rng.choice([3, 4, 5]) if b.epochs >= 8 else 3
        r.about = f"only {r.epochs} epochs"
        r.schedule, r.sched = "fixed", {}
    elif kind == "slow_steady":
        f = rng.choice([3, 5])
        r.lr = b.lr / f
        r.epochs = b.epochs * 2
        r.schedule, r.sched = "fixed", {}
        r.about = f"lr {r.lr:.2g} ({f}x below the tuned one) for twice the epochs"
    elif kind == "plateau_sched":
        r.schedule, r.sched = "plateau", {"patience": 1, "factor": 0.2}
        r.eval_every = 0
        r.about = "ReduceLROnPlateau on the validation loss"
    return r


def fault_variant(b: Recipe, cause: str, rng: random.Random) -> Recipe:
    per_epoch = math.ceil(b.n_train / b.batch)
    if cause == "lr_too_high" and rng.random() < 0.25:
        f = rng.choice([10, 30, 100])
        r = variant(b, f"warmup_to_lr_x{f}", "diverging", cause, f)
        r.schedule, r.sched, r.clip = "ramp", {"peak": f, "stop_diverged": True}, None
        r.epochs = max(b.epochs, 6)
        r.about = (
            f"linear warm-up over the whole run to a peak lr of {b.lr * f:.3g} ({f}x the tuned {b.lr:.2g})"
        )
    elif cause == "lr_too_high":
        f = rng.choice([10, 30, 100, 300, 1000] if b.optimizer == "sgd" else [30, 100, 300, 1000])
        r = variant(b, f"lr_x{f}", "diverging", cause, f)
        r.lr = b.lr * f
        r.clip = None
        r.about = f"lr {r.lr:.3g} ({f}x the tuned {b.lr:.2g})"
        if rng.random() < 0.5:  # the user stops the run once the loss keeps growing
            r.sched = {**b.sched, "stop_diverged": True}
    elif cause == "lr_too_low":
        f = rng.choice([1e2, 1e3, 1e4, 1e5, 1e6])
        r = variant(b, f"lr_div{f:.0e}".replace("+0", ""), "flat" if f >= 1e3 else "plateau", cause, 1 / f)
        r.lr = b.lr / f
        r.about = f"lr {r.lr:.1e} ({f:.0e}x below the tuned {b.lr:.2g})"
    elif cause == "input_scale":
        if rng.random() < 0.7:
            r = variant(
                b,
                "raw_inputs_x255" if b.data != "tabular" else "raw_feature_units",
                "diverging",
                cause,
                255.0,
            )
            r.input_norm = "raw"
            r.about = (
                "inputs left unnormalised (raw 0..255 pixels / raw feature units) "
                "with the lr for normalised inputs"
            )
        else:
            r = variant(b, "inputs_div256", "flat", cause, 1 / 256)
            r.input_norm = "scaled256"
            r.about = (
                "inputs (x - mean) / 256 (range about +-0.5) "
                "with the lr and init tuned for unit-variance inputs"
            )
    elif cause == "bn_stats":
        if True:  # (BN layers frozen in eval mode: see the Caffe groups' use_global_stats)
            m = rng.choice([1e-4, 3e-4])
            r = variant(b, f"bn_momentum_{m:.0e}", "eval_gap", cause, m)
            r.bn_momentum = m
            r.about = f"BatchNorm momentum {m:g} (PyTorch default 0.1)"
    elif cause == "small_batch":
        bs = 2 if b.family == "mlp" else rng.choice([1, 2])
        r = variant(b, f"batch{bs}_bn", "eval_gap", "small_batch;bn_stats", bs)
        r.batch = bs
        r.gain_jitter, r.offset_jitter = (0.4, 30.0) if b.data in ("images", "segmentation") else (0.0, 0.0)
        r.max_steps = 800 if b.family in ("resnet", "fcn") else 1200
        r.lr = b.lr * 0.2 if b.optimizer == "sgd" else b.lr * 0.5
        r.log_every, r.eval_every = max(10, b.log_every), max(100, 0)
        r.about = f"batch size {bs} with BatchNorm in training mode"
    elif cause == "no_pretraining":
        r = variant(b, "frozen_random_backbone", "plateau", "no_pretraining")
        task_b(r)
        r.about = (
            "fine-tuning recipe with the backbone frozen but never loaded (random weights), "
            "only the head trains"
        )
    elif cause == "depth_init":
        depth = rng.choice([6, 8, 10, 12, 16, 20])
        r = variant(b, f"gaussian001_depth{depth}", "flat", cause, depth)
        r.init_std = 0.01
        if b.family == "mlp":
            r.model = {**b.model, "hidden": [64] * (depth - 1), "bn": False}
        elif b.family in ("cnn", "vgg"):
            per = max(1, (depth - 2) // 3)
            r.model = {
                **b.model,
                "blocks": [[16] * per, [32] * per, [32] * (depth - 2 - 2 * per)],
                "bn": False,
                "fc": 32,
            }
        else:
            r.model = {
                **b.model,
                "widths": [16] * (depth // 2) + [32] * (depth - 1 - depth // 2),
                "bn": False,
            }
        if r.optimizer != "sgd":
            r.optimizer, r.momentum, r.lr = "sgd", 0.9, 0.01
        r.about = f"{depth} weight layers, no BatchNorm, every weight drawn from N(0, 0.01^2)"
    elif cause == "loss_normalization":
        r = variant(b, "sum_reduction", "diverging", cause, float(b.batch))
        r.reduction, r.clip = "sum", None
        r.about = (
            "loss summed (reduction='sum') over the batch"
            + (" and pixels" if b.data == "segmentation" else " and tokens" if b.data == "tokens" else "")
            + " with the lr tuned for the mean"
        )
    elif cause == "overfitting":
        n = {"images": rng.choice([40, 60, 80]), "tabular": 30, "segmentation": 12, "tokens": 24}[b.data]
        r = variant(b, f"tiny_data_{n}", "overfitting", cause, n)
        r.n_train, r.batch = n, min(b.batch, 16)
        r.n_val = max(b.n_val, 300) if b.data != "segmentation" else 80
        r.weight_decay = 0.0
        r.schedule, r.sched = "fixed", {}
        steps_target = 500
        r.epochs = max(40, steps_target // math.ceil(n / r.batch))
        r.eval_every = 0
        r.log_every = max(1, min(b.log_every, 10))
        if b.family == "mlp":
            r.model = {**b.model, "hidden": [512, 512], "bn": False, "dropout": 0.0}
            if b.data == "images":
                r.noise, r.contrast = 75.0, 35.0
        elif b.family == "charlm":
            r.model = {**b.model, "dim": 96}
        elif b.family in ("cnn", "vgg"):
            r.model = {**b.model, "fc": 256, "dropout": 0.0}
            r.noise, r.contrast = 70.0, 35.0
        r.about = f"only {n} training samples for a large model, no regularisation"
    else:  # data_issue
        kind = rng.choice(
            ["nan_pixels", "garbage", "garbage", "mislabel"]
            if b.data != "tokens"
            else ["garbage", "garbage", "mislabel"]
        )
        every = rng.choice([17, 23, 37, 50]) if per_epoch * b.epochs > 300 else 11
        start = rng.randint(5, max(6, per_epoch * b.epochs // 3))
        if kind == "nan_pixels":
            r = variant(b, "nan_pixels_batch", "nan", cause)
            r.fault = {"kind": kind, "every": 10**9, "start": start}
            r.about = f"a blank image normalised with std 0 puts NaN pixels into the batch of step {start}"
        else:
            r = variant(b, f"{kind}_every{every}", "spiky", cause, every)
            r.fault = {
                "kind": kind,
                "every": every,
                "start": start,
                "gain": rng.choice([30.0, 64.0]),
                "offset": 128.0,
            }
            r.about = (
                f"every {every}th batch comes from a broken loader worker (unnormalised, shuffled labels)"
                if kind == "garbage"
                else f"every {every}th batch has wrong labels (a mislabelled shard)"
            )
            r.log_every = rng.choice([1, 1, 2, 5])
    return r


def build(n_groups: int = 100) -> list[list[Recipe]]:
    """Groups of recipes (base first), formats dealt round-robin per cause / healthy kind."""
    groups: list[list[Recipe]] = []
    cause_turn: Counter = Counter()
    fmt_turn: Counter = Counter()
    healthy_turn = 0
    cause_cycle: dict[str, int] = Counter()
    for g in range(n_groups):
        family = FAMILIES[g % len(FAMILIES)]
        rng = random.Random(seed_of(f"corpus/{g}"))
        b = base_recipe(family, g, rng)
        runs = [b]
        kinds = eligible_healthy(b)
        for _ in range(1 if rng.random() < 0.6 else 2):
            kind = kinds[healthy_turn % len(kinds)]
            healthy_turn += 1 + rng.randint(0, 2)
            if any(x.scenario == f"healthy_{kind}" for x in runs):
                continue
            runs.append(healthy_variant(b, kind, rng))
        causes = eligible_causes(b)
        causes.sort(key=lambda c: (cause_turn[(c, family)], cause_turn[c], rng.random()))
        for cause in causes[:3]:
            cause_turn[(cause, family)] += 1
            cause_turn[cause] += 1
            runs.append(fault_variant(b, cause, rng))
        if any(x.cause == "no_pretraining" for x in runs) and not any(x.pretrained for x in runs):
            runs.append(healthy_variant(b, "finetune_frozen", rng))
        # reference runs first: base, then the pretrained fine-tuning (the frozen-random run's sibling)
        runs.sort(key=lambda x: (x.scenario != "healthy_base", not x.pretrained))
        for k, r in enumerate(runs):
            key = r.cause.split(";")[0] or r.scenario
            options = TORCH_FORMATS
            if r.resume:
                options = ["print_style", "keras_csv", "tfevents"]
            r.fmt = options[(fmt_turn[key] + g + k) % len(options)]
            fmt_turn[key] += 1
            r.style = PRINT_STYLES[(fmt_turn["style"] + g) % len(PRINT_STYLES)]
            if r.fmt == "print_style":
                fmt_turn["style"] += 1
        groups.append(runs)
    del cause_cycle
    return groups


CAFFE_FAMILIES = ["cnn", "mlp", "vgg", "resnet", "fcn"]
CAFFE_LR = {"mlp": 0.01, "cnn": 0.01, "vgg": 0.005, "resnet": 0.05, "fcn": 1e-3}


def caffe_base(family: str, g: int, rng: random.Random) -> Recipe:
    group = f"caffe_{family}_{g:03d}"
    r = Recipe(
        group,
        group,
        family,
        "images",
        seed_of(group),
        "healthy_base",
        "caffe_glog",
        "healthy",
        engine="caffe",
    )
    r.proto_seed = seed_of(group + "/protos")
    r.channels, r.size, r.contrast, r.noise = (1, 16, 45.0, 40.0) if family != "vgg" else (3, 16, 50.0, 35.0)
    r.n_train, r.n_val, r.n_classes = 1500, 200, rng.choice([5, 10])
    r.batch = rng.choice([16, 32, 64])
    if family == "mlp":
        r.model = {"hidden": rng.choice([[256, 64], [128], [200, 100]])}
    elif family == "cnn":
        r.model = {"ip1": rng.choice([100, 200, 500])}
    elif family == "vgg":
        r.model = {"blocks": [(16, 2), (32, 2), (32, 1)], "fc": 64}  # (width, convs) per block
    elif family == "resnet":
        r.model = {"widths": [8, 16, 32]}
    else:
        r.data, r.size, r.n_train, r.n_val, r.batch = "segmentation", 24, 600, 40, rng.choice([1, 4])
    r.lr = CAFFE_LR[family] * rng.choice([0.7, 1.0, 1.5])
    r.momentum = 0.9
    r.weight_decay = rng.choice([0.0005, 0.0001, 0.0])
    r.max_steps = rng.choice([500, 600, 800]) if family in ("mlp", "cnn") else rng.choice([300, 400, 500])
    if family == "fcn":
        r.max_steps = 600
    if family == "resnet":
        r.max_steps = 300
    r.schedule = rng.choice(["fixed", "step", "multistep", "inv", "poly"])
    if r.schedule == "step":
        r.sched = {"stepsize": r.max_steps // 2}
    elif r.schedule == "multistep":
        r.sched = {"stepvalue": [r.max_steps // 2, 3 * r.max_steps // 4]}
    r.log_every = rng.choice([1, 10, 20, 50]) if r.max_steps <= 600 else rng.choice([10, 20, 50, 100])
    r.model["average_loss"] = rng.choice([1, 1, 10, 20])
    r.eval_every = rng.choice([100, 200]) if r.max_steps >= 600 else 100
    r.epochs = max(1, r.max_steps * r.batch // r.n_train)
    r.stop_after_nan = rng.choice([20, 50, 100])
    return r


def caffe_fault(b: Recipe, cause: str, rng: random.Random) -> Recipe | None:
    if cause == "lr_too_high":
        f = rng.choice([10, 30, 100, 300, 1000])
        r = variant(b, f"lr_x{f}", "diverging", cause, f)
        r.lr = b.lr * f
        r.about = f"base_lr {r.lr:.3g} ({f}x the tuned {b.lr:.2g})"
    elif cause == "lr_too_low":
        f = rng.choice([1e2, 1e3, 1e4, 1e5, 1e6])
        r = variant(b, f"lr_div{f:.0e}".replace("+0", ""), "flat" if f >= 1e3 else "plateau", cause, 1 / f)
        r.lr = b.lr / f
        r.about = f"base_lr {r.lr:.1e} ({f:.0e}x below the tuned {b.lr:.2g})"
    elif cause == "input_scale" and b.family in ("mlp", "cnn", "vgg"):
        r = variant(b, "no_scale_raw_pixels", "nan", cause, 255.0)
        r.input_norm = "raw"
        r.about = "the Data layers lost `scale: 0.00390625` (raw 0..255 input)"
    elif cause == "bn_stats" and b.family == "resnet":
        r = variant(b, "use_global_stats_train", "nan", cause)
        r.bn_mode = "frozen_eval"
        r.about = (
            "`use_global_stats: true` in every BN layer of the TRAIN net "
            "(a deploy prototxt used for training)"
        )
    elif cause == "small_batch" and b.family == "resnet":
        r = variant(b, "batch1_bn", "eval_gap", "small_batch;bn_stats", 1)
        r.batch, r.gain_jitter, r.offset_jitter = 1, 0.4, 30.0
        r.lr = b.lr * 0.1
        r.model = {**b.model, "average_loss": 50}
        r.about = "batch_size 1 with BatchNorm on images with per-image exposure differences"
    elif cause == "depth_init" and b.family in ("mlp", "vgg"):
        depth = rng.choice([6, 8, 12, 16])
        r = variant(b, f"gaussian001_depth{depth}", "flat", cause, depth)
        r.init_std = 0.01
        if b.family == "mlp":
            r.model = {**b.model, "hidden": [64] * (depth - 1)}
        else:
            per = max(1, (depth - 3) // 3)
            r.model = {**b.model, "blocks": [(16, per), (32, per), (32, depth - 3 - 2 * per)]}
        r.about = f"{depth} weight layers without BN, every weight filler `gaussian std: 0.01`"
    elif cause == "no_pretraining":
        r = variant(b, "lr_mult0_no_weights", "plateau", cause)
        caffe_task_b(r)
        r.about = (
            "backbone layers with `lr_mult: 0` but no `-weights` (random frozen features), new head trains"
        )
    elif cause == "loss_normalization" and b.family == "fcn":
        r = variant(b, "normalize_false", "nan", cause, float(b.size * b.size))
        r.reduction = "sum"
        r.about = (
            "`loss_param { normalize: false }` (loss summed over the pixels) "
            "with base_lr for a normalised loss"
        )
    elif cause == "overfitting" and b.family in ("mlp", "cnn", "vgg"):
        n = rng.choice([60, 100])
        r = variant(b, f"tiny_lmdb_{n}", "overfitting", cause, n)
        r.n_train, r.batch, r.weight_decay, r.noise = n, 20, 0.0, 55.0
        r.schedule, r.sched = "fixed", {}
        r.max_steps = 800
        r.eval_every = 50
        if b.family == "mlp":
            r.model = {**b.model, "hidden": [500, 500]}
        elif b.family == "cnn":
            r.model = {**b.model, "ip1": 500}
        r.about = f"only {n} training images for a {b.family} without weight decay"
    elif cause == "data_issue" and b.family != "fcn":
        n_bad = rng.choice([32, 64])
        r = variant(b, f"corrupt_lmdb_{n_bad}_black_frames", "spiky", cause, n_bad)
        r.fault = {"frames": n_bad, "at": rng.randint(100, 1500), "value": 0}
        r.log_every = rng.choice([1, 5])
        r.model = {**b.model, "average_loss": 1}
        r.about = f"a stretch of {n_bad} black frames with wrong labels in the training LMDB"
    else:
        return None
    return r


def caffe_task_b(r: Recipe) -> None:
    r.proto_seed = seed_of(r.group + "/taskB")
    r.seed = seed_of(r.group + "/taskB-data")
    if r.data == "images":
        r.n_classes, r.n_train = (5 if r.n_classes == 10 else 4), 300
    else:
        r.n_train = 100
    r.lr = CAFFE_LR[r.family] * 0.2
    r.schedule, r.sched = "fixed", {}
    r.freeze = True


def caffe_healthy(b: Recipe, kind: str, rng: random.Random) -> Recipe:
    r = variant(b, f"healthy_{kind}", "healthy")
    if kind == "finetune_frozen":
        caffe_task_b(r)
        r.pretrained = True
        r.about = "`-weights` from the task-A run, backbone `lr_mult: 0`, new head on a small task B"
    elif kind == "step_decay":
        r.schedule, r.sched = "step", {"stepsize": r.max_steps // 3}
        r.about = f"lr_policy step x0.1 every {r.max_steps // 3} iterations"
    elif kind == "average_loss":
        r.model = {**b.model, "average_loss": 20}
        r.log_every = 20
        r.about = "average_loss 20 (displayed loss smoothed over 20 iterations)"
    elif kind == "short":
        r.max_steps = min(300, b.max_steps // 2)
        r.about = f"only {r.max_steps} iterations"
    elif kind == "slow_steady":
        r.lr = b.lr / 4
        r.max_steps = b.max_steps * 3 // 2
        r.about = f"base_lr {r.lr:.2g} (4x below the tuned one) for 1.5x the iterations"
    return r


CAFFE_CAUSES = {
    "mlp": [
        "lr_too_high",
        "lr_too_low",
        "input_scale",
        "depth_init",
        "no_pretraining",
        "overfitting",
        "data_issue",
    ],
    "cnn": ["lr_too_high", "lr_too_low", "input_scale", "no_pretraining", "overfitting", "data_issue"],
    "vgg": [
        "lr_too_high",
        "lr_too_low",
        "input_scale",
        "depth_init",
        "no_pretraining",
        "overfitting",
        "data_issue",
    ],
    "resnet": ["bn_stats", "small_batch", "lr_too_high", "lr_too_low", "no_pretraining", "data_issue"],
    "fcn": ["loss_normalization", "lr_too_high", "lr_too_low", "no_pretraining"],
}


def build_caffe(n_groups: int) -> list[list[Recipe]]:
    groups = []
    turn: Counter = Counter()
    for g in range(n_groups):
        family = CAFFE_FAMILIES[g % len(CAFFE_FAMILIES)]
        rng = random.Random(seed_of(f"caffe/{g}"))
        b = caffe_base(family, g, rng)
        runs = [b]
        kinds = ["step_decay", "average_loss", "short", "slow_steady"]
        runs.append(caffe_healthy(b, kinds[g % len(kinds)], rng))
        causes = sorted(CAFFE_CAUSES[family], key=lambda c: (turn[(family, c)], rng.random()))
        for cause in causes[:3]:
            turn[(family, cause)] += 1
            r = caffe_fault(b, cause, rng)
            if r is not None:
                runs.append(r)
        if any(x.cause == "no_pretraining" for x in runs):
            runs.append(caffe_healthy(b, "finetune_frozen", rng))
        runs.sort(key=lambda x: (x.scenario != "healthy_base", not x.pretrained))
        groups.append(runs)
    return groups
