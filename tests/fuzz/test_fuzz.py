"""The short fuzz budget of every test run (deterministic seeds): generated logs of each supported
shape and mutated sample/real logs either parse, diagnose and render, or raise ParseError."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz import strategies
from tests.fuzz.engine import Executor, Files, check, mutate_case, seed_runs

GENERATED = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize(
    "strategy",
    [strategies.caffe_glog(), strategies.print_lines(), strategies.json_lines(), strategies.csv_table()],
    ids=["caffe_glog", "print_lines", "json_lines", "csv_table"],
)
def test_generated_logs_parse_or_raise_parse_error(strategy):
    @GENERATED
    @given(files=strategy)
    def property_holds(files: Files) -> None:
        outcome = check(files)
        assert not outcome.bad, f"{outcome.error} at {outcome.site}"

    property_holds()


@GENERATED
@given(files=strategies.any_log())
def test_generated_logs_in_other_encodings_parse_or_raise_parse_error(files):
    outcome = check(files)
    assert not outcome.bad, f"{outcome.error} at {outcome.site}"


def test_mutated_sample_and_real_logs_parse_or_raise_parse_error():
    seeds = seed_runs()
    failures = []
    with Executor(timeout=30) as executor:
        for case in range(250):
            outcome = executor.run(mutate_case(random.Random(f"suite:{case}"), seeds))
            if outcome.bad:
                failures.append(f"case {case}: {outcome.kind} {outcome.error} at {outcome.site}")
    assert not failures, "\n".join(failures)
