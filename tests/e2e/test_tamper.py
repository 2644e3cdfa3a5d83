"""Tamper resistance of a signed package (DESIGN §4, §5), through the real CLI.

One package is signed by ``signgate signer start-signing-job``; every test
changes it — one byte in each region, located by parsing the signed archive,
or a whole comment swapped, truncated or padded — and requires ``signgate
verify`` to reject it with INTEGRITY or MALFORMED, under Enforce and under Warn.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import zipcraft as zc
from zipcraft import DEFLATED, crc32

E = zc.file_entry
D = zc.dir_entry

CODE = (b"def handler(event, context):\n    return {'ok': True, 'event': event}\n") * 12
TAMPER_CODES = {"INTEGRITY", "MALFORMED"}
POLICIES = ["Enforce", "Warn"]
B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
SIGNATURE_MAGIC = b"signgate-signature-v1\n"


def canonical_bytes(data: bytes) -> bytes:
    """DESIGN §4: bytes [0, E+20) then two zero bytes."""
    return zc.parse(data).canonical(data)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    pt = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(pt), pt, len(payload), payload)


def split_signature(data: bytes) -> tuple:
    """(envelope, payload) of a signed package, trusting it."""
    comment = zc.parse(data).comment
    assert comment.startswith(SIGNATURE_MAGIC), comment[:60]
    env = json.loads(comment[len(SIGNATURE_MAGIC):])
    return env, json.loads(base64.b64decode(env["payload"]))


def source_entries(variant=b""):
    return [D("lib/"),
            E("index.py", CODE + variant, method=DEFLATED),
            E("lib/data.txt", b"stored configuration\n" * 4 + variant),
            E("lib/stream.py", CODE[:400] + variant, method=DEFLATED, descriptor=True)]


@dataclass
class Signed:
    source: bytes
    data: bytes
    parsed: zc.Parsed
    path: Path

    def entry(self, name: bytes) -> zc.ParsedEntry:
        for e in self.parsed.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def comment_span(self, key: str) -> tuple:
        """(absolute start, end) of the string value of ``key`` in the envelope."""
        c = self.parsed.comment
        m = re.search(rb'"%s"\s*:\s*"([^"]*)"' % key.encode(), c)
        assert m, "no %r in the envelope: %r" % (key, c[:200])
        base = self.parsed.comment_offset
        return base + m.start(1), base + m.end(1)

    def key_offset(self, key: str) -> int:
        """Absolute offset of the first letter of ``"key"`` in the envelope."""
        i = self.parsed.comment.find(b'"%s"' % key.encode())
        assert i >= 0, key
        return self.parsed.comment_offset + i + 1


def _sign_source(tmp_dir: Path, sign, entries, name="function.zip") -> Signed:
    src_bytes = zc.build(entries).data
    src = tmp_dir / name
    src.write_bytes(src_bytes)
    signed = sign(src)
    data = signed.read_bytes()
    return Signed(src_bytes, data, zc.parse(data), signed)


@pytest.fixture(scope="module")
def pkg(tmp_path_factory, sign) -> Signed:
    return _sign_source(tmp_path_factory.mktemp("tamper-a"), sign, source_entries())


@pytest.fixture(scope="module")
def other(tmp_path_factory, sign) -> Signed:
    return _sign_source(tmp_path_factory.mktemp("tamper-b"), sign, source_entries(b"# v2\n"))


@pytest.fixture
def check_tampered(tmp_path, verify):
    """check_tampered(data, policies=POLICIES, codes=TAMPER_CODES): rejected,
    with at least one of ``codes`` among the reasons, under each policy."""
    def _check(data: bytes, policies=POLICIES, codes=TAMPER_CODES):
        p = tmp_path / "tampered.zip"
        p.write_bytes(data)
        out = {}
        for policy in policies:
            rc, d = verify(p, policy)
            assert d is not None, "verify exited %d instead of deciding" % rc
            assert d["outcome"] == "rejected", "tampered package %s under %s: %s" % (
                d["outcome"], policy, d)
            assert set(d["reasons"]) & set(codes), (
                "expected one of %s under %s, got %s: %s"
                % (sorted(codes), policy, d["reasons"], d.get("message")))
            out[policy] = d
        return out
    return _check


def b64_flip(data: bytes, offset: int) -> bytes:
    """Change the base64 character at ``offset`` to the one whose 6-bit value
    differs in the top bit: always a data bit, so decoded bytes change."""
    b = bytearray(data)
    b[offset] = B64[B64.index(b[offset]) ^ 0x20]
    return bytes(b)


# ==========================================================================
# controls: the untampered package, the format

@pytest.mark.parametrize("policy", POLICIES)
def test_untampered_signed_package_is_promoted(pkg, policy, verify):
    rc, d = verify(pkg.path, policy)
    assert (rc, d["outcome"]) == (0, "promoted"), d
    assert d["reasons"] == [], d
    sig = d["signature"]
    assert sig and sig.get("profileName") == "e2e_default", d


def test_signing_changes_only_the_eocd_comment(pkg):
    e = pkg.parsed.eocd_offset
    assert pkg.data[:e + 20] == pkg.source[:e + 20]
    assert pkg.parsed.comment.startswith(SIGNATURE_MAGIC)


def test_signed_digest_is_sha384_of_the_unsigned_source(pkg, verify):
    want = hashlib.sha384(pkg.source).hexdigest()
    assert hashlib.sha384(canonical_bytes(pkg.data)).hexdigest() == want
    _, payload = split_signature(pkg.data)
    assert payload["subject"][0]["digest"]["sha384"] == want
    assert payload["predicate"]["size"] == len(pkg.source)
    rc, d = verify(pkg.path)
    assert d["package"]["sha384"] == want, d["package"]


def test_signature_verifies_with_stock_openssl(pkg, signer, tmp_path):
    env, _ = split_signature(pkg.data)
    assert env["signatures"][0]["keyid"] == signer.keyid
    (tmp_path / "pub.pem").write_text(signer.profile["publicKey"])
    (tmp_path / "pae.bin").write_bytes(pae(env["payloadType"], base64.b64decode(env["payload"])))
    (tmp_path / "sig.der").write_bytes(base64.b64decode(env["signatures"][0]["sig"]))
    r = subprocess.run(["openssl", "dgst", "-sha384", "-verify", str(tmp_path / "pub.pem"),
                        "-signature", str(tmp_path / "sig.der"), str(tmp_path / "pae.bin")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("policy", POLICIES)
def test_stripped_signature_is_treated_as_unsigned(pkg, policy, tmp_path, verify):
    p = tmp_path / "stripped.zip"
    p.write_bytes(zc.with_comment(pkg.data, b""))
    rc, d = verify(p, policy)
    assert d["reasons"] == ["UNSIGNED"], d
    assert d["outcome"] == ("rejected" if policy == "Enforce" else "promoted-with-warnings")


# ==========================================================================
# one flipped byte in each region

def _region_offsets(pkg: Signed) -> dict:
    r = {}
    stored = pkg.entry(b"lib/data.txt")
    deflated = pkg.entry(b"index.py")
    streamed = pkg.entry(b"lib/stream.py")
    dirent = pkg.entry(b"lib/")
    r["data-stored-first-byte"] = stored.data_offset
    r["data-stored-last-byte"] = stored.data_end - 1
    r["data-deflated-first-byte"] = deflated.data_offset
    r["data-deflated-middle-byte"] = (deflated.data_offset + deflated.data_end) // 2
    r["data-deflated-last-byte"] = deflated.data_end - 1
    r["data-streamed-middle-byte"] = (streamed.data_offset + streamed.data_end) // 2
    r["data-descriptor-signature"] = streamed.data_end
    r["data-descriptor-crc"] = streamed.data_end + 4
    r["data-descriptor-csize"] = streamed.data_end + 8
    for fname, off, _ in zc.LOCAL_FIELDS:
        r["local-%s" % fname] = deflated.local_offset + off
    r["local-name"] = deflated.local_offset + zc.LOCAL_FIXED + 2
    for fname, off, _ in zc.CENTRAL_FIELDS:
        r["central-%s" % fname] = deflated.central_offset + off
    r["central-name"] = deflated.central_offset + zc.CENTRAL_FIXED + 2
    r["central-external-mode-high-byte"] = deflated.central_offset + 41
    r["central-directory-entry-external"] = dirent.central_offset + 38
    for fname, off, size in zc.EOCD_FIELDS:
        r["eocd-%s" % fname] = pkg.parsed.eocd_offset + off
        if size > 1:
            r["eocd-%s-high-byte" % fname] = pkg.parsed.eocd_offset + off + size - 1
    c = pkg.parsed.comment_offset
    r["magic-first-byte"] = c
    r["magic-middle-byte"] = c + 9
    r["magic-newline"] = c + len(SIGNATURE_MAGIC) - 1
    r["envelope-first-byte"] = c + len(SIGNATURE_MAGIC)
    r["envelope-last-byte"] = pkg.parsed.size - 1
    for key in ("payloadType", "payload", "signatures", "keyid", "sig"):
        r["envelope-key-%s" % key] = pkg.key_offset(key)
    s, e = pkg.comment_span("payloadType")
    r["envelope-payloadType-value"] = (s + e) // 2
    s, e = pkg.comment_span("keyid")
    r["envelope-keyid-value-last"] = e - 1
    return r


def _b64_offsets(pkg: Signed) -> dict:
    r = {}
    for key in ("payload", "sig"):
        s, e = pkg.comment_span(key)
        value = pkg.data[s:e]
        last = s + len(value.rstrip(b"=")) - 1
        r["%s-base64-first-char" % key] = s
        r["%s-base64-middle-char" % key] = (s + last) // 2
        r["%s-base64-last-data-char" % key] = last
    return r


REGIONS = [
    "data-stored-first-byte", "data-stored-last-byte", "data-deflated-first-byte",
    "data-deflated-middle-byte", "data-deflated-last-byte", "data-streamed-middle-byte",
    "data-descriptor-signature", "data-descriptor-crc", "data-descriptor-csize",
] + ["local-%s" % f for f, _, _ in zc.LOCAL_FIELDS] + ["local-name"] + [
    "central-%s" % f for f, _, _ in zc.CENTRAL_FIELDS] + [
    "central-name", "central-external-mode-high-byte", "central-directory-entry-external",
] + ["eocd-%s" % f for f, _, _ in zc.EOCD_FIELDS] + [
    "eocd-%s-high-byte" % f for f, _, s in zc.EOCD_FIELDS if s > 1] + [
    "magic-first-byte", "magic-middle-byte", "magic-newline", "envelope-first-byte",
    "envelope-last-byte", "envelope-key-payloadType", "envelope-key-payload",
    "envelope-key-signatures", "envelope-key-keyid", "envelope-key-sig",
    "envelope-payloadType-value", "envelope-keyid-value-last",
]

B64_REGIONS = ["%s-base64-%s" % (k, w) for k in ("payload", "sig")
               for w in ("first-char", "middle-char", "last-data-char")]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("region", REGIONS)
def test_rejects_one_flipped_byte(region, policy, pkg, check_tampered):
    offset = _region_offsets(pkg)[region]
    check_tampered(zc.flip(pkg.data, offset, 0x01), [policy])


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("region", B64_REGIONS)
def test_rejects_one_changed_base64_character(region, policy, pkg, check_tampered):
    offset = _b64_offsets(pkg)[region]
    check_tampered(b64_flip(pkg.data, offset), [policy])


def test_rejects_every_single_byte_flip_of_headers_and_comment_under_warn(pkg, tmp_path,
                                                                          verify):
    """Sweep: each byte of every local header, the central directory, the EOCD
    and the whole signature block (base64 characters changed to another base64
    character), and every 16th data byte, flipped one at a time."""
    offsets = set()
    for e in pkg.parsed.entries:
        hdr_end = e.data_offset
        offsets.update(range(e.local_offset, hdr_end))
        offsets.update(range(e.data_offset, e.data_end, 16))
    offsets.update(range(pkg.parsed.cd_offset, pkg.parsed.size))
    b64_spans = [pkg.comment_span("payload"), pkg.comment_span("sig")]
    p = tmp_path / "swept.zip"
    bad = []
    for off in sorted(offsets):
        in_b64 = any(s <= off < e for s, e in b64_spans) and pkg.data[off] != ord("=")
        p.write_bytes(b64_flip(pkg.data, off) if in_b64 else zc.flip(pkg.data, off))
        rc, d = verify(p, "Warn")
        if d is None or d["outcome"] != "rejected" or not set(d["reasons"]) & TAMPER_CODES:
            bad.append((off, rc, d and d["outcome"], d and d["reasons"]))
    assert not bad, "%d flips not rejected as INTEGRITY/MALFORMED, first: %s" % (len(bad),
                                                                                  bad[:10])


# ==========================================================================
# consistent edits: structurally valid archives whose digest no longer matches

def test_rejects_content_replaced_with_crcs_fixed_as_integrity(pkg, check_tampered):
    e = pkg.entry(b"lib/data.txt")
    old = pkg.data[e.data_offset:e.data_end]
    new = old.replace(b"configuration", b"CONFIGURATION")
    assert len(new) == len(old) and new != old
    data = bytearray(pkg.data)
    data[e.data_offset:e.data_end] = new
    struct.pack_into("<I", data, e.local_offset + 14, crc32(new))
    struct.pack_into("<I", data, e.central_offset + 16, crc32(new))
    out = check_tampered(bytes(data), codes={"INTEGRITY"})
    assert all("MALFORMED" not in d["reasons"] for d in out.values()), out


def test_rejects_added_entry_with_original_signature_as_integrity(pkg, check_tampered):
    evil = zc.build(source_entries() + [E("lib/backdoor.py", b"import os\n")]).data
    check_tampered(zc.with_comment(evil, pkg.parsed.comment), codes={"INTEGRITY"})


def test_rejects_removed_entry_with_original_signature_as_integrity(pkg, check_tampered):
    fewer = zc.build(source_entries()[:-1]).data
    check_tampered(zc.with_comment(fewer, pkg.parsed.comment), codes={"INTEGRITY"})


def test_rejects_signed_package_with_appended_archive_reusing_its_signature(pkg,
                                                                            check_tampered):
    # keep every signed byte, then append an evil entry, a new central
    # directory listing old and new entries, and a new EOCD carrying the old
    # signature block: the last EOCD now describes a different archive.
    old_end = pkg.parsed.size
    evil_data = b"import os; os.system('id')\n"
    evil_local = zc.local_header("evil.py", crc=crc32(evil_data), csize=len(evil_data),
                                 usize=len(evil_data))
    cd = pkg.data[pkg.parsed.cd_offset:pkg.parsed.cd_offset + pkg.parsed.cd_size]
    cd += zc.central_header("evil.py", crc=crc32(evil_data), csize=len(evil_data),
                            usize=len(evil_data), external=zc.unix_external(0o100644),
                            offset=old_end)
    cd_offset = old_end + len(evil_local) + len(evil_data)
    n = len(pkg.parsed.entries) + 1
    data = (pkg.data + evil_local + evil_data + cd
            + zc.eocd(disk_entries=n, total_entries=n, cd_size=len(cd), cd_offset=cd_offset,
                      comment=pkg.parsed.comment))
    check_tampered(data)


def test_rejects_signed_package_with_prepended_stub_and_adjusted_offsets(pkg, check_tampered):
    stub = b"#!/bin/sh\nexit 0\n" + b"\0" * 15
    es = source_entries()
    data = zc.build(es, prepend=stub, comment=pkg.parsed.comment).data
    check_tampered(data)


# ==========================================================================
# the signature block as a whole

def _replace_value(pkg: Signed, key: str, value: bytes) -> bytes:
    """The package with the envelope's string value for ``key`` replaced and
    the EOCD comment length fixed."""
    s, e = pkg.comment_span(key)
    c0 = pkg.parsed.comment_offset
    comment = pkg.parsed.comment
    return zc.with_comment(pkg.data, comment[:s - c0] + value + comment[e - c0:])


def _with_keyid(pkg: Signed, keyid: bytes) -> bytes:
    return _replace_value(pkg, "keyid", keyid)


def test_rejects_another_packages_signature_block(pkg, other, check_tampered):
    out = check_tampered(zc.with_comment(pkg.data, other.parsed.comment))
    assert all("INTEGRITY" in d["reasons"] for d in out.values()), out


def test_rejects_own_payload_with_another_packages_signature(pkg, other, check_tampered):
    s, e = other.comment_span("sig")
    check_tampered(_replace_value(pkg, "sig", other.data[s:e]))


def test_rejects_another_packages_payload_with_own_signature(pkg, other, check_tampered):
    s, e = other.comment_span("payload")
    check_tampered(_replace_value(pkg, "payload", other.data[s:e]))


@pytest.mark.parametrize("keyid", ["wrong-version", "other-profile", "arn-of-other-version",
                                   "empty", "name-only"])
def test_rejects_changed_keyid(keyid, pkg, signer, check_tampered):
    values = {
        "wrong-version": ("%s/%s" % (signer.profile_name, "a" * len(signer.profile_version))),
        "other-profile": "e2e_other_profile/" + signer.profile_version,
        "arn-of-other-version": ("arn:aws:signer:local:000000000000:/signing-profiles/%s/%s"
                                 % (signer.profile_name, "b" * len(signer.profile_version))),
        "empty": "",
        "name-only": signer.profile_name,
    }
    out = check_tampered(_with_keyid(pkg, values[keyid].encode()))
    assert all("INTEGRITY" in d["reasons"] for d in out.values()), out


def test_rejects_keyid_naming_a_real_second_profile(pkg, make_signer, check_tampered):
    second = make_signer("e2e_second")
    check_tampered(_with_keyid(pkg, second.keyid.encode()))


@pytest.mark.parametrize("key", ["payloadType", "payload", "signatures", "keyid", "sig"])
def test_rejects_envelope_key_with_changed_letter_case(key, pkg, check_tampered):
    # JSON keys are case-sensitive: "PayloadType" is not "payloadType"
    check_tampered(zc.flip(pkg.data, pkg.key_offset(key), 0x20))


def test_rejects_noncanonical_base64_in_signature_block(tmp_path_factory, sign, verify):
    """A base64 string whose unused trailing bits are set decodes (leniently) to
    the same bytes, but is not the signed text: a changed byte, rejected."""
    d = tmp_path_factory.mktemp("noncanon")
    for i in range(6):
        s = _sign_source(d, sign, source_entries(), name="f%s.zip" % ("x" * i))
        for key in ("payload", "sig"):
            a, b = s.comment_span(key)
            value = s.data[a:b]
            pad = len(value) - len(value.rstrip(b"="))
            if pad:
                last = a + len(value) - pad - 1
                # with padding the lowest bit of the last character carries no data
                data = bytearray(s.data)
                data[last] = B64[B64.index(s.data[last]) ^ 0x01]
                assert data[last] != s.data[last]
                p = d / "noncanon.zip"
                p.write_bytes(bytes(data))
                for policy in POLICIES:
                    rc, dec = verify(p, policy)
                    assert dec["outcome"] == "rejected", (key, policy, dec)
                    assert set(dec["reasons"]) & TAMPER_CODES, dec
                return
    pytest.fail("no padded base64 value in six signings")


TRUNCATIONS = {
    "last-byte-length-fixed": (lambda c: c[:-1], True),
    "last-ten-bytes-length-fixed": (lambda c: c[:-10], True),
    "to-magic-line-length-fixed": (lambda c: SIGNATURE_MAGIC, True),
    "magic-without-newline-length-fixed": (lambda c: SIGNATURE_MAGIC[:-1], True),
    "half-length-fixed": (lambda c: c[:len(c) // 2], True),
    "last-byte-length-kept": (lambda c: c[:-1], False),
    "whole-comment-length-kept": (lambda c: b"", False),
}


@pytest.mark.parametrize("case", list(TRUNCATIONS))
def test_rejects_truncated_signature_block(case, pkg, check_tampered):
    cut, fix = TRUNCATIONS[case]
    new = cut(pkg.parsed.comment)
    data = zc.with_comment(pkg.data, new, None if fix else len(pkg.parsed.comment))
    codes = TAMPER_CODES if fix else {"MALFORMED"}
    check_tampered(data, codes=codes)


PADDINGS = {
    "newline": b"\n",
    "crlf": b"\r\n",
    "space": b" ",
    "nul": b"\x00",
    "nul-then-junk": b"\x00junk",
    "junk": b"junk",
    "second-envelope": None,           # the envelope repeated
    "closing-brace": b"}",
}


@pytest.mark.parametrize("case", list(PADDINGS))
@pytest.mark.parametrize("fix_length", [True, False], ids=["length-fixed", "length-kept"])
def test_rejects_padded_signature_block(case, fix_length, pkg, check_tampered):
    c = pkg.parsed.comment
    pad = PADDINGS[case] if PADDINGS[case] is not None else c[len(SIGNATURE_MAGIC):]
    data = zc.with_comment(pkg.data, c + pad, None if fix_length else len(c))
    check_tampered(data, codes=TAMPER_CODES if fix_length else {"MALFORMED"})


def test_rejects_signature_block_with_bytes_before_magic(pkg, check_tampered):
    check_tampered(zc.with_comment(pkg.data, b" " + pkg.parsed.comment))


def test_rejects_signature_block_with_crlf_magic_line(pkg, check_tampered):
    c = pkg.parsed.comment
    check_tampered(zc.with_comment(pkg.data, c.replace(SIGNATURE_MAGIC,
                                                        SIGNATURE_MAGIC[:-1] + b"\r\n", 1)))
