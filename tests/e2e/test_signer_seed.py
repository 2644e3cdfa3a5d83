"""The seed article's signer commands, run as written with `aws` replaced by `signgate`.

S3 locations map under the bucket root (SIGNGATE_BUCKET_ROOT): bucket B, key K is
BUCKET_ROOT/B/K. Every command below is copied from the seed; only the binary and the
environment (a private signer home and bucket root) differ.
"""

import json
import os
import shlex
import stat
import subprocess
import zipfile

import pytest

SEED_COMMANDS = {
    "put_profile": """signgate signer put-signing-profile \\
  --profile-name LambdaProductionProfile \\
  --platform-id AWSLambda-SHA384-ECDSA \\
  --signature-validity-period value=135,type=MONTHS \\
  --tags Environment=Production,Team=Platform""",
    "list_platforms": """signgate signer list-signing-platforms \\
  --query 'Platforms[].{Id:PlatformId,Target:Target,Category:Category}'""",
    "get_profile": """signgate signer get-signing-profile \\
  --profile-name LambdaProductionProfile""",
    "start_job": """signgate signer start-signing-job \\
  --source '{
    "s3": {
      "bucketName": "my-deploy-bucket",
      "key": "unsigned/function.zip",
      "version": "abc123"
    }
  }' \\
  --destination '{
    "s3": {
      "bucketName": "my-deploy-bucket",
      "prefix": "signed/"
    }
  }' \\
  --profile-name LambdaProductionProfile""",
    "list_jobs": """signgate signer list-signing-jobs \\
  --status Succeeded \\
  --query 'Jobs[].{JobId:JobId,Profile:ProfileName,Created:CreatedAt,Source:Source.S3.Key}'""",
    "revoke_profile": """signgate signer revoke-signing-profile \\
  --profile-name LambdaProductionProfile \\
  --profile-version {version} \\
  --reason "Key compromise" \\
  --effective-time "2026-02-12T00:00:00Z\"""",
}


