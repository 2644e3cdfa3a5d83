"""signgated under injected faults (DESIGN §5 INTERNAL, §8, §9, §12; operations.md).

1. Torture: a few hundred deploys (inbox drops and API uploads mixed, several functions, signed,
   unsigned and tampered packages) while the daemon is killed with SIGKILL at random moments
   (random.Random with a fixed seed, printed; override with SIGNGATE_FAULT_SEED) and restarted
   each time.  Afterwards: every inbox drop has exactly one decision record; an API upload has
   exactly one when its client got an answer, zero or one when its connection died with the
   daemon, never two; every function's `current` is a complete release whose release.json
   decision is a promotion in the audit file; no half-made releases, staging empty, no claimed
   entries left; `signgate audit verify` passes.
2. Full disk: var/lib/signgate on a small tmpfs, filled so that not even the staging copy, or
   the copy but not the release, can be written: the gate keeps running, records nothing, logs
   INTERNAL (journald and stderr), keeps the package and retries it; once space is freed the
   package is decided exactly once.  An API upload meanwhile is answered 500 ServiceException
   and not kept (docs/api.md).
   2b. The audit file's disk full (var/log/signgate on a small tmpfs): an inbox drop is kept
   and decided once later, not promoted twice; an API upload is answered 500 and must not be
   left live without a record.
3. Unwritable runtime directory: var/lib/signgate/runtime on a tmpfs remounted read-only; the
   same expectations, until it is remounted read-write.
4. journald: with `"journal": false` decisions are still in the audit file and on stderr (and
   not in the journal).  A gate whose journald socket is missing or stale is run in a private
   mount namespace (unshare -m), so the shared journald is never touched.

Every daemon is stopped, and every mount undone, in finalizers.  Run as root:

    SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_faults.py
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from gate import (enforce_policy, UnixHTTP, Gate, Policy, digest, expected_tree, gate, journald,  # noqa: F401
                  package, poll, signgated, simple_package, tree,
                  unsigned_with_foreign_signature)

INTERNAL_MESSAGE_ID = "742e36cfcbc04555a4d4d7ecb4917095"
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")

SEED = int(os.environ.get("SIGNGATE_FAULT_SEED", "20261128"))
TORTURE_ENFORCE = ["tort0", "tort1", "tort2", "tort3"]
TORTURE_WARN = "tortw"
TORTURE_FUNCTIONS = TORTURE_ENFORCE + [TORTURE_WARN]
TORTURE_DROPS = 200
TORTURE_UPLOADS = 150
TORTURE_MIN_KILLS = 12
TORTURE_MAX_KILLS = 60
UPLOAD_THREADS = 3


# --------------------------------------------------------------------------
# helpers


def api_sock(g: Gate) -> Path:
    return g.root / "run/signgate/api.sock"


def api_call(g: Gate, method: str, path: str, body=None, timeout: float = 60.0):
    """(status, parsed JSON or raw bytes)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    c = UnixHTTP(api_sock(g), timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(raw) if raw else None
    except ValueError:
        return r.status, raw


def upload_once(sock: Path, function: str, data: bytes, timeout: float = 60.0):
    """One PUT /v1/functions/F/code.  Returns ("refused", exc) when no connection was made
    (the package certainly never reached a gate), ("lost", exc) when the connection broke
    before an answer, or ("answered", status, body)."""
    c = UnixHTTP(sock, timeout)
    try:
        try:
            c.connect()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            return ("refused", type(e).__name__)
        try:
            try:
                c.request("PUT", "/v1/functions/%s/code" % function, body=data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the gate may have answered early and closed: the answer is still there
            r = c.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException) as e:
            return ("lost", type(e).__name__)
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = raw
        return ("answered", r.status, doc)
    finally:
        c.close()


def check_no_sanitizer_reports(g: Gate) -> None:
    text = g.stderr_text(all_starts=True)
    found = [m for m in SANITIZER_MARKERS if m in text]
    assert not found, "sanitizer report(s) %s in signgated's stderr:\n%s" % (found, text[-6000:])


def stop_cleanly(g: Gate) -> None:
    """SIGTERM: exit 0 (under ASan with detect_leaks, a leak would make it non-zero)."""
    rc = g.stop()
    assert rc == 0, "signgated exited %s on SIGTERM\n%s" % (rc, g.stderr_tail(6000))
    check_no_sanitizer_reports(g)


def hidden_release_entries(g: Gate) -> list:
    out = []
    if not g.functions_dir.exists():
        return out
    for f in os.listdir(g.functions_dir):
        for n in g.releases(f, hidden=True):
            if n.startswith("."):
                out.append("%s/releases/%s" % (f, n))
        fdir = g.fdir(f)
        for n in os.listdir(fdir):
            if n.startswith("."):
                out.append("%s/%s" % (f, n))
    return out


def claimed_entries(g: Gate) -> list:
    return [n for n in g.inbox_entries() if n.startswith(".claimed.")]



def internal_lines(g: Gate, name: str) -> list:
    return [l for l in g.stderr_text().splitlines() if "INTERNAL" in l and name in l]


def internal_journal(g: Gate, name: str) -> list:
    return [e for e in g.journal.query("MESSAGE_ID=" + INTERNAL_MESSAGE_ID, "_PID=%d" % g.pid)
            if name in str(e.get("MESSAGE", ""))]


class Mounts:
    """Mounts made by a test; undone (lazily if busy) in the finalizer."""

    def __init__(self):
        self.points = []

    def tmpfs(self, path: Path, size: str = "8m", mode: str = "0755") -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=%s" % (size, mode), "tmpfs",
                        str(path)], check=True, capture_output=True)
        self.points.append(path)
        return path

    def remount(self, path: Path, how: str) -> None:
        subprocess.run(["mount", "-o", "remount,%s" % how, str(path)], check=True,
                       capture_output=True)

    def undo(self) -> None:
        for p in reversed(self.points):
            r = subprocess.run(["umount", str(p)], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(p)], capture_output=True)
        self.points.clear()


