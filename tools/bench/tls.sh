#!/usr/bin/env bash
# tools/bench/tls.sh - STARTTLS handshakes/s (issue 6), Postern against
# Postfix and against the crypto bound of `openssl speed`, in one run:
#
#   A. postern-gen (cpu 0) --memif--> postern-dp, 1 worker on cpu 1
#   B. postern-gen (cpu 0, net_af_packet on the lab's dp1 in pg-dp)
#      --veth--> a Postfix instance in pg-srv pinned to cpu 1 (taskset),
#      smtpd_tls_security_level = may with the same certificates
#
# Each session is greeting, EHLO, STARTTLS, the handshake, EHLO, QUIT
# (postern-gen --per-conn 0), closed loop with BENCH_SESSIONS at once, for
# ECDSA P-256 and RSA-2048 certificates (the client's signature_algorithms
# pick which one both servers present), full (no ticket offered) and
# resumed (the last ticket offered: TLS 1.3 PSK with (EC)DHE).
#
# Two rates per run:
#   - handshakes/s of wall time: on this machine the client has one core
#     too, and it verifies what the server signs (ECDSA verify costs more
#     than sign), so for ECDSA and resumed runs it is the client's bound;
#   - handshakes per CPU-second of the server (its cgroup's cpuacct time:
#     every Postern thread, or every Postfix process incl. tlsmgr) - the
#     "per worker core" figure, independent of who saturated.
# The bound: one core doing only the server's public-key work of a
# handshake, from `openssl speed` in the same run: full = 1 signature +
# 2 X25519 operations (key generation and derivation), resumed = 2 X25519.
# Writes tools/bench/results/tls.{md,json}. Needs root and a built tree.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${POSTERN_BUILD:-$TOP/build}
LAB=$TOP/tools/lab
OUT=${BENCH_OUT:-$TOP/tools/bench/results}
DUR=${BENCH_DURATION:-8}
SESS=${BENCH_SESSIONS:-16}
GEN=$B/tools/postern-gen
W=$(mktemp -d /tmp/pg-bench-tls.XXXXXX)
chmod 755 "$W"
PFX=$W/pfx
CG=/sys/fs/cgroup/cpuacct
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -d "$PFX/etc" ] && "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	sleep 0.5
	"$LAB" down >/dev/null 2>&1 || true
	for g in pg-bench-postern pg-bench-postfix; do rmdir "$CG/$g" 2>/dev/null || true; done
	rm -rf "$W" /dev/shm/pg-bench-tls
}
trap cleanup EXIT
mkdir -p "$OUT"
[ -d "$CG" ] || { echo "tls.sh: needs the cpuacct cgroup controller at $CG" >&2; exit 1; }
mkdir -p "$CG/pg-bench-postern" "$CG/pg-bench-postfix"
cg_usage() { cat "$CG/$1/cpuacct.usage"; }
# "${INCG[@]}" CGROUP-DIR CMD...: CMD in the cgroup (children inherit it), as the
# same process (a shell function run with & would leave $! pointing at a subshell)
INCG=(sh -c 'echo $$ >"$0/tasks"; exec "$@"')

# ---- the crypto bound ----
echo "== openssl speed (one core)"
speed=$(taskset -c 1 openssl speed -seconds 3 ecdsap256 rsa2048 ecdhx25519 2>/dev/null)
rsa_sign=$(awk '/^rsa 2048 bits/ {print $6}' <<<"$speed")
ecdsa_sign=$(awk '/256 bits ecdsa \(nistp256\)/ {print $7}' <<<"$speed")
x25519=$(awk '/253 bits ecdh \(X25519\)/ {print $6}' <<<"$speed")
echo "rsa2048 sign/s $rsa_sign, ecdsa p256 sign/s $ecdsa_sign, x25519 op/s $x25519"
[ -n "$rsa_sign" ] && [ -n "$ecdsa_sign" ] && [ -n "$x25519" ] ||
	{ echo "tls.sh: cannot parse openssl speed:" >&2; echo "$speed" >&2; exit 1; }

