# tools/deps.sh - sourced by tools/demo.sh, tests/run.sh, tools/bench/run.sh
# and .ci/run: installs the Debian 12 packages Postern needs to build, test,
# benchmark and run the lab, checks that what they provide actually works
# (capabilities, not package names), and (re)configures the build
# directories. Installs only what is missing, so a second run costs nothing.

PG_BUILD_PKGS="gcc meson ninja-build pkg-config libdpdk-dev libssl-dev libjemalloc-dev
  liburing-dev libcmocka-dev zlib1g-dev"
# postfix: a real next hop and reference relay in the lab, and its smtp-source
# and smtp-sink; installed unconfigured (no /etc/postfix/main.cf, not started):
# the tests run throw-away instances (tests/lab/postfix-inst.sh).
# testssl.sh: audits the STARTTLS listener (protocols, ciphers, known attacks).
# swaks: its TLS needs Net::SSLeay and its IPv6 IO::Socket::INET6, both only
# "Recommends" of the swaks package, which --no-install-recommends skips.
# util-linux: taskset (benchmarks pin processes), runuser, flock.
PG_LAB_PKGS="iproute2 ethtool iputils-ping iputils-arping python3 procps openssl nftables swaks
  libnet-ssleay-perl libio-socket-inet6-perl postfix testssl.sh bsdextrautils util-linux"

pg_install_deps() {
	local missing=() p
	for p in $PG_BUILD_PKGS $PG_LAB_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		if [ "$(id -u)" != 0 ]; then
			echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
			return 1
		fi
		echo "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ echo "apt-get install failed for: ${missing[*]}" >&2; return 1; }
	fi
	pg_check_caps
}

# pg_cap_fail WHAT PACKAGE: one line naming what does not work and the
# package that provides it.
pg_cap_fail() {
	echo "capability check failed: $1 (Debian package $2)" >&2
	PG_CAPS_OK=0
}

# pg_check_caps: what the demo, the tests and the benchmarks use, tried
# rather than looked up. Returns 1 after naming every missing capability.
pg_check_caps() {
	local pmddir pmd out
	PG_CAPS_OK=1
	# (outputs are captured whole: under pipefail, `cmd | grep -q` fails
	# when grep stops reading early and cmd dies of SIGPIPE)
	out=$(swaks --support 2>&1)
	[[ $out == *"TLS supported"* ]] ||
		pg_cap_fail "swaks cannot do STARTTLS ('swaks --support': TLS not available)" libnet-ssleay-perl
	[[ $out == *"IPv6 supported"* ]] ||
		pg_cap_fail "swaks cannot use IPv6 ('swaks --support': IPv6 not available)" libio-socket-inet6-perl
	[ -x /usr/lib/postfix/sbin/tlsmgr ] && [ -x /usr/lib/postfix/sbin/master ] ||
		pg_cap_fail "postfix has no master/tlsmgr (/usr/lib/postfix/sbin)" postfix
	command -v smtp-source >/dev/null && command -v smtp-sink >/dev/null ||
		pg_cap_fail "smtp-source/smtp-sink missing" postfix
	postconf -d mail_version >/dev/null 2>&1 || pg_cap_fail "postconf does not run" postfix
	out=$(testssl --version 2>&1)
	[[ $out == *testssl* ]] || pg_cap_fail "testssl does not run" testssl.sh
	out=$(openssl s_client -help 2>&1)
	[[ $out == *-starttls* ]] || pg_cap_fail "openssl s_client without -starttls" openssl
	command -v hexdump >/dev/null || pg_cap_fail "hexdump (testssl.sh needs it) missing" bsdextrautils
	command -v taskset >/dev/null && command -v runuser >/dev/null && command -v flock >/dev/null ||
		pg_cap_fail "taskset/runuser/flock missing" util-linux
	command -v arping >/dev/null || pg_cap_fail "arping missing" iputils-arping
	command -v ping >/dev/null || pg_cap_fail "ping missing" iputils-ping
	command -v ethtool >/dev/null || pg_cap_fail "ethtool missing" ethtool
	command -v nft >/dev/null || pg_cap_fail "nft missing" nftables
	python3 -c 'import smtplib, ssl, json, hashlib; ssl.create_default_context()' 2>/dev/null ||
		pg_cap_fail "python3 with smtplib and ssl does not run" python3
	# The DPDK drivers the lab, the tests and the benchmarks use: loaded,
	# not only present (a missing dependency shows here, not in a test).
	pmddir=$(ls -d "$(pkg-config --variable=libdir libdpdk 2>/dev/null)"/dpdk/pmds-* 2>/dev/null | head -n 1)
	for pmd in net_af_packet net_memif net_tap net_ring mempool_ring; do
		python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$pmddir/librte_$pmd.so" 2>/dev/null ||
			pg_cap_fail "DPDK driver $pmd does not load from ${pmddir:-the PMD directory}" \
				"librte-$(echo "$pmd" | tr _ -)23, from libdpdk-dev"
	done
	if [ "$(id -u)" = 0 ]; then
		if ip netns add pg-capcheck 2>/dev/null; then
			ip netns del pg-capcheck
		else
			pg_cap_fail "network namespaces do not work here (ip netns add)" iproute2
		fi
	fi
	[ "$PG_CAPS_OK" = 1 ]
}

# pg_build DIR [meson options...]: configure (or re-apply the options to an
# existing directory, so -Dwerror=true really holds), then build.
pg_build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || return 1
	elif [ $# -gt 0 ]; then
		meson configure "$dir" "$@" >/dev/null || return 1
	fi
	ninja -C "$dir" >/dev/null || { ninja -C "$dir"; return 1; }
}
