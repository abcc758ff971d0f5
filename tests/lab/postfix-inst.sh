#!/usr/bin/env bash
# tests/lab/postfix-inst.sh - a throw-away Postfix instance under DIR, for the
# lab tests (a reference sink, or a reference relay to benchmark against).
#
#   postfix-inst.sh start DIR --listen ADDR:PORT --mode sink [--domains D1,D2]
#       (ADDR:PORT an IPv4 address and port, or [IPv6]:PORT)
#   postfix-inst.sh start DIR --listen ADDR:PORT --mode relay \
#                   --relayhost '[IP]:PORT' --mynetworks CIDR[,CIDR]
#       common options: --hostname NAME (myhostname; default pg-pfx.example,
#       pg-pfx-relay.example for relay: equal names make Postfix see a loop),
#       --procs N (default_process_limit, default 100), --set NAME=VALUE
#       (extra main.cf line, repeatable; applied last)
#   postfix-inst.sh stop DIR           stop it; its master is gone on return
#   postfix-inst.sh wait DIR N [SECS]  wait (default 60 s) for N messages in
#                                      DIR/mail, print the count; 1 on timeout
#   postfix-inst.sh count DIR          print the number of delivered messages
#   postfix-inst.sh queue DIR          print the queue (postqueue -p) and the
#                                      number of queue files
#   postfix-inst.sh extract DIR [OUT]  delivered messages, normalised (below)
#
# Namespaces are the caller's business (`ip netns exec NS postfix-inst.sh
# start ...`). Everything the instance owns lives under DIR: DIR/etc
# (main.cf, master.cf), DIR/spool (queue_directory: queue files, pid/
# master.pid, public/postlog socket), DIR/data (data_directory: master.lock),
# DIR/mail (sink Maildir: DIR/mail/catchall/new/), DIR/maillog (postlogd;
# there is no syslog). So several instances with different DIRs and listen
# addresses run side by side; /etc/postfix is only read (master.cf.proto is
# not used, postfix-files is), and /etc/postfix/main.cf is neither needed nor
# created: as root, `postfix -c`, `postqueue -c` and `sendmail -C` accept a
# directory that the default main.cf does not list in
# alternate_config_directories (non-root users would be refused).
#
# Decisions and gotchas:
# - master.cf is written here, minimal, chroot off everywhere (Debian's
#   master.cf.proto chroots, which needs copies of /etc files in the queue).
# - maillog_file needs maillog_file_prefixes = DIR. Postfix commands print
#   errors only to a tty (else to syslog, absent here), so a failed start
#   repeats `postfix check` under script(1) to show why.
# - inet_interfaces must be an interface address (lo answers 127.0.0.2 but
#   does not carry it): otherwise it is "all", master.cf still binds ADDR.
# - master listens with SO_REUSEPORT, so a second instance on a taken port
#   would start and share the connections: start refuses a taken port.
# - A Postfix smtp client refuses a server greeting with its own myhostname
#   ("loops back to myself"), hence the relay's different default name.
# - No DNS anywhere: smtp_dns_support_level = disabled, smtp_host_lookup =
#   native, smtpd_peername_lookup = no (a namespace's resolver would time
#   out); no local(8) delivery, no aliases.
# - local_header_rewrite_clients is empty: for SMTP clients Postfix adds no
#   From/Date/Message-ID and rewrites no header address (by default it would
#   for a client on inet_interfaces, e.g. a test on the same address).
# - sink: virtual(8) delivers every recipient to DIR/mail/catchall/ as
#   nobody:nogroup (65534 >= virtual_minimum_uid 100), so DIR is made 0755
#   and every parent of DIR must be searchable by nobody (checked). Domains:
#   all (virtual_mailbox_domains = static:all) or --domains (others get 554
#   Relay access denied); smtpd_relay_restrictions = reject_unauth_destination
#   as smtpd refuses a bare "permit". default_transport = error: no relaying.
#   No per-client connection limits (default 50).
# - relay: Postfix defaults wherever they matter for a benchmark: queue files
#   fsynced, 20 connections at most to the relayhost (default destination
#   concurrency), connection cache on demand, smtpd/smtp process limit 100
#   (--procs). Only --mynetworks may relay (required, 0.0.0.0/0 refused);
#   they are exempt from per-client limits. With one non-loopback
#   inet_interfaces address, outgoing connections use it as source.
# - Both: smtpd_forbid_bare_newline = no, message_size_limit 100 MB,
#   compatibility_level 3.6, ipv4 only, no TLS.
#
# Sent DATA vs delivered file (sink, Postfix 3.7.11, checked byte for byte):
# CRLF (and a bare LF) becomes LF; dot-stuffing is undone; a missing final
# line break is added; a bare CR inside a line becomes a space; these are
# prepended, in this order:
#   Return-Path: <SENDER>
#   X-Original-To: RCPT
#   Delivered-To: RCPT
#   Received: from HELO (unknown [IP])\n\tby HOSTNAME (Postfix) with ESMTP id
#   \tQUEUEID\n\tfor <RCPT>; DATE      (one per Postfix hop, newest first)
# Everything else (headers, 8-bit bytes, lines longer than the 2048
# line_length_limit) is unchanged. Through the Postfix relay, lines longer
# than 998 bytes are also broken with CRLF SPACE (smtp_line_length_limit).
# `extract` undoes it: drops the leading Return-Path, X-Original-To and
# Delivered-To headers and the leading Received headers containing
# "(Postfix) with ", and turns LF into CRLF, so the result equals the DATA
# the client sent (CRLF lines) before dot-stuffing, with a final CRLF. With
# OUT it writes OUT/0001.eml...; without, it prints each message after a
# line "==> NAME LENGTH <==". Order: delivery (file mtime, then name).
#
# Related tools (Debian, /usr/sbin): as root smtp-sink needs -u USER, e.g.
#   smtp-sink -c -u nobody -d DUMPDIR/%M. 127.0.0.1:2528 100
#   smtp-source -c -m 20 -s 2 -l 4096 -t to@example.org 127.0.0.2:2526
set -euo pipefail

