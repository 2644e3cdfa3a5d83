"""signgated end to end through its inbox (DESIGN §5, §7, §8, §9).

Every outcome of DESIGN §5 reached by dropping a package into
var/spool/signgate/inbox, under Enforce and Warn; promoted packages extracted byte-exact;
rejected ones kept with their record; one journald entry per decision; drop styles
(rename, slow direct writer), bad names and non-regular entries; layers; the
post-promotion hook; retention.

Run: SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_gate_inbox.py
"""

import json
import os
import signal
import socket
import tempfile
import time
import uuid
from datetime import timedelta

import pytest

import zipcraft
from gate import (enforce_policy, Policy, check_journal, check_record_shape, digest,  # noqa: F401
                  expected_tree, gate, gate_mod, journald, now_utc, package, poll, RELEASE_RE,
                  sign_at, signgated, simple_package, strip_chain, tree,
                  unsigned_with_foreign_signature)

ROOT_PEER = {"uid": os.getuid(), "gid": os.getgid(), "pid": None}
OVERRIDABLE = {"UNSIGNED", "UNTRUSTED_PUBLISHER", "EXPIRED", "NOT_YET_VALID", "REVOKED"}
LIMIT_ENTRIES = 50
REVOKED_JOB = str(uuid.uuid4())


# --------------------------------------------------------------------------
# one gate for the module: trusted, known-but-not-allowed and revoked publishers,
# an Enforce and a Warn code signing config, a function per case

CASES = ["MALFORMED", "LIMIT_EXCEEDED", "UNSAFE_CONTENT", "INTEGRITY", "UNSIGNED",
         "UNTRUSTED_PUBLISHER", "EXPIRED", "NOT_YET_VALID", "REVOKED_JOB", "REVOKED_PROFILE"]


def fname(policy, case):
    return "%s-%s" % (policy[0].lower(), case.lower().replace("_", "-"))


@pytest.fixture(scope="module")
def world(gate_mod, signer, make_signer):
    other = make_signer("gate_other")
    revoked = make_signer("gate_revoked")
    pol = Policy()
    pol.profile(other)
    enforce = pol.csc("Enforce", signer, revoked)
    warn = pol.csc("Warn", signer, revoked)
    for case in CASES + ["GOOD", "NONREG", "IDENTICAL"]:
        pol.function(fname("Enforce", case), enforce)
        pol.function(fname("Warn", case), warn)
    pol.function("loose")  # declared, no code signing config
    pol.function("uses-layer", enforce, layers=["mylayer"])
    pol.revoke_job(REVOKED_JOB)
    pol.revoke_profile(revoked, now_utc() - timedelta(hours=1))
    g = gate_mod(settings={"limits": {"entries": LIMIT_ENTRIES}}, policy=pol)
    return {"gate": g, "signer": signer, "other": other, "revoked": revoked,
            "csc": {"Enforce": enforce, "Warn": warn}}


def make_case(world, case, name):
    s = world["signer"]
    now = now_utc()
    if case == "MALFORMED":
        return b"this is not a ZIP archive " + uuid.uuid4().hex.encode() + b"\n" * 40
    if case == "LIMIT_EXCEEDED":
        return package(*[("f%03d.txt" % i, b"x%d" % i) for i in range(LIMIT_ENTRIES + 10)])
    if case == "UNSAFE_CONTENT":
        return package(("ok.txt", b"ok"), ("../escape.txt", b"gotcha"))
    if case == "INTEGRITY":
        return unsigned_with_foreign_signature(s, simple_package(), simple_package(), name)
    if case == "UNSIGNED":
        return simple_package()
    if case == "UNTRUSTED_PUBLISHER":
        return world["other"].sign_bytes(simple_package(), name)
    if case == "EXPIRED":
        # 4200 days > the profile's 135 months; the payload claims a longer validity,
        # which the gate must ignore.
        return sign_at(s, simple_package(), name, signed_at=now - timedelta(days=4200),
                       validity=timedelta(days=5200))
    if case == "NOT_YET_VALID":
        return sign_at(s, simple_package(), name, signed_at=now + timedelta(days=2))
    if case == "REVOKED_JOB":
        return sign_at(s, simple_package(), name, job_id=REVOKED_JOB)
    if case == "REVOKED_PROFILE":
        return world["revoked"].sign_bytes(simple_package(), name)
    raise AssertionError(case)


