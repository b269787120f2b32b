"""A Keras run's fixes come as Keras 3 code: the sentence and its numbers are the same for every framework
(the closed loop applies a fix by them), the snippet is the user's own API. Every builder's snippet for a
Keras log names no PyTorch API and runs in Keras 3 (JAX backend, a dev-only dependency) against a small
model, in both languages' renderings. The snippets run in a child process: JAX starts threads, and the
rest of the suite forks (the fit's workers), which a threaded parent may deadlock."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import fitted, fixes
from diagnostics.context import Context
from diagnostics.model import Fix
from parsers import load_paths

KERAS3_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "keras3" / "sgd_lr5" / "fit.log"
KERAS_CSV_RUN = SAMPLE_LOGS / "corpus" / "runs" / "resnet_014_batch1_bn"  # CSVLogger with its lr column
HAS_KERAS = importlib.util.find_spec("keras") is not None and importlib.util.find_spec("jax") is not None

# Run in the child: what a Keras training script has at hand where the snippets go, then each snippet
# (read as JSON from stdin) in a fresh copy of it; prints the failures as JSON.
RUNNER = """
import json, sys
import numpy as np
import keras

def namespace():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(), keras.layers.Dense(3)]
    )
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((16, 4)).astype("float32")
    return {
        "keras": keras, "np": np, "model": model, "x": x, "x_train": x, "x_val": x,
        "y_val": rng.integers(0, 3, 16), "lr": 0.01, "total_steps": 1000, "num_classes": 3, "c_out": 8,
        "optimizer": keras.optimizers.SGD(learning_rate=0.01),
        "base": keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)]),  # the pretrained net loaded
    }

failures = []
for name, code in json.load(sys.stdin):
    try:
        exec(compile(code, name, "exec"), namespace())
    except Exception as err:
        failures.append([name, code, f"{type(err).__name__}: {err}"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
print(json.dumps(failures))
"""


def every_fix(ctx: Context) -> list[Fix]:
    """Each fix builder's output for one run (the diagnosis picks some of them; here all run)."""
    return [
        *fixes.change_lr(ctx, 0.1, "fixes.lower_lr"),
        fixes.clip_gradients(ctx),
        fixes.warmup(ctx),
        *fixes.input_scale(ctx),
        *fixes.bn_batch_stats(ctx),
        *fixes.small_batch(ctx),
        *fixes.pretrained(ctx),
        *fixes.init(ctx),
        *fixes.loss_normalization(ctx),
        *fixes.overfitting(ctx, 10),
        *fixes.check_data(ctx),
        fixes.eval_pipeline(ctx),
        fixes.bf16(ctx),
        fixes.loss_scale_settings(ctx),
        fixes.longer_warmup(ctx, 100),
        fixes.adam_beta2(ctx),
    ]


def keras_context(path: Path, optimizer: str | None = None, momentum: float | None = None) -> Context:
    log = load_paths(sorted(path.iterdir()) if path.is_dir() else [path])
    assert log.meta.framework == "keras"
    log.meta.optimizer, log.meta.momentum = optimizer or log.meta.optimizer, momentum or log.meta.momentum
    return Context(log, fitted.PARAMS)


CONTEXTS = [
    pytest.param(KERAS3_RUN, None, None, id="console-log-no-lr"),
    pytest.param(KERAS_CSV_RUN, "sgd", 0.9, id="csv-sgd-momentum"),
    pytest.param(KERAS_CSV_RUN, "adam", None, id="csv-adam"),
]


@pytest.mark.parametrize(("path", "optimizer", "momentum"), CONTEXTS)
def test_every_keras_snippet_names_no_pytorch_api(path, optimizer, momentum):
    for fix in keras_snippets(path, optimizer, momentum):
        for lang in ("en", "zh"):
            code = fix.code(lang)
            assert "⟦" not in code, code
            assert "torch" not in code and "nn." not in code, code


def keras_snippets(path: Path, optimizer: str | None, momentum: float | None) -> list[Fix]:
    found = [f for f in every_fix(keras_context(path, optimizer, momentum)) if f.snippet_lang == "python"]
    assert len(found) >= 15
    return found


@pytest.mark.skipif(not HAS_KERAS, reason="keras and jax are not installed (requirements-dev.txt)")
def test_every_keras_snippet_runs_in_keras3():
    """All three runs' snippets, in English and Chinese, in one child process."""
    snippets = []
    for param in CONTEXTS:
        for fix in keras_snippets(*param.values):
            for lang in ("en", "zh"):
                # the weights would be downloaded: the same call builds the net without them
                snippets.append([fix.key, fix.code(lang).replace('weights="imagenet"', "weights=None")])
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER], input=json.dumps(snippets), capture_output=True, text=True, env=env,
        timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_numbers_are_the_run_own():
    """The lr of the Keras CSV (its `learning_rate` column) is in the lr fixes, as in PyTorch's."""
    ctx = keras_context(KERAS_CSV_RUN, "sgd", 0.9)
    (lower,) = fixes.change_lr(ctx, 0.1, "fixes.lower_lr")
    assert lower.params["new"] in lower.snippet and "momentum=0.9" in lower.snippet
    accumulate = fixes.small_batch(ctx)[0]
    assert f"gradient_accumulation_steps={accumulate.params['iter_size']}" in accumulate.snippet


def test_a_pytorch_run_keeps_pytorch_code():
    log = load_paths(sorted((SAMPLE_LOGS / "corpus" / "runs" / "mlp_000").iterdir()))
    assert log.meta.format == "print_style"  # a hand-written loop: no tool's own settings to spell
    ctx = Context(log, fitted.PARAMS)
    assert (
        "torch.optim" in fixes.clip_gradients(ctx).snippet
        or "clip_grad_norm_" in fixes.clip_gradients(ctx).snippet
    )
    assert "keras" not in "".join(f.snippet or "" for f in every_fix(ctx))
