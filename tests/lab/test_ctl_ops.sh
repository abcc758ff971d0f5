#!/usr/bin/env bash
# tests/lab/test_ctl_ops.sh - the operations side of posternd end to end:
# GET /metrics (exposition, 404/405/400, a garbage or idle client does not
# hurt it), the JSON log (config published/refused lines, SIGUSR1 reopen),
# posternctl log and stats --watch, and the control socket's mode with and
# without control_group. No dataplane and no network namespaces: posternd
# runs on a temporary directory with its own shm_name, socket, log and a
# free loopback port, so this runs alongside the namespace lab. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=${PG_BUILD:-$TOP/build}
PD=$BUILD/control/posternd
PC=$BUILD/control/posternctl
CFG=$(mktemp -d /tmp/pg-ctl-ops.XXXXXX)
SHM=pg-ctl-ops-$$
SOCK=$CFG/ctl.sock
LOG=$CFG/log/postern.log
PD_PID=
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# control_group is proved with a group and two users made for this run
# (system accounts, no home, no login shell), removed again on exit: one in
# the group, one outside it.
TGROUP=pgctl$$
TUSER_IN=pgctlin$$
TUSER_OUT=pgctlout$$
cleanup() {
	if [ -n "$PD_PID" ]; then kill "$PD_PID" 2>/dev/null; wait "$PD_PID" 2>/dev/null; fi
	rm -f "/dev/shm/$SHM"
	rm -rf "$CFG"
	userdel "$TUSER_IN" 2>/dev/null
	userdel "$TUSER_OUT" 2>/dev/null
	groupdel "$TGROUP" 2>/dev/null
}
trap cleanup EXIT

write_conf() {
	cat >"$CFG/postern.conf" <<CONF
port0_device = net_tap0
port0_address = 198.18.0.1/24
shm_name = $SHM
control_socket = $SOCK
log_file = $LOG
metrics_listen = 127.0.0.1:$PORT
$1
CONF
}

start_pd() {
	"$PD" -c "$CFG" 2>>"$CFG/posternd.err" &
	PD_PID=$!
	for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
}

stop_pd() { kill "$PD_PID"; wait "$PD_PID" 2>/dev/null; PD_PID=; }

ctl() { "$PC" -s "$SOCK" "$@"; }
# http METHOD PATH: "STATUS\nCONTENT-TYPE\nBODY"
http() {
	python3 - "$PORT" "$1" "$2" <<'PY'
import sys, urllib.request, urllib.error
port, method, path = sys.argv[1:]
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
try:
    r = urllib.request.urlopen(req, timeout=5)
    print(r.status); print(r.headers.get("Content-Type")); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.headers.get("Content-Type")); print(e.read().decode())
PY
}
# raw BYTES: what posternd answers to these bytes (status line)
raw() {
	python3 - "$PORT" "$1" <<'PY'
import sys, socket
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
print(data.split(b"\r\n")[0].decode("latin-1"))
PY
}
# every line of the log is a JSON object with ts, source, level, event
log_valid() {
	python3 - "$LOG" <<'PY'
import json, re, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    d = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["ts"]), (n, d["ts"])
    assert list(d)[:4] == ["ts", "source", "level", "event"], (n, list(d))
PY
}

write_conf ""
start_pd
ctl status >/dev/null 2>&1
rc=$?
if [ $rc -eq 4 ]; then ok "posternd up (no dataplane: status exit 4)"; else not_ok "status exit $rc"; sed 's/^/# /' "$CFG/posternd.err"; fi

# ---- /metrics ----
out=$(http GET /metrics)
if [ "$(echo "$out" | sed -n 1p)" = 200 ] && echo "$out" | sed -n 2p | grep -q '^text/plain; version=0.0.4' \
	&& echo "$out" | grep -qx 'postern_published_generation 1' && echo "$out" | grep -qx 'postern_dataplane_up 0'; then
	ok "GET /metrics: 200, exposition 0.0.4, published_generation 1, dataplane_up 0"
