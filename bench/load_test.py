"""Load test: 20 concurrent browser sessions against one `streamlit run app.py`, each uploading its own
log, sharing it and opening its link; then checks that nothing was lost or mixed up.

Each session (a fresh Playwright context in one headless Debian chromium) uploads a sample log made
unique by a last line naming the session, waits for the verdict, clicks Share, reads the link, and
opens it in another fresh context. Checks: every link shows its own file name and the verdict the
library gives that file, and the share store holds exactly that file, byte for byte. Prints median
and p95 latency per step and writes bench/out/load_test.json.

    .venv/bin/python bench/load_test.py [--sessions 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import BrowserContext, Page, async_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "e2e")]
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, start_app  # noqa: E402

from diagnostics import diagnose  # noqa: E402
from parsers import ParseError, load  # noqa: E402
from present import panels  # noqa: E402
from present.examples import list_examples  # noqa: E402
from share.store import SharedRun, ShareStore, SQLiteStore  # noqa: E402

OUT = REPO / "bench" / "out"
TIMEOUT_MS = 600_000
VERDICT = ".st-key-verdict-0"
# Per step: when the server's websocket message with the answer reached the client ("answered"), and
# when the page showed it (chromium laid out and drew it, on the same CPUs as the server).
STEPS = (
    "upload_answered",
    "upload_to_verdict",
    "share_answered",
    "share_to_link",
    "link_answered",
    "link_to_verdict",
    "session",
)


@dataclass
class Session:
    index: int
    name: str
    data: bytes
    verdict: str
    link: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def sessions(count: int) -> list[Session]:
    """One unique single-file log per session, round-robin over the parseable single-file samples."""
    samples = []
    for example in list_examples():
        files = example.files()
        if len(files) == 1:
            try:
                load(files)
            except ParseError:
                continue
            samples.append(files[0])
    out = []
    for i in range(count):
        name, data = samples[i % len(samples)]
        data = data.rstrip(b"\n") + f"\n# load-test session {i:02d}\n".encode()
        name = f"session-{i:02d}-{name}"
        out.append(Session(i, name, data, panels.verdict(diagnose(load([(name, data)])), "en").sentence))
    return out


async def idle(page: Page) -> None:
    await page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=TIMEOUT_MS
    )


class Answers:
    """Records when the first websocket frame from the server containing a needle arrived."""

    def __init__(self, page: Page) -> None:
        self.needle, self.at = b"", 0.0
        page.on("websocket", lambda ws: ws.on("framereceived", self.frame))

    def expect(self, needle: str) -> float:
        self.needle, self.at = needle.encode(), 0.0
        return time.perf_counter()

    def frame(self, payload: bytes | str) -> None:
        data = payload if isinstance(payload, bytes) else payload.encode()
        if not self.at and self.needle and self.needle in data:
            self.at = time.perf_counter()


async def new_page(browser, charts: bool) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    if not charts:  # the server still builds and sends every figure; the browser does not draw it
        await context.route("**/PlotlyChart*.js", lambda route: route.abort())
    return context, await context.new_page()


async def own_verdict(page, answers: Answers, mark: float, s: Session, step: str) -> None:
    """Wait for the verdict, time it (shown, and answered by the server), and check it is the run's own."""
    await page.wait_for_selector(VERDICT, timeout=TIMEOUT_MS)
    s.seconds[f"{step}_to_verdict"] = time.perf_counter() - mark
    if answers.at:
        s.seconds[f"{step}_answered"] = answers.at - mark
    if s.verdict not in await page.locator(VERDICT).inner_text():
        s.problems.append(f"{step}: another verdict")


async def run_session(browser, url: str, s: Session, charts: bool) -> None:
    start = time.perf_counter()
    context, page = await new_page(browser, charts)
    answers = Answers(page)
    await page.goto(url)
    await idle(page)
    mark = answers.expect(s.verdict)
    files = [{"name": s.name, "mimeType": "text/plain", "buffer": s.data}]
    await page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(files)
    await own_verdict(page, answers, mark, s, "upload")
    await idle(page)
    share = page.get_by_role("button", name="Share")
    await share.click(trial=True)  # until the page has settled and the button takes clicks: not timed
    mark = answers.expect("/?d=")
    await share.click()
    await page.wait_for_selector(".st-key-share-link code", timeout=TIMEOUT_MS)
    s.seconds["share_to_link"] = time.perf_counter() - mark
    if answers.at:
        s.seconds["share_answered"] = answers.at - mark
    s.link = (await page.locator(".st-key-share-link code").inner_text()).strip()
    await context.close()

    context, page = await new_page(browser, charts)
    answers = Answers(page)
    mark = answers.expect(s.verdict)
    await page.goto(s.link)
    await own_verdict(page, answers, mark, s, "link")
    await idle(page)  # the run's facts (file names) are written after the verdict
    if await page.get_by_text(s.name, exact=True).count() == 0:
        s.problems.append("link: own file name not shown")
    await context.close()
    s.seconds["session"] = time.perf_counter() - start