@pytest.fixture
def mounts():
    # Requested before `gate` in the tests' signatures, so it is torn down after the gate's
    # daemons are killed (nothing holds the mounts any more).
    m = Mounts()
    try:
        yield m
    finally:
        m.undo()


@pytest.fixture(autouse=True)
def _must_be_root():
    if os.geteuid() != 0:
        pytest.fail("test_faults.py runs as root (it mounts tmpfs and kills daemons)", pytrace=False)


# --------------------------------------------------------------------------
# 1. torture: kill -9 at random moments under mixed load

def _torture_plan(signer, rng):
    """Every deploy, in submission order: dicts with via, function, kind, data, digest, name."""
    kinds = ["signed"] * 11 + ["unsigned"] * 5 + ["tampered"] * 4
    vias = ["inbox"] * TORTURE_DROPS + ["api"] * TORTURE_UPLOADS
    rng.shuffle(vias)
    plan = []
    for i, via in enumerate(vias):
        fn = rng.choice(TORTURE_FUNCTIONS)
        kind = rng.choice(kinds)
        size = rng.choice([300, 4_000, 40_000, 250_000, 800_000, 1_500_000])
        data = package(("lambda_function.py", b"def handler(e, c):\n    return %d\n" % i),
                       ("payload.bin", rng.randbytes(size)))
        if kind == "signed":
            data = signer.sign_bytes(data, fn + ".zip")
        elif kind == "tampered":
            data = unsigned_with_foreign_signature(signer, data, simple_package(), fn + ".zip")
        name = "%s@d%03d.zip" % (fn, i) if via == "inbox" else "%s.zip" % fn
        plan.append({"i": i, "via": via, "function": fn, "kind": kind, "data": data,
                     "digest": digest(data), "name": name})
    return plan


def _expected(item):
    warn = item["function"] == TORTURE_WARN
    if item["kind"] == "signed":
        return "promoted", []
    if item["kind"] == "unsigned":
        return ("promoted-with-warnings" if warn else "rejected"), ["UNSIGNED"]
    return "rejected", ["INTEGRITY"]


def _check_outcome(item, rec):
    outcome, reasons = _expected(item)
    assert rec["outcome"] == outcome and all(r in rec["reasons"] for r in reasons), (
        "%s (%s %s, %s): got %s %s: %s" % (item["name"], item["kind"], item["function"],
                                           item["via"], rec["outcome"], rec["reasons"],
                                           rec["message"]))
    assert rec["function"] == item["function"], rec
    assert rec["package"]["sha384"] == item["digest"], rec


