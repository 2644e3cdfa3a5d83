"""signgated under load and crashes (DESIGN §8, §12).

A burst of 200 packages across 20 functions; kill -9 in the middle of bursts and
restarts on the same root; an identical package after a restart; the audit file's hash
chain (and `signgate audit verify`); SIGTERM draining.

Run: SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_gate_crash.py
"""

import hashlib
import json
import os
import re
import subprocess
from collections import Counter

import pytest

from gate import (enforce_policy, RELEASE_RE, check_record_shape, digest, expected_tree, gate,  # noqa: F401
                  gate_mod, journald, package, poll, signgated, simple_package, tree)

BURST_FUNCTIONS = 20
BURST_PER_FUNCTION = 10



def signed_packages(signer, items, size=2000):
    """[(inbox name, signed bytes)] with distinct contents."""
    out = []
    for name, function in items:
        data = package(("lambda_function.py", b"def handler(e, c):\n    return %r\n" % name),
                       ("payload.bin", os.urandom(size)))
        out.append((name, signer.sign_bytes(data, function + ".zip")))
    return out


def check_chain(lines):
    """seq increases by one; prev = SHA-256 of the previous line (64 zeros first)."""
    assert lines, "empty audit file"
    with_nl = None
    prev_seq = None
    for i, line in enumerate(lines):
        rec = json.loads(line)
        assert line.startswith('{"seq":'), "line %d does not start with seq: %r" % (i + 1, line[:40])
        assert list(rec)[-1] == "prev", "line %d: prev is not the last key" % (i + 1)
        if prev_seq is not None:
            assert rec["seq"] == prev_seq + 1, "line %d: seq %s after %s" % (i + 1, rec["seq"], prev_seq)
        prev_seq = rec["seq"]
        if i == 0:
            assert rec["prev"] == "0" * 64, "first line's prev is not 64 zeros: %s" % rec["prev"]
            continue
        a = hashlib.sha256(lines[i - 1].encode()).hexdigest()
        b = hashlib.sha256((lines[i - 1] + "\n").encode()).hexdigest()
        if with_nl is None:
            assert rec["prev"] in (a, b), "line %d: prev is not SHA-256 of line %d" % (i + 1, i)
            with_nl = rec["prev"] == b
        else:
            assert rec["prev"] == (b if with_nl else a), (
                "line %d: prev is not SHA-256 of line %d" % (i + 1, i))


def check_no_duplicates_and_releases(g, names_by_function, data_by_name):
    """Exactly one record per dropped name; releases = one per distinct promoted digest,
    complete, no staging leftovers; current points at a complete release."""
    recs = {}
    counts = Counter()
    for r in g.decisions():
        n = r["package"]["name"]
        counts[n] += 1
        recs.setdefault(n, r)
    dup = {n: c for n, c in counts.items() if n in data_by_name and c > 1}
    assert not dup, "packages decided more than once: %s" % dup
    lost = [n for n in data_by_name if n not in recs]
    assert not lost, "packages never decided: %s" % lost
    for f, names in names_by_function.items():
        promoted = [recs[n] for n in names if recs[n]["outcome"] == "promoted"]
        assert len(promoted) == len(names), "not all promoted for %s: %s" % (
            f, [(recs[n]["outcome"], recs[n]["reasons"]) for n in names])
        want = sorted({r["release"] for r in promoted})
        have = g.releases(f, hidden=True)
        assert have == want, ("function %s: releases on disk %s, want one per promoted digest %s"
                              % (f, have, want))
        bad = [r for r in have if not RELEASE_RE.match(r)]
        assert not bad, "release names not YYYYMMDDTHHMMSSZ-HEX12: %s" % bad
        suffixes = Counter(RELEASE_RE.match(r).group(2) for r in have)
        assert all(c == 1 for c in suffixes.values()), "a digest promoted twice: %s" % suffixes
        for r in promoted:
            rdir = g.release_dir(f, r["release"])
            assert json.loads((rdir / "release.json").read_text())["decisionId"] in {
                x["decisionId"] for x in promoted}, rdir
            assert tree(rdir / "task") == expected_tree(data_by_name[r["package"]["name"]]), (
                "release %s of %s is not the package" % (r["release"], f))
        assert g.current_release(f) in want
    return recs


