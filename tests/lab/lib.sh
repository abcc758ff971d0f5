# tests/lab/lib.sh - TAP helpers for the lab tests (sourced).
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$TOP/tools/lab
TAP_N=0
TAP_FAILED=0

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
# check "description" command...: ok if the command succeeds
check() { local d=$1; shift; if "$@" >/tmp/pg-check.out 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/# /' /tmp/pg-check.out | tail -n 15; fi; }
diag() { echo "# $*"; }
tap_done() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }

# counters_json: totals of every dataplane counter as {"name": total}
counters_json() { "$LAB" ctl stats --all --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps({k: v["total"] for k, v in d["counters"].items()}))'; }
# counter FILE NAME: one total from a counters_json snapshot
counter() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))' "$1" "$2"; }
dp_mac() { ip -n pg-dp -br link show "$1" | awk '{print $3}'; }