else not_ok "GET /metrics: $out"; fi
if echo "$out" | grep -qx '# HELP postern_published_generation .*' && echo "$out" | grep -qx '# TYPE postern_published_generation gauge' \
	&& echo "$out" | grep -qx '# TYPE postern_dataplane_up gauge'; then
	ok "HELP and TYPE lines for each family"
else not_ok "HELP/TYPE: $out"; fi
if [ "$(http GET /nothere | sed -n 1p)" = 404 ] && [ "$(http GET / | sed -n 1p)" = 404 ]; then
	ok "other paths: 404"; else not_ok "404: $(http GET /nothere)"; fi
if [ "$(http POST /metrics | sed -n 1p)" = 405 ]; then ok "POST /metrics: 405"; else not_ok "405: $(http POST /metrics)"; fi
st=$(raw 'hello, this is not HTTP\r\n\r\n')
st2=$(raw '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03')
if [ "$st" = "HTTP/1.0 400 Bad Request" ] && [ "$st2" = "HTTP/1.0 400 Bad Request" ]; then
	ok "garbage and a TLS hello get 400"; else not_ok "garbage: '$st' / '$st2'"; fi
# an idle client holds a slot, not the loop; a request line without headers works
exec 7<>/dev/tcp/127.0.0.1/"$PORT"
if [ "$(raw 'GET /metrics HTTP/1.0\r\n')" = "HTTP/1.0 200 OK" ] && ctl status >/dev/null 2>&1; [ $? -eq 4 ]; then
	ok "posternd survives: answers /metrics and status while a client idles"
else not_ok "after garbage"; fi
exec 7>&-

# ---- the JSON log ----
if grep -q '"event":"config published","generation":1,"change":"start"' "$LOG" && log_valid; then
	ok "log_file: a \"config published\" line, every line JSON with ts/source/level/event"
else not_ok "log:"; sed 's/^/# /' "$LOG"; fi
echo 'workerz = 2' >>"$CFG/postern.conf"
err=$(ctl reload 2>&1)
n=$(wc -l <"$CFG/postern.conf")
sleep 0.1
if grep -q "\"event\":\"config refused\",\"generation\":1,\"reason\":\"$CFG/postern.conf:$n: unknown key \\\\\"workerz\\\\\"\"" "$LOG"; then
	ok "refused reload: a \"config refused\" line with FILE:LINE"
else not_ok "refused: '$err'"; sed 's/^/# /' "$LOG"; fi
sed -i '$d' "$CFG/postern.conf"
out=$(ctl log --lines 5)
if [ $? -eq 0 ] && [ "$(echo "$out" | wc -l)" -le 5 ] && echo "$out" | grep -q "posternd info config published generation=1 change=start" \
	&& echo "$out" | grep -q "posternd error config refused generation=1 reason=\".*postern.conf:$n: unknown key"; then
	ok "posternctl log --lines 5 shows them as text"
else not_ok "log --lines 5:"; echo "$out" | sed 's/^/# /'; fi
out=$(ctl log --lines 2 --json)
if [ "$(echo "$out" | wc -l)" -eq 2 ] && echo "$out" | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]'; then
	ok "posternctl log --json: the JSON lines themselves"
else not_ok "log --json: $out"; fi
( sleep 0.5; ctl reload >/dev/null ) &
bg=$!
out=$(timeout 10 "$PC" -s "$SOCK" log --follow --lines 1 --count 1)
rc=$?
wait "$bg"
if [ $rc -eq 0 ] && echo "$out" | tail -n1 | grep -q "config published generation=2 change=reload"; then
	ok "posternctl log --follow --count 1 sees the next event and stops"
else not_ok "follow: rc $rc, $out"; fi

mv "$LOG" "$LOG.1"
kill -USR1 "$PD_PID"
sleep 0.2
ctl reload >/dev/null
if [ -f "$LOG" ] && grep -q '"event":"log reopened"' "$LOG" && grep -q '"generation":3' "$LOG" && ! grep -q '"generation":3' "$LOG.1"; then
	ok "SIGUSR1 reopens log_file (logrotate): new events go to the new file"
