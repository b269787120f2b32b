"""Caffe glog logs: every output, lr and test net kept with exact values, lines and wall time;
nan/inf/87.3365 kept; segments for restarts; multi-GPU repeats; header facts; bad input; the
team's real Caffe logs."""

import gzip
import math
import multiprocessing
import threading

import numpy as np
import pytest
from real_log_files import real_log

from parsers import ParseError, detect, load, load_paths
from parsers.formats import caffe_glog
from parsers.model import validate_metrics
from parsers.source import SourceFile

HEADER = """\
I1231 23:59:50.000000  4242 caffe.cpp:218] Using GPUs 0
I1231 23:59:50.100000  4242 solver.cpp:44] Initializing solver from parameters: 
test_iter: 10
test_interval: 20
base_lr: 0.0648
display: 10
max_iter: 100
lr_policy: "step"
gamma: 0.1
stepsize: 50
momentum: 0.9
weight_decay: 0.0005
average_loss: 10
net: "train_val.prototxt"
I1231 23:59:50.200000  4242 net.cpp:51] Initializing net from parameters: 
name: "TinyResNet"
state {
  phase: TRAIN
}
layer {
  name: "data"
  type: "Data"
  top: "data"
  top: "label"
  transform_param {
    scale: 0.00390625
    mean_file: "imagenet_mean.binaryproto"
  }
  data_param {
    source: "train_lmdb"
    batch_size: 2
  }
}
layer {
  name: "bn1"
  type: "BatchNorm"
  bottom: "data"
  top: "bn1"
  batch_norm_param {
    use_global_stats: true
  }
}
layer {
  name: "fc"
  type: "InnerProduct"
  bottom: "bn1"
  top: "fc"
  inner_product_param {
    num_output: 1000
    weight_filler {
      type: "xavier"
    }
  }
}
layer {
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "fc"
  bottom: "label"
  top: "loss"
}
I1231 23:59:51.000000  4242 solver.cpp:272] Solving TinyResNet
"""

BODY = """\
I1231 23:59:58.000000  4242 solver.cpp:330] Iteration 0, Testing net (#0)
I1231 23:59:59.000000  4242 solver.cpp:397]     Test net output #0: accuracy = 0.001
I1231 23:59:59.000000  4242 solver.cpp:397]     Test net output #1: loss = 6.90776 (* 1 = 6.90776 loss)
I1231 23:59:59.000000  4242 solver.cpp:330] Iteration 0, Testing net (#1)
I1231 23:59:59.500000  4242 solver.cpp:397]     Test net output #0: accuracy = 0.002
I1231 23:59:59.500000  4242 solver.cpp:218] Iteration 0 (0 iter/s, 0.5s/10 iters), loss = 6.9
I1231 23:59:59.500000  4242 solver.cpp:237]     Train net output #0: loss = 6.9 (* 1 = 6.9 loss)
I1231 23:59:59.500000  4242 solver.cpp:237]     Train net output #1: center_loss = 0.5 (* 0.008 = 0.004 loss)
I1231 23:59:59.600000  4242 sgd_solver.cpp:105] Iteration 0, lr = 0.0648
I0101 00:00:09.500000  4242 solver.cpp:218] Iteration 10 (1 iter/s, 10s/10 iters), loss = nan
I0101 00:00:09.500000  4242 solver.cpp:237]     Train net output #0: loss = 87.3365 (* 1 = 87.3365 loss)
I0101 00:00:09.500000  4242 solver.cpp:237]     Train net output #1: center_loss = inf (* 0.008 = inf loss)
I0101 00:00:09.600000  4242 sgd_solver.cpp:105] Iteration 10, lr = 0.0648
"""


def _parse(text: str, name: str = "train.log"):
    return load([(name, text.encode())])


def test_every_output_with_exact_values_lines_and_wall_time():
    log = _parse(HEADER + BODY)
    m = log.metrics
    validate_metrics(m)
    first_body_line = HEADER.count("\n") + 1
    rows = [tuple(r) for r in m[["step", "split", "metric", "name", "value", "line"]].itertuples(index=False)]
    assert rows[:4] == [
        (0, "test", "accuracy", "Test net output #0: accuracy", 0.001, first_body_line + 1),
        (0, "test", "loss", "Test net output #1: loss", 6.90776, first_body_line + 2),
        (0, "test", "accuracy", "Test net output #0: accuracy (test net #1)", 0.002, first_body_line + 4),
        (0, "train", "loss", "Iteration loss", 6.9, first_body_line + 5),
    ]
    raw = m[(m["metric"] == "loss_raw")]
    assert raw["value"].tolist() == [6.9, 87.3365]
    # the weighted output keeps the layer's own value, not the weighted contribution
    center = m[m["metric"] == "center_loss"]["value"].tolist()
    assert center[0] == 0.5 and math.isinf(center[1])
    loss = log.series("loss")
    assert loss["step"].tolist() == [0, 10]
    assert math.isnan(loss["value"].iloc[1])
    assert log.series("lr")["value"].tolist() == [0.0648, 0.0648]
    # glog has no year: Dec 31 23:59:58 -> Jan 1 00:00:09.5 is 11.5 s, not minus a year
    assert loss["wall_time"].tolist() == pytest.approx([1.5, 11.5])
    assert (m["segment"] == 0).all()


