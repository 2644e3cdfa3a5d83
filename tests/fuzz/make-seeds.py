#!/usr/bin/python3
"""Writes the seed corpora and dictionaries of the fuzzers in tests/fuzz.

usage: make-seeds.py [--target NAME]... OUT

For each target (all five when no --target is given) it replaces OUT/NAME/ with freshly made
seed files and writes OUT/NAME.dict, a libFuzzer dictionary of the tokens the parser looks for:

  package      real archives made with Python's zipfile: stored, deflated, directories, a
               symlink, data descriptors, Zip64 local records, Zip64 end records, an empty
               archive, a few the gate must refuse, one carrying a well-formed signature block
               that no key made, and (SIGNGATE_BIN set) one signed by the real CLI.
  envelope     signature blocks (the comment of those signed packages) and the in-toto
               statements inside them: fuzz-envelope also wraps its input as a statement.
  policy-docs  a signing profile (the CLI's get-signing-profile output, or one made with
               openssl), code signing configs, functions, revocations and signgated.json.
  query        EXPRESSION NUL DOCUMENT: the --query expressions of the seed walkthrough
               (README, contrib/ci) over documents shaped like the CLI's output (the CLI's own
               output when SIGNGATE_BIN is set).
  api          "METHOD PATH\n\nBODY": a request for every route of DESIGN §10 with the bodies the
               CLI sends (a profile document under fuzz-api.c's FUZZ_PUBLIC_KEY, code signing
               configs, bindings, revocations), then wrong methods, unknown and over-long
               paths, percent escapes, and bodies with unknown or repeated fields, non-objects
               and trailing bytes.

Nothing is checked in: every seed is made here, so the corpus follows the formats.
SIGNGATE_BIN (the signgate CLI) is optional; without it the CLI-made seeds are skipped.
"""

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

TARGETS = ("package", "envelope", "policy-docs", "query", "api")

MAGIC = b"signgate-signature-v1\n"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:signgate:predicate:code-signature:v1"
PLATFORM = "Lambda-SHA384-ECDSA"
# The profile fuzz-envelope's store knows about (allowed by its Warn config, revoked from 2024).
FUZZ_PROFILE, FUZZ_VERSION = "FuzzProfile", "aaaaaaaaaa"
REVOKED_JOB = "00000000-0000-4000-8000-000000000000"
# Fixed, so two runs write the same seeds.
ZIP_TIME = (2026, 1, 2, 3, 4, 6)

LAMBDA_SOURCE = b"import json\n\n\ndef lambda_handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps(event)}\n"


def compact(obj) -> bytes:
    """JSON as cJSON_PrintUnformatted writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def pretty(obj) -> bytes:
    return json.dumps(obj, indent=4).encode() + b"\n"


# --------------------------------------------------------------------------------------------
# archives

class _Unseekable(io.RawIOBase):
    """A write-only stream that cannot seek: zipfile then streams every entry with a data
    descriptor (flag bit 3), as `zip -` and most CI tools do."""

    def __init__(self):
        super().__init__()
        self.buf = io.BytesIO()

    def writable(self):
        return True

    def write(self, b):
        return self.buf.write(b)

    def seekable(self):
        return False


def _info(name: str, mode: int, method: int) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    zi.create_system = 3  # Unix: external_attr's high half is the mode
    zi.external_attr = (mode & 0xFFFF) << 16
    zi.compress_type = method
    return zi


def make_zip(entries, *, descriptors=False, force_zip64=False) -> bytes:
    """entries: (name, data or None for a directory, mode, method) tuples."""
    out = _Unseekable() if descriptors else io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data, mode, method in entries:
            if data is None:
                zf.writestr(_info(name.rstrip("/") + "/", 0o40755 if mode is None else mode, zipfile.ZIP_STORED), b"")
                continue
            zi = _info(name, 0o100644 if mode is None else mode, method)
            with zf.open(zi, "w", force_zip64=force_zip64) as f:
                f.write(data)
    return out.buf.getvalue() if descriptors else out.getvalue()


def eocd_offset(data: bytes) -> int:
    """The EOCD whose comment ends the file, as sg_package.c finds it."""
    for i in range(len(data) - 22, max(-1, len(data) - 22 - 65536), -1):
        if data[i:i + 4] == b"PK\x05\x06" and i + 22 + struct.unpack_from("<H", data, i + 20)[0] == len(data):
            return i
    raise ValueError("no EOCD ends the archive")


def with_zip64_end(data: bytes) -> bytes:
    """Inserts a Zip64 end record and locator before the EOCD and puts the Zip64 markers in the
    EOCD, as Info-ZIP does for `zip -fz` and for archives past 65,535 entries or 4 GiB."""
    e = eocd_offset(data)
    _, _, _, n_disk, n_total, cd_size, cd_off, clen = struct.unpack_from("<IHHHHIIH", data, e)
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, n_disk, n_total, cd_size, cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, e, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, clen)
    return data[:e] + z64 + loc + end + data[e + 22:]


def with_comment(data: bytes, comment: bytes) -> bytes:
    e = eocd_offset(data)
    return data[:e + 20] + struct.pack("<H", len(comment)) + comment


def canonical(data: bytes) -> bytes:
    """sg_package.h: archive[0, E+20) then a zero comment length."""
    e = eocd_offset(data)
    return data[:e + 20] + b"\0\0"


def statement(subject: str, digest_hex: str, size: int, *, name=FUZZ_PROFILE, version=FUZZ_VERSION,
              job="3f2b8c1e-9d4a-4e6b-8c7d-1a2b3c4d5e6f", signed="2026-01-02T03:04:05Z",
              expires="2037-04-02T03:04:05Z") -> dict:
    """An in-toto Statement v1 in the key order sg_signature.c writes."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject, "digest": {"sha384": digest_hex}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"platformId": PLATFORM, "profileName": name, "profileVersion": version, "jobId": job,
                      "signedAt": signed, "signatureExpiresAt": expires, "size": size},
    }