# --------------------------------------------------------------------------
# a burst of 200

@pytest.fixture(scope="module")
def burst(gate_mod, signer):
    functions = ["burst%02d" % i for i in range(BURST_FUNCTIONS)]
    g = gate_mod(settings={"retainReleases": 50}, policy=enforce_policy(signer, *functions))
    items = [("%s@%03d.zip" % (functions[i % BURST_FUNCTIONS], i), functions[i % BURST_FUNCTIONS])
             for i in range(BURST_FUNCTIONS * BURST_PER_FUNCTION)]
    pkgs = signed_packages(signer, items)
    for name, data in pkgs:
        g.drop(name, data)
    recs = g.wait_records([n for n, _ in pkgs], timeout=150)
    g.wait_idle(60)
    return {"gate": g, "functions": functions, "items": items, "pkgs": pkgs, "recs": recs}


def test_burst_of_200_is_decided_once_each_in_drop_order_per_function(burst):
    g = burst["gate"]
    data_by_name = dict(burst["pkgs"])
    by_fn = {}
    for name, f in burst["items"]:
        by_fn.setdefault(f, []).append(name)
    recs = check_no_duplicates_and_releases(g, by_fn, data_by_name)
    assert g.staging_entries() == []
    for f, names in by_fn.items():
        seqs = [recs[n]["seq"] for n in names]
        assert seqs == sorted(seqs), "function %s decided out of drop order: %s" % (
            f, [n for _, n in sorted(zip(seqs, names))])
        last = recs[names[-1]]
        assert g.current_release(f) == last["release"], (
            "%s: current is %s, the last dropped is %s" % (f, g.current_release(f), last["release"]))
    for r in recs.values():
        check_record_shape(r)
        assert r["package"]["sha384"] == digest(data_by_name[r["package"]["name"]])
    check_chain(g.audit_lines())


def test_audit_verify_passes_on_the_gate_file_and_fails_on_an_edited_copy(burst, run, tmp_path):
    g = burst["gate"]
    run(["audit", "verify", g.audit_path], check=0)
    lines = g.audit_path.read_text().splitlines(True)
    assert len(lines) >= 5
    edited = list(lines)
    rec = json.loads(edited[2])
    old = rec["message"]
    assert old in edited[2]
    edited[2] = edited[2].replace(json.dumps(old)[1:-1], json.dumps(old[:-1] + "!")[1:-1], 1)
    assert edited[2] != lines[2]
    copy = tmp_path / "copy-audit.jsonl"
    copy.write_text("".join(edited))
    p = run(["audit", "verify", copy])
    assert p.returncode == 1, "audit verify on an edited copy exited %d: %s" % (
        p.returncode, p.stderr)
    assert re.search(re.escape(copy.name) + r":(3|4)\b", p.stderr), (
        "audit verify does not name file:line of the break: %r" % p.stderr)
    # a missing line is a break too
    cut = tmp_path / "cut-audit.jsonl"
    cut.write_text("".join(lines[:3] + lines[4:]))
    p = run(["audit", "verify", cut])
    assert p.returncode == 1 and re.search(re.escape(cut.name) + r":4\b", p.stderr), (
        p.returncode, p.stderr)


# --------------------------------------------------------------------------
# kill -9

