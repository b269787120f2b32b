"""LD3xx config checks (no curve needed) and the causes they support, on Caffe-header-like facts."""

import math
from dataclasses import replace

import numpy as np
from diag_helpers import SAMPLE_LOGS, bn_layers, caffe_meta, decaying, fillers, line, make_log

from diagnostics import diagnose, fitted
from diagnostics.context import Context
from diagnostics.params import DEFAULT_PARAMS
from diagnostics.registry import rule_by_id
from parsers import load_paths
from parsers.model import RunMeta

RNG = np.random.default_rng(11)
HEALTHY = decaying(1000, 2.3, 0.4, 200, 0.02)


def _fires(rule_id: str, log) -> bool:
    ctx = Context(log, DEFAULT_PARAMS)
    result = rule_by_id(rule_id).check(ctx)
    return result is not None and bool(result.findings)


def test_ld301_frozen_bn_in_train_and_its_exception_for_pretrained_tiny_batches():
    meta = caffe_meta(batch_size=(32, "batch_size: 32", 9))
    meta.batchnorm = bn_layers(3, True, "train")
    assert _fires("LD301", make_log(HEALTHY, meta=meta))
    meta.batchnorm = bn_layers(3, True, "test")
    assert not _fires("LD301", make_log(HEALTHY, meta=meta))
    meta = caffe_meta(
        batch_size=(1, "batch_size: 1", 9), pretrained=(True, "Finetuning from x.caffemodel", 2)
    )
    meta.batchnorm = bn_layers(3, True)
    d = diagnose(make_log(HEALTHY, meta=meta))
    assert [f.severity for f in d.findings if f.rule == "LD301"] == ["info"]


def test_ld302_mean_in_scaled_units():
    meta = caffe_meta(
        input_scale=(0.00390625, "scale: 0.00390625", 5), mean_value=([0.485, 0.456, 0.406], "", 6)
    )
    assert _fires("LD302", make_log(HEALTHY, meta=meta))
    meta = caffe_meta(
        input_scale=(0.00390625, "scale: 0.00390625", 5), mean_value=([104.0, 117.0, 123.0], "", 6)
    )
    assert not _fires("LD302", make_log(HEALTHY, meta=meta))


def test_ld303_needs_a_deep_net_without_bn_or_weights():
    meta = caffe_meta(
        input_scale=(0.00390625, "scale: 0.00390625", 5), net_name=("LeNet", 'name: "LeNet"', 1)
    )
    meta.depth = 4
    assert not _fires("LD303", make_log(HEALTHY, meta=meta))  # the MNIST LeNet recipe scales by 1/256
    meta.depth = 16
    assert _fires("LD303", make_log(HEALTHY, meta=meta))
    meta.batchnorm = bn_layers(2, None)
    assert not _fires("LD303", make_log(HEALTHY, meta=meta))


def test_ld303_is_only_information_when_the_loss_fell_far():
    """squeezenet_centerloss_face.log: scale 1/128, 26 layers, no BatchNorm, yet ln(10575) -> 1.8."""
    meta = caffe_meta(
        input_scale=(0.0078125, "      scale: 0.0078125", 30), num_classes=(10575, "num_output: 10575", 648)
    )
    meta.depth = 26
    meta.weight_fillers = fillers(26, "xavier")
    learned = diagnose(make_log(decaying(2000, 9.27, 1.8, 400, 0.05), meta=meta))
    assert learned.symptom.symptom == "healthy"
    assert [f.severity for f in learned.findings if f.rule == "LD303"] == ["info"]
    stuck = diagnose(make_log(math.log(10575) + 0.004 * RNG.standard_normal(2000), meta=meta))
    assert [f.severity for f in stuck.findings if f.rule == "LD303"] == ["warning"]


def test_ld304_bn_with_batch_one_and_the_small_batch_cause():
    meta = caffe_meta(batch_size=(1, "batch_size: 1", 9))
    meta.batchnorm = bn_layers(4, None)
    x = np.arange(1000)
    oscillating = 1.5 + 0.7 * np.sin(x / 25) + 0.05 * RNG.standard_normal(1000)
    d = diagnose(make_log(oscillating, meta=meta))
    assert any(f.rule == "LD304" for f in d.findings)
    ids = [c.id for c in d.causes]
    assert "small_batch" in ids and "bn_stats" in ids
    fix = next(c for c in d.causes if c.id == "small_batch").fixes[0]
    assert fix.snippet == "iter_size: 32" and fix.params["effective"] == 32


