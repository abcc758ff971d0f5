#!/usr/bin/env bash
# tools/bench/smtp.sh - SMTP relaying under load from postern-gen, Postern
# against Postfix in one run, both durable (fsync before the 250):
#
#   A. postern-gen client (cpu 0) --memif--> postern-dp (1 worker, cpu 1)
#      --memif--> postern-gen sink (cpu 0)
#   B. postern-gen client (cpu 0, net_af_packet on the lab's dp1 in pg-dp)
#      --veth--> a Postfix relay in pg-srv pinned to cpu 1 (taskset)
#      --> Postfix smtp-sink in pg-srv
#
# Open loop at each rate of BENCH_RATES (messages/s; 4 KB, 10 per
# connection, at most 64 connections): accepted/s and the latency of each
# message from the moment it was due to its 250 (p50/p99/p99.9, so a
# server that falls behind shows as latency, not as a lower offered rate),
# and end of data -> 250. Then closed loop (16 sessions) for the most each
# accepts. Writes tools/bench/results/smtp.{md,json}. Needs root and a
# built tree. Not a test: numbers, not verdicts.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${POSTERN_BUILD:-$TOP/build}
LAB=$TOP/tools/lab
OUT=${BENCH_OUT:-$TOP/tools/bench/results}
RATES=${BENCH_RATES:-100 300 600}
DUR=${BENCH_DURATION:-8}
GEN=$B/tools/postern-gen
W=$(mktemp -d /tmp/pg-bench-smtp.XXXXXX)
chmod 755 "$W"
PFX=$W/pfx
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -d "$PFX/etc" ] && "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	pkill -f "smtp-sink .*198.19.0.2:2525" 2>/dev/null || true
	sleep 0.5
	"$LAB" down >/dev/null 2>&1 || true
	rm -rf "$W" /dev/shm/pg-bench-smtp
}
trap cleanup EXIT
mkdir -p "$OUT"
EAL="--no-huge -m 128 --no-pci --log-level=*:warning"
LOAD_ARGS="--size 4k --per-conn 10 --duration $DUR --drain 30 --no-progress"

# summary FILE: "accepted_per_s msg_p50 msg_p99 msg_p999 eod_p50 eod_p99 errors tcp_rtos" (ms)
summary() {
	python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_us"]
m, e = l.get("message", {}), l.get("end_of_data", {})
g = lambda h, k: round(h.get(k, 0) / 1000, 3)
print(round(d["rates"]["messages_per_s"], 1), g(m, "p50"), g(m, "p99"), g(m, "p99.9"),
      g(e, "p50"), g(e, "p99"), d["errors_total"], d["counts"]["tcp_rtos"])
EOF
}

# ---- A: Postern over memif ----
echo "== A. Postern (1 worker on cpu 1, net_memif both sides)"
mkdir -p "$W/postern/spool"
cat >"$W/postern/postern.conf" <<EOF
workers = 1
port0_device = net_memif0,role=server,socket=$W/in.sock,id=0
port0_address = 198.18.100.1/24
port1_device = net_memif1,role=server,socket=$W/out.sock,id=0
port1_address = 198.18.101.1/24
shm_name = pg-bench-smtp
control_socket = $W/posternd.sock
log_file = $W/posternd.log
smtp_service = yes
spool_directory = $W/postern/spool
mynetworks = 198.18.100.0/24
relayhost = [198.18.101.2]:25
myhostname = mx.postern.bench
EOF
"$B/control/posternd" -c "$W/postern" --foreground >"$W/posternd.out" 2>&1 &
pids+=($!)
sleep 0.5
"$B/dataplane/postern-dp" --lcores 0@1,1@1 --no-huge -m 256 --no-pci --file-prefix pg-bench-smtp \
	--log-level='*:warning' -- --shm pg-bench-smtp >"$W/dp.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do "$B/control/posternctl" -s "$W/posternd.sock" status --json 2>/dev/null | grep -q '"ready":true' && break; sleep 0.1; done
