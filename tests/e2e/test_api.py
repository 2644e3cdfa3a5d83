"""signgated's HTTP/JSON API over its unix socket, end to end (DESIGN §10, docs/api.md).

Every endpoint, its success and its errors, driven by Debian's own curl
(`curl --unix-socket SOCK http://localhost/...`, a client nobody here wrote) and, where curl
is awkward (raw paths, half-sent bodies, garbage), by Python's http.client or a raw socket.
The socket is ROOT/run/signgate/api.sock for a gate started with --root ROOT.

The role matrix runs clients as real non-root users (created here with useradd/groupadd and
removed afterwards) through `setpriv --reuid U --regid G --clear-groups curl ...`.

Run: SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_api.py
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Optional

import pytest

import zipcraft
from gate import (UnixHTTP, Gate, RELEASE_RE, TIME_RE, check_journal, check_record_shape, digest,  # noqa: F401
                  expected_tree, gate, gate_mod, journald, now_utc, package, poll, signgated,
                  simple_package, stamp, strip_chain, tree, unsigned_with_foreign_signature)

CURL = shutil.which("curl") or "/usr/bin/curl"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
CURL_TIMEOUT = 90
API_READY_TIMEOUT = 15.0
DENIED_MESSAGE_ID = "6f07fe6d1a54484983f7247d12c68395"
CSC_ARN_PREFIX = "arn:aws:lambda:us-east-1:111111111111:code-signing-config:"
PROFILE_ARN_PREFIX = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/"
CSC_ID_RE = re.compile(r"^csc-[0-9a-f]{17}$")
ERROR_TYPES = ("User", "Service")
ROOT_UID, ROOT_GID = os.getuid(), os.getgid()


# --------------------------------------------------------------------------
# clients

class Resp:
    """One HTTP exchange: status, headers (lower-case names), body; for curl also its pid."""

    def __init__(self, status: int, headers: dict, body: bytes, *, pid: Optional[int] = None,
                 rc: Optional[int] = None, stderr: str = "", what: str = ""):
        self.status = status
        self.headers = headers
        self.body = body
        self.pid = pid
        self.rc = rc
        self.stderr = stderr
        self.what = what

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError("%s: body is not JSON: %r" % (self.describe(), self.body[:500]))

    def describe(self) -> str:
        return "%s -> %s (curl rc %s) %s %r%s" % (
            self.what, self.status, self.rc, {k: v for k, v in self.headers.items()
                                               if k in ("content-type", "x-amzn-errortype")},
            self.body[:600], (" stderr: " + self.stderr[-300:]) if self.stderr else "")


def parse_http(raw: bytes):
    """(status, headers, body) of the final response in raw (skips 1xx blocks)."""
    while True:
        i = raw.find(b"\r\n\r\n")
        if i < 0:
            return None, {}, raw
        head, rest = raw[:i].decode("iso-8859-1"), raw[i + 4:]
        lines = head.split("\r\n")
        m = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", lines[0])
        if not m:
            return None, {}, raw
        status = int(m.group(1))
        if 100 <= status < 200:
            raw = rest
            continue
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers, rest


def curl(sock, method: str, path: str, *extra, body=None, upload=None, stdin_data=None,
         user: Optional[tuple] = None, headers=(), extra_args=()) -> Resp:
    """curl --unix-socket SOCK -X METHOD http://localhost/PATH; body: dict/list (sent as JSON),
    str or bytes (sent as they are); upload: a file for -T; user: (uid, gid) to run as."""
    argv = [CURL, "-sS", "-i", "--unix-socket", str(sock), "-X", method]
    for h in headers:
        argv += ["-H", h]
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        stdin_data = body.encode() if isinstance(body, str) else body
        argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    if upload is not None:
        argv += ["-T", str(upload)]
    argv += [str(a) for a in extra] + [str(a) for a in extra_args]
    argv.append("http://localhost" + path)
    if user is not None:
        argv = [SETPRIV, "--reuid", str(user[0]), "--regid", str(user[1]), "--clear-groups"] + argv
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(stdin_data, timeout=CURL_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("curl %s %s did not finish within %ds" % (method, path, CURL_TIMEOUT))
    status, hdrs, rest = parse_http(out)
    what = "%s%s %s" % ("(uid %d) " % user[0] if user else "", method, path)
    if status is None:
        raise AssertionError("%s: no HTTP response (curl rc %d): %s %r"
                             % (what, p.returncode, err.decode(errors="replace")[-500:], out[:300]))
    return Resp(status, hdrs, rest, pid=p.pid, rc=p.returncode,
                stderr=err.decode(errors="replace"), what=what)


def UnixHTTPConnection(path, timeout: float = 30):
    return UnixHTTP(path, timeout)


def hc(sock, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None,
       conn: Optional[UnixHTTP] = None) -> Resp:
    """One request with http.client (the path is sent exactly as given)."""
    own = conn is None
    conn = conn or UnixHTTPConnection(sock)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None and "Content-Length" not in hdrs and "Transfer-Encoding" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        try:
            conn.endheaders(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: its answer is still there to read
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                    what="%s %s" % (method, path))
    finally:
        if own:
            conn.close()


def raw_exchange(sock, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends raw bytes on a fresh connection; returns what comes back (one response, or
    everything until EOF/timeout)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(sock))
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            i = out.find(b"\r\n\r\n")
            if i >= 0:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", out[:i])
                if m and len(out) >= i + 4 + int(m.group(1)):
                    break
    finally:
        s.close()
    return out


def expect(resp: Resp, status: int):
    """Asserts the status; returns the JSON body (None for an empty body)."""
    assert resp.status == status, "want %d: %s" % (status, resp.describe())
    if not resp.body:
        return None
    return resp.json()


def expect_error(resp: Resp, status, code, message_has: Optional[str] = None) -> dict:
    """A contract error: status, JSON {"Type","Code","Message"}, X-Amzn-ErrorType: Code.
    status and code may be tuples of acceptable values."""
    statuses = status if isinstance(status, tuple) else (status,)
    codes = code if isinstance(code, tuple) else (code,)
    assert resp.status in statuses, "want %s %s: %s" % (statuses, codes, resp.describe())
    assert resp.headers.get("content-type", "").startswith("application/json"), (
        "error is not application/json: %s" % resp.describe())
    doc = resp.json()
    assert isinstance(doc, dict), resp.describe()
    assert doc.get("Code") in codes, "Code %r, want %s: %s" % (doc.get("Code"), codes, resp.describe())
    assert doc.get("Type") in ERROR_TYPES, "Type %r: %s" % (doc.get("Type"), resp.describe())
    assert isinstance(doc.get("Message"), str) and doc["Message"].strip(), resp.describe()
    assert resp.headers.get("x-amzn-errortype") == doc["Code"], (
        "X-Amzn-ErrorType %r, want %r" % (resp.headers.get("x-amzn-errortype"), doc["Code"]))
    if message_has is not None:
        assert message_has in doc["Message"], "Message does not name %r: %r" % (
            message_has, doc["Message"])
    return doc


def check_api_record(rec: dict, *, function: str, outcome: str, reasons=None, peer=None,
                     kind: str = "function") -> None:
    check_record_shape(rec, source="api")
    assert (rec["kind"], rec["function"], rec["outcome"]) == (kind, function, outcome), (
        rec["kind"], rec["function"], rec["outcome"], rec["reasons"], rec["message"])
    if reasons is not None:
        assert rec["reasons"] == list(reasons), "reasons %s, want %s: %s" % (
            rec["reasons"], list(reasons), rec["message"])
    if peer is not None:
        assert rec["peer"] == {"uid": peer[0], "gid": peer[1], "pid": peer[2]}, (
            "peer %s, want uid/gid/pid %s" % (rec["peer"], peer))


class Api:
    """The API of one gate, as root unless `user` is given to a call."""

    def __init__(self, g: Gate, workdir: Optional[Path] = None):
        self.g = g
        self.sock = g.root / "run" / "signgate" / "api.sock"
        self.workdir = Path(workdir) if workdir else g.root.parent / (g.root.name + "-uploads")
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)

    def wait_ready(self) -> None:
        """Bounded: the socket exists and /v1/health answers."""
        def up():
            self.g._alive()
            if not self.sock.exists():
                return False
            try:
                return hc(self.sock, "GET", "/v1/health").status == 200
            except OSError:
                return False
        if not poll(up, API_READY_TIMEOUT, 0.1):
            raise AssertionError("no API on %s within %ss after READY=1\n%s"
                                 % (self.sock, API_READY_TIMEOUT, self.g.stderr_tail()))

    def call(self, method, path, body=None, **kw) -> Resp:
        try:
            return curl(self.sock, method, path, body=body, **kw)
        except AssertionError:
            self.g._alive()  # a dead gate says so (with its stderr) rather than "no response"
            raise

    def get(self, path, **kw) -> Resp:
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw) -> Resp:
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw) -> Resp:
        return self.call("PUT", path, body, **kw)

    def delete(self, path, **kw) -> Resp:
        return self.call("DELETE", path, **kw)

    def file(self, data: bytes, name: str = "function.zip") -> Path:
        d = self.workdir / uuid.uuid4().hex[:12]
        d.mkdir()
        os.chmod(d, 0o755)
        p = d / name
        p.write_bytes(data)
        os.chmod(p, 0o644)
        return p

    def upload(self, function: str, data: bytes, *, user=None, chunked: bool = False) -> Resp:
        """curl -T function.zip .../v1/functions/F/code, or the chunked form from stdin."""
        path = "/v1/functions/%s/code" % function
        if chunked:
            return self.call("PUT", path, None, extra_args=("-T", "-"),
                             headers=["Transfer-Encoding: chunked"], stdin_data=data, user=user)
        return self.call("PUT", path, None, upload=self.file(data), user=user)

    def upload_layer(self, layer: str, data: bytes, *, user=None) -> Resp:
        return self.call("POST", "/v1/layers/%s/versions" % layer, None,
                         upload=self.file(data, "layer.zip"), user=user)

    # ---- policy set-up through the API ----
    def register(self, signer) -> dict:
        r = self.put("/v1/signing-profiles/%s" % signer.profile_name,
                     signer.profile_doc.read_bytes())
        assert r.status in (200, 201), r.describe()
        return r.json()

    def create_csc(self, signers, policy: Optional[str] = "Enforce", description: str = "e2e") -> dict:
        body = {"Description": description,
                "AllowedPublishers": {"SigningProfileVersionArns": [profile_arn(s) for s in signers]}}
        if policy is not None:
            body["CodeSigningPolicies"] = {"UntrustedArtifactOnDeployment": policy}
        doc = expect(self.post("/v1/code-signing-configs", body), 201)
        return doc["CodeSigningConfig"]

    def create_function(self, name: str, csc: Optional[dict] = None, layers=None) -> dict:
        body = {"FunctionName": name}
        if csc is not None:
            body["CodeSigningConfigArn"] = csc["CodeSigningConfigArn"]
        if layers is not None:
            body["Layers"] = list(layers)
        return expect(self.post("/v1/functions", body), 201)

    def decisions(self, query: str = "") -> list:
        doc = expect(self.get("/v1/decisions" + (("?" + query) if query else "")), 200)
        assert isinstance(doc, dict) and isinstance(doc.get("Decisions"), list), doc
        return doc["Decisions"]


def profile_arn(signer) -> str:
    return PROFILE_ARN_PREFIX + "%s/%s" % (signer.profile_name, signer.profile_version)


def audit_record(g: Gate, decision_id: str) -> dict:
    got = [r for r in g.decisions() if r.get("decisionId") == decision_id]
    assert len(got) == 1, "%d audit records for decision %s" % (len(got), decision_id)
    return got[0]


def settle(g: Gate, timeout: float = 20) -> None:
    if not poll(lambda: g._alive() and not g.staging_entries(), timeout, 0.05):
        raise AssertionError("staging not empty: %s\n%s" % (g.staging_entries(), g.stderr_tail()))


def check_rejected_kept(g: Gate, rec: dict, data: bytes) -> None:
    base = g.rejected / rec["function"] / rec["decisionId"]
    zp, jp = base.with_suffix(".zip"), base.with_suffix(".json")
    assert zp.is_file() and zp.read_bytes() == data, "rejected package not kept at %s" % zp
    assert json.loads(jp.read_text()) == strip_chain(rec), "rejected .json is not the record"


def check_promoted(g: Gate, rec: dict, data: bytes) -> None:
    f, rel = rec["function"], rec["release"]
    assert isinstance(rel, str) and RELEASE_RE.match(rel), rel
    assert rel.endswith("-" + digest(data)[:12]), (rel, digest(data)[:12])
    assert g.current(f) == "releases/" + rel, (g.current(f), rel)
    rdir = g.release_dir(f, rel)
    assert json.loads((rdir / "release.json").read_text()) == strip_chain(rec)
    assert tree(rdir / "task") == expected_tree(data), "task/ is not the package, byte-exact"


def ls(path: Path) -> list:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def uniq(prefix: str) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def walk_values(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from walk_values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk_values(v)


# --------------------------------------------------------------------------
# one gate for most of the module (root is admin)

@pytest.fixture(scope="module")
def world(gate_mod, signer, make_signer):
    g = gate_mod(settings={"unboundFunctions": "reject"})
    api = Api(g)
    api.wait_ready()
    other = make_signer("api_other")
    api.register(signer)
    api.register(other)
    enforce = api.create_csc([signer], "Enforce", "e2e enforce")
    warn = api.create_csc([signer], "Warn", "e2e warn")
    return {"g": g, "api": api, "signer": signer, "other": other, "make_signer": make_signer,
            "enforce": enforce, "warn": warn}


# --------------------------------------------------------------------------
# health, routes

def test_health_answers_status_version_and_counters(world, signgated):
    r = world["api"].get("/v1/health")
    doc = expect(r, 200)
    assert r.headers.get("content-type", "").startswith("application/json"), r.describe()
    assert doc["Status"] == "ok", doc
    assert isinstance(doc["Queued"], int) and doc["Queued"] >= 0, doc
    assert isinstance(doc["InFlight"], int) and doc["InFlight"] >= 0, doc
    v = subprocess.run([signgated, "--version"], capture_output=True, text=True, timeout=30)
    assert doc["Version"] in v.stdout, "health Version %r, signgated --version %r" % (
        doc["Version"], v.stdout)
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["Version"]), doc["Version"]


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/v1"), ("GET", "/v1/nothing-here"), ("GET", "/v2/functions"),
    ("GET", "/v1/functions/f/code/extra"), ("POST", "/v1/nowhere"),
])
def test_unknown_route_is_404_resource_not_found(world, method, path):
    expect_error(world["api"].call(method, path), 404, "ResourceNotFoundException")


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/v1/health"), ("POST", "/v1/health"), ("POST", "/v1/decisions"),
    ("PUT", "/v1/functions"), ("PATCH", "/v1/functions/some-fn"), ("GET", "/v1/functions/f/code"),
    ("DELETE", "/v1/code-signing-configs"), ("GET", "/v1/functions/f/rollback"),
    ("GET", "/v1/signatures/%s/revoke" % uuid.uuid4()), ("DELETE", "/metrics"),
])
def test_known_path_with_wrong_method_is_405(world, method, path):
    expect_error(world["api"].call(method, path), 405, "MethodNotAllowedException")


# --------------------------------------------------------------------------
# uploads: PUT /v1/functions/{F}/code

def test_signed_upload_with_curl_T_is_promoted_with_the_peers_credentials(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("up-signed")
    api.create_function(f, world["enforce"])
    data = s.sign_bytes(simple_package(), "function.zip")
    r = api.upload(f, data)
    rec = expect(r, 200)
    assert r.headers.get("content-type", "").startswith("application/json"), r.describe()
    check_api_record(rec, function=f, outcome="promoted", reasons=[],
                     peer=(ROOT_UID, ROOT_GID, r.pid))
    assert rec["package"]["size"] == len(data) and rec["package"]["sha384"] == digest(data), rec
    assert (rec["codeSigningConfig"], rec["policy"]) == (world["enforce"]["CodeSigningConfigId"],
                                                         "Enforce"), rec
    sig = rec["signature"]
    assert (sig["profileName"], sig["profileVersion"]) == (s.profile_name, s.profile_version), sig
    # durable before the answer: the audit file has exactly this record (seq and prev too)
    assert audit_record(g, rec["decisionId"]) == rec
    check_promoted(g, rec, data)
    doc = expect(api.get("/v1/functions/%s" % f), 200)
    assert doc["CurrentRelease"] == rec["release"], doc
    check_journal(g, [rec])
    settle(g)


def test_unsigned_upload_under_enforce_is_403_code_verification_failed_with_the_decision(world):
    g, api = world["g"], world["api"]
    f = uniq("up-unsigned")
    api.create_function(f, world["enforce"])
    data = simple_package()
    r = api.upload(f, data)
    doc = expect_error(r, 403, "CodeVerificationFailedException")
    assert doc["Type"] == "User", doc
    rec = doc.get("Decision")
    assert isinstance(rec, dict), "the 403 body has no Decision: %s" % doc
    check_api_record(rec, function=f, outcome="rejected", reasons=["UNSIGNED"],
                     peer=(ROOT_UID, ROOT_GID, r.pid))
    assert rec["release"] is None and g.current(f) is None
    assert audit_record(g, rec["decisionId"]) == rec
    check_rejected_kept(g, rec, data)
    check_journal(g, [rec])
    settle(g)


def test_tampered_upload_is_403_invalid_code_signature(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("up-tampered")
    api.create_function(f, world["enforce"])
    good = s.sign_bytes(simple_package("original"), "function.zip")
    # the same signature block on other content: the digest no longer matches
    data = unsigned_with_foreign_signature(s, simple_package("replaced"), simple_package(), "f.zip")
    r = api.upload(f, data)
    doc = expect_error(r, 403, "InvalidCodeSignatureException")
    check_api_record(doc["Decision"], function=f, outcome="rejected", peer=(ROOT_UID, ROOT_GID, r.pid))
    assert "INTEGRITY" in doc["Decision"]["reasons"], doc["Decision"]
    # a flipped byte inside a signed package: also INTEGRITY (or MALFORMED if the flip breaks
    # the structure; this offset is inside the first entry's data)
    e = zipcraft.parse(good).entries[0]
    flipped = bytearray(good)
    flipped[e.data_offset] ^= 0x01
    r2 = api.upload(f, bytes(flipped))
    doc2 = expect_error(r2, 403, ("InvalidCodeSignatureException", "CodeVerificationFailedException"))
    reasons2 = doc2["Decision"]["reasons"]
    assert "INTEGRITY" in reasons2 or "MALFORMED" in reasons2, doc2["Decision"]
    if "INTEGRITY" in reasons2:
        assert doc2["Code"] == "InvalidCodeSignatureException", doc2
    assert g.current(f) is None
    check_journal(g, [doc["Decision"], doc2["Decision"]])
    settle(g)


def test_not_a_zip_upload_is_403_malformed(world):
    g, api = world["g"], world["api"]
    f = uniq("up-malformed")
    api.create_function(f, world["enforce"])
    r = api.upload(f, b"this is not a ZIP archive at all\n" * 20)
    doc = expect_error(r, 403, "CodeVerificationFailedException")
    check_api_record(doc["Decision"], function=f, outcome="rejected", reasons=["MALFORMED"])
    settle(g)


def test_empty_upload_is_a_clear_4xx(world):
    api = world["api"]
    f = uniq("up-empty")
    api.create_function(f, world["enforce"])
    r = api.upload(f, b"")
    if r.status == 403:
        doc = expect_error(r, 403, "CodeVerificationFailedException")
        assert doc["Decision"]["reasons"] == ["MALFORMED"], doc
    else:
        expect_error(r, 400, ("InvalidRequestContentException", "InvalidParameterValueException"))
    settle(world["g"])


def test_warn_policy_upload_is_200_promoted_with_warnings(world):
    g, api = world["g"], world["api"]
    f = uniq("up-warn")
    api.create_function(f, world["warn"])
    data = simple_package()
    rec = expect(api.upload(f, data), 200)
    check_api_record(rec, function=f, outcome="promoted-with-warnings", reasons=["UNSIGNED"])
    assert rec["policy"] == "Warn"
    check_promoted(g, rec, data)
    check_journal(g, [rec])
    settle(g)


def test_upload_for_an_undeclared_function_is_rejected_unknown_function(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("up-nobody")
    r = api.upload(f, s.sign_bytes(simple_package(), "function.zip"))
    doc = expect_error(r, 403, "CodeVerificationFailedException")
    check_api_record(doc["Decision"], function=f, outcome="rejected", reasons=["UNKNOWN_FUNCTION"])
    assert g.current(f) is None
    settle(g)


def test_chunked_upload_from_stdin_is_promoted(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("up-chunked")
    api.create_function(f, world["enforce"])
    # big enough to arrive in many chunks
    data = s.sign_bytes(package(("lambda_function.py", b"def handler(e, c):\n    return 7\n"),
                                ("blob.bin", os.urandom(300 * 1024))), "function.zip")
    r = api.upload(f, data, chunked=True)
    rec = expect(r, 200)
    check_api_record(rec, function=f, outcome="promoted", reasons=[],
                     peer=(ROOT_UID, ROOT_GID, r.pid))
    assert rec["package"]["size"] == len(data) and rec["package"]["sha384"] == digest(data)
    check_promoted(g, rec, data)
    settle(g)


def test_chunked_upload_with_http_client_in_odd_chunks(world):
    """Chunks of 1, 7 and 4093 bytes, with a chunk extension: the body is the same package."""
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("up-chunks")
    api.create_function(f, world["enforce"])
    data = s.sign_bytes(simple_package(), "function.zip")
    sizes, parts, i = [1, 7, 4093], [], 0
    while i < len(data):
        n = sizes[len(parts) % 3]
        piece = data[i:i + n]
        parts.append(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        i += n
    body = b"".join(parts) + b"0\r\n\r\n"
    r = hc(api.sock, "PUT", "/v1/functions/%s/code" % f, body,
           {"Transfer-Encoding": "chunked"})
    rec = expect(r, 200)
    check_api_record(rec, function=f, outcome="promoted")
    assert rec["package"]["sha384"] == digest(data)
    settle(g)


def test_layer_upload_gets_numbered_versions(world):
    g, api, s = world["g"], world["api"], world["signer"]
    layer = uniq("lay")
    f = uniq("uses-layer")
    api.create_function(f, world["enforce"], layers=[layer])
    v1 = s.sign_bytes(package(("python/lib/mod.py", b"A = 1\n")), "layer.zip")
    v2 = s.sign_bytes(package(("python/lib/mod.py", b"A = 2\n")), "layer.zip")
    r1 = expect(api.upload_layer(layer, v1), 200)
    r2 = expect(api.upload_layer(layer, v2), 200)
    for r, want in ((r1, "1"), (r2, "2")):
        check_api_record(r, function=layer, outcome="promoted", kind="layer")
        assert str(r["release"]) == want, r["release"]
    assert (g.layers_dir / layer / "2" / "opt" / "python/lib/mod.py").read_bytes() == b"A = 2\n"
    bad = api.upload_layer(layer, package(("python/lib/mod.py", b"A = 3\n")))
    doc = expect_error(bad, 403, "CodeVerificationFailedException")
    check_api_record(doc["Decision"], function=layer, outcome="rejected", reasons=["UNSIGNED"],
                     kind="layer")
    settle(g)


@pytest.mark.parametrize("path", [
    "/v1/functions/bad%20name/code", "/v1/functions/" + "a" * 65 + "/code",
    "/v1/functions/bad$name/code", "/v1/functions/..%2F..%2Fescape/code",
    "/v1/functions/%2e%2e/code", "/v1/layers/bad.name/versions",
])
def test_upload_with_a_bad_name_is_400_and_stages_nothing(world, path):
    """Answered before the body is read (the client is still sending it)."""
    g, api = world["g"], world["api"]
    before = len(g.decisions())
    method = "POST" if "/layers/" in path else "PUT"
    r = hc(api.sock, method, path, simple_package())
    if "%2F" in path:  # decoded before routing: /v1/functions/../../escape/code is no route
        expect_error(r, (400, 404), ("InvalidParameterValueException", "ResourceNotFoundException"))
    else:
        expect_error(r, 400, "InvalidParameterValueException")
    settle(g)
    assert len(g.decisions()) == before, "a bad name was decided"
    assert not (g.root / "escape").exists() and not (g.root.parent / "escape").exists()


def test_upload_path_traversal_with_raw_dot_segments_is_refused(world):
    g, api = world["g"], world["api"]
    before = len(g.decisions())
    r = hc(api.sock, "PUT", "/v1/functions/../../etc/code", simple_package())
    expect_error(r, (400, 404), ("InvalidParameterValueException", "ResourceNotFoundException"))
    settle(g)
    assert len(g.decisions()) == before


# --------------------------------------------------------------------------
# concurrency: 20 uploads and inbox drops at once, each decided once

def test_20_concurrent_uploads_and_inbox_drops_are_each_decided_once(gate, signer):
    g = gate(settings={"unboundFunctions": "reject"})
    api = Api(g)
    api.wait_ready()
    s = signer
    api.register(s)
    csc = api.create_csc([s])
    fns = [uniq("conc%d" % i) for i in range(5)]
    for f in fns:
        api.create_function(f, csc)
    uploads = []
    for i in range(20):
        f = fns[i % 5]
        signed = i % 5 != 4 or i < 10          # a few unsigned ones in the mix
        data = s.sign_bytes(simple_package(), "function.zip") if signed else simple_package()
        uploads.append((f, data, signed))
    drops = [("%s@drop%d.zip" % (fns[i % 5], i), s.sign_bytes(simple_package(), "f.zip"))
             for i in range(10)]
    results = [None] * len(uploads)
    errors = []
    start = threading.Barrier(len(uploads) + 1)

    def worker(i):
        try:
            start.wait(30)
            results[i] = api.upload(uploads[i][0], uploads[i][1])
        except Exception as e:  # noqa: BLE001
            errors.append("%d: %r" % (i, e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(uploads))]
    for t in threads:
        t.start()
    start.wait(30)
    for name, data in drops:
        g.drop(name, data)
    for t in threads:
        t.join(CURL_TIMEOUT + 30)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads), "an upload never returned"

    ids = []
    for (f, data, signed), r in zip(uploads, results):
        if signed:
            rec = expect(r, 200)
            check_api_record(rec, function=f, outcome="promoted", peer=(ROOT_UID, ROOT_GID, r.pid))
        else:
            rec = expect_error(r, 403, "CodeVerificationFailedException")["Decision"]
            check_api_record(rec, function=f, outcome="rejected", reasons=["UNSIGNED"])
        assert rec["package"]["sha384"] == digest(data)
        ids.append(rec["decisionId"])
    assert len(set(ids)) == len(ids), "two uploads share a decisionId"
    for name, _ in drops:
        g.await_decision(name)
    g.wait_idle()
    recs = g.decisions()
    for did in ids:
        assert sum(1 for r in recs if r["decisionId"] == did) == 1, "upload %s not recorded once" % did
    for name, _ in drops:
        got = g.records_for(name)
        assert len(got) == 1 and got[0]["source"] == "inbox", "drop %s: %d records" % (name, len(got))
    seqs = [r["seq"] for r in recs]
    assert len(seqs) == len(set(seqs)), "duplicate seq in the audit file"
    # the newest promoted record of each function is what is current
    for f in fns:
        promoted = [r for r in recs if r.get("function") == f and r["outcome"] == "promoted"]
        newest = max(promoted, key=lambda r: r["seq"])
        assert g.current(f) == "releases/" + newest["release"], (f, g.current(f), newest["release"])
    settle(g)


# --------------------------------------------------------------------------
# code signing configs

def test_csc_create_get_list_update_delete(world):
    g, api, s, other = world["g"], world["api"], world["signer"], world["other"]
    r = api.post("/v1/code-signing-configs", {
        "Description": "Production code signing policy",
        "AllowedPublishers": {"SigningProfileVersionArns": [profile_arn(s)]},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"}})
    csc = expect(r, 201)["CodeSigningConfig"]
    cid = csc["CodeSigningConfigId"]
    assert CSC_ID_RE.match(cid), cid
    assert csc["CodeSigningConfigArn"].startswith("arn:") and csc["CodeSigningConfigArn"].endswith(
        ":code-signing-config:" + cid), csc
    assert csc["Description"] == "Production code signing policy"
    arns = csc["AllowedPublishers"]["SigningProfileVersionArns"]
    assert len(arns) == 1 and arns[0].endswith("/%s/%s" % (s.profile_name, s.profile_version)), arns
    assert csc["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert TIME_RE.match(csc["LastModified"]), csc["LastModified"]
    # persisted before the answer
    stored = g.policy_dir / "code-signing-configs" / ("%s.json" % cid)
    assert stored.is_file(), "no %s after the 201" % stored
    assert json.loads(stored.read_text())["CodeSigningConfigId"] == cid

    assert expect(api.get("/v1/code-signing-configs/" + cid), 200) == {"CodeSigningConfig": csc}
    by_arn = api.get("/v1/code-signing-configs/" + urllib.parse.quote(csc["CodeSigningConfigArn"], safe=""))
    assert expect(by_arn, 200) == {"CodeSigningConfig": csc}
    listed = expect(api.get("/v1/code-signing-configs"), 200)["CodeSigningConfigs"]
    assert csc in listed and world["enforce"]["CodeSigningConfigId"] in [
        c["CodeSigningConfigId"] for c in listed]

    # the default policy is Enforce
    dflt = api.create_csc([s], policy=None)
    assert dflt["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}, dflt

    # a bound function follows updates on the very next upload
    f = uniq("csc-fn")
    api.create_function(f, csc)
    expect_error(api.upload(f, simple_package()), 403, "CodeVerificationFailedException")
    time.sleep(1.1)  # LastModified has a resolution of a second
    up = expect(api.put("/v1/code-signing-configs/" + cid, {
        "Description": "now warn", "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Warn"}}),
        200)["CodeSigningConfig"]
    assert up["CodeSigningConfigId"] == cid and up["Description"] == "now warn"
    assert up["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert up["AllowedPublishers"] == csc["AllowedPublishers"], "an update changed what it was not given"
    assert up["LastModified"] > csc["LastModified"], (up["LastModified"], csc["LastModified"])
    rec = expect(api.upload(f, simple_package()), 200)
    assert (rec["outcome"], rec["reasons"], rec["policy"]) == (
        "promoted-with-warnings", ["UNSIGNED"], "Warn"), rec
    # publishers replaced: the old signer is no longer trusted, the new one is
    up2 = expect(api.put("/v1/code-signing-configs/" + cid, {
        "AllowedPublishers": {"SigningProfileVersionArns": [profile_arn(other)]},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"}}), 200)["CodeSigningConfig"]
    assert up2["Description"] == "now warn"
    doc = expect_error(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 403,
                       "CodeVerificationFailedException")
    assert doc["Decision"]["reasons"] == ["UNTRUSTED_PUBLISHER"], doc["Decision"]
    rec = expect(api.upload(f, other.sign_bytes(simple_package(), "f.zip")), 200)
    assert rec["outcome"] == "promoted", rec

    # delete: 409 while bound; 204 once unbound; then gone (404) from API and store
    expect_error(api.delete("/v1/code-signing-configs/" + cid), 409, "ResourceConflictException")
    assert stored.is_file()
    assert expect(api.delete("/v1/functions/%s/code-signing-config" % f), 204) is None
    assert expect(api.delete("/v1/code-signing-configs/" + cid), 204) is None
    assert not stored.exists(), "the deleted CSC is still in the policy store"
    expect_error(api.get("/v1/code-signing-configs/" + cid), 404, "ResourceNotFoundException")
    expect_error(api.delete("/v1/code-signing-configs/" + cid), 404, "ResourceNotFoundException")
    assert cid not in [c["CodeSigningConfigId"] for c in
                       expect(api.get("/v1/code-signing-configs"), 200)["CodeSigningConfigs"]]
    settle(g)


def test_csc_delete_by_url_encoded_arn_while_bound_is_409(world):
    api = world["api"]
    csc = api.create_csc([world["signer"]])
    f = uniq("bound")
    api.create_function(f, csc)
    arn = urllib.parse.quote(csc["CodeSigningConfigArn"], safe="")
    doc = expect_error(api.delete("/v1/code-signing-configs/" + arn), 409, "ResourceConflictException")
    assert f in doc["Message"], "the 409 does not name the bound function: %r" % doc["Message"]
    assert expect(api.delete("/v1/functions/" + f), 204) is None
    assert expect(api.delete("/v1/code-signing-configs/" + arn), 204) is None


def _arns(n):
    return [PROFILE_ARN_PREFIX + "P%02d/abcdefghij" % i for i in range(n)]


@pytest.mark.parametrize("body,field", [
    ({}, "AllowedPublishers"),
    ({"AllowedPublishers": {}}, "SigningProfileVersionArns"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": []}}, "SigningProfileVersionArns"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": _arns(21)}}, "SigningProfileVersionArns"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": ["not-an-arn"]}}, None),
    ({"AllowedPublishers": {"SigningProfileVersionArns": "x"}}, "SigningProfileVersionArns"),
    ({"AllowedPublishers": "x"}, "AllowedPublishers"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": [5]}}, None),
    ({"AllowedPublishers": {"SigningProfileVersionArns": _arns(1)},
      "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Maybe"}}, "UntrustedArtifactOnDeployment"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": _arns(1)},
      "CodeSigningPolicies": {"Other": "Enforce"}}, "Other"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": _arns(1)}, "Bogus": 1}, "Bogus"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": _arns(1)}, "Description": 7}, "Description"),
    ({"AllowedPublishers": {"SigningProfileVersionArns": _arns(1)}, "Description": "d" * 257}, "Description"),
    ([], None),
], ids=["empty", "no-arns", "zero-arns", "21-arns", "bad-arn", "arns-not-list", "publishers-not-object",
        "arn-not-string", "bad-policy", "unknown-policy-key", "unknown-field", "description-type",
        "description-long", "array"])
def test_csc_create_with_bad_fields_is_400_invalid_parameter_value(world, body, field):
    g, api = world["g"], world["api"]
    before = ls(g.policy_dir / "code-signing-configs")
    doc = expect_error(api.post("/v1/code-signing-configs", body), 400,
                       ("InvalidParameterValueException", "InvalidRequestContentException"))
    if field:
        assert field in doc["Message"], "Message does not name %s: %r" % (field, doc["Message"])
    assert ls(g.policy_dir / "code-signing-configs") == before


def test_csc_update_with_bad_fields_is_400_and_changes_nothing(world):
    api = world["api"]
    csc = api.create_csc([world["signer"]])
    path = "/v1/code-signing-configs/" + csc["CodeSigningConfigId"]
    for body in ({"Nope": 1}, {"CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "enforce"}},
                 {"AllowedPublishers": {"SigningProfileVersionArns": _arns(21)}},
                 {"CodeSigningConfigId": "csc-00000000000000000"}):
        expect_error(api.put(path, body), 400, "InvalidParameterValueException")
    assert expect(api.get(path), 200) == {"CodeSigningConfig": csc}


@pytest.mark.parametrize("cid,status,code", [
    ("csc-00000000000000000", 404, "ResourceNotFoundException"),
    (urllib.parse.quote(CSC_ARN_PREFIX + "csc-0000000000000abcd", safe=""), 404,
     "ResourceNotFoundException"),
    ("csc-xyz", 400, "InvalidParameterValueException"),
    ("csc-0000000000000000", 400, "InvalidParameterValueException"),     # 16 hex
    ("csc-0000000000000000A", 400, "InvalidParameterValueException"),    # upper case
    ("..%2Ffunctions%2Fx", (400, 404), ("InvalidParameterValueException", "ResourceNotFoundException")),
])
def test_unknown_or_malformed_csc_ids_are_clear_errors(world, cid, status, code):
    api = world["api"]
    path = "/v1/code-signing-configs/" + cid
    expect_error(api.get(path), status, code)
    expect_error(api.put(path, {"Description": "x"}), status, code)
    expect_error(api.delete(path), status, code)


# --------------------------------------------------------------------------
# functions

def test_functions_create_get_list_delete(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("fn")
    r = api.post("/v1/functions", {"FunctionName": f})
    doc = expect(r, 201)
    assert doc["FunctionName"] == f and doc["CodeSigningConfigArn"] is None, doc
    assert doc.get("Layers", []) == [], doc
    assert (g.policy_dir / "functions" / ("%s.json" % f)).is_file(), "not persisted before the 201"
    expect_error(api.post("/v1/functions", {"FunctionName": f}), 409, "ResourceConflictException")

    got = expect(api.get("/v1/functions/" + f), 200)
    assert got["FunctionName"] == f and got["CodeSigningConfigArn"] is None
    assert "CurrentRelease" in got and got["CurrentRelease"] is None, got

    g2 = uniq("fn-bound")
    doc2 = api.create_function(g2, world["enforce"], layers=["some-layer"])
    assert doc2["CodeSigningConfigArn"] == world["enforce"]["CodeSigningConfigArn"], doc2
    assert doc2["Layers"] == ["some-layer"], doc2
    listed = expect(api.get("/v1/functions"), 200)["Functions"]
    names = [x["FunctionName"] for x in listed]
    assert f in names and g2 in names, names
    assert [x for x in listed if x["FunctionName"] == g2][0]["CodeSigningConfigArn"] == \
        world["enforce"]["CodeSigningConfigArn"]

    # deploy, then delete: the declaration goes, the runtime tree stays
    data = s.sign_bytes(simple_package(), "f.zip")
    rec = expect(api.upload(g2, data), 200)
    assert expect(api.get("/v1/functions/" + g2), 200)["CurrentRelease"] == rec["release"]
    assert expect(api.delete("/v1/functions/" + g2), 204) is None
    assert not (g.policy_dir / "functions" / ("%s.json" % g2)).exists()
    expect_error(api.get("/v1/functions/" + g2), 404, "ResourceNotFoundException")
    expect_error(api.delete("/v1/functions/" + g2), 404, "ResourceNotFoundException")
    assert g.current(g2) == "releases/" + rec["release"], "DELETE removed the runtime tree"
    assert g2 not in [x["FunctionName"] for x in expect(api.get("/v1/functions"), 200)["Functions"]]
    # and its next package is for an unknown function
    doc = expect_error(api.upload(g2, s.sign_bytes(simple_package(), "f.zip")), 403,
                       "CodeVerificationFailedException")
    assert doc["Decision"]["reasons"] == ["UNKNOWN_FUNCTION"], doc["Decision"]
    settle(g)


@pytest.mark.parametrize("body,status,code,field", [
    ({"FunctionName": "bad name"}, 400, "InvalidParameterValueException", None),
    ({"FunctionName": "a" * 65}, 400, "InvalidParameterValueException", None),
    ({"FunctionName": ""}, 400, "InvalidParameterValueException", None),
    ({"FunctionName": "../x"}, 400, "InvalidParameterValueException", None),
    ({"FunctionName": 5}, 400, "InvalidParameterValueException", None),
    ({}, 400, "InvalidParameterValueException", "FunctionName"),
    ({"FunctionName": "ok-fn", "Bogus": True}, 400, "InvalidParameterValueException", "Bogus"),
    ({"FunctionName": "ok-fn", "CodeSigningConfigArn": 5}, 400, "InvalidParameterValueException",
     None),
    ({"FunctionName": "ok-fn", "CodeSigningConfigArn": "not-an-arn"}, 400,
     "InvalidParameterValueException", None),
    ({"FunctionName": "ok-fn", "CodeSigningConfigArn": CSC_ARN_PREFIX + "csc-0000000000000dead"}, 404,
     "ResourceNotFoundException", None),
    ({"FunctionName": "ok-fn", "Layers": "x"}, 400, "InvalidParameterValueException", None),
    ({"FunctionName": "ok-fn", "Layers": ["bad layer"]}, 400, "InvalidParameterValueException", None),
], ids=["space", "too-long", "empty", "traversal", "type", "missing", "unknown-field", "arn-type",
        "bad-arn", "unknown-csc", "layers-type", "bad-layer"])
def test_function_create_errors(world, body, status, code, field):
    g, api = world["g"], world["api"]
    doc = expect_error(api.post("/v1/functions", body), status, code)
    if field:
        assert field in doc["Message"], "Message does not name %s: %r" % (field, doc["Message"])
    assert not (g.policy_dir / "functions" / "ok-fn.json").exists()


@pytest.mark.parametrize("path,status,code", [
    ("/v1/functions/never-declared-fn", 404, "ResourceNotFoundException"),
    ("/v1/functions/bad$name", 400, "InvalidParameterValueException"),
    ("/v1/functions/" + "b" * 65, 400, "InvalidParameterValueException"),
])
def test_function_get_errors(world, path, status, code):
    expect_error(world["api"].get(path), status, code)
    expect_error(world["api"].delete(path), status, code)


def test_function_code_signing_config_put_get_delete(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("fcsc")
    api.create_function(f)
    path = "/v1/functions/%s/code-signing-config" % f
    assert expect(api.get(path), 200) == {"CodeSigningConfigArn": "", "FunctionName": f}
    # no CSC and unboundFunctions reject: nothing is deployable
    doc = expect_error(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 403,
                       "CodeVerificationFailedException")
    assert doc["Decision"]["reasons"] == ["UNKNOWN_FUNCTION"], doc["Decision"]

    arn = world["enforce"]["CodeSigningConfigArn"]
    put = expect(api.put(path, {"CodeSigningConfigArn": arn}), 200)
    assert put == {"CodeSigningConfigArn": arn, "FunctionName": f}, put
    assert json.loads((g.policy_dir / "functions" / ("%s.json" % f)).read_text())[
        "CodeSigningConfigArn"] == arn, "binding not persisted before the 200"
    assert expect(api.get(path), 200) == {"CodeSigningConfigArn": arn, "FunctionName": f}
    assert expect(api.get("/v1/functions/" + f), 200)["CodeSigningConfigArn"] == arn
    rec = expect(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 200)
    assert rec["codeSigningConfig"] == world["enforce"]["CodeSigningConfigId"]
    expect_error(api.upload(f, simple_package()), 403, "CodeVerificationFailedException")

    # rebinding to the Warn CSC by its id-bearing ARN takes effect at once
    warn_arn = world["warn"]["CodeSigningConfigArn"]
    expect(api.put(path, {"CodeSigningConfigArn": warn_arn}), 200)
    rec = expect(api.upload(f, simple_package()), 200)
    assert (rec["outcome"], rec["codeSigningConfig"]) == (
        "promoted-with-warnings", world["warn"]["CodeSigningConfigId"]), rec

    assert expect(api.delete(path), 204) is None
    assert expect(api.get(path), 200) == {"CodeSigningConfigArn": "", "FunctionName": f}
    doc = expect_error(api.upload(f, simple_package()), 403, "CodeVerificationFailedException")
    assert doc["Decision"]["reasons"] == ["UNKNOWN_FUNCTION"], doc["Decision"]

    # errors
    expect_error(api.put(path, {"CodeSigningConfigArn": CSC_ARN_PREFIX + "csc-0000000000000beef"}),
                 404, "ResourceNotFoundException")
    expect_error(api.put(path, {"CodeSigningConfigArn": "nope"}), 400, "InvalidParameterValueException")
    expect_error(api.put(path, {"CodeSigningConfigArn": 1}), 400, "InvalidParameterValueException")
    expect_error(api.put(path, {}), 400, "InvalidParameterValueException")
    expect_error(api.put(path, {"CodeSigningConfigArn": arn, "X": 1}), 400,
                 "InvalidParameterValueException", "X")
    nobody = "/v1/functions/%s/code-signing-config" % uniq("nobody")
    expect_error(api.put(nobody, {"CodeSigningConfigArn": arn}), 404, "ResourceNotFoundException")
    expect_error(api.get(nobody), 404, "ResourceNotFoundException")
    expect_error(api.delete(nobody), 404, "ResourceNotFoundException")
    settle(g)


# --------------------------------------------------------------------------
# signing profiles and revocations

def test_profile_registration_takes_effect_on_the_next_upload(world):
    g, api = world["g"], world["api"]
    newcomer = world["make_signer"]("api_newcomer")
    csc = api.create_csc([newcomer])  # allowed by ARN before the gate knows the profile
    f = uniq("prof")
    api.create_function(f, csc)
    doc = expect_error(api.upload(f, newcomer.sign_bytes(simple_package(), "f.zip")), 403,
                       "CodeVerificationFailedException")
    assert doc["Decision"]["reasons"] == ["UNTRUSTED_PUBLISHER"], doc["Decision"]

    path = "/v1/signing-profiles/%s" % newcomer.profile_name
    text = newcomer.profile_doc.read_bytes()
    r = api.put(path, text)
    created = expect(r, 201)
    assert (created["profileName"], created["profileVersion"]) == (
        newcomer.profile_name, newcomer.profile_version), created
    stored = g.policy_dir / "signing-profiles" / ("%s@%s.json" % (newcomer.profile_name,
                                                                  newcomer.profile_version))
    assert stored.is_file(), "profile not in the policy store after the 201"
    assert "PRIVATE" not in stored.read_text()
    again = expect(api.put(path, text), 200)
    assert again["profileVersion"] == newcomer.profile_version
    profiles = expect(api.get("/v1/signing-profiles"), 200)["Profiles"]
    mine = [p for p in profiles if p.get("profileName") == newcomer.profile_name]
    assert len(mine) == 1 and mine[0]["profileVersion"] == newcomer.profile_version, mine
    assert mine[0]["publicKey"] == newcomer.profile["publicKey"]
    assert all("PRIVATE" not in json.dumps(p) for p in profiles)

    rec = expect(api.upload(f, newcomer.sign_bytes(simple_package(), "f.zip")), 200)
    assert rec["outcome"] == "promoted", rec
    settle(g)


def test_profile_registration_errors(world):
    api = world["api"]
    s = world["make_signer"]("api_regerr")
    doc = json.loads(s.profile_doc.read_text())
    path = "/v1/signing-profiles/%s" % s.profile_name
    expect(api.put(path, doc), 201)
    # the name in the path must be the document's
    expect_error(api.put("/v1/signing-profiles/SomeOtherName", doc), 400, "InvalidParameterValueException")
    expect_error(api.put("/v1/signing-profiles/x", dict(doc, profileName="x")), 400,
                 "InvalidParameterValueException")
    expect_error(api.put("/v1/signing-profiles/bad-name", dict(doc, profileName="bad-name")), 400,
                 "InvalidParameterValueException")
    no_key = {k: v for k, v in doc.items() if k != "publicKey"}
    expect_error(api.put(path, no_key), 400, "InvalidParameterValueException", "publicKey")
    expect_error(api.put(path, dict(doc, publicKey="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")),
                 400, "InvalidParameterValueException")
    # a version that is not the key's (DESIGN §3: the version is derived from the key)
    expect_error(api.put(path, dict(doc, profileVersion="aaaaaaaaaa")), 400, "InvalidParameterValueException")
    expect_error(api.put(path, dict(doc, signatureValidityPeriod={"value": 136, "type": "MONTHS"})), 400,
                 "InvalidParameterValueException")
    expect_error(api.put(path, "{"), 400, ("InvalidRequestContentException", "InvalidParameterValueException"))


def test_profile_put_with_another_document_for_the_same_version_is_409(world):
    g, api = world["g"], world["api"]
    s = world["make_signer"]("api_regconflict")
    doc = json.loads(s.profile_doc.read_text())
    path = "/v1/signing-profiles/%s" % s.profile_name
    expect(api.put(path, doc), 201)
    stored = g.policy_dir / "signing-profiles" / ("%s@%s.json" % (s.profile_name, s.profile_version))
    before = json.loads(stored.read_text())
    changed = dict(doc, tags={"Environment": "Elsewhere"})
    expect_error(api.put(path, changed), 409, "ResourceConflictException")
    assert json.loads(stored.read_text()) == before, "the conflicting document replaced the registered one"
    longer = dict(doc, signatureValidityPeriod={"value": 10, "type": "YEARS"})
    expect_error(api.put(path, longer), 409, "ResourceConflictException")
    assert json.loads(stored.read_text()) == before


def test_profile_revocation_takes_effect_on_the_next_upload(world):
    g, api = world["g"], world["api"]
    rv = world["make_signer"]("api_revoked")
    keep = world["signer"]
    api.register(rv)
    csc = api.create_csc([rv, keep])
    f = uniq("rev-prof")
    api.create_function(f, csc)
    signed_before = rv.sign_bytes(simple_package(), "f.zip")  # signed, never seen by the gate
    assert expect(api.upload(f, rv.sign_bytes(simple_package(), "f.zip")), 200)["outcome"] == "promoted"

    eff = stamp(now_utc())
    r = api.post("/v1/signing-profiles/%s/revoke" % rv.profile_name,
                 {"profileVersion": rv.profile_version, "effectiveTime": eff, "reason": "Key compromise"})
    doc = expect(r, 200)
    want = {"type": "profile", "profileName": rv.profile_name, "profileVersion": rv.profile_version,
            "effectiveTime": eff, "reason": "Key compromise"}
    assert doc == want, doc
    stored = [json.loads(p.read_text()) for p in (g.policy_dir / "revocations").iterdir()
              if not p.name.startswith(".")]
    assert want in stored, "revocation not in the policy store after the 200"
    doc = expect_error(api.upload(f, signed_before), 403, "CodeVerificationFailedException")
    assert doc["Decision"]["reasons"] == ["REVOKED"], doc["Decision"]
    # another profile of the same CSC is untouched
    assert expect(api.upload(f, keep.sign_bytes(simple_package(), "f.zip")), 200)["outcome"] == "promoted"
    settle(g)


def test_profile_revocation_effective_time_may_move_earlier_never_later(world):
    api = world["api"]
    s = world["make_signer"]("api_revtime")
    api.register(s)
    path = "/v1/signing-profiles/%s/revoke" % s.profile_name
    now = now_utc()

    def body(t, **kw):
        return dict({"profileVersion": s.profile_version, "effectiveTime": stamp(t),
                     "reason": "Key compromise"}, **kw)
    expect_error(api.post(path, body(now + timedelta(days=1))), 400, "InvalidParameterValueException")
    expect(api.post(path, body(now - timedelta(hours=1))), 200)
    expect_error(api.post(path, body(now - timedelta(minutes=10))), 409, "ResourceConflictException")
    earlier = expect(api.post(path, body(now - timedelta(hours=3))), 200)
    assert earlier["effectiveTime"] == stamp(now - timedelta(hours=3)), earlier
    expect_error(api.post(path, body(now - timedelta(hours=2))), 409, "ResourceConflictException")
    # errors
    expect_error(api.post(path, {"profileVersion": s.profile_version, "effectiveTime": "yesterday",
                                 "reason": "x"}), 400, "InvalidParameterValueException")
    expect_error(api.post(path, {"effectiveTime": stamp(now), "reason": "x"}), 400,
                 "InvalidParameterValueException", "profileVersion")
    expect_error(api.post(path, dict(body(now), Extra=1)), 400, "InvalidParameterValueException", "Extra")
    expect_error(api.post("/v1/signing-profiles/b@d/revoke", body(now)), 400, "InvalidParameterValueException")
    expect_error(api.post(path, body(now, profileVersion="TOO-SHORT")), 400, "InvalidParameterValueException")


def test_revoking_a_profile_the_gate_does_not_know_is_404(world):
    g, api = world["g"], world["api"]
    s = world["make_signer"]("api_revunknown")
    api.register(s)
    now = now_utc()
    body = {"profileVersion": "zzzzzzzzzz", "effectiveTime": stamp(now), "reason": "x"}
    expect_error(api.post("/v1/signing-profiles/%s/revoke" % s.profile_name, body), 404,
                 "ResourceNotFoundException")
    body["profileVersion"] = s.profile_version
    expect_error(api.post("/v1/signing-profiles/NeverRegistered/revoke", body), 404,
                 "ResourceNotFoundException")
    assert not list((g.policy_dir / "revocations").glob("profile-NeverRegistered@*")), (
        "a revocation for an unknown profile was stored")


def test_signature_revocation_by_job_id_takes_effect_on_the_next_upload(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("rev-job")
    api.create_function(f, world["enforce"])
    job = str(uuid.uuid4())
    data = s.sign_bytes(simple_package(), "f.zip", job_id=job)
    doc = expect(api.post("/v1/signatures/%s/revoke" % job, {"reason": "leaked"}), 200)
    assert doc == {"type": "signature", "jobId": job, "reason": "leaked"}, doc
    stored = [json.loads(p.read_text()) for p in (g.policy_dir / "revocations").iterdir()
              if not p.name.startswith(".")]
    assert doc in stored, "revocation not in the policy store after the 200"
    d = expect_error(api.upload(f, data), 403, "CodeVerificationFailedException")["Decision"]
    assert d["reasons"] == ["REVOKED"] and d["signature"]["jobId"] == job, d
    assert expect(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 200)["outcome"] == "promoted"
    expect_error(api.post("/v1/signatures/not-a-uuid/revoke", {"reason": "x"}), 400,
                 "InvalidParameterValueException")
    expect_error(api.post("/v1/signatures/%s/revoke" % uuid.uuid4(), {"reason": 5}), 400,
                 "InvalidParameterValueException", "reason")
    expect_error(api.post("/v1/signatures/%s/revoke" % uuid.uuid4(), {"reason": "x", "More": 1}), 400,
                 "InvalidParameterValueException", "More")
    settle(g)


# --------------------------------------------------------------------------
# rollback

def test_rollback_goes_back_to_the_previous_release(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("rb")
    api.create_function(f, world["enforce"])
    a = expect(api.upload(f, s.sign_bytes(simple_package("A"), "f.zip")), 200)
    time.sleep(1.05)  # releases are named by the second
    b = expect(api.upload(f, s.sign_bytes(simple_package("B"), "f.zip")), 200)
    assert g.current(f) == "releases/" + b["release"]
    doc = expect(api.post("/v1/functions/%s/rollback" % f), 200)
    assert {k: doc.get(k) for k in ("FunctionName", "Release", "PreviousRelease")} == {
        "FunctionName": f, "Release": a["release"], "PreviousRelease": b["release"]}, doc
    assert g.current(f) == "releases/" + a["release"], "current did not move back"
    assert expect(api.get("/v1/functions/" + f), 200)["CurrentRelease"] == a["release"]
    assert (g.release_dir(f, b["release"])).is_dir(), "rollback removed the newer release"
    settle(g)


def test_rollback_is_409_when_the_previous_release_fails_the_current_policy(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("rb-rev")
    api.create_function(f, world["enforce"])
    job = str(uuid.uuid4())
    a = expect(api.upload(f, s.sign_bytes(simple_package("A"), "f.zip", job_id=job)), 200)
    time.sleep(1.05)
    b = expect(api.upload(f, s.sign_bytes(simple_package("B"), "f.zip")), 200)
    expect(api.post("/v1/signatures/%s/revoke" % job, {"reason": "leaked"}), 200)
    doc = expect_error(api.post("/v1/functions/%s/rollback" % f), 409, "ResourceConflictException")
    assert "REVOKED" in doc["Message"], "409 does not name the reason: %r" % doc["Message"]
    assert g.current(f) == "releases/" + b["release"], "a refused rollback moved current"
    assert a["release"] in g.releases(f)

    # the previous release's publisher is no longer allowed by the function's CSC
    other = world["other"]
    f2 = uniq("rb-csc")
    csc = api.create_csc([s, other])
    api.create_function(f2, csc)
    expect(api.upload(f2, s.sign_bytes(simple_package("A2"), "f.zip")), 200)
    time.sleep(1.05)
    b2 = expect(api.upload(f2, other.sign_bytes(simple_package("B2"), "f.zip")), 200)
    expect(api.put("/v1/code-signing-configs/" + csc["CodeSigningConfigId"],
                   {"AllowedPublishers": {"SigningProfileVersionArns": [profile_arn(other)]}}), 200)
    doc = expect_error(api.post("/v1/functions/%s/rollback" % f2), 409, "ResourceConflictException")
    assert "UNTRUSTED_PUBLISHER" in doc["Message"], doc["Message"]
    assert g.current(f2) == "releases/" + b2["release"]
    settle(g)


def test_rollback_without_a_previous_release_is_404(world):
    api, s = world["api"], world["signer"]
    f = uniq("rb-one")
    api.create_function(f, world["enforce"])
    expect_error(api.post("/v1/functions/%s/rollback" % f), 404, "ResourceNotFoundException")
    expect(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 200)
    expect_error(api.post("/v1/functions/%s/rollback" % f), 404, "ResourceNotFoundException")
    expect_error(api.post("/v1/functions/%s/rollback" % uniq("nobody")), 404, "ResourceNotFoundException")
    expect_error(api.post("/v1/functions/bad$name/rollback"), 400, "InvalidParameterValueException")


# --------------------------------------------------------------------------
# decisions, metrics

def test_decisions_query_filters_newest_first(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("dq")
    api.create_function(f, world["enforce"])
    mine = [expect(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 200),
            expect_error(api.upload(f, simple_package()), 403, "CodeVerificationFailedException")["Decision"],
            expect_error(api.upload(f, simple_package()), 403, "CodeVerificationFailedException")["Decision"]]
    newest_first = list(reversed(mine))
    got = api.decisions("function=" + f)
    assert got == newest_first, "decisions for %s:\n%s\nwant\n%s" % (f, got, newest_first)
    assert [r["seq"] for r in got] == sorted((r["seq"] for r in got), reverse=True)
    assert api.decisions("function=%s&outcome=rejected" % f) == newest_first[:2]
    assert api.decisions("function=%s&outcome=promoted" % f) == newest_first[2:]
    assert api.decisions("function=%s&limit=1" % f) == newest_first[:1]
    assert api.decisions("outcome=rejected&function=%s&limit=2" % f) == newest_first[:2]
    assert api.decisions("function=%s&outcome=promoted-with-warnings" % f) == []
    assert api.decisions("function=" + uniq("none")) == []
    everything = g.decisions()
    dflt = api.decisions()
    assert len(dflt) == min(50, len(everything)), (len(dflt), len(everything))
    assert dflt == sorted(everything, key=lambda r: r["seq"], reverse=True)[:50]
    big = api.decisions("limit=1000")
    assert len(big) == min(1000, len(everything))
    rej = api.decisions("outcome=rejected&limit=1000")
    assert rej and all(r["outcome"] == "rejected" for r in rej)
    assert len(rej) == sum(1 for r in everything if r["outcome"] == "rejected")
    for q in ("limit=0", "limit=1001", "limit=abc", "limit=-1", "outcome=nope"):
        expect_error(api.get("/v1/decisions?" + q), 400, "InvalidParameterValueException")


@pytest.mark.parametrize("q", ["function=bad$name", "function=" + "f" * 65, "function="])
def test_decisions_query_with_a_bad_function_name_is_400(world, q):
    expect_error(world["api"].get("/v1/decisions?" + q), 400, "InvalidParameterValueException")


def parse_prometheus(text: str) -> list:
    """[(sample name, labels dict, value)] — with the Prometheus project's own parser when
    python3-prometheus-client is installed, else a strict parser of the text format 0.0.4."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None
    if text_string_to_metric_families is not None:
        out = []
        for fam in text_string_to_metric_families(text):
            for smp in fam.samples:
                out.append((smp.name, dict(smp.labels), float(smp.value)))
        return out
    name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
    label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    sample = re.compile(r"^(%s)(?:\{((?:%s)(?:,(?:%s))*,?)?\})? (\S+)(?: -?\d+)?$" % (name, label, label))
    out, types = [], {}
    assert text.endswith("\n"), "exposition does not end with a newline"
    for line in text.split("\n")[:-1]:
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s)(?: (.*))?$" % name, line)
            if m and m.group(1) == "TYPE":
                assert m.group(3) in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert m.group(2) not in types, "TYPE given twice: " + line
                types[m.group(2)] = m.group(3)
            continue
        m = sample.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        v = m.group(3)
        value = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(v)
        out.append((m.group(1), labels, float(v) if value is None else value))
    return out