die() { echo "postfix-inst.sh: $*" >&2; exit 2; }
usage() { awk 'NR > 1 && /^# Namespaces/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2; }

pfdir() { # DIR -> absolute path, must already exist for everything but start
	[ -n "${1:-}" ] || usage
	[ -d "$1" ] || die "$1: no such directory"
	(cd "$1" && pwd -P)
}

master_pid() { # DIR -> pid of a live master of this instance, or nothing
	local pid
	pid=$(awk '{print $1; exit}' "$1/spool/pid/master.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
	case $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) in
	*master*) echo "$pid" ;;
	esac
}

# fail DIR MESSAGE: explain a failed start and leave no master behind.
# Postfix commands report to stderr only when it is a tty (else to syslog,
# which does not exist here, and maillog_file only works once postlogd is
# up), so repeat `postfix check` on a pseudo-terminal to show the reason.
fail() {
	echo "postfix-inst.sh: $1: $2" >&2
	script -qec "postfix -c '$1/etc' check" /dev/null | tr -d '\r' >&2 || true
	tail -n 20 "$1/maillog" >&2 2>/dev/null || true
	cmd_stop "$1" 2>/dev/null || true
	exit 1
}

alive() { # PID: running, not a zombie (PID 1 here may not reap)
	[ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

count() { # DIR -> messages delivered into DIR/mail
	find "$1/mail" -path '*/new/*' -type f 2>/dev/null | wc -l
	# (cur/ stays empty: nothing reads the Maildir)
}

cmd_start() {
	local dir=${1:-}; [ -n "$dir" ] || usage; shift
	local listen='' mode='' domains='' relayhost='' mynetworks='' hostname='' procs=100
	local -a extra=()
	while [ $# -gt 0 ]; do
		case $1 in
		--listen) listen=${2:?}; shift ;;
		--mode) mode=${2:?}; shift ;;
		--domains) domains=${2:?}; shift ;;
		--relayhost) relayhost=${2:?}; shift ;;
		--mynetworks) mynetworks=${2:?}; shift ;;
		--hostname) hostname=${2:?}; shift ;;
		--procs) procs=${2:?}; shift ;;
		--set) extra+=("${2:?}"); shift ;;
		*) die "start: unknown option $1" ;;
		esac
		shift
	done
	# IPv4 ADDR:PORT or IPv6 [ADDR]:PORT (then inet_protocols takes ipv6 too)
	local addr port family=4 maddr
	if [[ $listen =~ ^([0-9.]+):([0-9]+)$ ]]; then
		addr=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]} maddr=$addr
	elif [[ $listen =~ ^\[([0-9a-fA-F:]+)\]:([0-9]+)$ ]]; then
		addr=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]} family=6 maddr="[$addr]"
	else
		die "start: --listen ADDR:PORT or [IPv6]:PORT is required"
	fi
	case $mode in
	sink) [ -z "$relayhost$mynetworks" ] || die "start: --relayhost/--mynetworks are for --mode relay" ;;
	relay)
		[ -n "$relayhost" ] || die "start: --mode relay needs --relayhost '[IP]:PORT'"
		[ -n "$mynetworks" ] || die "start: --mode relay needs --mynetworks CIDR"
		case ",$mynetworks," in *,0.0.0.0/0,*) die "start: --mynetworks 0.0.0.0/0 is an open relay" ;; esac
		[ -z "$domains" ] || die "start: --domains is for --mode sink" ;;
	*) die "start: --mode sink|relay is required" ;;
	esac

	# relay and sink must differ: the smtp client refuses a server that
	# greets with its own myhostname ("mail for ... loops back to myself")
	[ -n "$hostname" ] || { [ "$mode" = sink ] && hostname=pg-pfx.example || hostname=pg-pfx-relay.example; }
	# inet_interfaces must name an interface address (127.0.0.2 is none,
	# though lo answers it); then bind by master.cf alone
	local ifaces=$maddr
	if ! ip -$family -o addr show 2>/dev/null | awk '{sub("/.*", "", $4); print $4}' | grep -qxF "$addr"; then
		echo "postfix-inst.sh: $addr is on no interface, using inet_interfaces = all" >&2
		ifaces=all
	fi
	# master binds with SO_REUSEPORT: a second instance on a taken port
	# starts fine and the kernel then spreads connections over both
	if ss -Hltn "( sport = :$port )" 2>/dev/null | awk '{print $4}' |
		grep -qxFe "$addr:$port" -e "[$addr]:$port" -e "0.0.0.0:$port" -e "*:$port" -e "[::]:$port"; then
		die "start: something already listens on $addr:$port"
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	[ -z "$(master_pid "$dir")" ] || die "$dir: an instance is already running"
	local uid gid
	uid=$(id -u nobody) gid=$(getent group nogroup | cut -d: -f3)
	mkdir -p "$dir/etc" "$dir/spool" "$dir/mail"
	chmod 0755 "$dir" "$dir/etc" "$dir/spool"
	chown "$uid:$gid" "$dir/mail"
	chmod 0755 "$dir/mail"
	[ "$mode" = relay ] || runuser -u nobody -- test -w "$dir/mail" ||
		die "start: nobody cannot write $dir/mail (a parent of $dir not searchable?)"
	: >"$dir/maillog"
	chmod 0644 "$dir/maillog"

	{
		cat <<-EOF
		# written by tests/lab/postfix-inst.sh ($mode mode) - throw-away instance
		compatibility_level = 3.6
		config_directory = $dir/etc
		queue_directory = $dir/spool
		data_directory = $dir/data
		maillog_file = $dir/maillog
		maillog_file_prefixes = $dir
		mail_owner = postfix
		setgid_group = postdrop
		myhostname = $hostname
		mydomain = $hostname
		myorigin = \$myhostname
		mydestination =
		inet_protocols = $([ $family = 6 ] && echo "ipv4, ipv6" || echo ipv4)
		inet_interfaces = $ifaces
		disable_dns_lookups = yes
		smtp_dns_support_level = disabled
		smtp_host_lookup = native
		smtpd_peername_lookup = no
		alias_maps =
		alias_database =
		local_transport = error:local delivery is disabled
		local_recipient_maps =
		biff = no
		local_header_rewrite_clients =
		smtpd_forbid_bare_newline = no
		message_size_limit = 104857600
		mailbox_size_limit = 0
		virtual_mailbox_limit = 0
		smtpd_tls_security_level = none
		smtp_tls_security_level = none
		default_process_limit = $procs
		EOF
		if [ "$mode" = sink ]; then
			cat <<-EOF
			mynetworks = 127.0.0.0/8
			relay_domains =
			virtual_mailbox_base = $dir/mail
			virtual_mailbox_maps = static:catchall/
			virtual_uid_maps = static:$uid
			virtual_gid_maps = static:$gid
			default_transport = error:this sink does not relay
			relay_transport = error:this sink does not relay
			smtpd_client_connection_count_limit = 0
			smtpd_client_connection_rate_limit = 0
			EOF
			# smtpd refuses a bare "permit"; reject_unauth_destination passes
			# every virtual_mailbox_domains domain, i.e. all with static:all
			echo "smtpd_relay_restrictions = reject_unauth_destination"
			if [ -n "$domains" ]; then
				echo "virtual_mailbox_domains = ${domains//,/, }"
			else
				echo "virtual_mailbox_domains = static:all"
			fi
		else
			cat <<-EOF
			mynetworks = ${mynetworks//,/, }
			relay_domains =
			relayhost = $relayhost
			default_transport = smtp
			smtpd_relay_restrictions = permit_mynetworks, reject
			smtp_connection_cache_on_demand = yes
			EOF
		fi
	} >"$dir/etc/main.cf"
	local kv
	for kv in ${extra[@]+"${extra[@]}"}; do
		[[ $kv == ?*=* ]] || die "start: --set NAME=VALUE, not $kv"
		postconf -c "$dir/etc" -e "$kv"
	done

	cat >"$dir/etc/master.cf" <<-EOF
	# written by tests/lab/postfix-inst.sh - chroot off everywhere
	# service type  private unpriv  chroot  wakeup  maxproc command
	$maddr:$port inet n     -       n       -       -       smtpd
	pickup    unix  n       -       n       60      1       pickup
	cleanup   unix  n       -       n       -       0       cleanup
	qmgr      unix  n       -       n       300     1       qmgr
	rewrite   unix  -       -       n       -       -       trivial-rewrite
	bounce    unix  -       -       n       -       0       bounce
	defer     unix  -       -       n       -       0       bounce
	trace     unix  -       -       n       -       0       bounce
	verify    unix  -       -       n       -       1       verify
	flush     unix  n       -       n       1000?   0       flush
	tlsmgr    unix  -       -       n       1000?   1       tlsmgr
	proxymap  unix  -       -       n       -       -       proxymap
	proxywrite unix -       -       n       -       1       proxymap
	smtp      unix  -       -       n       -       -       smtp
	relay     unix  -       -       n       -       -       smtp
	showq     unix  n       -       n       -       -       showq
	error     unix  -       -       n       -       -       error
	retry     unix  -       -       n       -       -       error
	discard   unix  -       -       n       -       -       discard
	virtual   unix  -       n       n       -       -       virtual
	anvil     unix  -       -       n       -       1       anvil
	scache    unix  -       -       n       -       1       scache
	postlog   unix-dgram n  -       n       -       1       postlogd
	EOF

	# Queue and data directories with the owners and modes `postfix check`
	# wants (post-install create-missing touches only DIR's 'c' entries of
	# postfix-files; set-permissions would also chmod the shared binaries).
	postfix -c "$dir/etc" post-install create-missing >/dev/null 2>&1 || fail "$dir" "post-install create-missing failed"
	postfix -c "$dir/etc" check >/dev/null 2>&1 || fail "$dir" "postfix check failed"
	touch "$dir/spool/quick-start" # `start` would run the same checks again
	postfix -c "$dir/etc" start >/dev/null 2>&1 || fail "$dir" "postfix start failed"
	# master is up once `postfix start` returns; a misconfigured smtpd only
	# dies when a client connects (and clients then hang), so read a banner.
	[ -n "$(master_pid "$dir")" ] || fail "$dir" "no master after postfix start"
	# shellcheck disable=SC2016 # $1 $2 are the inner shell's
	timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/$2"; read -r l <&3; echo QUIT >&3; [[ $l == 220* ]]' \
		_ "$addr" "$port" 2>/dev/null || fail "$dir" "no 220 banner on $addr:$port"
}