CERTS=$W/certs
"$TOP/tests/lab/mkcerts.sh" "$CERTS" >/dev/null
RSA_SIGALGS="rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pkcs1_sha256"
CASES=("ecdsa-full|" "ecdsa-resumed|--resume" "rsa-full|--sigalgs $RSA_SIGALGS" "rsa-resumed|--sigalgs $RSA_SIGALGS --resume")

# gen_run NAME SERVER-CGROUP EAL... -- CLIENT ARGS: one run; prints "handshakes wall_s cpu_s resumed errors"
gen_run() {
	local name=$1 cg=$2
	shift 2
	local u0 u1
	u0=$(cg_usage "$cg")
	"$@" >"$W/$name.log" 2>&1 || { echo "tls.sh: $name failed:" >&2; tail "$W/$name.log" >&2; exit 1; }
	u1=$(cg_usage "$cg")
	python3 - "$W/$name.json" "$u0" "$u1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["counts"]
print(c["tls_handshakes"], d["elapsed_s"], (int(sys.argv[3]) - int(sys.argv[2])) / 1e9,
      c["tls_resumed"], d["errors_total"])
EOF
}

# ---- A: Postern over memif ----
echo "== A. Postern (1 worker on cpu 1, net_memif)"
mkdir -p "$W/postern/spool"
cat >"$W/postern/postern.conf" <<EOF
workers = 1
port0_device = net_memif0,role=server,socket=$W/memif.sock,id=0
port0_address = 198.18.100.1/24
idle_polls = 8
idle_sleep = 100us
shm_name = pg-bench-tls
control_socket = $W/posternd.sock
log_file = $W/posternd.log
smtp_service = yes
spool_directory = $W/postern/spool
mynetworks = 198.18.100.0/24
myhostname = mx.postern.bench
tls_certificates = $CERTS/postern-ecdsa.pem $CERTS/postern-rsa.pem
EOF
"$B/control/posternd" -c "$W/postern" --foreground >"$W/posternd.out" 2>&1 &
pids+=($!)
sleep 0.5
"${INCG[@]}" "$CG/pg-bench-postern" "$B/dataplane/postern-dp" --lcores 0@1,1@1 --no-huge -m 256 --no-pci \
	--file-prefix pg-bench-tls --log-level='*:warning' -- --shm pg-bench-tls >"$W/dp.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do "$B/control/posternctl" -s "$W/posternd.sock" status --json 2>/dev/null | grep -q "\"ready\":true" && break; sleep 0.1; done
