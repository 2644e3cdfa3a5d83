"""DESIGN §6 package safety, end to end through the real CLI.

Every hostile archive is made inside the test (zipcraft writes the bytes) and
must be rejected by ``signgate verify`` with the exact reason code, and refused
by ``signgate signer start-signing-job``.  Legitimate archives made by Info-ZIP,
Python's zipfile and zipcraft must sign and verify as ``promoted``: the checks
must not reject what real tools produce.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zipfile

import pytest

import zipcraft as zc
from zipcraft import DEFLATED, STORED, crc32, deflate

E = zc.file_entry
D = zc.dir_entry
L = zc.symlink_entry

CODE = (b"import json\n\n\ndef handler(event, context):\n"
        b"    return {'statusCode': 200, 'body': json.dumps(event)}\n") * 8


def base_entries():
    """A small legitimate package: a directory, a deflated and a stored file."""
    return [D("lib/"), E("index.py", CODE, method=DEFLATED), E("lib/data.txt", b"stored data\n"),
            E("lib/util.py", CODE[:200], method=DEFLATED)]


def base_archive(**kw) -> bytes:
    return zc.build(base_entries(), **kw).data


def write(tmp_path, data, name="function.zip"):
    if isinstance(data, zc.Built):
        data = data.data
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.fixture
def hostile(tmp_path, expect_rejected, sign_refused):
    """hostile(data, code, *, also=(), policy='Enforce', sign=True):
    verify rejects with ``code`` and start-signing-job refuses the file."""
    def _check(data, code, *, also=(), policy="Enforce", sign=True, name="function.zip"):
        path = write(tmp_path, data, name)
        decision = expect_rejected(path, code, policy, also=also)
        if sign:
            sign_refused(path)
        return decision
    return _check


def expect_signed_and_promoted(path, sign, expect_promoted):
    """Sign ``path`` through the CLI and verify the result is promoted."""
    signed = sign(path)
    d = expect_promoted(signed)
    assert d.get("signature"), "a promoted signed package must carry signature facts: %s" % d
    return signed, d


# ==========================================================================
# legitimate archives: real tools' output must be accepted

def make_tree(root, symlinks=False):
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.py").write_bytes(CODE)
    (root / "lib").mkdir()
    (root / "lib" / "util.py").write_bytes(CODE[:300])
    (root / "lib" / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (root / "bin").mkdir()
    (root / "bin" / "run").write_bytes(b"#!/bin/sh\nexec python3 index.py\n")
    os.chmod(root / "bin" / "run", 0o755)
    (root / "empty").mkdir()
    if symlinks:
        os.symlink("index.py", root / "main.py")
        os.symlink("../index.py", root / "lib" / "up.py")
        os.symlink("lib", root / "libdir")
    return ["index.py", "lib", "bin", "empty"] + (["main.py", "libdir"] if symlinks else [])


def izip(cmd, cwd):
    """Run an Info-ZIP shell command in ``cwd``; the command writes ``out.zip``."""
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, capture_output=True,
                          env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert proc.returncode == 0, proc.stderr
    return (cwd / "out.zip").read_bytes()


INFOZIP_VARIANTS = {
    "stored": "zip -q -0 -r out.zip {files}",
    "deflated": "zip -q -r out.zip {files}",
    "deflated-best": "zip -q -9 -r out.zip {files}",
    "deflated-fastest": "zip -q -1 -r out.zip {files}",
    "zip64-forced": "zip -q -fz -r out.zip {files}",
    "streamed-to-pipe": "zip -q -r - {files} | cat > out.zip",
    "streamed-stdin-file": "zip -q - - < index.py | cat > out.zip",
    "symlinks": "zip -q -y -r out.zip {files}",
}


@pytest.mark.parametrize("variant", sorted(INFOZIP_VARIANTS))
def test_accepts_infozip_archive(variant, tmp_path, sign, expect_promoted):
    tree = tmp_path / "tree"
    files = make_tree(tree, symlinks=(variant == "symlinks"))
    data = izip(INFOZIP_VARIANTS[variant].format(files=" ".join(files)), tree)
    src = write(tmp_path, data)
    signed, _ = expect_signed_and_promoted(src, sign, expect_promoted)
    # the signature block must not stop stock tools from reading the package
    t = subprocess.run(["unzip", "-tq", str(signed)], capture_output=True, text=True)
    assert t.returncode == 0, t.stdout + t.stderr


def infozip_raw_utf8_names(tmp_path) -> bytes:
    """Info-ZIP archive of UTF-8 names (written raw, as zip 3.0 does in a UTF-8 locale)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for n in ("héllo.txt", "日本語/ファイル.py", "emoji-😀.txt"):
        (tree / n).parent.mkdir(parents=True, exist_ok=True)
        (tree / n).write_bytes(b"x\n")
    return izip("zip -q -r out.zip héllo.txt 日本語 emoji-😀.txt", tree)


def infozip_nested_zip_stored_last(tmp_path) -> bytes:
    """Info-ZIP archive whose last entry is a stored ZIP (its own EOCD near the end)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "index.py").write_bytes(CODE)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.py", CODE)
    (tree / "zz-vendor.zip").write_bytes(inner.getvalue())
    return izip("zip -q out.zip index.py zz-vendor.zip", tree)


def test_accepts_infozip_archive_with_raw_utf8_names(tmp_path, sign, expect_promoted):
    data = infozip_raw_utf8_names(tmp_path)
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


def test_accepts_infozip_archive_with_nested_zip_stored_last(tmp_path, sign, expect_promoted):
    data = infozip_nested_zip_stored_last(tmp_path)
    assert zc.parse(data).entries[-1].name == b"zz-vendor.zip"
    assert zc.parse(data).entries[-1].method == STORED
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


class Unseekable(io.RawIOBase):
    """A write-only stream: zipfile falls back to data descriptors."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def pyzip(kind):
    out = Unseekable() if kind.startswith("unseekable") else io.BytesIO()
    comp = zipfile.ZIP_STORED if kind == "stored" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w", comp) as z:
        z.writestr("lib/", b"")
        z.writestr("index.py", CODE)
        z.writestr("lib/util.py", CODE[:300])
        if kind in ("force-zip64", "unseekable-force-zip64"):
            zi = zipfile.ZipInfo("lib/big.py")
            zi.external_attr = 0o100644 << 16
            zi.compress_type = comp
            with z.open(zi, "w", force_zip64=True) as f:
                f.write(CODE)
        if kind == "utf8-names":
            z.writestr("lib/naïve-名前.py", b"x = 1\n")
        if kind == "open-w-without-mode":
            with z.open("lib/plain.py", "w") as f:  # external_attr 0, host Unix
                f.write(CODE)
    return bytes(out.buf) if isinstance(out, Unseekable) else out.getvalue()


