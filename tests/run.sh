#!/usr/bin/env bash
# tests/run.sh - install what is missing, build, and run every test:
#   - unit tests under AddressSanitizer + UBSan (build-asan/)
#   - the lab tests against the real dataplane in network namespaces (build/)
# Both builds use -Werror. Ends with "N passed, N failed"; exits non-zero on
# any failure. Run as root on Debian 12 (the lab needs network namespaces).
set -uo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP"
. tools/deps.sh

pg_install_deps || { echo "0 passed, 1 failed"; exit 1; }
echo "building build/ (release, -Werror)"
pg_build build -Dwerror=true || { echo "0 passed, 1 failed"; exit 1; }
echo "building build-asan/ (ASan + UBSan, -Werror)"
pg_build build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
	|| { echo "0 passed, 1 failed"; exit 1; }

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export PG_TEST_LOG=${PG_TEST_LOG:-$TOP/build/tests-log.txt}

lab_tests=()
for t in tests/lab/test_*.sh; do
	lab_tests+=("lab/$(basename "$t" .sh)=bash $TOP/$t")
done

python3 tests/runner.py --meson build-asan unit "${lab_tests[@]}"
rc=$?
tools/lab down >/dev/null 2>&1 || true
exit $rc
