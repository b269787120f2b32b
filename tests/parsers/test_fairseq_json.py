"""fairseq logs: hydra JSON records with string numbers, per-epoch summaries, the plain format, \
config facts."""

import math

import pytest
from real_log_files import real_log

from parsers import load_paths, validate_metrics
from parsers.formats import fairseq_json
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

HYDRA = """\
[2022-04-08 18:40:57,965][fairseq_cli.train][INFO] - {'_name': None, 'common': {'_name': None, 'fp16': True, \
'seed': 1}, 'dataset': {'max_tokens': 1400000, 'batch_size': None}, 'optimization': {'_name': None, \
'max_epoch': 0, 'max_update': 400000, 'clip_norm': 0.0, 'update_freq': [8], 'lr': [0.0005]}, \
'checkpoint': {'finetune_from_model': None, 'restore_file': 'checkpoint_last.pt'}, \
'model': {'_name': 'wav2vec2', 'dropout': 0.1}, 'optimizer': {'_name': 'adam', 'adam_betas': '(0.9,0.98)', \
'weight_decay': 0.01, 'lr': [0.0005]}, 'lr_scheduler': {'_name': 'polynomial_decay', 'warmup_updates': 32000}}
[2022-04-08 18:41:00,390][fairseq.trainer][INFO] - No existing checkpoint found checkpoints/checkpoint_last.pt
[2022-04-08 18:48:05,372][train_inner][INFO] - {"epoch": 1, "update": 0.416, "loss": "9.276", \
"ntokens": "116171", "loss_0": "6.679", "accuracy": "0.01168", "wps": "58056.1", "num_updates": "200", \
"lr": "3.125e-06", "gnorm": "1.421", \
"loss_scale": "128", "wall": "425"}
[2022-04-08 18:55:11,305][fairseq.trainer][INFO] - NOTE: gradient overflow detected, ignoring gradient
[2022-04-08 18:56:05,183][train_inner][INFO] - {"epoch": 1, "update": 0.832, "loss": "nan", \
"num_updates": "400"}
[2022-04-08 18:58:04,035][valid][INFO] - {"epoch": 1, "valid_loss": "6.389", "valid_accuracy": "0.02587", \
"valid_wps": "169012", "valid_num_updates": "479", "valid_best_loss": "6.389"}
[2022-04-08 18:58:06,786][train][INFO] - {"epoch": 1, "train_loss": "7.864", "train_num_updates": "479", \
"train_lr": "7.48437e-06", "train_train_wall": "964"}
[2022-04-08 18:58:07,000][train_inner][INFO] - {"epoch": 2, "update": 1.1, "loss": "6.2", "num_upd
"""

SIMPLE = """\
2023-06-13 17:30:00 | INFO | fairseq_cli.train | Namespace(arch='transformer_iwslt_de_en', lr=[0.0005], \
optimizer='adam', max_update=0, max_epoch=50, batch_size=None, max_tokens=4096, clip_norm=0.0, \
weight_decay=0.0001, update_freq=[1], restore_file='checkpoint_last.pt')
2023-06-13 17:31:54 | INFO | train_inner | epoch 001:    100 / 400 loss=9.153, nll_loss=8.9, \
ppl=478.2, wps=13239, \
ups=2.18, num_updates=100, lr=0.00015772, gnorm=0.483, clip=0, train_wall=46, wall=114
2023-06-13 17:32:41 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 8.677 | nll_loss 8.5 \
| ppl 362.04 | bleu 2.52 | wps 88225 | num_updates 400 | best_bleu 2.52
2023-06-13 17:32:53 | INFO | train | epoch 001 | loss 9.301 | ppl 630.5 | num_updates 400 | lr 0.0003
2023-06-13 17:35:00 | INFO | fairseq.trainer | loaded checkpoint checkpoints/checkpoint_last.pt \
(epoch 1 @ 400 updates)
2023-06-13 17:36:12 | INFO | train_inner | epoch 001:    100 / 400 loss=9.0, num_updates=100
"""