def settle(g):
    """The gate is idle: nothing left to decide, staging empty."""
    g.wait_idle()
    assert g.staging_entries() == [], "staging not empty when idle: %s" % g.staging_entries()


def check_rejected_kept(g, rec, data):
    f = rec["function"]
    base = g.rejected / f / rec["decisionId"]
    zp, jp = base.with_suffix(".zip"), base.with_suffix(".json")
    assert zp.is_file(), "rejected package not kept at %s (have %s)" % (
        zp, sorted(os.listdir(g.rejected / f)) if (g.rejected / f).is_dir() else "no dir")
    assert zp.read_bytes() == data, "rejected/%s/%s.zip differs from the dropped bytes" % (
        f, rec["decisionId"])
    assert jp.is_file(), "no %s" % jp
    assert json.loads(jp.read_text()) == strip_chain(rec), "rejected .json is not the record"


def check_promoted_release(g, rec, data, function=None):
    f = function or rec["function"]
    rel = rec["release"]
    assert isinstance(rel, str) and RELEASE_RE.match(rel), "release %r is not TIME-HEX12" % rel
    assert rel.endswith("-" + digest(data)[:12]), (rel, digest(data)[:12])
    assert g.current(f) == "releases/" + rel, "current -> %r, want releases/%s" % (g.current(f), rel)
    rdir = g.release_dir(f, rel)
    got = json.loads((rdir / "release.json").read_text())
    assert got == strip_chain(rec), "release.json is not the decision record:\n%s\n%s" % (
        got, strip_chain(rec))
    assert tree(rdir / "task") == expected_tree(data), "task/ is not the package, byte-exact"


# --------------------------------------------------------------------------
# every reason of DESIGN §5, Enforce and Warn

@pytest.mark.parametrize("policy", ["Enforce", "Warn"])
@pytest.mark.parametrize("case", CASES)
def test_each_reason_is_rejected_or_promoted_with_warnings_as_the_policy_says(world, case, policy):
    g = world["gate"]
    f = fname(policy, case)
    name = "%s.zip" % f
    data = make_case(world, case, name)
    code = "REVOKED" if case.startswith("REVOKED") else case
    rec = g.decide(name, data)
    check_record_shape(rec)
    assert rec["function"] == f and rec["kind"] == "function"
    assert rec["peer"] == ROOT_PEER, rec["peer"]
    assert rec["package"]["name"] == name and rec["package"]["size"] == len(data), rec["package"]
    if case != "MALFORMED":
        assert rec["package"]["sha384"] == digest(data), "package.sha384 is not the package digest"
    assert rec["reasons"] == [code], "reasons %s, want [%s]: %s" % (
        rec["reasons"], code, rec["message"])
    warned = code in OVERRIDABLE and policy == "Warn"
    assert rec["outcome"] == ("promoted-with-warnings" if warned else "rejected"), (
        rec["outcome"], rec["message"])
    if code in OVERRIDABLE:
        assert (rec["codeSigningConfig"], rec["policy"]) == (world["csc"][policy], policy)
    if code in OVERRIDABLE - {"UNSIGNED"}:
        assert rec["signature"] and rec["signature"]["jobId"], rec["signature"]
    if code == "REVOKED" and case == "REVOKED_JOB":
        assert rec["signature"]["jobId"] == REVOKED_JOB
    if code == "EXPIRED":
        # the gate's own validity (135 months), not the payload's longer claim
        assert rec["signature"]["expiresAt"] < rec["time"], rec["signature"]
    if warned:
        check_promoted_release(g, rec, data)
        assert not (g.rejected / f).exists() or not os.listdir(g.rejected / f)
    else:
        assert rec["release"] is None
        assert g.current(f) is None, "a rejected package was made current"
        check_rejected_kept(g, rec, data)
    check_journal(g, [rec])
    settle(g)


@pytest.mark.parametrize("function", ["nobody-declared-this", "loose"])
def test_unbound_function_is_rejected_as_unknown_function(world, function):
    g = world["gate"]
    name = "%s@%s.zip" % (function, uuid.uuid4().hex[:6])
    data = world["signer"].sign_bytes(simple_package(), name)
    rec = g.decide(name, data)
    check_record_shape(rec)
    assert (rec["function"], rec["outcome"], rec["reasons"]) == (
        function, "rejected", ["UNKNOWN_FUNCTION"]), rec["message"]
    assert (rec["codeSigningConfig"], rec["policy"], rec["release"]) == (None, None, None)
    assert g.current(function) is None
    check_rejected_kept(g, rec, data)
    check_journal(g, [rec])
    settle(g)