def test_ld305_and_ld306_fcn_normalisation():
    meta = caffe_meta(
        net_name=("FCN8s", 'name: "FCN8s"', 1),
        base_lr=(1e-10, "base_lr: 1e-10", 3),
        loss_normalize=(False, "normalize: false", 40),
        input_size=(500, "", 0),
        pretrained=(False, "", 0),
    )
    # the reference FCN recipe: summed loss with lr 1e-10 is consistent
    assert not _fires("LD306", make_log(HEALTHY, meta=meta))
    assert _fires("LD305", make_log(HEALTHY, meta=meta))
    meta.base_lr = 1e-4
    assert _fires("LD306", make_log(HEALTHY, meta=meta))  # summed over 250,000 pixels with a normal lr


def test_ld307_poly_without_max_iter_gives_nan_from_the_start():
    meta = caffe_meta(lr_policy=("poly", 'lr_policy: "poly"', 4), base_lr=(0.01, "base_lr: 0.01", 3))
    meta.lr_params = {"power": 0.9}
    log = make_log(np.r_[[2.3], np.full(200, np.nan)], lr=np.full(201, np.nan), meta=meta)
    d = diagnose(log)
    assert d.symptom.symptom == "nan" and d.symptom.onset_step == 20
    assert any(f.rule == "LD307" and f.severity == "critical" for f in d.findings)
    top = d.causes[0]
    assert top.id == "lr_too_high" and top.fixes[0].key == "fixes.lr_policy_params"
    assert "max_iter" in top.fixes[0].snippet


def test_ld307_reads_caffe_solver_fields_only():
    """mmcv's `lr_config = dict(policy='step', step=[8, 11])` defaults gamma to 0.1: nothing is missing."""
    meta = RunMeta(framework="pytorch", format="mmdet_json")
    meta.set("lr_policy", "step", line(1, "    policy='step',", "run.log.json"))
    assert not _fires("LD307", make_log(HEALTHY, meta=meta))
    meta.lr_params = {}
    log = make_log(HEALTHY, lr=np.r_[np.full(500, 0.02), np.full(500, np.nan)], meta=meta)
    assert _fires("LD307", log)  # a NaN lr is broken in any framework


def test_missing_gamma_is_a_warning_that_does_not_make_a_nan_an_lr_problem():
    """Caffe step policy without gamma only matters at the first decay: it explains no blow-up."""
    meta = caffe_meta(lr_policy=("step", 'lr_policy: "step"', 8), base_lr=(0.001, "base_lr: 0.001", 5))
    meta.lr_params = {"stepsize": 100000}
    loss = np.r_[decaying(300, 2.3, 1.2, 60, 0.02), np.full(300, np.nan)]
    d = diagnose(make_log(loss, meta=meta))
    assert [f.severity for f in d.findings if f.rule == "LD307"] == ["warning"]
    lr_cause = next(c for c in d.causes if c.id == "lr_too_high")
    assert "LD307" not in lr_cause.rules
    assert all(f.key != "fixes.lr_policy_params" for f in lr_cause.fixes)


def test_ld308_and_depth_init_cause():
    meta = caffe_meta(net_name=("VGG_ILSVRC_19_layers", "", 1), num_classes=(1000, "num_output: 1000", 800))
    meta.depth = 19
    meta.has_residual = False
    meta.weight_fillers = fillers(19, "gaussian", 0.01)
    d = diagnose(make_log(math.log(1000) + 0.003 * RNG.standard_normal(2000), meta=meta))
    assert any(f.rule == "LD308" for f in d.findings)
    assert d.causes[0].id == "depth_init"
    assert d.causes[0].fixes[0].snippet == 'weight_filler { type: "msra" }'


def test_ld309_lr_range_depends_on_the_optimiser():
    for optimizer, lr, fires in [("rmsprop", 0.01, True), ("sgd", 0.01, False), ("adadelta", 1.0, False),
                                 ("adam", 1e-9, True)]:  # fmt: skip
        meta = caffe_meta(base_lr=(lr, f"base_lr: {lr}", 3), optimizer=(optimizer, f'type: "{optimizer}"', 4))
        assert _fires("LD309", make_log(HEALTHY, meta=meta)) is fires, optimizer


def test_config_rules_are_not_applicable_without_their_facts():
    d = diagnose(make_log(HEALTHY))
    assert {"LD301", "LD302", "LD303", "LD304", "LD305", "LD306", "LD307", "LD308"} <= set(d.not_applicable)


