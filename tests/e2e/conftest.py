"""Shared fixtures for the signgate end-to-end tests.

Every e2e test drives the real ``signgate`` CLI named by the environment
variable ``SIGNGATE_BIN``; nothing is skipped when it is missing — every test
fails with a message saying how to set it.

Fixtures (session-scoped unless noted; all helpers return plain values):

``signgate``        absolute path of the CLI binary.
``cli_env``         the environment the CLI runs with: a private HOME, a gate
                    socket path that does not exist (so signer commands never
                    reach a real local gate), ``LC_ALL=C.UTF-8``.
``run``             ``run(args, check=None, *, input=None, cwd=None)`` →
                    ``subprocess.CompletedProcess`` (text stdout/stderr) of
                    ``signgate *args``.  ``check=None``: no assertion;
                    ``check=True``: exit status must be 0; ``check=N``: exit
                    status must be N.  On a failed check the assertion message
                    shows the command, status, stdout and stderr.
``make_signer``     ``make_signer(name=None, validity=None)`` → :class:`Signer`:
                    a fresh signer home (``--signer-home DIR``) with one
                    profile (platform ``AWSLambda-SHA384-ECDSA``) and its public
                    profile document written to a file.
``signer``          the default :class:`Signer` (profile ``e2e_default``).
``profile_doc``     path of ``signer``'s public profile document (the
                    ``get-signing-profile`` output), for ``verify --profile-doc``.
``sign``            ``sign(path) -> Path``: sign with ``signer`` through
                    ``start-signing-job``; asserts success and returns the signed
                    package ``DEST/<jobId>.zip``.
``sign_refused``    ``sign_refused(path) -> str``: asserts ``start-signing-job``
                    refuses the source (exit 1, exactly one stderr line naming
                    the file, no output file) and returns that line.
``verify``          ``verify(path, policy='Enforce', *, profile_doc=None,
                    function=None, settings=None, args=()) -> (exit_code,
                    decision_dict_or_None)``; checks the exit code agrees with the
                    decision's outcome (0 promoted/promoted-with-warnings,
                    1 rejected).
``settings_file``   ``settings_file(**limits) -> Path``: a signgated.json-like
                    file ``{"limits": {...}}`` for ``verify --settings``.
``expect_rejected`` ``expect_rejected(path, code, policy='Enforce', *,
                    settings=None, also=()) -> decision``: asserts the package is
                    rejected, ``code`` is among its reasons and no *other*
                    structural code (MALFORMED, LIMIT_EXCEEDED, UNSAFE_CONTENT)
                    is, unless listed in ``also``.
``expect_promoted`` ``expect_promoted(path, policy='Enforce', *, settings=None)
                    -> decision``: asserts outcome ``promoted`` (exit 0).

:class:`Signer` also offers ``cli(*args)``, ``sign(path)``,
``sign_refused(path)``, and ``sign_bytes(archive_bytes, name)`` which signs
an archive *outside* the CLI with the profile's private key found in the
keystore (for packages the signer would refuse to sign), following DESIGN §4.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Optional

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zipcraft  # noqa: E402

PLATFORM_ID = "AWSLambda-SHA384-ECDSA"
SIGNATURE_MAGIC = b"signgate-signature-v1\n"
OUTCOMES = {"promoted", "promoted-with-warnings", "rejected"}
STRUCTURAL = {"MALFORMED", "LIMIT_EXCEEDED", "UNSAFE_CONTENT"}
REASON_CODES = STRUCTURAL | {
    "INTEGRITY", "UNKNOWN_FUNCTION", "UNSIGNED", "UNTRUSTED_PUBLISHER", "EXPIRED",
    "NOT_YET_VALID", "REVOKED", "INTERNAL",
}
CLI_TIMEOUT = 120  # seconds; a hang is a failure, not a wait


def _describe(proc: subprocess.CompletedProcess) -> str:
    return ("command: %s\nexit: %s\nstdout: %s\nstderr: %s"
            % (" ".join(map(str, proc.args)), proc.returncode,
               (proc.stdout or "")[-2000:], (proc.stderr or "")[-2000:]))


def canonical_bytes(data: bytes) -> bytes:
    """DESIGN §4: bytes [0, E+20) then two zero bytes."""
    e = zipcraft.find_eocd(data)
    return data[:e + 20] + b"\0\0"


def sha384_hex(data: bytes) -> str:
    return hashlib.sha384(data).hexdigest()


def split_signature(data: bytes) -> tuple:
    """(envelope dict, payload dict) of a signed package (trusting it)."""
    comment = zipcraft.parse(data).comment
    assert comment.startswith(SIGNATURE_MAGIC), comment[:60]
    env = json.loads(comment[len(SIGNATURE_MAGIC):])
    payload = json.loads(base64.b64decode(env["payload"]))
    return env, payload


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    pt = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(pt), pt, len(payload), payload)


# --------------------------------------------------------------------------
# the binary and the runner

@pytest.fixture(scope="session")
def signgate() -> str:
    path = os.environ.get("SIGNGATE_BIN")
    if not path:
        pytest.fail("SIGNGATE_BIN is not set: build signgate and run e.g. "
                    "SIGNGATE_BIN=/path/to/build/cli/signgate python3 -m pytest tests/e2e",
                    pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("SIGNGATE_BIN=%r is not an executable file" % path, pytrace=False)
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNGATE_")}
    env.update(HOME=str(home), LC_ALL="C.UTF-8",
               SIGNGATE_SOCKET=str(home / "no-gate-here.sock"),
               SIGNGATE_SIGNER_HOME=str(home / "no-default-signer-home"),
               SIGNGATE_BUCKET_ROOT=str(home))
    return env


@pytest.fixture(scope="session")
def run(signgate, cli_env) -> Callable[..., subprocess.CompletedProcess]:
    def _run(args, check=None, *, input=None, cwd=None) -> subprocess.CompletedProcess:
        argv = [signgate] + [str(a) for a in args]
        try:
            proc = subprocess.run(argv, input=input, stdin=None if input is not None
                                  else subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", cwd=cwd, env=cli_env,
                                  timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail("signgate did not finish within %ds: %s" % (CLI_TIMEOUT, argv))
        if check is True:
            assert proc.returncode == 0, _describe(proc)
        elif check is not None and check is not False:
            assert proc.returncode == check, _describe(proc)
        return proc
    return _run


# --------------------------------------------------------------------------
# signers

@dataclass
class Signer:
    """A signer home with one profile.  ``cli(*args)`` runs
    ``signgate --signer-home HOME signer *args``."""

    home: Path
    profile_name: str
    profile_version: str
    arn: str
    profile_version_arn: str
    profile_doc: Path
    profile: dict
    run: Callable
    workdir: Path
    _key_path: Optional[Path] = field(default=None, repr=False)
    _template: Optional[dict] = field(default=None, repr=False)

    @property
    def keyid(self) -> str:
        return "%s/%s" % (self.profile_name, self.profile_version)

    def cli(self, *args, check=None) -> subprocess.CompletedProcess:
        return self.run(["--signer-home", self.home, "signer", *args], check=check)

    def _new_dest(self) -> Path:
        d = self.workdir / ("dest-" + uuid.uuid4().hex[:12])
        d.mkdir()
        return d

    def start_job(self, path) -> tuple:
        """Run start-signing-job into a fresh directory: (proc, dest dir)."""
        dest = self._new_dest()
        proc = self.cli("start-signing-job", "--source", path, "--destination", dest,
                        "--profile-name", self.profile_name)
        return proc, dest

    def sign(self, path) -> Path:
        proc, dest = self.start_job(path)
        assert proc.returncode == 0, "signing failed\n" + _describe(proc)
        try:
            job = json.loads(proc.stdout)
        except ValueError:
            pytest.fail("start-signing-job stdout is not JSON\n" + _describe(proc))
        job_id = job.get("jobId")
        assert isinstance(job_id, str) and uuid.UUID(job_id), job
        out = dest / (job_id + ".zip")
        assert out.is_file(), "no signed package at %s; dest has %s" % (
            out, sorted(p.name for p in dest.iterdir()))
        return out

    def sign_refused(self, path) -> str:
        proc, dest = self.start_job(path)
        assert proc.returncode == 1, "expected signing to be refused\n" + _describe(proc)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, "expected exactly one stderr line\n" + _describe(proc)
        assert os.path.basename(str(path)) in lines[0], (
            "stderr line does not name the file %s: %r" % (path, lines[0]))
        assert list(dest.iterdir()) == [], "refused job left files: %s" % list(dest.iterdir())
        return lines[0]

    # ---- signing outside the CLI, with the keystore's private key ----

    def private_key(self) -> Path:
        """The PEM private key in the keystore whose public half is the profile's."""
        if self._key_path is not None:
            return self._key_path
        want = "".join(self.profile.get("publicKey", "").split())
        for p in sorted(self.home.rglob("*")):
            if not p.is_file() or p.stat().st_size > 65536:
                continue
            try:
                text = p.read_bytes()
            except OSError:
                continue
            if b"PRIVATE KEY-----" not in text:
                continue
            pub = subprocess.run(["openssl", "pkey", "-in", str(p), "-pubout"],
                                 capture_output=True, text=True)
            if pub.returncode == 0 and "".join(pub.stdout.split()) == want:
                self._key_path = p
                return p
        pytest.fail("no PEM private key matching the profile's publicKey under %s" % self.home)

    def _payload_template(self) -> dict:
        """Payload of a package signed by the CLI: the shape sign_bytes follows."""
        if self._template is None:
            src = self.workdir / "template-src.zip"
            src.write_bytes(zipcraft.build([zipcraft.file_entry("t.txt", b"t")]).data)
            _, payload = split_signature(self.sign(src).read_bytes())
            self._template = payload
        return json.loads(json.dumps(self._template))

    def sign_bytes(self, data: bytes, name: str = "function.zip", *,
                   signed_at: Optional[datetime] = None, validity: timedelta = timedelta(days=3650),
                   job_id: Optional[str] = None, keyid: Optional[str] = None,
                   predicate: Optional[dict] = None) -> bytes:
        """Sign an archive (with an empty comment) outside the CLI: returns the
        signed bytes.  The payload copies the CLI's own payload shape; digest,
        size, name, jobId and times are set for ``data``; ``predicate`` entries
        override the predicate's fields."""
        canon = canonical_bytes(data)
        now = signed_at or datetime.now(timezone.utc).replace(microsecond=0)
        stamp = lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        payload = self._payload_template()
        payload["subject"] = [{"name": name, "digest": {"sha384": sha384_hex(canon)}}]
        pred = payload.setdefault("predicate", {})
        pred.update(jobId=job_id or str(uuid.uuid4()), signedAt=stamp(now),
                    signatureExpiresAt=stamp(now + validity), size=len(canon))
        pred.update(predicate or {})
        raw = json.dumps(payload, separators=(",", ":")).encode()
        ptype = "application/vnd.in-toto+json"
        pae_file = self.workdir / ("pae-" + uuid.uuid4().hex)
        pae_file.write_bytes(pae(ptype, raw))
        sig = subprocess.run(["openssl", "dgst", "-sha384", "-sign", str(self.private_key()),
                              str(pae_file)], capture_output=True, check=True).stdout
        env = {"payloadType": ptype, "payload": base64.b64encode(raw).decode(),
               "signatures": [{"keyid": keyid or self.keyid,
                               "sig": base64.b64encode(sig).decode()}]}
        comment = SIGNATURE_MAGIC + json.dumps(env, separators=(",", ":")).encode()
        return zipcraft.with_comment(data, comment)


