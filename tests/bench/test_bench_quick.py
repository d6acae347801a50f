"""The benchmark suite's quick mode, end to end: every benchmark runs and reports (no timing
is asserted). Locally it skips when a peer tool is missing; in CI (``CI`` set) that fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("wrk", "redis-server", "moto_server")
BENCHMARKS = ("accept", "dispatch", "payload", "backlog", "peers", "realmodel")


def _missing() -> list[str]:
    bin_dir = Path(sys.executable).parent
    return [t for t in TOOLS if shutil.which(t) is None and not (bin_dir / t).exists()]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_mode_runs_every_benchmark(tmp_path: Path) -> None:
    if missing := _missing():
        message = f"benchmark tools missing: {', '.join(missing)} (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=230,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    results = json.loads((tmp_path / "results.json").read_text())
    sections = {section["key"]: section for section in results["sections"]}
    assert tuple(sections) == BENCHMARKS
    for key in BENCHMARKS[:-1]:
        assert sections[key]["rows"], key
        assert (tmp_path / "plots" / f"{key}.png").stat().st_size > 0
    assert sections["realmodel"]["skipped"] == "full mode only"
    assert "## Performance" in (tmp_path / "results.md").read_text()
