"""The package-safety corpus through the running gate's real extraction path (DESIGN §5-§7).

test_package_safety.py drives its hostile and legitimate archives through the offline
``signgate verify``; this module drops the same archives (its dicts and builders, imported)
into the inbox of a running ``signgated``, where the one strict parse streams every entry
into a stage directory under runtime/functions/F/releases/ before the decision.

* Every hostile case, signed by a trusted publisher wherever signing keeps it hostile (a
  valid signature must never make it acceptable), goes to its own function bound to an
  Enforce code signing config; a subset goes to Warn-bound functions too, signed and
  unsigned.  Each is rejected with its reason, its inbox entry removed, its bytes and record
  kept under rejected/F/, and nothing promoted or left behind for F.
* Afterwards the whole gate root is compared with a snapshot taken before the drops: the
  only new files are the audit file, first-seen.log, rejected/F/ID.zip + .json and the
  promoted legitimate releases; staging/ is empty; nothing appeared outside the root at the
  paths the corpus aims at; ``signgate audit verify`` passes.
* The legitimate variants (Info-ZIP incl. -y symlinks and empty directories, Python
  zipfile, Zip64, data descriptors, UTF-8 names, in-tree symlinks, empty directories, names
  and depths at the limits), signed, are promoted and extracted byte-exact, compared with
  what Python's zipfile reads from the archive, and not writable by group or other.
* Cases that need small limits run on a second gate whose settings lower every limit.
* A 200,000-entry archive is LIMIT_EXCEEDED at the default 100,000 entries and promoted,
  every entry present, once ``limits.entries`` is raised.
* The modes of rejected/, rejected/F, the rejected files, the audit file and its directory.

All decisions of a gate are awaited in one batch (one daemon per gate for the module).

Run: SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_gate_corpus.py
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

import test_package_safety as ps
import zipcraft as zc
from gate import (Policy, check_record_shape, gate, gate_mod, journald, signgated,  # noqa: F401
                  strip_chain)

E = zc.file_entry

# Bounds on waits only (a dead daemon fails at once); the sanitized build is ~3x slower.
BATCH_TIMEOUT = 600.0
# A batch stops waiting once no new decision arrived for this long: the undecided cases
# then fail one by one instead of the whole module.
STALL_TIMEOUT = 60.0
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# The second gate's settings: every limit small (test_package_safety's SMALL_LIMITS values
# or below), so each over-the-limit case of that dict stays over, and the cases marked in
# SMALL_AT_FITS stay at or under every limit.
SMALL_SETTINGS = {"limits": {"entries": 5, "nameBytes": 16, "depth": 3, "inflatedBytes": 2500,
                             "packageBytes": 65536}}
SMALL_AT_FITS = {"entries", "name-bytes", "depth", "inflated-bytes-stored"}

# Traversal targets the corpus names outside any release (absolute names, absolute and
# escaping symlink targets, a symlink to /tmp used as a directory): none may appear or change.
OUTSIDE_CANARIES = ["/etc/x", "/x", "/evil.py", "/tmp/evil", "/tmp/x", "/etc/passwd"]


# --------------------------------------------------------------------------
# the cases

@dataclass(frozen=True)
class Case:
    function: str                   # the function it is dropped for (one per case)
    make: Callable[[Path], bytes]   # make(workdir) -> archive bytes
    codes: tuple = ()               # hostile: the reasons it may be rejected for (one needed)
    policy: str = "Enforce"
    sign: Optional[bool] = None     # None: signed when signing keeps it hostile
    signs_itself: bool = False      # make() returns a signed package
    gate_kind: str = "default"      # the gate with "default" limits or the "small" one

    @property
    def hostile(self) -> bool:
        return bool(self.codes)


def signable(data: bytes) -> bool:
    """sign_bytes replaces the EOCD comment: only archives whose last EOCD reaches the end
    of the file with an empty comment can carry a signature without losing what makes them
    hostile (an archive with a comment would lose it)."""
    try:
        e = zc.find_eocd(data)
    except ValueError:
        return False
    return e + zc.EOCD_FIXED == len(data)


# Hostile only because of the exact file length: a signature block appended to it takes the
# hidden EOCD's end away from the end of the file (the signed form is its own case below).
SIGNING_DISARMS = {"eocd-candidate-inside-last-entry"}

WARN_UNSIGNED = [  # test_package_safety's "even under Warn" cases, unsigned as there
    ("malformed", k) for k in ["truncated-mid-data", "local-crc-differs", "gap-between-entries",
                               "second-eocd-as-comment", "deflate-trailing-garbage"]
] + [("name", k) for k in ["dotdot-prefix", "absolute", "nul-byte"]] + [
    ("symlink", "escaping-target"), ("crypt", "encrypted-entry"), ("integrity", "plain-comment"),
    # an unsigned package whose directory component no filesystem can hold, for a Warn-bound
    # function, once crashed the gate (a NULL package digest promoted "with warnings")
    ("limit", "name-component-over-255-bytes"), ("limit", "directory-component-over-255-bytes")]

WARN_SIGNED = [  # a few of every group, signed by the trusted publisher, under Warn
    ("malformed", "bad-crc-stored"), ("malformed", "prepended-stub-adjusted-offsets"),
    ("malformed", "zip64-record-cd-offset-wrong"), ("name", "dotdot-escaping-twice"),
    ("name", "backslash-dotdot"), ("dup", "case-insensitive-files"), ("dup", "file-as-parent"),
    ("symlink", "used-as-directory"), ("symlink", "escaping-link-used-as-directory"),
    ("special", "setuid-file"), ("special", "fifo"),
    ("overlap", "many-central-entries-one-local-header"), ("crypt", "winzip-aes-entry"),
    ("method", "12"), ("limit", "name-over-1024-bytes"), ("limit", "depth-over-64"),
]


def _const(fn):
    return lambda workdir: fn()


def _hidden_eocd_signed(signer):
    def make(workdir):
        data, _, _ = ps.signed_with_hidden_eocd_reaching_file_end(
            lambda d: (signer.sign_bytes(d), None))
        return data
    return make


def _over_package_bytes():
    # base_archive's entries plus stored random bytes past the small gate's packageBytes
    pad = os.urandom(SMALL_SETTINGS["limits"]["packageBytes"] + 1)
    return zc.build(ps.base_entries() + [E("pad.bin", pad)]).data


def hostile_groups() -> dict:
    """group -> {key: (make(workdir), codes)} for the default-limits gate."""
    g = {
        "malformed": {k: (_const(f), ("MALFORMED",)) for k, f in ps.MALFORMED.items()},
        "name": {k: (_const(lambda n=n: ps.unsafe_name_archive(n)), ("UNSAFE_CONTENT",))
                 for k, n in ps.UNSAFE_NAMES.items()},
        "dup": {k: (_const(lambda es=es: zc.build(es).data), ("UNSAFE_CONTENT",))
                for k, es in ps.DUPLICATES.items()},
        "symlink": {k: (_const(lambda es=es: zc.build(es).data), ("UNSAFE_CONTENT",))
                    for k, es in ps.SYMLINKS.items()},
        "special": {k: (_const(lambda v=v: ps.special_mode_archive(*v)), ("UNSAFE_CONTENT",))
                    for k, v in ps.SPECIAL_MODES.items()},
        "overlap": {k: (_const(f), ("UNSAFE_CONTENT",)) for k, f in ps.OVERLAPS.items()},
        "crypt": {k: (_const(f), ("UNSAFE_CONTENT",)) for k, f in ps.ENCRYPTED.items()},
        "method": {str(m): (_const(lambda m=m: ps.unsupported_method_archive(m)),
                            ("UNSAFE_CONTENT",)) for m in ps.UNSUPPORTED_METHODS},
        "limit": {k: (_const(f), ("LIMIT_EXCEEDED",)) for k, f in ps.DEFAULT_LIMITS.items()},
        "integrity": {"plain-comment": (
            _const(lambda: ps.base_archive(comment=b"built by CI #42")), ("INTEGRITY",))},
    }
    # the cases test_package_safety accepts either of two reasons for
    g["malformed"]["names-sharing-a-local-header"] = (
        _const(ps.names_sharing_a_local_header), ("UNSAFE_CONTENT", "MALFORMED"))
    g["crypt"]["strong-encryption"] = (_const(ps.strong_encryption_archive),
                                       ("UNSAFE_CONTENT", "MALFORMED"))
    return g


def _fname(prefix: str, group: str, key: str) -> str:
    name = "%s-%s-%s" % (prefix, group, key)
    assert NAME_RE.match(name), "not a function name: %r" % name
    return name


def build_cases(signer) -> list:
    cases = []
    groups = hostile_groups()
    for group, items in groups.items():
        for key, (make, codes) in items.items():
            sign = False if key in SIGNING_DISARMS else None
            cases.append(Case(_fname("e", group, key), make, codes, "Enforce", sign))
    for group, key in WARN_UNSIGNED:
        make, codes = groups[group][key]
        cases.append(Case(_fname("wu", group, key), make, codes, "Warn", False))
    for group, key in WARN_SIGNED:
        make, codes = groups[group][key]
        cases.append(Case(_fname("w", group, key), make, codes, "Warn", True))
    for key, (make, code) in ps.SIGNED_HOSTILE.items():
        for policy in ("Enforce", "Warn"):
            cases.append(Case(_fname(policy[0].lower(), "signed", key), _const(make), (code,),
                              policy, True))
    for policy in ("Enforce", "Warn"):
        cases.append(Case(_fname(policy[0].lower(), "signed", "hidden-eocd-at-file-end"),
                          _hidden_eocd_signed(signer), ("MALFORMED",), policy, False,
                          signs_itself=True))

    # the small-limits gate
    for key, (make, _limits) in ps.SMALL_LIMITS.items():
        cases.append(Case(_fname("e", "small", key), lambda w, make=make: make()[0],
                          ("LIMIT_EXCEEDED",), gate_kind="small"))
    cases.append(Case(_fname("w", "small", "entries"),
                      lambda w: ps.SMALL_LIMITS["entries"][0]()[0], ("LIMIT_EXCEEDED",), "Warn",
                      gate_kind="small"))
    cases.append(Case(_fname("e", "small", "understated-bomb"), _const(ps.understated_bomb),
                      ("LIMIT_EXCEEDED", "MALFORMED"), gate_kind="small"))
    cases.append(Case(_fname("e", "small", "overlap-bomb"), _const(ps.overlap_bomb),
                      ("UNSAFE_CONTENT", "LIMIT_EXCEEDED"), gate_kind="small"))
    cases.append(Case(_fname("e", "small", "package-bytes"), _const(_over_package_bytes),
                      ("LIMIT_EXCEEDED",), gate_kind="small"))
    for key in sorted(SMALL_AT_FITS):
        cases.append(Case(_fname("ok", "small-at", key),
                          lambda w, key=key: ps.SMALL_LIMITS[key][0]()[1], gate_kind="small"))

    # legitimate variants
    for variant, cmd in ps.INFOZIP_VARIANTS.items():
        def infozip(w, variant=variant, cmd=cmd):
            files = ps.make_tree(w / "tree", symlinks=(variant == "symlinks"))
            return ps.izip(cmd.format(files=" ".join(files)), w / "tree")
        cases.append(Case(_fname("ok", "infozip", variant), infozip))
    cases.append(Case(_fname("ok", "infozip", "raw-utf8-names"), ps.infozip_raw_utf8_names))
    cases.append(Case(_fname("ok", "infozip", "nested-zip-stored-last"),
                      ps.infozip_nested_zip_stored_last))
    for kind in ps.PYZIP_KINDS:
        cases.append(Case(_fname("ok", "pyzip", kind), lambda w, kind=kind: ps.pyzip(kind)))
    cases.append(Case(_fname("ok", "pyzip", "nested-zip-stored-last"),
                      _const(ps.pyzip_nested_zip_stored_last)))
    for key, entries in ps.CRAFTED_LEGIT.items():
        cases.append(Case(_fname("ok", "crafted", key),
                          lambda w, entries=entries: zc.build(entries()).data))
    cases.append(Case(_fname("ok", "crafted", "zip64"), _const(ps.crafted_zip64_archive)))
    cases.append(Case(_fname("ok", "crafted", "descriptor-without-signature"),
                      _const(ps.descriptor_without_signature_archive)))
    for key, make in ps.AT_DEFAULT_LIMITS.items():
        cases.append(Case(_fname("ok", "limit", key), _const(make)))
    names = [c.function for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def _case_names(hostile: bool) -> list:
    class _NoSigner:   # collection needs names only
        def sign_bytes(self, *a, **k):
            raise AssertionError("not at collection time")
    return [c.function for c in build_cases(_NoSigner()) if c.hostile == hostile]


HOSTILE_NAMES = _case_names(True)
LEGIT_NAMES = _case_names(False)


# --------------------------------------------------------------------------
# snapshots

def snapshot(root: Path) -> dict:
    """{relative path: (kind, mode, sha256 | link target | None)} without following links."""
    out = {}
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            rel = os.path.relpath(full, base)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", mode, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode, None)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    out[rel] = ("file", mode, hashlib.sha256(f.read()).hexdigest())
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode), None)
    return out


def outside_state(paths) -> dict:
    out = {}
    for p in paths:
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            out[p] = None
            continue
        digest = None
        if stat.S_ISREG(st.st_mode) and st.st_size <= 1 << 20:
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        out[p] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, digest)
    return out


def listing(path: Path) -> list:
    return sorted(os.listdir(path))


# --------------------------------------------------------------------------
# one batch per gate

@dataclass
class Batch:
    gate: object
    cases: dict          # function -> Case
    data: dict           # function -> dropped bytes
    signed: dict         # function -> bool
    recs: dict           # function -> decision record
    before: dict
    after: dict
    seconds: float


def inbox_name(c: Case) -> str:
    return "%s.zip" % c.function


def await_batch(g, names) -> dict:
    """{inbox name: first record} once every name is decided and removed from the inbox,
    or once decisions stop coming for STALL_TIMEOUT (the rest are left out)."""
    want = set(names)
    got = {}
    last, last_change = -1, time.monotonic()
    deadline = time.monotonic() + BATCH_TIMEOUT
    while True:
        g._alive()
        for r in g.decisions():
            n = (r.get("package") or {}).get("name")
            if n in want and n not in got:
                got[n] = r
        done = len(got) == len(want) and not g.pending()
        if done or time.monotonic() > deadline:
            return got
        if len(got) != last:
            last, last_change = len(got), time.monotonic()
        elif time.monotonic() - last_change > STALL_TIMEOUT:
            return got
        time.sleep(0.1)


def run_batch(g, cases, data, signed) -> Batch:
    g.wait_idle()
    before = snapshot(g.root)
    t0 = time.monotonic()
    for c in cases:
        g.drop(inbox_name(c), data[c.function])
    got = await_batch(g, [inbox_name(c) for c in cases])
    if len(got) == len(cases):
        g.wait_idle(timeout=BATCH_TIMEOUT)
    seconds = time.monotonic() - t0
    after = snapshot(g.root)
    return Batch(g, {c.function: c for c in cases}, data, signed,
                 {c.function: got[inbox_name(c)] for c in cases if inbox_name(c) in got},
                 before, after, seconds)


def record_of(corpus, function) -> dict:
    rec = corpus["recs"].get(function)
    if rec is None:
        g = batch_of(corpus, function).gate
        pytest.fail("%s was never decided: still in the inbox %s; gate stderr:\n%s" % (
            function, g.in_inbox(inbox_name(corpus["cases"][function])),
            "\n".join(l for l in g.stderr_text().splitlines() if function in l)[-1500:]))
    return rec


@pytest.fixture(scope="module")
def corpus(gate_mod, signer, tmp_path_factory):
    cases = build_cases(signer)
    work = tmp_path_factory.mktemp("corpus-work")
    data, signed = {}, {}
    t0 = time.monotonic()
    for c in cases:
        w = work / c.function
        w.mkdir()
        raw = c.make(w)
        do_sign = (not c.hostile) or (c.sign if c.sign is not None else signable(raw))
        data[c.function] = signer.sign_bytes(raw, inbox_name(c)) if do_sign else raw
        signed[c.function] = do_sign or c.signs_itself
    build_seconds = time.monotonic() - t0

    def policy_for(gate_kind):
        pol = Policy()
        csc = {"Enforce": pol.csc("Enforce", signer), "Warn": pol.csc("Warn", signer)}
        for c in cases:
            if c.gate_kind == gate_kind:
                pol.function(c.function, csc[c.policy])
        return pol, csc

    pol_d, csc_d = policy_for("default")
    pol_s, csc_s = policy_for("small")
    gd = gate_mod(policy=pol_d)
    gs = gate_mod(settings=SMALL_SETTINGS, policy=pol_s)
    # Outside the gate roots: the canaries, the roots' parents and the directory above them.
    outside_paths = OUTSIDE_CANARIES
    parents = {gd.root.parent, gs.root.parent, gd.root.parent.parent}
    out_before = outside_state(outside_paths)
    lists_before = {p: listing(p) for p in parents}
    batches = {}
    for kind, g in (("default", gd), ("small", gs)):
        batches[kind] = run_batch(g, [c for c in cases if c.gate_kind == kind], data, signed)
    out_after = outside_state(outside_paths)
    lists_after = {p: listing(p) for p in parents}
    all_recs = {}
    for b in batches.values():
        all_recs.update(b.recs)
    print("\ncorpus: %d hostile (%d of them signed), %d legitimate cases; built+signed in %.1fs; "
          "default gate decided %d in %.1fs, small gate %d in %.1fs"
          % (sum(c.hostile for c in cases), sum(c.hostile and signed[c.function] for c in cases),
             sum(not c.hostile for c in cases), build_seconds,
             len(batches["default"].recs), batches["default"].seconds,
             len(batches["small"].recs), batches["small"].seconds))
    return {"cases": {c.function: c for c in cases}, "data": data, "signed": signed,
            "batches": batches, "recs": all_recs, "csc": {"default": csc_d, "small": csc_s},
            "outside": (out_before, out_after), "lists": (lists_before, lists_after)}


def batch_of(corpus, function) -> Batch:
    return corpus["batches"][corpus["cases"][function].gate_kind]


# --------------------------------------------------------------------------
# expected trees from Python's zipfile

def zip_tree(data: bytes) -> dict:
    """What the archive holds, read by Python's zipfile: {path: ('dir',) | ('link', target)
    | ('file', bytes, executable)}, implicit parent directories included."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data), metadata_encoding="utf-8") as z:
        for zi in z.infolist():
            name = zi.filename
            umode = zi.external_attr >> 16 if zi.create_system == zc.HOST_UNIX else 0
            parts = name.rstrip("/").split("/")
            for i in range(1, len(parts)):
                out.setdefault("/".join(parts[:i]), ("dir",))
            if zi.is_dir() or stat.S_ISDIR(umode):
                out[name.rstrip("/")] = ("dir",)
            elif stat.S_ISLNK(umode):
                out[name] = ("link", z.read(zi).decode())
            else:
                out[name] = ("file", z.read(zi), bool(umode & 0o111))
    return out