@pytest.fixture(scope="session")
def make_signer(run, tmp_path_factory) -> Callable[..., Signer]:
    counter = [0]

    def _make(name: Optional[str] = None, validity: Optional[str] = None) -> Signer:
        counter[0] += 1
        name = name or "e2e_signer_%d" % counter[0]
        base = tmp_path_factory.mktemp("signer-" + name)
        home = base / "home"
        home.mkdir()
        work = base / "work"
        work.mkdir()
        args = ["--signer-home", home, "signer", "put-signing-profile", "--profile-name", name,
                "--platform-id", PLATFORM_ID]
        if validity:
            args += ["--signature-validity-period", validity]
        proc = run(args, check=0)
        try:
            put = json.loads(proc.stdout)
        except ValueError:
            pytest.fail("put-signing-profile stdout is not JSON\n" + _describe(proc))
        for key in ("arn", "profileVersion", "profileVersionArn"):
            assert key in put, "put-signing-profile output lacks %r: %s" % (key, put)
        got = run(["--signer-home", home, "signer", "get-signing-profile", "--profile-name",
                   name], check=0)
        try:
            doc = json.loads(got.stdout)
        except ValueError:
            pytest.fail("get-signing-profile stdout is not JSON\n" + _describe(got))
        doc_path = base / ("%s.profile.json" % name)
        doc_path.write_text(got.stdout)
        return Signer(home=home, profile_name=name, profile_version=put["profileVersion"],
                      arn=put["arn"], profile_version_arn=put["profileVersionArn"],
                      profile_doc=doc_path, profile=doc, run=run, workdir=work)
    return _make