@pytest.mark.parametrize("policy", ["Enforce", "Warn"])
def test_trusted_signed_package_is_promoted_byte_exact_with_modes(world, policy):
    g = world["gate"]
    s = world["signer"]
    f = fname(policy, "GOOD")
    name = "%s.zip" % f
    body = os.urandom(3000)
    data = s.sign_bytes(package(
        ("lambda_function.py", b"def handler(e, c):\n    return 1\n"),
        ("bin/run", b"#!/bin/sh\necho run\n", 0o100755),
        ("lib/owner-exec.so", body, 0o100700),          # any execute bit -> 0755
        ("lib/private.txt", b"private\n", 0o100600),    # -> 0644
        zipcraft.dir_entry("data/", mode=0o040700),      # -> 0755
        ("data/blob.bin", os.urandom(5000)),
        zipcraft.symlink_entry("lib/current.so", "owner-exec.so"),
        ("deep/a/b/c/d.txt", b"deep\n"),
    ), name)
    owner = (4321, 8765)
    rec = g.decide(name, data, owner=owner)
    check_record_shape(rec)
    assert rec["peer"] == {"uid": owner[0], "gid": owner[1], "pid": None}, (
        "peer must be the dropped file's owner: %s" % rec["peer"])
    assert (rec["outcome"], rec["reasons"]) == ("promoted", []), rec["message"]
    assert (rec["codeSigningConfig"], rec["policy"]) == (world["csc"][policy], policy)
    sig = rec["signature"]
    assert (sig["profileName"], sig["profileVersion"]) == (s.profile_name, s.profile_version)
    check_promoted_release(g, rec, data)
    t = tree(g.release_dir(f, rec["release"]) / "task")
    assert t["bin/run"][2] == 0o755 and t["lib/owner-exec.so"][2] == 0o755
    assert t["lib/private.txt"][2] == 0o644 and t["data"] == ("dir", 0o755)
    assert t["lib/current.so"] == ("link", "owner-exec.so")
    lines = [l.split() for l in g.first_seen_path.read_text().splitlines() if l.strip()]
    assert [l[0] for l in lines].count(digest(data)) == 1, "first-seen.log lacks the digest once"
    assert not (g.rejected / f).exists() or not os.listdir(g.rejected / f)
    check_journal(g, [rec])
    settle(g)


def test_identical_package_is_recorded_with_current_release_and_not_extracted_again(world):
    g = world["gate"]
    f = fname("Enforce", "IDENTICAL")
    data = world["signer"].sign_bytes(simple_package(), f + ".zip")
    first = g.decide(f + "@one.zip", data)
    assert first["outcome"] == "promoted", first["message"]
    rel = first["release"]
    task = g.release_dir(f, rel) / "task" / "lambda_function.py"
    ino = os.stat(task).st_ino
    second = g.decide(f + "@two.zip", data)
    check_record_shape(second)
    assert second["decisionId"] != first["decisionId"]
    assert (second["outcome"], second["release"]) == ("promoted", rel), (
        second["outcome"], second["release"], second["message"])
    assert g.releases(f) == [rel], "the identical package made another release: %s" % g.releases(f)
    assert os.stat(task).st_ino == ino, "the current release was extracted again"
    assert g.current(f) == "releases/" + rel
    lines = g.first_seen_path.read_text().split()
    assert lines.count(digest(data)) == 1, "first-seen.log has the digest more than once"
    check_journal(g, [first, second])
    settle(g)


# --------------------------------------------------------------------------
# drop styles