cmd_stop() {
	local dir pid _
	dir=$(pfdir "${1:-}")
	pid=$(master_pid "$dir")
	[ -n "$pid" ] || return 0
	postfix -c "$dir/etc" stop >/dev/null 2>&1 || true # waits 5 s, then kill -9 -pgrp
	for _ in $(seq 100); do
		alive "$pid" || return 0
		sleep 0.1
	done
	kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
	sleep 0.2
	! alive "$pid" || die "$dir: master $pid survived kill -9"
}

cmd_wait() {
	local dir n secs t0 c
	dir=$(pfdir "${1:-}"); n=${2:?wait DIR N [SECONDS]}; secs=${3:-60}
	t0=$SECONDS
	while :; do
		c=$(count "$dir")
		if [ "$c" -ge "$n" ]; then echo "$c"; return 0; fi
		if [ $((SECONDS - t0)) -ge "$secs" ]; then echo "$c"; return 1; fi
		sleep 0.1
	done
}

cmd_queue() {
	local dir
	dir=$(pfdir "${1:-}")
	postqueue -c "$dir/etc" -p || true
	echo "queue files: $(find "$dir/spool/maildrop" "$dir/spool/incoming" "$dir/spool/active" \
		"$dir/spool/deferred" "$dir/spool/hold" -type f 2>/dev/null | wc -l)"
}