def test_kill_9_mid_burst_then_restart_loses_nothing_and_promotes_nothing_twice(gate, signer):
    functions = ["crash%d" % i for i in range(8)]
    g = gate(settings={"retainReleases": 1000}, policy=enforce_policy(signer, *functions))
    counter = [0]

    def batch(n):
        items = []
        for _ in range(n):
            i = counter[0]
            counter[0] += 1
            f = functions[i % len(functions)]
            items.append(("%s@%04d.zip" % (f, i), f))
        return items

    all_items = []
    all_pkgs = []
    pending_at_kill = []
    # kill -9 after 0 (right after the drops), 1, 4, 9 and 17 new decisions
    for after in (0, 1, 4, 9, 17):
        items = batch(40)
        pkgs = signed_packages(signer, items, size=100_000)
        all_items += items
        all_pkgs += pkgs
        before = len(g.decisions())
        for name, data in pkgs:
            g.drop(name, data)
        if after:
            g.wait_count(before + after, timeout=60, interval=0.002)
        g.kill9()
        pending_at_kill.append(len(g.pending()))
        # dropped while the gate is down: only the start-up rescan can find these
        down = batch(6)
        dpkgs = signed_packages(signer, down, size=100_000)
        for name, data in dpkgs:
            g.drop(name, data)
        all_items += down
        all_pkgs += dpkgs
        g.start()
    print("inbox entries pending at each kill -9:", pending_at_kill)
    g.wait_records([n for n, _ in all_pkgs], timeout=120)
    g.wait_idle(60)
    assert g.staging_entries() == [], "staging not emptied: %s" % g.staging_entries()
    by_fn = {}
    for name, f in all_items:
        by_fn.setdefault(f, []).append(name)
    check_no_duplicates_and_releases(g, by_fn, dict(all_pkgs))
    check_chain(g.audit_lines())
    seen = Counter(l.split()[0] for l in g.first_seen_path.read_text().splitlines() if l.strip())
    twice = [d for d in (digest(x) for _, x in all_pkgs) if seen[d] != 1]
    assert not twice, "%d digests not exactly once in first-seen.log" % len(twice)
    assert g.running()


def test_identical_package_is_recognised_after_kill_9_and_restart(gate, signer):
    g = gate(policy=enforce_policy(signer, "same"))
    data = signer.sign_bytes(simple_package(), "same.zip")
    first = g.decide("same.zip", data)
    assert first["outcome"] == "promoted", first["message"]
    rel = first["release"]
    marker = g.release_dir("same", rel) / "task" / "lambda_function.py"
    ino = os.stat(marker).st_ino
    g.kill9()
    # the same bytes, dropped while the gate is down (the start-up rescan's case) …
    g.drop("same@again.zip", data)
    g.start()
    second = g.await_decision("same@again.zip")
    # … and while it runs after the restart
    third = g.decide("same@third.zip", data)
    for r in (second, third):
        check_record_shape(r)
        assert (r["outcome"], r["release"]) == ("promoted", rel), (
            r["outcome"], r["release"], r["message"])
    assert g.releases("same", hidden=True) == [rel], g.releases("same", hidden=True)
    assert os.stat(marker).st_ino == ino, "the identical package was extracted again"
    assert g.current("same") == "releases/" + rel
    assert len(g.records_for("same.zip")) == 1
    assert g.first_seen_path.read_text().split().count(digest(data)) == 1


# --------------------------------------------------------------------------
# SIGTERM

