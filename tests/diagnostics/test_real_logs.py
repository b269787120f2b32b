"""The engine over the unmodified real logs in ../shared/real_logs (skipped when absent or when no
parser reads a file yet): no crash, no rule error, a symptom for every file, known runs right."""

import csv
from collections import Counter

import pytest
from diag_helpers import REAL_LOGS

from diagnostics import diagnose
from diagnostics.model import SYMPTOMS
from parsers import ParseError, load_paths

pytestmark = pytest.mark.skipif(not (REAL_LOGS / "MANIFEST.csv").exists(), reason="real logs absent")

# Runs whose logs show ordinary, successful training (read by hand from the logs and the manifest).
KNOWN_HEALTHY = [
    "caffe/resnet20_cifar10_2016_4gpu.log",
    "caffe/squeezenet128_imagenet.log",
    "caffe/nvcaffe_resnet50_imagenet_lr0.2.log",
    "caffe/caffenet128_lsuv_bn_exp_lr.log",
    "hf_trainer_state/t5_summarization_trainer_state.json",
    "detectron2_json/medical_waste_frcnn_metrics.json",
    "print_style/t5_finetune_batchloss_bleu.log",
    # test accuracy ends at its best (0.9285 / 0.914) while the test loss creeps up after the lr drops;
    # the iteration-0 test pass (loss 87.25, accuracy 0.999 before any update) is not a result
    "caffe/resnet56_cifar10_2018.log",
    "caffe/resnet20_cifar10_2018.log",
    "caffe/digits_robond_small_cls.log",  # test accuracy 0.10 -> 0.974
    "caffe/nvcaffe_mnist_lenet.log",  # test accuracy 0.991
    "caffe/squeezenet_centerloss_face.log",  # ln(10575) -> 1.8 despite input scale 1/128
    "detectron2_json/water_meters_detector_metrics.json",  # bbox AP 40 -> 64
    "hf_trainer_state/tinyllama_sft_trainer_state.json",  # eval loss 1.62 -> 1.12 beside train
    "fairseq/wav2vec2_pretrain_hydra_train.log",
    "yolo_csv/yolov5_old_results_wildfire_300ep.txt",  # mAP@.5 0.01 -> 0.83
    "yolo_csv/yolov5_helmet_3ep_results.csv",  # flat train loss over 3 epochs, but mAP 0.62 -> 0.74
    "mmdet_json/faster_rcnn_carafe_voc_12ep.log.json",
    "lightning_csv/slm_lm_version0_metrics.csv",  # val loss 4.13 -> 3.57 every epoch
    "print_style/numpy_mlp_mnist.log",  # test accuracy 0.90 -> 0.976
    "print_style/transformer_en_de_marian_tokenizer.log",  # val loss 3.25 -> 1.36
    "print_style/gpt2_lora_alpaca.log",  # 8.9 -> 0.46 under warm-up and decay, eval 0.53 -> 0.49
]
# Failed runs, read by hand: (symptom, top cause or None when the log cannot tell).
KNOWN_PROBLEMS = {
    # `loss` NaN tokens in the JSON lines from a point on (warm-up at step 150, epoch 6, epoch 10)
    "mmdet_json/atss_r50_fpn_custom.log.json": ("nan", None),
    "mmdet_json/fcos_r50_mocoinit_2x.log.json": ("nan", None),
    # lr 0.1 (10x the recipe): loss_rpn_cls reads 1.8e27 on the line where the loss turns NaN
    "mmdet_json/faster_rcnn_r50_voc_imagenetinit_lrx10.log.json": ("nan", "lr_too_high"),
    "mmdet_text/faster_rcnn_r50_voc_imagenetinit_lrx10.log": ("nan", "lr_too_high"),
    "keras_csv/braincnn_regression_commit4387aa7.log": ("nan", None),  # nan from epoch 0, MAE 2.6e34
    # val_loss 0.60 -> 1.6 while train accuracy reaches 1.0 and val accuracy stays ~0.78
    "keras_csv/irfanet_training_logs191017_2.log": ("overfitting", "overfitting"),
    # test mAP 0.383 at 20K falls to ~0.2 while the (already very low) mbox loss keeps falling
    "caffe/ssd300_vgg16_resumed.log": ("overfitting", "overfitting"),
    # the loss drops onto ln(1000) within 20-40 iterations and stays there (test accuracy 0.0011)
    "caffe/caffenet128_lab_colorspace.log": ("flat", None),
    "caffe/caffenet128_lsuv_adam_lr0.001.log": ("flat", "lr_too_high"),
    "caffe/caffenet128_lsuv_rmsprop0.9_lr0.001.log": ("flat", "lr_too_high"),  # 7.29 -> 9.27 -> ln(1000)
    "caffe/caffenet128_tanh_bs32_lr0.08.log": ("diverging", "lr_too_high"),  # 7.9 -> 53 and stays ~50
    # 200K iterations stuck near 5% test accuracy (loss 6.05 = 88% of ln(1000))
    "caffe/caffenet128_lsuv_adadelta_1e-6.log": ("plateau", None),
    # 2 classes: loss creeps 0.693 -> 0.605 while the lr decays 100x; test accuracy = majority share
    "caffe/digits_binary_medical_cls.log": ("plateau", None),
    # AUTOTRAINER's Overfit demo; judged on the last fit(): val_loss 0.41 -> 1.54, train accuracy 1.0
    "other/keras_stdout_autotrainer.out": ("overfitting", "overfitting"),
}
# RMSProp at lr 0.01 on CaffeNet: the raw loss hits Caffe's clamp 87.3365.
KNOWN_LR_TOO_HIGH = [
    "caffe/caffenet128_lsuv_rmsprop0.9_lr0.01.log",
    "caffe/caffenet128_lsuv_rmsprop0.95_lr0.01.log",
]