cmd_extract() {
	local dir
	dir=$(pfdir "${1:-}")
	python3 - "$dir/mail" "${2:-}" <<-'EOF'
	import os, re, sys
	base, out = sys.argv[1], sys.argv[2]
	files = []
	for root, _, names in os.walk(base):
	    if os.path.basename(root) == "new":
	        files += [os.path.join(root, n) for n in names]
	files.sort(key=lambda p: (os.stat(p).st_mtime_ns, os.path.basename(p)))
	def normalise(raw):
	    lines = raw.split(b"\n")
	    if lines and lines[-1] == b"":
	        lines.pop()
	    # header fields at the top that delivery added: (name, continuation lines)
	    i = 0
	    while i < len(lines):
	        m = re.match(rb"(Return-Path|X-Original-To|Delivered-To|Received):", lines[i], re.I)
	        if not m:
	            break
	        j = i + 1
	        while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
	            j += 1
	        field = b"\n".join(lines[i:j])
	        if m.group(1).lower() == b"received" and b"(Postfix) with " not in field:
	            break
	        i = j
	    return b"".join(l + b"\r\n" for l in lines[i:])
	if out:
	    os.makedirs(out, exist_ok=True)
	for k, p in enumerate(files, 1):
	    data = normalise(open(p, "rb").read())
	    if out:
	        with open(os.path.join(out, "%04d.eml" % k), "wb") as f:
	            f.write(data)
	    else:
	        sys.stdout.buffer.write(b"==> %s %d <==\n" % (os.path.basename(p).encode(), len(data)))
	        sys.stdout.buffer.write(data)
	EOF
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
wait) shift; cmd_wait "$@" ;;
count) shift; count "$(pfdir "${1:-}")" ;;
queue) shift; cmd_queue "$@" ;;
extract) shift; cmd_extract "$@" ;;
*) usage ;;
esac