def test_torture_kill_9_at_random_moments_under_mixed_load(gate, signer, run):
    rng = random.Random(SEED)
    print("\ntorture seed: %d (set SIGNGATE_FAULT_SEED to replay)" % SEED)
    pol = Policy()
    enforce = pol.csc("Enforce", signer)
    warn = pol.csc("Warn", signer)
    for f in TORTURE_ENFORCE:
        pol.function(f, enforce)
    pol.function(TORTURE_WARN, warn)
    g = gate(settings={"retainReleases": 1000}, policy=pol)
    sock = api_sock(g)

    plan = _torture_plan(signer, rng)
    drops = [p for p in plan if p["via"] == "inbox"]
    uploads = [p for p in plan if p["via"] == "api"]
    # The main thread drops bursts of packages and kills the gate a random moment after each
    # burst (so most kills land while packages are being copied, verified, extracted or
    # recorded); some kills come within milliseconds of a restart (mid start-up scan and
    # recovery); a few packages are dropped while the gate is down.  Uploads run meanwhile
    # from their own threads.
    upload_pace = [rng.uniform(0.0, 0.1) for _ in uploads]
    schedule = []
    for _ in range(TORTURE_MAX_KILLS):
        schedule.append({
            "burst": rng.randint(3, 14),
            "wait": rng.uniform(0.0, 0.01) if rng.random() < 0.25 else rng.uniform(0.01, 0.15),
            "while_down": rng.choice([0, 0, 0, 1, 2, 3]),
            "down": rng.uniform(0.0, 0.25),
        })
    by_digest = {p["digest"]: p for p in plan}
    assert len(by_digest) == len(plan), "two planned packages share a digest"

    results = {}                      # plan index -> upload_once result (last attempt)
    refused = Counter()
    errors = []
    in_flight = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def uploader(k):
        try:
            for p, pause in list(zip(uploads, upload_pace))[k::UPLOAD_THREADS]:
                deadline = time.monotonic() + 90
                while True:
                    if stop.is_set():
                        return
                    with lock:
                        in_flight[0] += 1
                    try:
                        res = upload_once(sock, p["function"], p["data"])
                    finally:
                        with lock:
                            in_flight[0] -= 1
                    if res[0] != "refused":
                        break
                    # No connection was made (the gate is down): this package reached no gate,
                    # so sending it again cannot make a second record.
                    with lock:
                        refused[p["i"]] += 1
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                with lock:
                    results[p["i"]] = res
                time.sleep(pause)
        except Exception as e:  # noqa: BLE001
            errors.append("uploader %d: %r" % (k, e))

    threads = [threading.Thread(target=uploader, args=(k,), name="uploader%d" % k)
               for k in range(UPLOAD_THREADS)]
    for t in threads:
        t.start()
    kills = 0
    at_kill = []                      # (claimed inbox entries, uploads in flight) at each kill
    todo = list(drops)
    try:
        while kills < TORTURE_MAX_KILLS and (kills < TORTURE_MIN_KILLS or todo
                                             or any(t.is_alive() for t in threads)):
            step = schedule[kills]
            for p in todo[:step["burst"]]:
                g.drop(p["name"], p["data"])
            del todo[:step["burst"]]
            time.sleep(step["wait"])
            assert g.running(), "signgated died on its own\n" + g.stderr_tail()
            with lock:
                busy_uploads = in_flight[0]
            claimed = len(claimed_entries(g))
            g.kill9()
            kills += 1
            at_kill.append((claimed, busy_uploads))
            for p in todo[:step["while_down"]]:
                g.drop(p["name"], p["data"])
            del todo[:step["while_down"]]
            time.sleep(step["down"])
            g.start()
        for p in todo:                # only if TORTURE_MAX_KILLS ran out first
            g.drop(p["name"], p["data"])
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "upload threads did not finish"
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    busy = sum(1 for c, u in at_kill if c or u)
    print("kill -9 count: %d (%d with claimed inbox entries or uploads in flight); "
          "(claimed, uploads in flight) at each kill: %s" % (kills, busy, at_kill))

    # ---- settle ----
    g.wait_records([p["name"] for p in drops], timeout=120)
    g.wait_idle(90)
    assert poll(lambda: not claimed_entries(g), 30), (
        "claimed entries left in the inbox after the final idle: %s" % claimed_entries(g))

    decisions = g.decisions()
    # ---- every inbox drop: exactly one record, the expected outcome ----
    by_name = {}
    for r in decisions:
        by_name.setdefault(r["package"]["name"], []).append(r)
    for p in drops:
        recs = by_name.get(p["name"], [])
        assert len(recs) == 1, "inbox drop %s has %d decision records: %s" % (
            p["name"], len(recs), [(r["decisionId"], r["outcome"]) for r in recs])
        assert recs[0]["source"] == "inbox", recs[0]
        _check_outcome(p, recs[0])

    # ---- every API upload: one record if answered, zero or one if not; never two ----
    api_recs = {}
    for r in decisions:
        if r["source"] == "api":
            api_recs.setdefault(r["package"]["sha384"], []).append(r)
    stray = [d for d in api_recs if d not in by_digest or by_digest[d]["via"] != "api"]
    assert not stray, "API records for packages that were never uploaded: %s" % stray[:5]
    answered = lost_with = lost_without = never = 0
    statuses = Counter()
    for p in uploads:
        res = results.get(p["i"])
        recs = api_recs.get(p["digest"], [])
        assert len(recs) <= 1, "API upload %d (%s) has %d decision records" % (
            p["i"], p["function"], len(recs))
        if res is None or res[0] == "refused":
            never += 1
            assert not recs, "upload %d never connected yet has a record" % p["i"]
            continue
        if res[0] == "lost":
            if recs:
                lost_with += 1
                _check_outcome(p, recs[0])
            else:
                lost_without += 1
            continue
        _, status, body = res
        statuses[status] += 1
        answered += 1
        assert status in (200, 403), "upload %d (%s %s) answered %s: %r" % (
            p["i"], p["kind"], p["function"], status, body)
        rec = body if status == 200 else body.get("Decision")
        assert isinstance(rec, dict), "upload %d: %s without a decision: %r" % (p["i"], status, body)
        assert len(recs) == 1 and recs[0]["decisionId"] == rec["decisionId"], (
            "upload %d answered decision %s; audit has %s" % (
                p["i"], rec["decisionId"], [r["decisionId"] for r in recs]))
        assert (status == 200) == (rec["outcome"] != "rejected"), (status, rec["outcome"])
        _check_outcome(p, rec)

    outcomes = Counter(r["outcome"] for r in decisions)
    print("deploys: %d (inbox drops %d, API uploads %d: answered %d %s, connection lost with "
          "the daemon %d [recorded %d, not recorded %d], never connected %d); "
          "refused connection attempts retried: %d" % (
              len(plan), len(drops), len(uploads), answered, dict(statuses),
              lost_with + lost_without, lost_with, lost_without, never, sum(refused.values())))
    print("kinds: %s; decisions recorded: %d %s" % (
        dict(Counter(p["kind"] for p in plan)), len(decisions), dict(outcomes)))

    # ---- the runtime tree ----
    promoted = [r for r in decisions if r["outcome"] in ("promoted", "promoted-with-warnings")]
    promoted_ids = {r["decisionId"] for r in promoted}
    problems = []
    orphans = []

    def fate(digest_hex):
        p = by_digest.get(digest_hex)
        if p is None:
            return "not a planned package"
        if p["via"] == "inbox":
            return "inbox drop %s" % p["name"]
        return "API upload %d, client saw %r" % (p["i"], (results.get(p["i"]) or ("none",))[:2])

    for f in TORTURE_FUNCTIONS:
        mine = sorted((r for r in promoted if r["function"] == f), key=lambda r: r["seq"])
        cur = g.current_release(f)
        if not mine:
            if cur is not None:
                problems.append("%s: current %s without any promotion recorded" % (f, cur))
            continue
        if cur is None:
            problems.append("%s: promotions recorded but no current link" % f)
            continue
        rdir = g.release_dir(f, cur)
        if not ((rdir / "release.json").is_file() and (rdir / "task").is_dir()):
            problems.append("%s: current -> %s is not a complete release (%s)" % (
                f, cur, sorted(os.listdir(rdir)) if rdir.exists() else "missing"))
            continue
        rel = json.loads((rdir / "release.json").read_text())
        if rel["decisionId"] not in promoted_ids:
            problems.append(
                "%s: current release %s was approved by decision %s (source %s), which is not a "
                "promotion in the audit file; it is %s; the newest recorded promotion is %s "
                "(seq %d)" % (f, cur, rel["decisionId"], rel.get("source"),
                              fate(rel["package"]["sha384"]), mine[-1]["release"], mine[-1]["seq"]))
        elif cur != mine[-1]["release"]:
            problems.append("%s: current is %s, the newest recorded promotion is %s (seq %d)" % (
                f, cur, mine[-1]["release"], mine[-1]["seq"]))
        if rel.get("release") != cur:
            problems.append("%s: release.json of %s names release %s" % (f, cur, rel.get("release")))
        src = by_digest.get(rel["package"]["sha384"])
        if src is None or tree(rdir / "task") != expected_tree(src["data"]):
            problems.append("%s: current release %s is not the package it records" % (f, cur))
        for r in mine:
            if not g.release_dir(f, r["release"]).is_dir():
                problems.append("%s: release %s of decision %s is missing" % (
                    f, r["release"], r["decisionId"]))
        for n in g.releases(f):
            j = g.release_dir(f, n) / "release.json"
            if j.is_file():
                rj = json.loads(j.read_text())
                if rj["decisionId"] not in promoted_ids:
                    orphans.append("%s/%s (%s)" % (f, n, fate(rj["package"]["sha384"])))
    if orphans:
        # Releases on disk whose approving decision never reached the audit file (an upload
        # killed between the swap of `current` and the audit append).  Only `current` is an
        # invariant here; these are printed so they can be quoted.
        print("releases on disk approved by a decision that is not in the audit file: %s"
              % orphans)
    assert not problems, "runtime tree after %d kills:\n  %s" % (kills, "\n  ".join(problems))
    assert hidden_release_entries(g) == [], "half-made releases: %s" % hidden_release_entries(g)
    assert g.staging_entries() == [], "staging not empty: %s" % g.staging_entries()

    # ---- the audit file ----
    run(["audit", "verify", *g.audit_files()], check=0)
    assert g.running()
    stop_cleanly(g)