def _ssd_like_meta(resumed: bool):
    """Caffe SSD header facts: num_output of the detection head, but a MultiBoxLoss (not softmax)."""
    meta = caffe_meta(
        num_classes=(3, "    num_classes: 3", 1758),
        loss_type=("MultiBoxLoss", '  type: "MultiBoxLoss"', 1738),
        base_lr=(0.001, "base_lr: 0.001", 8),
    )
    if resumed:
        meta.resumed = True
        meta.where["resumed"] = line(5346, "Resuming from VGG_SSD_iter_10162.solverstate")
    return meta


def test_ld110_ignores_a_detection_loss_and_a_resumed_run():
    """Regression (ssd300_vgg16_resumed.log): num_classes known with a MultiBoxLoss made LD110 assert."""
    steps = 10170 + np.arange(1100) * 10
    loss = decaying(1100, 12.0, 2.5, 200, 0.1)
    for resumed in (True, False):
        d = diagnose(make_log(loss, steps=steps, meta=_ssd_like_meta(resumed)))
        assert d.errors == [] and not any(f.rule == "LD110" for f in d.findings)
    # A softmax classifier resumed from a snapshot: its first loss is not an initial loss either.
    meta = caffe_meta(num_classes=(10, "num_output: 10", 40))
    meta.resumed = True
    meta.where["resumed"] = line(12, "Resuming from cifar_iter_1000.solverstate")
    d = diagnose(make_log(decaying(1100, 8.0, 0.5, 200, 0.05), steps=1000 + np.arange(1100) * 10, meta=meta))
    assert d.errors == [] and not any(f.rule == "LD110" for f in d.findings)


def test_ld110_flags_a_huge_initial_softmax_loss():
    meta = caffe_meta(num_classes=(10, "num_output: 10", 40), loss_type=("SoftmaxWithLoss", "", 41))
    loss = np.r_[[60.0], decaying(999, 2.3, 0.4, 200, 0.02)]
    d = diagnose(make_log(loss, meta=meta))
    assert [f.rule for f in d.findings if f.rule == "LD110"] == ["LD110"]


def test_ld309_judges_the_logged_peak_not_a_warm_up_start():
    """detectron2/HF/DeiT logs: base_lr was filled from the first logged lr (a warm-up value such as
    2.9e-7); the run trained at the peak 1e-5. An unknown optimiser gets the widest usual range."""
    lr = np.r_[np.linspace(2.881e-7, 1e-5, 100), np.full(900, 1e-5)]
    log = make_log(HEALTHY, lr=lr)
    log.meta.base_lr, log.meta.peak_lr = 2.881e-7, 1e-5
    ctx = Context(log, DEFAULT_PARAMS)
    assert ctx.lr_value == 1e-5 and ctx.lr_quote is None
    assert not _fires("LD309", log)
    log.meta.peak_lr = 5e-6
    assert not _fires("LD309", log)  # usual for Adam; the log does not say it was SGD
    log.meta.optimizer = "sgd"
    assert _fires("LD309", log)
    log.meta.optimizer, log.meta.peak_lr = None, 1e-8
    d = diagnose(log)
    assert [e.key for f in d.findings if f.rule == "LD309" for e in f.evidence] == ["evidence.lr_low_any"]


def test_a_stated_base_lr_is_quoted():
    meta = caffe_meta(base_lr=(0.2, "base_lr: 0.2", 28))
    ctx = Context(make_log(HEALTHY, lr=np.full(1000, 0.2), meta=meta), DEFAULT_PARAMS)
    assert ctx.lr_value == 0.2 and ctx.lr_quote.line == 28


def test_a_huge_loss_before_any_update_points_at_the_input_scale():
    """sample_logs caffe_lenet_no_scale_87: a LeNet that lost `scale: 0.00390625` (raw 0..255 pixels):
    losses 68-83 from iteration 0, NaN from iteration 4. The lr had not acted yet: unscaled inputs."""
    meta = caffe_meta(
        num_classes=(10, "    num_output: 10", 157),
        loss_type=("SoftmaxWithLoss", '  type: "SoftmaxWithLoss"', 168),
        base_lr=(0.01, "base_lr: 0.01", 6),
    )
    loss = np.r_[[68.2, 75.0, 80.1, 83.2], np.full(101, np.nan)]
    d = diagnose(make_log(loss, steps=np.arange(105), meta=meta))
    assert d.symptom.symptom == "nan"
    top = d.causes[0]
    assert top.id == "input_scale" and top.fixes[0].key == "fixes.add_scale"
    assert "scale: 0.00390625" in top.fixes[0].snippet
    # A summed loss (normalize: false) is huge at the start for another reason: LD306/LD208's case.
    meta.set("loss_normalize", False, line(300, "    normalize: false"))
    d = diagnose(make_log(loss, steps=np.arange(105), meta=meta))
    assert d.causes[0].id != "input_scale"


