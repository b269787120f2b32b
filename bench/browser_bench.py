"""Real-browser timings: upload of a ~100 MB Caffe log -> verdict visible, and share link -> verdict.

Targets on the 2-core machine: under 10 s and under 3 s. Runs Debian's chromium through Playwright
against a live `streamlit run app.py` with a temporary store, prints the figures and writes them to
bench/BROWSER_RESULTS.md.

    .venv/bin/python bench/browser_bench.py [--mb 100] [--repeat 1]
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "e2e")]
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, start_app, wait_idle  # noqa: E402

RESULTS = REPO / "bench" / "BROWSER_RESULTS.md"
VERDICT = ".st-key-verdict-0"
TIMEOUT_MS = 180_000


def caffe_log(path: Path, megabytes: int) -> Path:
    """A glog solver log of about `megabytes` MB: smoothed display loss, per-iteration net output and
    lr every iteration, a test pass every 1000 iterations."""
    rng = random.Random(0)
    target = megabytes * 1024**2
    with path.open("w") as out:
        out.write("I1124 10:00:00.000000  4242 solver.cpp:44] Initializing solver from parameters:\n")
        out.write('base_lr: 0.01\ndisplay: 1\nmax_iter: 2000000\nlr_policy: "step"\ngamma: 0.1\n')
        out.write("momentum: 0.9\nweight_decay: 0.0005\nstepsize: 300000\n")
        it, written = 0, 0
        while written < target:
            lr = 0.01 * 0.1 ** (it // 300000)
            loss = 6.9 * math.exp(-it / 150000) + 0.4 + 0.05 * rng.random()
            seconds = it // 50
            clock = f"{10 + seconds // 3600 % 14:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            stamp = f"I1124 {clock}.{it % 1000:03d}000"
            block = (
                f"{stamp}  4242 solver.cpp:228] Iteration {it}, loss = {loss:.6g}\n"
                f"{stamp}  4242 solver.cpp:244]     Train net output #0: loss = {loss * 1.02:.6g} "
                f"(* 1 = {loss * 1.02:.6g} loss)\n"
                f"{stamp}  4242 sgd_solver.cpp:106] Iteration {it}, lr = {lr:.6g}\n"
            )
            if it % 1000 == 0:
                block += (
                    f"{stamp}  4242 solver.cpp:341] Iteration {it}, Testing net (#0)\n"
                    f"{stamp}  4242 solver.cpp:409]     Test net output #0: accuracy = {1 - loss / 7:.4f}\n"
                    f"{stamp}  4242 solver.cpp:409]     Test net output #1: loss = {loss * 1.1:.6g} "
                    f"(* 1 = {loss * 1.1:.6g} loss)\n"
                )
            out.write(block)
            written += len(block)
            it += 1
    return path


def open_link(browser, link: str, verdict: str) -> float:
    """Seconds from opening `link` in a fresh browser context to the verdict being visible."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(link)
    page.wait_for_selector(VERDICT, timeout=TIMEOUT_MS)
    seconds = time.perf_counter() - start
    assert page.locator(VERDICT).inner_text() == verdict, "the shared page shows another verdict"
    context.close()
    return seconds


def measure(log_path: Path, data_dir: Path, server_log: Path) -> dict[str, float]:
    process, url = start_app(data_dir, server_log)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(url)
            wait_idle(page)
            with page.expect_file_chooser() as chooser:
                page.get_by_test_id("stFileUploaderDropzone").click()
            start = time.perf_counter()
            chooser.value.set_files(str(log_path))
            page.wait_for_selector(VERDICT, timeout=TIMEOUT_MS)
            upload_s = time.perf_counter() - start
            page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT_MS)
            chart_s = time.perf_counter() - start
            wait_idle(page, TIMEOUT_MS)
            page.get_by_role("button", name="Share").click()
            page.wait_for_selector(".st-key-share-link code", timeout=TIMEOUT_MS)
            wait_idle(page, TIMEOUT_MS)
            link = page.locator(".st-key-share-link code").inner_text().strip()
            verdict = page.locator(VERDICT).inner_text()
            share_s = open_link(browser, link, verdict)
            # A server restart empties the cache: the shared files are parsed and diagnosed again.
            process.terminate()
            process.wait(timeout=30)
            process, url = start_app(data_dir, server_log.with_suffix(".restarted.log"))
            cold_share_s = open_link(browser, link.replace(link.split("/?")[0], url), verdict)
        finally:
            browser.close()
            process.terminate()
            process.wait(timeout=30)
    return {
        "upload_to_verdict_s": upload_s,
        "upload_to_chart_s": chart_s,
        "share_link_to_verdict_s": share_s,
        "share_link_after_restart_s": cold_share_s,
    }


def parser_used(log_path: Path) -> str:
    """Which format plug-in reads the log, and from where (the figures depend on it)."""
    from parsers.registry import detect, format_modules
    from parsers.source import SourceFile

    fmt, _ = detect(SourceFile.from_bytes(log_path.name, log_path.read_bytes()[: 1024 * 1024]))
    if fmt is None:
        return "no parser (none recognised the log)"
    path = Path(format_modules()[fmt].__file__).resolve()
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return f"`{fmt}` ({where})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the generated Caffe log in MB")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        log_path = caffe_log(tmp_path / "caffe_train.log", args.mb)
        size_mb = log_path.stat().st_size / 1024**2
        parser = parser_used(log_path)
        runs = [
            measure(log_path, tmp_path / f"data{i}", tmp_path / f"server{i}.log") for i in range(args.repeat)
        ]
    best = {key: min(r[key] for r in runs) for key in runs[0]}
    lines = [
        "# Browser benchmark (real Chromium, Playwright, `streamlit run app.py`)",
        "",
        f"Command: `.venv/bin/python bench/browser_bench.py --mb {args.mb} --repeat {args.repeat}`",
        f"Machine: {platform.machine()}, {platform.python_version()}, {len(runs)} run(s), best shown; "
        f"log size {size_mb:.1f} MB (Caffe glog solver log), parsed by {parser}.",
        "",
        "| measure | seconds | target |",
        "|---|---|---|",
        f"| upload -> verdict visible | {best['upload_to_verdict_s']:.2f} | < 10 |",
        f"| upload -> chart drawn | {best['upload_to_chart_s']:.2f} | |",
        f"| open share link (fresh browser context, same server) -> verdict | "
        f"{best['share_link_to_verdict_s']:.2f} | < 3 |",
        f"| open share link after a server restart (cache empty: parse + diagnose again) -> verdict | "
        f"{best['share_link_after_restart_s']:.2f} | |",
        "",
    ]
    print("\n".join(lines))
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
