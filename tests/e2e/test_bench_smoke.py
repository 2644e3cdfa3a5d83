"""The benchmark harness runs (`bench/run.sh --quick`) and writes a complete report.

Its figures are measured, never asserted: this only checks that every section is there, that
every table row carries a number, and that the targets table judges each target.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE_DIR = Path(os.environ.get("SIGNGATE_SOURCE_DIR", Path(__file__).resolve().parents[2]))

SECTIONS = ["## Machine", "## Versions", "## Packages", "## Commands", "## 1. The limit",
            "## 2. The stock pipeline", "## 3. signgate", "## 4. Targets", "## Problems seen"]
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def tables(text):
    """{section heading: [rows]}, each row a list of cells, header and separator rows left out."""
    out, section, in_table = {}, None, False
    for line in text.splitlines():
        if line.startswith("## "):
            section, in_table = line.strip(), False
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not in_table:
                in_table = True  # the header row
                continue
            if all(re.fullmatch(r":?-+:?", c) for c in cells):
                continue
            out.setdefault(section, []).append(cells)
        else:
            in_table = False
    return out


def test_bench_quick_writes_every_section_with_a_figure_in_each_row(tmp_path):
    build = Path(os.environ["SIGNGATE_BIN"]).resolve().parents[1]
    out = tmp_path / "RESULTS.md"
    # A short work directory: the gate's unix socket path lives under it (at most 107 bytes).
    work = Path(tempfile.mkdtemp(prefix="sgb-test-", dir="/tmp"))
    try:
        run_and_check(build, out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_and_check(build, out, work):
    p = subprocess.run(["bash", str(SOURCE_DIR / "bench" / "run.sh"), "--quick", "--out", str(out),
                        "--build", str(build), "--workdir", str(work)],
                       capture_output=True, text=True, timeout=540)
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    assert out.is_file(), p.stderr[-4000:]
    text = out.read_text()
    for heading in SECTIONS:
        assert heading in text, "missing section %r\n%s" % (heading, text)
    assert list(work.iterdir()) == [], "the work directory was not cleaned up"

    t = tables(text)
    for section in ("## 1. The limit", "## 2. The stock pipeline", "## 3. signgate", "## 4. Targets"):
        assert t.get(section), "no table rows in %s" % section
    # Every row of every figures table carries a number; in sections 1-3 the median (third cell) is one.
    for section in ("## Packages", "## 1. The limit", "## 2. The stock pipeline", "## 3. signgate", "## 4. Targets"):
        for cells in t[section]:
            assert any(NUMBER.search(c) for c in cells[1:]), "no figure in %s row %r" % (section, cells)
    for section in ("## 1. The limit", "## 2. The stock pipeline", "## 3. signgate"):
        for cells in t[section]:
            assert NUMBER.match(cells[2]), "median of %r in %s is not a number" % (cells[0], section)
    # Every target is judged, with a measured figure and a ratio.
    for cells in t["## 4. Targets"]:
        assert cells[-1] in ("PASS", "**MISS**"), cells
        assert NUMBER.fullmatch(cells[1]) and NUMBER.fullmatch(cells[4]), cells

    names = " ".join(c[0] for rows in t.values() for c in rows)
    for needle in ("sha384", "ecdsap384", "-multi", "zlib inflate", "whole script", "openssl dgst", "unzip",
                   "signgate verify", "inbox drop", "API upload", "burst", "/v1/health", "peak RSS"):
        assert needle in names, "no row about %r" % needle
    targets = " ".join(c[0] for c in t["## 4. Targets"])
    for needle in ("verify-only", "stock pipeline", "max(hash time, inflate time)", "burst decisions/s",
                   "peak RSS", "health p99"):
        assert needle in targets, "no target about %r" % needle
    assert "## Problems seen\n\nNone" in text, text.split("## Problems seen")[-1]
