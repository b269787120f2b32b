"""How each training tool spells the settings most fixes change: the learning rate, the gradient clip,
the lr warm-up, gradient accumulation, pretrained weights, and for the large-model rules the precision
(bf16 for fp16) and Adam's beta2.

A detectron2 user changes `SOLVER.BASE_LR`, an HF Trainer user `learning_rate=` in `TrainingArguments`,
a nanoGPT user `--learning_rate=`; none of them writes an optimiser line. The tool is read from the
formats the log was parsed from (the same facts the diagnosis reads), so the fix is the line to change
in the user's own setup. Tools without an entry get the PyTorch (or Keras) code from `fixes`.

Names and defaults checked against the tools' sources: detectron2 `config/defaults.py`
(`SOLVER.CLIP_GRADIENTS.*`, `SOLVER.WARMUP_ITERS`, `MODEL.WEIGHTS` with its base configs'
`detectron2://ImageNetPretrained/MSRA/R-50.pkl`), torchtitan `config/job_config.py` (`optimizer.lr`,
`optimizer.beta2`, `lr_scheduler.warmup_steps`, `training.max_norm`, default 1.0), nanoGPT `train.py`
(`learning_rate`, `warmup_iters`, `grad_clip`, default 1.0, `beta2`, `dtype`,
`gradient_accumulation_steps`), the HF `TrainingArguments` (`max_grad_norm` default 1.0, `bf16`,
`adam_beta2`, `gradient_accumulation_steps`), Lightning's `gradient_clip_val`,
`accumulate_grad_batches` and `precision="bf16-mixed"`, Ultralytics (`lr0`, `warmup_epochs`),
DeepSpeed's `WarmupLR` and `gradient_accumulation_steps`, Megatron's `--global-batch-size`, MMEngine's
`optim_wrapper` (`AmpOptimWrapper` with `dtype`, `accumulative_counts`) and `param_scheduler`, mmcv's
`optimizer`/`optimizer_config` (`GradientCumulativeOptimizerHook`)/`lr_config`, and OpenMMLab's
backbone `init_cfg` (`torchvision://resnet50`).
"""

from __future__ import annotations

from parsers.model import RunMeta

# the formats each tool writes; a run folder may hold several (a Lightning CSV and its hparams.yaml)
TOOL_FORMATS = {
    "megatron": ("megatron",),
    "deepspeed": ("deepspeed",),
    "hf": ("hf_trainer_state", "hf_stdout"),
    "lightning": ("lightning_csv", "lightning_hparams"),
    "detectron2": ("detectron2_json", "detectron2_text"),
    "mmengine": ("mmengine_json",),
    "mmcv": ("mmdet_json",),
    "openmmlab": ("mmdet_text",),  # its text lines are mmcv's or mmengine's: both spellings shown
    "yolo": ("yolo_csv",),
    "nanogpt": ("nanogpt",),
    "torchtitan": ("torchtitan",),
}
# MMDetection's own configs clip the summed detection losses at this norm
OPENMMLAB_CLIP_NORM = 35


def tool_of(meta: RunMeta) -> str | None:
    """The tool whose settings the fixes spell, or None for a plain PyTorch/Keras/Caffe log."""
    formats = {meta.format, *meta.formats}
    for tool, names in TOOL_FORMATS.items():
        if formats.intersection(names):
            return tool
    return None