OLD = """\
| epoch 022:    100 / 8000 loss=4.401, ppl=21.13, num_updates=168100, lr=2.5e-05
| epoch 022 | loss 4.290 | ppl 19.56 | wps 10476 | num_updates 179247 | lr 2.5e-05 | gnorm 0.321
| epoch 022 | valid on 'valid' subset | loss 4.008 | ppl 16.09 | num_updates 179247 | best_loss 4.00763
"""


def _parse(text: str, name: str = "hydra_train.log"):
    return fairseq_json.parse(SourceFile(name, text.encode()))


def _rows(frame, columns=("step", "epoch", "split", "metric", "name", "line")):
    return frame[list(columns)].astype(str).values.tolist()


def test_hydra_json_records_string_numbers_and_summaries():
    parsed = _parse(HYDRA)
    frame = parsed.metrics
    validate_metrics(frame)
    assert _rows(frame) == [
        ["200", "0.416", "train", "loss", "loss", "3"],
        ["200", "0.416", "train", "loss_0", "loss_0", "3"],
        ["200", "0.416", "train", "accuracy", "accuracy", "3"],
        ["200", "0.416", "train", "lr", "lr", "3"],
        ["200", "0.416", "train", "grad_norm", "gnorm", "3"],
        ["200", "0.416", "train", "loss_scale", "loss_scale", "3"],  # fp16's scale: LD211's evidence
        ["400", "0.832", "train", "loss", "loss", "5"],
        ["479", "1.0", "val", "loss", "valid_loss", "6"],
        ["479", "1.0", "val", "accuracy", "valid_accuracy", "6"],
        ["479", "1.0", "train", "loss", "train_loss", "7"],
        ["479", "1.0", "train", "lr", "train_lr", "7"],
    ]
    values = frame["value"].tolist()
    assert values[0] == 9.276 and values[3] == 3.125e-06 and values[7] == 6.389 and values[9] == 7.864
    assert values[5] == 128.0
    assert math.isnan(values[6])  # "loss": "nan" is a value
    assert frame["wall_time"].tolist()[0] == pytest.approx(427.407)  # 18:48:05,372 - 18:40:57,965
    assert frame["wall_time"].iloc[-1] == pytest.approx(1028.821)
    assert parsed.skipped_lines == 0  # the cut last line is not a record; nothing claims it


def test_hydra_config_facts():
    meta = _parse(HYDRA).meta
    assert (meta.base_lr, meta.optimizer, meta.lr_policy, meta.weight_decay) == (
        0.0005,
        "adam",
        "polynomial_decay",
        0.01,
    )
    assert (meta.max_iter, meta.epochs, meta.clip_gradients, meta.iter_size) == (400000, None, None, 8)
    assert (meta.precision, meta.net_name, meta.batch_size) == ("fp16", "wav2vec2", None)
    assert meta.lr_params == {"warmup_updates": "32000"}
    assert meta.where["base_lr"].line == 1 and meta.where["base_lr"].text == "'lr': [0.0005]"
    assert meta.hyperparams["max_tokens"] == "1400000" and meta.hyperparams["batch_size"] == "None"
    assert meta.pretrained is False and meta.where["pretrained"].line == 2 and meta.resumed is False


def test_simple_format_records_and_namespace_config():
    parsed = _parse(SIMPLE, "train.log")
    frame = parsed.metrics
    validate_metrics(frame)
    assert _rows(frame, ("step", "epoch", "split", "metric", "name", "line", "segment")) == [
        ["100", "0.25", "train", "loss", "loss", "2", "0"],
        ["100", "0.25", "train", "nll_loss", "nll_loss", "2", "0"],
        ["100", "0.25", "train", "perplexity", "ppl", "2", "0"],
        ["100", "0.25", "train", "lr", "lr", "2", "0"],
        ["100", "0.25", "train", "grad_norm", "gnorm", "2", "0"],
        ["400", "1.0", "val", "loss", "loss", "3", "0"],
        ["400", "1.0", "val", "nll_loss", "nll_loss", "3", "0"],
        ["400", "1.0", "val", "perplexity", "ppl", "3", "0"],
        ["400", "1.0", "val", "bleu", "bleu", "3", "0"],
        ["400", "1.0", "train", "loss", "loss", "4", "0"],
        ["400", "1.0", "train", "perplexity", "ppl", "4", "0"],
        ["400", "1.0", "train", "lr", "lr", "4", "0"],
        ["100", "0.25", "train", "loss", "loss", "6", "1"],
    ]
    assert frame["value"].tolist()[5] == 8.677 and frame["wall_time"].tolist()[0] == 114.0
    meta = parsed.meta
    assert (meta.base_lr, meta.optimizer, meta.max_iter, meta.epochs) == (0.0005, "adam", None, 50)
    assert (meta.net_name, meta.iter_size, meta.weight_decay) == ("transformer_iwslt_de_en", 1, 0.0001)
    assert meta.where["epochs"].text == "max_epoch=50"
    assert meta.resumed is True and meta.where["resumed"].line == 5 and meta.pretrained is None


