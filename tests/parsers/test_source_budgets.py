"""Reading raw uploads: budgets enforced while decompressing, and logs in UTF-16/UTF-32 with a
byte-order mark (what Windows PowerShell's `>` writes) read like their UTF-8 original."""

import codecs
import gzip
import json
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from real_log_files import real_log

from parsers import ParseError, load, load_paths
from parsers.source import SourceFile

SAMPLES = "sample_logs"


def _gzip_of_zeros(mebibytes: int) -> bytes:
    """A gzip archive of `mebibytes` MiB of zeros (about 1000 times smaller), built without
    compressing all of it: after a full flush every 1 MiB block compresses to the same bytes."""
    block = bytes(1024**2)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    body = first + repeated * (mebibytes - 1) + deflate.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(block, crc)
    size = mebibytes * 1024**2
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little")


def test_the_bomb_builder_makes_a_valid_archive():
    assert gzip.decompress(_gzip_of_zeros(3)) == bytes(3 * 1024**2)


def test_a_gzip_bomb_is_refused_quickly_with_bounded_memory():
    bomb = _gzip_of_zeros(1024)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 2 * 1024**2
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ParseError, match="expands more than 200 times"):
            SourceFile.from_bytes("bomb.log.gz", bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 100 * 1024**2  # the old code held the whole GiB (and then more)


def test_the_operator_sets_the_decompressed_size_limit(monkeypatch):
    packed = gzip.compress(b"epoch 1 loss=0.5\n" * 10_000)
    assert SourceFile.from_bytes("a.log.gz", packed).size == 170_000
    monkeypatch.setenv("LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES", "100000")
    with pytest.raises(ParseError, match="LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES"):
        load([("a.log.gz", packed)])
    monkeypatch.setenv("LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES", "not a number")  # ignored: the default
    assert SourceFile.from_bytes("a.log.gz", packed).size == 170_000


def test_every_member_of_a_multi_member_archive_and_padding_are_read():
    packed = gzip.compress(b"Epoch 1 loss=0.5\n") + gzip.compress(b"Epoch 2 loss=0.4\n") + bytes(8)
    source = SourceFile.from_bytes("a.log.gz", packed)
    assert source.data == b"Epoch 1 loss=0.5\nEpoch 2 loss=0.4\n" and source.notes == []


def test_a_corrupt_second_member_keeps_the_first_and_says_so():
    first = gzip.compress(b"Epoch 1 loss=0.5\n" * 100)
    source = SourceFile.from_bytes("a.log.gz", first + gzip.compress(b"Epoch 2 loss=0.4\n" * 100)[:-12])
    assert source.data.startswith(b"Epoch 1 loss=0.5\n" * 100)
    assert source.notes and "truncated or corrupt" in source.notes[0]


ENCODINGS = [
    ("utf-16-le", codecs.BOM_UTF16_LE),
    ("utf-16-be", codecs.BOM_UTF16_BE),
    ("utf-32-le", codecs.BOM_UTF32_LE),
    ("utf-32-be", codecs.BOM_UTF32_BE),
]


def _same_table_when_reencoded(path, tmp_path) -> None:
    original = load_paths([path])
    assert len(original.metrics)
    text = path.read_bytes().decode("utf-8")
    for encoding, mark in ENCODINGS:
        data = mark + text.encode(encoding)
        from_bytes = load([(path.name, data)])
        assert from_bytes.metrics.equals(original.metrics), encoding
        assert from_bytes.meta.format == original.meta.format
        on_disk = tmp_path / path.name
        on_disk.write_bytes(data)
        assert load_paths([on_disk]).metrics.equals(original.metrics), encoding


@pytest.mark.parametrize(
    "name", ["caffe_lenet_overfitting.log", "torch_mlp_sgd_healthy.log", "keras_dense_overfitting.csv"]
)
def test_utf16_and_utf32_samples_read_like_utf8(name, tmp_path):
    _same_table_when_reencoded(Path(SAMPLES) / name, tmp_path)


@pytest.mark.parametrize(
    "relative", ["print_style/gpt2_lora_alpaca.log", "hf_stdout/gemma2_lmsys_cls_stdout.log"]
)
def test_utf16_and_utf32_real_logs_with_non_ascii_text_read_like_utf8(relative, tmp_path):
    _same_table_when_reencoded(real_log(relative), tmp_path)


def test_a_large_utf16_file_on_disk_is_decoded_not_mapped(tmp_path, monkeypatch):
    from parsers import source as source_module

    monkeypatch.setattr(source_module, "MAP_BYTES", 1)
    path = tmp_path / "train.log"
    path.write_bytes(codecs.BOM_UTF16_LE + "Epoch 1 loss=0.5\n".encode("utf-16-le"))
    assert SourceFile.from_path(path).data == b"Epoch 1 loss=0.5\n"


def _peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


LONG_KEY = "loss_" + "k" * 60_000  # within the line cap, so the record is read


def test_a_huge_metric_name_in_json_lines_is_shortened_with_bounded_memory():
    """One 60,000-character key among 3,000 records: the old frame builder made every row of the
    table as wide as that name (gigabytes)."""
    records = [json.dumps({"epoch": e, "loss": 1 / (e + 1)}) for e in range(3000)]
    records[10] = json.dumps({"epoch": 10, "loss": 0.1, LONG_KEY: 0.5})
    data = "\n".join(records).encode()
    logs = []
    assert _peak_bytes(lambda: logs.append(load([("metrics.jsonl", data)]))) < 150 * 1024**2
    names = [str(n) for n in logs[0].metrics["name"].cat.categories]
    shortened = [n for n in names if n.startswith("loss_kkk")]
    assert len(shortened) == 1 and len(shortened[0]) <= 200 and "…" in shortened[0]
    assert logs[0].metrics.loc[logs[0].metrics["name"] == shortened[0], "value"].tolist() == [0.5]
    assert any("1 metric name(s) longer than 200 characters" in w.message for w in logs[0].warnings)


@pytest.mark.parametrize("name", ["metrics.csv", "train.log"])
def test_a_huge_column_name_in_a_table_is_shortened_with_bounded_memory(name):
    """A long header name applies to every row: the print-style CSV reader once copied it per row."""
    rows = "".join(f"{step},{1 / (step + 1)},0.5\n" for step in range(6_000))
    data = f"step,{LONG_KEY},loss\n{rows}".encode()
    logs = []
    assert _peak_bytes(lambda: logs.append(load([(name, data)]))) < 150 * 1024**2
    assert logs[0].metrics["name"].cat.categories.str.len().max() <= 200


def test_the_operator_sets_the_name_cap(monkeypatch):
    monkeypatch.setenv("LOSS_DOCTOR_MAX_NAME_CHARS", "12")
    data = b'{"epoch": 1, "loss": 1.0, "validation_accuracy": 0.5}\n{"epoch": 2, "loss": 0.9, "validation_accuracy": 0.6}\n'
    log = load([("metrics.jsonl", data)])
    assert set(map(len, log.metrics["name"].cat.categories)) == {4, 12}  # `loss`, and the other shortened
    assert sorted(log.metrics["value"].tolist()) == [0.5, 0.6, 0.9, 1.0]