def block_for(stmt: dict) -> bytes:
    """A well-formed signature block whose signature no key made (a DER ECDSA shape)."""
    p = stmt["predicate"]
    sig = bytes([0x30, 0x66, 0x02, 0x31, 0x00]) + bytes(range(1, 49)) + bytes([0x02, 0x31, 0x00]) + bytes(range(49, 97))
    env = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(compact(stmt)).decode(),
           "signatures": [{"keyid": "%s/%s" % (p["profileName"], p["profileVersion"]),
                           "sig": base64.b64encode(sig).decode()}]}
    return MAGIC + compact(env)


def fake_signed(unsigned: bytes, **kw) -> tuple:
    """(package, block, statement): unsigned with a block claiming its real digest and size."""
    c = canonical(unsigned)
    stmt = statement("function.zip", hashlib.sha384(c).hexdigest(), len(c), **kw)
    block = block_for(stmt)
    return with_comment(unsigned, block), block, stmt


def archives() -> dict:
    D, S = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED
    lib = b"".join(b"def f%d(x):\n    return x * %d\n\n" % (i, i) for i in range(40))
    tree = [("pkg", None, None, S), ("pkg/__init__.py", b"", None, S), ("pkg/util.py", lib, None, D),
            ("lambda_function.py", LAMBDA_SOURCE, None, D), ("bin/tool", b"#!/bin/sh\necho ok\n", 0o100755, D)]
    a = {
        "stored-one-file.zip": make_zip([("lambda_function.py", LAMBDA_SOURCE, None, S)]),
        "deflated-tree.zip": make_zip(tree),
        "symlink.zip": make_zip([("lib", None, None, S), ("lib/real.py", lib, None, D),
                                 ("lib/alias.py", b"real.py", 0o120777, S)]),
        "descriptors.zip": make_zip(tree, descriptors=True),
        "zip64-local.zip": make_zip([("lambda_function.py", LAMBDA_SOURCE, None, D),
                                     ("data.bin", bytes(range(256)) * 4, None, S)], force_zip64=True),
        "zip64-local-descriptors.zip": make_zip([("lambda_function.py", LAMBDA_SOURCE, None, D)],
                                                descriptors=True, force_zip64=True),
        "empty.zip": make_zip([]),
        # Rejections the gate must make; seeds for the error paths.
        "unsafe-traversal.zip": make_zip([("../evil.py", b"x", None, S)]),
        "unsafe-case-duplicate.zip": make_zip([("A.py", b"a", None, S), ("a.py", b"b", None, S)]),
        "deflate-ratio.zip": make_zip([("zeros.bin", bytes(1 << 20), None, D)]),
        "unsafe-setuid.zip": make_zip([("run", b"#!/bin/sh\n", 0o104755, S)]),
        "unsafe-file-as-directory.zip": make_zip([("a", b"file", None, S), ("a/b.py", b"x", None, S)]),
        "unsafe-symlink-escape.zip": make_zip([("link", b"../../etc/passwd", 0o120777, S)]),
        "unsafe-symlink-chain.zip": make_zip([("c.py", b"x", None, S), ("b", b"c.py", 0o120777, S),
                                              ("a", b"b", 0o120777, S)]),
        "symlink-up.zip": make_zip([("app", None, None, S), ("app/lib", None, None, S), ("app/bin", None, None, S),
                                    ("app/lib/real.py", lib, None, D),
                                    ("app/bin/run", b"./../lib/./real.py", 0o120777, S)]),
        "limit-depth.zip": make_zip([("/".join(["d"] * 70) + "/f.py", b"x", None, S)]),
        "limit-name.zip": make_zip([("n" * 1100 + ".py", b"x", None, S)]),
    }
    # A self-extracting stub before the first entry: bytes no entry accounts for.
    stub = io.BytesIO()
    stub.write(b"#!/bin/sh\nexec python3 \"$0\"\n")
    with zipfile.ZipFile(stub, "w") as zf:
        zf.writestr(_info("lambda_function.py", 0o100644, S), LAMBDA_SOURCE)
    a["malformed-stub-prefix.zip"] = stub.getvalue()
    a["zip64-end.zip"] = with_zip64_end(a["deflated-tree.zip"])
    a["zip64-end-descriptors.zip"] = with_zip64_end(a["descriptors.zip"])
    a["has-comment.zip"] = with_comment(a["stored-one-file.zip"], b"built by CI")
    a["fake-signed.zip"] = fake_signed(a["deflated-tree.zip"])[0]
    return a