def test_old_fairseq_without_logging_prefix():
    frame = _parse(OLD, "train.log").metrics
    assert _rows(frame, ("step", "split", "metric", "name")) == [
        ["168100", "train", "loss", "loss"],
        ["168100", "train", "perplexity", "ppl"],
        ["168100", "train", "lr", "lr"],
        ["179247", "train", "loss", "loss"],
        ["179247", "train", "perplexity", "ppl"],
        ["179247", "train", "lr", "lr"],
        ["179247", "train", "grad_norm", "gnorm"],
        ["179247", "val", "loss", "loss"],
        ["179247", "val", "perplexity", "ppl"],
    ]
    assert frame["epoch"].iloc[0] == pytest.approx(21 + 100 / 8000) and frame["wall_time"].isna().all()


def test_json_records_of_old_fairseq_and_a_test_subset():
    text = (
        '{"epoch": 1, "update": 0.5, "loss": "3.2", "num_updates": "50"}\n'
        '2020-02-07 13:35:34 | INFO | test | {"epoch": 1, "test_loss": "4.033", "test_num_updates": "100"}\n'
        '{"epoch": 1, "valid_loss": "4.1", "valid_num_updates": "100"}\n'
    )
    frame = _parse(text).metrics
    assert _rows(frame, ("step", "split", "metric", "name")) == [
        ["50", "train", "loss", "loss"],
        ["100", "test", "loss", "test_loss"],
        ["100", "val", "loss", "valid_loss"],
    ]


def test_record_without_num_updates_is_reported():
    text = (
        '[2022-04-08 18:48:05,372][train_inner][INFO] - {"epoch": 1, "loss": "9.2"}\n'
        '[2022-04-08 18:49:05,372][train_inner][INFO] - {"epoch": 1, "loss": "9.1", "num_updates": "400"}\n'
    )
    parsed = _parse(text)
    assert parsed.skipped_lines == 1 and parsed.warnings[0].line == 1
    assert parsed.metrics["wall_time"].tolist() == [60.0]
    with pytest.raises(ParseError):
        _parse("[2022-04-08 18:41:00,390][fairseq.trainer][INFO] - begin training epoch 1\n")


def test_sniff():
    for text in (HYDRA, SIMPLE, OLD):
        assert detect(SourceFile("train.log", text.encode()))[0] == "fairseq_json"


def test_real_wav2vec2_hydra_log():
    log = load_paths([real_log("fairseq/wav2vec2_pretrain_hydra_train.log")])
    assert log.meta.format == "fairseq_json"
    inner = log.metrics[(log.metrics["name"] == "loss") & (log.metrics["split"] == "train")]
    assert len(inner) == 23 and inner[["step", "value", "line"]].values.tolist()[0] == [200, 9.276, 287]
    summaries = log.series("loss", "train", name="train_loss")
    assert summaries["step"].tolist()[:2] == [479, 958] and summaries["value"].iloc[-1] == 3.924
    val = log.series("loss", "val")
    assert len(val) == 10 and val[["step", "value", "line"]].values.tolist()[-1] == [4791, 3.792, 420]
    assert (log.meta.base_lr, log.meta.max_iter, log.meta.pretrained) == (0.0005, 400000, False)
    assert not log.warnings and (log.metrics["segment"] == 0).all()