def test_header_facts_with_the_lines_that_state_them():
    log = _parse(HEADER + BODY)
    meta = log.meta
    assert (meta.framework, meta.format) == ("caffe", "caffe_glog")
    assert meta.base_lr == 0.0648
    assert meta.where["base_lr"].line == 5 and meta.where["base_lr"].text == "base_lr: 0.0648"
    assert (meta.lr_policy, meta.momentum, meta.average_loss) == ("step", 0.9, 10)
    assert (meta.input_scale, meta.mean_file, meta.batch_size, meta.num_classes) == (
        0.00390625,
        "imagenet_mean.binaryproto",
        2,
        1000,
    )
    assert [(b.name, b.phase, b.use_global_stats) for b in meta.batchnorm] == [("bn1", "train", True)]
    assert meta.net_name == "TinyResNet"
    # training started ("Solving") with no weights loaded: from scratch, and the line says so
    assert meta.pretrained is False
    assert meta.where["pretrained"].text.endswith("Solving TinyResNet")


def test_finetuning_line_means_pretrained_but_an_lsuv_init_does_not():
    finetune = "I0101 00:00:00.000000  1 caffe.cpp:128] Finetuning from VGG_ILSVRC_16_layers.caffemodel\n"
    log = _parse(finetune + HEADER + BODY)
    assert log.meta.pretrained is True
    assert log.meta.pretrained_from == "VGG_ILSVRC_16_layers.caffemodel"
    assert log.meta.where["pretrained"].line == 1
    init = "I0101 00:00:00.000000  1 caffe.cpp:128] Finetuning from ./caffenet_lsuv.prototxt.caffemodel\n"
    assert _parse(init + HEADER + BODY).meta.pretrained is False


def test_nvcaffe_lines_epochs_and_shared_test_weights():
    text = """\
I0711 21:36:06.000000 46013 net.cpp:1]     Copying source layer conv1 Type:Convolution #blobs=2
I0711 21:36:07.135218 46013 solver.cpp:494] Iteration 0, Testing net (#0)
I0711 21:36:07.171056 46013 solver.cpp:581]     (0.0)    Test net output #0: accuracy = 0.08
I0711 21:36:07.291302 46013 solver.cpp:342]     [0.0] Iteration 0 (0.119776 s), loss = 2.41118
I0711 21:36:07.291343 46013 sgd_solver.cpp:180] [0.0] Iteration 0, lr = 0.01, m = 0.9, lrm = 0.1, wd = 0.0005, gs = 1
I0711 21:36:11.219908 46013 solver.cpp:337]     [0.0] Iteration 1000 (21.2 iter/s, 4.7s/100 iter), 1.1/10.7ep, loss = 0.012
"""
    log = _parse(text)
    loss = log.series("loss")
    assert loss["value"].tolist() == [2.41118, 0.012]
    assert loss["epoch"].iloc[1] == 1.1 and math.isnan(loss["epoch"].iloc[0])
    assert log.series("lr")["value"].tolist() == [0.01]
    assert log.series("accuracy", "test")["value"].tolist() == [0.08]
    # NVCaffe logs "Copying source layer" when the test net shares weights: not a fine-tune
    assert log.meta.pretrained is not True


def test_copying_trained_layers_in_bvlc_caffe_means_pretrained():
    copying = "I0101 00:00:00.000000  1 net.cpp:761] Copying source layer conv1_1\n"
    log = _parse(copying + HEADER + BODY)
    assert log.meta.pretrained is True and log.meta.where["pretrained"].line == 1


def test_multi_gpu_repeated_lines_are_kept_once():
    line = "I0519 23:35:50.068317 215053 solver.cpp:342]     [0.0] Iteration 0 (0.3 s), loss = 2.30193\n"
    log = _parse(line + line + line.replace("Iteration 0 ", "Iteration 1 ").replace("2.30193", "2.2956"))
    assert log.series("loss")["value"].tolist() == [2.30193, 2.2956]
    assert any("repeated" in w.message for w in log.warnings)


