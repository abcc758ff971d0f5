#!/usr/bin/env bash
# tools/bench/run.sh - run every benchmark and collect the results tables
# in tools/bench/results/ (Markdown and JSON). Needs a built tree (build/)
# and root (the lab). Benchmarks are not tests: they report ratios.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. tools/deps.sh
pg_install_deps
pg_build build
for b in tools/bench/tcp.sh tools/bench/memif.sh tools/bench/relay.sh; do
	echo "== $b"
	bash "$b"
done
