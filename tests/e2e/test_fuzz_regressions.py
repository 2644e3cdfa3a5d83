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