def test_restarted_and_concatenated_runs_become_segments():
    second = HEADER.replace("Solving TinyResNet", "Solving TinyResNet again")
    log = _parse(HEADER + BODY + second + BODY)
    loss = log.series("loss")
    assert loss["segment"].tolist() == [0, 0, 1, 1]
    assert loss["step"].tolist() == [0, 10, 0, 10]
    # a counter that falls back with no header in between (headers cut away) is a restart too
    lines = [
        f"I0101 00:00:{i:02d}.000000  1 solver.cpp:218] Iteration {s}, loss = 1.0\n"
        for i, s in enumerate([0, 100, 200, 0, 100])
    ]
    assert _parse("".join(lines)).series("loss")["segment"].tolist() == [0, 0, 0, 1, 1]


def test_resumed_run_is_marked():
    resume = "I1002 11:44:21.463744 15796 caffe.cpp:241] Resuming from x_iter_10162.solverstate\n"
    text = resume + "I1002 11:44:29.521419 15796 solver.cpp:243] Iteration 10170, loss = 0.447881\n"
    log = _parse(text)
    assert log.meta.resumed is True and log.meta.where["resumed"].line == 1
    assert log.meta.pretrained is None
    assert log.series("loss")["step"].tolist() == [10170]


def test_crash_before_the_first_iteration_says_what_happened():
    text = HEADER + "F0803 11:12:28.077312  3568 db_lmdb.hpp:15] Check failed: mdb_status == 0 (2 vs. 0)\n"
    with pytest.raises(ParseError, match=r"fatal error before the first iteration \(line \d+\).*mdb_status"):
        _parse(text)


def test_truncated_crlf_gzip_and_junk_lose_nothing_readable():
    text = (HEADER + BODY).replace("\n", "\r\n") + "I0101 00:00:19.5 4242 solver.cpp:218] Iteration 20 (1 it"
    data = gzip.compress(text.encode() + b"\x00\xff\xfe junk")
    log = load([("train.log.gz", data)])
    # the cut-off line is reported, not turned into a NaN loss (that would be a false "NaN" verdict)
    assert log.series("loss")["step"].tolist() == [0, 10]
    assert log.skipped_lines == 1
    assert any(
        w.line > 0 and "could not be read" in w.message and "Iteration 20" not in w.message
        for w in log.warnings
    )


def test_each_output_keeps_the_number_its_own_line_gives():
    """Caffe numbers outputs per test net: `loss` is #1 in net 0 and #0 in net 1."""
    second_net = BODY.replace(
        "Test net output #0: accuracy = 0.002", "Test net output #0: loss = 6.8 (* 1 = 6.8 loss)"
    )
    names = set(_parse(HEADER + second_net).metrics["name"].astype(str))
    assert {"Test net output #1: loss", "Test net output #0: loss (test net #1)"} <= names


def test_junk_numbers_names_and_bytes_are_reported_not_fatal():
    prefix = "I0101 00:00:20.000000  4242 solver.cpp:218] "
    junk = "".join(
        prefix + line + "\n"
        for line in (
            "Iteration 123456789012345678901234, loss = 1",  # too many digits for int64: not a step
            "Iteration 20 (1 iter/s), loss = " + "1" * 60,  # a token longer than the fast window
            "Iteration 30 (1 iter/s), loss = 1\x002",  # a NUL byte inside the number
            "Iteration 40 (1 iter/s), loss = 2.5\x01",  # a control byte ending the number
            "    Train net output #0: " + "n" * 300 + " = 0.25",  # an absurdly long output name
        )
    )
    log = _parse(HEADER + BODY + junk)
    loss = log.series("loss")
    assert loss["step"].tolist() == [0, 10, 20]
    assert loss["value"].iloc[-1] == float("1" * 60)
    assert log.skipped_lines == 2  # the NUL and the control byte lines
    # the absurdly long output name keeps its row, shortened to the name cap (start … hash)
    long_name = max(log.metrics["name"].cat.categories, key=len)
    assert long_name.startswith("Train net output #0: nnn") and len(long_name) == 200
    assert any("metric name(s) longer than 200" in w.message for w in log.warnings)