def extracted_tree(task: Path) -> tuple:
    """(tree in zip_tree's shape, [mode problems]) of an extracted release."""
    out, problems = {}, []
    base = str(task)
    st = os.lstat(base)
    if stat.S_IMODE(st.st_mode) != 0o755:
        problems.append("task/ is %04o, want 0755" % stat.S_IMODE(st.st_mode))
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, base)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
                continue
            if mode & 0o022:
                problems.append("%s is %04o: writable by group or other" % (rel, mode))
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
                if mode != 0o755:
                    problems.append("directory %s is %04o, want 0755" % (rel, mode))
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read(), bool(mode & 0o111))
                if mode not in (0o644, 0o755):
                    problems.append("file %s is %04o, want 0644 or 0755" % (rel, mode))
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out, problems


def describe_tree_diff(got: dict, want: dict) -> str:
    lines = []
    for k in sorted(set(got) | set(want)):
        a, b = got.get(k), want.get(k)
        if a != b:
            short = lambda v: v if v is None or v[0] != "file" else ("file", len(v[1]), v[2])  # noqa
            lines.append("  %r: extracted %r, archive %r" % (k, short(a), short(b)))
    return "\n".join(lines[:20])


# --------------------------------------------------------------------------
# 1. every hostile case: rejected with its reason, kept, nothing promoted

