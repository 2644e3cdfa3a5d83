#!/usr/bin/env bash
# signgate's benchmark: the hardware limit, the stock pipeline and signgate side by side, written
# as a Markdown report. Builds nothing: point --build at a build (contrib/build.sh).
#
#   bench/run.sh [--quick] [--out FILE] [--build DIR] [--runs N] [--burst N] [--workdir DIR] [--keep]
#                [--label TEXT] [--install-tools | --no-install-tools]
#
# Defaults: --out bench/RESULTS.md, --build build/, work files under /var/tmp. See bench/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench.py" "$@"
