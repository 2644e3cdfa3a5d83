"""Harness for the end-to-end tests of the gate daemon ``signgated``.

Import the fixtures into each test module (pytest does not collect fixtures from a
plain module)::

    from gate import gate, gate_mod, journald, signgated  # noqa: F401

Fixtures:

``signgated``   absolute path of the daemon (env ``SIGNGATED_BIN``); fails when unset.
``journald``    session: makes sure a real systemd-journald listens on
                ``/run/systemd/journal/socket`` (starts one, detached, when PID 1 is not
                systemd and nobody started one); yields a :class:`Journal`.
``gate``        function scope: ``gate(settings=None, policy=None, start=True) -> Gate``.
                Every daemon it starts is killed at the end of the test.
``gate_mod``    the same factory, module scope (one daemon shared by a module's tests).

:class:`Gate` runs ``signgated --root ROOT --foreground`` with ``NOTIFY_SOCKET`` bound by
the harness (readiness = ``READY=1``), drops packages into the inbox, reads the audit
file and the runtime tree, and queries journald for the daemon's entries.  All waits are
bounded polls; a timeout fails with the daemon's stderr tail.

:class:`Policy` writes a policy store in the gate's schema (DESIGN §7), the same schema
``write_policy_store`` in test_signer_seed.py writes.

Package helpers: :func:`package` builds a ZIP (via zipcraft) with a unique marker entry so
every package has its own digest; :func:`digest` is the package digest (SHA-384 of the
canonical bytes, DESIGN §4).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zipcraft  # noqa: E402


class UnixHTTP(http.client.HTTPConnection):
    """http.client over the gate's unix socket: UnixHTTP(path, timeout)."""

    def __init__(self, path, timeout: float = 60.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s

JOURNAL_SOCKET = "/run/systemd/journal/socket"
JOURNALD = "/lib/systemd/systemd-journald"

MESSAGE_IDS = {
    "promoted": "9c444b10f5004e57afb59ee4fb12d679",
    "promoted-with-warnings": "671a8ffbbf084b31be51bc66e082fee0",
    "rejected": "a5f2a1252c59449eb147f4a6a008286d",
}
PRIORITIES = {"promoted": "6", "promoted-with-warnings": "4", "rejected": "3"}
RECORD_KEYS = ["seq", "time", "decisionId", "kind", "function", "source", "peer", "package",
               "signature", "codeSigningConfig", "policy", "outcome", "reasons", "message",
               "release", "prev"]
RELEASE_RE = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{12})$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

READY_TIMEOUT = 20.0
DECIDE_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
JOURNAL_TIMEOUT = 10.0


# --------------------------------------------------------------------------
# small helpers

def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(data: bytes) -> str:
    """The package digest: SHA-384 of the canonical bytes (DESIGN §4)."""
    e = zipcraft.find_eocd(data)
    return hashlib.sha384(data[:e + 20] + b"\0\0").hexdigest()


def poll(cond: Callable[[], object], timeout: float, interval: float = 0.05):
    """Calls cond until it returns something truthy (returned) or timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def package(*entries, marker: bool = True) -> bytes:
    """A ZIP of zipcraft entries; tuples (name, data) / (name, data, mode) are files.
    A unique marker entry makes every package's digest distinct."""
    es = []
    for e in entries:
        if isinstance(e, tuple):
            name, data = e[0], e[1]
            mode = e[2] if len(e) > 2 else 0o100644
            es.append(zipcraft.file_entry(name, data, mode=mode, method=zipcraft.DEFLATED))
        else:
            es.append(e)
    if marker:
        es.append(zipcraft.file_entry("marker-%s.txt" % uuid.uuid4().hex,
                                      uuid.uuid4().bytes, mode=0o100644))
    return zipcraft.build(es).data


def simple_package(text: str = "") -> bytes:
    return package(("lambda_function.py",
                    ("def handler(event, context):\n    return %r\n" % (text or uuid.uuid4().hex))
                    .encode()))


def ordered_loads(line: str):
    return json.loads(line, object_pairs_hook=OrderedDict)


# --------------------------------------------------------------------------
# the policy store (DESIGN §7)