def check_rejected_kept(g, function, rec, data) -> None:
    fdir = g.rejected / function
    assert fdir.is_dir(), "no rejected/%s/" % function
    zip_name, json_name = rec["decisionId"] + ".zip", rec["decisionId"] + ".json"
    assert listing(fdir) == sorted([zip_name, json_name]), "rejected/%s/ holds %s" % (
        function, listing(fdir))
    assert (fdir / zip_name).read_bytes() == data, (
        "rejected/%s/%s differs from the dropped bytes" % (function, zip_name))
    assert json.loads((fdir / json_name).read_text()) == strip_chain(rec), (
        "rejected/%s/%s is not the decision record" % (function, json_name))


def check_nothing_promoted(g, function) -> None:
    assert g.current(function) is None, "%s has a current release: %s" % (
        function, g.current(function))
    fdir = g.fdir(function)
    if fdir.exists():
        assert listing(fdir) in ([], ["releases"]), (
            "functions/%s holds %s after a rejection" % (function, listing(fdir)))
        assert g.releases(function, hidden=True) == [], (
            "functions/%s/releases holds %s after a rejection (a release or a stage left "
            "behind)" % (function, g.releases(function, hidden=True)))


@pytest.mark.parametrize("function", HOSTILE_NAMES)
def test_hostile_case_is_rejected_with_its_reason_kept_and_nothing_promoted(corpus, function):
    c = corpus["cases"][function]
    b = batch_of(corpus, function)
    g = b.gate
    data = corpus["data"][function]
    rec = record_of(corpus, function)
    name = inbox_name(c)
    check_record_shape(rec)
    assert (rec["function"], rec["package"]["name"]) == (function, name), rec["package"]
    assert rec["package"]["size"] == len(data), (rec["package"]["size"], len(data))
    reasons = rec["reasons"]
    assert rec["outcome"] == "rejected", (
        "%s (%s, %s) was %s %s: %s" % (function, c.policy, "signed" if corpus["signed"][function]
                                       else "unsigned", rec["outcome"], reasons, rec["message"]))
    assert set(reasons) & set(c.codes), "reasons %s, want one of %s: %s" % (
        reasons, list(c.codes), rec["message"])
    allowed = set(c.codes) | ({"INTEGRITY"} if corpus["signed"][function] else set())
    assert set(reasons) <= allowed, "reasons %s, want only %s: %s" % (
        reasons, sorted(allowed), rec["message"])
    assert len(reasons) == len(set(reasons)), reasons
    assert rec["release"] is None, rec["release"]
    assert len(g.records_for(name)) == 1, "%d records for %s" % (len(g.records_for(name)), name)
    assert not g.in_inbox(name), "%s is still in the inbox" % name
    check_rejected_kept(g, function, rec, data)
    check_nothing_promoted(g, function)


