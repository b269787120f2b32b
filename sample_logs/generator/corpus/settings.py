"""A run's settings as its training script holds and prints them (the argparse namespace, the command
line): torch-free, so that tools that only need a recipe's settings (`bench/with_settings.py`) need no
training venv."""

from __future__ import annotations

from .recipe import Recipe

ARCH = {"mlp": "mlp", "cnn": "smallcnn", "resnet": "resnet", "vgg": "vgg", "fcn": "fcn", "charlm": "charlm"}
DATASET = {
    "images": "patterns16",
    "tabular": "sensors.csv",
    "tokens": "markov_chars",
    "segmentation": "shapes_seg",
}


def config(r: Recipe) -> dict:
    """The run's settings as its script would hold them (argparse namespace / hparams)."""
    c: dict = {
        "arch": ARCH[r.family] if r.family != "charlm" else f"charlm_{r.model.get('kind', 'gru')}",
        "data": DATASET[r.data],
        "n_train": r.n_train,
        "batch_size": r.batch,
        "epochs": r.epochs,
        "optimizer": r.optimizer,
        "lr": r.lr,
    }
    if r.optimizer in ("sgd", "rmsprop"):
        c["momentum"] = r.momentum
    if r.optimizer == "sgd":
        c["nesterov"] = r.nesterov
    c["weight_decay"] = r.weight_decay if r.optimizer != "adamw" else (r.weight_decay or 0.01)
    c["scheduler"] = {"fixed": None, "ramp": "linear_warmup"}.get(r.schedule, r.schedule)
    for k, v in r.sched.items():
        if k == "stop_diverged":
            continue
        if k == "peak":
            k, v = "peak_lr", r.lr * v
        c[k if k != "warmup" else "warmup_steps"] = v
    if r.max_steps:
        c["max_steps"] = r.max_steps
    if r.family == "mlp":
        c["hidden"] = r.model["hidden"]
    if r.family in ("cnn", "vgg"):
        c["channels"] = [w for b in r.model["blocks"] for w in b]
    if r.family in ("resnet", "fcn"):
        c["widths"] = r.model["widths"]
    if r.family == "charlm":
        c["dim"], c["n_layers"], c["vocab_size"], c["block_size"] = (
            r.model["dim"],
            r.model.get("layers", 1),
            r.vocab,
            r.seq_len,
        )
    if r.family in ("mlp", "cnn", "fcn"):
        c["batch_norm"] = bool(r.model.get("bn"))
    if r.model.get("dropout"):
        c["dropout"] = r.model["dropout"]
    if r.bn_momentum != 0.1:
        c["bn_momentum"] = r.bn_momentum
    if r.bn_mode == "frozen_eval":
        c["freeze_bn"] = True
    c["init"] = f"normal(0, {r.init_std})" if r.init_std is not None else "default"
    if r.data in ("images", "segmentation", "tabular"):
        c["normalize"] = {"standard": "mean/std", "raw": None, "scaled256": "(x - mean) / 256"}[r.input_norm]
    if r.label_smoothing:
        c["label_smoothing"] = r.label_smoothing
    if r.reduction != "mean":
        c["loss_reduction"] = r.reduction
    if r.clip:
        c["clip_grad_norm"] = r.clip
    c["augment"] = r.augment
    c["pretrained"] = f"ckpt/{r.group}_taskA.pt" if r.pretrained else None
    c["freeze_backbone"] = r.freeze
    c["log_interval"] = r.log_every
    c["eval_interval"] = r.eval_every or "epoch"
    c["seed"] = r.seed
    return c


def _py(v) -> str:
    return repr(v)


def namespace_line(c: dict) -> str:
    return "Namespace(" + ", ".join(f"{k}={_py(v)}" for k, v in c.items()) + ")"


def command_line(c: dict, script: str) -> str:
    parts = [f"python {script}"]
    for k, v in c.items():
        flag = "--" + k.replace("_", "-")
        if v is None or v is False:
            continue
        if v is True:
            parts.append(flag)
        elif isinstance(v, list):
            parts.append(f"{flag} " + " ".join(str(x) for x in v))
        else:
            parts.append(f"{flag} {v}")
    return " ".join(parts)