"$GEN" --lcores 0@0 $EAL --file-prefix pg-bench-smtp-sink --vdev "net_memif0,role=client,socket=$W/out.sock,id=0" -- \
	sink --addr 198.18.101.2/24 --duration 3600 >"$W/sink.log" 2>&1 &
pids+=($!)
sleep 1
# each run from its own address: a new process must not meet the previous
# run's 4-tuples in the server's TIME_WAIT (PAWS would drop its SYNs)
RUN=10
pg_client() { # NAME ARGS...
	local n=$1
	shift
	"$GEN" --lcores 0@0 $EAL --file-prefix pg-bench-smtp-cli --vdev "net_memif0,role=client,socket=$W/in.sock,id=0" -- \
		client --addr "198.18.100.$RUN/24" --server 198.18.100.1 --json "$W/$n.json" "$@" >"$W/$n.log" 2>&1 ||
		{ echo "smtp.sh: $n failed" >&2; tail "$W/$n.log" >&2; exit 1; }
	summary "$W/$n.json"
}
declare -A R
for r in $RATES; do
	RUN=$((RUN + 1)) # (not inside pg_client: $(...) is a subshell)
	R[pg-$r]=$(pg_client "pg-$r" --rate "$r" --sessions 64 $LOAD_ARGS)
	echo "postern rate $r: ${R[pg-$r]}"
done
RUN=$((RUN + 1))
R[pg-closed]=$(pg_client pg-closed --sessions 16 $LOAD_ARGS)
echo "postern closed loop: ${R[pg-closed]}"
[ -z "${BENCH_DEBUG:-}" ] || "$B/control/posternctl" -s "$W/posternd.sock" stats --all --json | python3 -c '
import json, sys
for k, v in json.load(sys.stdin)["counters"].items():
    if (k.startswith("tcp_") or k.startswith("arp") or "drop" in k) and v["total"]:
        print(k, v["total"])' >&2
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()
sleep 1

# ---- B: Postfix relay in the lab ----
echo "== B. Postfix relay (pinned to cpu 1) in pg-srv, postern-gen on net_af_packet"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up >/dev/null
"$LAB" exec srv smtp-sink -u nobody 198.19.0.2:2525 1024 >/dev/null 2>&1 &
ip -n pg-srv addr add 198.19.0.3/24 dev srv0
"$LAB" exec srv taskset -c 1 "$TOP/tests/lab/postfix-inst.sh" start "$PFX" --listen 198.19.0.3:25 \
	--mode relay --relayhost '[198.19.0.2]:2525' --mynetworks 198.19.0.0/24 >"$W/pfx.log" 2>&1 ||
	{ echo "smtp.sh: Postfix did not start" >&2; cat "$W/pfx.log" >&2; exit 1; }
pfx_ver=$(postconf -d -h mail_version 2>/dev/null || echo "?")
pf_client() { # NAME ARGS...
	local n=$1
	shift
	ip netns exec pg-dp "$GEN" --lcores 0@0 $EAL --file-prefix pg-bench-smtp-cli \
		--vdev "net_af_packet0,iface=dp1,blocksz=4096,framesz=2048,framecnt=512" -- \
		client --addr "198.19.0.$RUN/24" --server 198.19.0.3 --json "$W/$n.json" "$@" >"$W/$n.log" 2>&1 ||
		{ echo "smtp.sh: $n failed" >&2; tail "$W/$n.log" >&2; exit 1; }
	summary "$W/$n.json"
}
for r in $RATES; do
	RUN=$((RUN + 1))
	R[pf-$r]=$(pf_client "pf-$r" --rate "$r" --sessions 64 $LOAD_ARGS)
	echo "postfix rate $r: ${R[pf-$r]}"