# --------------------------------------------------------------------------
# 3. legitimate variants: promoted, extracted byte-exact, not group/other-writable

@pytest.mark.parametrize("function", LEGIT_NAMES)
def test_legitimate_variant_is_promoted_and_extracted_byte_exact(corpus, function):
    b = batch_of(corpus, function)
    g = b.gate
    data = corpus["data"][function]
    rec = record_of(corpus, function)
    check_record_shape(rec)
    assert (rec["outcome"], rec["reasons"]) == ("promoted", []), (
        "%s was %s %s: %s" % (function, rec["outcome"], rec["reasons"], rec["message"]))
    assert not g.in_inbox(inbox_name(corpus["cases"][function]))
    rel = rec["release"]
    assert g.current(function) == "releases/" + rel, (g.current(function), rel)
    assert g.releases(function, hidden=True) == [rel], g.releases(function, hidden=True)
    rdir = g.release_dir(function, rel)
    assert json.loads((rdir / "release.json").read_text()) == strip_chain(rec)
    for p in (rdir, rdir / "release.json"):
        mode = stat.S_IMODE(os.lstat(p).st_mode)
        assert not mode & 0o022, "%s is %04o: writable by group or other" % (p, mode)
    got, problems = extracted_tree(rdir / "task")
    want = zip_tree(data)
    assert got == want, "task/ is not the archive's content:\n" + describe_tree_diff(got, want)
    assert not problems, "modes of the extracted tree (DESIGN §6, §7):\n  " + "\n  ".join(
        problems[:20])
    assert not (g.rejected / function).exists(), "a promoted package was also filed as rejected"


