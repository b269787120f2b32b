"""The minimal inputs of the crash sites the fuzzer found (`tests/fuzz/run.py`), one test per site:
each raised something other than ParseError (or read a corrupt counter as a step) before its fix."""

from __future__ import annotations

import pytest

from diagnostics import diagnose
from parsers import load

HUGE = b"1" + b"0" * 30  # beyond int64
ENORMOUS = b"1" + b"0" * 400  # beyond float64


def _curve(name: str, data: bytes, fmt: str) -> list[tuple[int, float]]:
    log = load([(name, data)])
    assert log.meta.format == fmt
    diagnose(log)
    loss = log.metrics[log.metrics["metric"] == "loss"]
    return list(zip(loss["step"].tolist(), loss["value"].tolist(), strict=True))


def test_print_style_counter_that_is_inf_nan_or_huge_is_not_a_step():
    # was OverflowError / ValueError in print_style._int: int(float("inf"))
    data = (
        b"epoch 1 iter 1 loss 2.0\nepoch 1 iter 2 loss 1.9\nepoch inf iter 3 loss 1.8\n"
        b"epoch 1 iter nan loss 1.7\nepoch 1 iter 99999999999999999999999 loss 1.6\nepoch 1 iter 6 loss 1.5\n"
    )
    curve = _curve("train.log", data, "print_style")
    assert [v for _, v in curve] == [2.0, 1.9, 1.8, 1.7, 1.6, 1.5]  # every value kept
    assert max(s for s, _ in curve) == 6


@pytest.mark.parametrize(
    ("name", "data", "fmt", "first_step"),
    [
        # was OverflowError in _jsonlines.counted_records (np.asarray of a > int64 step)
        ("log.jsonl", b'{"step": 1, "loss": 1.0}\n{"step": %s, "loss": 0.9}\n' % HUGE, "jsonl_epochs", 1),
        # same site through detectron2's iteration counter
        (
            "metrics.json",
            b'{"iteration": 19, "total_loss": 1.0, "lr": 0.01}\n{"iteration": %s, "total_loss": 0.9}\n'
            % HUGE,
            "detectron2_json",
            19,
        ),
        # was OverflowError in _jsonlines.as_number via mmdet_json._counters (float() of a > 1e308 int)
        (
            "x.log.json",
            b'{"mode": "train", "epoch": 1, "iter": 10, "lr": 0.01, "loss": 1.0}\n'
            b'{"mode": "train", "epoch": 1, "iter": %s, "lr": 0.01, "loss": 0.9}\n' % ENORMOUS,
            "mmdet_json",
            10,
        ),
        # was OverflowError in hf_trainer_state.parse (kept steps as int64)
        (
            "trainer_state.json",
            b'{"log_history": [{"step": 1, "loss": 1.0}, {"step": %s, "loss": 0.5}]}' % HUGE,
            "hf_trainer_state",
            1,
        ),
    ],
    ids=["jsonl_epochs", "detectron2_json", "mmdet_json", "hf_trainer_state"],
)
def test_json_record_with_out_of_range_counter_is_skipped(name, data, fmt, first_step):
    assert _curve(name, data, fmt) == [(first_step, 1.0)]


def test_json_value_beyond_float_range_reads_as_inf_like_1e400():
    # was OverflowError in _jsonlines.numeric_column: np.array([10**400], dtype=float64)
    data = b'{"step": 1, "loss": 1.0}\n{"step": 2, "loss": %s}\n{"step": 3, "loss": -%s}\n' % (
        ENORMOUS,
        ENORMOUS,
    )
    assert _curve("log.jsonl", data, "jsonl_epochs") == [(1, 1.0), (2, float("inf")), (3, float("-inf"))]


def test_csv_step_beyond_int64_is_skipped_not_read_as_a_negative_step():
    # was silent wrong data in _table.rows_by_counter: 1e300 cast to int64 became -9223372036854775808
    log = load([("metrics.csv", b"step,loss\n1,0.5\n1e300,0.4\n2,0.3\n")])
    assert log.metrics["step"].tolist() == [1, 2] and log.skipped_lines == 1


