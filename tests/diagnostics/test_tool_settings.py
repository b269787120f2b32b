"""A fix is the line to change in the user's own tool: `SOLVER.BASE_LR` for detectron2, `learning_rate=` in
the HF `TrainingArguments`, `--warmup_iters=` for nanoGPT, not an optimiser line nobody in those stacks
writes. Real runs of each tool (the repo's samples; the public logs when `../shared` is there) go through
the whole diagnosis; every tool's snippets parse in their language, in English and Chinese."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import shlex

import numpy as np
import pytest
from diag_helpers import REAL_LOGS, SAMPLE_LOGS, make_log

import parsers.formats
from diagnostics import diagnose, fitted, fixes
from diagnostics.context import Context
from diagnostics.model import Fix
from diagnostics.tool_settings import TOOL_FORMATS, tool_of
from parsers import load_paths
from parsers.model import RunMeta

LR_FIXES = ("fixes.lower_lr", "fixes.raise_lr", "fixes.lr_from_warmup")


def _fixes_of(path, *keys: str) -> dict[str, Fix]:
    """The diagnosis's fixes of one real run, by key (the first of each)."""
    found: dict[str, Fix] = {}
    for cause in diagnose(load_paths([path])).causes:
        for fix in cause.fixes:
            if fix.key in keys:
                found.setdefault(fix.key, fix)
    return found


def _context(path) -> Context:
    paths = sorted(path.iterdir()) if path.is_dir() else [path]
    return Context(load_paths(paths), fitted.PARAMS)


def test_every_tool_names_formats_the_parsers_write():
    written = set()
    for module in pkgutil.iter_modules(parsers.formats.__path__):
        written.add(getattr(importlib.import_module(f"parsers.formats.{module.name}"), "FORMAT", None))
    named = {name for names in TOOL_FORMATS.values() for name in names}
    assert named <= written, named - written


def test_an_hf_trainer_run_changes_its_training_arguments():
    found = _fixes_of(
        SAMPLE_LOGS / "corpus" / "runs" / "charlm_017_mislabel_every17" / "trainer_state.json.gz",
        "fixes.lower_lr",
        "fixes.clip_gradients",
    )
    lower = found["fixes.lower_lr"]
    assert lower.snippet == f"TrainingArguments(..., learning_rate={lower.params['new']})"
    clip = found["fixes.clip_gradients"]
    assert clip.code("en").startswith("TrainingArguments(..., max_grad_norm=1.0)  # the default")
    assert "默认值" in clip.code("zh")


def test_a_nanogpt_run_changes_its_config_flags():
    found = _fixes_of(SAMPLE_LOGS / "cross_run" / "bad_data_seed1_lr1e-3.log", "fixes.lower_lr")
    assert found["fixes.lower_lr"].snippet == "python train.py ... --learning_rate=0.0001"
    assert found["fixes.lower_lr"].snippet_lang == "bash"


def test_a_megatron_warm_up_is_a_share_of_its_planned_iterations():
    path = SAMPLE_LOGS / "llm" / "megatron_fp16_loss_scale_collapse.log"
    log = load_paths([path])
    assert log.meta.max_iter == 500  # `iteration       10/     500 |`
    assert log.meta.where["max_iter"].line == 4
    warmup = _fixes_of(path, "fixes.warmup")["fixes.warmup"]
    assert warmup.params == {"steps": 25, "share": "5"}
    assert warmup.snippet == "--lr-warmup-iters 25"
    assert "first 25 steps (5 % of the run" in warmup.text("en")
    assert "Caffe" not in warmup.text("en")


def test_a_torchtitan_run_changes_its_job_config():
    path = SAMPLE_LOGS / "llm" / "replay" / "torchtitan_beta2_0999_high_lr_1.log.gz"
    found = _fixes_of(path, "fixes.clip_gradients", "fixes.warmup")
    assert found["fixes.clip_gradients"].snippet.startswith("--training.max_norm 1.0")
    last_step = int(_context(path).train_loss.steps[-1])
    steps = found["fixes.warmup"].params["steps"]
    assert steps == round(last_step * fixes.WARMUP_SHARE)  # no planned length in its lines: the logged one
    assert found["fixes.warmup"].snippet == f"--lr_scheduler.warmup_steps {steps}"


