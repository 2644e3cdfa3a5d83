#!/usr/bin/env bash
# Installs what signgate needs to build, run and test, from Debian 12's own packages.
# Idempotent: a package already present is left alone. Needs root (apt-get).
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  libuv1-dev libssl-dev libzip-dev zlib1g-dev libcjson-dev libsystemd-dev libmicrohttpd-dev
  # tests
  libcmocka-dev python3 python3-pytest python3-prometheus-client
  # fuzzing: clang with libFuzzer
  clang-14 libclang-rt-14-dev llvm-14
  # real tools the tests and the demo use: Info-ZIP, OpenSSL's CLI, curl, jq, journald
  zip unzip openssl curl jq systemd
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (or install them with apt-get)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