MMDET = (
    "2021-05-07 19:45:33,123 - mmdet - INFO - Epoch [1][{}/7330]\tlr: 1.000e-02, eta: 1 day, 0:00:00, "
    "time: 0.5, data_time: 0.1, memory: 3000, loss_rpn_cls: 0.5, loss: {}\n"
)
DETECTRON2 = (
    "[11/18 18:14:12 d2.utils.events]:  eta: 0:01:02  iter: {}  total_loss: {}  lr: 0.01  max_mem: 100M\n"
)


@pytest.mark.parametrize(
    ("name", "template", "fmt", "steps"),
    [("x.log", MMDET, "mmdet_text", [50, 100]), ("log.txt", DETECTRON2, "detectron2_text", [19, 39])],
    ids=["mmdet_text", "detectron2_text"],
)
def test_text_log_line_with_a_25_digit_counter_is_skipped_and_reported(name, template, fmt, steps):
    # was OverflowError in _textlog.Rows.frame: np.fromiter of a > int64 step
    lines = [template.format(steps[0], 1.2), template.format("9" * 25, 1.1), template.format(steps[1], 1.0)]
    data = "".join(lines).encode()
    assert _curve(name, data, fmt) == [(steps[0], 1.2), (steps[1], 1.0)]
    log = load([(name, data)])
    assert log.skipped_lines == 1
    assert any(w.line == 2 and "out of range" in w.message for w in log.warnings)


def test_prototxt_hex_number_past_the_float_range_reads_as_inf():
    # was OverflowError in prototxt._number: float(int("0xfff...", 16))
    solver = b'net: "x.prototxt"\nbase_lr: 0x' + b"f" * 300 + b"\nmax_iter: 1000\n"
    log = load(
        [("solver.prototxt", solver), ("train.log", b"epoch 1 step 1 loss 2.0\nepoch 1 step 2 loss 1.0\n")]
    )
    assert log.meta.base_lr == float("inf") and log.meta.max_iter == 1000


def test_hparams_count_written_as_inf_or_400_digits_is_no_fact():
    # was OverflowError in hparams._apply: int(float("inf")) for batch_size / epochs
    hparams = b"batch_size: inf\nepochs: 1" + b"0" * 400 + b"\nlr: 0.01\n"
    metrics = b"epoch,step,train_loss\n0,0,1.0\n0,1,0.9\n"
    log = load([("hparams.yaml", hparams), ("metrics.csv", metrics)])
    assert (log.meta.batch_size, log.meta.epochs, log.meta.base_lr) == (None, None, 0.01)


def test_hf_stdout_logging_steps_inf_counts_dicts_one_by_one():
    # was OverflowError in hf_stdout._logging_steps: int(float("inf")) (only ValueError was caught)
    data = (
        b"arg is Namespace(learning_rate=7e-05, logging_steps=inf)\n"
        b"{'loss': 1.5, 'learning_rate': 5e-05, 'epoch': 0.1}\n{'loss': 1.2, 'learning_rate': 5e-05, 'epoch': 0.2}\n"
    )
    assert _curve("train.out", data, "hf_stdout") == [(1, 1.5), (2, 1.2)]


def test_mmcv_config_max_epochs_inf_is_no_fact():
    # was OverflowError in _mmcv_config._set: int(float("inf")) (only ValueError was caught)
    line = (
        "2021-05-07 19:45:33,123 - mmdet - INFO - Epoch [1][{0}/100]\tlr: 1.000e-02, eta: 0:10:00, "
        "time: 0.5, data_time: 0.1, memory: 3000, loss: {1}\n"
    )
    data = (
        "2021-05-07 19:45:30,000 - mmdet - INFO - Config:\n"
        "optimizer = dict(type='SGD', lr=0.02, momentum=0.9)\n"
        "runner = dict(type='EpochBasedRunner', max_epochs=inf)\n"
        + line.format(50, 1.2)
        + line.format(100, 1.0)
    ).encode()
    log = load([("x.log", data)])
    assert log.meta.format == "mmdet_text" and log.meta.epochs is None and log.meta.base_lr == 0.02


MXNET = "2017-06-01 10:00:{0:02d},000 Node[0] Epoch[{1}] Batch [{2}]\tSpeed: 1021.17 samples/sec\tcross-entropy={3}\n"


