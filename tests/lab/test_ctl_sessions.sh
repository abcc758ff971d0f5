#!/usr/bin/env bash
# tests/lab/test_ctl_sessions.sh - the control → dataplane command channel
# end to end, without network namespaces: a real posternd and a real
# postern-dp on DPDK's net_null vdev (--no-huge, --no-pci, a file prefix,
# shm_name, socket and log of its own, workers = 1 with an idle back-off so
# it does not busy-poll), so this runs alongside the namespace lab. Checks
# `posternctl sessions` (text, JSON, --max), `policy set|del --wait` and
# `reload --wait` with the adoption latency (and its /metrics gauge), a
# stopped worker (SIGSTOP: exit 4 naming it), a vanished dataplane, and 200
# sequential `policy set --wait` whose latency p50/p99 is reported in a TAP
# diag line (the assertion: each returned in time, adopted by every worker).
# Prints TAP. PG_WAIT_ROUNDS changes the 200, PG_DP_LCORES the "-l 0,1".
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=${PG_BUILD:-$TOP/build}
PD=$BUILD/control/posternd
PC=$BUILD/control/posternctl
DP=$BUILD/dataplane/postern-dp
ROUNDS=${PG_WAIT_ROUNDS:-200}
LCORES=${PG_DP_LCORES:-0,1}
CFG=$(mktemp -d /tmp/pg-ctl-sessions.XXXXXX)
SHM=pg-ctl-sessions-$$
PREFIX=pg-ctl-sessions-$$
SOCK=$CFG/ctl.sock
LOG=$CFG/postern.log
PD_PID=
DP_PID=
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Stop what we started, by pid, whatever happened (a stopped dataplane too).
stop_dp() {
	[ -n "$DP_PID" ] || return 0
	kill -CONT "$DP_PID" 2>/dev/null
	kill "$DP_PID" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$DP_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$DP_PID" 2>/dev/null
	wait "$DP_PID" 2>/dev/null
	DP_PID=
}
cleanup() {
	stop_dp
	if [ -n "$PD_PID" ]; then kill "$PD_PID" 2>/dev/null; wait "$PD_PID" 2>/dev/null; fi
	rm -f "/dev/shm/$SHM"
	rm -rf "/var/run/dpdk/$PREFIX" "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$PREFIX"
	rm -rf "$CFG"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cat >"$CFG/postern.conf" <<CONF
port0_device = net_null0
port0_address = 198.18.0.1/24
workers = 1
idle_sleep = 200us
idle_polls = 64
shm_name = $SHM
control_socket = $SOCK
log_file = $LOG
metrics_listen = 127.0.0.1:$PORT
CONF

ctl() { "$PC" -s "$SOCK" "$@"; }
# status_wait RC: until `posternctl status` exits RC (10 s at most)
status_wait() {
	for _ in $(seq 100); do
		ctl status >/dev/null 2>&1
		[ $? -eq "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
start_dp() {
	"$DP" -l "$LCORES" --no-huge -m 128 --no-pci --file-prefix "$PREFIX" --log-level='*:notice' \
		-- --shm "$SHM" --wait 10 >>"$CFG/postern-dp.log" 2>&1 &
	DP_PID=$!
}
# json_get EXPR: evaluate a Python expression on the JSON on stdin (d)
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

"$PD" -c "$CFG" 2>>"$CFG/posternd.err" &
PD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done

# ---- before the dataplane ----
out=$(ctl sessions 2>&1)
rc=$?
if [ $rc -eq 4 ] && [ "$out" = "dataplane absent: no sessions to list" ]; then
	ok "sessions without a dataplane: exit 4, \"dataplane absent\""
else not_ok "sessions without dataplane: rc $rc, $out"; sed 's/^/# /' "$CFG/posternd.err"; fi
out=$(ctl policy set example.org encrypt --wait 2 2>&1)
rc=$?
if [ $rc -eq 4 ] && echo "$out" | grep -q "^not adopted: no ready dataplane$"; then
	ok "policy set --wait without a dataplane: published, exit 4 at once"
else not_ok "--wait without dataplane: rc $rc, $out"; fi

# ---- a dataplane on net_null ----
start_dp
if status_wait 0; then ok "postern-dp on net_null0 (-l $LCORES --no-huge --no-pci) is ready"
else not_ok "postern-dp not ready"; tail -n 20 "$CFG/postern-dp.log" | sed 's/^/# /'; fi

out=$(ctl sessions)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "worker 0: 0 connections" ]; then ok "sessions: worker 0, no connections (net_null)"
else not_ok "sessions: rc $rc, $out"; fi
out=$(ctl sessions --json)
rc=$?
if [ $rc -eq 0 ] && [ "$(echo "$out" | json_get 'len(d["workers"]), d["workers"][0]["answered"], d["workers"][0]["connections"], d["workers"][0]["sessions"], d["complete"]')" = "1 True 0 [] True" ]; then
	ok "sessions --json: one worker, answered, complete"
else not_ok "sessions --json: rc $rc, $out"; fi
out=$(ctl sessions --max 10 --json)
if [ $? -eq 0 ] && [ "$(echo "$out" | json_get 'd["complete"]')" = True ]; then ok "sessions --max 10"
else not_ok "sessions --max 10: $out"; fi
ctl sessions --max 99999 >/dev/null 2>&1; rc1=$?
ctl sessions --max >/dev/null 2>&1; rc2=$?
ctl policy set example.org encrypt --wait 0 >/dev/null 2>&1; rc3=$?
ctl policy set example.org encrypt --wait 11 >/dev/null 2>&1; rc4=$?
ctl reload --wait x >/dev/null 2>&1; rc5=$?
if [ "$rc1 $rc2 $rc3 $rc4 $rc5" = "2 2 2 2 2" ]; then ok "bad --max and --wait values: exit 2"
else not_ok "usage: $rc1 $rc2 $rc3 $rc4 $rc5"; fi
if ctl sessions --help | grep -q -- '--max N' && ctl policy set --help | grep -q -- '--wait' \
	&& ctl reload --help | grep -q -- '--wait'; then ok "--help of sessions, policy set and reload"
else not_ok "--help"; fi

# ---- --wait ----
out=$(ctl policy set example.org encrypt --wait)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | sed -n 1p | grep -q '^published generation [0-9]*$' \
	&& echo "$out" | sed -n 2p | grep -Eq '^adopted by 1 worker in [0-9]+\.[0-9]{3} ms$'; then
	ok "policy set --wait: $(echo "$out" | tr '\n' ' ')"
else not_ok "policy set --wait: rc $rc, $out"; fi
out=$(ctl policy set example.org verify match=hostname --wait 3 --json)
rc=$?
gen=$(echo "$out" | json_get 'd["generation"]' 2>/dev/null)
pub=$(ctl status --json | json_get 'd["generation"]' 2>/dev/null)
if [ $rc -eq 0 ] && [ "$(echo "$out" | json_get 'd["ok"], d["adoption"]["adopted"], d["adoption"]["generation"] == d["generation"], d["adoption"]["workers"], d["adoption"]["latency_ns"] > 0, d["adoption"]["lagging"]')" = "True True True 1 True []" ] \
	&& [ "$gen" = "$pub" ]; then
	ok "policy set --wait 3 --json: adoption member, generation $gen = published"
else not_ok "policy set --json --wait: rc $rc, $out (published $pub)"; fi
out=$(ctl policy del example.org --wait --json)
rc=$?
if [ $rc -eq 0 ] && [ "$(echo "$out" | json_get 'd["adoption"]["adopted"]')" = True ]; then ok "policy del --wait"
else not_ok "policy del --wait: rc $rc, $out"; fi
out=$(ctl reload --wait)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -Eq '^adopted by 1 worker in [0-9]+\.[0-9]{3} ms$'; then
	ok "reload --wait: $(echo "$out" | tr '\n' ' ')"
else not_ok "reload --wait: rc $rc, $out"; fi
out=$(ctl reload --wait 2 --json)
if [ $? -eq 0 ] && [ "$(echo "$out" | json_get 'd["ok"], d["adoption"]["adopted"]')" = "True True" ]; then ok "reload --wait 2 --json"
else not_ok "reload --wait --json: $out"; fi
out=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/metrics', timeout=5).read().decode())")
if echo "$out" | grep -Eq '^postern_snapshot_adoption_seconds [0-9]+\.[0-9]{9}$' \
	&& echo "$out" | grep -qx '# TYPE postern_snapshot_adoption_seconds gauge'; then
	ok "/metrics: $(echo "$out" | grep '^postern_snapshot_adoption_seconds')"
else not_ok "adoption gauge missing"; echo "$out" | grep adoption | sed 's/^/# /'; fi
# an invalid change is refused before any wait
out=$(ctl policy set example.org bogus --wait 2>&1)
rc=$?
if [ $rc -eq 1 ] && ! echo "$out" | grep -q adopted; then ok "an invalid policy set --wait: exit 1, nothing to wait for"
else not_ok "invalid --wait: rc $rc, $out"; fi

# ---- $ROUNDS sequential changes ----
lat=$CFG/latency
: >"$lat"
bad=0
t0=$(date +%s%N)
for i in $(seq "$ROUNDS"); do
	level=may
	[ $((i % 2)) -eq 0 ] && level=encrypt
	out=$(ctl policy set "r$((i % 7)).example.net" $level --wait 5 --json)
	rc=$?
	# no python per round: its start-up would dominate the loop
	v=no
	[[ "$out" =~ \"adoption\":\{\"adopted\":true,.*\"latency_ns\":([0-9]+),\"lagging\":\[\]\} ]] &&
		v=${BASH_REMATCH[1]}
	if [ $rc -ne 0 ] || ! [[ "$v" =~ ^[0-9]+$ ]]; then
		bad=$((bad + 1))
		[ $bad -le 3 ] && diag "round $i: rc $rc, $out"
	else echo "$v" >>"$lat"; fi
done
t1=$(date +%s%N)
if [ $bad -eq 0 ] && [ "$(wc -l <"$lat")" -eq "$ROUNDS" ]; then
	ok "$ROUNDS sequential policy set --wait: every one adopted by every worker within its timeout"
else not_ok "$ROUNDS rounds: $bad failed"; fi
diag "$(python3 - "$lat" "$(( (t1 - t0) / 1000000 ))" <<'PY'
import sys
v = sorted(int(l) for l in open(sys.argv[1]) if l.strip())
if not v:
    print("adoption latency: no samples")
    sys.exit()
def pct(p):
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] / 1e6
print(f"adoption latency over {len(v)} changes (publication to the last worker's switch,"
      f" idle_sleep 200us): p50 {pct(50):.3f} ms, p99 {pct(99):.3f} ms, max {v[-1] / 1e6:.3f} ms;"
      f" {int(sys.argv[2]) / len(v):.1f} ms per posternctl round trip")
PY
)"

# ---- a worker that does not answer ----
kill -STOP "$DP_PID"
start=$(date +%s%N)
out=$(ctl sessions 2>&1)
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $rc -eq 4 ] && [ "$out" = "worker 0: no answer" ] && [ $ms -ge 1900 ] && [ $ms -lt 5000 ]; then
	ok "stopped worker: sessions exit 4 \"worker 0: no answer\" after $ms ms"
else not_ok "stopped worker sessions: rc $rc in $ms ms, $out"; fi
out=$(ctl policy set example.org encrypt --wait 1 2>&1)
rc=$?
if [ $rc -eq 4 ] && echo "$out" | grep -q "^not adopted within 1000 ms by worker 0 (on generation [0-9]*)$"; then
	ok "stopped worker: policy set --wait 1 exits 4 and names worker 0"
else not_ok "stopped worker --wait: rc $rc, $out"; fi
out=$(ctl reload --wait 1 --json)
rc=$?
if [ $rc -eq 4 ] && [ "$(echo "$out" | json_get 'd["adoption"]["adopted"], [w["worker"] for w in d["adoption"]["lagging"]]')" = "False [0]" ]; then
	ok "stopped worker: reload --wait 1 --json: adopted false, lagging [worker 0]"
else not_ok "stopped reload --json: rc $rc, $out"; fi
kill -CONT "$DP_PID"
if status_wait 0 && [ "$(ctl sessions)" = "worker 0: 0 connections" ]; then
	ok "resumed worker catches up; late answers are ignored, the next sessions is whole"
else not_ok "after SIGCONT: $(ctl sessions 2>&1)"; fi

# ---- the dataplane goes away ----
stop_dp
start=$(date +%s%N)
out=$(ctl policy set example.org may --wait 5 2>&1)
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $rc -eq 4 ] && echo "$out" | grep -q "^not adopted: no ready dataplane$" && [ $ms -lt 2000 ]; then
	ok "no dataplane: policy set --wait exits 4 at once ($ms ms)"
else not_ok "no dataplane --wait: rc $rc in $ms ms, $out"; fi
ctl status >/dev/null 2>&1
rc=$?
if [ $rc -eq 4 ] && kill -0 "$PD_PID" 2>/dev/null; then ok "posternd still serving (status exit 4 without a dataplane)"
else not_ok "posternd after the dataplane left: status rc $rc"; sed 's/^/# /' "$CFG/posternd.err" | tail -n 5; fi

tap_done
