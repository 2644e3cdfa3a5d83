#!/usr/bin/env bash
# The main job on a self-contained default: a CI-side signer creates a signing profile, signs a
# sample Lambda function with the seed's commands (S3 locations map under a local bucket root),
# and the offline verifier makes the gate's decision on the signed package, on a tampered
# copy and on an unsigned one. Everything lives under DEMO_ROOT (default /tmp/signgate-demo).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
"$src/contrib/install-deps.sh"
BUILD_DIR=${BUILD_DIR:-$src/build} "$src/contrib/build.sh"
signgate=${BUILD_DIR:-$src/build}/cli/signgate

root=${DEMO_ROOT:-/tmp/signgate-demo}
rm -rf "$root"
mkdir -p "$root/function" "$root/buckets/my-deploy-bucket/unsigned"
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

decide() {
  local label=$1 pkg=$2 rc=0
  "$signgate" verify "$pkg" --profile-doc profile.json --function my-function > decision.json 2>/dev/null || rc=$?
  printf '%-26s exit %d  %s %s\n     %s\n' "$label" "$rc" "$(jq -r .outcome decision.json)" \
    "$(jq -c .reasons decision.json)" "$(jq -r .message decision.json)"
}

step "5. The gate's decision, offline"
decide "signed package:" "$signed"
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
decide "tampered copy:" tampered.zip
decide "unsigned package:" function.zip

step "Done"
echo "Everything is under $root. Try: $signgate verify $root/$signed --profile-doc $root/profile.json --policy Warn"