async def drive(url: str, runs: list[Session], charts: bool) -> float:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        start = time.perf_counter()
        results = await asyncio.gather(
            *(run_session(browser, url, s, charts) for s in runs), return_exceptions=True
        )
        wall = time.perf_counter() - start
        for s, result in zip(runs, results, strict=True):
            if isinstance(result, BaseException):
                s.problems.append(f"{type(result).__name__}: {str(result).splitlines()[0]}")
        await browser.close()
    return wall


def check_store(store: ShareStore, runs: list[Session]) -> None:
    """The share behind each link holds exactly its session's file."""
    for s in runs:
        if not s.link:
            continue
        share = store.load(s.link.rsplit("d=", 1)[1])
        if [(r.label, r.files) for r in share.runs] != [(s.name, [(s.name, s.data)])]:
            s.problems.append("store: the share holds other files")


def store_saves(runs: list[Session], folder: Path) -> list[float]:
    """Seconds per save when every session saves its run into one store at the same moment (threads,
    as Streamlit runs sessions): the store's share of the Share click, without the browser."""
    store = SQLiteStore(folder / "shares.sqlite3")
    barrier = threading.Barrier(len(runs))

    def save(s: Session) -> float:
        barrier.wait()
        start = time.perf_counter()
        saved = store.save([SharedRun(s.name, [(s.name, s.data)])], {})
        seconds = time.perf_counter() - start
        if store.load(saved.id).runs[0].files != [(s.name, s.data)]:
            s.problems.append("store: a concurrent save came back different")
        return seconds

    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(save, runs))


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 3),
        "p95_s": round(percentile(values, 95), 3),
        "max_s": round(max(values), 3),
        "n": len(values),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * q // 100) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument(
        "--no-charts",
        action="store_true",
        help="browsers do not draw the plotly chart (its script is blocked): on a small machine shared by"
        " the server and all the browsers, this measures the server rather than chromium's drawing",
    )
    args = parser.parse_args()
    runs = sessions(args.sessions)
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_app(Path(tmp) / "data", Path(tmp) / "streamlit.log")
        try:
            wall = asyncio.run(drive(url, runs, charts=not args.no_charts))
            check_store(SQLiteStore(Path(tmp) / "data" / "shares.sqlite3"), runs)
        finally:
            process.terminate()
            process.wait(timeout=30)
        saves = store_saves(runs, Path(tmp) / "threads")
    figures = {
        step: summary(v) for step in STEPS if (v := [s.seconds[step] for s in runs if step in s.seconds])
    }
    figures["store_save_only"] = summary(saves)
    report = {
        "sessions": len(runs),
        "charts_drawn": not args.no_charts,
        "ok": sum(not s.problems for s in runs),
        "wall_s": round(wall, 1),
        "steps": figures,
        "problems": {s.name: s.problems for s in runs if s.problems},
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
        "samples": sorted({s.name.split("-", 2)[2] for s in runs}),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / f"load_test{'_no_charts' if args.no_charts else ''}.json").write_text(json.dumps(report, indent=2))
    intact = f"{report['ok']}/{report['sessions']} sessions intact"
    print(f"{intact}, wall {report['wall_s']} s ({report['machine']})")
    print(f"{'step':<20} {'median s':>9} {'p95 s':>7} {'max s':>7}")
    for step, f in figures.items():
        print(f"{step:<20} {f['median_s']:>9} {f['p95_s']:>7} {f['max_s']:>7}")
    for name, problems in report["problems"].items():
        print(f"PROBLEM {name}: {'; '.join(problems)}")
    sys.exit(0 if report["ok"] == report["sessions"] else 1)


if __name__ == "__main__":
    main()
