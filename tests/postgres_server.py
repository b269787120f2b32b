"""A real, throwaway PostgreSQL server for the tests: Debian's binaries (`./run test` installs the
`postgresql` package), a data folder in a temporary directory, a free loopback port, password
authentication. initdb and postgres refuse to run as root, so as root the server runs as the
unprivileged `nobody`. Without the binaries the tests skip, except under CI, where they must run."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

DEBIAN_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED_USERS = ("nobody", "loss-doctor-pg")  # the second is created when the first is missing
USER = "loss_doctor"
START_TIMEOUT_S = 60


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL's bin folder, or the one of `pg_ctl` on PATH."""
    versions = sorted(
        (p.parent for p in DEBIAN_ROOT.glob("*/bin/pg_ctl")),
        key=lambda d: [int(n) for n in re.findall(r"\d+", d.parent.name)],
    )
    if versions:
        return versions[-1]
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def unprivileged_account() -> pwd.struct_passwd:
    """`nobody`, or a system user without a home or a login made for the purpose."""
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", UNPRIVILEGED_USERS[-1]],
        check=True,
    )
    return pwd.getpwnam(UNPRIVILEGED_USERS[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl in a temporary folder; `url` reaches it; `stop()`/`start()` restart it."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.account = unprivileged_account() if os.geteuid() == 0 else None
        # As root, in /tmp itself: the unprivileged user cannot reach into root's own temporary folders.
        self.root = Path(tempfile.mkdtemp(prefix="loss-doctor-pg-", dir="/tmp" if self.account else None))
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.url = f"postgresql://{USER}:{quote(self.password)}@127.0.0.1:{self.port}/postgres"
        if self.account:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self.account:
            os.chown(password_file, self.account.pw_uid, self.account.pw_gid)
        self._run(
            "initdb",
            "-D",
            self.data,
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
        )
        password_file.unlink()

    def _run(self, tool: str, *args: object) -> None:
        as_user = {}
        if self.account:
            as_user = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        subprocess.run(
            [str(self.bindir / tool), *map(str, args)],
            cwd=self.root,
            check=True,
            capture_output=True,
            **as_user,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "server.log",
            "-o",
            options,
            "-w",
            "-t",
            START_TIMEOUT_S,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`immediate` stops without a checkpoint, as a crash would: recovery replays the WAL."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def schema_url(self) -> str:
        """The URL of a new, empty schema: each test gets its own tables on the one server."""
        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """A running server; skips when PostgreSQL is not installed (fails under CI, which installs it)."""
    bindir = find_bindir()
    if bindir is None:
        reason = f"PostgreSQL's binaries are not installed (no {DEBIAN_ROOT}/*/bin/pg_ctl; ./run test installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer(bindir)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server