def scrape(api: Api) -> list:
    r = api.get("/metrics")
    assert r.status == 200, r.describe()
    assert r.headers.get("content-type", "").startswith("text/plain"), r.describe()
    return parse_prometheus(r.body.decode())


def total(samples, name, **labels) -> float:
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items()))


def test_metrics_parse_as_prometheus_text_and_count_decisions(world):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("met")
    api.create_function(f, world["enforce"])
    settle(g)
    before = scrape(api)  # a counter with no decisions yet may have no sample at all
    names = {n for n, _, _ in before}
    for want in ("signgate_verify_seconds_bucket", "signgate_verify_seconds_sum",
                 "signgate_verify_seconds_count", "signgate_promote_seconds_bucket",
                 "signgate_promote_seconds_count", "signgate_inbox_queue_depth",
                 "signgate_uploads_in_flight", "signgate_build_info"):
        assert want in names, "no %s in /metrics (have %s)" % (want, sorted(names))
    ver = expect(api.get("/v1/health"), 200)["Version"]
    assert total(before, "signgate_build_info", version=ver) == 1.0
    # every decision so far is counted, by outcome
    recs = g.decisions()
    for outcome in ("promoted", "promoted-with-warnings", "rejected"):
        if outcome == "rejected":
            continue  # a rejection may carry several reasons: counted per reason below
        assert total(before, "signgate_decisions_total", outcome=outcome) == sum(
            1 for r in recs if r["outcome"] == outcome), outcome

    expect(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 200)
    expect_error(api.upload(f, simple_package()), 403, "CodeVerificationFailedException")
    expect_error(api.upload(f, simple_package()), 403, "CodeVerificationFailedException")
    expect_error(api.upload(f, unsigned_with_foreign_signature(s, simple_package(), simple_package(), "x")),
                 403, "InvalidCodeSignatureException")
    settle(g)
    after = scrape(api)
    assert "signgate_decisions_total" in {n for n, _, _ in after}, "no signgate_decisions_total samples"

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)
    assert delta("signgate_decisions_total", outcome="promoted") == 1
    assert delta("signgate_decisions_total", outcome="rejected", reason="UNSIGNED") == 2
    assert delta("signgate_decisions_total", outcome="rejected", reason="INTEGRITY") == 1
    assert delta("signgate_decisions_total", outcome="promoted-with-warnings") == 0
    assert delta("signgate_verify_seconds_count") == 4
    assert delta("signgate_promote_seconds_count") >= 1
    for h in ("signgate_verify_seconds", "signgate_promote_seconds"):
        buckets = sorted(((float(l["le"]), v) for n, l, v in after if n == h + "_bucket"))
        assert buckets and buckets[-1][0] == math.inf, "%s has no +Inf bucket" % h
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "%s buckets are not cumulative: %s" % (h, buckets)
        assert counts[-1] == total(after, h + "_count"), "%s +Inf bucket != _count" % h
        assert total(after, h + "_sum") >= 0
    assert total(after, "signgate_uploads_in_flight") == 0
    assert total(after, "signgate_inbox_queue_depth") >= 0