def test_sigterm_drains_in_flight_jobs_and_exits_0(gate, signer):
    functions = ["term%d" % i for i in range(5)]
    g = gate(settings={"retainReleases": 100}, policy=enforce_policy(signer, *functions))
    items = [("%s@%03d.zip" % (functions[i % 5], i), functions[i % 5]) for i in range(40)]
    pkgs = signed_packages(signer, items, size=200_000)
    for name, data in pkgs:
        g.drop(name, data)
    g.wait_count(1, timeout=60, interval=0.005)
    rc = g.stop()
    assert rc == 0, "signgated exited %s on SIGTERM\n%s" % (rc, g.stderr_tail())
    assert any(n.get("STOPPING") == "1" for n in g.notes[g.stop_since:]), (
        "no STOPPING=1 (got %s)" % g.notes[g.stop_since:])
    raw = g.audit_path.read_bytes()
    assert raw.endswith(b"\n"), "the audit file ends in a partial line"
    assert g.staging_entries() == [], "staging not empty after a drained stop: %s" % (
        g.staging_entries())
    for f in functions:
        hidden = [n for n in g.releases(f, hidden=True) if n.startswith(".")]
        assert not hidden, "half-made releases left by a drained stop: %s" % hidden
    for name, _ in pkgs:
        n = len(g.records_for(name))
        present = g.in_inbox(name)
        assert (n, present) in ((1, False), (0, True)), (
            "%s after SIGTERM: %d records, inbox entry %s" % (
                name, n, "present" if present else "gone"))
    g.start()
    g.wait_records([n for n, _ in pkgs], timeout=120)
    g.wait_idle(60)
    by_fn = {}
    for name, f in items:
        by_fn.setdefault(f, []).append(name)
    check_no_duplicates_and_releases(g, by_fn, dict(pkgs))
    check_chain(g.audit_lines())


def test_audit_rotation_keeps_one_chain_across_files(gate, signer, run):
    g = gate(settings={"audit": {"rotateBytes": 4096, "keepFiles": 50}},
             policy=enforce_policy(signer, "rot"))
    pkgs = signed_packages(signer, [("rot@%02d.zip" % i, "rot") for i in range(20)], size=100)
    for name, data in pkgs:
        g.drop(name, data)
    g.wait_records([n for n, _ in pkgs])
    g.wait_idle()
    files = g.audit_files()
    assert len(files) >= 3, "rotateBytes 4096 made no rotation: %s" % [f.name for f in files]
    for f in files:
        assert f.stat().st_size <= 4096 or len(f.read_text().splitlines()) == 1, (
            "%s is %d bytes, over rotateBytes" % (f.name, f.stat().st_size))
    lines = []
    for f in files:
        lines += f.read_text().splitlines()
    check_chain(lines)
    assert [json.loads(l)["seq"] for l in lines] == list(range(1, len(lines) + 1))
    run(["audit", "verify", *files], check=0)
    assert sum(1 for r in g.decisions() if r["package"]["name"].startswith("rot@")) == 20


# --------------------------------------------------------------------------
# I/O failure (INTERNAL): kept and retried, never lost, decided once

def test_io_failure_keeps_the_package_in_the_inbox_and_a_retry_decides_it_once(gate, signer):
    g = gate(policy=enforce_policy(signer, "stuck"))
    fdir = g.fdir("stuck")
    fdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+i", str(fdir)], check=True)   # no release can be made in it
    try:
        data = signer.sign_bytes(simple_package(), "stuck.zip")
        errors_before = g.stderr_text().count("stuck")
        g.drop("stuck.zip", data)
        assert poll(lambda: g.stderr_text().count("stuck") > errors_before, 20), (
            "no error reported for the failing promotion\n" + g.stderr_tail())
        assert g.records_for("stuck.zip") == [], (
            "an I/O failure was recorded as a decision: %s" % g.records_for("stuck.zip"))
        assert g.in_inbox("stuck.zip"), "the package left the inbox without a decision"
    finally:
        subprocess.run(["chattr", "-i", str(fdir)], check=True)
    rec = g.await_decision("stuck.zip", timeout=90)
    g.wait_idle()
    recs = g.records_for("stuck.zip")
    assert len(recs) == 1, "%d records: %s" % (len(recs), [(r["outcome"], r["reasons"]) for r in recs])
    assert (rec["outcome"], rec["reasons"]) == ("promoted", []), rec["message"]
    assert g.current_release("stuck") == rec["release"]
    assert tree(g.release_dir("stuck", rec["release"]) / "task") == expected_tree(data)
    assert g.staging_entries() == []