def _files() -> list[str]:
    with (REAL_LOGS / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        return [row["file"] for row in csv.DictReader(fh)]


# A crash log with no iteration at all: the parser's error says so (tests/parsers/test_real_logs.py).
NO_TRAINING_DATA = {"caffe/ssd300_vgg16_ncs_retrain_job.log"}


def _diagnose(rel: str):
    if rel in NO_TRAINING_DATA:
        with pytest.raises(ParseError):
            load_paths([REAL_LOGS / rel])
        pytest.skip(f"{rel}: holds no training data")
    return diagnose(load_paths([REAL_LOGS / rel]))


@pytest.mark.parametrize("rel", _files() if (REAL_LOGS / "MANIFEST.csv").exists() else [])
def test_every_real_log_gets_a_symptom_without_rule_errors(rel):
    d = _diagnose(rel)
    assert d.symptom.symptom in SYMPTOMS
    assert d.errors == []


@pytest.mark.parametrize("rel", KNOWN_HEALTHY)
def test_known_healthy_runs_are_healthy(rel):
    assert _diagnose(rel).symptom.symptom == "healthy"


@pytest.mark.parametrize("rel", KNOWN_LR_TOO_HIGH)
def test_rmsprop_lr_001_runs_point_at_the_lr(rel):
    d = _diagnose(rel)
    assert d.symptom.symptom != "healthy"
    assert d.causes[0].id == "lr_too_high"


@pytest.mark.parametrize("rel", sorted(KNOWN_PROBLEMS))
def test_known_failed_runs_get_their_symptom_and_cause(rel):
    symptom, cause = KNOWN_PROBLEMS[rel]
    d = _diagnose(rel)
    assert d.symptom.symptom == symptom
    if cause is not None:
        assert d.causes[0].id == cause


def test_false_alarm_rate_on_real_logs_is_low():
    """Most real logs are successful runs: at most a third may be flagged (the bad ones included)."""
    verdicts = Counter()
    for rel in _files():
        try:
            verdicts[diagnose(load_paths([REAL_LOGS / rel])).symptom.symptom] += 1
        except ParseError:
            continue
    if sum(verdicts.values()) < 20:
        pytest.skip("too few real logs readable yet")
    assert verdicts["healthy"] >= 2 / 3 * sum(verdicts.values()), verdicts