# --------------------------------------------------------------------------
# 2. full disk

def _fill(path: Path, leave: int) -> Path:
    """Writes a filler file so that about `leave` bytes stay free on path's filesystem."""
    filler = path / "filler.bin"
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    size = max(0, free - leave)
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 20)
        left = size
        try:
            while left > 0:
                left -= f.write(chunk[:min(left, len(chunk))])
        except OSError:
            pass
    return filler


def _expect_internal_and_kept(g: Gate, name: str, journal) -> list:
    """The gate logged INTERNAL for `name` (stderr and journald), keeps running, recorded
    nothing, keeps the entry in the inbox, and retries (a second INTERNAL line)."""
    if not poll(lambda: g._alive() and internal_lines(g, name), 30):
        raise AssertionError("no INTERNAL line for %s on stderr within 30 s\n%s"
                             % (name, g.stderr_tail()))
    assert g.records_for(name) == [], (
        "an I/O failure was recorded as a decision: %s" % g.records_for(name))
    assert g.in_inbox(name), "the package left the inbox without a decision"
    assert g.running(), "signgated died on the I/O failure\n" + g.stderr_tail()
    entries = poll(lambda: internal_journal(g, name), 15, 0.2)
    assert entries, ("no journald entry with MESSAGE_ID=%s naming %s from pid %d"
                     % (INTERNAL_MESSAGE_ID, name, g.pid))
    assert all(e.get("PRIORITY") == "3" for e in entries), [e.get("PRIORITY") for e in entries]
    # the back-off retries it (0.5 s, 1 s, …) and fails again while the fault lasts
    assert poll(lambda: len(internal_lines(g, name)) >= 2, 20), (
        "the package was not retried while the fault lasted\n" + g.stderr_tail())
    assert g.records_for(name) == [] and g.in_inbox(name) and g.running()
    assert api_call(g, "GET", "/v1/health")[0] == 200
    return internal_lines(g, name)


