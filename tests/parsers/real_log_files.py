"""The team's real training logs (../shared/real_logs next to the repo): tests skip when absent."""

from pathlib import Path

import pytest

REAL_LOGS = Path(__file__).resolve().parents[2] / "../shared/real_logs"


def real_log(relative: str) -> Path:
    """Path of a real log such as "mmdet_json/x.log.json"; skips the test when it is not there."""
    path = REAL_LOGS / relative
    if not path.exists():
        pytest.skip("real logs not available")
    return path
