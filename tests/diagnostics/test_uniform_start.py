"""A stall under an lr above its usual range is LD201's (`ld201_score_stalled_lr_high`), unless the
untrained net was already at ln(C) and never moved (LD206's uniform start): a large step moves the
loss, up or onto a constant prediction, it does not hold it where it began, so the init's vanished
signal explains that run better (`ld201_penalty_uniform_start`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, fitted
from parsers import load_paths


def ranked(run: str, penalty: float) -> list[str]:
    log = load_paths(sorted(Path(SAMPLE_LOGS, run).iterdir()))
    params = dataclasses.replace(
        fitted.PARAMS, ld201_score_stalled_lr_high=0.55, ld201_penalty_uniform_start=penalty
    )
    return [c.id for c in diagnose(log, params).causes]


@pytest.mark.parametrize(
    "run",
    [
        # Keras CSVs of plain deep nets whose weights are N(0, 0.01^2), lr 0.14 (above SGD's usual 0.1):
        # the first epoch's loss is ln(5) to 0.1 % and stays there.
        "corpus_extra/runs/mlp_192_gaussian001_depth12",
        "corpus_extra/runs/cnn_235_gaussian001_depth8",
    ],
)
def test_a_net_uniform_from_the_start_names_its_init_first(run: str):
    assert ranked(run, 0.0)[:2] == ["lr_too_high", "depth_init"]  # the control: without the penalty
    assert ranked(run, 0.3)[0] == "depth_init"


def test_a_high_lr_stall_that_began_above_chance_keeps_its_lr_first():
    """A char-LM at 1000x its lr (Lightning CSV): its first loss 37.5 is far above ln(C), then flat."""
    run = "corpus_extra/runs/charlm_149_lr_x1000"
    assert ranked(run, 0.3)[0] == ranked(run, 0.0)[0] == "lr_too_high"


def test_the_fit_keeps_the_penalty():
    assert fitted.PARAMS.ld201_penalty_uniform_start > 0