def test_a_lightning_warm_up_steps_its_scheduler_per_step():
    ctx = _context(SAMPLE_LOGS / "corpus" / "runs" / "mlp_000_batch2_bn")
    assert tool_of(ctx.meta) == "lightning"
    warmup = fixes.warmup(ctx)
    assert '"interval": "step"' in warmup.snippet  # Lightning steps a scheduler once per epoch by default
    assert f"total_iters={warmup.params['steps']}" in warmup.snippet
    assert fixes.clip_gradients(ctx).snippet == "trainer = Trainer(..., gradient_clip_val=1.0)"


def test_a_lightning_batch_of_two_accumulates_in_its_trainer():
    path = SAMPLE_LOGS / "corpus" / "runs" / "mlp_000_batch2_bn"
    found: dict[str, Fix] = {}
    for cause in diagnose(load_paths(sorted(path.iterdir()))).causes:
        found.update({fix.key: fix for fix in cause.fixes})
    accumulate = found["fixes.accumulate"]
    assert accumulate.params == {"batch": 2, "iter_size": 16, "effective": 32}
    assert accumulate.snippet == "trainer = Trainer(..., accumulate_grad_batches=16)"


def test_a_plain_loop_and_caffe_keep_their_own_code():
    plain = _context(SAMPLE_LOGS / "corpus" / "runs" / "mlp_000")
    assert tool_of(plain.meta) is None
    assert fixes.change_lr(plain, 0.1, "fixes.lower_lr")[0].snippet.startswith("optimizer = torch.optim.")
    caffe = _context(SAMPLE_LOGS / "corpus" / "runs" / "caffe_cnn_000")
    warmup = fixes.warmup(caffe)
    assert (warmup.key, warmup.snippet) == ("fixes.warmup_caffe", None)
    assert "no warm-up policy" in warmup.text("en") and "预热" in warmup.text("zh")


@pytest.mark.parametrize(
    ("relative", "tool", "spelling"),
    [
        ("detectron2_json/pothole_frcnn_metrics.json", "detectron2", "SOLVER.BASE_LR "),
        ("other/detectron2_text_frcnn_semisup_stage_lr0.04.txt", "detectron2", "SOLVER.BASE_LR "),
        ("mmdet_json/atss_r50_fpn_custom.log.json", "mmcv", "optimizer = dict(lr="),
        (
            "mmdet_text/faster_rcnn_carafed_coco_1x.log",
            "openmmlab",
            "optim_wrapper = dict(optimizer=dict(lr=",
        ),
        ("yolo_csv/yolov5_helmet_3ep_results.csv", "yolo", "model.train(..., lr0="),
    ],
)
def test_public_logs_of_each_tool_get_its_spelling(relative, tool, spelling):
    path = REAL_LOGS / relative
    if not path.exists():
        pytest.skip("../shared/real_logs is not here")
    ctx = _context(path)
    assert tool_of(ctx.meta) == tool
    assert ctx.lr_value is not None
    (lower,) = fixes.change_lr(ctx, 0.1, "fixes.lower_lr")
    assert spelling + lower.params["new"] in lower.snippet
    weights = fixes.pretrained(ctx)[0].snippet
    assert ("torchvision.models" in weights) == (tool == "yolo")  # the detection stacks load their own


SPELLINGS = {  # tool: (accumulation over 4 batches of 8, pretrained weights)
    "megatron": ("--global-batch-size 32", "torchvision"),
    "deepspeed": ('"gradient_accumulation_steps": 4', "torchvision"),
    "hf": ("gradient_accumulation_steps=4", "torchvision"),
    "lightning": ("accumulate_grad_batches=4", "torchvision"),
    "detectron2": ("optimizer.step()", "MODEL.WEIGHTS detectron2://ImageNetPretrained/MSRA/R-50.pkl"),
    "mmengine": ("accumulative_counts=4", "checkpoint='torchvision://resnet50'"),
    "mmcv": ("cumulative_iters=4", "checkpoint='torchvision://resnet50'"),
    "openmmlab": ("cumulative_iters=4", "checkpoint='torchvision://resnet50'"),
    "yolo": ("optimizer.step()", "torchvision"),
    "nanogpt": ("--gradient_accumulation_steps=4", "torchvision"),
    "torchtitan": ("optimizer.step()", "torchvision"),
}


def _meta_of(tool: str) -> RunMeta:
    return RunMeta(framework="pytorch", format=TOOL_FORMATS[tool][0], max_iter=4000, batch_size=8)


