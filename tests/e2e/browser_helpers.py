"""Helpers shared by the real-browser tests and bench/browser_bench.py: start the app, drive it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VERDICT = "[data-testid='stAlert']"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(
    data_dir: Path, log_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start the app (with extra environment `env`, e.g. operator limits) and wait for its health
    endpoint; returns the process and its base URL."""
    port = free_port()
    env = {**os.environ, "LOSS_DOCTOR_DATA": str(data_dir), **(env or {})}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("streamlit did not become healthy within 60 s")


@contextmanager
def running_app(folder: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """The app started in `folder` (share store and server log there) with extra environment `env`;
    yields its base URL and stops it afterwards."""
    process, url = start_app(folder / "data", folder / "streamlit.log", env)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the Streamlit script has finished its run (as Streamlit's own e2e tests do)."""
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


def open_in(page, url: str, lang: str = "en") -> None:
    """Open the app and pick the page language (English is the default)."""
    page.goto(url)
    wait_idle(page)
    if lang == "zh":
        page.get_by_text("简体中文").click()
        wait_idle(page)


def upload(page, files: list[tuple[str, bytes]], index: int = 0) -> None:
    """Upload through the real file input (the dropzone's file chooser)."""
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("stFileUploaderDropzone").nth(index).click()
    chooser.value.set_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data} for name, data in files]
    )