def test_renamed_drops_are_decided_and_writer_temp_names_are_left_alone(world):
    g = world["gate"]
    s = world["signer"]
    f = fname("Enforce", "GOOD")
    # Writers' names the gate ignores: present, never decided, never removed.
    ignored = [".%s.zip.tmp" % f, "%s@x.zip.part" % f, ".hidden.zip", "half.zip.tmp"]
    for n in ignored:
        (g.inbox / n).write_bytes(s.sign_bytes(simple_package(), f + ".zip"))
    a = s.sign_bytes(simple_package(), f + ".zip")
    b = s.sign_bytes(simple_package(), f + ".zip")
    ra = g.decide("%s@build-7.zip" % f, a, how="tmp")
    rb = g.decide("%s@build-8.zip" % f, b, how="part")
    for r, d in ((ra, a), (rb, b)):
        assert (r["function"], r["outcome"]) == (f, "promoted"), r["message"]
        assert r["package"]["sha384"] == digest(d)
    assert g.current_release(f) == rb["release"]
    settle(g)
    for n in ignored:
        assert (g.inbox / n).exists(), "ignored writer's file %s was removed" % n
        assert g.records_for(n) == [], "ignored writer's file %s was decided" % n
        (g.inbox / n).unlink()


def test_slow_direct_writer_is_decided_once_on_the_complete_file(world):
    g = world["gate"]
    s = world["signer"]
    f = fname("Warn", "GOOD")
    name = "%s@slow.zip" % f
    data = s.sign_bytes(package(("big.bin", os.urandom(300_000)), ("handler.py", b"x = 1\n")),
                        name)
    pieces = [data[i:i + 60_000] for i in range(0, len(data), 60_000)]
    with open(g.inbox / name, "wb") as out:
        g.track(name)
        for p in pieces:
            out.write(p)
            out.flush()
            os.fsync(out.fileno())
            time.sleep(0.3)
        # still open: no decision may have been taken on a partial file
        assert g.records_for(name) == [], "decided while the writer still had the file open"
    rec = g.await_decision(name)
    # A later package for the same function: decided after the slow one (arrival order).
    after = g.decide("%s@after-slow.zip" % f, s.sign_bytes(simple_package(), f + ".zip"))
    recs = g.records_for(name)
    assert len(recs) == 1, "%d records for one slow drop: %s" % (
        len(recs), [(r["outcome"], r["reasons"]) for r in recs])
    assert (rec["outcome"], rec["reasons"]) == ("promoted", []), rec["message"]
    assert rec["package"]["size"] == len(data) and rec["package"]["sha384"] == digest(data)
    assert after["seq"] > rec["seq"]
    assert g.current_release(f) == after["release"]
    assert tree(g.release_dir(f, rec["release"]) / "task") == expected_tree(data)
    settle(g)


# --------------------------------------------------------------------------
# bad names and non-regular entries

@pytest.mark.parametrize("name,content", [
    ("readme.txt", b"just some notes\n"),
    ("bad name.zip", None),
    ("x" * 65 + ".zip", None),
    ("e-good.zip.bak", None),
    ("e-good.ZIP", None),
], ids=["readme.txt", "space-in-name", "function-name-too-long", "bak-suffix", "uppercase-ZIP"])
def test_malformed_name_is_recorded_with_null_function_and_removed(world, name, content):
    g = world["gate"]
    data = content if content is not None else world["signer"].sign_bytes(simple_package(),
                                                                           "f.zip")
    rec = g.decide(name, data)
    check_record_shape(rec)
    assert (rec["function"], rec["outcome"], rec["reasons"]) == (None, "rejected", ["MALFORMED"]), (
        rec["function"], rec["outcome"], rec["reasons"], rec["message"])
    assert rec["package"]["name"] == name and rec["release"] is None
    assert rec["peer"] == ROOT_PEER
    check_journal(g, [rec])
    settle(g)


