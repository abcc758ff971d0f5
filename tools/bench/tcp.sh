#!/usr/bin/env bash
# tools/bench/tcp.sh - Postern's TCP against Linux's, side by side in one
# run, over the same path (pg-cli --veth-- pg-dp):
#   A. Linux client in pg-cli -> postern-dp in pg-dp (af_packet, userspace TCP,
#      diag services discard/echo);
#   B. Linux client in pg-cli -> the Linux kernel in pg-dp (dp0 given the same
#      address; pg-kserver, a small epoll server in C with the same protocols,
#      so the comparison is of TCP stacks, not of servers).
# Measures bulk throughput (discard, MB/s), echo round trips and sequential
# connections per second, each over IPv4 and over IPv6 (2001:db8:18::1), and
# postern-dp's memory per idle connection.
# Writes tools/bench/results/tcp.{md,json}. Not a test: numbers, not verdicts.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$TOP/tools/lab
OUT=${BENCH_OUT:-$TOP/tools/bench/results}
BYTES=${BENCH_BYTES:-$((200 * 1024 * 1024))}
CONNS=${BENCH_CONNS:-3000}
IDLE=${BENCH_IDLE:-1000}
mkdir -p "$OUT"
peer() { "$LAB" exec cli python3 "$TOP/tests/lab/tcppeer.py" "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# wait_v6: the dataplane's IPv6 address is in use once DAD has passed (bounded)
wait_v6() {
	for _ in $(seq 50); do
		"$LAB" exec cli ping -6 -c 1 -W 1 2001:db8:18::1 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
}

measure() { # HOST DISCARD_PORT ECHO_PORT -> "mbps conns_per_s"
	local d s
	d=$(peer discard "$1" "$2" "$BYTES")
	s=$(peer seq "$1" "$3" "$CONNS")
	python3 -c "import json,sys; d=json.loads(sys.argv[1]); s=json.loads(sys.argv[2]); print(round(int(sys.argv[3])/d['seconds']/1e6,1), s['per_second'])" "$d" "$s" "$BYTES"
}

"$LAB" down >/dev/null 2>&1 || true
# Postern, busy-polling: 1 worker alone on cpu 1, no idle back-off (what an
# appliance with dedicated cores runs). The client is pinned to cpu 0.
conf=$(mktemp -d)
sed "s/^workers.*/workers = 1/; s/qpairs=2/qpairs=1/g; s/^idle_sleep.*/idle_sleep = 0us/" \
	"$TOP/tools/lab-config/postern.conf" >"$conf/postern.conf"
LAB_EAL="--lcores 0@0,1@1 --no-huge -m 256 --no-pci --file-prefix postern-lab" "$LAB" start "$conf" >/dev/null
peer() { "$LAB" exec cli taskset -c 0 python3 "$TOP/tests/lab/tcppeer.py" "$@"; }
read -r bp_mbps bp_cps < <(measure 198.18.0.1 9 7)
wait_v6
read -r bp6_mbps bp6_cps < <(measure 2001:db8:18::1 9 7)
"$LAB" stop >/dev/null

# Postern as the lab runs it: 2 workers sharing the 2 cpus with the client,
# idle back-off on (200 us sleeps).
peer() { "$LAB" exec cli python3 "$TOP/tests/lab/tcppeer.py" "$@"; }
cp "$TOP/tools/lab-config/postern.conf" "$conf/"
"$LAB" start "$conf" >/dev/null
read -r pg_mbps pg_cps < <(measure 198.18.0.1 9 7)
wait_v6
read -r pg6_mbps pg6_cps < <(measure 2001:db8:18::1 9 7)

# Memory per idle connection: RSS before and after IDLE idle connections.
dp=$(cat /run/postern-lab/postern-dp.pid)
rss0=$(awk '/VmRSS/{print $2}' /proc/$dp/status)
"$LAB" exec cli python3 - "$IDLE" <<'PY' &
import socket, sys, time, resource
n = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, n + 64))
socks = [socket.create_connection(("198.18.0.1", 9)) for _ in range(n)]
time.sleep(4)
PY
idle_pid=$!
sleep 3
rss1=$(awk '/VmRSS/{print $2}' /proc/$dp/status)
wait $idle_pid || true
per_conn=$(( (rss1 - rss0) * 1024 / IDLE ))
"$LAB" stop >/dev/null

