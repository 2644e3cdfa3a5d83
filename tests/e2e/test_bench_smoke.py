"""The inbox benchmark runs (on a tiny size): its figures are measured, never asserted."""

import json
import os
import subprocess
from pathlib import Path

SOURCE_DIR = Path(os.environ.get("SIGNGATE_SOURCE_DIR", Path(__file__).resolve().parents[2]))


def test_gate_inbox_bench_runs_and_reports_every_package_promoted(tmp_path):
    build = Path(os.environ["SIGNGATE_BIN"]).resolve().parents[1]
    p = subprocess.run(["/usr/bin/python3", str(SOURCE_DIR / "bench" / "gate_inbox.py"), "--build", str(build),
                        "--size-mib", "0.05", "--latency-runs", "2", "--burst", "12", "--functions", "3"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert out["latency_ms"]["runs"] == 2
    assert out["burst"]["packages"] == 12 and out["burst"]["decisions_per_second"] > 0
    assert out["api_latency_ms"]["runs"] == 2 and out["api_burst"]["uploads"] == 12
    # 2 + 12 drops and 2 + 12 uploads; identical packages re-sent are recorded again.
    assert out["outcomes"] == {"promoted": 28}
