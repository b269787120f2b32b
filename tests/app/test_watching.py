"""The page's watch mode: only paths under LOSS_DOCTOR_WATCH_DIRS, resolved (symlinks, `..`) before
they are compared; the refusals in both languages, with the paths shown as literal text; the chart
marks the first warning of each rule."""

from __future__ import annotations

import pytest

from diagnostics.watch import Watcher
from present import watching
from present.figures import ChartSettings, RunView
from present.watching import WATCH_DIRS_ENV, WatchRefused, watch_path


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    allowed = tmp_path / "jobs"
    (allowed / "exp1").mkdir(parents=True)
    (allowed / "exp1" / "train.log").write_bytes(b"iter 1 | loss 2.0\n")
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(WATCH_DIRS_ENV, f"{tmp_path / 'nowhere'}::{allowed}")
    return allowed, other


def test_paths_under_an_allowed_directory_are_watched(jobs):
    allowed, _ = jobs
    assert watch_path(str(allowed / "exp1" / "train.log"), "en") == (allowed / "exp1" / "train.log").resolve()
    assert watch_path(f"  {allowed}/exp1/../exp1  ", "en") == (allowed / "exp1").resolve()


@pytest.mark.parametrize("lang,word", [("en", "Refused"), ("zh", "已拒绝")])
def test_paths_leading_out_are_refused(jobs, lang, word):
    allowed, other = jobs
    (other / "secret.log").write_bytes(b"x\n")
    (allowed / "link").symlink_to(other)
    for path in (
        other / "secret.log",
        f"{allowed}/../other/secret.log",
        allowed / "link" / "secret.log",
        "/",
    ):
        with pytest.raises(WatchRefused) as refused:
            watch_path(str(path), lang)
        assert word in str(refused.value) and WATCH_DIRS_ENV in str(refused.value)


def test_refusals_without_a_setting_or_a_file(jobs, monkeypatch):
    allowed, _ = jobs
    with pytest.raises(WatchRefused, match="does not exist"):
        watch_path(str(allowed / "exp2" / "train.log"), "en")
    with pytest.raises(WatchRefused, match="Type the path"):
        watch_path("  ", "en")
    monkeypatch.delenv(WATCH_DIRS_ENV)
    with pytest.raises(WatchRefused, match="Watching is off"):
        watch_path(str(allowed / "exp1" / "train.log"), "en")


def test_a_typed_path_is_shown_literally(jobs):
    with pytest.raises(WatchRefused) as refused:
        watch_path("/tmp/[x](https://evil.example) **bold**", "en")
    assert "`/tmp/[x](https:/evil.example) **bold**`" in str(refused.value)  # resolved, as a code span


def test_the_chart_marks_the_first_warning_of_each_rule(tmp_path):
    path = tmp_path / "train.log"
    lines = [f"iter {i} | loss {2.3 - 0.05 * i:.4f}\n" for i in range(30)] + [
        "iter 30 | loss 12.0\n",
        "iter 31 | loss 15.0\n",
    ]
    path.write_text("".join(lines))
    watcher = Watcher(path, 0.0)
    watcher.poll()
    state = watcher.diagnose()
    assert [w.rule for w in watcher.history] == ["LD403"]
    figure = watching.watch_figure(
        RunView("train.log", state.log, state.diagnosis), ChartSettings(), watcher.history
    )
    marks = [a.text for a in figure.layout.annotations if a.text == "LD403"]
    assert marks and {s.x0 for s in figure.layout.shapes} >= {31}
    assert "last step 31" in watching.status_line(state, state.read_at, watcher.bytes_read, "en")
