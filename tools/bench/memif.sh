#!/usr/bin/env bash
# tools/bench/memif.sh - Postern's TCP stack against itself with no kernel in
# the path: two dataplanes joined by net_memif (shared memory), one worker
# each on its own cpu. Dataplane B's diag client runs against dataplane A's
# diag services: bulk discard and echo (MB/s) and sequential connections
# (connect, echo 32 B, close). This is the stack's own cost per core.
# Addresses are userspace-only (198.18.100.0/24, the benchmarking range);
# nothing reaches a kernel. Writes tools/bench/results/memif.{md,json}.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=$TOP/build
OUT=${BENCH_OUT:-$TOP/tools/bench/results}
BYTES=${BENCH_BYTES:-$((1024 * 1024 * 1024))}
CONNS=${BENCH_CONNS:-5000}
W=$(mktemp -d /tmp/pg-memif.XXXXXX)
mkdir -p "$OUT"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	rm -f /dev/shm/pg-bench-a /dev/shm/pg-bench-b
	rm -rf "$W"
}
trap cleanup EXIT

mkconf() { # NAME ROLE ADDRESS
	mkdir -p "$W/$1"
	cat >"$W/$1/postern.conf" <<CONF
workers = 1
port0_device = net_memif0,role=$2,socket=$W/memif.sock,id=0
port0_address = $3/24
diag_services = yes
idle_polls = 2000
idle_sleep = 50us
gratuitous_arp = yes
shm_name = pg-bench-$1
control_socket = $W/$1.sock
log_file = $W/$1.log
CONF
}
mkconf a server 198.18.100.1
mkconf b client 198.18.100.2
ctl() { "$B/control/posternctl" -s "$W/$1.sock" "${@:2}"; }
counter() { ctl "$1" stats --all --json | python3 -c "import json,sys; print(json.load(sys.stdin)['counters'].get(sys.argv[1], {}).get('total', 0))" "$2"; }

for n in a b; do
	"$B/control/posternd" -c "$W/$n" --foreground >"$W/$n.posternd.log" 2>&1 &
	pids+=($!)
done
sleep 0.5
"$B/dataplane/postern-dp" --lcores 0@0,1@1 --no-huge -m 256 --file-prefix pg-bench-a -- --shm pg-bench-a >"$W/a.dp.log" 2>&1 &
pids+=($!)
sleep 1
"$B/dataplane/postern-dp" --lcores 0@1,1@0 --no-huge -m 256 --file-prefix pg-bench-b -- --shm pg-bench-b >"$W/b.dp.log" 2>&1 &
pids+=($!)
for n in a b; do
	for _ in $(seq 100); do ctl $n status >/dev/null 2>&1 && break; sleep 0.1; done
	ctl $n status >/dev/null || { tail "$W/$n.dp.log"; echo "dataplane $n not ready" >&2; exit 1; }
done

run() { # MODE PORT BYTES COUNT -> sum of elapsed seconds over the runs, from B's log
	local runs0 want
	runs0=$(counter b diag_client_runs)
	want=$((runs0 + $4))
	sed -i '/^diag_client/d' "$W/b/postern.conf"
	echo "diag_client = 198.18.100.1:$2 $1 $3 $4" >>"$W/b/postern.conf"
	ctl b reload >/dev/null
	for _ in $(seq 3000); do
		[ "$(counter b diag_client_runs)" -ge "$want" ] && break
		sleep 0.1
	done
	[ "$(counter b diag_client_fail)" -eq 0 ] || { grep "diag client" "$W/b.dp.log" | tail -3 >&2; exit 1; }
	grep "diag client: run" "$W/b.dp.log" | tail -n "$4" |
		sed -n 's/.*verified ok, \([0-9.]*\) s.*/\1/p' | awk '{s += $1} END {printf "%.6f\n", s}'
}
t_discard=$(run discard 9 "$BYTES" 1)
t_echo=$(run echo 7 "$BYTES" 1)
t_conns=$(run echo 7 32 "$CONNS")
read -r d_mbps e_mbps cps < <(python3 -c "b=$BYTES; print(round(b/$t_discard/1e6,1), round(b/$t_echo/1e6,1), round($CONNS/$t_conns,1))")

cat >"$OUT/memif.md" <<MD
# TCP: Postern ↔ Postern over net_memif ($(date -u +%F))

Machine: $(nproc) cores, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'). DPDK $(pkg-config --modversion libdpdk), postern $(git -C "$TOP" rev-parse --short HEAD).
Command: \`tools/bench/memif.sh\` (BENCH_BYTES=$BYTES, BENCH_CONNS=$CONNS). One worker per dataplane,
each on its own cpu; no kernel in the path. Times are the diag client's own (connect to last byte verified).

| measure | Postern ↔ Postern |
|---|---|
| bulk to discard, MB/s (one connection, one core each side) | $d_mbps |
| echo, MB/s each way (one connection) | $e_mbps |
| sequential connections/s (connect, echo 32 B, close), one client core | $cps (bounded by the diag client: each run starts on the next 1 ms timer tick) |

Software checksums both ways (memif offers no offload); the diag client
generates and verifies the pattern byte by byte, which the discard and echo
rates include.
MD
python3 -c "import json; json.dump({'bytes': $BYTES, 'conns': $CONNS, 'discard_mbps': $d_mbps, 'echo_mbps': $e_mbps, 'conns_per_s': $cps}, open('$OUT/memif.json', 'w'), indent=1)"
cat "$OUT/memif.md"
