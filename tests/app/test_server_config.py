"""`./run app` listens on loopback only and does not ask the internet for the machine's external IP.

The server is started the way `./run app` starts it (`streamlit run app.py` from the repository root,
so `.streamlit/config.toml` applies; only the port is added), with HTTP(S)_PROXY pointing at a local
listener: Streamlit's external-IP lookup goes through `requests`, which would connect to it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTEN = "0A"  # TCP state in /proc/net/tcp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them) of the sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.add(address)
    return found


class Recorder:
    """A TCP listener that counts the connections made to it (a stand-in HTTP proxy)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def test_run_app_starts_streamlit_without_an_address_argument():
    run = (REPO / "run").read_text()
    assert 'streamlit run app.py "${@:2}"' in run


def test_app_listens_on_loopback_only_and_looks_up_no_external_ip(tmp_path):
    proxy = Recorder()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env |= {
        "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}",
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
        "LOSS_DOCTOR_DATA": str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    log = (tmp_path / "streamlit.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "streamlit.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                assert time.monotonic() < deadline, "streamlit did not become healthy"
                time.sleep(0.3)
        time.sleep(3)  # the start-up banner (and any lookup) comes right after the server listens
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing on IPv6 or 0.0.0.0
        assert proxy.connections == 0, (tmp_path / "streamlit.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)
        proxy.sock.close()
