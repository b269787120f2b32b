"""Concrete fixes computed from the run's own values, for the framework the log came from.

Each builder returns `Fix` objects: a catalogue key with the numbers (so the sentence renders in
English or Chinese) and, where one helps, a copyable snippet: Caffe prototxt, PyTorch, Keras 3, or a
Megatron flag / DeepSpeed config block. The key and numbers do not depend on the framework (the closed
loop applies a fix by them); only the snippet does.
"""

from __future__ import annotations

import math

from diagnostics.context import Context
from diagnostics.model import Fix
from diagnostics.tool_settings import (
    accumulation_setting,
    beta2_setting,
    clip_setting,
    loss_scale_setting,
    lr_setting,
    precision_setting,
    tool_of,
    warmup_setting,
    weights_setting,
)

# Weights that the usual Caffe recipes fine-tune from, and the torchvision equivalents.
CAFFE_WEIGHTS = {
    "vgg": "VGG_ILSVRC_16_layers.caffemodel",
    "fcn": "VGG_ILSVRC_16_layers.caffemodel",
    "resnet": "ResNet-50-model.caffemodel",
    "googlenet": "bvlc_googlenet.caffemodel",
    "inception": "bvlc_googlenet.caffemodel",
}
TORCHVISION_MODELS = {
    "vgg": 'torchvision.models.vgg16(weights="IMAGENET1K_V1")',
    "fcn": 'torchvision.models.segmentation.fcn_resnet50(weights_backbone="IMAGENET1K_V1", num_classes=C)',
    "resnet": 'torchvision.models.resnet50(weights="IMAGENET1K_V2")',
    "googlenet": 'torchvision.models.googlenet(weights="IMAGENET1K_V1")',
    "inception": 'torchvision.models.inception_v3(weights="IMAGENET1K_V1")',
    "densenet": 'torchvision.models.densenet121(weights="IMAGENET1K_V1")',
}
KERAS_APPLICATIONS = {
    "vgg": "VGG16",
    "fcn": "VGG16",  # Keras has no FCN: its VGG16 backbone, as FCN-32s uses
    "resnet": "ResNet50",
    "googlenet": "InceptionV3",
    "inception": "InceptionV3",
    "densenet": "DenseNet121",
}
TORCH_OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "nesterov": "SGD",
}


def fmt_lr(value: float) -> str:
    """An lr as people write it: 2 significant digits, short exponent (0.0065, 1e-8, 2.5e-5)."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    text = f"{value:.2g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def is_caffe(ctx: Context) -> bool:
    return ctx.meta.framework == "caffe"


def is_keras(ctx: Context) -> bool:
    """A Keras log (its CSVLogger file or console output): the snippets are Keras 3 code."""
    return ctx.meta.framework == "keras"


def _lr_name(ctx: Context) -> str:
    return "base_lr" if is_caffe(ctx) else "lr"


def _optimizer_line(ctx: Context, lr: str, extra: str = "") -> str:
    """The run's optimiser with `lr` (and `extra` arguments), in PyTorch or Keras 3: their optimiser
    names are the same."""
    name = TORCH_OPTIMIZERS.get((ctx.meta.optimizer or "sgd").lower(), "SGD")
    momentum = f", momentum={ctx.meta.momentum:g}" if name == "SGD" and ctx.meta.momentum else ""
    if is_keras(ctx):
        return f"optimizer = keras.optimizers.{name}(learning_rate={lr}{momentum}{extra})"
    return f"optimizer = torch.optim.{name}(model.parameters(), lr={lr}{momentum}{extra})"


def _lr_text(ctx: Context) -> str:
    """The run's lr as a literal, or the name `lr` when the log does not show it."""
    return fmt_lr(ctx.lr_value) if ctx.lr_value is not None else "lr"


def change_lr(ctx: Context, factor: float, key: str, reason: dict | None = None) -> list[Fix]:
    """Multiply the lr by `factor` (0.1: ten times lower); `reason` adds the numbers the text quotes."""
    old, reason = ctx.lr_value, reason or {}
    if old is None:
        return [Fix(f"{key}_unknown", {"factor": round(1 / factor if factor < 1 else factor), **reason})]
    new = fmt_lr(old * factor)
    params = {"name": _lr_name(ctx), "old": f"{old:g}", "new": new, **reason}
    if is_caffe(ctx):
        return [Fix(key, params, f"base_lr: {new}", "prototxt")]
    snippet, lang = lr_setting(tool_of(ctx.meta), new) or (_optimizer_line(ctx, new), "python")
    return [Fix(key, params, snippet, lang)]