def _spelled(tool: str | None, snippets: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """`tool`'s snippet from a table. An OpenMMLab text log (`openmmlab`) may be either generation: it
    gets the MMEngine and the mmcv spelling one after the other, each under its name (the one where
    the table has one; once, unnamed, where both are the same)."""
    if tool != "openmmlab":
        return snippets.get(tool or "")
    parts = [(f"# {title}\n", snippets[name]) for name, title in _OPENMMLAB if name in snippets]
    if not parts:
        return None
    if len(parts) > 1 and len({code for _, (code, _) in parts}) == 1:  # spelled alike in both
        return parts[0][1]
    return "\n".join(head + code for head, (code, _) in parts), parts[0][1][1]


_OPENMMLAB = (("mmengine", "MMEngine (MMDetection 3.x)"), ("mmcv", "mmcv (MMDetection 2.x)"))


def lr_setting(tool: str | None, lr: str) -> tuple[str, str] | None:
    """The snippet (and its language) that sets the lr to `lr` in `tool`'s own settings."""
    mmengine, mmcv = f"optim_wrapper = dict(optimizer=dict(lr={lr}))", f"optimizer = dict(lr={lr})"
    snippets = {
        "megatron": (f"--lr {lr}", "bash"),
        "deepspeed": (f'"optimizer": {{"params": {{"lr": {lr}}}}}', "json"),
        "hf": (f"TrainingArguments(..., learning_rate={lr})", "python"),
        "detectron2": (f"SOLVER.BASE_LR {lr}  # ⟦d2_override⟧", "bash"),
        "mmengine": (mmengine, "python"),
        "mmcv": (mmcv, "python"),
        "yolo": (f"model.train(..., lr0={lr})", "python"),
        "nanogpt": (f"python train.py ... --learning_rate={lr}", "bash"),
        "torchtitan": (f"--optimizer.lr {lr}", "bash"),
    }
    return _spelled(tool, snippets)


def clip_setting(tool: str | None) -> tuple[str, str] | None:
    """The snippet that clips the gradient norm in `tool`'s own settings (1.0 where the tool has no
    norm of its own)."""
    norm = OPENMMLAB_CLIP_NORM
    mmengine = f"optim_wrapper = dict(clip_grad=dict(max_norm={norm}, norm_type=2))"
    mmcv = f"optimizer_config = dict(grad_clip=dict(max_norm={norm}, norm_type=2))"
    snippets = {
        "megatron": ("--clip-grad 1.0", "bash"),
        "deepspeed": ('"gradient_clipping": 1.0', "json"),
        "hf": ("TrainingArguments(..., max_grad_norm=1.0)  # ⟦default_clip⟧", "python"),
        "lightning": ("trainer = Trainer(..., gradient_clip_val=1.0)", "python"),
        "detectron2": (
            "SOLVER.CLIP_GRADIENTS.ENABLED True SOLVER.CLIP_GRADIENTS.CLIP_TYPE norm "
            "SOLVER.CLIP_GRADIENTS.CLIP_VALUE 1.0  # ⟦d2_override⟧",
            "bash",
        ),
        "mmengine": (mmengine, "python"),
        "mmcv": (mmcv, "python"),
        "nanogpt": ("python train.py ... --grad_clip=1.0  # ⟦default_clip⟧", "bash"),
        "torchtitan": ("--training.max_norm 1.0  # ⟦default_clip⟧", "bash"),
    }
    return _spelled(tool, snippets)


def warmup_setting(tool: str | None, steps: int, lr: str) -> tuple[str, str] | None:
    """The snippet that warms the lr up linearly over `steps` (the log's own step unit) in `tool`'s
    settings; `lr` is the peak, for the tools that ask for it."""
    mmengine = (
        "param_scheduler = [\n"
        f"    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end={steps}),\n"
        "    ...  # ⟦then_decay⟧\n]"
    )
    mmcv = f"lr_config = dict(warmup='linear', warmup_iters={steps}, warmup_ratio=0.001)"
    snippets = {
        "megatron": (f"--lr-warmup-iters {steps}", "bash"),
        "deepspeed": (
            '"scheduler": {"type": "WarmupLR", "params": '
            f'{{"warmup_min_lr": 0, "warmup_max_lr": {lr}, "warmup_num_steps": {steps}}}}}',
            "json",
        ),
        "hf": (f"TrainingArguments(..., warmup_steps={steps})", "python"),
        "lightning": (
            "def configure_optimizers(self):\n    optimizer = ...\n"
            "    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, "
            f"total_iters={steps})\n"
            '    return {"optimizer": optimizer,\n'
            '            "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}  # ⟦per_step⟧',
            "python",
        ),
        "detectron2": (f"SOLVER.WARMUP_ITERS {steps}  # ⟦d2_override⟧", "bash"),
        "mmengine": (mmengine, "python"),
        "mmcv": (mmcv, "python"),
        "yolo": (f"model.train(..., warmup_epochs={steps})", "python"),  # its log counts epochs
        "nanogpt": (f"python train.py ... --warmup_iters={steps}", "bash"),
        "torchtitan": (f"--lr_scheduler.warmup_steps {steps}", "bash"),
    }
    return _spelled(tool, snippets)


def precision_setting(tool: str | None) -> tuple[str, str] | None:
    """The snippet that trains in bf16 instead of fp16 (torchtitan has no fp16; detectron2's, mmcv's and
    YOLO's AMP have no bf16 switch: they get the PyTorch code)."""
    mmengine = "optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')"
    snippets = {
        "megatron": ("--bf16  # ⟦instead_of_fp16⟧", "bash"),
        "deepspeed": ('"bf16": {"enabled": true},\n"fp16": {"enabled": false}', "json"),
        "hf": ("TrainingArguments(..., bf16=True, fp16=False)", "python"),
        "lightning": ('trainer = Trainer(..., precision="bf16-mixed")', "python"),
        "mmengine": (mmengine, "python"),
        "nanogpt": ("python train.py ... --dtype=bfloat16", "bash"),
    }
    return _spelled(tool, snippets)


def beta2_setting(tool: str | None) -> tuple[str, str] | None:
    """The snippet that sets Adam's beta2 to 0.95 in `tool`'s own settings."""
    mmengine, mmcv = (
        "optim_wrapper = dict(optimizer=dict(betas=(0.9, 0.95)))",
        "optimizer = dict(betas=(0.9, 0.95))",
    )
    snippets = {
        "megatron": ("--adam-beta2 0.95", "bash"),
        "deepspeed": ('"optimizer": {"params": {"betas": [0.9, 0.95]}}', "json"),
        "hf": ("TrainingArguments(..., adam_beta2=0.95)", "python"),
        "mmengine": (mmengine, "python"),
        "mmcv": (mmcv, "python"),
        "nanogpt": ("python train.py ... --beta2=0.95", "bash"),
        "torchtitan": ("--optimizer.beta2 0.95", "bash"),
    }
    return _spelled(tool, snippets)


def accumulation_setting(tool: str | None, steps: int, effective: int) -> tuple[str, str] | None:
    """The snippet that accumulates gradients over `steps` batches (`effective` samples per update).
    detectron2, torchtitan and YOLO have no such switch of their own (YOLO accumulates to a nominal
    batch of 64 by itself): they get the PyTorch loop."""
    mmengine = f"optim_wrapper = dict(accumulative_counts={steps})"
    mmcv = f"optimizer_config = dict(type='GradientCumulativeOptimizerHook', cumulative_iters={steps})"
    snippets = {
        "megatron": (f"--global-batch-size {effective}  # ⟦micro_batches⟧", "bash"),
        "deepspeed": (f'"gradient_accumulation_steps": {steps}', "json"),
        "hf": (f"TrainingArguments(..., gradient_accumulation_steps={steps})", "python"),
        "lightning": (f"trainer = Trainer(..., accumulate_grad_batches={steps})", "python"),
        "mmengine": (mmengine, "python"),
        "mmcv": (mmcv, "python"),
        "nanogpt": (f"python train.py ... --gradient_accumulation_steps={steps}", "bash"),
    }
    return _spelled(tool, snippets)


def weights_setting(tool: str | None) -> tuple[str, str] | None:
    """The snippet that starts from ImageNet-pretrained weights in the detection stacks' own settings
    (their usual backbone, a ResNet-50); the other tools get torchvision or Keras code."""
    snippets = {
        "detectron2": (
            "MODEL.WEIGHTS detectron2://ImageNetPretrained/MSRA/R-50.pkl  # ⟦d2_override⟧",
            "bash",
        ),
        "mmengine": (
            "model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))",
            "python",
        ),
    }
    snippets["mmcv"] = snippets["mmengine"]  # the same key in mmdet 2.x and 3.x
    return _spelled(tool, snippets)


def loss_scale_setting(tool: str | None) -> tuple[str, str] | None:
    """A dynamic fp16 loss scale that starts high, waits a window of clean steps before doubling and
    tolerates an overflow (hysteresis) before halving, in Megatron's flags or DeepSpeed's config."""
    snippets = {
        "megatron": (
            "--initial-loss-scale 65536 --min-loss-scale 1 --loss-scale-window 1000 --hysteresis 2",
            "bash",
        ),
        "deepspeed": (
            '"fp16": {"enabled": true, "initial_scale_power": 16, "loss_scale_window": 1000,\n'
            '         "hysteresis": 2, "min_loss_scale": 1}',
            "json",
        ),
    }
    return _spelled(tool, snippets)
