#!/usr/bin/env bash
# tools/bench/run.sh - run every benchmark and collect the results tables in
# tools/bench/results/: one Markdown and one JSON file per benchmark, and
# summary.{md,json} with the headline ratios of all of them (machine,
# versions, commands). Needs a built tree (build/) and root (the lab).
# Benchmarks are not tests: they report ratios.
#   tcp.sh    Postern's TCP vs Linux (af_packet in the lab)
#   memif.sh  Postern's TCP against itself over net_memif (no kernel)
#   relay.sh  Postern's relay vs a Postfix relay (smtp-source -> smtp-sink)
#   smtp.sh   relaying under postern-gen load, open and closed loop:
#             accepted/s and latency percentiles, Postern vs Postfix
#   tls.sh    STARTTLS handshakes: Postern vs Postfix vs openssl speed
#             (postern-gen over net_memif and over net_af_packet)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. tools/deps.sh
pg_install_deps
pg_build build
for b in tools/bench/tcp.sh tools/bench/memif.sh tools/bench/relay.sh tools/bench/smtp.sh tools/bench/tls.sh; do
	echo "== $b"
	bash "$b"
done
python3 - tools/bench/results "$(git rev-parse --short HEAD)" <<'PYEOF'
import json, os, sys, datetime
d, rev = sys.argv[1], sys.argv[2]
def load(n):
    p = os.path.join(d, n + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
tcp, memif, relay, smtp, tls = (load(n) for n in ("tcp", "memif", "relay", "smtp", "tls"))
rows = []
if tcp:
    rows.append(("TCP bulk MB/s, 1 busy-polling worker vs Linux", "tcp.sh",
                 tcp["postern_busy_poll"]["mbps"], tcp["linux"]["mbps"]))
    rows.append(("TCP connections/s, 1 busy-polling worker vs Linux", "tcp.sh",
                 tcp["postern_busy_poll"]["conns_per_s"], tcp["linux"]["conns_per_s"]))
if relay:
    for c in relay["cases"]:
        rows.append((f"relayed msgs/s, {c['size'] // 1024} KB, {c['per_conn']}/conn, vs Postfix", "relay.sh",
                     c["postern"]["relayed_per_s"], c["postfix"]["relayed_per_s"]))
if smtp:
    for r in smtp["rows"]:
        if r["load"] == "closed":
            rows.append(("postern-gen closed loop, 4 KB, accepted msgs/s vs Postfix", "smtp.sh",
                         r["postern"]["accepted_per_s"], r["postfix"]["accepted_per_s"]))
        else:
            # latency: lower is better, so the ratio is reference / Postern
            rows.append((f"postern-gen open loop {r['load']} msgs/s: message p99 ms (ratio = Postfix / Postern)",
                         "smtp.sh", r["postern"]["msg_p99_ms"], r["postfix"]["msg_p99_ms"], "inverse"))
if tls:
    for r in tls["rows"]:
        rows.append((f"STARTTLS {r['case']} handshakes per server CPU-s vs Postfix", "tls.sh",
                     r["postern"]["per_cpu_s"], r["postfix"]["per_cpu_s"]))
        rows.append((f"STARTTLS {r['case']} per CPU-s vs openssl speed bound", "tls.sh",
                     r["postern"]["per_cpu_s"], r["crypto_bound_per_core"]))
out = {"date": datetime.date.today().isoformat(), "postern": rev,
       "machine": (tls or relay or tcp or {}).get("machine", "?"),
       "rows": []}
for row in rows:
    m, s, a, b = row[:4]
    inverse = len(row) > 4
    ratio = (b / a if a else None) if inverse else (a / b if b else None)
    out["rows"].append({"measure": m, "script": s, "postern": a, "reference": b,
                        "ratio": round(ratio, 3) if ratio is not None else None})
if memif:
    out["memif"] = memif
json.dump(out, open(os.path.join(d, "summary.json"), "w"), indent=1)
md = [f"# Postern benchmarks: summary ({out['date']}, postern {rev})", "",
      f"Machine: {out['machine']}. One command: `tools/bench/run.sh`; each script's own table",
      "(results/*.md) has its exact command, versions and caveats. Ratios > 1 favour Postern.", "",
      "| measure | script | Postern | reference | ratio |", "|---|---|---|---|---|"]
for r in out["rows"]:
    md.append(f"| {r['measure']} | {r['script']} | {r['postern']:.1f} | {r['reference']:.1f} | {r['ratio']} |")
if memif:
    md += ["", f"No kernel in the path (memif.sh): bulk {memif['discard_mbps']} MB/s, echo {memif['echo_mbps']} MB/s, "
           f"{memif['conns_per_s']} connections/s per core pair."]
open(os.path.join(d, "summary.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
PYEOF