class Policy:
    """Builder for a policy store; :meth:`write` (re)writes the whole store atomically
    file by file (temp name starting with '.', then rename)."""

    ARN_PREFIX = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/"

    def __init__(self):
        self.profiles = {}      # "NAME@VERSION" -> doc text
        self.cscs = {}          # id -> doc
        self.functions = {}     # name -> doc
        self.revocations = {}   # file id -> doc
        self._n = 0

    def profile(self, signer) -> "Policy":
        self.profiles["%s@%s" % (signer.profile_name, signer.profile_version)] = (
            signer.profile_doc.read_text())
        return self

    def csc(self, policy: str, *signers, csc_id: Optional[str] = None) -> str:
        self._n += 1
        cid = csc_id or "csc-%017x" % (0xabc0000000000 + self._n)
        for s in signers:
            self.profile(s)
        self.cscs[cid] = {
            "CodeSigningConfigId": cid,
            "CodeSigningConfigArn": "arn:aws:lambda:us-east-1:111111111111:code-signing-config:" + cid,
            "Description": "e2e %s" % policy,
            "AllowedPublishers": {"SigningProfileVersionArns": [
                self.ARN_PREFIX + "%s/%s" % (s.profile_name, s.profile_version) for s in signers]},
            "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": policy},
            "LastModified": "2026-01-01T00:00:00Z",
        }
        return cid

    def function(self, name: str, csc: Optional[str] = None, layers: Iterable[str] = ()) -> "Policy":
        doc = {"FunctionName": name,
               "CodeSigningConfigArn": (
                   "arn:aws:lambda:us-east-1:111111111111:code-signing-config:" + csc)
               if csc else None}
        if layers:
            doc["Layers"] = list(layers)
        self.functions[name] = doc
        return self

    def revoke_job(self, job_id: str, reason: str = "leaked") -> "Policy":
        self.revocations["signature-" + job_id] = {"type": "signature", "jobId": job_id,
                                                   "reason": reason}
        return self

    def revoke_profile(self, signer, effective: datetime, reason: str = "Key compromise") -> "Policy":
        self.revocations["profile-%s@%s" % (signer.profile_name, signer.profile_version)] = {
            "type": "profile", "profileName": signer.profile_name,
            "profileVersion": signer.profile_version, "effectiveTime": stamp(effective),
            "reason": reason}
        return self

    def write(self, policy_dir: Path) -> None:
        policy_dir = Path(policy_dir)
        want = {}
        for key, text in self.profiles.items():
            want["signing-profiles/%s.json" % key] = text
        for cid, doc in self.cscs.items():
            want["code-signing-configs/%s.json" % cid] = json.dumps(doc)
        for name, doc in self.functions.items():
            want["functions/%s.json" % name] = json.dumps(doc)
        for rid, doc in self.revocations.items():
            want["revocations/%s.json" % rid] = json.dumps(doc)
        for sub in ("signing-profiles", "code-signing-configs", "functions", "revocations"):
            (policy_dir / sub).mkdir(parents=True, exist_ok=True)
        for rel, text in want.items():
            write_atomic(policy_dir / rel, text.encode())
        for sub in ("signing-profiles", "code-signing-configs", "functions", "revocations"):
            for p in (policy_dir / sub).iterdir():
                if "%s/%s" % (sub, p.name) not in want:
                    p.unlink()


def enforce_policy(signer, *functions: str) -> Policy:
    """A policy store with one Enforce config allowing ``signer``, bound to each function."""
    pol = Policy()
    csc = pol.csc("Enforce", signer)
    for f in functions:
        pol.function(f, csc)
    return pol


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.parent / (".%s.%s.tmp" % (path.name, uuid.uuid4().hex[:8]))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


# --------------------------------------------------------------------------
# journald

class Journal:
    """Reads and writes the system journal (the real journald). A subclass may read another
    journald's through ``command`` (a prefix such as nsenter) and ``socket_path``."""

    command: tuple = ()
    socket_path: str = JOURNAL_SOCKET

    def query(self, *matches: str) -> list:
        p = subprocess.run([*self.command, "journalctl", "-o", "json", "--all", "--no-pager", *matches],
                           capture_output=True, text=True, errors="replace", timeout=60)
        out = []
        for line in p.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def send(self, **fields) -> None:
        """One native-protocol entry (simple values only) on journald's socket."""
        body = "".join("%s=%s\n" % (k, v) for k, v in fields.items()).encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(body, self.socket_path)
        finally:
            s.close()

    def barrier(self, timeout: float = JOURNAL_TIMEOUT) -> bool:
        """Sends a marker on journald's socket and waits until it is indexed: every
        datagram queued on that socket before it is indexed too."""
        tag = uuid.uuid4().hex
        self.send(MESSAGE="signgate e2e barrier " + tag, SYSLOG_IDENTIFIER="signgate-e2e",
                  SIGNGATE_E2E_BARRIER=tag)
        return bool(poll(lambda: self.query("SIGNGATE_E2E_BARRIER=" + tag), timeout, 0.1))