def clip_gradients(ctx: Context) -> Fix:
    if is_caffe(ctx):
        return Fix("fixes.clip_gradients", {}, "clip_gradients: 10", "prototxt")
    own = clip_setting(tool_of(ctx.meta))
    if own is not None:
        return Fix("fixes.clip_gradients", {}, *own)
    if is_keras(ctx):
        return Fix(
            "fixes.clip_gradients", {}, _optimizer_line(ctx, _lr_text(ctx), ", clipnorm=1.0"), "python"
        )
    return Fix(
        "fixes.clip_gradients",
        {},
        "loss.backward()\ntorch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\noptimizer.step()",
        "python",
    )


def _keras_warmup(ctx: Context, steps: int) -> str:
    """A linear warm-up to the run's lr over `steps`, then a cosine decay over the run."""
    return (
        "schedule = keras.optimizers.schedules.CosineDecay(\n"
        f"    initial_learning_rate=0.0, decay_steps=total_steps, warmup_target={_lr_text(ctx)},"
        f" warmup_steps={steps})\n"
        f"{_optimizer_line(ctx, 'schedule')}"
    )


# Published recipes warm up over 0.3 % (nanoGPT) to 6 % (RoBERTa on GLUE) of their steps, detectron2 and
# BERT over about 1 %; a run that blew up without any warm-up gets the upper end of that range.
WARMUP_SHARE = 0.05


def warmup_length(ctx: Context) -> int:
    """Steps (as the log counts them) to warm up over: `WARMUP_SHARE` of the planned run (`max_iter`)
    or, when the log does not state it, of the steps it logged, at two significant digits."""
    logged = [
        int(curve.steps[-1]) for curve in (ctx.train_loss, ctx.val_loss) if curve is not None and len(curve)
    ]
    run = max([ctx.meta.max_iter or 0, *logged])
    steps = max(1, round(run * WARMUP_SHARE))
    return int(float(f"{steps:.2g}"))


def _warmup_snippet(ctx: Context, steps: int) -> tuple[str, str]:
    if is_keras(ctx):
        return _keras_warmup(ctx, steps), "python"
    own = warmup_setting(tool_of(ctx.meta), steps, _lr_text(ctx))
    return own or (
        f"scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters={steps})",
        "python",
    )


def warmup(ctx: Context) -> Fix:
    """A linear warm-up to the run's lr over `warmup_length` steps (Caffe has no warm-up policy)."""
    steps = warmup_length(ctx)
    if is_caffe(ctx):
        return Fix("fixes.warmup_caffe", {})
    share = f"{WARMUP_SHARE * 100:g}"
    return Fix("fixes.warmup", {"steps": steps, "share": share}, *_warmup_snippet(ctx, steps))


def input_scale(ctx: Context) -> list[Fix]:
    meta = ctx.meta
    if is_keras(ctx):
        snippet = "norm = keras.layers.Normalization()  # ⟦first_layer⟧\nnorm.adapt(x_train)"
        return [Fix("fixes.normalize_input", {}, snippet, "python")]
    if not is_caffe(ctx):
        return [
            Fix(
                "fixes.normalize_input",
                {},
                "transforms.Compose([\n    transforms.ToTensor(),  # [0, 255] -> [0, 1]\n"
                "    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),\n])",
                "python",
            )
        ]
    lr = f"{ctx.lr_value:g}" if ctx.lr_value else "?"
    mean = _mean_lines(ctx)
    if meta.input_scale is None:  # raw pixels whose first loss was huge: scale them down
        add = f"transform_param {{\n  scale: 0.00390625  # [0, 255] -> [0, 1]\n{mean}}}"
        return [Fix("fixes.add_scale", {}, add, "prototxt")]
    keep_raw = "transform_param {\n  # ⟦no_scale⟧\n" + mean + "}"
    fixes = [Fix("fixes.remove_scale", {"lr": lr}, keep_raw, "prototxt")]
    if meta.input_scale:
        keep = f"transform_param {{\n  scale: {meta.input_scale:g}\n{mean}}}"
        fixes.append(
            Fix("fixes.keep_scale_retune", {"scale": f"{meta.input_scale:g}", "lr": lr}, keep, "prototxt")
        )
    return fixes


