#!/usr/bin/env bash
# tools/bench/relay.sh - Postern's relay against Postfix's, side by side in
# one run, same generator (Postfix smtp-source), same next hop (Postfix
# smtp-sink in pg-srv), both with fsync durability:
#   A. smtp-source in pg-cli -> postern-dp (1 worker, af_packet) -> smtp-sink
#   B. smtp-source in pg-srv -> a Postfix relay instance in pg-srv pinned to
#      one core (taskset, inherited by every Postfix process) -> smtp-sink
# For 4 KB and 100 KB messages, one and ten messages per connection:
# messages/s accepted (smtp-source finished) and relayed (the next hop has
# them all, the queue empty), fsyncs per message (Postern's counter), and
# p50/p99 end-of-data -> 250 latency (tools/bench/eodlat.py, sequential,
# unloaded). Writes tools/bench/results/relay.{md,json}.
#
# Known asymmetries, in Postfix's favour: B never leaves the kernel's
# loopback-like veth-free path inside pg-srv, while A crosses two veths and
# af_packet; Postern keeps the lab's idle back-off (the machine has 2 cores
# shared by everything). Not a test: numbers, not verdicts.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$TOP/tools/lab
OUT=${BENCH_OUT:-$TOP/tools/bench/results}
N4=${BENCH_MSGS_4K:-2000}
N100=${BENCH_MSGS_100K:-500}
SESS=${BENCH_SESSIONS:-20}
LAT=${BENCH_LAT_MSGS:-300}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/pg-bench-relay.XXXXXX)
chmod 755 "$WORK"
PFX=$WORK/pfx
cleanup() {
	"$LAB" stop >/dev/null 2>&1 || true
	[ -d "$PFX/etc" ] && "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	pkill -f "smtp-sink .*198.19.0.2:2525" 2>/dev/null || true
	ip -n pg-srv addr del 198.19.0.3/24 dev srv0 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
ctr() { "$LAB" ctl stats --all --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"].get(sys.argv[1],{}).get("total",0))' "$1"; }

"$LAB" down >/dev/null 2>&1 || true
"$LAB" up >/dev/null
"$LAB" exec srv smtp-sink -u nobody 198.19.0.2:2525 1024 >/dev/null 2>&1 &
sleep 0.5

# ---- A: Postern ----
mkdir -p "$WORK/conf" "$WORK/spool"
sed -e "s/^workers.*/workers = 1/" -e "s/qpairs=2/qpairs=1/g" \
	-e "s#^spool_directory.*#spool_directory = $WORK/spool#" \
	"$TOP/tools/lab-config/postern.conf" >"$WORK/conf/postern.conf"
printf '*\tsmtp:[198.19.0.2]:2525\n' >"$WORK/conf/transport"
LAB_EAL="--lcores 0@0,1@1 --no-huge -m 256 --no-pci --file-prefix postern-lab" "$LAB" start "$WORK/conf" >/dev/null

# gen NS HOST:PORT SIZE PER_CONN N: smtp-source with PER_CONN messages per
# connection (1: a new connection per message; 10: rounds of -d sessions
# carrying ten each).
gen() {
	local ns=$1 dst=$2 size=$3 per=$4 n=$5
	if [ "$per" -eq 1 ]; then
		"$LAB" exec "$ns" smtp-source -s "$SESS" -m "$n" -l "$size" -f bench@pg-cli.example \
			-t sink@example.org "$dst" >/dev/null 2>&1 || true
		return
	fi
	local round=$((SESS * per)) done=0
	while [ "$done" -lt "$n" ]; do
		local m=$((n - done < round ? n - done : round))
		"$LAB" exec "$ns" smtp-source -d -s "$SESS" -m "$m" -l "$size" -f bench@pg-cli.example \
			-t sink@example.org "$dst" >/dev/null 2>&1 || true
		done=$((done + m))
	done
}

postern_run() { # SIZE PER_CONN N -> "accept_s relay_s fsyncs delivered"
	local size=$1 per=$2 n=$3 d0 f0 t0 t1 t2 d
	d0=$(ctr delivery_rcpts_delivered)
	f0=$(ctr spool_fsyncs)
	t0=$(now)
	gen cli 198.18.0.1:25 "$size" "$per" "$n"
	t1=$(now)
	local end=$((SECONDS + 300))
	while [ $(($(ctr delivery_rcpts_delivered) - d0)) -lt "$n" ] && [ $SECONDS -lt $end ]; do sleep 0.05; done
	t2=$(now)
	d=$(($(ctr delivery_rcpts_delivered) - d0))
	echo "$(python3 -c "print(round($t1-$t0,3), round($t2-$t0,3))") $(($(ctr spool_fsyncs) - f0)) $d"
}

pfx_queue() { find "$PFX/spool/incoming" "$PFX/spool/active" "$PFX/spool/deferred" "$PFX/spool/maildrop" -type f 2>/dev/null | wc -l; }
postfix_run() { # SIZE PER_CONN N -> "accept_s relay_s"
	local size=$1 per=$2 n=$3 t0 t1 t2
	t0=$(now)
	gen srv 198.19.0.3:25 "$size" "$per" "$n"
	t1=$(now)
	local end=$((SECONDS + 600))
	sleep 0.2
	while [ "$(pfx_queue)" -gt 0 ] && [ $SECONDS -lt $end ]; do sleep 0.05; done
	t2=$(now)
	python3 -c "print(round($t1-$t0,3), round($t2-$t0,3))"
}

latency() { # NS HOST -> "p50_ms p99_ms"
	"$LAB" exec "$1" python3 "$TOP/tools/bench/eodlat.py" "$2" 25 "$LAT" 4096
}

echo "A. Postern (1 worker on cpu 1, af_packet)"
"$LAB" exec cli smtp-source -s 5 -m 100 -l 4096 -f w@pg-cli.example -t w@example.org 198.18.0.1:25 >/dev/null 2>&1 || true
sleep 1
declare -A R
for size in 4096 102400; do
	n=$([ "$size" -eq 4096 ] && echo "$N4" || echo "$N100")
	for per in 1 10; do
		R[pg,$size,$per]=$(postern_run "$size" "$per" "$n")
		echo "  $size B, $per/conn, $n msgs: ${R[pg,$size,$per]}"
	done
done
R[pg,lat]=$(latency cli 198.18.0.1)
echo "  end-of-data -> 250: ${R[pg,lat]}"
"$LAB" stop >/dev/null

echo "B. Postfix relay (pinned to cpu 1) in pg-srv"
ip -n pg-srv addr add 198.19.0.3/24 dev srv0
"$LAB" exec srv taskset -c 1 "$TOP/tests/lab/postfix-inst.sh" start "$PFX" --listen 198.19.0.3:25 \
	--mode relay --relayhost '[198.19.0.2]:2525' --mynetworks 198.19.0.0/24 >/dev/null
gen srv 198.19.0.3:25 4096 1 100
sleep 2
for size in 4096 102400; do
	n=$([ "$size" -eq 4096 ] && echo "$N4" || echo "$N100")
	for per in 1 10; do
		R[pf,$size,$per]=$(postfix_run "$size" "$per" "$n")
		echo "  $size B, $per/conn, $n msgs: ${R[pf,$size,$per]}"
	done
done
R[pf,lat]=$(latency srv 198.19.0.3)
echo "  end-of-data -> 250: ${R[pf,lat]}"
"$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1 || true

machine="$(nproc) cpus, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
postfix_v=$(postconf -d mail_version 2>/dev/null | awk '{print $3}')
python3 - "$OUT" "$machine" "$postfix_v" "$N4" "$N100" "$SESS" "$LAT" \
	"${R[pg,4096,1]}" "${R[pg,4096,10]}" "${R[pg,102400,1]}" "${R[pg,102400,10]}" "${R[pg,lat]}" \
	"${R[pf,4096,1]}" "${R[pf,4096,10]}" "${R[pf,102400,1]}" "${R[pf,102400,10]}" "${R[pf,lat]}" <<'PY'
import json, sys
out, machine, pfv, n4, n100, sess, lat = sys.argv[1:8]
pg = sys.argv[8:13]
pf = sys.argv[13:18]
rows, js = [], {"machine": machine, "postfix": pfv, "sessions": int(sess), "cases": []}
for i, (size, per) in enumerate([(4096, 1), (4096, 10), (102400, 1), (102400, 10)]):
    n = int(n4) if size == 4096 else int(n100)
    a_acc, a_rel, fs, deliv = pg[i].split()
    b_acc, b_rel = pf[i].split()
    c = {"size": size, "per_conn": per, "messages": n,
         "postern": {"accepted_per_s": round(n / float(a_acc), 1), "relayed_per_s": round(n / float(a_rel), 1),
                     "fsyncs_per_msg": round(int(fs) / n, 3), "delivered": int(deliv)},
         "postfix": {"accepted_per_s": round(n / float(b_acc), 1), "relayed_per_s": round(n / float(b_rel), 1)}}
    c["ratio_accepted"] = round(c["postern"]["accepted_per_s"] / c["postfix"]["accepted_per_s"], 2)
    c["ratio_relayed"] = round(c["postern"]["relayed_per_s"] / c["postfix"]["relayed_per_s"], 2)
    js["cases"].append(c)
    rows.append(f"| {size // 1024} KB | {per} | {n} | {c['postern']['accepted_per_s']} | {c['postfix']['accepted_per_s']} | "
                f"**{c['ratio_accepted']}x** | {c['postern']['relayed_per_s']} | {c['postfix']['relayed_per_s']} | "
                f"**{c['ratio_relayed']}x** | {c['postern']['fsyncs_per_msg']} |")
pl, fl = pg[4].split(), pf[4].split()
js["latency_ms"] = {"postern": {"p50": float(pl[0]), "p99": float(pl[1])},
                    "postfix": {"p50": float(fl[0]), "p99": float(fl[1])}, "messages": int(lat)}
md = f"""# Relay: Postern vs Postfix (tools/bench/relay.sh)

Machine: {machine}. Postfix {pfv}. Generator: Postfix smtp-source, {sess} parallel
sessions; next hop: Postfix smtp-sink in pg-srv. Postern: 1 worker (cpu 1), af_packet,
lab idle back-off, spool with fdatasync group commit. Postfix: relay instance pinned
to cpu 1 (every process), default fsync durability, smtp-source on the same
namespace (no veth, no af_packet: in Postfix's favour).

| size | msgs/conn | msgs | Postern accepted/s | Postfix accepted/s | ratio | Postern relayed/s | Postfix relayed/s | ratio | Postern fsyncs/msg |
|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

End of data -> 250, {lat} sequential 4 KB messages on one connection, unloaded:
Postern p50 {pl[0]} ms / p99 {pl[1]} ms; Postfix p50 {fl[0]} ms / p99 {fl[1]} ms.
Postfix fsyncs every queue file once (cleanup(8)): 1 fsync per message.
"""
open(out + "/relay.md", "w").write(md)
json.dump(js, open(out + "/relay.json", "w"), indent=1)
print(md)
PY