def _expect_decided_once(g: Gate, name: str, data: bytes, function: str) -> dict:
    rec = g.await_decision(name, timeout=90)
    g.wait_idle(60)
    recs = g.records_for(name)
    assert len(recs) == 1, "%d records for %s: %s" % (
        len(recs), name, [(r["outcome"], r["reasons"]) for r in recs])
    assert (rec["outcome"], rec["reasons"]) == ("promoted", []), rec["message"]
    assert g.current_release(function) == rec["release"]
    assert tree(g.release_dir(function, rec["release"]) / "task") == expected_tree(data)
    assert g.staging_entries() == []
    assert hidden_release_entries(g) == []
    assert claimed_entries(g) == []
    return rec


@pytest.mark.parametrize("room", ["none", "copy-only"])
def test_full_disk_keeps_the_package_logs_internal_and_decides_it_once_space_is_back(
        room, mounts, gate, signer, run, journald):
    g = gate(start=False)
    lib = mounts.tmpfs(g.root / "var/lib/signgate", size="8m")
    g.write_policy(enforce_policy(signer, "full"))
    g.start()
    # A 1 MiB incompressible package.  "none": not even its staging copy can be written;
    # "copy-only": the staging copy fits, the release extracted from it does not.
    data = signer.sign_bytes(package(("lambda_function.py", b"def handler(e, c):\n    return 1\n"),
                                     ("payload.bin", os.urandom(1 << 20))), "full.zip")
    filler = _fill(lib, leave=0 if room == "none" else len(data) + 256 * 1024)
    free_kib = os.statvfs(lib).f_bavail * os.statvfs(lib).f_frsize // 1024
    g.drop("full.zip", data)
    lines = _expect_internal_and_kept(g, "full.zip", journald)
    print("\nfree on the tmpfs: %d KiB; INTERNAL lines so far: %d, first: %s"
          % (free_kib, len(lines), lines[0]))

    filler.unlink()
    _expect_decided_once(g, "full.zip", data, "full")
    run(["audit", "verify", *g.audit_files()], check=0)
    stop_cleanly(g)