def test_sniff_claims_glog_and_leaves_other_text():
    assert detect(SourceFile.from_bytes("x.log", (HEADER + BODY).encode()))[0] == "caffe_glog"
    assert caffe_glog.sniff(SourceFile.from_bytes("x.txt", b"Epoch 1, Loss: 0.5\n" * 20)) == 0.0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_chunked_scan_matches_a_single_pass(monkeypatch, workers):
    """Lines and values must not depend on where the buffer is cut into chunks, nor on how many
    processes scan them."""
    text = (HEADER + BODY * 40 + "I0101 00:00:19.5 4242 solver.cpp:218] Iteration 20 (1 it\n").encode()
    whole = caffe_glog.parse(SourceFile.from_bytes("a.log", text))
    monkeypatch.setattr(caffe_glog, "CHUNK_BYTES", 700)
    monkeypatch.setenv("LOSS_DOCTOR_WORKERS", workers)
    chunked = caffe_glog.parse(SourceFile.from_bytes("a.log", text))
    assert whole.metrics.equals(chunked.metrics)
    assert whole.warnings == chunked.warnings and chunked.skipped_lines == 1


REAL = {
    # file: (first train loss line, value, loss points)
    "caffe/resnet20_cifar10_2018.log": (4395, 2.86542),
    "caffe/nvcaffe_mnist_lenet.log": (677, 2.41118),
    "caffe/squeezenet128_imagenet.log": (6687, 6.94159),
}


@pytest.mark.parametrize("relative", sorted(REAL))
def test_real_logs_exact_first_loss(relative):
    log = load_paths([real_log(relative)])
    loss = log.series("loss")
    line, value = REAL[relative]
    assert (int(loss["line"].iloc[0]), float(loss["value"].iloc[0])) == (line, value)


def test_real_logs_quirks():
    rmsprop = load_paths([real_log("caffe/caffenet128_lsuv_rmsprop0.9_lr0.01.log")])
    assert (rmsprop.series("loss_raw")["value"] == 87.3365).any()
    assert rmsprop.meta.pretrained is False  # an LSUV-initialised start
    ssd = load_paths([real_log("caffe/ssd300_vgg16_resumed.log")])
    assert ssd.meta.resumed and ssd.series("loss")["step"].iloc[0] == 10170
    assert ssd.series("map", "test")["value"].iloc[0] == 0.3832
    googlenet = load_paths([real_log("caffe/digits_robond_googlenet.log")])
    assert "Test net output #2: loss1/accuracy" in set(googlenet.metrics["name"].astype(str))
    face = load_paths([real_log("caffe/squeezenet_centerloss_face.log")])
    assert face.series("center_loss")["value"].iloc[0] == 0.500898
    resnet = load_paths([real_log("caffe/resnet20_cifar10_2018.log")])
    assert np.isfinite(resnet.metrics["wall_time"]).all()
    with pytest.raises(ParseError, match="fatal error before the first iteration"):
        load_paths([real_log("caffe/ssd300_vgg16_ncs_retrain_job.log")])


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_memory_mapped_file_parses_like_bytes(tmp_path, monkeypatch, newline):
    """Large files on disk are mapped and scanned chunk by chunk (pages released after each)."""
    from parsers import source as source_module

    text = (HEADER + BODY * 30).replace("\n", newline).encode()
    path = tmp_path / "train.log"
    path.write_bytes(text)
    from_bytes = load([("train.log", text)])
    monkeypatch.setattr(source_module, "MAP_BYTES", 1)
    monkeypatch.setattr(caffe_glog, "CHUNK_BYTES", 900)
    mapped_source = SourceFile.from_path(path)
    assert not isinstance(mapped_source.data, bytes)
    mapped = load_paths([path])
    assert mapped.metrics.equals(from_bytes.metrics)
    assert mapped.meta.base_lr == 0.0648 and mapped.meta.where["base_lr"].line == 5
    assert mapped.meta.batchnorm == from_bytes.meta.batchnorm


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_work_left_for_the_parse_runs_once_and_changes_nothing(monkeypatch, workers):
    """The CLI imports scipy while the workers scan; with one core left it scans in-process."""
    from parsers.background import while_parsing

    text = (HEADER + BODY * 40).encode()
    alone = caffe_glog.parse(SourceFile.from_bytes("a.log", text))
    monkeypatch.setattr(caffe_glog, "CHUNK_BYTES", 700)
    monkeypatch.setenv("LOSS_DOCTOR_WORKERS", workers)
    scanning: list[int] = []  # worker processes alive while the task ran
    with while_parsing(lambda: scanning.append(len(multiprocessing.active_children()))):
        log = load([("a.log", text)])
    # with n cores, n - 1 workers scan while this process runs the task; one core scans alone
    assert scanning == [int(workers) - 1]
    assert log.metrics.drop(columns="source").equals(alone.metrics.drop(columns="source"))