def test_ld304_makes_a_healthy_looking_curve_a_stall_with_the_small_batch_cause():
    """BatchNorm over one sample is a config fault whatever the curve does (issue 9, item 5): a falling
    loss becomes a stall at `config_warning_fault_confidence`, and small_batch explains it; at 0 the
    curve decides."""
    meta = caffe_meta(batch_size=(1, "batch_size: 1", 9))
    meta.batchnorm = bn_layers(4, None)
    log = make_log(HEALTHY, meta=meta)
    on = replace(DEFAULT_PARAMS, config_warning_fault_confidence=0.6)
    d = diagnose(log, on)
    assert d.symptom.symptom in ("flat", "plateau") and d.symptom.rule == "LD304"
    assert {"small_batch", "bn_stats"} & {c.id for c in d.causes[:1]}
    off = diagnose(log, replace(on, config_warning_fault_confidence=0.0))
    assert off.symptom.symptom == "healthy" and any(f.rule == "LD304" for f in off.findings)
    meta.batch_size = 32
    assert diagnose(make_log(HEALTHY, meta=meta), on).symptom.symptom == "healthy"


def test_ld308_from_a_pytorch_command_line():
    """A real corpus run (training split) whose script was told `--init normal(0, 0.01)` with 15 plain
    conv widths: the config check names the depth and std with the line, and the cause is the init,
    not the missing pretraining an FCN from scratch would otherwise suggest. Its sibling with the
    default init gets no LD308."""
    runs = SAMPLE_LOGS / "corpus" / "runs"
    d = diagnose(load_paths(sorted((runs / "fcn_016_gaussian001_depth16").iterdir())))
    [found] = [f for f in d.findings if f.rule == "LD308"]
    assert found.evidence[0].params == {"depth": 16, "count": 1, "std": "0.01"}
    assert found.evidence[0].quote is not None and found.evidence[0].quote.line == 1
    assert d.causes[0].id == "depth_init"
    healthy = diagnose(load_paths(sorted((runs / "fcn_016").iterdir())))
    assert not any(f.rule == "LD308" for f in healthy.findings)


def test_ld308_from_lightning_hparams_block_list():
    """A real corpus run (tuning set) whose hparams.yaml lists its 19 widths as a YAML block sequence:
    the depth is read from it, so the init is named before the missing pretraining."""
    run = SAMPLE_LOGS / "corpus_extra" / "runs" / "fcn_148_gaussian001_depth20"
    d = diagnose(load_paths(sorted(run.iterdir())))
    [found] = [f for f in d.findings if f.rule == "LD308"]
    assert found.evidence[0].params == {"depth": 20, "count": 1, "std": "0.01"}
    assert d.causes[0].id == "depth_init"


def test_ld308_below_deep_layers_needs_narrow_layers_and_no_weights_file():
    """A plain net shallower than `deep_layers` loses the signal to a small gaussian only when its
    layers are narrow (std x sqrt(fan-in) per layer at most `ld308_max_gain`): 16-32 channels at std
    0.01 (0.12-0.17) yes, CaffeNet's 96-4096 (0.59) no, unknown widths no. The depth from which that is
    judged is fitted. Weights an init script wrote (LSUV) replaced the fillers' draws."""
    meta = caffe_meta(net_name=("CaffeNet", "", 1))
    meta.depth, meta.has_residual = 8, False
    meta.weight_fillers = fillers(8, "gaussian", 0.01)
    ld308 = rule_by_id("LD308")

    def fires(min_depth: int) -> bool:
        return (
            ld308.check(
                Context(make_log(HEALTHY, meta=meta), replace(DEFAULT_PARAMS, ld308_min_depth=min_depth))
            )
            is not None
        )

    assert not fires(6)  # widths unknown
    meta.layer_widths = [96, 256, 384, 384, 256, 4096, 4096, 1000]
    assert not fires(6)
    meta.layer_widths = [16, 16, 16, 32, 32, 32, 32]
    assert fires(6) and fires(8) and not fires(10)
    meta.hyperparams["initial_weights"] = "lsuv_init.caffemodel"
    assert not fires(6)