@pytest.mark.parametrize("room", ["none", "copy-only"])
def test_api_upload_on_a_full_disk_is_answered_500_and_not_kept(room, mounts, gate, signer, run):
    """docs/api.md: an upload that hits an I/O failure answers 500 ServiceException, is not
    kept, and the client sends it again."""
    g = gate(start=False)
    lib = mounts.tmpfs(g.root / "var/lib/signgate", size="8m")
    g.write_policy(enforce_policy(signer, "fullapi"))
    g.start()
    up = signer.sign_bytes(package(("lambda_function.py", b"x = 1\n"),
                                   ("payload.bin", os.urandom(1 << 20))), "fullapi.zip")
    filler = _fill(lib, leave=0 if room == "none" else len(up) + 256 * 1024)
    res = upload_once(api_sock(g), "fullapi", up)
    internal = [l for l in g.stderr_text().splitlines() if "INTERNAL" in l]
    assert g.running(), g.stderr_tail()
    assert not [r for r in g.decisions() if r["package"]["sha384"] == digest(up)], (
        "an upload that failed with an I/O error has a decision record")
    assert g.staging_entries() == [], "the failed upload was kept in staging: %s" % (
        g.staging_entries())
    assert g.current_release("fullapi") is None
    assert res[0] == "answered" and res[1] == 500 and isinstance(res[2], dict) and (
        res[2].get("Code") == "ServiceException"), (
        "an upload that hit a full disk (%s) got %r instead of 500 ServiceException; "
        "daemon stderr:\n%s" % (room, res, g.stderr_text()[-1500:]))
    print("\n%s: %s; %s" % (room, res[2].get("Message"), internal[-1:] or "no INTERNAL line"))
    filler.unlink()
    # the gate is healthy again: the upload, sent again, is promoted
    res = upload_once(api_sock(g), "fullapi", up)
    assert res[0] == "answered" and res[1] == 200 and res[2]["outcome"] == "promoted", res
    run(["audit", "verify", *g.audit_files()], check=0)
    stop_cleanly(g)


# --------------------------------------------------------------------------
# 2b. the audit file's disk is full (var/log/signgate on a small tmpfs).  A full tmpfs still
#     takes appends into the audit file's last, partly used page, so packages are sent one by
#     one until an append fails.

def _audit_on_full_tmpfs(mounts, gate, signer, function):
    g = gate(start=False, policy=enforce_policy(signer, function))
    log = mounts.tmpfs(g.root / "var/log/signgate", size="1m", mode="0750")
    g.start()
    return g, log