pbusy() { "$B/control/posternctl" -s "$W/posternd.sock" stats --all --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"].get("busy_ns", {}).get("total", 0))'; }
declare -A R BUSY
# each run from its own address: a new process must not meet the previous
# run's 4-tuples in the server's TIME_WAIT (PAWS would drop its SYNs)
RUN=10
for c in "${CASES[@]}"; do
	name=${c%%|*} args=${c#*|}
	RUN=$((RUN + 1))
	b0=$(pbusy)
	R[postern-$name]=$(gen_run "postern-$name" pg-bench-postern \
		"$GEN" --lcores 0@0 --no-huge -m 128 --no-pci --file-prefix pg-bench-tls-gen \
		--vdev "net_memif0,role=client,socket=$W/memif.sock,id=0" --log-level='*:warning' -- \
		client --addr "198.18.100.$RUN/24" --server 198.18.100.1 --starttls --per-conn 0 \
		--sessions "$SESS" --duration "$DUR" --no-progress --json "$W/postern-$name.json" $args)
	sleep 0.1 # the counters are published every millisecond
	BUSY[$name]=$(python3 -c "print(($(pbusy) - $b0) / 1e9)")
	echo "postern $name: ${R[postern-$name]} busy ${BUSY[$name]} s"
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()
sleep 1

# ---- B: Postfix in the lab, the generator on af_packet ----
echo "== B. Postfix (pinned to cpu 1) in pg-srv, postern-gen on net_af_packet"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up >/dev/null
"${INCG[@]}" "$CG/pg-bench-postfix" "$LAB" exec srv taskset -c 1 "$TOP/tests/lab/postfix-inst.sh" start "$PFX" \
	--listen 198.19.0.2:25 --mode sink --hostname mx.postfix.bench \
	--set "smtpd_tls_security_level=may" \
	--set "smtpd_tls_chain_files=$CERTS/valid.key,$CERTS/valid.pem,$CERTS/valid-rsa.key,$CERTS/valid-rsa.pem" \
	--set "smtpd_tls_loglevel=0" >"$W/pfx.log" 2>&1 ||
	{ echo "tls.sh: Postfix did not start" >&2; cat "$W/pfx.log" >&2; exit 1; }
pfx_ver=$(postconf -d -h mail_version 2>/dev/null || echo "?")
for c in "${CASES[@]}"; do
	name=${c%%|*} args=${c#*|}
	RUN=$((RUN + 1))
	R[postfix-$name]=$(gen_run "postfix-$name" pg-bench-postfix \
		ip netns exec pg-dp "$GEN" --lcores 0@0 --no-huge -m 128 --no-pci --file-prefix pg-bench-tls-gen \
		--vdev "net_af_packet0,iface=dp1,blocksz=4096,framesz=2048,framecnt=512" --log-level='*:warning' -- \
		client --addr "198.19.0.$RUN/24" --server 198.19.0.2 --starttls --per-conn 0 \
		--sessions "$SESS" --duration "$DUR" --no-progress --json "$W/postfix-$name.json" $args)
	echo "postfix $name: ${R[postfix-$name]}"
done

# ---- the table ----
machine="$(nproc) cpus, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
python3 - "$OUT" "$machine" "$(git -C "$TOP" rev-parse --short HEAD)" "$(pkg-config --modversion libdpdk)" \
	"$(openssl version)" "$pfx_ver" "$ecdsa_sign" "$rsa_sign" "$x25519" "$DUR" "$SESS" \
	"${R[postern-ecdsa-full]}" "${R[postern-ecdsa-resumed]}" "${R[postern-rsa-full]}" "${R[postern-rsa-resumed]}" \
	"${R[postfix-ecdsa-full]}" "${R[postfix-ecdsa-resumed]}" "${R[postfix-rsa-full]}" "${R[postfix-rsa-resumed]}" \
	"${BUSY[ecdsa-full]}" "${BUSY[ecdsa-resumed]}" "${BUSY[rsa-full]}" "${BUSY[rsa-resumed]}" <<'EOF'
import json, sys, datetime
out, machine, rev, dpdk, ossl, pfx = sys.argv[1:7]
ecdsa, rsa, x = (float(v) for v in sys.argv[7:10])
dur, sess = sys.argv[10:12]
names = ["ecdsa-full", "ecdsa-resumed", "rsa-full", "rsa-resumed"]
def parse(s):
    h, wall, cpu, res, err = s.split()
    h, wall, cpu, res, err = int(h), float(wall), float(cpu), int(res), int(err)
    return {"handshakes": h, "resumed": res, "errors": err, "wall_s": wall, "server_cpu_s": cpu,
            "per_s": h / wall, "per_cpu_s": h / cpu if cpu > 0 else 0}
pn = {n: parse(v) for n, v in zip(names, sys.argv[12:16])}
pf = {n: parse(v) for n, v in zip(names, sys.argv[16:20])}
for n, b in zip(names, sys.argv[20:24]):
    pn[n]["busy_s"] = float(b)
    pn[n]["per_busy_s"] = pn[n]["handshakes"] / float(b) if float(b) > 0 else 0
bound = {"ecdsa-full": 1 / (1 / ecdsa + 2 / x), "rsa-full": 1 / (1 / rsa + 2 / x),
         "ecdsa-resumed": x / 2, "rsa-resumed": x / 2}
rows = []
for n in names:
    a, b = pn[n], pf[n]
    rows.append({"case": n, "postern": a, "postfix": b, "crypto_bound_per_core": bound[n],
                 "postern_vs_bound": a["per_cpu_s"] / bound[n],
                 "postern_busy_vs_bound": a["per_busy_s"] / bound[n],
                 "postfix_vs_bound": b["per_cpu_s"] / bound[n],
                 "postern_vs_postfix_per_cpu": a["per_cpu_s"] / b["per_cpu_s"] if b["per_cpu_s"] else 0,
                 "postern_vs_postfix_wall": a["per_s"] / b["per_s"] if b["per_s"] else 0})
res = {"date": datetime.date.today().isoformat(), "machine": machine, "postern": rev, "dpdk": dpdk,
       "openssl": ossl, "postfix": pfx, "duration_s": float(dur), "sessions": int(sess),
       "openssl_speed": {"ecdsap256_sign_per_s": ecdsa, "rsa2048_sign_per_s": rsa, "x25519_per_s": x},
       "rows": rows}
json.dump(res, open(out + "/tls.json", "w"), indent=1)
md = [f"# STARTTLS handshakes: Postern vs Postfix vs openssl speed ({res['date']})", "",
      f"Machine: {machine}. Postern {rev}, DPDK {dpdk}, {ossl}, Postfix {pfx}.",
      f"Command: `tools/bench/tls.sh` (BENCH_DURATION={dur}, BENCH_SESSIONS={sess}). Each session: greeting, EHLO,",
      "STARTTLS, handshake, EHLO, QUIT (`postern-gen --per-conn 0 --starttls`), closed loop. Servers on cpu 1,",
      "the generator on cpu 0. Postern: 1 worker, net_memif. Postfix: every process pinned to cpu 1,",
      "postern-gen on net_af_packet. Server CPU = cpuacct of the server's cgroup over the run.",
      "",
      f"openssl speed on one core: ECDSA P-256 sign {ecdsa:.0f}/s, RSA-2048 sign {rsa:.0f}/s, X25519 {x:.0f} op/s.",
      "Crypto bound per core = the server's public-key work alone: full = 1 sign + 2 X25519, resumed = 2 X25519.",
      "",
      "| case | bound/core | Postern hs/s (wall) | Postern hs/CPU-s | Postern / bound | Postern hs/busy-s | busy / bound | Postfix hs/s (wall) | Postfix hs/CPU-s | Postfix / bound | Postern / Postfix (per CPU-s) |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    a, b = r["postern"], r["postfix"]
    md.append(f"| {r['case']} | {r['crypto_bound_per_core']:.0f} | {a['per_s']:.0f} | {a['per_cpu_s']:.0f} | "
              f"{r['postern_vs_bound']:.2f} | {a['per_busy_s']:.0f} | {r['postern_busy_vs_bound']:.2f} | {b['per_s']:.0f} | {b['per_cpu_s']:.0f} | {r['postfix_vs_bound']:.2f} | "
              f"{r['postern_vs_postfix_per_cpu']:.2f} |")
md += ["", "Resumed counts (of all handshakes): " + ", ".join(
    f"{n}: Postern {pn[n]['resumed']}/{pn[n]['handshakes']}, Postfix {pf[n]['resumed']}/{pf[n]['handshakes']}"
    for n in names) + ".",
       "Errors: " + ", ".join(f"{n}: {pn[n]['errors']}/{pf[n]['errors']}" for n in names) + " (Postern/Postfix).",
       "",
       "Wall rates are bounded by the one client core whenever the client's work per handshake is at least",
       "the server's (ECDSA: the client verifies, which costs more than signing; resumed: both sides do",
       "the same X25519 work). The per-CPU-second rate is the server's own cost and is the figure to compare.",
       "Postern's CPU (cgroup) includes its idle back-off (idle_polls = 8, idle_sleep = 100us) and its",
       "main lcore; busy-s is the worker's own busyness counter (busy_ns: poll passes that did work),",
       "the cost a fully loaded worker would pay. Postfix blocks when idle, so its CPU has no such part."]
open(out + "/tls.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