done
RUN=$((RUN + 1))
R[pf-closed]=$(pf_client pf-closed --sessions 16 $LOAD_ARGS)
echo "postfix closed loop: ${R[pf-closed]}"

# ---- the table ----
machine="$(nproc) cpus, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
args=()
for r in $RATES closed; do args+=("$r" "${R[pg-$r]}" "${R[pf-$r]}"); done
python3 - "$OUT" "$machine" "$(git -C "$TOP" rev-parse --short HEAD)" "$(pkg-config --modversion libdpdk)" \
	"$pfx_ver" "$DUR" "${args[@]}" <<'EOF'
import json, sys, datetime
out, machine, rev, dpdk, pfx, dur = sys.argv[1:7]
rest = sys.argv[7:]
keys = ["accepted_per_s", "msg_p50_ms", "msg_p99_ms", "msg_p999_ms", "eod_p50_ms", "eod_p99_ms", "errors", "gen_tcp_rtos"]
rows = []
for i in range(0, len(rest), 3):
    a = dict(zip(keys, map(float, rest[i + 1].split())))
    b = dict(zip(keys, map(float, rest[i + 2].split())))
    rows.append({"load": rest[i], "postern": a, "postfix": b})
res = {"date": datetime.date.today().isoformat(), "machine": machine, "postern": rev, "dpdk": dpdk,
       "postfix": pfx, "duration_s": float(dur), "size": 4096, "per_conn": 10, "rows": rows}
json.dump(res, open(out + "/smtp.json", "w"), indent=1)
md = [f"# SMTP relaying under postern-gen load: Postern vs Postfix ({res['date']})", "",
      f"Machine: {machine}. Postern {rev}, DPDK {dpdk}, Postfix {pfx}.",
      f"Command: `tools/bench/smtp.sh` (BENCH_DURATION={dur}). 4 KB messages, 10 per connection, durable on both",
      "sides (fsync before 250). Postern: 1 worker on cpu 1, net_memif in and out, postern-gen sink as next hop.",
      "Postfix: relay pinned to cpu 1, smtp-sink as next hop, postern-gen on net_af_packet. Generator on cpu 0.",
      "Open loop: \"message\" latency runs from the time a message was due to its 250 (queueing included).",
      "Each run sends from its own address, so no run meets the previous one's 4-tuples in TIME_WAIT.", "",
      "| load | Postern acc/s | msg p50 / p99 / p99.9 ms | eod p50 / p99 ms | Postfix acc/s | msg p50 / p99 / p99.9 ms | eod p50 / p99 ms | acc/s ratio | p99 ratio (Postfix / Postern) |",
      "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    a, b = r["postern"], r["postfix"]
    load = "closed loop, 16 sessions" if r["load"] == "closed" else f"{r['load']} msgs/s"
    ratio = a["accepted_per_s"] / b["accepted_per_s"] if b["accepted_per_s"] else 0
    p99 = b["msg_p99_ms"] / a["msg_p99_ms"] if a["msg_p99_ms"] else 0
    md.append(f"| {load} | {a['accepted_per_s']:.0f} | {a['msg_p50_ms']} / {a['msg_p99_ms']} / {a['msg_p999_ms']} | "
              f"{a['eod_p50_ms']} / {a['eod_p99_ms']} | {b['accepted_per_s']:.0f} | {b['msg_p50_ms']} / {b['msg_p99_ms']} / "
              f"{b['msg_p999_ms']} | {b['eod_p50_ms']} / {b['eod_p99_ms']} | {ratio:.2f} | {p99:.2f} |")
    if a["errors"] or b["errors"] or a["gen_tcp_rtos"] or b["gen_tcp_rtos"]:
        md.append(f"| (errors: Postern {a['errors']:.0f}, Postfix {b['errors']:.0f}; the generator's TCP timeouts: "
                  f"{a['gen_tcp_rtos']:.0f}, {b['gen_tcp_rtos']:.0f}) | | | | | | | | |")
open(out + "/smtp.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