def _parses(fix: Fix, lang: str) -> None:
    """The snippet, rendered in `lang`, is valid code in its language."""
    code = fix.code(lang)
    if fix.snippet_lang == "python":
        ast.parse(code)
    elif fix.snippet_lang == "json":
        json.loads("{" + code + "}")
    else:
        assert fix.snippet_lang == "bash"
        words = shlex.split(code, comments=True)
        assert words and "⟦" not in code


@pytest.mark.parametrize("tool", sorted(TOOL_FORMATS))
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_tool_snippet_is_valid_code(tool, lang):
    rise = np.linspace(2.0, 9.0, 50)
    ctx = Context(make_log(rise, lr=np.full(50, 0.02), meta=_meta_of(tool)), fitted.PARAMS)
    assert tool_of(ctx.meta) == tool
    built = [
        *fixes.change_lr(ctx, 0.1, "fixes.lower_lr"),
        fixes.clip_gradients(ctx),
        fixes.warmup(ctx),
        fixes.longer_warmup(ctx, 100),
        fixes.bf16(ctx),
        fixes.adam_beta2(ctx),
        *fixes.small_batch(ctx),
        *fixes.pretrained(ctx),
        fixes.loss_scale_settings(ctx),
    ]
    for fix in built:
        if fix.snippet is not None:
            _parses(fix, lang)
    assert "0.002" in built[0].snippet
    assert "200" in built[3].snippet  # twice the warm-up of 100
    assert built[2].params["steps"] == 200  # 5 % of the 4,000 planned steps
    # Lightning's scheduler and YOLO's clip stay PyTorch code (YOLO clips inside its own trainer)
    assert "0.95" in built[5].snippet
    accumulate, weights = SPELLINGS[tool]
    assert accumulate in built[6].snippet and weights in built[7].snippet
    if tool not in ("lightning", "yolo", "detectron2", "mmcv", "torchtitan"):  # no bf16 switch of their own
        assert "bf16" in built[4].snippet.lower() or "bfloat16" in built[4].snippet
    if tool not in ("lightning", "yolo", "detectron2", "mmcv", "torchtitan"):
        assert "torch." not in "".join(fix.snippet or "" for fix in built[:6])


def test_the_warm_up_is_two_significant_digits_of_the_share():
    rise = np.linspace(2.0, 9.0, 50)
    # logged up to step 980: 5 % of it when the plan is unknown, else 5 % of the plan (6,172.8 -> 6,200)
    for planned, expected in ((None, 49), (123_456, 6200), (20_000, 1000)):
        meta = RunMeta(framework="pytorch", format="print_style", max_iter=planned)
        ctx = Context(make_log(rise, meta=meta), fitted.PARAMS)
        assert fixes.warmup_length(ctx) == expected
    short = Context(make_log(rise[:3], steps=np.arange(3)), fitted.PARAMS)
    assert fixes.warmup_length(short) == 1  # never zero steps


def test_an_openmmlab_text_log_gets_both_generations_once_each():
    ctx = Context(
        make_log(np.linspace(2.0, 9.0, 50), lr=np.full(50, 0.02), meta=_meta_of("openmmlab")), fitted.PARAMS
    )
    lower = fixes.change_lr(ctx, 0.1, "fixes.lower_lr")[0].snippet
    assert lower == (
        "# MMEngine (MMDetection 3.x)\noptim_wrapper = dict(optimizer=dict(lr=0.002))\n"
        "# mmcv (MMDetection 2.x)\noptimizer = dict(lr=0.002)"
    )
    assert fixes.pretrained(ctx)[0].snippet.count("init_cfg") == 1  # the same key in both: shown once
    assert fixes.bf16(ctx).snippet.startswith("# MMEngine (MMDetection 3.x)\n")  # mmcv has no bf16


def test_megatron_and_deepspeed_keep_their_own_loss_scale_settings():
    for tool, spelling in (
        ("megatron", "--initial-loss-scale 65536"),
        ("deepspeed", '"initial_scale_power": 16'),
    ):
        ctx = Context(make_log(np.linspace(2.0, 9.0, 50), meta=_meta_of(tool)), fitted.PARAMS)
        assert spelling in fixes.loss_scale_settings(ctx).snippet
    plain = Context(make_log(np.linspace(2.0, 9.0, 50)), fitted.PARAMS)
    assert "GradScaler" in fixes.loss_scale_settings(plain).snippet
