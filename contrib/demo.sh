#!/usr/bin/env bash
# The main job on a self-contained default. The CI side creates a signing profile and signs a
# sample Lambda function with the seed's commands (S3 locations map under a local bucket root);
# the gate, signgated, runs on its own root and decides three drops into its inbox: the signed
# package (promoted into the runtime directory), an unsigned one and a tampered one (both
# rejected), each recorded in journald and in the hash-chained audit file.
# Everything lives under DEMO_ROOT (default /tmp/signgate-demo).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
"$src/contrib/install-deps.sh"
BUILD_DIR=${BUILD_DIR:-$src/build} "$src/contrib/build.sh"
signgate=${BUILD_DIR:-$src/build}/cli/signgate
signgated=${BUILD_DIR:-$src/build}/daemon/signgated

root=${DEMO_ROOT:-/tmp/signgate-demo}
if [[ -f $root/gate.pid ]]; then kill "$(cat "$root/gate.pid")" 2>/dev/null || true; fi
rm -rf "$root"
mkdir -p "$root/function" "$root/buckets/my-deploy-bucket/unsigned"
gate=$root/gate   # the gate's --root: etc/, var/lib/signgate, var/spool/signgate, var/log/signgate
export SIGNGATE_SIGNER_HOME=$root/signer SIGNGATE_BUCKET_ROOT=$root/buckets
cd "$root"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A signing profile (the private key stays in $SIGNGATE_SIGNER_HOME/keys, mode 0600)"
show "$signgate" signer put-signing-profile --profile-name LambdaProductionProfile \
  --platform-id AWSLambda-SHA384-ECDSA --signature-validity-period value=135,type=MONTHS \
  --tags Environment=Production,Team=Platform

step "2. A sample function, zipped with Info-ZIP and 'uploaded' to the bucket"
printf 'def handler(event, context):\n    return {"statusCode": 200, "body": "hello from signgate"}\n' > function/lambda_function.py
(cd function && zip -q -X ../function.zip lambda_function.py)
cp function.zip buckets/my-deploy-bucket/unsigned/function.zip
echo "function.zip: $(stat -c %s function.zip) bytes"

step "3. Sign it with the seed's start-signing-job"
job=$("$signgate" signer start-signing-job \
  --source '{"s3":{"bucketName":"my-deploy-bucket","key":"unsigned/function.zip"}}' \
  --destination '{"s3":{"bucketName":"my-deploy-bucket","prefix":"signed/"}}' \
  --profile-name LambdaProductionProfile --query jobId --output text)
echo "jobId: $job"
show "$signgate" signer wait successful-signing-job --job-id "$job"
key=$("$signgate" signer describe-signing-job --job-id "$job" --query 'signedObject.s3.key' --output text)
signed=buckets/my-deploy-bucket/$key
echo "signed package: $signed"

step "4. The public profile document a gate imports (no private material)"
"$signgate" signer get-signing-profile --profile-name LambdaProductionProfile > profile.json
jq '{profileName, profileVersion, platformId, signatureValidityPeriod, status}' profile.json


step "5. The gate's policy: the profile, a code signing config (Enforce) allowing it, the function bound to it"
policy=$gate/var/lib/signgate/policy
mkdir -p "$policy"/{signing-profiles,code-signing-configs,functions}
version=$(jq -r .profileVersion profile.json)
cp profile.json "$policy/signing-profiles/LambdaProductionProfile@$version.json"
cat > "$policy/code-signing-configs/csc-0123456789abcdef0.json" <<JSON
{"CodeSigningConfigId": "csc-0123456789abcdef0", "Description": "Production code signing policy",
 "AllowedPublishers": {"SigningProfileVersionArns": ["LambdaProductionProfile/$version"]},
 "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"}}
JSON
echo '{"FunctionName": "my-function", "CodeSigningConfigArn": "csc-0123456789abcdef0"}' > "$policy/functions/my-function.json"
(cd "$policy" && find . -type f | sort | sed "s/^\./  policy/")

step "6. Start the gate (journald is started first if this machine has none running)"
if [[ ! -S /run/systemd/journal/socket ]]; then
  mkdir -p /run/systemd/journal
  setsid /lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
  for _ in $(seq 50); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.1; done
fi
"$signgated" --root "$gate" --foreground 2> gate.log &
echo $! > gate.pid
for _ in $(seq 100); do grep -q serving gate.log 2>/dev/null && break; sleep 0.1; done
cat gate.log

inbox=$gate/var/spool/signgate/inbox
audit=$gate/var/log/signgate/audit.jsonl
drop() {  # write under an ignored name, then rename: the gate never sees a partial file
  cp "$1" "$inbox/.$2.tmp" && mv "$inbox/.$2.tmp" "$inbox/$2"
}
wait_records() {
  for _ in $(seq 200); do [[ $(wc -l < "$audit" 2>/dev/null || echo 0) -ge $1 ]] && return; sleep 0.05; done
  echo "the gate did not record $1 decisions" >&2; exit 1
}
show_last() {
  tail -n 1 "$audit" | jq -r '"  \(.outcome) \(.reasons) release=\(.release)\n  \(.message)"'
}

step "7. Drop the signed package into the inbox"
drop "$signed" my-function.zip
wait_records 1; show_last
echo "  live code: $(readlink "$gate/var/lib/signgate/runtime/functions/my-function/current")"
ls -l "$gate/var/lib/signgate/runtime/functions/my-function/current/task" | sed 's/^/  /'

# An attacker rebuilds the archive with changed code and keeps the signature block.
python3 - "$signed" tampered.zip <<'PY'
import sys, zipfile
src, dst = sys.argv[1:]
with zipfile.ZipFile(src) as z:
    comment, code = z.comment, z.read('lambda_function.py').replace(b'hello', b'pwned')
with zipfile.ZipFile(dst, 'w', zipfile.ZIP_DEFLATED) as out:
    out.writestr('lambda_function.py', code)
    out.comment = comment
PY
step "8. Drop an unsigned package and a tampered one"
drop function.zip my-function@unsigned.zip
wait_records 2; show_last
drop tampered.zip my-function@tampered.zip
wait_records 3; show_last
echo "  still live: $(readlink "$gate/var/lib/signgate/runtime/functions/my-function/current")"
echo "  kept for inspection:"; ls "$gate/var/spool/signgate/rejected/my-function" | sed 's/^/    /'

step "9. What an operator reads"
show journalctl --no-pager -o short SYSLOG_IDENTIFIER=signgated SIGNGATE_FUNCTION=my-function _PID="$(cat gate.pid)"
echo "\$ journalctl SIGNGATE_OUTCOME=rejected -o json | jq '{MESSAGE, SIGNGATE_REASONS}'   # the fields"
show "$signgate" audit verify "$audit"

kill -TERM "$(cat gate.pid)"; wait "$(cat gate.pid)" 2>/dev/null || true; rm -f gate.pid
step "Done"
echo "Everything is under $root; the gate's root is $gate. Start it again with:"
echo "  $signgated --root $gate --foreground"