# --------------------------------------------------------------------------------------------
# the real CLI (optional)

class Cli:
    """The CLI-made material: a profile, a signed package, its job, and a revocation.
    Everything runs in a private signer home, never against a gate."""

    def __init__(self, binary: str, unsigned: bytes):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="signgate-seeds-")
        home = os.path.join(self.tmp, "home")
        os.mkdir(home)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNGATE_")}
        self.env.update(HOME=self.tmp, LC_ALL="C.UTF-8", SIGNGATE_SIGNER_HOME=home, SIGNGATE_BUCKET_ROOT=self.tmp,
                        SIGNGATE_SOCKET=os.path.join(self.tmp, "no-gate-here.sock"))
        try:
            self.put = self.json("signer", "put-signing-profile", "--profile-name", "SeedProfile",
                                 "--platform-id", "AWSLambda-SHA384-ECDSA",
                                 "--signature-validity-period", "value=135,type=MONTHS")
            self.profile_text = self.run("signer", "get-signing-profile", "--profile-name", "SeedProfile")
            src = os.path.join(self.tmp, "function.zip")
            with open(src, "wb") as f:
                f.write(unsigned)
            dest = os.path.join(self.tmp, "signed")
            os.mkdir(dest)
            job = self.json("signer", "start-signing-job", "--source", src, "--destination", dest,
                            "--profile-name", "SeedProfile")
            self.job_id = job["jobId"]
            self.start_text = json.dumps(job)
            with open(os.path.join(dest, self.job_id + ".zip"), "rb") as f:
                self.signed = f.read()
            self.describe_text = self.run("signer", "describe-signing-job", "--job-id", self.job_id)
            self.list_text = self.run("signer", "list-signing-jobs")
            self.platforms_text = self.run("signer", "list-signing-platforms")
            self.run("signer", "revoke-signature", "--job-id", self.job_id, "--reason", "Key compromise")
            revs = os.path.join(home, "revocations")
            self.revocations = [open(os.path.join(revs, n), "rb").read() for n in sorted(os.listdir(revs))]
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, *args) -> str:
        p = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=120)
        if p.returncode != 0:
            sys.exit("make-seeds: %s %s failed (exit %d): %s" % (self.binary, " ".join(args), p.returncode,
                                                                  p.stderr.strip()))
        return p.stdout

    def json(self, *args):
        return json.loads(self.run(*args))


_cli = None


def cli(unsigned: bytes):
    global _cli
    binary = os.environ.get("SIGNGATE_BIN")
    if not binary:
        return None
    if _cli is None:
        _cli = Cli(binary, unsigned)
    return _cli


def comment_of(data: bytes) -> bytes:
    e = eocd_offset(data)
    return data[e + 22:]


# --------------------------------------------------------------------------------------------
# policy documents