@pytest.mark.parametrize("batch", ["9" * 25, str(2**52)], ids=["beyond_int64", "huge_gap"])
def test_mxnet_batch_number_with_corrupt_digits(batch):
    # 25 digits: TypeError in mxnet_log._batches_per_epoch (np.diff of Python ints gave objects);
    # 2**52: np.bincount of the gaps tried to allocate 2**52 counters (MemoryError)
    lines = [MXNET.format(10, 0, 20, 2.31), MXNET.format(20, 0, 40, 2.2), MXNET.format(30, 0, batch, 2.1)]
    lines += [MXNET.format(40, 1, 20, 1.9), MXNET.format(50, 1, 40, 1.8)]
    curve = _curve("train.log", "".join(lines).encode(), "mxnet_log")
    assert [v for _, v in curve if v != 2.1] == [2.31, 2.2, 1.9, 1.8]


def test_mmdet_json_epoch_times_iterations_past_int64_is_skipped():
    # was OverflowError in _jsonlines.ColumnRows: step (epoch - 1) x 10000 + iter of a 2**53 epoch
    line = '{{"mode": "train", "epoch": {0}, "iter": {1}, "lr": 0.01, "loss": {2}}}\n'
    data = (line.format(1, 5000, 1.0) + line.format(1, 10000, 0.9) + line.format(2**53, 5000, 0.8)).encode()
    log = load([("x.log.json", data)])
    loss = log.metrics[log.metrics["metric"] == "loss"]
    assert loss["step"].tolist() == [5000, 10000] and log.skipped_lines == 1


def test_caffe_test_net_number_with_20_digits_is_net_0():
    # was OverflowError in caffe_glog._iterations: int(b"99999999999999999999") into an int64 array
    glog = "I1231 23:59:{0:02d}.000000  4242 solver.cpp:{1}] {2}\n"
    lines = [
        glog.format(1, 218, "Iteration 0 (0 iter/s, 0.1s/20 iters), loss = 2.3"),
        glog.format(2, 330, "Iteration 0, Testing net (#99999999999999999999)"),
        glog.format(3, 397, "    Test net output #0: accuracy = 0.1"),
        glog.format(4, 218, "Iteration 20 (10 iter/s, 2s/20 iters), loss = 2.1"),
    ]
    log = load([("train.log", "".join(lines).encode())])
    m = log.metrics
    assert log.meta.format == "caffe_glog"
    assert m.loc[m["metric"] == "loss", "value"].tolist() == [2.3, 2.1]
    assert m.loc[m["metric"] == "accuracy", "value"].tolist() == [0.1]


def test_print_style_number_glued_to_an_exponent_is_skipped():
    # was OverflowError in print_style._values: `3.27179e+06.9` rebuilt with stand-ins read as inf
    data = b"epoch 4 step 200 loss 2.5\nepoch 4 step 204 loss 3.27179e+06.9\nepoch 4 step 208 loss 2.4\n"
    curve = _curve("train.log", data, "print_style")
    assert (200, 2.5) in curve and (208, 2.4) in curve


def test_print_style_csv_row_with_nan_or_400_digit_step_keeps_its_values():
    # was ValueError / OverflowError in print_style._csv_records: int(float("nan")), int(float("1e400"))
    data = b"step,loss\n0\nnan,0.19\n3,-inf\n1" + b"0" * 400 + b",0.5\n5,0.4\n"  # the `0` row: not a table
    assert [v for _, v in _curve("summary.csv", data, "print_style")] == [0.19, float("-inf"), 0.5, 0.4]


def test_json_list_holding_an_int_beyond_float_range_is_no_value():
    # was OverflowError in _jsonlines._floats: np.array of a list holding a 400-digit int
    data = (
        b'{"step": 1, "loss": 1.0, "acc": [0.5, 0.6]}\n{"step": 2, "loss": 0.9, "acc": [0.5, %s]}\n'
        % ENORMOUS
    )
    assert _curve("log.jsonl", data, "jsonl_epochs") == [(1, 1.0), (2, 0.9)]


def test_jsonl_elapsed_time_with_a_400_digit_hour_count_is_data():
    # was OverflowError in jsonl_epochs._wall_time: int(hours) * 3600 + float(seconds)
    data = b'{"step": 1, "loss": 1.0, "elapsed_time": "0:00:01"}\n{"step": 2, "loss": 0.9, "elapsed_time": "%s:00:02"}\n'
    log = load([("log.jsonl", data % ENORMOUS)])
    assert log.meta.format == "jsonl_epochs" and log.metrics["value"].tolist()[:2] == [1.0, 0.9]
