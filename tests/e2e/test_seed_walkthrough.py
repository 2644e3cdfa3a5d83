"""The seed article's Lambda code-signing walkthrough on one host with a running gate,
in the README's command forms: `aws` replaced by `signgate`, S3 locations under the bucket
root, the gate reached on its API socket (SIGNGATE_SOCKET, or the global option --gate).

  put-signing-profile            (registers the profile with the local gate)
  lambda create-code-signing-config --description "Production code signing policy" ...
  lambda create-function --function-name my-function
  lambda put-function-code-signing-config --function-name my-function --code-signing-config-arn ARN
  signer start-signing-job ...   (the seed's S3 JSON)
  lambda update-function-code --s3-bucket my-deploy-bucket --s3-key signed/JOB.zip      -> promoted
  lambda update-function-code --zip-file fileb://unsigned-function.zip                  -> rejected
  signer revoke-signing-profile ... --effective-time NOW, then a deploy                 -> REVOKED

The deploy after the revocation is of a package signed before it and never deployed (v2): the
package the gate already promoted (v1) stays valid when the effective time is later than the
time the gate first saw it (DESIGN §5), as the seed says ("Functions already deployed continue
running"); the test checks that too.

Run: SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_seed_walkthrough.py
"""

import json
import os
import re
import socket
import subprocess
import zipfile
from datetime import datetime, timezone

import pytest

from gate import gate, journald, poll, signgated  # noqa: F401

ACCOUNT_ARN = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/"

PUT_PROFILE = """signgate signer put-signing-profile \\
  --profile-name LambdaProductionProfile \\
  --platform-id AWSLambda-SHA384-ECDSA \\
  --signature-validity-period value=135,type=MONTHS"""

GET_VERSION = """signgate signer get-signing-profile --profile-name LambdaProductionProfile \\
  --query profileVersion --output text"""

CREATE_CSC = """signgate lambda create-code-signing-config \\
  --description "Production code signing policy" \\
  --allowed-publishers '{
    "SigningProfileVersionArns": [
      "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/'$VERSION'"
    ]
  }' \\
  --code-signing-policies '{
    "UntrustedArtifactOnDeployment": "Enforce"
  }' --query CodeSigningConfig.CodeSigningConfigArn --output text"""

CREATE_FUNCTION = "signgate lambda create-function --function-name my-function"

PUT_FUNCTION_CSC = """signgate lambda put-function-code-signing-config \\
  --function-name my-function \\
  --code-signing-config-arn "$CSC_ARN\""""

START_JOB = """signgate signer start-signing-job \\
  --source '{"s3":{"bucketName":"my-deploy-bucket","key":"unsigned/function.zip"}}' \\
  --destination '{"s3":{"bucketName":"my-deploy-bucket","prefix":"signed/"}}' \\
  --profile-name LambdaProductionProfile --query jobId --output text"""

SIGNED_KEY = """signgate signer describe-signing-job --job-id "$JOB" \\
  --query 'signedObject.s3.key' --output text"""

DEPLOY_SIGNED = """signgate lambda update-function-code \\
  --function-name my-function \\
  --s3-bucket my-deploy-bucket \\
  --s3-key "$KEY\""""

DEPLOY_UNSIGNED = """signgate lambda update-function-code \\
  --function-name my-function \\
  --zip-file fileb://unsigned-function.zip"""

REVOKE_PROFILE = """signgate signer revoke-signing-profile \\
  --profile-name LambdaProductionProfile \\
  --profile-version "$VERSION" \\
  --reason "Key compromise" \\
  --effective-time "$(date -u +%Y-%m-%dT%H:%M:%SZ)\""""

DECISIONS_TEXT = """signgate decisions --function my-function \\
  --query 'Decisions[].[outcome, reasons[0]]' --output text"""


def write_function(path, text):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lambda_function.py", "def handler(event, context):\n    return %r\n" % text)
        z.writestr("package/helper.py", "X = 1\n")


def api_get(sock, path):
    """GET over the unix socket with curl: (status, JSON body)."""
    p = subprocess.run(["curl", "-sS", "--unix-socket", str(sock), "-w", "\n%{http_code}",
                        "http://localhost" + path], capture_output=True, text=True, timeout=60)
    body, _, status = p.stdout.rpartition("\n")
    return int(status or 0), (json.loads(body) if body.strip() else None)