# --------------------------------------------------------------------------
# 2. the whole gate root before/after, staging, outside the root, the audit chain

def expected_change(b: Batch, rel: str) -> bool:
    parts = rel.split("/")
    if rel in ("var/log/signgate/audit.jsonl", "var/lib/signgate/first-seen.log"):
        return True
    if parts[:3] == ["var", "spool", "signgate"] and len(parts) >= 5 and parts[3] == "rejected":
        f = parts[4]
        c = b.cases.get(f)
        if c is None or not c.hostile:
            return False
        if f not in b.recs:
            return False
        did = b.recs[f]["decisionId"]
        return len(parts) == 5 or (len(parts) == 6 and parts[5] in (did + ".zip", did + ".json"))
    if parts[:5] == ["var", "lib", "signgate", "runtime", "functions"] and len(parts) >= 6:
        f = parts[5]
        c = b.cases.get(f)
        if c is None:
            return False
        if len(parts) == 6 or parts[6:] == ["releases"]:
            return True
        if c.hostile or f not in b.recs:
            return False
        rel_name = b.recs[f]["release"]
        return parts[6:] == ["current"] or parts[6:8] == ["releases", rel_name]
    return False


@pytest.mark.parametrize("kind", ["default", "small"])
def test_gate_root_changes_only_by_the_decisions_and_staging_is_empty(corpus, kind, run):
    b = corpus["batches"][kind]
    g = b.gate
    undecided = sorted(set(b.cases) - set(b.recs))
    assert not undecided, "never decided (inbox %s): %s" % (g.inbox_entries(), undecided)
    assert g.staging_entries() == [], "staging/ not empty: %s" % g.staging_entries()[:20]
    removed = sorted(set(b.before) - set(b.after))
    assert not removed, "paths gone from the gate root: %s" % removed[:20]
    changed = sorted(k for k in set(b.before) & set(b.after)
                     if b.before[k] != b.after[k] and not expected_change(b, k))
    assert not changed, "paths changed in the gate root: %s" % [
        (k, b.before[k], b.after[k]) for k in changed[:20]]
    added = sorted(set(b.after) - set(b.before))
    unexpected = [k for k in added if not expected_change(b, k)]
    assert not unexpected, "unexpected new paths in the gate root (%d): %s" % (
        len(unexpected), unexpected[:30])
    # every rejection left exactly its two files, every promotion its release
    for f, c in b.cases.items():
        if c.hostile:
            did = b.recs[f]["decisionId"]
            for ext in (".zip", ".json"):
                p = "var/spool/signgate/rejected/%s/%s%s" % (f, did, ext)
                assert p in added, "%s missing" % p
        else:
            p = "var/lib/signgate/runtime/functions/%s/releases/%s/task" % (f, b.recs[f]["release"])
            assert p in added, "%s missing" % p
    assert g.inbox_entries() == [], "inbox not empty: %s" % g.inbox_entries()[:20]
    p = run(["audit", "verify", g.audit_path])
    assert p.returncode == 0, "audit verify failed: %s %s" % (p.stdout, p.stderr)
    decided = [r for r in g.decisions()]
    assert len(decided) == len(b.cases), "%d decisions in the audit file for %d drops" % (
        len(decided), len(b.cases))


