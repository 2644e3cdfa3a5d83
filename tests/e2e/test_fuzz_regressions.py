"""Inputs the fuzzers of tests/fuzz (or their authors) found, pinned against the real CLI.

Each test builds its input with a few lines of Python (no binary files are checked in), writes
it to a temporary file and hands it to ``signgate`` the way an operator would.  The CLI must
answer with its ordinary exit codes (0 promoted, 1 rejected) and a decision record, and
nothing may reach a sanitizer in the -fsanitize=address,undefined build of tests/run.sh.

A test marked ``xfail(strict=True)`` pins a bug that is reported and not fixed yet: it fails
the suite once the bug is fixed, so that the marker is removed and the test keeps guarding.
How to add an input: tests/fuzz/README.md, "Regression inputs".
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

import zipcraft

SIGNATURE_MAGIC = b"signgate-signature-v1\n"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:")


def check_ordinary(proc) -> dict:
    """Exit 0 or 1 with a decision record on stdout, and no sanitizer report."""
    for mark in SANITIZER_MARKS:
        assert mark not in proc.stderr, "sanitizer report:\n" + proc.stderr[-4000:]
    assert proc.returncode in (0, 1), "exit %d, stderr: %s" % (proc.returncode, proc.stderr.strip())
    record = json.loads(proc.stdout)
    assert record["outcome"] in ("promoted", "promoted-with-warnings", "rejected"), record
    return record


def block_claiming(archive: bytes, **predicate) -> bytes:
    """A well-formed signature block whose statement claims archive's real digest and size, with
    the predicate fields given; the signature is a DER-shaped blob no key made."""
    e = zipcraft.find_eocd(archive)
    canon = archive[:e + 20] + b"\0\0"  # DESIGN §4: the canonical bytes
    pred = {"platformId": "Lambda-SHA384-ECDSA", "profileName": "FuzzProfile", "profileVersion": "aaaaaaaaaa",
            "jobId": "3f2b8c1e-9d4a-4e6b-8c7d-1a2b3c4d5e6f", "signedAt": "2026-01-02T03:04:05Z",
            "signatureExpiresAt": "2037-04-02T03:04:05Z", "size": len(canon)}
    pred.update(predicate)
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": "function.zip", "digest": {"sha384": hashlib.sha384(canon).hexdigest()}}],
                 "predicateType": "urn:signgate:predicate:code-signature:v1", "predicate": pred}
    sig = bytes([0x30, 0x66, 0x02, 0x31, 0x00]) + bytes(range(1, 49)) + bytes([0x02, 0x31, 0x00]) + bytes(range(49, 97))
    envelope = {"payloadType": "application/vnd.in-toto+json",
                "payload": base64.b64encode(json.dumps(statement, separators=(",", ":")).encode()).decode(),
                "signatures": [{"keyid": "%s/%s" % (pred["profileName"], pred["profileVersion"]),
                                "sig": base64.b64encode(sig).decode()}]}
    return SIGNATURE_MAGIC + json.dumps(envelope, separators=(",", ":")).encode()


# A claimed signedAt or expiry that an offset carries outside the years 0000-9999 could be parsed
# but never written back into a record: sg_decision_record() failed, verify reported "out of
# memory" and exited 2, and the gate failed the job as INTERNAL without a decision. The block
# needs no key. Fixed: sg_time_parse() refuses such times, so the block is not a valid
# statement (INTEGRITY).
EDGE_TIMES = [
    pytest.param({"signedAt": "0000-01-01T00:00:00+00:01"}, id="signedAt-before-year-0"),
    pytest.param({"signatureExpiresAt": "9999-12-31T23:59:59-00:01"}, id="expiry-after-year-9999"),
]


@pytest.mark.parametrize("claim", EDGE_TIMES)
def test_verify_decides_a_block_claiming_a_time_outside_the_printable_years(run, profile_doc, tmp_path, claim):
    archive = zipcraft.build([zipcraft.file_entry("lambda_function.py", b"x = 1\n")]).data
    path = tmp_path / "function.zip"
    path.write_bytes(zipcraft.with_comment(archive, block_claiming(archive, **claim)))
    record = check_ordinary(run(["verify", path, "--profile-doc", profile_doc]))
    assert record["outcome"] == "rejected" and record["reasons"] == ["INTEGRITY"], record


# --------------------------------------------------------------------------------------------
# The API (fuzz-api). Reproducers here go to a real signgated over its socket.

from gate import UnixHTTP, gate, journald, poll, signgated  # noqa: E402,F401  (fixtures for the gate tests below)


def api_call(g, method: str, path: str, body=None):
    """(status, JSON answer) of one request to g's API, as root."""
    conn = UnixHTTP(g.root / "run/signgate/api.sock", timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, json.loads(text) if text else None
    finally:
        conn.close()


def api_ready(g) -> None:
    sock = g.root / "run/signgate/api.sock"
    assert poll(lambda: sock.exists() and api_call(g, "GET", "/v1/health")[0] == 200, 15, 0.1), g.stderr_tail()


# A revocation whose reason was over the 1,024 bytes a policy store document may hold was
# written anyway: the reload after the write refused the whole store, the gate answered 500
# "the policy store no longer loads", and the file stayed — replacing a good revocation and
# keeping every later reload from succeeding. fuzz-api's check that every change still loads
# (tests/fuzz/fuzz-api.c, seed bad-revoke-long-reason) pins it in the fuzzer; this is the same
# request against the real gate. Fixed: api_route.c checks the document with the store's own
# parser before anything is written, and answers 400.
@pytest.mark.parametrize("kind", ["signature", "profile"])
def test_api_refuses_a_revocation_reason_the_policy_store_could_not_load(gate, make_signer, kind):
    g = gate(settings={})
    api_ready(g)
    if kind == "signature":
        path = "/v1/signatures/3f2b8c1e-9d4a-4e6b-8c7d-1a2b3c4d5e6f/revoke"
        body = {}
        stored = g.policy_dir / "revocations" / "signature-3f2b8c1e-9d4a-4e6b-8c7d-1a2b3c4d5e6f.json"
    else:
        signer = make_signer("fuzz_regression")
        status, doc = api_call(g, "PUT", "/v1/signing-profiles/%s" % signer.profile_name,
                               json.loads(signer.profile_doc.read_text()))
        assert status == 201, doc
        path = "/v1/signing-profiles/%s/revoke" % signer.profile_name
        body = {"profileVersion": signer.profile_version, "effectiveTime": "2020-01-01T00:00:00Z"}
        stored = g.policy_dir / "revocations" / ("profile-%s@%s.json" % (signer.profile_name, signer.profile_version))

    status, doc = api_call(g, "POST", path, dict(body, reason="r" * 1025))
    assert status == 400, doc
    assert doc == {"Type": "User", "Code": "InvalidParameterValueException",
                   "Message": "reason must be a string of at most 1024 bytes"}, doc
    assert not stored.exists(), "a refused revocation was written: %s" % stored

    # 1,024 bytes is the limit itself: written, and the store still loads after a restart.
    status, doc = api_call(g, "POST", path, dict(body, reason="r" * 1024))
    assert status == 200 and doc["reason"] == "r" * 1024, doc
    assert json.loads(stored.read_text())["reason"] == "r" * 1024
    assert g.stop() == 0
    g.start()
    api_ready(g)
    status, doc = api_call(g, "POST", path, dict(body, reason="again"))
    assert status in (200, 409), doc  # 409: a profile revocation may only move earlier