@pytest.fixture
def walk(gate, tmp_path, signgate):
    """A running gate (default settings: unbound functions rejected) and a shell that runs
    README lines with `signgate` on PATH and SIGNGATE_SOCKET pointing at the gate."""
    g = gate(settings=None)
    sock = g.root / "run" / "signgate" / "api.sock"

    def up():
        g._alive()
        if not sock.exists():
            return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(sock))
            return True
        except OSError:
            return False
        finally:
            s.close()
    assert poll(up, 15, 0.1), "no API socket at %s\n%s" % (sock, g.stderr_tail())

    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(signgate, bindir / "signgate")
    work = tmp_path / "work"
    (work / "buckets" / "my-deploy-bucket" / "unsigned").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNGATE_")}
    env.update(PATH="%s:%s" % (bindir, env.get("PATH", "/usr/bin:/bin")), HOME=str(tmp_path / "home"),
               LC_ALL="C.UTF-8", SIGNGATE_SIGNER_HOME=str(tmp_path / "signer"),
               SIGNGATE_BUCKET_ROOT=str(work / "buckets"), SIGNGATE_SOCKET=str(sock),
               GATE_SOCK=str(sock))

    def sh(cmd, check=0):
        p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        if check is not None:
            assert p.returncode == check, "%s\nexit %d (want %s)\nstdout: %s\nstderr: %s\n%s" % (
                cmd, p.returncode, check, p.stdout[-2000:], p.stderr[-2000:], g.stderr_tail(1500))
        return p
    sh.g, sh.sock, sh.work = g, sock, work
    return sh