def _mean_lines(ctx: Context) -> str:
    meta = ctx.meta
    if meta.mean_file:
        return f'  mean_file: "{meta.mean_file}"  # ⟦mean_raw⟧\n'
    values = meta.mean_value or [104.0, 117.0, 123.0]
    raw = [v * 255 if max(values) <= 1.5 else v for v in values]
    return "".join(f"  mean_value: {v:.4g}\n" for v in raw)


def mean_in_raw_units(ctx: Context) -> Fix:
    values = ctx.meta.mean_value
    raw = [round(v * 255, 2) for v in values]
    snippet = (
        "transform_param {\n"
        + f"  scale: {ctx.meta.input_scale:g}\n"
        + "".join(f"  mean_value: {v:g}\n" for v in raw)
        + "}"
    )
    return Fix(
        "fixes.mean_raw_units",
        {"old": ", ".join(f"{v:g}" for v in values), "new": ", ".join(f"{v:g}" for v in raw)},
        snippet,
        "prototxt",
    )


def bn_batch_stats(ctx: Context) -> list[Fix]:
    if is_caffe(ctx):
        names = ", ".join(bn.name for bn in ctx.frozen_bn[:3]) or "BatchNorm"
        first = ctx.frozen_bn[0].name if ctx.frozen_bn else "bn_conv1"
        return [
            Fix(
                "fixes.bn_use_batch_stats",
                {"layers": names},
                f'layer {{\n  name: "{first}"\n  type: "BatchNorm"\n  include {{ phase: TRAIN }}\n'
                "  batch_norm_param { use_global_stats: false }\n}",
                "prototxt",
            ),
            Fix(
                "fixes.bn_remove_param",
                {},
                "# ⟦delete⟧ batch_norm_param { use_global_stats: true }",
                "prototxt",
            ),
        ]
    if is_keras(ctx):
        snippet = (
            "logits = model(x, training=True)            # ⟦bn_train⟧\n"
            "val_logits = model(x_val, training=False)   # ⟦bn_eval⟧"
        )
        return [Fix("fixes.bn_train_eval", {}, snippet, "python")]
    return [
        Fix(
            "fixes.bn_train_eval",
            {},
            "model.train()   # ⟦bn_train⟧\n"
            "for x, y in train_loader: ...\n"
            "model.eval()    # ⟦bn_eval⟧\n"
            "with torch.no_grad():\n    for x, y in val_loader: ...",
            "python",
        )
    ]


def small_batch(ctx: Context) -> list[Fix]:
    batch = ctx.meta.batch_size or 1
    target = ctx.params.target_batch
    steps = max(2, math.ceil(target / batch))
    params = {"batch": batch, "iter_size": steps, "effective": steps * batch}
    if is_caffe(ctx):
        fixes = [Fix("fixes.iter_size", params, f"iter_size: {steps}", "prototxt")]
    elif is_keras(ctx):
        extra = f", gradient_accumulation_steps={steps}"
        fixes = [Fix("fixes.accumulate", params, _optimizer_line(ctx, _lr_text(ctx), extra), "python")]
    elif (own := accumulation_setting(tool_of(ctx.meta), steps, steps * batch)) is not None:
        fixes = [Fix("fixes.accumulate", params, *own)]
    else:
        fixes = [
            Fix(
                "fixes.accumulate",
                params,
                f"accum = {steps}\nfor i, (x, y) in enumerate(loader):\n"
                "    loss = criterion(model(x), y) / accum\n    loss.backward()\n"
                "    if (i + 1) % accum == 0:\n        optimizer.step()\n        optimizer.zero_grad()",
                "python",
            )
        ]
    if ctx.meta.batchnorm:
        snippet = {
            "caffe": None,
            "keras": "keras.layers.GroupNormalization(groups=32)  # ⟦groupnorm_keras⟧",
        }.get(ctx.meta.framework, "nn.GroupNorm(num_groups=32, num_channels=C)  # ⟦groupnorm⟧")
        fixes.append(Fix("fixes.groupnorm", {"batch": batch}, snippet, "python" if snippet else None))
    return fixes