def openssl_profile() -> bytes:
    """A public profile document for a fresh P-384 key made with openssl(1), or None."""
    try:
        key = subprocess.run(["openssl", "ecparam", "-name", "secp384r1", "-genkey", "-noout"],
                             capture_output=True, check=True).stdout
        pem = subprocess.run(["openssl", "ec", "-pubout"], input=key, capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return None
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    version = base64.b32encode(hashlib.sha256(der).digest()).decode().lower()[:10]
    return compact({"profileName": "OpensslProfile", "profileVersion": version, "platformId": "AWSLambda-SHA384-ECDSA",
                    "signatureValidityPeriod": {"value": 5, "type": "YEARS"}, "publicKey": pem,
                    "profileVersionArn": "arn:aws:signer:us-east-1:111111111111:/signing-profiles/OpensslProfile/" + version,
                    "status": "Active", "tags": {"Team": "Platform"}, "createdAt": "2026-01-02T03:04:05Z"})


def policy_docs(cli_made) -> dict:
    arn = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/"
    csc_arn = "arn:aws:lambda:us-east-1:111111111111:code-signing-config:"
    docs = {
        "csc-enforce.json": pretty({
            "CodeSigningConfigId": "csc-0abc0000000000001",
            "CodeSigningConfigArn": csc_arn + "csc-0abc0000000000001",
            "Description": "Production code signing policy",
            "AllowedPublishers": {"SigningProfileVersionArns": [arn + "LambdaProductionProfile/g7ocficmzf"]},
            "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"},
            "LastModified": "2026-01-01T00:00:00Z"}),
        "csc-warn-minimal.json": compact({
            "CodeSigningConfigId": "csc-0abc0000000000002",
            "AllowedPublishers": {"SigningProfileVersionArns": ["SeedProfile/aaaaaaaaaa", arn + "Other_Profile/bbbbbbbbbb"]},
            "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Warn"}}),
        "function-bound.json": pretty({"FunctionName": "my-function", "CodeSigningConfigArn": csc_arn + "csc-0abc0000000000001",
                                       "Layers": ["shared-lib", "tools_v2"]}),
        "function-unbound.json": compact({"FunctionName": "my-function", "CodeSigningConfigArn": None}),
        "revocation-profile.json": pretty({"type": "profile", "profileName": "LambdaProductionProfile",
                                           "profileVersion": "g7ocficmzf", "effectiveTime": "2026-02-12T00:00:00Z",
                                           "reason": "Key compromise"}),
        "revocation-signature.json": compact({"type": "signature", "jobId": REVOKED_JOB, "reason": "leaked"}),
        "settings-full.json": pretty({
            "unboundFunctions": "reject",
            "limits": {"packageBytes": 268435456, "inflatedBytes": 262144000, "entries": 100000, "nameBytes": 1024,
                       "depth": 64},
            "retainReleases": 5,
            "roles": {"admin": {"users": ["root"], "groups": ["wheel"]}, "deployer": {"users": ["ci"], "groups": []},
                      "reader": {"groups": ["adm"]}},
            "socket": {"path": "/run/signgate/api.sock", "group": "signgate", "mode": "0660"},
            "journal": True,
            "hook": {"argv": ["/usr/local/bin/reload-functions", "--quiet"], "timeoutSeconds": 30},
            "audit": {"rotateBytes": 67108864, "keepFiles": 10}}),
        "settings-limits.json": compact({"limits": {"entries": 10, "inflatedBytes": 1048576}, "unboundFunctions": "allow"}),
        "settings-empty.json": b"{}\n",
    }
    p = openssl_profile()
    if p:
        docs["profile-openssl.json"] = p
    if cli_made:
        docs["profile-cli.json"] = cli_made.profile_text.encode()
        for i, text in enumerate(cli_made.revocations):
            docs["revocation-cli-%d.json" % i] = text
    return docs


# --------------------------------------------------------------------------------------------
# queries

