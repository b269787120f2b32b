"""Operator budgets, read from the environment at use (README "Operating the server").

A value that is set but not a positive number raises: a typo must not silently lift a limit.
"""

from __future__ import annotations

import os

MAX_RUN_MB_ENV = "LOSS_DOCTOR_MAX_RUN_MB"
MAX_SHARE_MB_ENV = "LOSS_DOCTOR_MAX_SHARE_MB"
SHARE_DAYS_ENV = "LOSS_DOCTOR_SHARE_DAYS"
DEFAULT_MAX_RUN_MB = 1024.0  # the upload limit of .streamlit/config.toml (server.maxUploadSize)
DEFAULT_MAX_SHARE_MB = 100.0  # uncompressed bytes of the runs of one share
DEFAULT_SHARE_DAYS = 90.0
MB = 1024**2


def env_number(name: str, default: float) -> float:
    """The positive number in environment variable `name`, or `default` when it is unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"{name}={raw!r}: expected a positive number")
    return value


def max_run_bytes() -> int:
    """Largest run (all its files) the page parses."""
    return int(env_number(MAX_RUN_MB_ENV, DEFAULT_MAX_RUN_MB) * MB)


def max_share_bytes() -> int:
    """Largest share (the uncompressed files of all its runs) the store accepts."""
    return int(env_number(MAX_SHARE_MB_ENV, DEFAULT_MAX_SHARE_MB) * MB)


def share_seconds() -> float:
    """How long a share lives before it is purged."""
    return env_number(SHARE_DAYS_ENV, DEFAULT_SHARE_DAYS) * 86400