def pretrained(ctx: Context) -> list[Fix]:
    arch = ctx.deep_architecture or "vgg"
    if is_caffe(ctx):
        weights = CAFFE_WEIGHTS.get(arch, "pretrained.caffemodel")
        return [
            Fix(
                "fixes.load_weights_caffe",
                {"weights": weights},
                f"caffe train --solver solver.prototxt --weights {weights}\n"
                f'# ⟦or_solver⟧  weights: "{weights}"',
                "bash",
            ),
            Fix("fixes.finetune_modes", {}),
        ]
    if is_keras(ctx):
        name = KERAS_APPLICATIONS.get(arch, "ResNet50")
        base = f'base = keras.applications.{name}(weights="imagenet", include_top=False, pooling="avg")'
        head = (
            "base.trainable = False   # ⟦frozen⟧\n"
            "model = keras.Sequential([base, keras.layers.Dense(num_classes)])  # ⟦new_head⟧"
        )
        return [
            Fix("fixes.load_weights_torch", {}, base, "python"),
            Fix("fixes.finetune_modes", {}, head, "python"),
        ]
    own = weights_setting(tool_of(ctx.meta))
    if own is not None:
        return [Fix("fixes.load_weights_torch", {}, *own), Fix("fixes.finetune_modes", {})]
    model = TORCHVISION_MODELS.get(arch, TORCHVISION_MODELS["resnet"])
    return [
        Fix("fixes.load_weights_torch", {}, f"model = {model}", "python"),
        Fix(
            "fixes.finetune_modes",
            {},
            "for p in model.parameters():\n    p.requires_grad = False   # ⟦frozen⟧\n"
            "model.fc = nn.Linear(model.fc.in_features, num_classes)  # ⟦new_head⟧",
            "python",
        ),
    ]


def init(ctx: Context) -> list[Fix]:
    if is_caffe(ctx):
        return [
            Fix("fixes.msra_init", {}, 'weight_filler { type: "msra" }', "prototxt"),
            Fix(
                "fixes.add_batchnorm",
                {},
                'layer { type: "BatchNorm" ... }\nlayer { type: "Scale" scale_param { bias_term: true } }',
                "prototxt",
            ),
        ]
    if is_keras(ctx):
        conv = 'keras.layers.Conv2D(c_out, 3, padding="same"'
        return [
            Fix("fixes.msra_init", {}, f'{conv}, kernel_initializer="he_normal")', "python"),
            Fix(
                "fixes.add_batchnorm",
                {},
                f"keras.Sequential([{conv}), keras.layers.BatchNormalization(), keras.layers.ReLU()])",
                "python",
            ),
        ]
    return [
        Fix(
            "fixes.msra_init",
            {},
            'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")',
            "python",
        ),
        Fix(
            "fixes.add_batchnorm",
            {},
            "nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())",
            "python",
        ),
    ]


def loss_normalization(ctx: Context, suspected: bool = False) -> list[Fix]:
    """Average the loss (or divide the lr). `suspected`: only the first loss's size points at a sum,
    so the fix says to check the reduction rather than that it is a sum."""
    lr = ctx.lr_value or 1e-10
    pixels = pixels_per_image(ctx)
    meta = ctx.meta
    if not is_caffe(ctx):
        # PyTorch's losses average by default: a loss flagged for its normalisation was summed.
        known = ctx.lr_value is not None
        key = (
            "fixes.reduction_mean_check"
            if suspected
            else ("fixes.reduction_mean" if known else "fixes.reduction_mean_no_lr")
        )
        snippet = "criterion = torch.nn.CrossEntropyLoss(reduction='mean')  # ⟦mean_reduction⟧"
        if is_keras(ctx):
            snippet = (
                'loss = keras.losses.SparseCategoricalCrossentropy(reduction="sum_over_batch_size")'
                "  # ⟦mean_reduction⟧"
            )
        return [
            Fix(
                key,
                {"lr": fmt_lr(lr)} if known and not suspected else {},
                snippet,
                "python",
            )
        ]
    if suspected or meta.loss_normalize is False or (meta.loss_normalization or "").upper() == "NONE":
        # Summed with an lr chosen for a mean: average the loss (the lr stays), or divide the lr.
        fixes = [
            Fix(
                "fixes.normalize_true_keep_lr",
                {"lr": fmt_lr(lr)},
                f"loss_param {{ normalize: true }}  # ⟦mean_pixels⟧\nbase_lr: {fmt_lr(lr)}",
                "prototxt",
            )
        ]
        if pixels:
            new = fmt_lr(lr / pixels)
            params = {"lr": fmt_lr(lr), "pixels": pixels, "new": new}
            fixes.append(Fix("fixes.sum_smaller_lr", params, f"base_lr: {new}", "prototxt"))
        return fixes
    fixes = [
        Fix(
            "fixes.normalize_false",
            {"lr": fmt_lr(lr)},
            f"loss_param {{ normalize: false }}  # ⟦sum_pixels⟧\nbase_lr: {fmt_lr(lr)}",
            "prototxt",
        ),
    ]
    if pixels:
        new = fmt_lr(lr * pixels)
        fixes.append(
            Fix(
                "fixes.normalize_true",
                {"lr": fmt_lr(lr), "pixels": pixels, "new": new},
                f"loss_param {{ normalize: true }}  # ⟦mean_pixels⟧\nbase_lr: {new}",
                "prototxt",
            )
        )
    return fixes