def _uniform_start_evidence(diagnosis) -> bool:
    return any(
        e.key == "evidence.uniform_at_init"
        for c in diagnosis.causes
        if c.id == "depth_init"
        for e in c.evidence
    )


def test_a_uniform_start_blames_the_init_only_where_the_signal_can_vanish():
    """An untrained net at exactly ln(C) that never moves: in plain nets of small gaussians the signal
    died at init (LD206); in a ResNet with BatchNorm each layer is renormalised, so a uniform start says
    nothing about the init and the 100x-too-small lr stays first. Real training-split runs."""
    runs = SAMPLE_LOGS / "corpus" / "runs"
    for plain in ("mlp_054_gaussian001_depth10", "cnn_061_gaussian001_depth16"):
        d = diagnose(load_paths(sorted((runs / plain).iterdir())))
        assert d.causes[0].id == "depth_init" and _uniform_start_evidence(d), plain
    for name in ("resnet_002_lr_div1e2", "resnet_020_lr_div1e4"):
        log = load_paths(sorted((runs / name).iterdir()))
        assert log.meta.batchnorm and log.meta.has_residual
        d = diagnose(log)
        assert d.symptom.symptom == "flat" and d.causes[0].id == "lr_too_low", name
        assert not _uniform_start_evidence(d), name


def test_a_shallow_net_named_like_a_deep_one_does_not_blame_pretraining():
    """A 3-4 layer "resnet" or "fcn" trains from scratch: with `ld305_min_depth` above its depth, LD305
    stays silent and a flat loss under a 100-1000x too small lr is the lr's (first), not missing
    pretrained weights; the case-2 FCN (8 weight layers) is still judged deep. Real training-split runs
    of two families and the case-2 sample."""
    runs = SAMPLE_LOGS / "corpus" / "runs"
    gated, ungated = replace(DEFAULT_PARAMS, ld305_min_depth=6), replace(DEFAULT_PARAMS, ld305_min_depth=0)
    for name in ("resnet_020_lr_div1e4", "fcn_004_lr_div1e3"):
        log = load_paths(sorted((runs / name).iterdir()))
        assert log.meta.depth is not None and log.meta.depth < 6 and log.meta.pretrained is False
        assert rule_by_id("LD305").check(Context(log, ungated)) is not None, name
        assert rule_by_id("LD305").check(Context(log, gated)) is None, name
        d = diagnose(log, params=gated)
        assert d.symptom.symptom == "flat" and d.causes[0].id == "lr_too_low", name
        assert "no_pretraining" not in [c.id for c in d.causes], name
    case2 = load_paths(sorted((SAMPLE_LOGS / "case2_fcn_lr1e-4").iterdir()))
    assert case2.meta.depth == 8
    assert rule_by_id("LD305").check(Context(case2, gated)) is not None
    assert diagnose(case2, params=gated).causes[0].id == "no_pretraining"


def test_a_uniform_start_under_a_small_lr_does_not_blame_the_init():
    """Plain MLPs at ln(C) from their first logged point that never move under an lr 1,000x too small
    (3.5e-5, bare TensorBoard scalars): below the working lr (`ld202_creep_working_lr`) the net may just
    not have moved yet, so the lr comes first; plain nets of small gaussians under a working lr keep the
    init reading. Real extra-set and training-split runs."""
    extra, train = SAMPLE_LOGS / "corpus_extra" / "runs", SAMPLE_LOGS / "corpus" / "runs"
    working = replace(fitted.PARAMS, ld202_creep_working_lr=3e-4)
    off = replace(fitted.PARAMS, ld202_creep_working_lr=0.0)
    for name in ("mlp_222_lr_div1e3", "mlp_234_lr_div1e3"):
        log = load_paths(sorted((extra / name).iterdir()))
        d = diagnose(log, params=working)
        assert d.causes[0].id == "lr_too_low" and not _uniform_start_evidence(d), name
        assert _uniform_start_evidence(diagnose(log, params=off)), name
    for plain in ("mlp_054_gaussian001_depth10", "cnn_061_gaussian001_depth16"):
        d = diagnose(load_paths(sorted((train / plain).iterdir())), params=working)
        assert d.causes[0].id == "depth_init" and _uniform_start_evidence(d), plain