def json_out(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError("not JSON on stdout: %r (stderr %r)" % (p.stdout[:500], p.stderr[:500]))


def test_seed_walkthrough_on_one_host_with_a_running_gate(walk):
    g, sock, work = walk.g, walk.sock, walk.work
    var = {}

    def run(cmd, check=0):
        """Runs a README line with the variables set so far."""
        pre = "".join("%s=%s; " % (k, v) for k, v in var.items())
        return walk(pre + cmd, check=check)

    def records():
        return [r for r in g.decisions() if r.get("function") == "my-function"]

    # 1. the signing profile; on one host the CLI registers it with the gate it can reach
    put = json_out(run(PUT_PROFILE))
    var["VERSION"] = run(GET_VERSION).stdout.strip()
    assert var["VERSION"] == put["profileVersion"] and re.fullmatch(r"[a-z2-7]{10}", var["VERSION"]), put
    status, profiles = api_get(sock, "/v1/signing-profiles")
    assert status == 200, profiles
    mine = [p for p in profiles["Profiles"] if p.get("profileName") == "LambdaProductionProfile"]
    assert [p["profileVersion"] for p in mine] == [var["VERSION"]], (
        "put-signing-profile did not register the profile with the local gate: %s" % profiles)

    # 2. the code signing config, with the seed's flags and JSON
    var["CSC_ARN"] = run(CREATE_CSC).stdout.strip()
    m = re.fullmatch(r"arn:\S+:code-signing-config:(csc-[0-9a-f]{17})", var["CSC_ARN"])
    assert m, "create-code-signing-config --query ... --output text: %r" % var["CSC_ARN"]
    status, doc = api_get(sock, "/v1/code-signing-configs/" + m.group(1))
    assert status == 200, doc
    csc = doc["CodeSigningConfig"]
    assert csc["Description"] == "Production code signing policy"
    assert csc["AllowedPublishers"]["SigningProfileVersionArns"] == [ACCOUNT_ARN + var["VERSION"]], csc
    assert csc["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    got = json_out(run('signgate lambda get-code-signing-config --code-signing-config-arn "$CSC_ARN"'))
    assert got["CodeSigningConfig"] == csc, got

    # 3. the function, bound to the config
    run(CREATE_FUNCTION)
    bound = json_out(run(PUT_FUNCTION_CSC))
    assert bound == {"CodeSigningConfigArn": var["CSC_ARN"], "FunctionName": "my-function"}, bound
    got = json_out(run("signgate lambda get-function-code-signing-config --function-name my-function"))
    assert got["CodeSigningConfigArn"] == var["CSC_ARN"], got

    # 4. sign (the seed's S3 upload is a copy under the bucket root)
    write_function(work / "function.zip", "v1")
    run("cp function.zip buckets/my-deploy-bucket/unsigned/function.zip")
    var["JOB"] = run(START_JOB).stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", var["JOB"]), var["JOB"]
    run('signgate signer wait successful-signing-job --job-id "$JOB"')
    var["KEY"] = run(SIGNED_KEY).stdout.strip()
    assert var["KEY"] == "signed/%s.zip" % var["JOB"], var["KEY"]

    # 5. deploy the signed artifact: promoted, the decision record on stdout
    out = json_out(run(DEPLOY_SIGNED))
    release = g.current_release("my-function")
    assert release is not None, "update-function-code exited 0 but nothing is current"
    assert "'v1'" in (g.release_dir("my-function", release) / "task" / "lambda_function.py").read_text()
    rec = records()[-1]
    assert out == rec, "stdout is not the decision record:\n%s\n%s" % (out, rec)
    assert (rec["outcome"], rec["source"], rec["signature"]["jobId"], rec["release"]) == (
        "promoted", "api", var["JOB"], release), rec
    assert (rec["codeSigningConfig"], rec["policy"]) == (csc["CodeSigningConfigId"], "Enforce"), rec

    # 6. "This will fail if the code isn't signed with an approved profile"
    write_function(work / "unsigned-function.zip", "unsigned")
    p = run(DEPLOY_UNSIGNED, check=None)
    assert p.returncode == 1, "unsigned deploy: exit %d\nstdout %s\nstderr %s" % (
        p.returncode, p.stdout, p.stderr)
    assert "CodeVerificationFailedException" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, "errors are one line on stderr: %r" % p.stderr
    assert g.current_release("my-function") == release, "a rejected deploy changed current"
    rej = records()[-1]
    assert (rej["outcome"], rej["reasons"], rej["source"]) == ("rejected", ["UNSIGNED"], "api"), rej

    # the extras: signgate deploy through the explicit --gate option
    p = run('signgate --gate "$GATE_SOCK" deploy my-function unsigned-function.zip', check=None)
    assert p.returncode == 1 and "CodeVerificationFailedException" in p.stderr, (p.returncode, p.stderr)

    # 7. CI built v2 and signed it before anyone knew the key was compromised
    write_function(work / "function.zip", "v2")
    run("cp function.zip buckets/my-deploy-bucket/unsigned/function.zip")
    var["JOB"] = run(START_JOB).stdout.strip()
    var["KEY2"] = run(SIGNED_KEY).stdout.strip()
    # The effective time has a resolution of a second; the revocation below must come after
    # the second in which the gate first saw v1 (DESIGN §5 compares against first-seen).
    first_seen = rec["time"]
    assert poll(lambda: stamp_now() > first_seen, 5, 0.05)

    # 8. "Revoking a profile version makes all code signed with it invalid"
    revoked = json_out(run(REVOKE_PROFILE))
    assert (revoked["profileName"], revoked["profileVersion"], revoked["reason"]) == (
        "LambdaProductionProfile", var["VERSION"], "Key compromise"), revoked
    stored = [json.loads(x.read_text()) for x in (g.policy_dir / "revocations").glob("*.json")]
    assert revoked in stored, "the revocation did not reach the local gate: %s" % stored

    # "... new deployments using revoked signatures will be rejected"
    p = run(DEPLOY_SIGNED.replace('"$KEY"', '"$KEY2"'), check=None)
    assert p.returncode == 1, "deploy after the revocation: exit %d\nstderr %s" % (p.returncode, p.stderr)
    assert "CodeVerificationFailedException" in p.stderr and "REVOKED" in p.stderr, p.stderr
    last = records()[-1]
    assert (last["outcome"], last["reasons"], last["signature"]["jobId"]) == (
        "rejected", ["REVOKED"], var["JOB"]), last
    assert g.current_release("my-function") == release
    # "Functions already deployed continue running": v1, which the gate had before the
    # effective time, is still valid (DESIGN §5) and redeploys to the same release
    again = json_out(run(DEPLOY_SIGNED))
    assert (again["outcome"], again["reasons"], again["release"]) == ("promoted", [], release), again
    # and the revoked profile signs nothing more
    p = run(START_JOB, check=1)
    assert "Revoked" in p.stderr

    # the gate's record of all of it, newest first
    text = run(DECISIONS_TEXT).stdout
    want = ["%s\t%s" % (r["outcome"], r["reasons"][0] if r["reasons"] else "None")
            for r in reversed(records())]
    assert text.strip().splitlines() == want, "signgate decisions:\n%s\nwant\n%s" % (text, "\n".join(want))
    ds = json_out(run('signgate --gate "$GATE_SOCK" decisions --function my-function'))
    ids = [v for k, v in _walk(ds) if k == "decisionId"]
    assert ids == [r["decisionId"] for r in reversed(records())], ids
    fns = json_out(run("signgate lambda list-functions"))
    mine = [f for f in fns["Functions"] if f["FunctionName"] == "my-function"]
    assert mine and mine[0]["CodeSigningConfigArn"] == var["CSC_ARN"], fns
    run("signgate audit verify %s" % g.audit_path)


def stamp_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _walk(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def test_gate_option_overrides_the_environment(walk):
    """`--gate SOCKET` wins over SIGNGATE_SOCKET: a wrong env with the right option works,
    the right env with a wrong option fails with one stderr line."""
    g, sock = walk.g, walk.sock
    p = walk('SIGNGATE_SOCKET=/nonexistent/api.sock signgate --gate "$GATE_SOCK" lambda create-function '
             '--function-name other-function')
    assert (g.policy_dir / "functions" / "other-function.json").is_file(), p.stdout
    p = walk("signgate --gate /nonexistent/api.sock lambda list-functions", check=None)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "/nonexistent/api.sock" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert api_get(sock, "/v1/health")[0] == 200