else not_ok "reopen"; ls -la "$CFG/log" | sed 's/^/# /'; fi

# ---- stats --watch, help, socket mode ----
out=$(timeout 10 "$PC" -s "$SOCK" stats --watch 1 --count 2)
rc=$?
if [ $rc -eq 0 ] && [ "$(echo "$out" | grep -c ', every 1 s')" -eq 2 ]; then
	ok "stats --watch 1 --count 2 prints two readings and stops"
else not_ok "watch: rc $rc, $out"; fi
ctl stats --watch 0 >/dev/null 2>&1; rc1=$?
ctl stats --watch --json >/dev/null 2>&1; rc2=$?
ctl log --count 3 >/dev/null 2>&1; rc3=$?
if [ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ]; then ok "usage errors exit 2"; else not_ok "usage: $rc1 $rc2 $rc3"; fi
if ctl log --help | grep -q -- '--follow' && ctl stats --help | grep -q -- '--watch' && ctl help log | grep -q -- '--lines'; then
	ok "--help for log and stats"; else not_ok "--help"; fi
# as_user USER posternctl ARGS...: posternctl as USER, with USER's groups; prints the exit status and output
as_user() {
	local u=$1
	shift
	out=$(setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$PC" -s "$SOCK" "$@" 2>&1)
	echo "$? $out"
}
groupadd --system "$TGROUP" &&
	useradd --system --no-create-home --shell /usr/sbin/nologin --gid nogroup -G "$TGROUP" "$TUSER_IN" &&
	useradd --system --no-create-home --shell /usr/sbin/nologin --gid nogroup "$TUSER_OUT" &&
	id -nG "$TUSER_IN" | grep -qw "$TGROUP" && ! id -nG "$TUSER_OUT" | grep -qw "$TGROUP"
check "test group $TGROUP with user $TUSER_IN in it and $TUSER_OUT outside" test $? -eq 0
chmod 711 "$CFG" # the socket's directory: searchable by anyone, the socket's own mode decides
mode=$(stat -c '%a %G' "$SOCK")
r_in=$(as_user "$TUSER_IN" status)
if [ "$mode" = "600 $(id -gn root)" ] && [ "${r_in%% *}" = 3 ] && echo "$r_in" | grep -q "Permission denied"; then
	ok "socket mode 0600 without control_group: even $TUSER_IN (in $TGROUP) is refused: $r_in"
else not_ok "socket mode $mode; $TUSER_IN: $r_in (want exit 3, Permission denied)"; fi

stop_pd
if tail -n1 "$LOG" | grep -q '"event":"posternd stopped"'; then ok "a \"posternd stopped\" line at exit"; else not_ok "stopped line"; fi
write_conf "control_group = $TGROUP"
start_pd
mode=$(stat -c '%a %G' "$SOCK")
r_in=$(as_user "$TUSER_IN" status)
r_out=$(as_user "$TUSER_OUT" status)
if [ "$mode" = "660 $TGROUP" ] && [ "${r_in%% *}" = 4 ] && [ "${r_out%% *}" = 3 ] && echo "$r_out" | grep -q "Permission denied"; then
	ok "control_group = $TGROUP: socket mode 0660, group $TGROUP; $TUSER_IN (in the group) is served (status exit 4: no dataplane), $TUSER_OUT is refused (exit 3, Permission denied)"
else not_ok "socket with group: mode '$mode' (want 660 $TGROUP); $TUSER_IN: $r_in (want exit 4); $TUSER_OUT: $r_out (want exit 3, Permission denied)"; fi
stop_pd
write_conf "control_group = pg-no-such-group-$$"
out=$("$PD" --check -c "$CFG" 2>&1)
if [ $? -eq 1 ] && [ "$out" = "$CFG/postern.conf:7: bad value for control_group: \"pg-no-such-group-$$\": no such group" ]; then
	ok "an unknown control_group is refused with FILE:LINE"
else not_ok "unknown group: $out"; fi

tap_done