def pixels_per_image(ctx: Context) -> int | None:
    size = ctx.meta.input_size or ctx.meta.crop_size
    return int(size) * int(size) if size else None


def overfitting(ctx: Context, step: int | None) -> list[Fix]:
    wd = ctx.meta.weight_decay
    fixes = [Fix("fixes.early_stop", {"step": step if step is not None else "?"})]
    new_wd = f"{wd * 10:g}" if wd else "5e-4"
    if is_caffe(ctx):
        fixes.append(Fix("fixes.weight_decay", {"new": new_wd}, f"weight_decay: {new_wd}", "prototxt"))
    elif is_keras(ctx):
        snippet = f"optimizer = keras.optimizers.AdamW(learning_rate={_lr_text(ctx)}, weight_decay={new_wd})"
        fixes.append(Fix("fixes.weight_decay", {"new": new_wd}, snippet, "python"))
    else:
        fixes.append(
            Fix(
                "fixes.weight_decay",
                {"new": new_wd},
                f"torch.optim.AdamW(model.parameters(), lr=lr, weight_decay={new_wd})",
                "python",
            )
        )
    fixes.append(Fix("fixes.augment", {}))
    return fixes


def check_data(ctx: Context) -> list[Fix]:
    c = ctx.classes[0] if ctx.classes else None
    if is_caffe(ctx):
        fixes = [
            Fix(
                "fixes.debug_info",
                {},
                "debug_info: true  # ⟦debug_info⟧",
                "prototxt",
            )
        ]
    elif is_keras(ctx):
        snippet = (
            "callbacks = [keras.callbacks.TerminateOnNaN()]\n"
            "assert np.isfinite(x_train).all(), 'bad input data'"
        )
        fixes = [Fix("fixes.detect_anomaly", {}, snippet, "python")]
    else:
        fixes = [
            Fix(
                "fixes.detect_anomaly",
                {},
                "torch.autograd.set_detect_anomaly(True)\nassert torch.isfinite(x).all(), 'bad input batch'",
                "python",
            )
        ]
    fixes.append(Fix("fixes.check_labels", {"max": (c - 1) if c else "C-1"}))
    return fixes


def eval_pipeline(ctx: Context) -> Fix:
    snippet = {
        "caffe": None,
        "keras": "val_loss = model.evaluate(x_val, y_val)  # ⟦inference_mode⟧",
    }.get(
        ctx.meta.framework,
        "model.eval()\nwith torch.no_grad():\n    val_loss = criterion(model(x_val), y_val)",
    )
    return Fix("fixes.same_preprocessing", {}, snippet, "python" if snippet else None)


def lr_policy(ctx: Context, missing: list[str]) -> Fix:
    lines = {
        "max_iter": "max_iter: 100000",
        "stepsize": "stepsize: 10000",
        "stepvalue": "stepvalue: 30000",
        "gamma": "gamma: 0.1",
        "power": "power: 0.9",
    }
    snippet = "\n".join(lines[m] for m in missing if m in lines)
    return Fix(
        "fixes.lr_policy_params",
        {"policy": ctx.meta.lr_policy, "missing": ", ".join(missing)},
        snippet,
        "prototxt",
    )