# Linux kernel as the server, same namespace, same veth, same address.
ip -n pg-dp addr add 198.18.0.1/24 dev dp0
ip netns exec pg-dp ethtool -K dp0 rx on >/dev/null 2>&1 || true
ip netns exec pg-dp taskset -c 1 "$TOP/build/tools/pg-kserver" 198.18.0.1 5007 600 &
srv=$!
sleep 1
peer() { "$LAB" exec cli taskset -c 0 python3 "$TOP/tests/lab/tcppeer.py" "$@"; }
read -r lx_mbps lx_cps < <(measure 198.18.0.1 5008 5007)
kill $srv; wait $srv 2>/dev/null || true
ip -n pg-dp addr del 198.18.0.1/24 dev dp0
# ... and over IPv6: pg-dp's kernel gets IPv6 on dp0 for this measurement only.
ip netns exec pg-dp sysctl -qw net.ipv6.conf.dp0.disable_ipv6=0
ip -n pg-dp -6 addr add 2001:db8:18::1/64 dev dp0 nodad
ip -n pg-cli -6 neigh flush dev cli0
ip netns exec pg-dp taskset -c 1 "$TOP/build/tools/pg-kserver" 2001:db8:18::1 5007 600 &
srv=$!
sleep 1
read -r lx6_mbps lx6_cps < <(measure 2001:db8:18::1 5008 5007)
kill $srv; wait $srv 2>/dev/null || true
ip -n pg-dp -6 addr del 2001:db8:18::1/64 dev dp0
ip netns exec pg-dp sysctl -qw net.ipv6.conf.dp0.disable_ipv6=1
"$LAB" down >/dev/null

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(round(a/b,2) if b else 'n/a')" "$1" "$2"; }
machine="$(nproc) cores, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r)"
cat >"$OUT/tcp.md" <<MD
# TCP: Postern vs Linux ($(date -u +%F))

Machine: $machine. DPDK $(pkg-config --modversion libdpdk), postern $(git -C "$TOP" rev-parse --short HEAD).
Path: Linux client in pg-cli → veth → pg-dp (Postern on net_af_packet, 2 workers; or the Linux kernel), over IPv4 (198.18.0.1) and IPv6 (2001:db8:18::1).
Command: \`tools/bench/tcp.sh\` (BENCH_BYTES=$BYTES, BENCH_CONNS=$CONNS, BENCH_IDLE=$IDLE).
The client is Python (tests/lab/tcppeer.py) in both columns, so both share its cost; the Linux server is pg-kserver (epoll, C), Postern's is its diag service.

| measure | Postern, 1 worker busy-polling | Postern, lab (2 workers, idle back-off) | Linux (pg-kserver on cpu 1) | busy-poll / Linux | lab / Linux |
|---|---|---|---|---|---|
| bulk to discard, MB/s, IPv4 | $bp_mbps | $pg_mbps | $lx_mbps | $(ratio "$bp_mbps" "$lx_mbps") | $(ratio "$pg_mbps" "$lx_mbps") |
| bulk to discard, MB/s, IPv6 | $bp6_mbps | $pg6_mbps | $lx6_mbps | $(ratio "$bp6_mbps" "$lx6_mbps") | $(ratio "$pg6_mbps" "$lx6_mbps") |
| sequential connections/s (connect, echo 32 B, close), IPv4 | $bp_cps | $pg_cps | $lx_cps | $(ratio "$bp_cps" "$lx_cps") | $(ratio "$pg_cps" "$lx_cps") |
| sequential connections/s, IPv6 | $bp6_cps | $pg6_cps | $lx6_cps | $(ratio "$bp6_cps" "$lx6_cps") | $(ratio "$pg6_cps" "$lx6_cps") |
| postern-dp memory per idle connection, bytes (RSS delta / $IDLE) | — | $per_conn | — | — | — |

On net_af_packet the kernel stays in Postern's path both ways (packet_rcv copies
each frame into the ring; each TX burst is a sendto()), so these ratios bound
the af_packet path, not the stack's own cost: that is the memif benchmark.
MD
python3 - "$OUT/tcp.json" <<PY
import json, sys
json.dump({"machine": "$machine", "bytes": $BYTES, "conns": $CONNS,
           "postern_busy_poll": {"mbps": $bp_mbps, "conns_per_s": $bp_cps,
                                 "ipv6": {"mbps": $bp6_mbps, "conns_per_s": $bp6_cps}},
           "postern": {"mbps": $pg_mbps, "conns_per_s": $pg_cps, "bytes_per_idle_conn": $per_conn,
                       "ipv6": {"mbps": $pg6_mbps, "conns_per_s": $pg6_cps}},
           "linux": {"mbps": $lx_mbps, "conns_per_s": $lx_cps,
                     "ipv6": {"mbps": $lx6_mbps, "conns_per_s": $lx6_cps}}}, open(sys.argv[1], "w"), indent=1)
PY
cat "$OUT/tcp.md"