PYZIP_KINDS = ["stored", "deflated", "unseekable", "force-zip64", "unseekable-force-zip64",
               "utf8-names", "open-w-without-mode"]


@pytest.mark.parametrize("kind", PYZIP_KINDS)
def test_accepts_python_zipfile_archive(kind, tmp_path, sign, expect_promoted):
    data = pyzip(kind)
    if kind.startswith("unseekable"):
        assert zc.parse(data).entries[0].flags & zc.FLAG_DESCRIPTOR
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


def pyzip_nested_zip_stored_last() -> bytes:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("a.py", CODE)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("index.py", CODE)
        z.writestr("layer.zip", inner.getvalue(), compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def test_accepts_python_zipfile_archive_with_nested_zip_stored_last(tmp_path, sign,
                                                                      expect_promoted):
    expect_signed_and_promoted(write(tmp_path, pyzip_nested_zip_stored_last()), sign,
                               expect_promoted)


CRAFTED_LEGIT = {
    "plain": lambda: base_entries(),
    "data-descriptors": lambda: [E("a.py", CODE, method=DEFLATED, descriptor=True),
                                 E("b.txt", b"stored\n", descriptor=True)],
    "symlinks-in-tree": lambda: [E("index.py", CODE), D("lib/"), E("lib/x.py", b"x"),
                                 L("main.py", "index.py"), L("lib/up.py", "../index.py"),
                                 L("libdir", "lib"), L("lib/sib.py", "x.py")],
    "dots-that-are-not-components": lambda: [E("..foo", b"1"), E("a..b/c", b"2"),
                                             E(".hidden", b"3"), E("foo.", b"4"),
                                             E("x/...", b"5"), E("x/.y/z", b"6")],
    "implicit-parents": lambda: [E("a/b/c/d.py", b"1"), E("a/b/e.py", b"2")],
    "modes": lambda: [E("run", b"#!/bin/sh\n", mode=0o100755), E("ro", b"r", mode=0o100444),
                      E("priv", b"p", mode=0o100600), D("d/", mode=0o040700),
                      E("dos", b"d", made_by=zc.version_made_by(zc.HOST_MSDOS, 20),
                        external_attr=0x20)],
    "empty-files-and-dirs": lambda: [D("empty/"), D("a/"), D("a/b/"), E("a/b/empty.txt", b""),
                                     E("z.txt", b"", method=DEFLATED)],
    "utf8-flag": lambda: [E("naïve.py", b"1", flags=zc.FLAG_UTF8),
                          E("日本/語.txt", b"2", flags=zc.FLAG_UTF8)],
}


@pytest.mark.parametrize("case", sorted(CRAFTED_LEGIT))
def test_accepts_crafted_legitimate_archive(case, tmp_path, sign, expect_promoted):
    data = zc.build(CRAFTED_LEGIT[case]()).data
    with zipfile.ZipFile(io.BytesIO(data)) as z:   # independent sanity check of the bytes
        assert z.testzip() is None
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


def crafted_zip64_archive() -> bytes:
    return zc.build([E("a.py", CODE, method=DEFLATED, zip64=True), D("d/", zip64=True),
                     E("d/b.txt", b"b", zip64=True, descriptor=True)], zip64=True).data


def descriptor_without_signature_archive() -> bytes:
    # APPNOTE 4.3.9.3: the data descriptor signature is optional
    return zc.build([E("a.py", CODE, method=DEFLATED, descriptor=True,
                       descriptor_signature=False), E("b.txt", b"b")]).data


def test_accepts_crafted_zip64_archive(tmp_path, sign, expect_promoted):
    data = crafted_zip64_archive()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


def test_accepts_descriptor_without_signature(tmp_path, sign, expect_promoted):
    data = descriptor_without_signature_archive()
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


# ==========================================================================
# UNSIGNED, plain comments, and what signing refuses

def test_rejects_unsigned_package_under_enforce(tmp_path, expect_rejected):
    d = expect_rejected(write(tmp_path, base_archive()), "UNSIGNED")
    assert d.get("signature") is None


def test_warns_but_promotes_unsigned_package_under_warn(tmp_path, verify):
    rc, d = verify(write(tmp_path, base_archive()), "Warn")
    assert (rc, d["outcome"]) == (0, "promoted-with-warnings"), d
    assert d["reasons"] == ["UNSIGNED"], d


def test_rejects_archive_with_plain_comment_as_integrity(tmp_path, expect_rejected, verify,
                                                         sign_refused):
    p = write(tmp_path, base_archive(comment=b"built by CI #42"))
    expect_rejected(p, "INTEGRITY")
    rc, d = verify(p, "Warn")
    assert d["outcome"] == "rejected" and "INTEGRITY" in d["reasons"], d
    sign_refused(p)


def test_refuses_to_sign_a_non_zip_file(tmp_path, sign_refused, expect_rejected):
    p = write(tmp_path, b"#!/bin/sh\necho this is not a zip\n", "script.zip")
    sign_refused(p)
    expect_rejected(p, "MALFORMED")


def test_refuses_to_sign_an_empty_file(tmp_path, sign_refused, expect_rejected):
    p = write(tmp_path, b"", "empty.zip")
    sign_refused(p)
    expect_rejected(p, "MALFORMED")


def test_refuses_to_sign_an_archive_without_entries(tmp_path, sign_refused):
    sign_refused(write(tmp_path, zc.empty_archive(), "noentries.zip"))


def test_refuses_to_sign_an_already_signed_package(tmp_path, sign, sign_refused):
    signed = sign(write(tmp_path, base_archive()))
    sign_refused(signed)


def test_verify_of_missing_file_is_an_io_error_exit_2(tmp_path, verify):
    rc, d = verify(tmp_path / "does-not-exist.zip")
    assert rc == 2 and d is None


# ==========================================================================
# MALFORMED

def _truncated(cut):
    def make():
        data = base_archive()
        b = zc.build(base_entries())
        points = {"mid-local-header": 10, "mid-data": b.entries[1]["data_offset"] + 5,
                  "at-central-directory": b.cd_offset,
                  "mid-central-directory": b.cd_offset + 20,
                  "mid-eocd": b.eocd_offset + 10, "last-byte": len(data) - 1}
        return data[:points[cut]]
    return make


def _local_differs(**local):
    def make():
        es = base_entries()
        es[2].local = dict(local)
        return zc.build(es).data
    return make


def _second_eocd_in_comment():
    b = zc.build(base_entries())
    second = zc.eocd(disk_entries=4, total_entries=4, cd_size=b.cd_size, cd_offset=b.cd_offset)
    return zc.build(base_entries(), comment=second).data


def _two_consistent_central_directories():
    # [local][CD1][EOCD1 + comment=(CD2 + EOCD2)]: both EOCDs end exactly at
    # end of file and both central directories end exactly at their EOCD.
    es = [E("a.txt", b"hello")]
    first = zc.build(es, comment=b"\0" * (46 + 5 + 22))
    cd2 = zc.central_header("a.txt", crc=crc32(b"hello"), csize=5, usize=5,
                            external=zc.unix_external(0o100644), offset=0)
    cd2_off = first.eocd_offset + 22
    eocd2 = zc.eocd(disk_entries=1, total_entries=1, cd_size=len(cd2), cd_offset=cd2_off)
    return zc.build(es, comment=cd2 + eocd2).data


def _eocd_candidate_inside_last_entry():
    # the last entry's data holds a central directory + EOCD whose comment
    # length reaches exactly the end of the file: a second complete candidate.
    def make(clen, tail_offset):
        fake_cd = zc.central_header("index.py", crc=crc32(CODE), csize=len(CODE), usize=len(CODE),
                                    external=zc.unix_external(0o100644), offset=0)
        fake_eocd = zc.eocd(disk_entries=1, total_entries=1, cd_size=len(fake_cd),
                            cd_offset=tail_offset, comment_len=clen)
        return zc.build([E("index.py", CODE), E("tail.bin", fake_cd + fake_eocd)])
    probe = make(0, 0)
    tail = probe.entries[1]["data_offset"]
    inner_eocd = tail + 46 + len("index.py")
    return make(len(probe.data) - inner_eocd - 22, tail).data


def _appended_eocd_copy():
    data = base_archive()
    return data + data[-22:]


def _prepended(adjusted):
    def make():
        stub = b"#!/bin/sh\nexec unzip -o \"$0\"\n" + b"\0" * 18
        return zc.build(base_entries(), prepend=stub,
                        offset_shift=0 if adjusted else -len(stub)).data
    return make


def _with(entries_fn, **kw):
    return lambda: zc.build(entries_fn(), **kw).data


def _entries(*es):
    return lambda: zc.build(list(es)).data


def _zip64(**kw):
    return lambda: zc.build([E("a.py", CODE, method=DEFLATED, zip64=True), E("b.txt", b"b")],
                            zip64=True, **kw).data


def _zip64_extra_too_short():
    e = E("a.py", CODE, zip64=True)
    # central Zip64 extra claims 8 bytes: usize only, while csize and offset are 0xFFFFFFFF
    e.central = {"extra": zc.zip64_extra(usize=len(CODE))}
    return zc.build([e]).data


def _deflate_stored_block_bad_nlen():
    payload = b"\x01" + struct.pack("<HH", 5, 0x1234) + b"hello"
    return zc.build([E("a.txt", b"hello", method=DEFLATED, payload=payload)]).data


def _stored_short_csize_leaves_gap():
    return zc.build([E("a.txt", b"hello!", csize=5, usize=5, crc=crc32(b"hello")),
                     E("b.txt", b"b")]).data


def _z64_patch(field):
    def make():
        b = zc.build([E("a.py", CODE, method=DEFLATED, zip64=True), E("b.txt", b"b")], zip64=True)
        if field == "locator":
            return zc.build([E("a.py", CODE, method=DEFLATED, zip64=True), E("b.txt", b"b")],
                            zip64=True,
                            zip64_locator_fields={"offset": b.zip64_eocd_offset + 4}).data
        return zc.build([E("a.py", CODE, method=DEFLATED, zip64=True), E("b.txt", b"b")],
                        zip64=True, zip64_eocd_fields={"cd_offset": b.cd_offset + 1}).data
    return make


def _off_by_one(key):
    def make():
        b = zc.build(base_entries())
        value = b.cd_offset + 1 if key == "cd_offset" else b.cd_size - 1
        return zc.build(base_entries(), eocd_fields={key: value}).data
    return make


MALFORMED = {
    "not-a-zip": lambda: b"PK but not really a zip archive\n" * 4,
    "empty-file": lambda: b"",
    "random-bytes": lambda: bytes((i * 7919) % 251 for i in range(2000)),
    "truncated-mid-local-header": _truncated("mid-local-header"),
    "truncated-mid-data": _truncated("mid-data"),
    "truncated-at-central-directory": _truncated("at-central-directory"),
    "truncated-mid-central-directory": _truncated("mid-central-directory"),
    "truncated-mid-eocd": _truncated("mid-eocd"),
    "truncated-last-byte": _truncated("last-byte"),
    "bad-crc-stored": _entries(E("a.txt", b"hello", crc=crc32(b"hellp"))),
    "bad-crc-deflated": _entries(E("a.py", CODE, method=DEFLATED, crc=crc32(CODE) ^ 0x10)),
    "usize-larger-than-inflated": _entries(E("a.py", CODE, method=DEFLATED, usize=len(CODE) + 1)),
    "usize-smaller-than-inflated": _entries(E("a.py", CODE, method=DEFLATED,
                                              usize=len(CODE) - 1)),
    "stored-usize-differs-from-csize": _entries(E("a.txt", b"hello", usize=9)),
    "stored-csize-short-leaves-gap": _stored_short_csize_leaves_gap,
    "deflate-invalid-stream": _entries(E("a.txt", b"hello", method=DEFLATED,
                                         payload=b"\xff" * 16)),
    "deflate-truncated-stream": _entries(E("a.py", CODE, method=DEFLATED,
                                           payload=deflate(CODE)[:-4])),
    "deflate-trailing-garbage": _entries(E("a.py", CODE, method=DEFLATED,
                                           payload=deflate(CODE) + b"HIDDEN")),
    "deflate-stored-block-bad-nlen": _deflate_stored_block_bad_nlen,
    "cd-offset-beyond-eof": _with(base_entries, eocd_fields={"cd_offset": 1 << 20}),
    "cd-size-beyond-eof": _with(base_entries, eocd_fields={"cd_size": 1 << 20}),
    "cd-offset-off-by-one": _off_by_one("cd_offset"),
    "cd-size-short-by-one": _off_by_one("cd_size"),
    "bytes-between-cd-and-eocd": _with(base_entries, before_eocd=b"\0" * 8),
    "comment-length-longer-than-comment": _with(base_entries, comment=b"abc", comment_len=10),
    "comment-length-shorter-than-comment": _with(base_entries, comment=b"abcdef",
                                                 comment_len=2),
    "comment-length-zero-with-trailing-bytes": _with(base_entries, append=b"trailing"),
    "appended-nul-bytes": _with(base_entries, append=b"\0" * 4),
    "appended-copy-of-eocd": _appended_eocd_copy,
    "second-eocd-as-comment": _second_eocd_in_comment,
    "two-consistent-central-directories": _two_consistent_central_directories,
    "eocd-candidate-inside-last-entry": _eocd_candidate_inside_last_entry,
    "prepended-stub-adjusted-offsets": _prepended(True),
    "prepended-stub-unadjusted-offsets": _prepended(False),
    "gap-between-entries": lambda: zc.build(
        [E("a.txt", b"a"), E("b.txt", b"b", gap_before=b"\0" * 16)]).data,
    "gap-before-central-directory": _with(base_entries, before_cd=b"GAP!"),
    "local-name-differs": _local_differs(name=b"lib/data.txz"),
    "local-name-differs-in-case": _local_differs(name=b"lib/DATA.txt"),
    "local-method-differs": _local_differs(method=DEFLATED),
    "local-crc-differs": _local_differs(crc=0x12345678),
    "local-csize-differs": _local_differs(csize=11),
    "local-usize-differs": _local_differs(usize=11),
    "local-signature-wrong": _local_differs(signature=0x04034B51),
    "local-extra-length-understated": _entries(
        E("a.txt", b"hello", local_extra=zc.extra_field(0xCAFE, b"\0" * 4),
          local={"extra_len": 4}), E("b.txt", b"b")),
    "central-signature-wrong": lambda: zc.build(
        [E("a.txt", b"a", central={"signature": 0x02014B51})]).data,
    "central-name-length-lies": lambda: zc.build(
        [E("a.txt", b"a", central={"name_len": 9}), E("b.txt", b"b")]).data,
    "central-extra-field-overruns": lambda: zc.build(
        [E("a.txt", b"a", central_extra=zc.extra_field(0x5455, b"\x01abc", size=40))]).data,
    "eocd-entry-count-too-high": _with(base_entries, eocd_fields={"disk_entries": 5,
                                                                  "total_entries": 5}),
    "eocd-entry-count-too-low": _with(base_entries, eocd_fields={"disk_entries": 3,
                                                                 "total_entries": 3}),
    "eocd-multi-disk": _with(base_entries, eocd_fields={"disk": 1, "cd_disk": 1}),
    "descriptor-crc-differs": _entries(E("a.py", CODE, method=DEFLATED, descriptor=True,
                                         descriptor_fields={"crc": 0x0BADC0DE})),
    "descriptor-size-differs": _entries(E("a.py", CODE, method=DEFLATED, descriptor=True,
                                          descriptor_fields={"usize": len(CODE) + 7})),
    "descriptor-in-local-flags-only": _entries(
        E("a.py", CODE, method=DEFLATED, descriptor=True, central={"flags": 0}),
        E("b.txt", b"b")),
    "descriptor-in-central-flags-only": _entries(
        E("a.py", CODE, method=DEFLATED, central={"flags": zc.FLAG_DESCRIPTOR}),
        E("b.txt", b"b")),
    "directory-with-data": _entries(zc.Entry("d/", b"not empty", mode=0o040755)),
    "zip64-locator-offset-wrong": _z64_patch("locator"),
    "zip64-record-cd-offset-wrong": _z64_patch("cd"),
    "zip64-record-entry-count-wrong": _zip64(zip64_eocd_fields={"disk_entries": 3,
                                                                "total_entries": 3}),
    "zip64-record-size-lies": _zip64(zip64_eocd_fields={"record_size": 52}),
    "zip64-gap-before-record": _zip64(before_eocd=b"\0" * 8),
    "zip64-extra-too-short": _zip64_extra_too_short,
}


UNKNOWN_FLAG_BITS = [0x0010, 0x0020, 0x0080, 0x0100, 0x0200, 0x0400, 0x1000, 0x4000, 0x8000]
for _bit in UNKNOWN_FLAG_BITS:
    MALFORMED["unknown-flag-bit-0x%04x" % _bit] = _entries(E("a.txt", b"hello", flags=_bit))


@pytest.mark.parametrize("case", list(MALFORMED))
def test_rejects_as_malformed(case, hostile):
    hostile(MALFORMED[case](), "MALFORMED")


@pytest.mark.parametrize("case", ["truncated-mid-data", "local-crc-differs", "gap-between-entries",
                                  "second-eocd-as-comment", "deflate-trailing-garbage"])
def test_rejects_as_malformed_even_under_warn(case, hostile):
    hostile(MALFORMED[case](), "MALFORMED", policy="Warn", sign=False)


def names_sharing_a_local_header() -> bytes:
    es = [E("a.txt", b"hello"), E("b.txt", b"hello", same_local_as=0),
          E("c.txt", b"hello", same_local_as=0)]
    return zc.build(es).data


def test_rejects_central_entries_with_different_names_sharing_a_local_header(tmp_path, verify,
                                                                            sign_refused):
    p = write(tmp_path, names_sharing_a_local_header())
    for policy in ("Enforce", "Warn"):
        rc, d = verify(p, policy)
        assert d["outcome"] == "rejected", d
        assert set(d["reasons"]) & {"UNSAFE_CONTENT", "MALFORMED"}, d
    sign_refused(p)


# ==========================================================================
# LIMIT_EXCEEDED (small limits through --settings, plus a few at the defaults)

def _n_entries(n):
    # past 65534 entries the count only fits in the Zip64 EOCD
    return zc.build([E("f%03d.txt" % i, b"x") for i in range(n)], zip64=n >= 0xFFFF).data


@pytest.fixture
def limit_case(tmp_path, settings_file, sign, expect_promoted, expect_rejected):
    """limit_case(over, at, **limits): ``over`` must be LIMIT_EXCEEDED under the
    limits and ``at`` (exactly at the limit, signed by the CLI) promoted."""
    def _check(over, at, **limits):
        s = settings_file(**limits)
        over_p = write(tmp_path, over, "over.zip")
        expect_rejected(over_p, "LIMIT_EXCEEDED", settings=s)
        if at is not None:
            signed = sign(write(tmp_path, at, "at.zip"))
            expect_promoted(signed, settings=s)
    return _check


def test_rejects_package_over_package_bytes_limit(tmp_path, sign, settings_file, expect_promoted,
                                                  expect_rejected):
    signed = sign(write(tmp_path, base_archive()))
    size = signed.stat().st_size
    expect_promoted(signed, settings=settings_file(packageBytes=size))
    expect_rejected(signed, "LIMIT_EXCEEDED", settings=settings_file(packageBytes=size - 1))


def _inflated_4000():
    data = bytes(4000)
    return (zc.build([E("z.bin", data, method=DEFLATED)]).data,
            zc.build([E("z.bin", data[:3999], method=DEFLATED)]).data)


def _inflated_summed():
    es = [E("z%d.bin" % i, bytes(1000), method=DEFLATED) for i in range(4)]
    return zc.build(es).data, zc.build(es[:3]).data


def _inflated_stored():
    es = [E("s%d.bin" % i, b"s" * 1000) for i in range(3)]
    return zc.build(es).data, zc.build(es[:2]).data


# case -> (make() -> (over, at or None), limits): ``over`` exceeds the limits, ``at`` is
# exactly at them.
SMALL_LIMITS = {
    "entries": (lambda: (_n_entries(6), _n_entries(5)), {"entries": 5}),
    "name-bytes": (lambda: (zc.build([E("a" * 13 + ".txt", b"x")]).data,
                            zc.build([E("a" * 12 + ".txt", b"x")]).data), {"nameBytes": 16}),
    # 6 characters, 18 bytes of UTF-8
    "name-bytes-multibyte": (lambda: (zc.build([E("日本語日本語", b"x",
                                                   flags=zc.FLAG_UTF8)]).data, None),
                             {"nameBytes": 16}),
    "depth": (lambda: (zc.build([E("a/b/c/d.txt", b"x")]).data,
                       zc.build([E("a/b/c.txt", b"x")]).data), {"depth": 3}),
    "depth-directory-entry": (lambda: (zc.build([D("a/b/c/d/")]).data, None), {"depth": 3}),
    "inflated-bytes": (_inflated_4000, {"inflatedBytes": 3999}),
    "inflated-bytes-summed": (_inflated_summed, {"inflatedBytes": 3000}),
    "inflated-bytes-stored": (_inflated_stored, {"inflatedBytes": 2500}),
}


def _small_limit_case(limit_case, case):
    make, limits = SMALL_LIMITS[case]
    over, at = make()
    limit_case(over, at, **limits)


def test_rejects_more_entries_than_entries_limit(limit_case):
    _small_limit_case(limit_case, "entries")


def test_rejects_name_longer_than_name_bytes_limit(limit_case):
    _small_limit_case(limit_case, "name-bytes")


def test_rejects_multibyte_name_over_name_bytes_limit_counted_in_bytes(limit_case):
    _small_limit_case(limit_case, "name-bytes-multibyte")


def test_rejects_path_deeper_than_depth_limit(limit_case):
    _small_limit_case(limit_case, "depth")


def test_rejects_directory_entry_deeper_than_depth_limit(limit_case):
    _small_limit_case(limit_case, "depth-directory-entry")


def test_rejects_inflated_total_over_inflated_bytes_limit(limit_case):
    _small_limit_case(limit_case, "inflated-bytes")


def test_rejects_inflated_total_summed_over_entries(limit_case):
    _small_limit_case(limit_case, "inflated-bytes-summed")


def test_rejects_stored_entries_counted_toward_inflated_total(limit_case):
    _small_limit_case(limit_case, "inflated-bytes-stored")


def understated_bomb() -> bytes:
    # headers claim 1000 bytes; the stream inflates to 4 MiB: counted from bytes
    # actually inflated, never from headers.
    n = 4 << 20
    bomb = zc.Entry("bomb.bin", b"", method=DEFLATED, payload=zc.deflate_zeros(n),
                    crc=zc.crc_zeros(1000), usize=1000, mode=0o100644)
    return zc.build([bomb]).data


def test_rejects_bomb_whose_headers_understate_its_size(tmp_path, settings_file, verify):
    p = write(tmp_path, understated_bomb())
    for policy in ("Enforce", "Warn"):
        rc, d = verify(p, policy, settings=settings_file(inflatedBytes=1 << 20))
        assert d["outcome"] == "rejected", d
        assert set(d["reasons"]) & {"LIMIT_EXCEEDED", "MALFORMED"}, d


def high_ratio_bomb() -> bytes:
    n = 262144000 + 1
    bomb = zc.Entry("bomb.bin", b"", method=DEFLATED, payload=zc.deflate_zeros(n),
                    crc=zc.crc_zeros(n), usize=n, mode=0o100644)
    return zc.build([E("index.py", CODE), bomb]).data


# over the default limits (DESIGN §6): LIMIT_EXCEEDED
DEFAULT_LIMITS = {
    "inflated-bytes-high-ratio-bomb": high_ratio_bomb,
    "name-over-1024-bytes": lambda: zc.build([E("n" * 1025, b"x")]).data,
    "depth-over-64": lambda: zc.build([E("d/" * 64 + "f", b"x")]).data,
    "entries-over-100000": lambda: _n_entries(100001),
    # one component longer than any file name can be (NAME_MAX): it can never be extracted
    "name-component-over-255-bytes": lambda: zc.build([E("index.py", CODE),
                                                       E("n" * 256, b"x")]).data,
    "directory-component-over-255-bytes": lambda: zc.build([E("index.py", CODE),
                                                            E("d" * 256 + "/f.py", b"x")]).data,
}

# exactly at the default limits: promoted
AT_DEFAULT_LIMITS = {
    # 1,024 bytes in components of at most 255 (NAME_MAX)
    "name-of-1024-bytes": lambda: zc.build([E(("d" * 254 + "/") * 4 + "name", b"x")]).data,
    "depth-of-64": lambda: zc.build([E("d/" * 63 + "f", b"x")]).data,
}


def test_rejects_high_ratio_bomb_at_default_inflated_limit(tmp_path, hostile):
    hostile(DEFAULT_LIMITS["inflated-bytes-high-ratio-bomb"](), "LIMIT_EXCEEDED")


def test_rejects_name_over_default_1024_bytes(hostile):
    hostile(DEFAULT_LIMITS["name-over-1024-bytes"](), "LIMIT_EXCEEDED")


def test_accepts_name_of_exactly_default_1024_bytes(tmp_path, sign, expect_promoted):
    data = AT_DEFAULT_LIMITS["name-of-1024-bytes"]()
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


@pytest.mark.parametrize("case", ["name-component-over-255-bytes",
                                  "directory-component-over-255-bytes"])
def test_rejects_name_component_over_255_bytes(case, hostile):
    hostile(DEFAULT_LIMITS[case](), "LIMIT_EXCEEDED")


def test_rejects_depth_over_default_64(hostile):
    hostile(DEFAULT_LIMITS["depth-over-64"](), "LIMIT_EXCEEDED")


def test_accepts_depth_of_exactly_default_64(tmp_path, sign, expect_promoted):
    data = AT_DEFAULT_LIMITS["depth-of-64"]()
    expect_signed_and_promoted(write(tmp_path, data), sign, expect_promoted)


def test_rejects_more_than_default_100000_entries(hostile):
    hostile(DEFAULT_LIMITS["entries-over-100000"](), "LIMIT_EXCEEDED")


def test_rejects_limit_exceeded_even_under_warn(tmp_path, settings_file, verify):
    p = write(tmp_path, _n_entries(6))
    rc, d = verify(p, "Warn", settings=settings_file(entries=5))
    assert d["outcome"] == "rejected" and "LIMIT_EXCEEDED" in d["reasons"], d


# ==========================================================================
# UNSAFE_CONTENT: names

UNSAFE_NAMES = {
    "dotdot-prefix": b"../x",
    "dotdot-escaping-twice": b"a/../../x",
    "dotdot-last": b"a/..",
    "dotdot-alone": b"..",
    "dotdot-not-escaping": b"a/../b",
    "dotdot-directory": b"../d/",
    "dot-prefix": b"./x",
    "dot-middle": b"a/./b",
    "dot-alone": b".",
    "absolute": b"/etc/x",
    "absolute-root-dir": b"/",
    "absolute-double-slash": b"//x",
    "backslash": b"a\\b",
    "backslash-dotdot": b"..\\x",
    "drive-letter-slash": b"C:/x",
    "drive-letter-relative": b"c:x",
    "drive-letter-backslash": b"C:\\x",
    "nul-byte": b"a\x00b",
    "nul-byte-hiding-traversal": b"ok.txt\x00/../../etc/x",
    "empty-name": b"",
    "empty-component": b"a//b",
    "empty-component-directory": b"a//",
    "invalid-utf8": b"\xff\xfe.txt",
    "overlong-utf8-slash": b"a\xc0\xafb",
    "overlong-utf8-dot": b"\xc0\xae\xc0\xae/x",
    "utf8-surrogate": b"\xed\xa0\x80.txt",
    "truncated-utf8": b"caf\xc3",
    "control-soh": b"a\x01b",
    "control-newline": b"a\nb",
    "control-tab": b"a\tb",
    "control-escape": b"\x1b[31mred.txt",
    "control-del": b"a\x7fb",
    "control-c1-next-line": b"a\xc2\x85b",       # U+0085, a C1 control character
}


def unsafe_name_archive(name: bytes) -> bytes:
    """index.py plus one entry named ``name`` (a directory when it ends in '/')."""
    entry = zc.Entry(name, b"" if name.endswith(b"/") else b"payload",
                     mode=0o040755 if name.endswith(b"/") else 0o100644)
    return zc.build([E("index.py", CODE), entry]).data


@pytest.mark.parametrize("case", list(UNSAFE_NAMES))
def test_rejects_unsafe_name(case, hostile):
    hostile(unsafe_name_archive(UNSAFE_NAMES[case]), "UNSAFE_CONTENT")


@pytest.mark.parametrize("case", ["dotdot-prefix", "absolute", "nul-byte"])
def test_rejects_unsafe_name_even_under_warn(case, hostile):
    hostile(zc.build([E(UNSAFE_NAMES[case], b"x")]).data, "UNSAFE_CONTENT", policy="Warn",
            sign=False)


# ==========================================================================
# UNSAFE_CONTENT: duplicates and conflicting paths

DUPLICATES = {
    "same-file-twice": [E("a.txt", b"1"), E("a.txt", b"2")],
    "same-directory-twice": [D("d/"), D("d/")],
    "same-nested-file-twice": [E("a/b/c.py", b"1"), E("a/b/c.py", b"2")],
    "case-insensitive-files": [E("A.txt", b"1"), E("a.txt", b"2")],
    "case-insensitive-directories": [D("Lib/"), D("lib/")],
    "case-insensitive-nested": [E("lib/Util.py", b"1"), E("LIB/util.py", b"2")],
    "file-then-directory": [E("x", b"1"), D("x/")],
    "directory-then-file": [D("x/"), E("x", b"1")],
    "file-as-parent": [E("x", b"1"), E("x/y", b"2")],
    "file-as-parent-reversed": [E("x/y", b"2"), E("x", b"1")],
    "file-as-grandparent": [E("x", b"1"), E("x/y/z", b"2")],
    "file-as-parent-case-insensitive": [E("X", b"1"), E("x/y", b"2")],
}


@pytest.mark.parametrize("case", list(DUPLICATES))
def test_rejects_duplicate_or_conflicting_paths(case, hostile):
    hostile(zc.build(DUPLICATES[case]).data, "UNSAFE_CONTENT")


# ==========================================================================
# UNSAFE_CONTENT: symlinks

SYMLINKS = {
    "absolute-target": [E("a.txt", b"1"), L("link", "/etc/passwd")],
    "escaping-target": [E("a.txt", b"1"), L("link", "../../etc/passwd")],
    "escaping-via-subdir": [E("a.txt", b"1"), L("link", "a/../../x")],
    "escaping-from-subdirectory": [D("d/"), L("d/link", "../../x")],
    "escaping-to-parent-of-root": [L("link", "..")],
    "escaping-target-deflated": [L("link", "../../etc/passwd", method=DEFLATED)],
    "chained": [E("t.txt", b"1"), L("l1", "l2"), L("l2", "t.txt")],
    "chained-reversed-order": [L("l2", "t.txt"), E("t.txt", b"1"), L("l1", "l2")],
    "through-directory-symlink": [D("d/"), E("d/f", b"1"), L("dl", "d"), L("l2", "dl/f")],
    "self-loop": [L("loop", "loop")],
    "used-as-directory": [D("d/"), L("link", "d"), E("link/file", b"evil")],
    "used-as-directory-reversed": [E("link/file", b"evil"), D("d/"), L("link", "d")],
    "used-as-directory-entry": [D("d/"), L("link", "d"), D("link/")],
    "escaping-link-used-as-directory": [L("link", "/tmp"), E("link/evil", b"x")],
}


@pytest.mark.parametrize("case", list(SYMLINKS))
def test_rejects_unsafe_symlink(case, hostile):
    hostile(zc.build(SYMLINKS[case]).data, "UNSAFE_CONTENT")


def test_rejects_symlink_escaping_root_even_under_warn(hostile):
    hostile(zc.build(SYMLINKS["escaping-target"]).data, "UNSAFE_CONTENT", policy="Warn",
            sign=False)


# ==========================================================================
# UNSAFE_CONTENT: special files and mode bits

SPECIAL_MODES = {
    "character-device": ("dev/null", 0o020666),
    "block-device": ("dev/sda", 0o060660),
    "fifo": ("pipe", 0o010644),
    "socket": ("sock", 0o140755),
    "setuid-file": ("bin/su", 0o104755),
    "setgid-file": ("bin/sg", 0o102755),
    "sticky-file": ("bin/st", 0o101755),
    "sticky-directory": ("tmp/", 0o041777),
    "setgid-directory": ("shared/", 0o042775),
}


def special_mode_archive(name: str, mode: int) -> bytes:
    """index.py plus one entry ``name`` with Unix mode ``mode``."""
    entry = zc.Entry(name, b"" if name.endswith("/") else b"x", mode=mode)
    return zc.build([E("index.py", CODE), entry]).data


@pytest.mark.parametrize("case", list(SPECIAL_MODES))
def test_rejects_special_file_or_mode_bit(case, hostile):
    hostile(special_mode_archive(*SPECIAL_MODES[case]), "UNSAFE_CONTENT")


# ==========================================================================
# UNSAFE_CONTENT: overlapping entries

def _entry_nested_inside_another_entrys_data():
    # "outer.bin" stores bytes that are themselves a complete local record for
    # "inner.py"; the central directory lists both: the same bytes belong to
    # two entries.
    inner_local = zc.local_header("inner.py", crc=crc32(CODE), csize=len(CODE), usize=len(CODE))
    outer_name = "outer.bin"
    inner_offset = 30 + len(outer_name)          # outer's data starts right after its header
    es = [E(outer_name, inner_local + CODE),
          E("inner.py", CODE, write_local=False, central={"offset": inner_offset})]
    return zc.build(es).data


def _many_central_entries_one_local_header():
    es = [E("a.py", CODE, method=DEFLATED)] + [
        E("a.py", CODE, method=DEFLATED, same_local_as=0) for _ in range(10)]
    return zc.build(es).data


def overlap_bomb() -> bytes:
    # the same deflated kernel referenced 50 times (Fifield's overlap bomb shape)
    kernel = E("k.bin", bytes(100000), method=DEFLATED)
    es = [kernel] + [E("k.bin", bytes(100000), method=DEFLATED, same_local_as=0)
                     for _ in range(49)]
    return zc.build(es).data


# UNSAFE_CONTENT: two entries share bytes of the archive
OVERLAPS = {
    "entry-nested-inside-another-entrys-data": _entry_nested_inside_another_entrys_data,
    "many-central-entries-one-local-header": _many_central_entries_one_local_header,
}


def test_rejects_entry_nested_inside_another_entrys_data(hostile):
    hostile(OVERLAPS["entry-nested-inside-another-entrys-data"](), "UNSAFE_CONTENT")


def test_rejects_many_central_entries_pointing_at_one_local_header(hostile):
    hostile(OVERLAPS["many-central-entries-one-local-header"](), "UNSAFE_CONTENT")


def test_rejects_overlapping_entries_bomb_at_small_limit(tmp_path, settings_file, verify):
    # rejected for overlap (or for the inflated total), never promoted
    p = write(tmp_path, overlap_bomb())
    rc, d = verify(p, "Warn", settings=settings_file(inflatedBytes=1000000))
    assert d["outcome"] == "rejected", d
    assert set(d["reasons"]) & {"UNSAFE_CONTENT", "LIMIT_EXCEEDED"}, d


# ==========================================================================
# UNSAFE_CONTENT: encryption and compression methods

def _encrypted_entry():
    fake = bytes(12) + b"ciphertext"
    return zc.build([E("index.py", CODE),
                     zc.Entry("secret.py", b"plaintext!", payload=fake,
                              flags=zc.FLAG_ENCRYPTED, mode=0o100644)]).data


def strong_encryption_archive() -> bytes:
    # bit 0 (encrypted) plus bit 6 (strong encryption): unsafe, or malformed
    # for the flag bit signgate does not know
    return zc.build([zc.Entry("secret.py", b"x", payload=bytes(16),
                              flags=zc.FLAG_ENCRYPTED | 0x0040, mode=0o100644)]).data


def unsupported_method_archive(method: int) -> bytes:
    return zc.build([E("index.py", CODE),
                     zc.Entry("x.bin", b"data", method=method, payload=b"data",
                              mode=0o100644)]).data


def _winzip_aes_entry():
    # method 99, encrypted flag, AES extra field (AE-2, AES-256, actual method 8)
    aes = zc.extra_field(0x9901, struct.pack("<H2sBH", 2, b"AE", 3, DEFLATED))
    payload = bytes(16 + 2) + b"cipher" + bytes(10)    # salt, verifier, data, MAC
    entry = zc.Entry("secret.py", b"", method=99, payload=payload, crc=0, usize=6,
                     flags=zc.FLAG_ENCRYPTED, mode=0o100644, local_extra=aes,
                     central_extra=aes, version=51)
    return zc.build([E("index.py", CODE), entry]).data


UNSUPPORTED_METHODS = [1, 6, 9, 12, 14, 93, 95, 98]

# UNSAFE_CONTENT: encrypted entries (the compression methods are UNSUPPORTED_METHODS)
ENCRYPTED = {
    "encrypted-entry": _encrypted_entry,
    "winzip-aes-entry": _winzip_aes_entry,
}


def test_rejects_encrypted_entry(hostile):
    hostile(ENCRYPTED["encrypted-entry"](), "UNSAFE_CONTENT")


def test_rejects_strong_encryption_entry(tmp_path, verify, sign_refused):
    p = write(tmp_path, strong_encryption_archive())
    rc, d = verify(p)
    assert d["outcome"] == "rejected", d
    assert set(d["reasons"]) & {"UNSAFE_CONTENT", "MALFORMED"}, d
    sign_refused(p)


@pytest.mark.parametrize("method", UNSUPPORTED_METHODS)
def test_rejects_compression_method_other_than_stored_or_deflated(method, hostile):
    hostile(unsupported_method_archive(method), "UNSAFE_CONTENT")


def test_rejects_winzip_aes_entry(hostile):
    hostile(ENCRYPTED["winzip-aes-entry"](), "UNSAFE_CONTENT")


# ==========================================================================
# a valid signature never makes an unsafe package acceptable

SIGNED_HOSTILE = {
    "escaping-symlink": (lambda: zc.build(SYMLINKS["escaping-target"]).data, "UNSAFE_CONTENT"),
    "traversal-name": (lambda: zc.build([E("../evil.py", b"x")]).data, "UNSAFE_CONTENT"),
    "case-duplicate": (lambda: zc.build(DUPLICATES["case-insensitive-files"]).data,
                       "UNSAFE_CONTENT"),
    "setuid": (lambda: zc.build([E("su", b"x", mode=0o104755)]).data, "UNSAFE_CONTENT"),
    "gap": (MALFORMED["gap-between-entries"], "MALFORMED"),
    "local-name-differs": (MALFORMED["local-name-differs"], "MALFORMED"),
}


def test_accepts_package_signed_outside_the_cli_with_the_profile_key(tmp_path, signer,
                                                                     expect_promoted):
    # control for the tests below: the out-of-CLI signer follows DESIGN §4
    data = signer.sign_bytes(base_archive())
    expect_promoted(write(tmp_path, data))


@pytest.mark.parametrize("policy", ["Enforce", "Warn"])
@pytest.mark.parametrize("case", list(SIGNED_HOSTILE))
def test_rejects_validly_signed_unsafe_package(case, policy, tmp_path, signer, expect_rejected):
    make, code = SIGNED_HOSTILE[case]
    data = signer.sign_bytes(make())
    expect_rejected(write(tmp_path, data), code, policy, also=("INTEGRITY",))


def signed_with_hidden_eocd_reaching_file_end(sign_file) -> tuple:
    """(signed bytes, inner EOCD offset, path or None): a package whose last entry holds a
    central directory and an EOCD whose comment length is chosen so that it ends exactly
    where the *signed* file ends: no second candidate exists when the signer signs, one
    does after.  ``sign_file(data) -> (signed bytes, path or None)`` signs one archive."""
    def make(clen, tail_offset):
        fake_cd = zc.central_header("index.py", crc=crc32(CODE), csize=len(CODE),
                                    usize=len(CODE), external=zc.unix_external(0o100644))
        fake_eocd = zc.eocd(disk_entries=1, total_entries=1, cd_size=len(fake_cd),
                            cd_offset=tail_offset, comment_len=clen)
        return zc.build([E("index.py", CODE), E("tail.bin", fake_cd + fake_eocd)]).data

    probe = zc.build([E("index.py", CODE), E("tail.bin", bytes(46 + 8 + 22))])
    tail = probe.entries[1]["data_offset"]
    inner_eocd = tail + 46 + len("index.py")
    signed_len = len(sign_file(make(0, tail))[0])
    for _ in range(24):
        clen = signed_len - inner_eocd - 22
        data, path = sign_file(make(clen, tail))
        if len(data) == inner_eocd + 22 + clen:
            return data, inner_eocd, path
        signed_len = len(data)
    pytest.fail("could not align the hidden EOCD with the signed length")


def test_rejects_signed_package_whose_entry_hides_eocd_candidate_reaching_file_end(
        tmp_path, signer, expect_rejected):
    # The gate must see the hidden candidate (libzip could pick either).
    src = tmp_path / "function.zip"

    def sign_file(data):
        src.write_bytes(data)
        signed = signer.sign(src)
        return signed.read_bytes(), signed

    data, inner_eocd, signed = signed_with_hidden_eocd_reaching_file_end(sign_file)
    assert data[inner_eocd:inner_eocd + 4] == b"PK\x05\x06"
    for policy in ("Enforce", "Warn"):
        expect_rejected(signed, "MALFORMED", policy)
