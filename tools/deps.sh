# tools/deps.sh - sourced by tools/demo.sh, tests/run.sh and .ci/run:
# installs the Debian 12 packages Postern needs to build, test and run the
# lab, and (re)configures the build directories. Installs only what is
# missing, so a second run costs nothing.

PG_BUILD_PKGS="gcc meson ninja-build pkg-config libdpdk-dev libssl-dev libjemalloc-dev
  liburing-dev libcmocka-dev zlib1g-dev"
# postfix: a real next hop and reference relay in the lab, and its smtp-source
# and smtp-sink; installed unconfigured (no /etc/postfix/main.cf, not started):
# the tests run throw-away instances (tests/lab/postfix-inst.sh).
# testssl.sh: audits the STARTTLS listener (protocols, ciphers, known attacks).
PG_LAB_PKGS="iproute2 ethtool iputils-ping iputils-arping python3 procps openssl nftables swaks
  postfix testssl.sh"

pg_install_deps() {
	local missing=() p
	for p in $PG_BUILD_PKGS $PG_LAB_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
		return 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
