"""Interop: a signgate signature checked by tools nobody here wrote.

The stock-tools recipe of docs/signature-format.md §7 is extracted from the document and run
verbatim against a package signed by the real CLI: it must pass, and it must fail on a
package changed after signing. Also: `sha384sum` of the unsigned archive equals the signed
digest, and a package made by Info-ZIP signs and verifies.
"""

import hashlib
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("SIGNGATE_SOURCE_DIR", Path(__file__).resolve().parents[2]))


def recipe() -> str:
    doc = (SOURCE_DIR / "docs" / "signature-format.md").read_text()
    m = re.search(r"<!-- recipe:begin -->\s*```sh\n(.*?)```\s*<!-- recipe:end -->", doc, re.S)
    assert m, "the recipe block is missing from docs/signature-format.md"
    return m.group(1)


def run_recipe(workdir: Path, pkg: Path, profile: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PKG=str(pkg), PROFILE=str(profile), LC_ALL="C")
    return subprocess.run(["bash", "-c", recipe()], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def infozip_package(tmp_path) -> Path:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "lambda_function.py").write_text("import lib.util\ndef handler(e, c):\n    return 1\n")
    (src / "lib" / "util.py").write_text("VALUE = 'x' * 1000\n")
    out = tmp_path / "function.zip"
    subprocess.run(["zip", "-q", "-r", "-X", str(out), "."], cwd=src, check=True)
    return out


def test_stock_tools_recipe_verifies_a_signgate_signature(tmp_path, signer, sign, infozip_package):
    signed = sign(infozip_package)
    work = tmp_path / "recipe"
    work.mkdir()
    p = run_recipe(work, signed, signer.profile_doc)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Verified OK" in p.stdout
    assert "signature and digest OK: %s" % signer.keyid in p.stdout


def test_stock_tools_recipe_fails_on_a_package_changed_after_signing(tmp_path, signer, sign,
                                                                    infozip_package):
    signed = sign(infozip_package)
    with zipfile.ZipFile(signed) as z:
        comment = z.comment
        files = {n: z.read(n) for n in z.namelist()}
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in files.items():
            z.writestr(n, data.replace(b"return 1", b"return 2"))
        z.comment = comment
    work = tmp_path / "recipe"
    work.mkdir()
    p = run_recipe(work, forged, signer.profile_doc)
    assert p.returncode != 0  # the digest test line fails
    assert "signature and digest OK" not in p.stdout
    # The signature over the statement itself is still genuine: only the digest differs.
    assert "Verified OK" in p.stdout


def test_openssl_rejects_a_signature_made_by_another_profile(tmp_path, make_signer, sign,
                                                             infozip_package):
    signed = sign(infozip_package)
    other = make_signer("OtherProfile")
    work = tmp_path / "recipe"
    work.mkdir()
    p = run_recipe(work, signed, other.profile_doc)
    assert p.returncode != 0
    assert "Verified OK" not in p.stdout


def test_sha384sum_of_the_unsigned_archive_is_the_signed_digest(infozip_package, sign):
    unsigned_digest = subprocess.run(["sha384sum", str(infozip_package)], capture_output=True,
                                     text=True, check=True).stdout.split()[0]
    assert unsigned_digest == hashlib.sha384(infozip_package.read_bytes()).hexdigest()
    signed = sign(infozip_package)
    with zipfile.ZipFile(signed) as z:
        env = json.loads(z.comment.split(b"\n", 1)[1])
    import base64
    statement = json.loads(base64.b64decode(env["payload"]))
    assert statement["subject"][0]["digest"]["sha384"] == unsigned_digest
    assert statement["predicate"]["size"] == infozip_package.stat().st_size
    # The signed archive is the unsigned one plus the comment, byte for byte.
    data = signed.read_bytes()
    unsigned = infozip_package.read_bytes()
    assert data[:len(unsigned) - 2] == unsigned[:-2]
    assert unsigned[-2:] == b"\0\0"
