#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it needs, builds twice
# (a normal build and one with -fsanitize=address,undefined) and runs every test (cmocka unit
# tests and pytest end-to-end tests, all through ctest) in both, then builds the libFuzzer
# targets with clang and runs each for a bounded time. Exits non-zero on any failure.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
"$src/contrib/install-deps.sh"

# The gate's tests read decisions back from a real journald. Where PID 1 is not systemd
# (containers, CI) none runs: start a standalone one, as DEVELOPERS' notes describe.
if [[ ! -S /run/systemd/journal/socket && $(id -u) -eq 0 ]]; then
  echo "== starting a standalone systemd-journald"
  mkdir -p /run/systemd/journal
  setsid /lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
  for _ in $(seq 100); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.1; done
fi

jobs=$(nproc)
status=0
run_suite() {
  local name=$1 dir=$2; shift 2
  echo "== $name build ($dir)"
  BUILD_DIR=$dir "$src/contrib/build.sh" "$@"
  echo "== $name tests"
  (cd "$dir" && ctest --output-on-failure -j"$jobs") || status=1
}

run_suite normal "${BUILD_DIR:-$src/build}"
# The sanitizers abort on the first report, so a leak or UB anywhere fails its test.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite sanitized "${ASAN_BUILD_DIR:-$src/build-asan}" -DSIGNGATE_SANITIZE=ON

# The parsers under libFuzzer (clang, ASan+UBSan), each for SIGNGATE_FUZZ_SECONDS (default 60).
fuzz_dir=${FUZZ_BUILD_DIR:-$src/build-fuzz}
echo "== fuzz build ($fuzz_dir)"
cmake -S "$src" -B "$fuzz_dir" -DCMAKE_C_COMPILER=clang-14 -DSIGNGATE_TESTS=OFF -DSIGNGATE_FUZZ=ON \
  -DSIGNGATE_FUZZ_SECONDS="${SIGNGATE_FUZZ_SECONDS:-60}" \
  -DSIGNGATE_FUZZ_SIGNGATE_BIN="${BUILD_DIR:-$src/build}/cli/signgate" >/dev/null
cmake --build "$fuzz_dir" -j"$jobs" --target fuzzers
echo "== fuzz tests"
(cd "$fuzz_dir" && ctest --output-on-failure -L fuzz -j"$jobs") || status=1

if ((status)); then echo "== FAILED"; else echo "== all tests passed (normal, sanitized, fuzzed)"; fi
exit $status