def test_inbox_drop_whose_record_cannot_be_written_is_kept_and_decided_once_later(
        mounts, gate, signer, run, journald):
    g, log = _audit_on_full_tmpfs(mounts, gate, signer, "alog")
    first = g.decide("alog@0.zip", signer.sign_bytes(simple_package(), "alog.zip"))
    assert first["outcome"] == "promoted"
    filler = _fill(log, leave=0)
    for k in range(1, 12):
        name, data = "alog@%d.zip" % k, signer.sign_bytes(simple_package(), "alog.zip")
        g.drop(name, data)
        assert poll(lambda: g._alive() and (g.records_for(name) or internal_lines(g, name)), 30), (
            "%s neither decided nor failed\n%s" % (name, g.stderr_tail()))
        if not g.records_for(name):
            break
    else:
        pytest.fail("appends to the audit file kept succeeding on a full tmpfs")
    lines = _expect_internal_and_kept(g, name, journald)
    print("\nappends that still fitted: %d; INTERNAL lines: %d, first: %s"
          % (k - 1, len(lines), lines[0]))
    filler.unlink()
    rec = _expect_decided_once(g, name, data, "alog")
    mine = [n for n in g.releases("alog", hidden=True) if n.endswith(digest(data)[:12])]
    assert mine == [rec["release"]], "the package was promoted more than once: %s" % mine
    run(["audit", "verify", *g.audit_files()], check=0)
    stop_cleanly(g)


def test_api_upload_whose_record_cannot_be_written_is_500_and_not_promoted(
        mounts, gate, signer, run):
    """An upload answered 500 ("the package is not kept: send it again", docs/api.md) must
    not be live: `current` must not point at a release that no audit record approves."""
    g, log = _audit_on_full_tmpfs(mounts, gate, signer, "apilog")
    sock = api_sock(g)
    a = upload_once(sock, "apilog", signer.sign_bytes(simple_package(), "apilog.zip"))
    assert a[0] == "answered" and a[1] == 200, a
    filler = _fill(log, leave=0)
    for k in range(1, 12):
        before = g.current_release("apilog")
        data = signer.sign_bytes(simple_package(), "apilog.zip")
        res = upload_once(sock, "apilog", data)
        if not (res[0] == "answered" and res[1] == 200):
            break
    else:
        pytest.fail("appends to the audit file kept succeeding on a full tmpfs")
    cur = g.current_release("apilog")
    print("\nappends that still fitted: %d; the failing upload got %s %s"
          % (k - 1, res[1] if res[0] == "answered" else res, (res[2] or {}).get("Message")
             if res[0] == "answered" and isinstance(res[2], dict) else ""))
    assert res[0] == "answered" and res[1] == 500 and res[2].get("Code") == "ServiceException", res
    assert not [r for r in g.decisions() if r["package"]["sha384"] == digest(data)]
    live = json.loads((g.release_dir("apilog", cur) / "release.json").read_text())
    audit_ids = {r["decisionId"] for r in g.decisions()}
    filler.unlink()
    assert cur == before, (
        "the upload was answered 500 %r, yet `current` now points at its release %s, approved "
        "by decision %s, which is %s the audit file; before the upload it was %s.\n%s"
        % (res[2].get("Message"), cur, live["decisionId"],
           "in" if live["decisionId"] in audit_ids else "not in", before, g.stderr_tail(1500)))
    run(["audit", "verify", *g.audit_files()], check=0)
    stop_cleanly(g)


# --------------------------------------------------------------------------
# 3. unwritable runtime directory

def test_read_only_runtime_dir_keeps_the_package_logs_internal_and_decides_it_once_writable(
        mounts, gate, signer, run, journald):
    g = gate(policy=enforce_policy(signer, "rofn"), start=False)
    rt = mounts.tmpfs(g.root / "var/lib/signgate/runtime", size="8m")
    for sub in ("functions", "layers"):
        (rt / sub).mkdir(mode=0o755)
    mounts.remount(rt, "ro")
    with pytest.raises(OSError):
        (rt / "functions" / "probe").mkdir()   # read-only for root too
    g.start()
    data = signer.sign_bytes(simple_package(), "rofn.zip")
    g.drop("rofn.zip", data)
    lines = _expect_internal_and_kept(g, "rofn.zip", journald)
    print("\nINTERNAL lines while read-only: %d, first: %s" % (len(lines), lines[0]))
    mounts.remount(rt, "rw")
    _expect_decided_once(g, "rofn.zip", data, "rofn")
    assert os.path.realpath(g.fdir("rofn") / "current").startswith(str(rt) + "/")
    run(["audit", "verify", *g.audit_files()], check=0)
    stop_cleanly(g)


# --------------------------------------------------------------------------
# 4. journald off or absent