def query_seeds(cli_made) -> dict:
    job = "d0bde9ad-feee-4dba-b2d2-d0e9888925e5"
    platforms = {"platforms": [
        {"platformId": "Lambda-SHA384-ECDSA", "displayName": "Lambda ZIP", "target": "Lambda", "category": "AWS",
         "maxSizeInMB": 256, "revocationSupported": True},
        {"platformId": "Blob-SHA384-ECDSA", "displayName": "Any file", "target": "Blob", "category": "Other",
         "maxSizeInMB": 256, "revocationSupported": True}]}
    described = {"jobId": job, "source": {"s3": {"bucketName": "my-deploy-bucket", "key": "unsigned/function.zip",
                                                 "version": "abc123"}},
                 "profileName": "LambdaProductionProfile", "status": "Succeeded",
                 "signedObject": {"s3": {"bucketName": "my-deploy-bucket", "key": "signed/%s.zip" % job}},
                 "signatureExpiresAt": "2038-02-28T01:05:09Z"}
    jobs = {"jobs": [dict(described, createdAt="2026-11-28T01:05:09Z", isRevoked=False),
                     {"jobId": REVOKED_JOB, "profileName": "Other", "createdAt": "2026-11-27T00:00:00Z",
                      "source": {"path": "/srv/function.zip"}, "isRevoked": True}]}
    decisions = {"decisions": [{"outcome": "promoted", "reasons": []},
                               {"outcome": "rejected", "reasons": ["UNSIGNED"]},
                               {"outcome": "rejected", "reasons": ["REVOKED", "EXPIRED"]}]}
    csc = {"CodeSigningConfig": {"CodeSigningConfigId": "csc-0abc0000000000001",
                                 "CodeSigningConfigArn": "arn:signgate:lambda:local:000000000000:code-signing-config:csc-0abc0000000000001",
                                 "AllowedPublishers": {"SigningProfileVersionArns": ["LambdaProductionProfile/g7ocficmzf"]}}}
    profile = {"profileName": "LambdaProductionProfile", "profileVersion": "g7ocficmzf", "tags": {}, "status": "Active"}
    pairs = [
        # The seed's four: its walkthrough's three and its CI workflow's.
        ("platforms", "Platforms[].{Id:PlatformId,Target:Target,Category:Category}", compact(platforms)),
        ("signed-object", "signedObject.s3.key", compact(described)),
        ("jobs", "Jobs[].{JobId:JobId,Profile:ProfileName,Created:CreatedAt,Source:Source.S3.Key}", compact(jobs)),
        ("job-id", "jobId", compact({"jobId": job})),
        # The README's walkthrough against a gate.
        ("profile-version", "profileVersion", compact(profile)),
        ("csc-arn", "CodeSigningConfig.CodeSigningConfigArn", compact(csc)),
        ("decisions", "Decisions[].[outcome, reasons[0]]", compact(decisions)),
        # The rest of the subset: quoted names, negative index, flatten, value projection, pipes.
        ("subset", 'jobs[*].source.* | [] | [-1]', compact(jobs)),
        ("subset-hash", '"platforms"[0].{"id": platformId, both: [target, category], self: @}', compact(platforms)),
        ("subset-values", "*.s3.[bucketName, key]", compact(described)),
    ]
    seeds = {"%s.txt" % name: expr.encode() + b"\0" + doc for name, expr, doc in pairs}
    if cli_made:
        for name, expr, text in (("cli-platforms", pairs[0][1], cli_made.platforms_text),
                                 ("cli-describe", "signedObject.path", cli_made.describe_text),
                                 ("cli-jobs", pairs[2][1], cli_made.list_text),
                                 ("cli-start", "jobId", cli_made.start_text)):
            seeds[name + ".txt"] = expr.encode() + b"\0" + text.encode()
    # No document: the expression alone, evaluated against null.
    seeds["expr-only.txt"] = b"Jobs[].{JobId:JobId}"
    return seeds


# --------------------------------------------------------------------------------------------
# API requests

FUZZ_API_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz-api.c")
API_CSC = "csc-0000000000000f0a1"  # the code signing config in fuzz-api.c's store


def fuzz_api_profile() -> tuple:
    """(PEM, version) of the profile key fuzz-api.c's store holds: read from its FUZZ_PUBLIC_KEY,
    so the seeds and the harness cannot drift apart."""
    with open(FUZZ_API_SOURCE) as f:
        src = f.read()
    pem = ""
    for line in src[src.index("#define FUZZ_PUBLIC_KEY"):].splitlines()[1:]:
        line = line.strip().rstrip("\\").strip()  # one C string literal per line, then a backslash
        if not line.startswith('"'):
            break
        pem += json.loads(line)  # its escapes (\n) read the same in JSON
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    return pem, base64.b32encode(hashlib.sha256(der).digest()).decode().lower()[:10]


def request(method: str, path: str, body=None) -> bytes:
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    else:
        data = compact(body)
    return method.encode() + b" " + path.encode() + b"\n\n" + data


