"""`RunMeta.requote` moves every quoted line of the facts, whichever field holds it (settings read from
a text inside another file, as an event file's `args`, are quoted where they sit in that file)."""

from __future__ import annotations

from dataclasses import asdict, fields

from parsers.model import BatchNormLayer, FrozenLayer, LogLine, RunMeta, WeightFiller


def _quotes(value: object) -> list[dict]:
    """Every LogLine of an `asdict` tree."""
    if isinstance(value, dict):
        if set(value) == {"source", "line", "text"}:
            return [value]
        return [quote for item in value.values() for quote in _quotes(item)]
    if isinstance(value, list):
        return [quote for item in value for quote in _quotes(item)]
    return []


def test_every_quote_of_every_fact_field_is_moved():
    at = LogLine("events", 3, "lr: 0.1")
    meta = RunMeta(base_lr=0.1, hyperparams={"lr": "0.1"}, mean_value=[104.0])
    meta.where["base_lr"] = at
    meta.comments.append(at)
    meta.batchnorm.append(BatchNormLayer("bn1", "train", True, at))
    meta.batchnorm_flags.append(BatchNormLayer("norm_eval", "train", True, at, source="flag"))
    meta.frozen_layers.append(FrozenLayer("backbone", "flag", at))
    meta.weight_fillers.append(WeightFiller("conv1", "gaussian", 0.01, at))
    holders = {f.name for f in fields(RunMeta) if _quotes(asdict(meta)[f.name])}
    assert holders == {"where", "comments", "batchnorm", "batchnorm_flags", "frozen_layers", "weight_fillers"}
    meta.requote(lambda where: LogLine(where.source, where.line + 100, where.text))
    assert {quote["line"] for quote in _quotes(asdict(meta))} == {103}
    assert meta.hyperparams == {"lr": "0.1"} and meta.mean_value == [104.0] and meta.base_lr == 0.1