@pytest.mark.parametrize("kind", ["fifo", "symlink", "hardlink", "directory", "socket"])
def test_non_regular_entry_is_recorded_malformed_and_removed_with_target_untouched(
        world, kind, tmp_path):
    g = world["gate"]
    f = fname("Enforce", "NONREG")
    name = "%s@%s.zip" % (f, kind)
    # A package that would be promoted if the gate followed the entry to it.
    secret = world["signer"].sign_bytes(simple_package("secret"), f + ".zip")
    secret_path = g.root.parent / ("secret-%s.zip" % kind)   # same filesystem as the inbox
    secret_path.write_bytes(secret)
    old = time.time() - 3 * 86400
    os.utime(secret_path, (old, old))                       # atime moves on any read
    before = os.stat(secret_path)
    tmp = g.inbox / (".%s.tmp" % name)
    sockdir = None
    if kind == "fifo":
        os.mkfifo(tmp, 0o644)
    elif kind == "symlink":
        os.symlink(secret_path, tmp)
    elif kind == "hardlink":
        os.link(secret_path, tmp)
    elif kind == "directory":
        tmp.mkdir()
        (tmp / "inside.txt").write_bytes(b"inside\n")
    elif kind == "socket":
        sockdir = tempfile.mkdtemp(prefix="sgs-", dir="/tmp")
        sp = os.path.join(sockdir, "s")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(sp)
        s.close()
        os.rename(sp, tmp)
    g.track(name, tmp)
    os.rename(tmp, g.inbox / name)
    try:
        rec = g.await_decision(name)
    finally:
        if sockdir:
            os.rmdir(sockdir)
    check_record_shape(rec)
    assert (rec["outcome"], rec["reasons"]) == ("rejected", ["MALFORMED"]), (
        rec["outcome"], rec["reasons"], rec["message"])
    assert rec["package"]["name"] == name and rec["release"] is None
    assert not g.in_inbox(name)
    after = os.stat(secret_path)          # before reading it ourselves
    assert secret_path.read_bytes() == secret, "the link's target was changed"
    if kind == "symlink":
        assert after.st_atime == before.st_atime, "the symlink's target was read"
    assert after.st_mtime == before.st_mtime
    assert g.current(f) is None, "the entry's target was promoted"
    check_journal(g, [rec])
    settle(g)


# --------------------------------------------------------------------------
# layers

def test_layers_are_promoted_to_numbered_versions_and_unsigned_layers_rejected(world):
    g = world["gate"]
    s = world["signer"]
    v1 = s.sign_bytes(package(("python/lib/mod.py", b"A = 1\n"),
                              ("bin/tool", b"#!/bin/sh\n", 0o100755)), "mylayer.layer.zip")
    v2 = s.sign_bytes(package(("python/lib/mod.py", b"A = 2\n")), "mylayer.layer.zip")
    r1 = g.decide("mylayer.layer.zip", v1)
    r2 = g.decide("mylayer@v2.layer.zip", v2)
    for r in (r1, r2):
        check_record_shape(r)
        assert (r["kind"], r["function"], r["outcome"]) == ("layer", "mylayer", "promoted"), (
            r["kind"], r["function"], r["outcome"], r["reasons"], r["message"])
    ldir = g.layers_dir / "mylayer"
    assert tree(ldir / "1" / "opt") == expected_tree(v1)
    assert tree(ldir / "2" / "opt") == expected_tree(v2)
    bad = simple_package()
    r3 = g.decide("mylayer@v3.layer.zip", bad)
    assert (r3["kind"], r3["outcome"], r3["reasons"]) == ("layer", "rejected", ["UNSIGNED"]), (
        r3["outcome"], r3["reasons"], r3["message"])
    assert sorted(n for n in os.listdir(ldir) if not n.startswith(".")) == ["1", "2"]
    check_journal(g, [r1, r2, r3])
    settle(g)


# --------------------------------------------------------------------------
# gates with their own settings


def test_unbound_function_is_promoted_without_checks_when_unbound_functions_allow(gate):
    g = gate(settings={"unboundFunctions": "allow"}, policy=Policy())
    data = simple_package()
    rec = g.decide("anyone.zip", data)
    check_record_shape(rec)
    assert (rec["outcome"], rec["reasons"], rec["signature"], rec["codeSigningConfig"],
            rec["policy"]) == ("promoted", [], None, None, None), rec["message"]
    check_promoted_release(g, rec, data, "anyone")
    check_journal(g, [rec])


def test_gate_with_journal_false_records_to_the_audit_file_only(gate, signer, journald):
    g = gate(settings={"journal": False}, policy=enforce_policy(signer, "quiet"))
    data = signer.sign_bytes(simple_package(), "quiet.zip")
    rec = g.decide("quiet.zip", data)
    assert rec["outcome"] == "promoted", rec["message"]
    assert journald.barrier(), "journald barrier not indexed"
    got = journald.query("SIGNGATE_DECISION_ID=" + rec["decisionId"])
    assert got == [], "journal: false, yet %d journald entries" % len(got)