def test_workers_get_consecutive_chunks_in_even_batches(monkeypatch):
    bounds = [(i * 10, i * 10 + 10) for i in range(25)]
    batches = caffe_glog._batches(bounds, 2)
    assert [b for batch in batches for b in batch] == bounds
    assert [len(batch) for batch in batches] == [12, 13]
    monkeypatch.setattr(caffe_glog, "_BATCH_BYTES", 60)  # a large log: batches of at most 60 bytes
    batches = caffe_glog._batches(bounds, 2)
    assert [b for batch in batches for b in batch] == bounds
    assert len(batches) % 2 == 0 and max(batch[-1][1] - batch[0][0] for batch in batches) <= 60


def test_large_logs_parsed_in_several_threads_at_once_keep_their_own_rows(tmp_path, monkeypatch):
    """The Streamlit server parses two uploads in two threads of one process: each parse's forked
    workers must read its own log (a module-global buffer once gave one log the other's rows)."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.make_caffe_log import write_log

    monkeypatch.setenv("LOSS_DOCTOR_WORKERS", "2")
    logs = []
    for seed in (1, 2, 3):
        path = tmp_path / f"run{seed}.log"
        write_log(path, 5 + seed / 2, seed)  # over 4 MiB: at least two chunks, so workers are forked
        logs.append(path.read_bytes())
    assert min(map(len, logs)) > caffe_glog.CHUNK_BYTES
    alone = [load([("train.log", data)]).metrics for data in logs]
    start = threading.Barrier(len(logs))

    def parse_when_all_are_ready(data: bytes):
        start.wait()
        return load([("train.log", data)]).metrics

    for _ in range(2):
        with ThreadPoolExecutor(len(logs)) as threads:
            together = list(threads.map(parse_when_all_are_ready, logs))
        for expected, got in zip(alone, together, strict=True):
            assert got.equals(expected)


DISPLAY_LINE = "I0101 00:00:{:02d}.000000  1 solver.cpp:218] Iteration {}, loss = {}\n"


def test_a_run_resumed_without_a_restart_marker_keeps_its_repeated_iterations():
    """Resumed from the snapshot at 20 after reaching 40, with the start-up lines cut away: the
    iterations 20-40 of the second run are its own values, kept as a second segment."""
    steps = [0, 10, 20, 30, 40, 20, 30, 40, 50]
    text = "".join(DISPLAY_LINE.format(i, step, 1.0 + i) for i, step in enumerate(steps))
    loss = _parse(text).series("loss")
    assert loss["step"].tolist() == steps
    assert loss["segment"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert loss["value"].tolist() == [1.0 + i for i in range(len(steps))]
    # the resumed run's first test pass belongs to it too
    prefix = "I0101 00:01:00.000000  1 solver.cpp:330] "
    test_pass = (
        prefix + "Iteration 20, Testing net (#0)\n" + prefix + "    Test net output #0: accuracy = 0.5\n"
    )
    lines = [DISPLAY_LINE.format(i, step, 1.0) for i, step in enumerate(steps)]
    resumed = _parse("".join(lines[:5]) + test_pass + "".join(lines[5:]))
    assert resumed.series("accuracy", "test")["segment"].tolist() == [1]


def test_an_lr_line_one_iteration_behind_its_loss_line_is_not_a_restart():
    """NVCaffe with display 1 prints `Iteration 39, lr` after `Iteration 40, loss` (real log
    nvcaffe_cifar10_nccl_3gpu.log)."""
    lr_line = "I0101 00:00:{:02d}.500000  1 sgd_solver.cpp:180] [0.0] Iteration {}, lr = 0.001\n"
    text = "".join(DISPLAY_LINE.format(i, i, 1.0) + lr_line.format(i, max(i - 1, 0)) for i in range(6))
    log = _parse(text)
    assert set(log.metrics["segment"]) == {0} and log.series("lr")["step"].tolist() == [0, 0, 1, 2, 3, 4]


def test_negative_iteration_numbers_are_named_as_such():
    only_negative = "".join(DISPLAY_LINE.format(i, -step, 1.0) for i, step in enumerate([5, 4]))
    with pytest.raises(ParseError, match=r"every `Iteration` number is negative \(the first at line 1\)"):
        _parse(only_negative)
    log = _parse(
        DISPLAY_LINE.format(0, 0, 1.0) + DISPLAY_LINE.format(1, -3, 2.0) + DISPLAY_LINE.format(2, 10, 0.5)
    )
    assert log.series("loss")["step"].tolist() == [0, 10]
    assert log.skipped_lines == 1
    assert any(w.line == 2 and "negative iteration number" in w.message for w in log.warnings)