def _framework_code(ctx: Context) -> str:
    """Keras or PyTorch: the code for a tool without a setting of its own (`tool_settings`)."""
    return "keras" if is_keras(ctx) else "pytorch"


_BF16 = {  # the tools with a precision setting of their own: `tool_settings.precision_setting`
    "pytorch": (
        "with torch.autocast(device_type='cuda', dtype=torch.bfloat16):\n    loss = model(x, y)\n"
        "loss.backward()  # ⟦no_grad_scaler⟧",
        "python",
    ),
    "keras": (
        'keras.mixed_precision.set_global_policy("mixed_bfloat16")  # ⟦instead_of_mixed_float16⟧',
        "python",
    ),
}
_SCALE_SETTINGS = {  # Megatron's and DeepSpeed's own: `tool_settings.loss_scale_setting`
    "pytorch": (
        "scaler = torch.amp.GradScaler('cuda', init_scale=2.**16, growth_interval=2000)",
        "python",
    ),
    "keras": (
        "optimizer = keras.optimizers.LossScaleOptimizer(\n"
        "    optimizer, initial_scale=2.0**16, dynamic_growth_steps=2000)",
        "python",
    ),
}


def bf16(ctx: Context) -> Fix:
    """bf16 has fp32's exponent range: no loss scale, no overflow to skip (BLOOM's remedy)."""
    snippet, lang = precision_setting(tool_of(ctx.meta)) or _BF16[_framework_code(ctx)]
    return Fix("fixes.use_bf16", {}, snippet, lang)


def loss_scale_settings(ctx: Context) -> Fix:
    """A dynamic scaler that starts high, waits a window of clean steps before doubling and tolerates
    an overflow (hysteresis) before halving."""
    snippet, lang = loss_scale_setting(tool_of(ctx.meta)) or _SCALE_SETTINGS[_framework_code(ctx)]
    return Fix("fixes.loss_scale_settings", {}, snippet, lang)


ROLLBACK_STEPS = 100  # PaLM restarted ~100 steps before a spike, then skipped 200-500 batches


def rollback_spike(step: int) -> Fix:
    """Restart from a checkpoint about 100 steps before the spike at `step` and skip the batches that
    met it (PaLM §5.1), with the run's own step numbers."""
    return Fix("fixes.rollback_spike", {"step": step, "target": max(0, step - ROLLBACK_STEPS)})


def rollback_scale(peak_step: int) -> Fix:
    """Restart from a checkpoint saved before the loss scale began to slide (BLOOM-104B's chronicles:
    the scale showed the divergence long before the loss did)."""
    return Fix("fixes.rollback_scale", {"target": peak_step})


def longer_warmup(ctx: Context, warmup_steps: int) -> Fix:
    """Twice the warm-up: the gradients are largest where the ramp ends (BLOOM-104B)."""
    longer = 2 * warmup_steps
    if is_caffe(ctx):
        return Fix("fixes.longer_warmup", {"old": warmup_steps, "new": longer})
    return Fix("fixes.longer_warmup", {"old": warmup_steps, "new": longer}, *_warmup_snippet(ctx, longer))


def adam_beta2(ctx: Context) -> Fix:
    """beta2 0.95: a ~20-step second-moment window that follows a sudden gradient growth (OPT, BLOOM)."""
    old = f"{ctx.meta.adam_beta2:g}" if ctx.meta.adam_beta2 is not None else "0.999"
    params = {"old": old, "new": "0.95"}
    own = beta2_setting(tool_of(ctx.meta))
    if own is not None:
        return Fix("fixes.adam_beta2", params, *own)
    if is_keras(ctx):
        name = "Adam" if (ctx.meta.optimizer or "").lower() == "adam" else "AdamW"
        snippet = f"optimizer = keras.optimizers.{name}(learning_rate={_lr_text(ctx)}, beta_2=0.95)"
        return Fix("fixes.adam_beta2", params, snippet, "python")
    name = TORCH_OPTIMIZERS.get((ctx.meta.optimizer or "adamw").lower(), "AdamW")
    return Fix(
        "fixes.adam_beta2",
        params,
        f"optimizer = torch.optim.{name}(model.parameters(), lr={_lr_text(ctx)}, betas=(0.9, 0.95))",
        "python",
    )