def test_nothing_was_created_or_changed_outside_the_gate_roots(corpus):
    before, after = corpus["outside"]
    changed = {p: (before[p], after[p]) for p in before if before[p] != after[p]}
    assert not changed, "paths outside the gate root changed during the drops: %s" % changed
    lb, la = corpus["lists"]
    for d in lb:
        assert la[d] == lb[d], "%s gained %s and lost %s during the drops" % (
            d, sorted(set(la[d]) - set(lb[d])), sorted(set(lb[d]) - set(la[d])))


# --------------------------------------------------------------------------
# 5. modes of what the gate files (DESIGN §7, docs/operations.md)

def test_rejected_files_audit_file_and_their_directories_have_the_documented_modes(corpus):
    problems = []

    def want(path: Path, mode: int):
        got = stat.S_IMODE(os.lstat(path).st_mode)
        if got != mode:
            problems.append("%s is %04o, want %04o" % (path, got, mode))

    for kind, b in corpus["batches"].items():
        g = b.gate
        want(g.rejected, 0o750)
        for f in sorted(os.listdir(g.rejected)):
            want(g.rejected / f, 0o750)
            for n in sorted(os.listdir(g.rejected / f)):
                want(g.rejected / f / n, 0o640)
        want(g.audit_path.parent, 0o750)
        want(g.audit_path, 0o640)
        want(g.first_seen_path, 0o640)
        want(g.staging, 0o700)
        want(g.inbox, 0o1770)
    assert not problems, "modes differ from DESIGN §7 / docs/operations.md:\n  " + "\n  ".join(
        problems[:40])


