"""End to end in Debian's chromium (issue 10 item 1): upload DEVELOPERS case 1 (log + solver + the
train_val with `use_global_stats: true`), download the corrected prototxt and the patch from the cause's
buttons, and check their content against the uploaded file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from browser_helpers import REPO, upload, wait_idle
from playwright.sync_api import Browser, expect

TIMEOUT = 60_000
CASE1 = REPO / "sample_logs" / "case1_resnet_frozen_bn"


def _uploaded(browser: Browser, app_url: str, files: list[tuple[str, bytes]], button_name: str):
    """A page with the files uploaded, once the named download button shows."""
    page = browser.new_page(viewport={"width": 1500, "height": 2400})
    page.goto(app_url)
    wait_idle(page)
    upload(page, files)
    button = page.get_by_role("button", name=button_name)
    expect(button).to_be_visible(timeout=TIMEOUT)
    wait_idle(page)
    return page, button


def test_download_corrected_prototxt_and_patch(browser: Browser, app_url: str, artifacts: Path):
    files = [(p.name, p.read_bytes()) for p in sorted(CASE1.iterdir())]
    original = (CASE1 / "trainval.prototxt").read_bytes()
    page, button = _uploaded(browser, app_url, files, "Download corrected trainval.prototxt")
    page.screenshot(path=artifacts / "e2e-corrected-config.png", full_page=True)

    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == "trainval.prototxt"
    corrected = Path(download.value.path()).read_bytes()
    assert b"use_global_stats" not in corrected
    kept = [line for line in original.splitlines(keepends=True) if b"use_global_stats: true" not in line]
    assert corrected == b"".join(kept)  # only the 9 flag lines went; every other byte as uploaded

    with page.expect_download() as patch:
        page.get_by_role("button", name="Download patch").first.click()
    text = Path(patch.value.path()).read_text(encoding="utf-8")
    assert text.startswith("--- trainval.prototxt\n+++ trainval.prototxt\n")
    assert text.count("\n-    use_global_stats: true\n") == 9
    page.close()


def test_log_only_gets_a_solver_rebuilt_from_its_echo_and_the_weights_command(browser: Browser, app_url: str):
    """DEVELOPERS case 2 with the log alone: solver.prototxt is rebuilt from the echo, its base_lr raised
    as the fix says; the page says it was rebuilt, and gives the `-weights` command line."""
    log = REPO / "sample_logs" / "case2_fcn_lr1e-9" / "train.log"
    page, button = _uploaded(
        browser, app_url, [(log.name, log.read_bytes())], "Download corrected solver.prototxt"
    )
    expect(page.get_by_text("was rebuilt from what").first).to_be_visible()
    command = "./build/tools/caffe train -solver solver.prototxt -weights VGG_ILSVRC_16_layers.caffemodel"
    expect(page.locator("code").filter(has_text=command)).to_have_count(1)
    with page.expect_download() as download:
        button.click()
    solver = Path(download.value.path()).read_text(encoding="utf-8")
    assert "base_lr: 1e-5\n" in solver and "base_lr: 1e-09" not in solver
    assert "I1124" not in solver  # no glog line in the rebuilt file
    page.close()


def test_a_lightning_run_gets_its_hparams_yaml_corrected(browser: Browser, app_url: str):
    """A corpus Lightning run (metrics.csv + hparams.yaml, lr 1000x too small): the page offers the
    corrected hparams.yaml, which differs from the upload in the lr line only."""
    run = REPO / "sample_logs" / "corpus" / "runs" / "charlm_041_lr_div1e3"
    files = [(f.name.removesuffix(".gz"), gzip.decompress(f.read_bytes())) for f in sorted(run.iterdir())]
    original = dict(files)["hparams.yaml"]
    page, button = _uploaded(browser, app_url, files, "Download corrected hparams.yaml")
    with page.expect_download() as download:
        button.click()
    corrected = Path(download.value.path()).read_bytes()
    assert corrected == original.replace(b"\nlr: 1.4e-06\n", b"\nlr: 0.001\n")
    assert corrected != original
    page.close()


def test_an_hf_runs_training_args_get_each_fix_as_its_own_download(browser: Browser, app_url: str):
    """A real corpus HF Trainer run that spikes, with a training_args.json that turned clipping off: the
    lr cause offers the lower lr, the clip turned back on and beta2 0.95, each its own corrected file."""
    state = REPO / "sample_logs" / "corpus" / "runs" / "charlm_017_mislabel_every17" / "trainer_state.json.gz"
    args = {"learning_rate": 0.0028, "adam_beta2": 0.999, "max_grad_norm": 0.0, "warmup_steps": 0}
    original = json.dumps(args, indent=2).encode()
    files = [("trainer_state.json", gzip.decompress(state.read_bytes())), ("training_args.json", original)]
    page = browser.new_page(viewport={"width": 1500, "height": 2400})
    page.goto(app_url)
    wait_idle(page)
    upload(page, files)
    buttons = page.get_by_role("button", name="Download corrected training_args.json")
    expect(buttons).to_have_count(3, timeout=TIMEOUT)
    wait_idle(page)
    expect(page.get_by_text("gradient clipping: 0 (off) → 1.0", exact=False).first).to_be_visible()
    corrected = []
    for index in range(3):
        with page.expect_download() as download:
            buttons.nth(index).click()
        corrected.append(json.loads(Path(download.value.path()).read_bytes()))
    assert corrected == [
        {**args, "learning_rate": 0.00028},
        {**args, "max_grad_norm": 1.0},
        {**args, "adam_beta2": 0.95},
    ]
    page.close()