def _decide_some(g: Gate, signer, fn: str):
    """A promotion and a rejection from the inbox, and one API upload."""
    good = g.decide(fn + "@good.zip", signer.sign_bytes(simple_package(), fn + ".zip"))
    bad = g.decide(fn + "@bad.zip", simple_package())
    res = upload_once(api_sock(g), fn, signer.sign_bytes(simple_package(), fn + ".zip"))
    assert res[0] == "answered" and res[1] == 200, res
    assert (good["outcome"], bad["outcome"], res[2]["outcome"]) == (
        "promoted", "rejected", "promoted"), (good["message"], bad["message"], res[2])
    return [good, bad, res[2]]


def _check_recorded_off_journal(g: Gate, recs, journald) -> None:
    ids = [r["decisionId"] for r in recs]
    audit_ids = {r["decisionId"] for r in g.decisions()}
    assert set(ids) <= audit_ids, "decisions missing from the audit file"
    err = g.stderr_text(all_starts=True)
    for r in recs:
        line = "[%d] %s %s: %s" % (r["seq"], r["decisionId"], r["outcome"], r["message"])
        assert line in err, "decision not on stderr: %r\n%s" % (line, g.stderr_tail())
    assert journald.barrier(), "journald barrier failed"
    for did in ids:
        assert journald.query("SIGNGATE_DECISION_ID=" + did) == [], (
            "decision %s reached the journal although it should not have" % did)


def test_journal_false_still_records_decisions_in_the_audit_file_and_on_stderr(
        gate, signer, run, journald):
    started = int(time.time()) - 1
    g = gate(settings={"journal": False}, policy=enforce_policy(signer, "nojournal"))
    recs = _decide_some(g, signer, "nojournal")
    _check_recorded_off_journal(g, recs, journald)
    # Scoped to this run: an earlier process of the suite may have had the same PID.
    assert journald.query("_PID=%d" % g.pid, "SYSLOG_IDENTIFIER=signgated", "--since", "@%d" % started) == [], (
        "journal: false, yet the gate wrote to journald")
    run(["audit", "verify", *g.audit_files()], check=0)
    stop_cleanly(g)


NAMESPACE_WRAPPER = """#!/bin/sh
# signgated in a private mount namespace whose /run/systemd/journal is an empty tmpfs
# (and, for "stale", holds a socket file nobody listens on). The shared journald is untouched.
exec unshare --mount --propagation private /bin/sh -c '
  mount -t tmpfs -o size=1m,mode=0755 tmpfs /run/systemd/journal || exit 97
  if [ "$SGT_JOURNAL_MODE" = stale ]; then
    /usr/bin/python3 -c "import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(\\"/run/systemd/journal/socket\\"); s.close()" || exit 98
  fi
  exec "$SGT_SIGNGATED" "$@"' signgated "$@"
"""


@pytest.mark.parametrize("mode", ["missing", "stale"])
def test_gate_without_a_reachable_journald_socket_keeps_recording(
        mode, tmp_path, signgated, signer, run, journald, monkeypatch):
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is needed for this test", pytrace=False)
    wrapper = tmp_path / "signgated-nojournal.sh"
    wrapper.write_text(NAMESPACE_WRAPPER)
    wrapper.chmod(0o755)
    monkeypatch.setenv("SGT_SIGNGATED", signgated)
    monkeypatch.setenv("SGT_JOURNAL_MODE", mode)
    root = tmp_path / "root"
    root.mkdir()
    g = Gate(str(wrapper), root, journald)
    try:
        g.write_policy(enforce_policy(signer, "nosock"))
        g.start()
        recs = _decide_some(g, signer, "nosock")
        _check_recorded_off_journal(g, recs, journald)
        notice = "no journald socket; decisions are recorded in the audit file and on stderr only"
        count = g.stderr_text().count(notice)
        if mode == "missing":
            assert count == 1, "the missing journald socket is not reported once at start-up " \
                               "(%d times)\n%s" % (count, g.stderr_tail())
        print("\n%s journald socket: start-up notice printed %d time(s)" % (mode, count))
        run(["audit", "verify", *g.audit_files()], check=0)
        stop_cleanly(g)
    finally:
        g.close()
        # the namespace (and its tmpfs) went away with the daemon
        assert os.path.exists("/run/systemd/journal/socket"), "the shared journald socket is gone"