@pytest.fixture
def seed(tmp_path, signgate):
    """Runs seed command lines through a shell with `signgate` on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(signgate, bindir / "signgate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNGATE_")}
    env.update(PATH="%s:%s" % (bindir, env.get("PATH", "/usr/bin:/bin")),
               HOME=str(tmp_path / "home"), SIGNGATE_SIGNER_HOME=str(tmp_path / "signer"),
               SIGNGATE_BUCKET_ROOT=str(tmp_path / "buckets"),
               SIGNGATE_SOCKET=str(tmp_path / "no-gate.sock"))
    (tmp_path / "buckets" / "my-deploy-bucket" / "unsigned").mkdir(parents=True)

    def sh(cmd, check=0):
        p = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check is not None:
            assert p.returncode == check, "%s\nexit %d\nstdout: %s\nstderr: %s" % (
                cmd, p.returncode, p.stdout, p.stderr)
        return p
    sh.root = tmp_path
    return sh


def make_function_zip(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lambda_function.py", "def handler(event, context):\n    return 42\n")
        z.writestr("package/helper.py", "X = 1\n")


def test_seed_signer_walkthrough_runs_as_written(seed):
    root = seed.root
    out = json.loads(seed(SEED_COMMANDS["put_profile"]).stdout)
    assert out["arn"] == "LambdaProductionProfile"
    version = out["profileVersion"]
    assert len(version) == 10 and out["profileVersionArn"] == "LambdaProductionProfile/" + version

    platforms = json.loads(seed(SEED_COMMANDS["list_platforms"]).stdout)
    assert {"Id": "Lambda-SHA384-ECDSA", "Target": "Lambda", "Category": "AWS"} in platforms

    prof = json.loads(seed(SEED_COMMANDS["get_profile"]).stdout)
    assert prof["profileName"] == "LambdaProductionProfile"
    assert prof["signatureValidityPeriod"] == {"value": 135, "type": "MONTHS"}
    assert prof["tags"] == {"Environment": "Production", "Team": "Platform"}
    assert prof["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    assert prof["status"] == "Active"

    # Step 1 of the seed: the upload to S3 is a copy under the bucket root.
    make_function_zip(root / "function.zip")
    seed("cp function.zip buckets/my-deploy-bucket/unsigned/function.zip")

    job = json.loads(seed(SEED_COMMANDS["start_job"]).stdout)["jobId"]
    desc = json.loads(seed("signgate signer describe-signing-job --job-id %s" % job).stdout)
    assert desc["status"] == "Succeeded"
    assert desc["profileName"] == "LambdaProductionProfile" and desc["profileVersion"] == version
    assert desc["source"]["s3"] == {"bucketName": "my-deploy-bucket",
                                     "key": "unsigned/function.zip", "version": "abc123"}
    assert desc["signedObject"]["s3"]["key"] == "signed/%s.zip" % job

    # The CI/CD workflow's steps: --query jobId --output text, the waiter, the signed key.
    job2 = seed("""signgate signer start-signing-job \
            --source '{"s3":{"bucketName":"my-deploy-bucket","key":"unsigned/function.zip"}}' \
            --destination '{"s3":{"bucketName":"my-deploy-bucket","prefix":"signed/"}}' \
            --profile-name LambdaProductionProfile \
            --query 'jobId' --output text""").stdout.strip()
    assert len(job2) == 36 and job2 != job
    seed("signgate signer wait successful-signing-job --job-id %s" % job2)
    key = seed("""signgate signer describe-signing-job \
            --job-id %s \
            --query 'signedObject.s3.key' --output text""" % job2).stdout.strip()
    signed = root / "buckets" / "my-deploy-bucket" / key
    assert signed.is_file()
    # Still an ordinary ZIP: every ZIP tool reads it.
    with zipfile.ZipFile(signed) as z:
        assert sorted(z.namelist()) == ["lambda_function.py", "package/helper.py"]
        assert z.testzip() is None
    assert subprocess.run(["unzip", "-tq", str(signed)], capture_output=True).returncode == 0

    jobs = json.loads(seed(SEED_COMMANDS["list_jobs"]).stdout)
    assert [j["JobId"] for j in jobs] == [job, job2]
    assert all(j["Profile"] == "LambdaProductionProfile" and j["Source"] == "unsigned/function.zip"
               and j["Created"].endswith("Z") for j in jobs)

    # The signed package verifies offline against the published profile document.
    seed("signgate signer get-signing-profile --profile-name LambdaProductionProfile > prof.json")
    dec = json.loads(seed("signgate verify %s --profile-doc prof.json" % shlex.quote(str(signed))).stdout)
    assert dec["outcome"] == "promoted" and dec["signature"]["jobId"] == job2

    revoked = json.loads(seed(SEED_COMMANDS["revoke_profile"].replace("{version}", version)).stdout)
    assert revoked == {"type": "profile", "profileName": "LambdaProductionProfile",
                       "profileVersion": version, "effectiveTime": "2026-02-12T00:00:00Z",
                       "reason": "Key compromise"}
    # Revocation documents land in the keystore in the policy store's schema.
    revdir = root / "signer" / "revocations"
    assert json.loads((revdir / ("profile-LambdaProductionProfile@%s.json" % version)).read_text()) == revoked
    prof = json.loads(seed(SEED_COMMANDS["get_profile"]).stdout)
    assert prof["status"] == "Revoked"
    # A revoked profile signs nothing more.
    p = seed(SEED_COMMANDS["start_job"], check=1)
    assert "is Revoked" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_private_key_is_mode_0600_and_never_printed(seed):
    outputs = [seed(SEED_COMMANDS["put_profile"]).stdout, seed(SEED_COMMANDS["get_profile"]).stdout,
               seed("signgate signer list-signing-profiles").stdout]
    assert not any("PRIVATE" in o for o in outputs)
    keys = list((seed.root / "signer" / "keys").iterdir())
    assert len(keys) == 1
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((seed.root / "signer").stat().st_mode) == 0o700
    assert stat.S_IMODE((seed.root / "signer" / "keys").stat().st_mode) == 0o700
    assert "BEGIN PRIVATE KEY" in keys[0].read_text()  # PEM PKCS#8
    # A key that others can read is refused, not used.
    keys[0].chmod(0o644)
    make_function_zip(seed.root / "f.zip")
    p = seed("signgate signer start-signing-job --source f.zip --destination out "
             "--profile-name LambdaProductionProfile", check=2)
    assert "readable by others" in p.stderr
    assert not (seed.root / "out").exists() or not list((seed.root / "out").iterdir())


def test_second_put_is_refused_and_rotate_makes_a_new_version(seed):
    v1 = json.loads(seed(SEED_COMMANDS["put_profile"]).stdout)["profileVersion"]
    p = seed(SEED_COMMANDS["put_profile"], check=1)
    assert "already exists" in p.stderr and v1 in p.stderr
    v2 = json.loads(seed(SEED_COMMANDS["put_profile"] + " --rotate").stdout)["profileVersion"]
    assert v2 != v1
    listed = json.loads(seed("signgate signer list-signing-profiles").stdout)["profiles"]
    assert {x["profileVersion"]: x["status"] for x in listed} == {v1: "Canceled", v2: "Active"}
    make_function_zip(seed.root / "f.zip")
    job = json.loads(seed("signgate signer start-signing-job --source f.zip --destination out "
                          "--profile-name LambdaProductionProfile").stdout)["jobId"]
    desc = json.loads(seed("signgate signer describe-signing-job --job-id " + job).stdout)
    assert desc["profileVersion"] == v2  # the one active version signs
    p = seed("signgate signer start-signing-job --source f.zip --destination out "
             "--profile-name LambdaProductionProfile --profile-version " + v1, check=1)
    assert "Canceled" in p.stderr


@pytest.mark.parametrize("args,needle", [
    ("signer put-signing-profile --profile-name x --platform-id AWSLambda-SHA384-ECDSA", "--profile-name"),
    ("signer put-signing-profile --profile-name Good --platform-id Nope", "unknown platform"),
    ("signer put-signing-profile --profile-name Good --platform-id AWSLambda-SHA384-ECDSA "
     "--signature-validity-period value=136,type=MONTHS", "135 months"),
    ("signer put-signing-profile --profile-name Good --platform-id AWSLambda-SHA384-ECDSA --bogus 1",
     "unknown option '--bogus'"),
    ("signer describe-signing-job --job-id 00000000-0000-4000-8000-000000000000", "not found"),
    ("signer nope", "unknown verb"),
    ("signer start-signing-job --source '{\"s3\":{\"bucketName\":\"b\",\"key\":\"../../etc/passwd\"}}' "
     "--destination out --profile-name P1", "bucket root"),
    ("--output yaml signer list-signing-platforms", "--output"),
    ("--query 'a[?b]' signer list-signing-platforms", "unsupported JMESPath"),
])
def test_bad_input_gets_one_clear_line_and_nonzero_exit(seed, args, needle):
    seed("signgate signer put-signing-profile --profile-name P1 --platform-id AWSLambda-SHA384-ECDSA")
    p = seed("signgate " + args, check=None)
    assert p.returncode in (1, 2), p
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("signgate: ") and needle in lines[0], p.stderr
    assert p.stdout == ""


def test_refused_source_records_a_failed_job_and_the_waiter_fails(seed):
    seed(SEED_COMMANDS["put_profile"])
    (seed.root / "notazip.zip").write_bytes(b"hello, not a zip\n")
    p = seed("signgate signer start-signing-job --source notazip.zip --destination out "
             "--profile-name LambdaProductionProfile", check=1)
    assert "notazip.zip" in p.stderr and "not a ZIP" in p.stderr
    assert not list((seed.root / "out").glob("*"))  # no partial output
    job = p.stderr.split("job ")[1].split(" ")[0]
    failed = json.loads(seed("signgate signer list-signing-jobs --status Failed").stdout)["jobs"]
    assert [j["jobId"] for j in failed] == [job] and "not a ZIP" in failed[0]["statusReason"]
    w = seed("signgate signer wait successful-signing-job --job-id " + job, check=255)
    assert "Waiter SuccessfulSigningJob failed" in w.stderr


def test_revocation_effective_time_can_move_earlier_never_later_nor_future(seed):
    v = json.loads(seed(SEED_COMMANDS["put_profile"]).stdout)["profileVersion"]
    base = ("signgate signer revoke-signing-profile --profile-name LambdaProductionProfile "
            "--profile-version %s --reason r --effective-time " % v)
    p = seed(base + "2999-01-01T00:00:00Z", check=1)
    assert "future" in p.stderr
    seed(base + "2026-02-12T00:00:00Z")
    p = seed(base + "2026-03-01T00:00:00Z", check=1)
    assert "only move earlier" in p.stderr
    doc = json.loads(seed(base + "2026-01-01T00:00:00Z").stdout)
    assert doc["effectiveTime"] == "2026-01-01T00:00:00Z"


def test_revoke_signature_is_recorded_and_shown_by_describe(seed):
    seed(SEED_COMMANDS["put_profile"])
    make_function_zip(seed.root / "f.zip")
    job = json.loads(seed("signgate signer start-signing-job --source f.zip --destination out "
                          "--profile-name LambdaProductionProfile").stdout)["jobId"]
    doc = json.loads(seed("signgate signer revoke-signature --job-id %s --reason leaked" % job).stdout)
    assert doc == {"type": "signature", "jobId": job, "reason": "leaked"}
    desc = json.loads(seed("signgate signer describe-signing-job --job-id " + job).stdout)
    assert desc["revocationRecord"]["reason"] == "leaked"
    revoked = json.loads(seed("signgate signer list-signing-jobs --is-revoked").stdout)["jobs"]
    assert [j["jobId"] for j in revoked] == [job]
    assert json.loads((seed.root / "signer" / "revocations" / ("signature-%s.json" % job)).read_text()) == doc


def write_policy_store(root, profile_doc, *, policy="Enforce", revocations=(), publishers=None):
    """A policy store in the gate's own schema (DESIGN §7)."""
    prof = json.loads(profile_doc)
    name, ver = prof["profileName"], prof["profileVersion"]
    for d in ("signing-profiles", "code-signing-configs", "functions", "revocations"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "signing-profiles" / ("%s@%s.json" % (name, ver))).write_text(profile_doc)
    csc = "csc-0123456789abcdef0"
    (root / "code-signing-configs" / (csc + ".json")).write_text(json.dumps({
        "CodeSigningConfigId": csc,
        "AllowedPublishers": {"SigningProfileVersionArns": publishers or [
            "arn:aws:signer:us-east-1:111111111111:/signing-profiles/%s/%s" % (name, ver)]},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": policy}}))
    (root / "functions" / "my-function.json").write_text(json.dumps({
        "FunctionName": "my-function",
        "CodeSigningConfigArn": "arn:aws:lambda:us-east-1:111111111111:code-signing-config:" + csc}))
    (root / "functions" / "loose.json").write_text(json.dumps({"FunctionName": "loose"}))
    for i, r in enumerate(revocations):
        (root / "revocations" / ("r%d.json" % i)).write_text(json.dumps(r))
    return csc


def test_verify_with_policy_dir_makes_the_gates_decisions(seed):
    v = json.loads(seed(SEED_COMMANDS["put_profile"]).stdout)["profileVersion"]
    make_function_zip(seed.root / "f.zip")
    job = json.loads(seed("signgate signer start-signing-job --source f.zip --destination out "
                          "--profile-name LambdaProductionProfile").stdout)["jobId"]
    signed = "out/%s.zip" % job
    doc = seed(SEED_COMMANDS["get_profile"]).stdout
    pol = seed.root / "policy"

    def verify(function, extra="", check=None):
        p = seed("signgate verify %s --policy-dir policy --function %s %s" % (signed, function, extra),
                 check=check)
        return p.returncode, json.loads(p.stdout)

    csc = write_policy_store(pol, doc)
    rc, d = verify("my-function")
    assert (rc, d["outcome"], d["codeSigningConfig"], d["policy"]) == (0, "promoted", csc, "Enforce")
    rc, d = verify("nobody")
    assert (rc, d["reasons"]) == (1, ["UNKNOWN_FUNCTION"])
    rc, d = verify("loose")  # declared without a CSC, unboundFunctions reject (default)
    assert (rc, d["reasons"]) == (1, ["UNKNOWN_FUNCTION"])
    (seed.root / "allow.json").write_text('{"unboundFunctions": "allow"}')
    rc, d = verify("loose", "--settings allow.json")
    assert (rc, d["outcome"], d["reasons"]) == (0, "promoted", [])

    write_policy_store(pol, doc, revocations=[{"type": "signature", "jobId": job, "reason": "x"}])
    rc, d = verify("my-function")
    assert (rc, d["reasons"]) == (1, ["REVOKED"])

    # Revoked from a time before signing: the first-seen record (now) is after it → REVOKED.
    for f in (pol / "revocations").iterdir():
        f.unlink()
    write_policy_store(pol, doc, policy="Warn", revocations=[{
        "type": "profile", "profileName": "LambdaProductionProfile", "profileVersion": v,
        "effectiveTime": "2026-02-12T00:00:00Z", "reason": "Key compromise"}])
    rc, d = verify("my-function")
    assert (rc, d["outcome"], d["reasons"]) == (0, "promoted-with-warnings", ["REVOKED"])

    other = "OtherProfile/abcdefghij"
    for f in (pol / "revocations").iterdir():
        f.unlink()
    write_policy_store(pol, doc, publishers=[other])
    rc, d = verify("my-function")
    assert (rc, d["reasons"]) == (1, ["UNTRUSTED_PUBLISHER"])

    # A broken store file is an error naming the file, exit 2, no decision.
    (pol / "functions" / "my-function.json").write_text("{")
    p = seed("signgate verify %s --policy-dir policy --function my-function" % signed, check=2)
    assert "functions/my-function.json" in p.stderr and p.stdout == ""


def test_blob_platform_signs_any_file_with_a_detached_sig(seed):
    seed("signgate signer put-signing-profile --profile-name Blobs --platform-id Blob-SHA384-ECDSA")
    (seed.root / "firmware.bin").write_bytes(os.urandom(100000))
    seed("signgate signer start-signing-job --source firmware.bin --profile-name Blobs")
    sig = seed.root / "firmware.bin.sig"
    assert sig.read_bytes().startswith(b"signgate-signature-v1\n")
    seed("signgate signer get-signing-profile --profile-name Blobs > blobs.json")
    d = json.loads(seed("signgate verify firmware.bin --signature firmware.bin.sig "
                        "--profile-doc blobs.json").stdout)
    assert d["outcome"] == "promoted"
    data = bytearray((seed.root / "firmware.bin").read_bytes())
    data[5000] ^= 1
    (seed.root / "firmware.bin").write_bytes(bytes(data))
    p = seed("signgate verify firmware.bin --signature firmware.bin.sig --profile-doc blobs.json", check=1)
    assert json.loads(p.stdout)["reasons"] == ["INTEGRITY"]