def api_seeds() -> dict:
    pem, version = fuzz_api_profile()
    csc_arn = "arn:signgate:lambda:local:000000000000:code-signing-config:" + API_CSC
    signer_arn = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/"
    profile = {"profileName": "FuzzProfile", "profileVersion": version, "platformId": "AWSLambda-SHA384-ECDSA",
               "signatureValidityPeriod": {"value": 135, "type": "MONTHS"}, "publicKey": pem}
    full_profile = {"profileName": "OtherProfile", "profileVersion": version,
                    "profileVersionArn": signer_arn + "OtherProfile/" + version, "platformId": "Lambda-SHA384-ECDSA",
                    "signatureValidityPeriod": {"value": 5, "type": "YEARS"}, "publicKey": pem, "status": "Active",
                    "tags": {"Team": "Platform"}, "createdAt": "2026-01-02T03:04:05Z"}
    csc_body = {"Description": "Production code signing policy",
                "AllowedPublishers": {"SigningProfileVersionArns": [signer_arn + "FuzzProfile/" + version]},
                "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"}}
    job = "d0bde9ad-feee-4dba-b2d2-d0e9888925e5"
    good = {
        # uploads: the body is a package, which fuzz-package covers; only the path counts here
        "upload-function": request("PUT", "/v1/functions/my-function/code", b"PK\x05\x06" + b"\0" * 18),
        "publish-layer": request("POST", "/v1/layers/shared-lib/versions"),
        "create-function": request("POST", "/v1/functions", {"FunctionName": "my-function", "CodeSigningConfigArn": csc_arn,
                                                              "Layers": ["shared-lib"]}),
        "create-function-unbound": request("POST", "/v1/functions", {"FunctionName": "tools_v2", "CodeSigningConfigArn": None,
                                                                      "Runtime": "python3.12", "Role": "arn:aws:iam::1:role/x",
                                                                      "Handler": "app.handler", "Description": "tools"}),
        "list-functions": request("GET", "/v1/functions"),
        "get-function": request("GET", "/v1/functions/fn-bound"),
        "delete-function": request("DELETE", "/v1/functions/fn-unbound"),
        "put-function-csc": request("PUT", "/v1/functions/fn-unbound/code-signing-config", {"CodeSigningConfigArn": csc_arn}),
        "put-function-csc-id": request("PUT", "/v1/functions/fn-bound/code-signing-config", {"CodeSigningConfigArn": API_CSC}),
        "get-function-csc": request("GET", "/v1/functions/fn-bound/code-signing-config"),
        "delete-function-csc": request("DELETE", "/v1/functions/fn-bound/code-signing-config"),
        "rollback": request("POST", "/v1/functions/fn-bound/rollback"),
        "create-csc": request("POST", "/v1/code-signing-configs", csc_body),
        "create-csc-warn": request("POST", "/v1/code-signing-configs", {
            "AllowedPublishers": {"SigningProfileVersionArns": ["FuzzProfile/" + version, "Other_Profile/bbbbbbbbbb"]},
            "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Warn"}, "Tags": {"env": "prod"}}),
        "list-cscs": request("GET", "/v1/code-signing-configs"),
        "get-csc": request("GET", "/v1/code-signing-configs/" + API_CSC),
        "get-csc-arn": request("GET", "/v1/code-signing-configs/" + csc_arn),
        "update-csc": request("PUT", "/v1/code-signing-configs/" + API_CSC, {"Description": "updated",
                                                                            "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Warn"}}),
        "delete-csc": request("DELETE", "/v1/code-signing-configs/" + API_CSC),
        "put-profile-same": request("PUT", "/v1/signing-profiles/FuzzProfile", profile),
        "put-profile-new": request("PUT", "/v1/signing-profiles/OtherProfile", full_profile),
        "list-profiles": request("GET", "/v1/signing-profiles"),
        "revoke-profile": request("POST", "/v1/signing-profiles/FuzzProfile/revoke",
                                  {"profileVersion": version, "effectiveTime": "2029-02-12T00:00:00Z", "reason": "Key compromise"}),
        "revoke-profile-now": request("POST", "/v1/signing-profiles/FuzzProfile/revoke", {"profileVersion": version}),
        "revoke-signature": request("POST", "/v1/signatures/%s/revoke" % job, {"reason": "leaked", "jobOwner": "111111111111"}),
        "revoke-signature-empty": request("POST", "/v1/signatures/%s/revoke" % job),
        "decisions": request("GET", "/v1/decisions?function=fn-bound&outcome=rejected&limit=10"),
        "decisions-all": request("GET", "/v1/decisions"),
        "health": request("GET", "/v1/health"),
        "metrics": request("GET", "/metrics"),
    }
    bad = {
        "bad-method": request("DELETE", "/v1/health"),
        "bad-method-long": request("VERYLONGMETHODNAMEXYZ", "/v1/functions"),
        "bad-path": request("GET", "/v1/nothing-here"),
        "bad-path-double-slash": request("GET", "/v1//functions"),
        "bad-path-extra": request("GET", "/v1/functions/f/code/extra"),
        "bad-path-long-segment": request("GET", "/v1/functions/" + "a" * 192),
        "bad-path-long": request("GET", "/v1/functions/" + "/".join(["b" * 190] * 6)),
        "bad-path-percent": request("GET", "/v1/functions/%2e%2e%2Fx%00y"),
        "bad-path-utf8": request("PUT", "/v1/functions/%C3%A9t%C3%A9/code"),
        "bad-decisions": request("GET", "/v1/decisions?limit=1001&outcome=maybe&function=a.b"),
        "bad-body-unknown": request("POST", "/v1/functions", b'{"FunctionName":"f","Memory":128}'),
        "bad-body-repeated": request("POST", "/v1/functions", b'{"FunctionName":"f","FunctionName":"g"}'),
        "bad-body-array": request("PUT", "/v1/code-signing-configs/" + API_CSC, b"[]"),
        "bad-body-trailing": request("POST", "/v1/code-signing-configs", compact(csc_body) + b" x"),
        "bad-body-two": request("POST", "/v1/signing-profiles/FuzzProfile/revoke", b'{"profileVersion":"%s"}{}' % version.encode()),
        "bad-body-empty": request("PUT", "/v1/signing-profiles/FuzzProfile"),
        "bad-body-nul-key": request("POST", "/v1/functions", b'{"FunctionName\\u0000x":"f"}'),
        "bad-function-exists": request("POST", "/v1/functions", {"FunctionName": "fn-bound"}),
        "bad-function-csc-missing": request("PUT", "/v1/functions/fn-bound/code-signing-config", {}),
        "bad-revoke-reason-type": request("POST", "/v1/signing-profiles/FuzzProfile/revoke",
                                          {"profileVersion": version, "effectiveTime": "2029-01-01T00:00:00Z", "reason": 5}),
        "bad-csc-unknown": request("PUT", "/v1/functions/fn-unbound/code-signing-config",
                                   {"CodeSigningConfigArn": "csc-00000000000000000"}),
        "bad-revoke-future": request("POST", "/v1/signing-profiles/FuzzProfile/revoke",
                                     {"profileVersion": version, "effectiveTime": "2031-01-01T00:00:00+14:00"}),
        "bad-revoke-long-reason": request("POST", "/v1/signatures/%s/revoke" % job, {"reason": "r" * 1025}),
        "bad-profile-key": request("PUT", "/v1/signing-profiles/FuzzProfile", dict(profile, publicKey=pem.replace("A", "B", 1))),
        "bad-function-layers": request("POST", "/v1/functions", {"FunctionName": "f", "Layers": ["a", "b", "c", "d", "e", "f"]}),
        "bad-framing": b"GET",
    }
    seeds = {}
    for name, data in list(good.items()) + list(bad.items()):
        seeds[name + ".req"] = data
    return seeds


