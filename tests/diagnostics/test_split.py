"""The frozen split of the corpus: decided by a written rule, frozen by a manifest with checksums."""

import csv
from collections import defaultdict

import pytest

from diagnostics import split

HAS_CORPUS = (split.CORPUS / split.MANIFEST_NAME).exists()
needs_corpus = pytest.mark.skipif(not HAS_CORPUS, reason="sample_logs/corpus absent")


def test_held_out_families_always_go_to_test():
    for group in ("g1", "g2", "resnet-17", "x"):
        for family in split.HELD_OUT_FAMILIES:
            assert split.split_of(family, group) == "test"


def test_split_is_by_group_and_deterministic():
    groups = [f"mlp-{i}" for i in range(400)]
    first = [split.split_of("mlp", g) for g in groups]
    assert first == [split.split_of("mlp", g) for g in groups]
    held = first.count("test") / len(first)
    assert abs(held - split.HELD_OUT_GROUP_PERCENT / 100) < 0.07


@needs_corpus
def test_corpus_matches_its_frozen_manifest():
    assert split.differences() == []


@needs_corpus
def test_test_split_is_a_third_and_never_shares_a_group_with_training():
    entries = split.read_manifest()
    test = [e for e in entries if e.split == "test"]
    assert len(test) >= 0.3 * len(entries)
    splits_of_group = defaultdict(set)
    for e in entries:
        splits_of_group[e.group].add(e.split)
    assert all(len(s) == 1 for s in splits_of_group.values())


@needs_corpus
def test_manifest_rows_follow_the_rule(tmp_path):
    with (split.CORPUS / split.MANIFEST_NAME).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert row["split"] == split.split_of(row["family"], row["group"]), row["path"]


def test_a_changed_file_is_caught(tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "train.log").write_text("Iteration 0, loss = 2.3\n")
    (tmp_path / "labels.csv").write_text("path,family,group\nruns/a,mlp,g1\n")
    split.write_manifest(tmp_path)
    assert split.differences(tmp_path) == []
    (run / "train.log").write_text("Iteration 0, loss = 2.4\n")
    assert any("files changed" in d for d in split.differences(tmp_path))


HAS_FRESH = (split.FRESH / split.MANIFEST_NAME).exists()
needs_fresh = pytest.mark.skipif(not HAS_FRESH, reason="sample_logs/corpus_fresh absent")
HAS_UNSEEN = (split.UNSEEN / split.MANIFEST_NAME).exists()
needs_unseen = pytest.mark.skipif(not HAS_UNSEEN, reason="sample_logs/corpus_unseen absent")
HAS_EXTRA = (split.EXTRA / split.MANIFEST_NAME).exists()
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason="sample_logs/corpus_extra absent")


@pytest.mark.parametrize(
    ("corpus", "whole"),
    [
        pytest.param(split.FRESH, "fresh", marks=needs_fresh, id="fresh: all held out"),
        pytest.param(split.EXTRA, "train", marks=needs_extra, id="extra: all training data"),
        pytest.param(split.UNSEEN, "unseen", marks=needs_unseen, id="unseen: all held out"),
    ],
)
def test_a_whole_set_matches_its_frozen_manifest(corpus, whole):
    assert split.differences(corpus) == []
    entries = split.read_manifest(corpus)
    assert len(entries) >= 100
    assert {e.split for e in entries} == {whole}


@needs_fresh
@needs_corpus
def test_fresh_set_shares_no_group_or_seed_with_the_corpus():
    """Made from the groups after the corpus's own: no fresh run is the sibling of a corpus run."""
    corpus = split.read_corpus_labels()
    fresh = split.read_corpus_labels(split.FRESH)
    assert not {r["group"] for r in corpus} & {r["group"] for r in fresh}
    assert not {r["seed"] for r in corpus} & {r["seed"] for r in fresh}


@needs_extra
@needs_fresh
@needs_corpus
def test_extra_set_holds_no_held_out_family_and_no_sibling_of_a_held_out_run():
    """Tuning on it must not see the family the test split holds out whole, nor the group or seed of
    any test or fresh run."""
    extra = split.read_corpus_labels(split.EXTRA)
    assert not {r["family"] for r in extra} & set(split.HELD_OUT_FAMILIES)
    test_paths = split.paths_of("test")
    held = [r for r in split.read_corpus_labels() if r["path"] in test_paths]
    held += split.read_corpus_labels(split.FRESH)
    for key in ("group", "seed"):
        assert not {r[key] for r in extra} & {r[key] for r in held}


@needs_unseen
@needs_extra
@needs_fresh
@needs_corpus
def test_unseen_set_shares_no_group_or_seed_with_any_other_set():
    """Made from the groups after the extra set's: no unseen run is the sibling of a run that was fitted
    on or read before."""
    unseen = split.read_corpus_labels(split.UNSEEN)
    others = [*split.read_corpus_labels(), *split.read_corpus_labels(split.FRESH)]
    others += split.read_corpus_labels(split.EXTRA)
    for key in ("group", "seed"):
        assert not {r[key] for r in unseen} & {r[key] for r in others}