def _journald_up() -> bool:
    if not os.path.exists(JOURNAL_SOCKET):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(JOURNAL_SOCKET)
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(scope="session")
def journald() -> Journal:
    if not _journald_up():
        if not os.access(JOURNALD, os.X_OK):
            pytest.fail("no journald socket at %s and no %s to start" % (JOURNAL_SOCKET, JOURNALD),
                        pytrace=False)
        os.makedirs("/run/systemd/journal", exist_ok=True)
        try:
            os.unlink(JOURNAL_SOCKET)  # a stale socket nobody listens on
        except FileNotFoundError:
            pass
        # Detached (own session, no inherited pipes): it serves every later test run too.
        subprocess.Popen([JOURNALD], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        if not poll(_journald_up, 15, 0.1):
            pytest.fail("systemd-journald did not create %s" % JOURNAL_SOCKET, pytrace=False)
    j = Journal()
    if not j.barrier(15):
        pytest.fail("journald accepts entries but journalctl does not show them", pytrace=False)
    return j


# --------------------------------------------------------------------------
# the daemon

@pytest.fixture(scope="session")
def signgated() -> str:
    path = os.environ.get("SIGNGATED_BIN")
    if not path:
        pytest.fail("SIGNGATED_BIN is not set: build signgate and run e.g. "
                    "SIGNGATED_BIN=/path/to/build/daemon/signgated python3 -m pytest tests/e2e",
                    pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("SIGNGATED_BIN=%r is not an executable file" % path, pytrace=False)
    return os.path.abspath(path)


class GateError(AssertionError):
    pass


class Gate:
    """One gate root and (at most) one running daemon on it."""

    def __init__(self, binary: str, root: Path, journal: Optional[Journal] = None):
        self.binary = binary
        self.root = Path(root)
        self.journal = journal
        self.proc: Optional[subprocess.Popen] = None
        self.pids = []                      # every daemon pid started on this root
        self.notes = []                     # sd_notify messages (dicts), in arrival order
        self._sockdir = tempfile.mkdtemp(prefix="sgn-", dir="/tmp")
        self.notify_path = os.path.join(self._sockdir, "notify")
        self.nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.nsock.bind(self.notify_path)
        self.nsock.setblocking(False)
        self.log_dir = self.root.parent / (self.root.name + "-logs")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts = 0
        self.stderr_path: Optional[Path] = None
        self.tracked = {}                   # dropped name -> (dev, ino)
        self.pins = {}                      # dropped name -> O_PATH fd pinning the inode
        self.left = set()                   # dropped names seen gone from the inbox

    # ---- paths ----
    @property
    def etc(self) -> Path: return self.root / "etc/signgate"
    @property
    def settings_path(self) -> Path: return self.etc / "signgated.json"
    @property
    def policy_dir(self) -> Path: return self.root / "var/lib/signgate/policy"
    @property
    def staging(self) -> Path: return self.root / "var/lib/signgate/staging"
    @property
    def functions_dir(self) -> Path: return self.root / "var/lib/signgate/runtime/functions"
    @property
    def layers_dir(self) -> Path: return self.root / "var/lib/signgate/runtime/layers"
    @property
    def inbox(self) -> Path: return self.root / "var/spool/signgate/inbox"
    @property
    def rejected(self) -> Path: return self.root / "var/spool/signgate/rejected"
    @property
    def audit_path(self) -> Path: return self.root / "var/log/signgate/audit.jsonl"
    @property
    def first_seen_path(self) -> Path: return self.root / "var/lib/signgate/first-seen.log"

    # ---- set-up ----
    def write_settings(self, settings: Optional[dict]) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        if settings is None:
            if self.settings_path.exists():
                self.settings_path.unlink()
        else:
            write_atomic(self.settings_path, json.dumps(settings).encode())

    def write_policy(self, policy: Policy) -> None:
        policy.write(self.policy_dir)

    # ---- notify ----
    def _drain(self, wait: float) -> None:
        r, _, _ = select.select([self.nsock], [], [], wait)
        while r:
            try:
                data = self.nsock.recv(65536)
            except BlockingIOError:
                break
            msg = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    msg[k] = v
            self.notes.append(msg)
            r, _, _ = select.select([self.nsock], [], [], 0)

    def wait_notify(self, key: str, value: str, since: int = 0,
                    timeout: float = READY_TIMEOUT, allow_exit: bool = False) -> int:
        """Index of the first message from `since` on carrying key=value."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain(0)
            for i in range(since, len(self.notes)):
                if self.notes[i].get(key) == value:
                    return i
            if self.proc is not None and self.proc.poll() is not None and not allow_exit:
                self._drain(0.05)
                for i in range(since, len(self.notes)):
                    if self.notes[i].get(key) == value:
                        return i
                raise GateError("signgated exited with %s before sending %s=%s\n%s"
                                % (self.proc.returncode, key, value, self.stderr_tail()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise GateError("no %s=%s from signgated within %ss (got %s)\n%s"
                                % (key, value, timeout, self.notes[since:], self.stderr_tail()))
            self._drain(min(left, 0.1))

    # ---- lifecycle ----
    def start(self, settings="keep", policy: Optional[Policy] = None, wait_ready: bool = True) -> "Gate":
        assert self.proc is None or self.proc.poll() is not None, "gate already running"
        if settings != "keep":
            self.write_settings(settings)
        if policy is not None:
            self.write_policy(policy)
        self.root.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self._stopped_on_purpose = False
        self.stderr_path = self.log_dir / ("stderr-%d.log" % self.starts)
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = self.notify_path
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env.pop("WATCHDOG_USEC", None)
        self._drain(0)
        self.ready_since = len(self.notes)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([self.binary, "--root", str(self.root), "--foreground"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, start_new_session=True)
        self.pids.append(self.proc.pid)
        if wait_ready:
            self.wait_notify("READY", "1", self.ready_since)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self, all_starts: bool = False) -> str:
        paths = sorted(self.log_dir.glob("stderr-*.log")) if all_starts else [self.stderr_path]
        out = []
        for p in paths:
            if p and p.exists():
                out.append(p.read_text(errors="replace"))
        return "".join(out)

    def stderr_tail(self, n: int = 3000) -> str:
        return "--- signgated stderr (tail) ---\n" + self.stderr_text()[-n:]

    def hup(self, timeout: float = READY_TIMEOUT) -> None:
        """SIGHUP; waits for RELOADING=1 and then READY=1."""
        self._drain(0)
        since = len(self.notes)
        self.proc.send_signal(signal.SIGHUP)
        i = self.wait_notify("RELOADING", "1", since, timeout)
        # READY=1 may ride in the same message as RELOADING=1's successor; look after it.
        self.wait_notify("READY", "1", i + 1 if self.notes[i].get("READY") != "1" else i, timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM; waits for the exit; returns the exit status."""
        self._drain(0)
        self.stop_since = len(self.notes)
        self._stopped_on_purpose = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise GateError("signgated did not exit within %ss of SIGTERM\n%s"
                            % (timeout, self.stderr_tail()))
        self._drain(0.05)
        return rc

    def kill9(self) -> None:
        self._stopped_on_purpose = True
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def close(self) -> None:
        try:
            self.kill9()
        finally:
            for n in list(self.pins):
                self._untrack(n)
            try:
                self.nsock.close()
            finally:
                shutil.rmtree(self._sockdir, ignore_errors=True)

    # ---- drops ----
    def drop(self, name: str, data: bytes, how: str = "tmp", owner: Optional[tuple] = None,
             mode: int = 0o644) -> Path:
        """Drops a package into the inbox: 'tmp' writes .NAME.tmp then renames, 'part'
        writes NAME.part then renames, 'direct' writes NAME in place and closes."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        final = self.inbox / name
        if how == "direct":
            tmp = final
        elif how == "part":
            tmp = self.inbox / (name + ".part")
        else:
            tmp = self.inbox / (".%s.tmp" % name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            self.track(name, tmp)                  # before the gate can see it
        finally:
            os.close(fd)
        if tmp != final:
            os.rename(tmp, final)
        return final

    # An inbox entry is followed by its inode: the gate may rename (claim) an entry inside the
    # inbox while deciding it; the entry has left the inbox only when no inbox name refers
    # to that inode any more.  An O_PATH descriptor pins the inode, so its number cannot be
    # reused by a later drop while the harness still follows it.
    def track(self, name: str, path=None) -> None:
        """Follow the entry that is (or, from `path`, will be renamed to) inbox/`name`."""
        self._untrack(name)
        fd = os.open(path if path is not None else self.inbox / name,
                     os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        st = os.fstat(fd)
        self.tracked[name] = (st.st_dev, st.st_ino)
        self.pins[name] = fd
        self.left.discard(name)

    def _untrack(self, name: str) -> None:
        fd = self.pins.pop(name, None)
        if fd is not None:
            os.close(fd)

    def _mark_left(self, name: str) -> None:
        self.left.add(name)
        self._untrack(name)

    def _inbox_inodes(self) -> set:
        out = set()
        try:
            with os.scandir(self.inbox) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    out.add((st.st_dev, st.st_ino))
        except FileNotFoundError:
            pass
        return out

    def in_inbox(self, name: str) -> bool:
        """Whether the entry dropped as `name` is still in the inbox (under any name)."""
        if name not in self.tracked:
            return os.path.lexists(self.inbox / name)
        if name in self.left:
            return False
        # A scan that runs while the gate renames the entry to its claimed name can miss it
        # under both names (stat of the old name fails, the new one is not listed yet). The
        # gate renames an entry once before it removes it, so a second scan settles it.
        ino = self.tracked[name]
        if ino in self._inbox_inodes() or ino in self._inbox_inodes():
            return True
        self._mark_left(name)
        return False

    def drop_many(self, items: Iterable[tuple]) -> None:
        for name, data in items:
            self.drop(name, data)

    # ---- the audit file ----
    def audit_lines(self) -> list:
        """Complete lines of the audit file (raw strings without the newline)."""
        try:
            raw = self.audit_path.read_bytes()
        except FileNotFoundError:
            return []
        text = raw.decode("utf-8", "replace")
        lines = text.split("\n")
        return [l for l in lines[:-1]]  # the last element is "" or a partial line

    def audit_files(self) -> list:
        """Rotated audit files oldest first (NAME.K … NAME.1), then NAME."""
        d = self.audit_path.parent
        rotated = []
        try:
            for n in os.listdir(d):
                m = re.fullmatch(re.escape(self.audit_path.name) + r"\.(\d+)", n)
                if m:
                    rotated.append((int(m.group(1)), d / n))
        except FileNotFoundError:
            return []
        return [p for _, p in sorted(rotated, reverse=True)] + [self.audit_path]

    def records(self) -> list:
        """Every audit record, across rotated files, once each (by seq)."""
        out = []
        seen = set()
        for path in self.audit_files():
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue
            for line in raw.decode("utf-8", "replace").split("\n")[:-1]:
                if not line.strip():
                    continue
                try:
                    rec = ordered_loads(line)
                except ValueError:
                    raise GateError("audit line in %s is not JSON: %r" % (path.name, line[:300]))
                key = rec.get("seq") if isinstance(rec.get("seq"), int) else line
                if key in seen:
                    continue
                seen.add(key)
                out.append(rec)
        return out

    def decisions(self) -> list:
        """Audit records that are decisions (have a decisionId and an outcome)."""
        return [r for r in self.records() if "decisionId" in r and "outcome" in r]

    def records_for(self, name: str) -> list:
        return [r for r in self.decisions()
                if isinstance(r.get("package"), dict) and r["package"].get("name") == name]

    def _alive(self) -> bool:
        """Raises when the daemon this gate started has exited (a wait would be in vain)."""
        if self.proc is not None and self.proc.poll() is not None and not getattr(
                self, "_stopped_on_purpose", False):
            raise GateError("signgated exited with status %s while the test waited\n%s"
                            % (self.proc.returncode, self.stderr_tail()))
        return True

    def _fail_wait(self, what: str, timeout: float):
        alive = "running" if self.running() else "exited %s" % (
            self.proc.returncode if self.proc else None)
        raise GateError("%s within %ss (daemon %s; %d decisions so far)\n%s"
                        % (what, timeout, alive, len(self.decisions()), self.stderr_tail()))

    def wait_record(self, name: str, timeout: float = DECIDE_TIMEOUT) -> dict:
        """Waits for a decision on the inbox entry `name`; returns the first one."""
        got = poll(lambda: self._alive() and self.records_for(name), timeout)
        if not got:
            self._fail_wait("no decision record for %r" % name, timeout)
        return got[0]

    def await_decision(self, name: str, timeout: float = DECIDE_TIMEOUT) -> dict:
        """Waits until the inbox entry `name` is decided and removed; asserts its record
        was in the audit file before the entry disappeared.  Returns the first record."""
        deadline = time.monotonic() + timeout
        if name not in self.tracked and os.path.lexists(self.inbox / name):
            self.track(name)
        while True:
            gone = not self.in_inbox(name)
            recs = self.records_for(name)
            if gone:
                if not recs:
                    recs = self.records_for(name)
                    raise GateError("inbox entry %r disappeared before its decision record was in "
                                    "the audit file (now %d records for it)\n%s"
                                    % (name, len(recs), self.stderr_tail()))
                return recs[0]
            self._alive()
            if time.monotonic() >= deadline:
                self._fail_wait("%r not decided and removed (records: %d)" % (name, len(recs)),
                                timeout)
            time.sleep(0.03)

    def decide(self, name: str, data: bytes, timeout: float = DECIDE_TIMEOUT, **kw) -> dict:
        """drop + await_decision."""
        self.drop(name, data, **kw)
        return self.await_decision(name, timeout)

    def wait_records(self, names: Iterable[str], timeout: float = DECIDE_TIMEOUT) -> dict:
        names = list(names)
        want = set(names)

        def have():
            seen = {}
            for r in self.decisions():
                n = r.get("package", {}).get("name") if isinstance(r.get("package"), dict) else None
                if n in want and n not in seen:
                    seen[n] = r
            return seen if len(seen) == len(want) else None
        got = poll(lambda: self._alive() and have(), timeout, 0.1)
        if not got:
            missing = want - set(
                (r.get("package") or {}).get("name") for r in self.decisions())
            self._fail_wait("no decision for %d of %d packages (e.g. %s)"
                            % (len(missing), len(want), sorted(missing)[:5]), timeout)
        return got

    def wait_count(self, n: int, timeout: float = DECIDE_TIMEOUT, interval: float = 0.02) -> int:
        got = poll(lambda: self._alive() and len(self.decisions()) >= n, timeout, interval)
        if not got:
            self._fail_wait("fewer than %d decisions" % n, timeout)
        return len(self.decisions())

    def inbox_entries(self) -> list:
        try:
            return sorted(os.listdir(self.inbox))
        except FileNotFoundError:
            return []

    def pending(self) -> list:
        """Entries dropped through this harness (or tracked) that are still in the inbox,
        plus untracked inbox names the gate must decide (not writers' temp names)."""
        inodes = self._inbox_inodes() | self._inbox_inodes()  # see in_inbox(): a claim may race a scan
        out = []
        for n, key in self.tracked.items():
            if n in self.left:
                continue
            if key in inodes:
                out.append(n)
            else:
                self._mark_left(n)
        tracked_names = set(self.tracked)
        out += [n for n in self.inbox_entries() if n not in tracked_names
                and not (n.startswith(".") or n.endswith(".tmp") or n.endswith(".part"))]
        return sorted(out)

    def staging_entries(self) -> list:
        try:
            return sorted(os.listdir(self.staging))
        except FileNotFoundError:
            return []

    def wait_gone(self, name: str, timeout: float = DECIDE_TIMEOUT) -> None:
        if not poll(lambda: self._alive() and not self.in_inbox(name), timeout):
            self._fail_wait("inbox entry %r was not removed" % name, timeout)

    def wait_idle(self, timeout: float = DECIDE_TIMEOUT) -> None:
        """Inbox holds no entry to decide and staging is empty."""
        if not poll(lambda: self._alive() and not self.pending() and not self.staging_entries(),
                    timeout, 0.1):
            self._fail_wait("gate not idle (inbox %s, staging %s)"
                            % (self.pending()[:10], self.staging_entries()[:10]), timeout)

    # ---- runtime tree ----
    def fdir(self, function: str) -> Path:
        return self.functions_dir / function

    def current(self, function: str) -> Optional[str]:
        link = self.fdir(function) / "current"
        if not os.path.islink(link):
            return None
        return os.readlink(link)

    def current_release(self, function: str) -> Optional[str]:
        t = self.current(function)
        if t is None:
            return None
        assert t.startswith("releases/") and "/" not in t[len("releases/"):], (
            "current is not a relative link to releases/RELEASE: %r" % t)
        return t[len("releases/"):]

    def releases(self, function: str, hidden: bool = False) -> list:
        d = self.fdir(function) / "releases"
        try:
            names = sorted(os.listdir(d))
        except FileNotFoundError:
            return []
        return names if hidden else [n for n in names if not n.startswith(".")]

    def release_dir(self, function: str, release: str) -> Path:
        return self.fdir(function) / "releases" / release

    def journal_entries(self, decision_ids: Iterable[str], timeout: float = JOURNAL_TIMEOUT,
                        pids: Optional[Iterable[int]] = None) -> dict:
        """{decisionId: [entries]} for the given ids, polling until each has one."""
        ids = set(decision_ids)
        pids = list(pids) if pids is not None else list(self.pids)
        result = {}

        def fetch():
            result.clear()
            for pid in pids:
                for e in self.journal.query("_PID=%d" % pid):
                    did = e.get("SIGNGATE_DECISION_ID")
                    if did in ids:
                        result.setdefault(did, []).append(e)
            return len(result) == len(ids)
        poll(fetch, timeout, 0.2)
        return dict(result)


def _factory(base_factory, binary, journal):
    gates = []

    def make(settings=None, policy: Optional[Policy] = None, start: bool = True) -> Gate:
        root = base_factory("g") / "root"
        root.mkdir()
        g = Gate(binary, root, journal)
        gates.append(g)
        g.write_settings(settings)
        if policy is not None:
            g.write_policy(policy)
        if start:
            g.start()
        return g
    return make, gates


@pytest.fixture
def gate(tmp_path_factory, signgated, journald):
    make, gates = _factory(tmp_path_factory.mktemp, signgated, journald)
    yield make
    for g in gates:
        g.close()


@pytest.fixture(scope="module")
def gate_mod(tmp_path_factory, signgated, journald):
    make, gates = _factory(tmp_path_factory.mktemp, signgated, journald)
    yield make
    for g in gates:
        g.close()


# --------------------------------------------------------------------------
# checks shared by the test modules

def check_record_shape(rec: dict, *, source: str = "inbox") -> None:
    """DESIGN §9 key order (seq first, prev last) and value types."""
    keys = list(rec.keys())
    assert keys == RECORD_KEYS, "record keys %s, want %s" % (keys, RECORD_KEYS)
    assert isinstance(rec["seq"], int) and rec["seq"] >= 0, rec["seq"]
    assert TIME_RE.match(rec["time"]), rec["time"]
    assert UUID_RE.match(rec["decisionId"]), rec["decisionId"]
    assert rec["kind"] in ("function", "layer"), rec["kind"]
    assert rec["source"] == source, rec["source"]
    assert rec["outcome"] in MESSAGE_IDS, rec["outcome"]
    assert isinstance(rec["reasons"], list), rec["reasons"]
    assert isinstance(rec["message"], str) and rec["message"], rec["message"]
    assert re.fullmatch(r"[0-9a-f]{64}", rec["prev"]), rec["prev"]
    pkg = rec["package"]
    assert isinstance(pkg, dict) and set(pkg) >= {"name", "size", "sha384"}, pkg


def strip_chain(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("seq", "prev")}


def check_journal_entry(entry: dict, rec: dict, pid: Optional[int] = None) -> None:
    """One journald entry against its decision record (contract: fields that would be
    null are omitted)."""
    outcome = rec["outcome"]
    sig = rec.get("signature") or {}
    want = {
        "SYSLOG_IDENTIFIER": "signgated",
        "MESSAGE": rec["message"],
        "PRIORITY": PRIORITIES[outcome],
        "MESSAGE_ID": MESSAGE_IDS[outcome],
        "SIGNGATE_DECISION_ID": rec["decisionId"],
        "SIGNGATE_FUNCTION": rec.get("function"),
        "SIGNGATE_OUTCOME": outcome,
        "SIGNGATE_SHA384": rec["package"]["sha384"],
        "SIGNGATE_PROFILE": sig.get("profileName"),
        "SIGNGATE_PROFILE_VERSION": sig.get("profileVersion"),
        "SIGNGATE_JOB_ID": sig.get("jobId"),
        "SIGNGATE_CSC": rec.get("codeSigningConfig"),
        "SIGNGATE_SOURCE": rec["source"],
        "SIGNGATE_PEER_UID": (str(rec["peer"]["uid"]) if isinstance(rec.get("peer"), dict)
                              and rec["peer"].get("uid") is not None else None),
        "SIGNGATE_RELEASE": rec.get("release"),
    }
    problems = []
    for k, v in want.items():
        got = entry.get(k)
        if v is None:
            if got is not None:
                problems.append("%s=%r should be omitted (null in the record)" % (k, got))
        elif got != v:
            problems.append("%s=%r, want %r" % (k, got, v))
    reasons = entry.get("SIGNGATE_REASONS")
    got_reasons = [x.strip() for x in reasons.split(",") if x.strip()] if reasons else []
    if got_reasons != rec["reasons"]:
        problems.append("SIGNGATE_REASONS=%r, want %r" % (reasons, ",".join(rec["reasons"])))
    if pid is not None and entry.get("_PID") != str(pid):
        problems.append("_PID=%r, want %d" % (entry.get("_PID"), pid))
    assert not problems, "journal entry for %s (%s %s):\n  %s" % (
        rec["decisionId"], outcome, rec["reasons"], "\n  ".join(problems))


def check_journal(g: Gate, recs: Iterable[dict]) -> None:
    recs = list(recs)
    got = g.journal_entries([r["decisionId"] for r in recs])
    missing = [r["decisionId"] for r in recs if r["decisionId"] not in got]
    assert not missing, "no journald entry within %ss for decisions %s (%s)" % (
        JOURNAL_TIMEOUT, missing, [(r["package"]["name"], r["outcome"]) for r in recs
                                   if r["decisionId"] in missing])
    for r in recs:
        entries = got[r["decisionId"]]
        assert len(entries) == 1, "%d journald entries for decision %s" % (
            len(entries), r["decisionId"])
        check_journal_entry(entries[0], r)


def tree(path: Path) -> dict:
    """{relative path: ('file', bytes, mode) | ('dir', mode) | ('link', target)} without
    following symlinks."""
    out = {}
    base = str(path)
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, base)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read(), stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def expected_tree(data: bytes) -> dict:
    """What extraction must produce for an archive (DESIGN §6 modes)."""
    parsed = zipcraft.parse(data)
    out = {}
    for e in parsed.entries:
        name = e.name.decode()
        raw = data[e.data_offset:e.data_end]
        mode = e.external >> 16
        body = zipcraft.inflate(raw) if e.method == zipcraft.DEFLATED else raw
        parts = name.rstrip("/").split("/")
        for i in range(1, len(parts)):
            out.setdefault("/".join(parts[:i]), ("dir", 0o755))
        if name.endswith("/") or stat.S_ISDIR(mode):
            out[name.rstrip("/")] = ("dir", 0o755)
        elif stat.S_ISLNK(mode):
            out[name] = ("link", body.decode())
        else:
            out[name] = ("file", body, 0o755 if mode & 0o111 else 0o644)
    return out


def sign_at(signer, data: bytes, name: str, signed_at: Optional[datetime] = None,
            job_id: Optional[str] = None, validity: timedelta = timedelta(days=4110)) -> bytes:
    """Signs outside the CLI with the signer's keystore key, with a chosen signedAt."""
    return signer.sign_bytes(data, name, signed_at=signed_at, job_id=job_id, validity=validity)


def unsigned_with_foreign_signature(signer, data: bytes, other: bytes, name: str) -> bytes:
    """`data` carrying the signature block made for `other`: a digest mismatch."""
    signed_other = signer.sign_bytes(other, name)
    comment = zipcraft.parse(signed_other).comment
    return zipcraft.with_comment(data, comment)