@pytest.fixture(scope="session")
def signer(make_signer) -> Signer:
    return make_signer("e2e_default")


@pytest.fixture(scope="session")
def profile_doc(signer) -> Path:
    return signer.profile_doc


@pytest.fixture(scope="session")
def sign(signer) -> Callable[[os.PathLike], Path]:
    return signer.sign


@pytest.fixture(scope="session")
def sign_refused(signer) -> Callable[[os.PathLike], str]:
    return signer.sign_refused


# --------------------------------------------------------------------------
# verification

@pytest.fixture(scope="session")
def verify(run, profile_doc) -> Callable[..., tuple]:
    def _verify(path, policy: str = "Enforce", *, profile_doc=None, function=None,
                settings=None, args=()) -> tuple:
        argv = ["verify", path, "--profile-doc", profile_doc or _default_doc, "--policy", policy]
        if function is not None:
            argv += ["--function", function]
        if settings is not None:
            argv += ["--settings", settings]
        argv += list(args)
        proc = run(argv)
        if proc.returncode not in (0, 1):
            return proc.returncode, None
        try:
            decision = json.loads(proc.stdout)
        except ValueError:
            pytest.fail("verify stdout is not one JSON decision\n" + _describe(proc))
        assert isinstance(decision, dict), decision
        outcome = decision.get("outcome")
        assert outcome in OUTCOMES, "unknown outcome %r\n%s" % (outcome, _describe(proc))
        want_rc = 1 if outcome == "rejected" else 0
        assert proc.returncode == want_rc, (
            "exit status disagrees with outcome %r\n%s" % (outcome, _describe(proc)))
        assert isinstance(decision.get("reasons"), list), decision
        unknown = set(decision["reasons"]) - REASON_CODES
        assert not unknown, "unknown reason codes %s" % unknown
        return proc.returncode, decision

    _default_doc = profile_doc
    return _verify