API_TOKENS = [b"GET ", b"PUT ", b"POST ", b"DELETE ", b"\n\n", b"/v1", b"/functions", b"/layers", b"/versions", b"/code",
              b"/code-signing-config", b"/code-signing-configs", b"/rollback", b"/signing-profiles", b"/revoke",
              b"/signatures", b"/decisions", b"/health", b"/metrics", b"?function=", b"&outcome=", b"&limit=",
              b"%2F", b"%00", b"%", b"//", API_CSC.encode(), b"arn:signgate:lambda:local:000000000000:code-signing-config:",
              b"/signing-profiles/FuzzProfile/", b"fn-bound", b"fn-unbound", b"FuzzProfile"]


# --------------------------------------------------------------------------------------------
# dictionaries

def dict_line(token: bytes) -> str:
    out = []
    for b in token:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    return '"%s"' % "".join(out)


JSON_TOKENS = [b"{", b"}", b"[", b"]", b":", b",", b'"', b"null", b"true", b"false", b"-0", b"1e308", b"\\u0000",
               b"\\ud800", b"2026-01-02T03:04:05Z", b"0000-01-01T00:00:00Z", b"9999-12-31T23:59:59Z", b"+14:00", b".5"]
POLICY_KEYS = [
    "profileName", "profileVersion", "platformId", "signatureValidityPeriod", "value", "type", "publicKey",
    "profileVersionArn", "status", "tags", "createdAt", "arn", "DAYS", "MONTHS", "YEARS", "Active", "Revoked",
    "Canceled", "AWSLambda-SHA384-ECDSA", "Lambda-SHA384-ECDSA", "Blob-SHA384-ECDSA", "/signing-profiles/",
    "CodeSigningConfigId", "AllowedPublishers", "CodeSigningPolicies", "CodeSigningConfigArn", "Description",
    "LastModified", "SigningProfileVersionArns", "UntrustedArtifactOnDeployment", "Enforce", "Warn",
    ":code-signing-config:", "csc-", "FunctionName", "Layers", "profile", "signature", "jobId", "effectiveTime",
    "reason", "unboundFunctions", "reject", "allow", "limits", "packageBytes", "inflatedBytes", "entries",
    "nameBytes", "depth", "retainReleases", "roles", "admin", "deployer", "reader", "users", "groups", "socket",
    "path", "group", "mode", "journal", "hook", "argv", "timeoutSeconds", "audit", "rotateBytes", "keepFiles",
    "-----BEGIN PUBLIC KEY-----\n", "-----END PUBLIC KEY-----\n"]