# --------------------------------------------------------------------------
# 4. 200,000 tiny entries: over the default entry limit, promoted once it is raised

MANY_DIRS = 400
MANY_PER_DIR = 499           # 400 directory entries + 400 * 499 files = 200,000 entries


def many_entries_archive(n_dirs: int, per_dir: int) -> tuple:
    """(archive bytes, {path: content}) with n_dirs directory entries of per_dir files each,
    written record by record (zipcraft's Entry objects are too slow for 200,000)."""
    local = bytearray()
    central = bytearray()
    contents = {}
    lh = struct.Struct("<IHHHHHIIIHH").pack
    ch = struct.Struct("<IHHHHHHIIIHHHHHII").pack
    made_by = zc.version_made_by(zc.HOST_UNIX, 30)
    dir_attr = zc.unix_external(0o040755)
    file_attr = zc.unix_external(0o100644)
    date, tm = zc.DEFAULT_DATE, zc.DEFAULT_TIME

    def add(name: bytes, body: bytes, attr: int) -> None:
        crc = zlib.crc32(body)
        off = len(local)
        local.extend(lh(zc.LOCAL_SIG, 20, 0, 0, tm, date, crc, len(body), len(body), len(name), 0))
        local.extend(name)
        local.extend(body)
        central.extend(ch(zc.CENTRAL_SIG, made_by, 20, 0, 0, tm, date, crc, len(body), len(body),
                          len(name), 0, 0, 0, 0, attr, off))
        central.extend(name)

    for d in range(n_dirs):
        dname = b"d%03d/" % d
        add(dname, b"", dir_attr)
        for f in range(per_dir):
            name = dname + b"f%03d" % f
            body = b"%d/%d\n" % (d, f)
            add(name, body, file_attr)
            contents[name.decode()] = body
    n = n_dirs * (per_dir + 1)
    cd_offset = len(local)
    z64 = cd_offset + len(central)
    tail = (zc.zip64_eocd(disk_entries=n, total_entries=n, cd_size=len(central),
                          cd_offset=cd_offset)
            + zc.zip64_locator(offset=z64)
            + zc.eocd(disk_entries=0xFFFF, total_entries=0xFFFF, cd_size=0xFFFFFFFF,
                      cd_offset=0xFFFFFFFF))
    return bytes(local + central + tail), contents