@pytest.fixture(scope="session")
def settings_file(tmp_path_factory) -> Callable[..., Path]:
    base = tmp_path_factory.mktemp("settings")

    def _make(**limits) -> Path:
        p = base / ("settings-%s.json" % uuid.uuid4().hex[:12])
        p.write_text(json.dumps({"limits": limits}))
        return p
    return _make


@pytest.fixture(scope="session")
def expect_rejected(verify) -> Callable[..., dict]:
    def _expect(path, code: str, policy: str = "Enforce", *, settings=None, also=()) -> dict:
        rc, d = verify(path, policy, settings=settings)
        assert d is not None, "verify exited %d (usage/I-O error) instead of deciding" % rc
        assert d["outcome"] == "rejected" and rc == 1, (
            "expected rejection with %s under %s, got %s %s: %s"
            % (code, policy, d["outcome"], d["reasons"], d.get("message")))
        assert code in d["reasons"], "expected %s in reasons, got %s: %s" % (
            code, d["reasons"], d.get("message"))
        others = (set(d["reasons"]) & STRUCTURAL) - {code} - set(also)
        assert not others, "unexpected extra reasons %s (expected %s): %s" % (
            sorted(others), code, d.get("message"))
        return d
    return _expect


@pytest.fixture(scope="session")
def expect_promoted(verify) -> Callable[..., dict]:
    def _expect(path, policy: str = "Enforce", *, settings=None) -> dict:
        rc, d = verify(path, policy, settings=settings)
        assert d is not None, "verify exited %d (usage/I-O error) instead of deciding" % rc
        assert d["outcome"] == "promoted" and rc == 0, (
            "expected promoted, got %s %s: %s" % (d["outcome"], d["reasons"], d.get("message")))
        return d
    return _expect