def test_post_promotion_hook_runs_with_the_release_environment(gate, signer, tmp_path):
    out = tmp_path / "hook-out"
    out.mkdir()
    script = ('env | grep "^SIGNGATE_" > "$0/.$SIGNGATE_DECISION_ID.tmp" && '
              'mv "$0/.$SIGNGATE_DECISION_ID.tmp" "$0/$SIGNGATE_DECISION_ID.env"')
    g = gate(settings={"hook": {"argv": ["/bin/sh", "-c", script, str(out)],
                                "timeoutSeconds": 20}},
             policy=enforce_policy(signer, "hooked"))
    data = signer.sign_bytes(simple_package(), "hooked.zip")
    rec = g.decide("hooked.zip", data)
    assert rec["outcome"] == "promoted", rec["message"]
    envfile = out / (rec["decisionId"] + ".env")
    assert poll(envfile.exists, 20), "the hook did not run (no %s; have %s)\n%s" % (
        envfile, os.listdir(out), g.stderr_tail())
    env = dict(l.split("=", 1) for l in envfile.read_text().splitlines() if "=" in l)
    rpath = env.get("SIGNGATE_RELEASE_PATH", "")
    assert {k: env.get(k) for k in ("SIGNGATE_FUNCTION", "SIGNGATE_RELEASE",
                                    "SIGNGATE_DECISION_ID", "SIGNGATE_KIND")} == {
        "SIGNGATE_FUNCTION": "hooked", "SIGNGATE_RELEASE": rec["release"],
        "SIGNGATE_DECISION_ID": rec["decisionId"], "SIGNGATE_KIND": "function"}, env
    assert os.path.isabs(rpath) and os.path.realpath(rpath) == os.path.realpath(
        g.release_dir("hooked", rec["release"])), "SIGNGATE_RELEASE_PATH=%r" % rpath
    assert (g.release_dir("hooked", rec["release"]) / "task" / "lambda_function.py").is_file()
    # rejected packages run no hook
    bad = g.decide("hooked@unsigned.zip", simple_package())
    assert bad["outcome"] == "rejected"
    g.wait_idle()
    assert not (out / (bad["decisionId"] + ".env")).exists(), "the hook ran for a rejection"


def test_failing_hook_does_not_undo_the_promotion(gate, signer):
    g = gate(settings={"hook": {"argv": ["/bin/sh", "-c", "echo hook failing >&2; exit 3"],
                                "timeoutSeconds": 5}},
             policy=enforce_policy(signer, "hookfail"))
    a = signer.sign_bytes(simple_package(), "hookfail.zip")
    b = signer.sign_bytes(simple_package(), "hookfail.zip")
    ra = g.decide("hookfail@a.zip", a)
    rb = g.decide("hookfail@b.zip", b)
    for r, d in ((ra, a), (rb, b)):
        assert r["outcome"] == "promoted", r["message"]
        assert (g.release_dir("hookfail", r["release"]) / "release.json").is_file()
    assert g.current_release("hookfail") == rb["release"], "the failing hook undid a promotion"
    check_promoted_release(g, rb, b, "hookfail")
    assert g.running(), "the gate died after a failing hook\n" + g.stderr_tail()


def test_retention_keeps_the_last_n_releases_and_current(gate, signer):
    n = 2
    g = gate(settings={"retainReleases": n}, policy=enforce_policy(signer, "kept"))
    pkgs = [signer.sign_bytes(simple_package(), "kept.zip") for _ in range(6)]
    names = ["kept@%d.zip" % i for i in range(6)]
    for nm, d in zip(names, pkgs):
        g.drop(nm, d)
    recs = g.wait_records(names)
    g.wait_idle()
    ordered = [recs[nm] for nm in names]
    assert [r["outcome"] for r in ordered] == ["promoted"] * 6
    assert [r["seq"] for r in ordered] == sorted(r["seq"] for r in ordered), (
        "packages for one function not decided in drop order")
    assert g.current_release("kept") == ordered[-1]["release"]
    assert (g.release_dir("kept", ordered[-1]["release"]) / "task").is_dir(), (
        "current points at a pruned release %s (kept %s)" % (ordered[-1]["release"],
                                                           g.releases("kept", True)))
    want = sorted(r["release"] for r in ordered[-n:])
    poll(lambda: g.releases("kept", hidden=True) == want, 5)  # pruning may trail the record
    assert g.releases("kept", hidden=True) == want, (
        "retainReleases=%d kept %s, want the last %d: %s" % (n, g.releases("kept", True), n, want))


def _proc_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"   # exited, not yet reaped
    except FileNotFoundError:
        return True