def vm_peak_kib(pid: int) -> Optional[int]:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def test_200000_entries_are_rejected_at_the_default_limit_and_promoted_when_it_is_raised(
        gate, signer):
    t0 = time.monotonic()
    raw, contents = many_entries_archive(MANY_DIRS, MANY_PER_DIR)
    n = MANY_DIRS * (MANY_PER_DIR + 1)
    assert n == 200_000 and len(zc.parse(raw).entries) == n
    data = signer.sign_bytes(raw, "many.zip")
    t_build = time.monotonic() - t0
    pol = Policy()
    pol.function("many", pol.csc("Enforce", signer))
    g = gate(policy=pol)

    t1 = time.monotonic()
    rec = g.decide("many@default.zip", data, timeout=BATCH_TIMEOUT)
    t_reject = time.monotonic() - t1
    peak_reject = vm_peak_kib(g.pid)
    assert (rec["outcome"], rec["reasons"]) == ("rejected", ["LIMIT_EXCEEDED"]), (
        rec["outcome"], rec["reasons"], rec["message"])
    g.wait_idle()
    assert g.staging_entries() == [], "staging/ not empty: %s" % g.staging_entries()[:10]
    check_nothing_promoted(g, "many")
    check_rejected_kept(g, "many", rec, data)

    g.stop()
    g.start(settings={"limits": {"entries": 250_000}})
    t2 = time.monotonic()
    rec = g.decide("many@raised.zip", data, timeout=BATCH_TIMEOUT)
    t_promote = time.monotonic() - t2
    peak_promote = vm_peak_kib(g.pid)
    assert (rec["outcome"], rec["reasons"]) == ("promoted", []), (
        rec["outcome"], rec["reasons"], rec["message"])
    g.wait_idle()
    assert g.staging_entries() == []
    task = g.release_dir("many", rec["release"]) / "task"
    t3 = time.monotonic()
    dirs = sorted(os.listdir(task))
    assert dirs == ["d%03d" % d for d in range(MANY_DIRS)], dirs[:5]
    got = {}
    for d in dirs:
        with os.scandir(task / d) as it:
            for e in it:
                assert e.is_file(follow_symlinks=False), e.path
                with open(e.path, "rb") as f:
                    got["%s/%s" % (d, e.name)] = f.read()
    missing = sorted(set(contents) - set(got))
    extra = sorted(set(got) - set(contents))
    assert not missing and not extra, "missing %d (%s), extra %d (%s)" % (
        len(missing), missing[:5], len(extra), extra[:5])
    wrong = [k for k, v in contents.items() if got[k] != v]
    assert not wrong, "%d entries differ, e.g. %s" % (len(wrong), wrong[:5])
    t_check = time.monotonic() - t3
    # 200,000 files would otherwise stay for pytest's clean-up of old base directories, which
    # a later run (of any e2e module) pays for; kept when the test fails, for a look.
    g.stop()
    shutil.rmtree(g.fdir("many"))
    print("\n200k entries: archive %.1f MB built+signed in %.1fs; rejected in %.1fs "
          "(daemon peak RSS %s KiB); promoted in %.1fs (daemon peak RSS %s KiB); "
          "tree checked in %.1fs"
          % (len(data) / 1e6, t_build, t_reject, peak_reject, t_promote, peak_promote, t_check))
