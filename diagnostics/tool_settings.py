"""How each training tool spells the three settings most fixes change: the learning rate, the gradient
clip and the lr warm-up.

A detectron2 user changes `SOLVER.BASE_LR`, an HF Trainer user `learning_rate=` in `TrainingArguments`,
a nanoGPT user `--learning_rate=`; none of them writes an optimiser line. The tool is read from the
formats the log was parsed from (the same facts the diagnosis reads), so the fix is the line to change
in the user's own setup. Tools without an entry get the PyTorch (or Keras) code from `fixes`.

Names and defaults checked against the tools' sources: detectron2 `config/defaults.py`
(`SOLVER.CLIP_GRADIENTS.*`, `SOLVER.WARMUP_ITERS`), torchtitan `config/job_config.py`
(`optimizer.lr`, `lr_scheduler.warmup_steps`, `training.max_norm`, default 1.0), nanoGPT `train.py`
(`learning_rate`, `warmup_iters`, `grad_clip`, default 1.0), the HF `TrainingArguments`
(`max_grad_norm` default 1.0), Ultralytics (`lr0`, `warmup_epochs`), DeepSpeed's `WarmupLR`,
MMEngine's `optim_wrapper`/`param_scheduler` and mmcv's `optimizer`/`optimizer_config`/`lr_config`.
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


def _both_openmmlab(mmengine: str, mmcv: str) -> str:
    return f"# MMEngine (MMDetection 3.x)\n{mmengine}\n# mmcv (MMDetection 2.x)\n{mmcv}"


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
        "openmmlab": (_both_openmmlab(mmengine, mmcv), "python"),
        "yolo": (f"model.train(..., lr0={lr})", "python"),
        "nanogpt": (f"python train.py ... --learning_rate={lr}", "bash"),
        "torchtitan": (f"--optimizer.lr {lr}", "bash"),
    }
    return snippets.get(tool or "")


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
        "openmmlab": (_both_openmmlab(mmengine, mmcv), "python"),
        "nanogpt": ("python train.py ... --grad_clip=1.0  # ⟦default_clip⟧", "bash"),
        "torchtitan": ("--training.max_norm 1.0  # ⟦default_clip⟧", "bash"),
    }
    return snippets.get(tool or "")


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
        "openmmlab": (_both_openmmlab(mmengine, mmcv), "python"),
        "yolo": (f"model.train(..., warmup_epochs={steps})", "python"),  # its log counts epochs
        "nanogpt": (f"python train.py ... --warmup_iters={steps}", "bash"),
        "torchtitan": (f"--lr_scheduler.warmup_steps {steps}", "bash"),
    }
    return snippets.get(tool or "")