def test_hook_outliving_its_timeout_is_stopped_and_the_gate_keeps_deciding(gate, signer, tmp_path):
    out = tmp_path / "hook-pids"
    out.mkdir()
    script = 'echo $$ > "$0/.$SIGNGATE_DECISION_ID" && mv "$0/.$SIGNGATE_DECISION_ID" ' \
             '"$0/$SIGNGATE_DECISION_ID.pid"; exec sleep 120'
    g = gate(settings={"hook": {"argv": ["/bin/sh", "-c", script, str(out)],
                                "timeoutSeconds": 1}},
             policy=enforce_policy(signer, "slowhook"))
    pids = []
    try:
        recs = []
        for n in ("a", "b"):
            rec = g.decide("slowhook@%s.zip" % n, signer.sign_bytes(simple_package(), "slowhook.zip"))
            recs.append(rec)
            pidfile = out / (rec["decisionId"] + ".pid")
            assert poll(pidfile.exists, 20), "hook never ran for %s" % rec["decisionId"]
            pid = int(pidfile.read_text())
            pids.append(pid)
            assert poll(lambda: _proc_gone(pid), 20), (
                "the hook (pid %d) still runs long after timeoutSeconds=1" % pid)
        assert [r["outcome"] for r in recs] == ["promoted", "promoted"]
        assert g.current_release("slowhook") == recs[-1]["release"], "a timed-out hook undid a promotion"
        assert g.stop() == 0
    finally:
        for pid in pids:                       # only the hooks this test started
            if not _proc_gone(pid):
                os.kill(pid, 9)


def test_hook_runs_after_a_layer_promotion_with_kind_layer(gate, signer, tmp_path):
    out = tmp_path / "hook-out"
    out.mkdir()
    script = ('env | grep "^SIGNGATE_" > "$0/.$SIGNGATE_DECISION_ID.tmp" && '
              'mv "$0/.$SIGNGATE_DECISION_ID.tmp" "$0/$SIGNGATE_DECISION_ID.env"')
    pol = Policy()
    csc = pol.csc("Enforce", signer)
    pol.function("uses-hl", csc, layers=["hl"])
    g = gate(settings={"hook": {"argv": ["/bin/sh", "-c", script, str(out)],
                                "timeoutSeconds": 20}}, policy=pol)
    data = signer.sign_bytes(package(("python/x.py", b"X = 1\n")), "hl.layer.zip")
    rec = g.decide("hl.layer.zip", data)
    assert (rec["kind"], rec["outcome"]) == ("layer", "promoted"), rec["message"]
    envfile = out / (rec["decisionId"] + ".env")
    assert poll(envfile.exists, 20), "the hook did not run for a layer\n" + g.stderr_tail()
    env = dict(l.split("=", 1) for l in envfile.read_text().splitlines() if "=" in l)
    assert env.get("SIGNGATE_KIND") == "layer" and env.get("SIGNGATE_DECISION_ID") == rec["decisionId"], env
    assert os.path.realpath(env.get("SIGNGATE_RELEASE_PATH", "")) == os.path.realpath(
        g.layers_dir / "hl" / "1"), env


def test_sigterm_waits_for_a_running_hook_before_exiting(gate, signer, tmp_path):
    out = tmp_path / "hook-done"
    out.mkdir()
    # The hook announces it started, waits for the test's go-ahead file, then finishes.
    script = ('touch "$0/started"; while [ ! -e "$0/go" ]; do sleep 0.05; done; '
              'touch "$0/finished"')
    g = gate(settings={"hook": {"argv": ["/bin/sh", "-c", script, str(out)], "timeoutSeconds": 60}},
             policy=enforce_policy(signer, "drainhook"))
    rec = g.decide("drainhook.zip", signer.sign_bytes(simple_package(), "drainhook.zip"))
    assert rec["outcome"] == "promoted", rec["message"]
    assert poll((out / "started").exists, 20), "the hook never started\n" + g.stderr_tail()
    g._stopped_on_purpose = True
    g.proc.send_signal(signal.SIGTERM)
    # The gate must still be waiting for its hook: let the hook finish, then the gate exits.
    assert not poll(lambda: g.proc.poll() is not None, 1), (
        "signgated exited while its hook was still running")
    (out / "go").touch()
    assert g.proc.wait(timeout=30) == 0
    assert (out / "finished").exists(), "the hook was cut short by the stop"