STATEMENT_KEYS = ["_type", "subject", "name", "digest", "sha384", "predicateType", "predicate", "platformId",
                  "profileName", "profileVersion", "jobId", "signedAt", "signatureExpiresAt", "size", "payloadType",
                  "payload", "signatures", "keyid", "sig", STATEMENT_TYPE, PREDICATE_TYPE, PAYLOAD_TYPE, PLATFORM,
                  FUZZ_PROFILE, FUZZ_VERSION, REVOKED_JOB]


def dictionary(target: str) -> list:
    if target == "package":
        toks = [b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x07\x08",
                b"\xff\xff\xff\xff", b"\xff\xff", b"\x01\x00", b"\x08\x00", b"\x14\x00", b"\x2d\x00", b"\x00\x03",
                b"\xed\x41", b"\xa4\x81", b"\xff\xa1", b"/", b"../", b"./", b"C:", b"\\", MAGIC]
        return toks + [b'"%s"' % k.encode() for k in STATEMENT_KEYS]
    if target == "envelope":
        return [MAGIC] + JSON_TOKENS + [b'"%s"' % k.encode() for k in STATEMENT_KEYS] + [b"==", b"="]
    if target == "policy-docs":
        return JSON_TOKENS + [b'"%s"' % k.encode() for k in POLICY_KEYS]
    if target == "api":
        keys = POLICY_KEYS + ["Runtime", "Role", "Handler", "Tags", "jobOwner"]
        return API_TOKENS + JSON_TOKENS + [b'"%s"' % k.encode() for k in keys]
    return [b"\0", b".", b"[*]", b"[]", b"[0]", b"[-1]", b".*", b"*", b"|", b"@", b"{", b"}", b",", b":", b'"',
            b"[?", b"&&", b"||", b"`", b"'", b"!", b"==", b"(", b")", b"\\u00e9", b"Jobs", b"jobId", b"s3"] + JSON_TOKENS


# --------------------------------------------------------------------------------------------

def seeds_for(target: str) -> dict:
    if target == "api":
        return api_seeds()  # neither archives nor the CLI
    zips = archives()
    cli_made = cli(zips["deflated-tree.zip"])
    if target == "package":
        seeds = dict(zips)
        if cli_made:
            seeds["cli-signed.zip"] = cli_made.signed
        return seeds
    if target == "envelope":
        _, block, stmt = fake_signed(zips["deflated-tree.zip"])
        _, _, revoked = fake_signed(zips["stored-one-file.zip"], job=REVOKED_JOB, signed="2026-03-04T05:06:07+02:00")
        _, _, other = fake_signed(zips["symlink.zip"], name="SeedProfile", version="bbbbbbbbbb",
                                  signed="2026-01-02T03:04:05.123Z", expires="2027-01-02T03:04:05-05:30")
        blob = dict(other, predicate=dict(other["predicate"], platformId="Blob-SHA384-ECDSA"))
        seeds = {"block-fake.sig": block, "statement-fake.json": compact(stmt),
                 "statement-revoked-job.json": compact(revoked), "statement-other-profile.json": compact(other),
                 "statement-blob.json": compact(blob)}
        if cli_made:
            cblock = comment_of(cli_made.signed)
            env = json.loads(cblock[len(MAGIC):])
            seeds["block-cli.sig"] = cblock
            seeds["statement-cli.json"] = base64.b64decode(env["payload"])
        return seeds
    if target == "policy-docs":
        return policy_docs(cli_made)
    return query_seeds(cli_made)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", action="append", choices=TARGETS, help="only this target (repeatable)")
    ap.add_argument("out", help="output directory: OUT/NAME/ and OUT/NAME.dict per target")
    args = ap.parse_args()
    for target in args.target or TARGETS:
        seeds = seeds_for(target)
        d = os.path.join(args.out, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in sorted(seeds.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        with open(os.path.join(args.out, target + ".dict"), "w") as f:
            f.write("# libFuzzer dictionary for fuzz-%s, written by make-seeds.py\n" % target)
            f.writelines(dict_line(t) + "\n" for t in dictionary(target))
        print("make-seeds: %d %s seeds in %s" % (len(seeds), target, d))


if __name__ == "__main__":
    main()