# --------------------------------------------------------------------------
# HTTP robustness and JSON errors

GARBAGE = {
    "word": b"GARBAGE\r\n\r\n",
    "binary": bytes(range(256)) * 4 + b"\r\n\r\n",
    "no-version": b"GET /v1/health\r\n\r\n",
    "bad-version": b"GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n",
    "bad-header-line": b"GET /v1/health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "bad-content-length": b"PUT /v1/functions/x/code HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "bad-chunk": (b"PUT /v1/functions/x/code HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"ZZZ\r\nhello\r\n0\r\n\r\n"),
    "two-lengths": (b"PUT /v1/functions/x/code HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                    b"Content-Length: 7\r\n\r\nhello"),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_malformed_http_gets_400_and_the_gate_keeps_serving(world, kind):
    g, api = world["g"], world["api"]
    before = len(g.decisions())
    out = raw_exchange(api.sock, GARBAGE[kind])
    status, _, _ = parse_http(out)
    if kind == "bad-version":
        assert status in (400, 505), "want 400 or 505 for %s, got %r" % (kind, out[:200])
    elif kind == "word":
        # libmicrohttpd closes on a request line of one token without answering
        assert status == 400 or out == b"", "want 400 or a close for %s, got %r" % (kind, out[:200])
    else:
        assert status == 400, "want 400 for %s, got %r" % (kind, out[:200])
    assert g.running(), "the gate died on malformed HTTP (%s)\n%s" % (kind, g.stderr_tail())
    assert expect(api.get("/v1/health"), 200)["Status"] == "ok"
    settle(g)
    assert len(g.decisions()) == before, "malformed HTTP led to a decision"


def test_oversized_headers_get_431_or_400_and_normal_headers_work(world):
    g, api = world["g"], world["api"]
    ok = hc(api.sock, "GET", "/v1/health", headers={"X-Pad": "p" * 2000})
    assert ok.status == 200, ok.describe()
    big = raw_exchange(api.sock, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    status, _, _ = parse_http(big)
    assert status in (431, 400), "oversized header: %r" % big[:200]
    many = raw_exchange(api.sock, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" +
                        b"".join(b"X-H%d: v\r\n" % i for i in range(3000)) + b"\r\n")
    status, _, _ = parse_http(many)
    assert status in (431, 400), "too many headers: %r" % many[:200]
    long_url = raw_exchange(api.sock, b"GET /v1/functions/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = parse_http(long_url)
    assert status in (414, 431, 400), "over-long request line: %r" % long_url[:200]
    assert g.running()
    assert expect(api.get("/v1/health"), 200)["Status"] == "ok"


def test_keep_alive_serves_several_requests_on_one_connection(world):
    api = world["api"]
    conn = UnixHTTPConnection(api.sock)
    try:
        for _ in range(3):
            r = hc(api.sock, "GET", "/v1/health", conn=conn)
            assert r.status == 200, r.describe()
        r = hc(api.sock, "GET", "/v1/functions/never-there-fn", conn=conn)
        expect_error(r, 404, "ResourceNotFoundException")
        r = hc(api.sock, "GET", "/v1/health", conn=conn)
        assert r.status == 200
    finally:
        conn.close()


@pytest.mark.parametrize("method,path,body,status,codes", [
    ("POST", "/v1/functions", b"{", 400, ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/functions", b"", 400, ("InvalidRequestContentException",)),
    ("POST", "/v1/functions", b"not json at all", 400,
     ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/functions", b'{"FunctionName":"a"} trailing', 400,
     ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/functions", b'{"FunctionName":"a\xff\xfe"}', 400,
     ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/functions", b'"just a string"', 400,
     ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/functions", b'null', 400, ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/code-signing-configs", b"[1,2", 400,
     ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/code-signing-configs", b"", 400, ("InvalidRequestContentException",)),
    ("PUT", "/v1/signing-profiles/SomeProfile", b"", 400, ("InvalidRequestContentException",)),
    ("POST", "/v1/signatures/%s/revoke" % uuid.uuid4(), b"}", 400,
     ("InvalidRequestContentException", "InvalidParameterValueException")),
    ("POST", "/v1/signing-profiles/SomeProfile/revoke", b"", 400, ("InvalidRequestContentException",)),
    ("POST", "/v1/functions", b'{"FunctionName":"' + b"x" * 70000 + b'"}', 413, ("RequestTooLargeException",)),
    ("POST", "/v1/code-signing-configs", b'{"Description":"' + b"d" * (65 * 1024) + b'"}', 413,
     ("RequestTooLargeException",)),
], ids=["truncated", "empty", "not-json", "trailing", "bad-utf8", "string", "null", "csc-truncated",
        "csc-empty", "profile-empty", "revoke-bad", "revoke-profile-empty", "over-64k", "csc-over-64k"])
def test_bad_json_bodies_are_clear_4xx_json_errors(world, method, path, body, status, codes):
    g, api = world["g"], world["api"]
    before = {sub: ls(g.policy_dir / sub) for sub in ("functions", "code-signing-configs")}
    expect_error(hc(api.sock, method, path, body, {"Content-Type": "application/json"}), status, codes)
    assert {sub: ls(g.policy_dir / sub) for sub in before} == before
    assert expect(api.get("/v1/health"), 200)["Status"] == "ok"


# --------------------------------------------------------------------------
# a client that goes away mid-upload

@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_client_disconnecting_mid_upload_leaves_nothing_and_no_decision(world, framing):
    g, api, s = world["g"], world["api"], world["signer"]
    f = uniq("dc")
    api.create_function(f, world["enforce"])
    settle(g)
    before = len(g.decisions())
    part = os.urandom(512 * 1024)
    if framing == "chunked":
        head = (b"PUT /v1/functions/%s/code HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" % f.encode())
        body = b"%x\r\n%s\r\n" % (len(part), part)
    else:
        head = (b"PUT /v1/functions/%s/code HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Length: %d\r\n\r\n" % (f.encode(), 8 * 1024 * 1024))
        body = part
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sk.settimeout(30)
    sk.connect(str(api.sock))
    try:
        sk.sendall(head + body)
        # the body streams into a private staging file as it arrives (DESIGN §10)
        assert poll(lambda: g.staging_entries(), 10, 0.02), "nothing staged while the body arrives"
    finally:
        sk.close()
    settle(g)
    assert g.running(), g.stderr_tail()
    # a later upload is decided; the abandoned one never is
    rec = expect(api.upload(f, s.sign_bytes(simple_package(), "f.zip")), 200)
    recs = g.decisions()
    assert len(recs) == before + 1 and recs[-1]["decisionId"] == rec["decisionId"], (
        "the abandoned upload was decided: %s" % [(r["function"], r["outcome"]) for r in recs[before:]])
    assert g.current(f) == "releases/" + rec["release"]
    assert expect(api.get("/v1/health"), 200)["InFlight"] == 0
    settle(g)


# --------------------------------------------------------------------------
# package limit (own gate: limits.packageBytes small)

def test_body_over_the_package_limit_is_413_and_leaves_nothing_in_staging(gate, signer):
    g = gate(settings={"unboundFunctions": "reject", "limits": {"packageBytes": 8192}})
    api = Api(g)
    api.wait_ready()
    api.register(signer)
    csc = api.create_csc([signer])
    api.create_function("lim", csc)
    big = signer.sign_bytes(package(("blob.bin", os.urandom(64 * 1024))), "f.zip")
    assert len(big) > 8192
    before = len(g.decisions())
    for chunked in (False, True):
        r = api.upload("lim", big, chunked=chunked)
        expect_error(r, 413, "RequestTooLargeException")
        settle(g)
        assert g.running(), g.stderr_tail()
    # far over the limit, announced up front
    r = hc(api.sock, "PUT", "/v1/functions/lim/code", b"x" * 100,
           {"Content-Length": str(10 ** 12)})
    expect_error(r, 413, "RequestTooLargeException")
    settle(g)
    assert g.current("lim") is None
    decided = g.decisions()[before:]
    for rec in decided:  # if the gate records the refusal, it is a LIMIT_EXCEEDED rejection
        assert rec["outcome"] == "rejected" and rec["reasons"] == ["LIMIT_EXCEEDED"], rec
    small = signer.sign_bytes(simple_package(), "f.zip")
    assert len(small) <= 8192
    rec = expect(api.upload("lim", small), 200)
    assert rec["outcome"] == "promoted"
    settle(g)


# --------------------------------------------------------------------------
# persistence across a restart; policy events in the audit file

def test_policy_changes_persist_across_a_restart_and_are_audited(gate, signer, make_signer, run):
    g = gate(settings={"unboundFunctions": "reject"})
    api = Api(g)
    api.wait_ready()
    rv = make_signer("api_persist_rv")

    def policy_events():
        return [r for r in g.records() if r.get("event") == "policy"]
    n0 = len(policy_events())
    api.register(signer)
    api.register(rv)
    csc = api.create_csc([signer, rv], "Enforce", "persist")
    warn = api.create_csc([signer], "Warn", "persist warn")
    api.create_function("keep-fn", csc, layers=["keep-layer"])
    api.create_function("warn-fn")
    expect(api.put("/v1/functions/warn-fn/code-signing-config", {"CodeSigningConfigArn":
                                                                warn["CodeSigningConfigArn"]}), 200)
    api.create_function("gone-fn")
    expect(api.delete("/v1/functions/gone-fn"), 204)
    job = str(uuid.uuid4())
    expect(api.post("/v1/signatures/%s/revoke" % job, {"reason": "leaked"}), 200)
    eff = stamp(now_utc() - timedelta(minutes=5))
    expect(api.post("/v1/signing-profiles/%s/revoke" % rv.profile_name,
                    {"profileVersion": rv.profile_version, "effectiveTime": eff, "reason": "Key compromise"}), 200)
    updated = expect(api.put("/v1/code-signing-configs/" + csc["CodeSigningConfigId"],
                             {"Description": "persist, updated"}), 200)["CodeSigningConfig"]
    changes = 11
    events = policy_events()
    assert len(events) - n0 >= changes, "%d policy audit lines for %d changes" % (len(events) - n0, changes)

    def state():
        return (expect(api.get("/v1/functions"), 200)["Functions"],
                expect(api.get("/v1/code-signing-configs"), 200)["CodeSigningConfigs"],
                expect(api.get("/v1/signing-profiles"), 200)["Profiles"],
                expect(api.get("/v1/functions/warn-fn/code-signing-config"), 200))
    key = lambda x: json.dumps(x, sort_keys=True)  # noqa: E731
    before = [sorted(map(key, x)) if isinstance(x, list) else x for x in state()]
    decided = expect(api.upload("keep-fn", signer.sign_bytes(simple_package(), "f.zip")), 200)
    listed = api.decisions()
    assert g.stop() == 0
    g.start()
    api.wait_ready()
    after = [sorted(map(key, x)) if isinstance(x, list) else x for x in state()]
    assert after == before, "the policy changed across a restart"
    assert expect(api.get("/v1/code-signing-configs/" + csc["CodeSigningConfigId"]), 200)[
        "CodeSigningConfig"] == updated
    expect_error(api.get("/v1/functions/gone-fn"), 404, "ResourceNotFoundException")
    # the decisions made before the restart are still listed
    assert api.decisions() == listed and listed[0]["decisionId"] == decided["decisionId"], (
        "GET /v1/decisions lost the decisions made before the restart")
    # and it still decides by it
    d = expect_error(api.upload("keep-fn", signer.sign_bytes(simple_package(), "f.zip", job_id=job)), 403,
                     "CodeVerificationFailedException")["Decision"]
    assert d["reasons"] == ["REVOKED"], d
    d = expect_error(api.upload("keep-fn", rv.sign_bytes(simple_package(), "f.zip")), 403,
                     "CodeVerificationFailedException")["Decision"]
    assert d["reasons"] == ["REVOKED"], d
    assert expect(api.upload("keep-fn", signer.sign_bytes(simple_package(), "f.zip")), 200)["outcome"] == "promoted"
    rec = expect(api.upload("warn-fn", simple_package()), 200)
    assert rec["outcome"] == "promoted-with-warnings", rec
    # the audit file (decisions and policy events) still chains
    p = run(["audit", "verify", g.audit_path])
    assert p.returncode == 0, "audit verify failed: %s %s" % (p.stdout, p.stderr)
    settle(g)


# --------------------------------------------------------------------------
# roles: real non-root users through the kernel's SO_PEERCRED

class Users:
    """Users and groups created for one module, removed at its end."""

    def __init__(self):
        self.sfx = uuid.uuid4().hex[:6]
        self.users, self.groups = [], []

    def group(self, base: str) -> str:
        name = "sg%s%s" % (base, self.sfx)
        subprocess.run(["groupadd", name], check=True, capture_output=True)
        self.groups.append(name)
        return name

    def user(self, base: str, primary: Optional[str] = None, extra=()) -> dict:
        name = "sg%s%s" % (base, self.sfx)
        argv = ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin"]
        if primary:
            argv += ["-g", primary]
        if extra:
            argv += ["-G", ",".join(extra)]
        subprocess.run(argv + [name], check=True, capture_output=True)
        self.users.append(name)
        import pwd
        pw = pwd.getpwnam(name)
        return {"name": name, "uid": pw.pw_uid, "gid": pw.pw_gid, "cred": (pw.pw_uid, pw.pw_gid)}

    def cleanup(self):
        for u in self.users:
            subprocess.run(["userdel", u], capture_output=True)
        for gname in self.groups:
            subprocess.run(["groupdel", gname], capture_output=True)


@pytest.fixture(scope="module")
def roles(signgated, journald, signer):
    if os.getuid() != 0:
        pytest.skip("the role matrix creates users: run as root")
    users = Users()
    base = Path(tempfile.mkdtemp(prefix="sgt-roles-", dir="/tmp"))
    os.chmod(base, 0o755)  # non-root clients must reach the socket (pytest's tmp is 0700)
    g = None
    try:
        deployers = users.group("dep")
        readers = users.group("rdg")
        u = {
            "admin": users.user("adm"),
            "deployer": users.user("dpl", primary=deployers),
            "reader": users.user("rdr"),
            "reader_sup": users.user("sup", extra=[readers]),
            "nobody": users.user("nob"),
        }
        settings = {"unboundFunctions": "reject", "socket": {"mode": "0666"},
                    "roles": {"admin": {"users": [u["admin"]["name"]], "groups": []},
                              "deployer": {"users": [], "groups": [deployers]},
                              "reader": {"users": [u["reader"]["name"]], "groups": [readers]}}}
        g = Gate(signgated, base / "root", journald)
        g.write_settings(settings)
        g.start()
        api = Api(g, base / "uploads")
        api.wait_ready()
        api.register(signer)
        csc = api.create_csc([signer])
        api.create_function("roles-fn", csc)
        yield {"g": g, "api": api, "u": u, "csc": csc, "signer": signer}
    finally:
        if g is not None:
            g.close()
        users.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def test_socket_mode_follows_the_settings(roles):
    import stat as st
    mode = st.S_IMODE(os.stat(roles["api"].sock).st_mode)
    assert mode == 0o666, "socket mode %o, settings say 0666" % mode


READS = [("GET", "/v1/functions"), ("GET", "/v1/functions/roles-fn"), ("GET", "/v1/code-signing-configs"),
         ("GET", "/v1/signing-profiles"), ("GET", "/v1/decisions"),
         ("GET", "/v1/functions/roles-fn/code-signing-config")]


@pytest.mark.parametrize("who", ["reader", "reader_sup", "deployer", "admin"])
def test_every_role_can_read(roles, who):
    api, cred = roles["api"], roles["u"][who]["cred"]
    for method, path in READS:
        expect(api.call(method, path, user=cred), 200)
    csc = roles["csc"]["CodeSigningConfigId"]
    expect(api.get("/v1/code-signing-configs/" + csc, user=cred), 200)


@pytest.mark.parametrize("who", ["reader", "reader_sup"])
def test_reader_cannot_deploy_or_change_policy(roles, who):
    g, api, s = roles["g"], roles["api"], roles["signer"]
    cred = roles["u"][who]["cred"]
    before = len(g.decisions())
    expect_error(api.upload("roles-fn", s.sign_bytes(simple_package(), "f.zip"), user=cred), 403,
                 "AccessDeniedException")
    expect_error(api.post("/v1/functions", {"FunctionName": "by-" + who}, user=cred), 403,
                 "AccessDeniedException")
    expect_error(api.post("/v1/code-signing-configs", {"AllowedPublishers": {
        "SigningProfileVersionArns": [profile_arn(s)]}}, user=cred), 403, "AccessDeniedException")
    expect_error(api.post("/v1/signatures/%s/revoke" % uuid.uuid4(), {"reason": "x"}, user=cred), 403,
                 "AccessDeniedException")
    expect_error(api.post("/v1/functions/roles-fn/rollback", user=cred), 403, "AccessDeniedException")
    settle(g)
    assert len(g.decisions()) == before
    assert not (g.policy_dir / "functions" / ("by-%s.json" % who)).exists()


def test_deployer_can_upload_but_not_change_policy(roles):
    g, api, s = roles["g"], roles["api"], roles["signer"]
    d = roles["u"]["deployer"]
    revdir = g.policy_dir / "revocations"
    revs_before = ls(revdir)
    data = s.sign_bytes(simple_package(), "f.zip")
    r = api.upload("roles-fn", data, user=d["cred"])
    rec = expect(r, 200)
    check_api_record(rec, function="roles-fn", outcome="promoted", peer=(d["uid"], d["gid"], r.pid))
    check_journal(g, [rec])
    rl = api.upload_layer("roles-layer", s.sign_bytes(package(("x.py", b"X=1\n")), "l.zip"), user=d["cred"])
    assert rl.status in (200, 403), rl.describe()
    if rl.status == 403:  # decided (the layer is used by no function), not denied
        assert rl.json()["Code"] != "AccessDeniedException", rl.describe()
    chunked = api.upload("roles-fn", s.sign_bytes(simple_package(), "f.zip"), user=d["cred"], chunked=True)
    assert expect(chunked, 200)["peer"]["uid"] == d["uid"]
    for method, path, body in [
            ("POST", "/v1/functions", {"FunctionName": "by-deployer"}),
            ("DELETE", "/v1/functions/roles-fn", None),
            ("POST", "/v1/code-signing-configs", {"AllowedPublishers": {
                "SigningProfileVersionArns": [profile_arn(s)]}}),
            ("PUT", "/v1/code-signing-configs/" + roles["csc"]["CodeSigningConfigId"], {"Description": "x"}),
            ("DELETE", "/v1/code-signing-configs/" + roles["csc"]["CodeSigningConfigId"], None),
            ("PUT", "/v1/functions/roles-fn/code-signing-config",
             {"CodeSigningConfigArn": roles["csc"]["CodeSigningConfigArn"]}),
            ("DELETE", "/v1/functions/roles-fn/code-signing-config", None),
            ("PUT", "/v1/signing-profiles/" + s.profile_name, json.loads(s.profile_doc.read_text())),
            ("POST", "/v1/signing-profiles/%s/revoke" % s.profile_name,
             {"profileVersion": s.profile_version, "effectiveTime": stamp(now_utc()), "reason": "x"}),
            ("POST", "/v1/signatures/%s/revoke" % uuid.uuid4(), {"reason": "x"}),
            ("POST", "/v1/functions/roles-fn/rollback", None)]:
        expect_error(api.call(method, path, body, user=d["cred"]), 403, "AccessDeniedException")
    # nothing changed
    assert expect(api.get("/v1/functions/roles-fn"), 200)["CodeSigningConfigArn"] == \
        roles["csc"]["CodeSigningConfigArn"]
    assert not (g.policy_dir / "functions" / "by-deployer.json").exists()
    assert ls(revdir) == revs_before
    settle(g)


def test_admin_user_can_do_everything(roles):
    g, api, s = roles["g"], roles["api"], roles["signer"]
    a = roles["u"]["admin"]
    expect(api.post("/v1/functions", {"FunctionName": "by-admin"}, user=a["cred"]), 201)
    csc = expect(api.post("/v1/code-signing-configs", {"AllowedPublishers": {
        "SigningProfileVersionArns": [profile_arn(s)]}}, user=a["cred"]), 201)["CodeSigningConfig"]
    expect(api.put("/v1/functions/by-admin/code-signing-config",
                   {"CodeSigningConfigArn": csc["CodeSigningConfigArn"]}, user=a["cred"]), 200)
    r = api.upload("by-admin", s.sign_bytes(simple_package(), "f.zip"), user=a["cred"])
    check_api_record(expect(r, 200), function="by-admin", outcome="promoted", peer=(a["uid"], a["gid"], r.pid))
    expect(api.put("/v1/signing-profiles/" + s.profile_name, s.profile_doc.read_bytes(), user=a["cred"]), 200)
    expect(api.post("/v1/signatures/%s/revoke" % uuid.uuid4(), {"reason": "admin test"}, user=a["cred"]), 200)
    expect_error(api.post("/v1/functions/by-admin/rollback", user=a["cred"]), 404, "ResourceNotFoundException")
    expect(api.delete("/v1/functions/by-admin/code-signing-config", user=a["cred"]), 204)
    expect(api.delete("/v1/code-signing-configs/" + csc["CodeSigningConfigId"], user=a["cred"]), 204)
    expect(api.delete("/v1/functions/by-admin", user=a["cred"]), 204)
    settle(g)


def test_unlisted_user_is_denied_and_the_denial_is_audited_and_journaled(roles, journald):
    g, api, s = roles["g"], roles["api"], roles["signer"]
    n = roles["u"]["nobody"]
    # anyone who can connect gets health and metrics
    expect(api.get("/v1/health", user=n["cred"]), 200)
    m = api.get("/metrics", user=n["cred"])
    assert m.status == 200, m.describe()
    before = len(g.decisions())
    denied = []
    for method, path, body in [("GET", "/v1/functions", None), ("GET", "/v1/decisions", None),
                               ("POST", "/v1/functions", {"FunctionName": "by-nobody"})]:
        r = api.call(method, path, body, user=n["cred"])
        expect_error(r, 403, "AccessDeniedException")
        denied.append(r)
    r = api.upload("roles-fn", s.sign_bytes(simple_package(), "f.zip"), user=n["cred"])
    expect_error(r, 403, "AccessDeniedException")
    denied.append(r)
    settle(g)
    assert len(g.decisions()) == before, "a denied upload was decided"
    assert not (g.policy_dir / "functions" / "by-nobody.json").exists()

    # the audit file has the denials, with the peer's uid, gid and pid
    def denial_lines():
        return [rec for rec in g.records()
                if not ("decisionId" in rec and "outcome" in rec)
                and any(k == "uid" and v == n["uid"] for k, v in walk_values(rec))]
    lines = denial_lines()
    assert len(lines) >= len(denied), "%d audit lines with uid %d for %d denials: %s" % (
        len(lines), n["uid"], len(denied), lines)
    pids = {r.pid for r in denied}
    seen_pids = {v for rec in lines for k, v in walk_values(rec) if k == "pid"}
    assert pids <= seen_pids, "audit denial lines lack the client pids %s (have %s)" % (pids, seen_pids)
    assert any(v == n["gid"] for rec in lines for k, v in walk_values(rec) if k == "gid"), lines

    # and journald: one entry per denial with the MESSAGE_ID of an authorization failure,
    # naming the peer's uid, gid and pid (in MESSAGE or in fields)
    def entry_for(r):
        for e in journald.query("MESSAGE_ID=" + DENIED_MESSAGE_ID, "_PID=%d" % g.pid):
            vals = {str(v) for k, v in e.items() if not k.startswith("_")}
            text = " ".join(vals)
            if all(re.search(r"(^|\D)%d(\D|$)" % x, text) for x in (n["uid"], n["gid"], r.pid)):
                return e
        return None
    missing = poll(lambda: not [r for r in denied if entry_for(r) is None], 15, 0.2)
    assert missing, "no journald entry (MESSAGE_ID=%s) naming uid %d, gid %d and the pid for: %s\n%s" % (
        DENIED_MESSAGE_ID, n["uid"], n["gid"], [r.what for r in denied if entry_for(r) is None],
        [e.get("MESSAGE") for e in journald.query("MESSAGE_ID=" + DENIED_MESSAGE_ID, "_PID=%d" % g.pid)][-4:])
    assert all(entry_for(r).get("PRIORITY") in ("3", "4", "5") for r in denied)
    # denial lines are chained like every other audit line
    assert all(re.fullmatch(r"[0-9a-f]{64}", str(rec.get("prev"))) for rec in lines), lines


def test_root_is_admin_without_being_listed(roles):
    api = roles["api"]
    expect(api.post("/v1/functions", {"FunctionName": "by-root"}), 201)
    expect(api.delete("/v1/functions/by-root"), 204)
