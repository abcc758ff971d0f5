/*
 * test_conf.c - postern.conf parsing: a table of good files with what they
 * must produce (defaults, units, continuation lines, route order) and a
 * table of bad files with the exact "FILE:LINE: message" each must give.
 * Every case is written to a fresh temporary directory and read back
 * through conf_load, as posternd does.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "result.h"

#define BASE "port0_device = net_af_packet0,iface=dp0\nport0_address = 198.18.0.1/24\n"

#define NS_PER_S UINT64_C(1000000000)

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

static int setup_dir(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
	char path[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, CONF_FILE_NAME);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

static void write_conf(const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, CONF_FILE_NAME);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* ---- bad files: exact messages; %s stands for DIR/postern.conf ---- */

static const struct bad_case {
	const char *name;
	const char *text;
	const char *want; /* printf format, one %s: the file path */
} bad_cases[] = {
    {"unknown key", BASE "workerz = 2\n", "%s:3: unknown key \"workerz\""},
    {"prefix length", "port0_device = net_tap0\nport0_address = 198.18.0.1/33\n",
     "%s:2: bad value for port0_address: \"198.18.0.1/33\": prefix length must be 0..32"},
    {"prefix missing", "port0_device = net_tap0\nport0_address = 198.18.0.1\n",
     "%s:2: bad value for port0_address: \"198.18.0.1\": expected IPv4/prefix, e.g."
     " 198.18.0.1/24"},
    {"not an address", "port0_device = net_tap0\nport0_address = 198.18.0.256/24\n",
     "%s:2: bad value for port0_address: \"198.18.0.256/24\": \"198.18.0.256\" is not an"
     " IPv4 address"},
    {"host part zero", "port0_device = net_tap0\nport0_address = 198.18.0.0/24\n",
     "%s:2: bad value for port0_address: \"198.18.0.0/24\": host part is zero (that is"
     " the subnet address)"},
    {"host part broadcast", "port0_device = net_tap0\nport0_address = 198.18.0.255/24\n",
     "%s:2: bad value for port0_address: \"198.18.0.255/24\": host part is all ones (that"
     " is the broadcast address)"},
    {"loopback port", "port0_device = net_tap0\nport0_address = 127.0.0.1/8\n",
     "%s:2: bad value for port0_address: \"127.0.0.1/8\": not a unicast address"
     " (127.0.0.0/8 is loopback)"},
    {"duplicate", "workers = 2\n" BASE "workers = 3\n",
     "%s:4: duplicate key \"workers\" (first set at line 1)"},
    {"duplicate port key", BASE "# again\nport0_address = 198.18.0.2/24\n",
     "%s:4: duplicate key \"port0_address\" (first set at line 2)"},
    {"workers zero", BASE "workers = 0\n",
     "%s:3: bad value for workers: \"0\": must be an integer 1..64"},
    {"workers too many", BASE "workers = 65\n",
     "%s:3: bad value for workers: \"65\": must be an integer 1..64"},
    {"workers trailing comment", BASE "workers = 4 # four\n",
     "%s:3: bad value for workers: \"4 # four\": must be an integer 1..64"},
    {"workers negative", BASE "workers = -1\n",
     "%s:3: bad value for workers: \"-1\": must be an integer 1..64"},
    {"workers overflow", BASE "workers = 99999999999999999999999\n",
     "%s:3: bad value for workers: \"99999999999999999999999\": must be an integer 1..64"},
    {"missing equals", BASE "workers 4\n", "%s:3: missing \"=\" in \"workers 4\""},
    {"missing key", BASE " \n= 4\n", "%s:4: missing key before \"=\""},
    {"leading continuation", "  workers = 1\n" BASE,
     "%s:1: continuation line (starts with whitespace) without a preceding \"key ="
     " value\""},
    {"continued value, error at first line", BASE "workers =\n\t99\n",
     "%s:3: bad value for workers: \"99\": must be an integer 1..64"},
    {"continuation joins with a space", BASE "arp_max_retries = 2\n 0\n",
     "%s:3: bad value for arp_max_retries: \"2 0\": must be an integer 1..20"},
    {"mtu low", BASE "port0_mtu = 575\n",
     "%s:3: bad value for port0_mtu: \"575\": must be an integer 576..9000"},
    {"mtu high", BASE "port0_mtu = 9001\n",
     "%s:3: bad value for port0_mtu: \"9001\": must be an integer 576..9000"},
    {"port8", BASE "port8_device = net_tap8\n",
     "%s:3: unknown key \"port8_device\": ports are port0..port7"},
    {"port key of no kind", BASE "port0_speed = 10G\n", "%s:3: unknown key \"port0_speed\""},
    {"device garbage", "port0_device = eth0\nport0_address = 198.18.0.1/24\n",
     "%s:1: bad value for port0_device: \"eth0\": expected a PCI address (0000:03:00.0) or"
     " a DPDK vdev spec (net_af_packet0,iface=dp0)"},
    {"device bad kvarg", "port0_device = net_af_packet0,iface\nport0_address = 198.18.0.1/24\n",
     "%s:1: bad value for port0_device: \"net_af_packet0,iface\": expected a PCI address"
     " (0000:03:00.0) or a DPDK vdev spec (net_af_packet0,iface=dp0)"},
    {"device bad pci function", "port0_device = 0000:03:00.8\nport0_address = 198.18.0.1/24\n",
     "%s:1: bad value for port0_device: \"0000:03:00.8\": expected a PCI address"
     " (0000:03:00.0) or a DPDK vdev spec (net_af_packet0,iface=dp0)"},
    {"no ports", "workers = 2\n",
     "%s: no port configured: port0_device and port0_address are required"},
    {"empty file", "", "%s: no port configured: port0_device and port0_address are required"},
    {"address missing", "port0_device = net_tap0\n",
     "%s:1: port0_device is set but port0_address is missing"},
    {"address without device", BASE "port1_address = 198.19.0.1/24\n",
     "%s:3: port1_address is set but port1_device is not"},
    {"mtu without device", BASE "port1_mtu = 9000\n",
     "%s:3: port1_mtu is set but port1_device is not"},
    {"ports not contiguous", BASE "port2_device = net_tap2\nport2_address = 198.20.0.1/24\n",
     "%s:3: port2_device is set but port1_device is not: ports must be numbered"
     " contiguously from 0"},
    {"same device twice",
     BASE "port1_device = net_af_packet0,iface=dp1\n"
          "port1_address = 198.19.0.1/24\n",
     "%s:3: port1_device names the same device as port0_device (line 1)"},
    {"overlapping subnets", BASE "port1_device = net_tap1\nport1_address = 198.18.0.77/16\n",
     "%s:4: port1_address overlaps the subnet of port0_address 198.18.0.1/24 (line 2)"},
    {"gateway outside", BASE "default_gateway = 198.19.0.2\n",
     "%s:3: bad value for default_gateway: \"198.19.0.2\": gateway 198.19.0.2 is not in a"
     " connected subnet"},
    {"gateway is us", BASE "default_gateway = 198.18.0.1\n",
     "%s:3: bad value for default_gateway: \"198.18.0.1\": gateway 198.18.0.1 is port0's"
     " own address"},
    {"gateway is broadcast", BASE "default_gateway = 198.18.0.255\n",
     "%s:3: bad value for default_gateway: \"198.18.0.255\": gateway 198.18.0.255 is the"
     " subnet or broadcast address of port0"},
    {"gateway not an address", BASE "default_gateway = gw.example\n",
     "%s:3: bad value for default_gateway: \"gw.example\": not an IPv4 address"},
    {"gateway multicast", BASE "default_gateway = 224.0.0.1\n",
     "%s:3: bad value for default_gateway: \"224.0.0.1\": not a unicast address (multicast"
     " or reserved)"},
    {"route host bits", BASE "static_routes = 10.1.0.0/8 via 198.18.0.254\n",
     "%s:3: bad value for static_routes: \"10.1.0.0/8 via 198.18.0.254\": host bits of"
     " 10.1.0.0/8 are not zero (did you mean 10.0.0.0/8?)"},
    {"route gateway outside",
     BASE "static_routes = 10.0.0.0/8 via 198.18.0.254,\n"
          "  172.16.0.0/12 via 198.19.0.9\n",
     "%s:3: bad value for static_routes: \"172.16.0.0/12 via 198.19.0.9\": gateway"
     " 198.19.0.9 is not in a connected subnet"},
    {"route syntax", BASE "static_routes = 10.0.0.0/8 198.18.0.254\n",
     "%s:3: bad value for static_routes: \"10.0.0.0/8 198.18.0.254\": expected PREFIX/LEN"
     " via GATEWAY"},
    {"route trailing words", BASE "static_routes = 10.0.0.0/8 via 198.18.0.254 metric 5\n",
     "%s:3: bad value for static_routes: \"10.0.0.0/8 via 198.18.0.254 metric 5\": expected"
     " PREFIX/LEN via GATEWAY"},
    {"route empty element", BASE "static_routes = 10.0.0.0/8 via 198.18.0.254,,\n",
     "%s:3: bad value for static_routes: empty route in the list"},
    {"route bad prefix length", BASE "static_routes = 10.0.0.0/40 via 198.18.0.254\n",
     "%s:3: bad value for static_routes: \"10.0.0.0/40 via 198.18.0.254\": prefix length"
     " must be 0..32"},
    {"route duplicates connected", BASE "static_routes = 198.18.0.0/24 via 198.18.0.254\n",
     "%s:3: bad value for static_routes: \"198.18.0.0/24 via 198.18.0.254\": duplicates"
     " the connected subnet of a port"},
    {"route duplicated",
     BASE "static_routes = 10.0.0.0/8 via 198.18.0.254,"
          " 10.0.0.0/8 via 198.18.0.253\n",
     "%s:3: bad value for static_routes: \"10.0.0.0/8 via 198.18.0.253\": duplicates an"
     " earlier route"},
    {"two default routes",
     BASE "default_gateway = 198.18.0.254\n"
          "static_routes = 0.0.0.0/0 via 198.18.0.253\n",
     "%s:4: bad value for static_routes: \"0.0.0.0/0 via 198.18.0.253\": a default route is"
     " already set by default_gateway (line 3)"},
    {"time unit", BASE "arp_cache_timeout = 10x\n",
     "%s:3: bad value for arp_cache_timeout: \"10x\": unknown time unit \"x\" (use us, ms,"
     " s, m, h, d or w)"},
    {"time not a number", BASE "arp_cache_timeout = soon\n",
     "%s:3: bad value for arp_cache_timeout: \"soon\": expected a time: integer with unit"
     " us, ms, s, m, h, d or w (bare integer = seconds)"},
    {"time too short", BASE "arp_retry_interval = 5ms\n",
     "%s:3: bad value for arp_retry_interval: \"5ms\": must be between 10ms and 1m"},
    {"time too long", BASE "idle_sleep = 1s\n",
     "%s:3: bad value for idle_sleep: \"1s\": must be between 0 and 100ms"},
    {"time overflow", BASE "arp_cache_timeout = 99999999999999999h\n",
     "%s:3: bad value for arp_cache_timeout: \"99999999999999999h\": must be between 1s and"
     " 1d"},
    {"time in weeks", BASE "arp_cache_timeout = 1w\n",
     "%s:3: bad value for arp_cache_timeout: \"1w\": must be between 1s and 1d"},
    {"size small", BASE "snapshot_max_size = 1k\n",
     "%s:3: bad value for snapshot_max_size: \"1k\": must be between 64k and 1G"},
    {"size suffix", BASE "snapshot_max_size = 2T\n",
     "%s:3: bad value for snapshot_max_size: \"2T\": unknown size suffix \"T\" (use k, M or"
     " G)"},
    {"bool", BASE "gratuitous_arp = maybe\n",
     "%s:3: bad value for gratuitous_arp: \"maybe\": expected yes or no"},
    {"retries", BASE "arp_max_retries = 21\n",
     "%s:3: bad value for arp_max_retries: \"21\": must be an integer 1..20"},
    {"pending", BASE "arp_pending_max = 65537\n",
     "%s:3: bad value for arp_pending_max: \"65537\": must be an integer 1..65536"},
    {"idle polls", BASE "idle_polls = 1000001\n",
     "%s:3: bad value for idle_polls: \"1000001\": must be an integer 0..1000000"},
    {"shm name", BASE "shm_name = a/b\n",
     "%s:3: bad value for shm_name: \"a/b\": expected 1..60 characters from [A-Za-z0-9_.-]"},
    {"shm name empty", BASE "shm_name =\n",
     "%s:3: bad value for shm_name: \"\": expected 1..60 characters from [A-Za-z0-9_.-]"},
    {"socket relative", BASE "control_socket = run/p.sock\n",
     "%s:3: bad value for control_socket: \"run/p.sock\": must be an absolute path"},
    {"mynetworks host bits", BASE "mynetworks = 198.18.0.0/24, 10.1.0.0/8\n",
     "%s:3: bad value for mynetworks: \"10.1.0.0/8\": host bits are not zero (did you mean"
     " 10.0.0.0/8?)"},
    {"mynetworks open relay", BASE "mynetworks = 0.0.0.0/0\n",
     "%s:3: bad value for mynetworks: \"0.0.0.0/0\": a /0 network would make Postern an open"
     " relay (shortest allowed: /8)"},
    {"mynetworks /7", BASE "mynetworks = 10.0.0.0/7\n",
     "%s:3: bad value for mynetworks: \"10.0.0.0/7\": a /7 network would make Postern an open"
     " relay (shortest allowed: /8)"},
    {"mynetworks /4", BASE "mynetworks = 192.0.0.0/4\n",
     "%s:3: bad value for mynetworks: \"192.0.0.0/4\": a /4 network would make Postern an"
     " open relay (shortest allowed: /8)"},
    {"mynetworks ipv6 host bits", BASE "mynetworks = 127.0.0.0/8 [2001:db8::1]/32\n",
     "%s:3: bad value for mynetworks: \"[2001:db8::1]/32\": host bits are not zero (did you"
     " mean [2001:db8::]/32?)"},
    {"mynetworks ipv6 open relay", BASE "mynetworks = [2000::]/3\n",
     "%s:3: bad value for mynetworks: \"[2000::]/3\": a /3 network would make Postern an open"
     " relay (shortest allowed for IPv6: /16)"},
    {"mynetworks ipv6 bracket", BASE "mynetworks = [2001:db8::/32\n",
     "%s:3: bad value for mynetworks: \"[2001:db8::/32\": missing ']'"},
    {"mynetworks ipv6 twice", BASE "mynetworks = [2001:db8::]/32 2001:db8::/32\n",
     "%s:3: bad value for mynetworks: \"2001:db8::/32\": listed twice"},
    {"mynetworks ipv6 multicast", BASE "mynetworks = [ff02::]/16\n",
     "%s:3: bad value for mynetworks: \"[ff02::]/16\": a multicast prefix"},
    {"mynetworks table", BASE "mynetworks = hash:/etc/postfix/network_table\n",
     "%s:3: bad value for mynetworks: \"hash:/etc/postfix/network_table\": lookup tables are"
     " not supported in mynetworks"},
    {"mynetworks garbage", BASE "mynetworks = localnet\n",
     "%s:3: bad value for mynetworks: \"localnet\": expected an IPv4 network, e.g."
     " 198.18.0.0/24"},
    {"mynetworks prefix", BASE "mynetworks = 10.0.0.0/33\n",
     "%s:3: bad value for mynetworks: \"10.0.0.0/33\": prefix length must be 0..32"},
    {"mynetworks twice", BASE "mynetworks = 10.0.0.0/8,\n 10.0.0.0/8\n",
     "%s:3: bad value for mynetworks: \"10.0.0.0/8\": listed twice"},
    {"relay_domains star", BASE "relay_domains = *\n",
     "%s:3: bad value for relay_domains: \"*\" would make Postern an open relay"},
    {"relay_domains table", BASE "relay_domains = $mydestination\n",
     "%s:3: bad value for relay_domains: \"$mydestination\": lookup tables, files and"
     " $parameters are not supported in relay_domains"},
    {"relay_domains label", BASE "relay_domains = example.com, ex..org\n",
     "%s:3: bad value for relay_domains: \"ex..org\": empty label"},
    {"relay_domains utf8",
     BASE "relay_domains = b\xc3\xbc"
          "cher.de\n",
     "%s:3: bad value for relay_domains: \"b\xc3\xbc"
     "cher.de\": not ASCII: write an"
     " internationalized domain in its A-label (xn--) form (RFC 5890); UTF-8 names are not"
     " supported yet"},
    {"relay_domains twice", BASE "relay_domains = Example.com example.COM\n",
     "%s:3: bad value for relay_domains: \"example.COM\": listed twice"},
    {"tls_default_level dane", BASE "tls_default_level = dane\n",
     "%s:3: bad value for tls_default_level: \"dane\": dane requires DNSSEC lookups, not"
     " supported yet"},
    {"tls_default_level fingerprint", BASE "tls_default_level = fingerprint\n",
     "%s:3: bad value for tls_default_level: \"fingerprint\": fingerprint needs the"
     " fingerprints of one destination: set it per destination in tls_policy"},
    {"tls_default_level unknown", BASE "tls_default_level = strict\n",
     "%s:3: bad value for tls_default_level: \"strict\": unknown security level \"strict\""
     " (none, may, encrypt, fingerprint, verify, secure)"},
    {"socket is dir", BASE "control_socket = /run/postern/\n",
     "%s:3: bad value for control_socket: \"/run/postern/\": names a directory, not a"
     " socket"},
    {"log_file relative", BASE "log_file = postern.log\n",
     "%s:3: bad value for log_file: \"postern.log\": must be an absolute path"},
    {"log_file is dir", BASE "log_file = /var/log/postern/\n",
     "%s:3: bad value for log_file: \"/var/log/postern/\": names a directory, not a file"},
    {"log_file space", BASE "log_file = /var/log/my postern.log\n",
     "%s:3: bad value for log_file: \"/var/log/my postern.log\": contains whitespace or"
     " control characters"},
    {"metrics no port", BASE "metrics_listen = 127.0.0.1\n",
     "%s:3: bad value for metrics_listen: \"127.0.0.1\": expected ADDRESS:PORT, e.g."
     " 127.0.0.1:9465"},
    {"metrics port only", BASE "metrics_listen = :9465\n",
     "%s:3: bad value for metrics_listen: \":9465\": expected ADDRESS:PORT, e.g."
     " 127.0.0.1:9465"},
    {"metrics port 0", BASE "metrics_listen = 127.0.0.1:0\n",
     "%s:3: bad value for metrics_listen: \"127.0.0.1:0\": port must be 1..65535"},
    {"metrics port big", BASE "metrics_listen = 127.0.0.1:65536\n",
     "%s:3: bad value for metrics_listen: \"127.0.0.1:65536\": port must be 1..65535"},
    {"metrics port name", BASE "metrics_listen = 127.0.0.1:http\n",
     "%s:3: bad value for metrics_listen: \"127.0.0.1:http\": port must be 1..65535"},
    {"metrics host name", BASE "metrics_listen = localhost:9465\n",
     "%s:3: bad value for metrics_listen: \"localhost:9465\": \"localhost\" is not an IPv4"
     " address or a bracketed IPv6 address ([::1])"},
    {"metrics bare ipv6", BASE "metrics_listen = ::1:9465\n",
     "%s:3: bad value for metrics_listen: \"::1:9465\": \"::1\" is not an IPv4 address or a"
     " bracketed IPv6 address ([::1])"},
    {"control_group unknown", BASE "control_group = pg-no-such-group-4f2a\n",
     "%s:3: bad value for control_group: \"pg-no-such-group-4f2a\": no such group"},
    {"control_group syntax", BASE "control_group = mail ops\n",
     "%s:3: bad value for control_group: \"mail ops\": expected a group name: 1..32"
     " characters from [A-Za-z0-9_.-]"},
    {"control_group dash", BASE "control_group = -root\n",
     "%s:3: bad value for control_group: \"-root\": expected a group name: 1..32"
     " characters from [A-Za-z0-9_.-]"},
    {"diag_services bad", BASE "diag_services = maybe\n",
     "%s:3: bad value for diag_services: \"maybe\": expected yes or no"},
    {"diag_client one word", BASE "diag_client = 198.19.0.2:5001\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:5001\": expected HOST:PORT MODE BYTES "
     "[COUNT], e.g. 198.19.0.2:5001 echo 104857600"},
    {"diag_client five words", BASE "diag_client = 198.19.0.2:5001 echo 10 1 2\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:5001 echo 10 1 2\": expected HOST:PORT "
     "MODE BYTES [COUNT], e.g. 198.19.0.2:5001 echo 104857600"},
    {"diag_client no port", BASE "diag_client = 198.19.0.2 echo 10\n",
     "%s:3: bad value for diag_client: \"198.19.0.2 echo 10\": \"198.19.0.2\": expected "
     "IPv4:PORT"},
    {"diag_client name", BASE "diag_client = mx.example:25 echo 10\n",
     "%s:3: bad value for diag_client: \"mx.example:25 echo 10\": \"mx.example\" is not an "
     "IPv4 address"},
    {"diag_client multicast", BASE "diag_client = 224.0.0.1:7 echo 10\n",
     "%s:3: bad value for diag_client: \"224.0.0.1:7 echo 10\": 224.0.0.1: not a unicast "
     "address (multicast or reserved)"},
    {"diag_client port 0", BASE "diag_client = 198.19.0.2:0 echo 10\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:0 echo 10\": port \"0\" must be 1..65535"},
    {"diag_client port big", BASE "diag_client = 198.19.0.2:65536 echo 10\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:65536 echo 10\": port \"65536\" must be "
     "1..65535"},
    {"diag_client mode", BASE "diag_client = 198.19.0.2:7 chargen 10\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:7 chargen 10\": unknown mode \"chargen\" "
     "(echo, discard or source)"},
    {"diag_client bytes 0", BASE "diag_client = 198.19.0.2:7 echo 0\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:7 echo 0\": bytes \"0\" must be "
     "1..1099511627776 (2^40)"},
    {"diag_client bytes big", BASE "diag_client = 198.19.0.2:7 echo 1099511627777\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:7 echo 1099511627777\": bytes "
     "\"1099511627777\" must be 1..1099511627776 (2^40)"},
    {"diag_client bytes suffix", BASE "diag_client = 198.19.0.2:7 echo 100M\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:7 echo 100M\": bytes \"100M\" must be "
     "1..1099511627776 (2^40)"},
    {"diag_client count 0", BASE "diag_client = 198.19.0.2:7 source 10 0\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:7 source 10 0\": count \"0\" must be "
     "1..100000"},
    {"diag_client count big", BASE "diag_client = 198.19.0.2:7 source 10 100001\n",
     "%s:3: bad value for diag_client: \"198.19.0.2:7 source 10 100001\": count \"100001\" "
     "must be 1..100000"},
    /* TCP */
    {"tcp cc", BASE "tcp_congestion_control = bbr\n",
     "%s:3: bad value for tcp_congestion_control: \"bbr\": expected cubic or newreno"},
    {"tcp keepalive yes", BASE "tcp_keepalive = yes\n",
     "%s:3: bad value for tcp_keepalive: \"yes\": expected no or IDLE INTERVAL COUNT, e.g. 2h"
     " 75s 9"},
    {"tcp keepalive two words", BASE "tcp_keepalive = 2h 75s\n",
     "%s:3: bad value for tcp_keepalive: \"2h 75s\": expected no or IDLE INTERVAL COUNT, e.g."
     " 2h 75s 9"},
    {"tcp keepalive four words", BASE "tcp_keepalive = 2h 75s 9 1\n",
     "%s:3: bad value for tcp_keepalive: \"2h 75s 9 1\": expected no or IDLE INTERVAL COUNT,"
     " e.g. 2h 75s 9"},
    {"tcp keepalive idle short", BASE "tcp_keepalive = 500ms 75s 9\n",
     "%s:3: bad value for tcp_keepalive: \"500ms 75s 9\": IDLE \"500ms\": must be between 1s"
     " and 1d"},
    {"tcp keepalive idle long", BASE "tcp_keepalive = 25h 75s 9\n",
     "%s:3: bad value for tcp_keepalive: \"25h 75s 9\": IDLE \"25h\": must be between 1s and"
     " 1d"},
    {"tcp keepalive idle in days", BASE "tcp_keepalive = 2d 75s 9\n",
     "%s:3: bad value for tcp_keepalive: \"2d 75s 9\": IDLE \"2d\": must be between 1s and"
     " 1d"},
    {"tcp keepalive idle unit", BASE "tcp_keepalive = 2y 75s 9\n",
     "%s:3: bad value for tcp_keepalive: \"2y 75s 9\": IDLE \"2y\": unknown time unit \"y\""
     " (use us, ms, s, m, h, d or w)"},
    {"tcp keepalive interval", BASE "tcp_keepalive = 2h 2h 9\n",
     "%s:3: bad value for tcp_keepalive: \"2h 2h 9\": INTERVAL \"2h\": must be between 1s and"
     " 1h"},
    {"tcp keepalive interval word", BASE "tcp_keepalive = 2h often 9\n",
     "%s:3: bad value for tcp_keepalive: \"2h often 9\": INTERVAL \"often\": expected a time:"
     " integer with unit us, ms, s, m, h, d or w (bare integer = seconds)"},
    {"tcp keepalive count 0", BASE "tcp_keepalive = 2h 75s 0\n",
     "%s:3: bad value for tcp_keepalive: \"2h 75s 0\": COUNT \"0\" must be 1..100"},
    {"tcp keepalive count big", BASE "tcp_keepalive = 2h 75s 101\n",
     "%s:3: bad value for tcp_keepalive: \"2h 75s 101\": COUNT \"101\" must be 1..100"},
    {"tcp max connections 0", BASE "tcp_max_connections = 0\n",
     "%s:3: bad value for tcp_max_connections: \"0\": must be an integer 1..4194304"},
    {"tcp max connections big", BASE "tcp_max_connections = 4194305\n",
     "%s:3: bad value for tcp_max_connections: \"4194305\": must be an integer 1..4194304"},
    {"tcp buffer memory small", BASE "tcp_buffer_memory_max = 512k\n",
     "%s:3: bad value for tcp_buffer_memory_max: \"512k\": must be between 1M and 256G"},
    {"tcp buffer memory suffix", BASE "tcp_buffer_memory_max = 1T\n",
     "%s:3: bad value for tcp_buffer_memory_max: \"1T\": unknown size suffix \"T\" (use k, M"
     " or G)"},
    {"tcp send buffer small", BASE "tcp_send_buffer = 1k\n",
     "%s:3: bad value for tcp_send_buffer: \"1k\": must be between 4k and 512M"},
    {"tcp receive buffer beyond window scale", BASE "tcp_receive_buffer = 1G\n",
     "%s:3: bad value for tcp_receive_buffer: \"1G\": must be between 4k and 512M"},
    {"tcp buffers over memory",
     BASE "tcp_buffer_memory_max = 1M\ntcp_send_buffer = 512k\n"
          "tcp_receive_buffer = 768k\n",
     "%s:5: tcp_send_buffer (512k) + tcp_receive_buffer (768k) exceed tcp_buffer_memory_max"
     " (1M): no connection would fit"},
    {"tcp memory under buffers",
     BASE "tcp_receive_buffer = 512M\ntcp_send_buffer = 512M\n"
          "\ntcp_buffer_memory_max = 1023M\n",
     "%s:6: tcp_send_buffer (512M) + tcp_receive_buffer (512M) exceed tcp_buffer_memory_max"
     " (1023M): no connection would fit"},
    {"tcp watermark low", BASE "tcp_backpressure_watermark = 49\n",
     "%s:3: bad value for tcp_backpressure_watermark: \"49\": must be a percentage 50..100 (90"
     " or 90%%)"},
    {"tcp watermark high", BASE "tcp_backpressure_watermark = 101%\n",
     "%s:3: bad value for tcp_backpressure_watermark: \"101%%\": must be a percentage 50..100"
     " (90 or 90%%)"},
    {"tcp watermark suffix", BASE "tcp_backpressure_watermark = 90 %\n",
     "%s:3: bad value for tcp_backpressure_watermark: \"90 %%\": must be a percentage 50..100"
     " (90 or 90%%)"},
    {"tcp syn backlog 0", BASE "tcp_syn_backlog = 0\n",
     "%s:3: bad value for tcp_syn_backlog: \"0\": must be an integer 1..1048576"},
    {"tcp syncookies", BASE "tcp_syncookies = sometimes\n",
     "%s:3: bad value for tcp_syncookies: \"sometimes\": expected yes or no"},
    {"tcp max retries low", BASE "tcp_max_retries = 2\n",
     "%s:3: bad value for tcp_max_retries: \"2\": must be an integer 3..30"},
    {"tcp max retries high", BASE "tcp_max_retries = 31\n",
     "%s:3: bad value for tcp_max_retries: \"31\": must be an integer 3..30"},
    /* the inbound SMTP service and the spool */
    {"smtp_service bad", BASE "smtp_service = on\n",
     "%s:3: bad value for smtp_service: \"on\": expected yes or no"},
    {"smtp port zero", BASE "smtp_listen_port = 0\n",
     "%s:3: bad value for smtp_listen_port: \"0\": must be an integer 1..65535"},
    {"smtp port high", BASE "smtp_listen_port = 65536\n",
     "%s:3: bad value for smtp_listen_port: \"65536\": must be an integer 1..65535"},
    {"smtp sessions zero", BASE "smtp_max_sessions = 0\n",
     "%s:3: bad value for smtp_max_sessions: \"0\": must be an integer 1..1048576"},
    {"spool relative", BASE "spool_directory = var/spool/postern\n",
     "%s:3: bad value for spool_directory: \"var/spool/postern\": must be an absolute path"},
    {"spool root", BASE "spool_directory = //\n",
     "%s:3: bad value for spool_directory: \"//\": must not be the root directory"},
    {"spool long",
     BASE "spool_directory = /"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     /* the message quotes the first 100 bytes of a value */
     "%s:3: bad value for spool_directory: \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": longer than 255 bytes"},
    {"myhostname underscore", BASE "myhostname = mx_1.example.com\n",
     "%s:3: bad value for myhostname: \"mx_1.example.com\": only letters, digits, hyphens"
     " and dots are allowed"},
    {"myhostname empty label", BASE "myhostname = mx..example.com\n",
     "%s:3: bad value for myhostname: \"mx..example.com\": empty label"},
    {"myhostname hyphen", BASE "myhostname = -mx.example.com\n",
     "%s:3: bad value for myhostname: \"-mx.example.com\": label starts with a hyphen"},
    {"myhostname empty", BASE "myhostname =\n",
     "%s:3: bad value for myhostname: \"\": must be 1..253 bytes"},
    {"message size high", BASE "message_size_limit = 65G\n",
     "%s:3: bad value for message_size_limit: \"65G\": must be between 0 and 64G"},
    {"recipient limit zero", BASE "smtpd_recipient_limit = 0\n",
     "%s:3: bad value for smtpd_recipient_limit: \"0\": must be an integer 1..100000"},
    {"hopcount limit zero", BASE "hopcount_limit = 0\n",
     "%s:3: bad value for hopcount_limit: \"0\": must be an integer 1..1000"},
    {"hopcount limit high", BASE "hopcount_limit = 1001\n",
     "%s:3: bad value for hopcount_limit: \"1001\": must be an integer 1..1000"},
    {"bare newline yes", BASE "smtpd_forbid_bare_newline = yes\n",
     "%s:3: bad value for smtpd_forbid_bare_newline: \"yes\": expected reject or"
     " normalize"},
    /* inbound TLS requirements */
    {"CAfile two files", BASE "smtp_tls_CAfile = a.pem b.pem\n",
     "%s:3: bad value for smtp_tls_CAfile: \"a.pem b.pem\": one file name without whitespace or"
     " control characters"},
    {"CAfile twice", BASE "smtp_tls_CAfile = a.pem\nsmtp_tls_CAfile = b.pem\n",
     "%s:4: duplicate key \"smtp_tls_CAfile\" (first set at line 3)"},
    {"CAfile lowercase", BASE "smtp_tls_cafile = a.pem\n", "%s:3: unknown key \"smtp_tls_cafile\""},
    {"session timeout negative", BASE "smtpd_tls_session_cache_timeout = -1\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"-1\": expected a time: integer"
     " with unit us, ms, s, m, h, d or w (bare integer = seconds)"},
    {"session timeout garbage", BASE "smtpd_tls_session_cache_timeout = forever\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"forever\": expected a time: integer"
     " with unit us, ms, s, m, h, d or w (bare integer = seconds)"},
    {"session timeout unit", BASE "smtpd_tls_session_cache_timeout = 1 hour\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"1 hour\": unknown time unit"
     " \" hour\" (use us, ms, s, m, h, d or w)"},
    {"session timeout short", BASE "smtpd_tls_session_cache_timeout = 119\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"119\": must be 0 (no session"
     " tickets) or between 2m and 7d (RFC 8446 §4.6.1: a ticket lives at most 7 days)"},
    {"session timeout long", BASE "smtpd_tls_session_cache_timeout = 604801s\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"604801s\": must be 0 (no session"
     " tickets) or between 2m and 7d (RFC 8446 §4.6.1: a ticket lives at most 7 days)"},
    {"session timeout Postfix max", BASE "smtpd_tls_session_cache_timeout = 100d\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"100d\": must be 0 (no session"
     " tickets) or between 2m and 7d (RFC 8446 §4.6.1: a ticket lives at most 7 days)"},
    {"session timeout overflow", BASE "smtpd_tls_session_cache_timeout = 30000000000000w\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"30000000000000w\": must be 0 (no"
     " session tickets) or between 2m and 7d (RFC 8446 §4.6.1: a ticket lives at most 7 days)"},
    {"session timeout ms", BASE "smtpd_tls_session_cache_timeout = 150500ms\n",
     "%s:3: bad value for smtpd_tls_session_cache_timeout: \"150500ms\": must be in whole"
     " seconds"},
    {"smtpd level secure", BASE "smtpd_tls_security_level = secure\n",
     "%s:3: bad value for smtpd_tls_security_level: \"secure\": expected none, may or encrypt"
     " (the SMTP server's levels)"},
    {"smtpd level dane", BASE "smtpd_tls_security_level = dane\n",
     "%s:3: bad value for smtpd_tls_security_level: \"dane\": expected none, may or encrypt"
     " (the SMTP server's levels)"},
    {"required networks host bits", BASE "smtpd_tls_required_networks = 198.19.0.0/24 10.0.0.1/8\n",
     "%s:3: bad value for smtpd_tls_required_networks: \"10.0.0.1/8\": host bits are not zero"
     " (did you mean 10.0.0.0/8?)"},
    {"required networks file", BASE "smtpd_tls_required_networks = /etc/postern/nets\n",
     "%s:3: bad value for smtpd_tls_required_networks: \"/etc/postern/nets\": files are not"
     " supported in smtpd_tls_required_networks"},
    {"required networks ipv6", BASE "smtpd_tls_required_networks = [2001:db8::]/129\n",
     "%s:3: bad value for smtpd_tls_required_networks: \"[2001:db8::]/129\": IPv6 prefix length"
     " must be 0..128"},
    {"required networks twice",
     BASE "smtpd_tls_required_networks = 198.19.0.0/24,\n  198.19.0.0/24\n",
     "%s:3: bad value for smtpd_tls_required_networks: \"198.19.0.0/24\": listed twice"},
    {"required networks prefix", BASE "smtpd_tls_required_networks = 198.19.0.0/33\n",
     "%s:3: bad value for smtpd_tls_required_networks: \"198.19.0.0/33\": prefix length must"
     " be 0..32"},
    {"required senders star", BASE "smtpd_tls_required_senders = partner.test *\n",
     "%s:3: bad value for smtpd_tls_required_senders: \"*\" would match every sender: to"
     " require TLS of every client, set smtpd_tls_security_level = encrypt"},
    {"required senders file", BASE "smtpd_tls_required_senders = /etc/postern/tls_partners\n",
     "%s:3: bad value for smtpd_tls_required_senders: \"/etc/postern/tls_partners\": lookup"
     " tables, files and $parameters are not supported in smtpd_tls_required_senders"},
    {"required senders table", BASE "smtpd_tls_required_senders = hash:/etc/postfix/partners\n",
     "%s:3: bad value for smtpd_tls_required_senders: \"hash:/etc/postfix/partners\": lookup"
     " tables, files and $parameters are not supported in smtpd_tls_required_senders"},
    {"required senders label", BASE "smtpd_tls_required_senders = partner..test\n",
     "%s:3: bad value for smtpd_tls_required_senders: \"partner..test\": empty label"},
    {"required senders address", BASE "smtpd_tls_required_senders = ops@partner.test\n",
     "%s:3: bad value for smtpd_tls_required_senders: \"ops@partner.test\": invalid"
     " character '@' (letters, digits, '-' and '.' only)"},
    {"required senders twice", BASE "smtpd_tls_required_senders = Partner.test partner.TEST\n",
     "%s:3: bad value for smtpd_tls_required_senders: \"partner.TEST\": listed twice"},
    {"smtpd protocols unknown", BASE "smtpd_tls_protocols = TLSv1.4\n",
     "%s:3: bad value for smtpd_tls_protocols: \"TLSv1.4\": unknown protocol \"TLSv1.4\""
     " (SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, each optionally after !, >= or <=)"},
    {"smtpd protocols empty", BASE "smtpd_tls_mandatory_protocols = >=TLSv1.3, <=TLSv1.2\n",
     "%s:3: bad value for smtpd_tls_mandatory_protocols: \">=TLSv1.3, <=TLSv1.2\": leaves no"
     " protocol version enabled"},
    {"smtpd protocols ssl only", BASE "smtpd_tls_protocols = SSLv3\n",
     "%s:3: bad value for smtpd_tls_protocols: \"SSLv3\": leaves only SSLv2 or SSLv3, which"
     " Postern never offers (RFC 7568)"},
    {"required networks at level none",
     BASE "smtpd_tls_security_level = none\ntls_certificates = /etc/postern/mx.pem\n"
          "smtpd_tls_required_networks = 198.19.0.0/24\n",
     "%s:5: smtpd_tls_required_networks requires TLS, but smtpd_tls_security_level = none"
     " (line 3) does not offer STARTTLS"},
    {"required senders at level none",
     BASE "smtpd_tls_required_senders = partner.test\nsmtpd_tls_security_level = NONE\n",
     "%s:3: smtpd_tls_required_senders requires TLS, but smtpd_tls_security_level = none"
     " (line 4) does not offer STARTTLS"},
    {"encrypt without certificates", BASE "smtpd_tls_security_level = encrypt\n",
     "%s:3: smtpd_tls_security_level = encrypt requires TLS, but tls_certificates is empty:"
     " STARTTLS cannot be offered without a certificate"},
    {"required senders without certificates", BASE "smtpd_tls_required_senders = .partner.test\n",
     "%s:3: smtpd_tls_required_senders requires TLS, but tls_certificates is empty: STARTTLS"
     " cannot be offered without a certificate"},
    {"required recipients star", BASE "smtpd_tls_required_recipients = strict.test *\n",
     "%s:3: bad value for smtpd_tls_required_recipients: \"*\" would match every recipient: to"
     " require TLS of every client, set smtpd_tls_security_level = encrypt"},
    {"required recipients table", BASE "smtpd_tls_required_recipients = hash:/etc/rcpts\n",
     "%s:3: bad value for smtpd_tls_required_recipients: \"hash:/etc/rcpts\": lookup tables,"
     " files and $parameters are not supported in smtpd_tls_required_recipients"},
    {"required recipients twice", BASE "smtpd_tls_required_recipients = a.test .b.test A.TEST\n",
     "%s:3: bad value for smtpd_tls_required_recipients: \"A.TEST\": listed twice"},
    {"required recipients address", BASE "smtpd_tls_required_recipients = ceo@strict.test\n",
     "%s:3: bad value for smtpd_tls_required_recipients: \"ceo@strict.test\": invalid character"
     " '@' (letters, digits, '-' and '.' only)"},
    {"required recipients at level none",
     BASE "tls_certificates = mx.pem\nsmtpd_tls_security_level = none\n"
          "smtpd_tls_required_recipients = strict.test\n",
     "%s:5: smtpd_tls_required_recipients requires TLS, but smtpd_tls_security_level = none"
     " (line 4) does not offer STARTTLS"},
    {"required recipients without certificates",
     BASE "smtpd_tls_required_recipients = strict.test\n",
     "%s:3: smtpd_tls_required_recipients requires TLS, but tls_certificates is empty: STARTTLS"
     " cannot be offered without a certificate"},
    /* DNS (dataplane/dns) */
    {"dns resolver name", BASE "dns_resolvers = 198.18.255.53, ns.example\n",
     "%s:3: bad value for dns_resolvers: \"198.18.255.53, ns.example\": \"ns.example\" is not a"
     " unicast IPv4 address"},
    {"dns resolver multicast", BASE "dns_resolvers = 224.0.0.1\n",
     "%s:3: bad value for dns_resolvers: \"224.0.0.1\": \"224.0.0.1\" is not a unicast IPv4"
     " address"},
    {"dns too many resolvers",
     BASE "dns_resolvers = 1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5"
          " 1.1.1.6 1.1.1.7 1.1.1.8 1.1.1.9\n",
     "%s:3: bad value for dns_resolvers: \"1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 1.1.1.6"
     " 1.1.1.7 1.1.1.8 1.1.1.9\": more than 8 resolvers"},
    {"dns anchor relative", BASE "dns_trust_anchor_file = root.key\n",
     "%s:3: bad value for dns_trust_anchor_file: \"root.key\": an absolute path (postern-dp"
     " reads it, not posternd)"},
    {"dns address limit zero", BASE "smtp_mx_address_limit = 0\n",
     "%s:3: bad value for smtp_mx_address_limit: \"0\": must be an integer 1..16"},
    /* delivery */
    {"relayhost unclosed", BASE "relayhost = [198.19.0.2\n",
     "%s:3: bad value for relayhost: \"[198.19.0.2\": next hop \"[198.19.0.2\": missing ']'"},
    {"concurrency zero", BASE "smtp_destination_concurrency_limit = 0\n",
     "%s:3: bad value for smtp_destination_concurrency_limit: \"0\": must be an integer"
     " 1..1000"},
    {"concurrency high", BASE "smtp_destination_concurrency_limit = 1001\n",
     "%s:3: bad value for smtp_destination_concurrency_limit: \"1001\": must be an integer"
     " 1..1000"},
    {"concurrency word", BASE "smtp_destination_concurrency_limit = $default\n",
     "%s:3: bad value for smtp_destination_concurrency_limit: \"$default\": must be an"
     " integer 1..1000"},
    {"connect timeout short", BASE "smtp_connect_timeout = 999ms\n",
     "%s:3: bad value for smtp_connect_timeout: \"999ms\": must be between 1s and 10m"},
    {"connect timeout zero", BASE "smtp_connect_timeout = 0\n",
     "%s:3: bad value for smtp_connect_timeout: \"0\": must be between 1s and 10m"},
    {"connect timeout long", BASE "smtp_connect_timeout = 601\n",
     "%s:3: bad value for smtp_connect_timeout: \"601\": must be between 1s and 10m"},
    {"connect timeout microseconds", BASE "smtp_connect_timeout = 1000001us\n",
     "%s:3: bad value for smtp_connect_timeout: \"1000001us\": must be in whole"
     " milliseconds"},
    {"cache time long", BASE "smtp_connection_cache_time_limit = 301s\n",
     "%s:3: bad value for smtp_connection_cache_time_limit: \"301s\": must be between 0 and"
     " 5m"},
    {"cache time unit", BASE "smtp_connection_cache_time_limit = 2 s\n",
     "%s:3: bad value for smtp_connection_cache_time_limit: \"2 s\": unknown time unit \" s\""
     " (use us, ms, s, m, h, d or w)"},
    {"lifetime bare number", BASE "maximal_queue_lifetime = 5\n",
     "%s:3: bad value for maximal_queue_lifetime: \"5\": needs a unit, e.g. 5d (Postfix reads"
     " a bare number here as days, postern.conf as seconds)"},
    {"lifetime long", BASE "maximal_queue_lifetime = 366d\n",
     "%s:3: bad value for maximal_queue_lifetime: \"366d\": must be between 0 and 365d"},
    {"lifetime weeks", BASE "maximal_queue_lifetime = 53w\n",
     "%s:3: bad value for maximal_queue_lifetime: \"53w\": must be between 0 and 365d"},
    {"lifetime milliseconds", BASE "maximal_queue_lifetime = 1500ms\n",
     "%s:3: bad value for maximal_queue_lifetime: \"1500ms\": must be in whole seconds"},
    {"lifetime empty", BASE "maximal_queue_lifetime =\n",
     "%s:3: bad value for maximal_queue_lifetime: \"\": expected a time: integer with unit us,"
     " ms, s, m, h, d or w (bare integer = seconds)"},
    {"schedule empty", BASE "delivery_retry_schedule = , \n",
     "%s:3: bad value for delivery_retry_schedule: expected 1..16 waits, e.g. 5m 10m 20m 40m"
     " 67m"},
    {"schedule unit", BASE "delivery_retry_schedule = 5m, 10x 20m\n",
     "%s:3: bad value for delivery_retry_schedule: \"10x\": unknown time unit \"x\" (use us,"
     " ms, s, m, h, d or w)"},
    {"schedule zero", BASE "delivery_retry_schedule = 5m 0\n",
     "%s:3: bad value for delivery_retry_schedule: \"0\": must be between 1s and 1d"},
    {"schedule long", BASE "delivery_retry_schedule = 5m\n  10m 25h\n",
     "%s:3: bad value for delivery_retry_schedule: \"25h\": must be between 1s and 1d"},
    {"schedule milliseconds", BASE "delivery_retry_schedule = 1500ms\n",
     "%s:3: bad value for delivery_retry_schedule: \"1500ms\": must be in whole seconds"},
    {"schedule separator", BASE "delivery_retry_schedule = 5m; 10m\n",
     "%s:3: bad value for delivery_retry_schedule: \"5m;\": unknown time unit \"m;\" (use us,"
     " ms, s, m, h, d or w)"},
    {"schedule word", BASE "delivery_retry_schedule = 5m then 10m\n",
     "%s:3: bad value for delivery_retry_schedule: \"then\": expected a time: integer with"
     " unit us, ms, s, m, h, d or w (bare integer = seconds)"},
    {"schedule element too long",
     BASE "delivery_retry_schedule = 5m 00000000000000000000000000000000000000001m\n",
     "%s:3: bad value for delivery_retry_schedule: \"0000000000000000000000000000000...\": not a"
     " time"},
    {"schedule seventeen",
     BASE "delivery_retry_schedule = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
          "  17\n",
     "%s:3: bad value for delivery_retry_schedule: more than 16 waits"},
    {"schedule twice", BASE "delivery_retry_schedule = 5m\ndelivery_retry_schedule = 10m\n",
     "%s:4: duplicate key \"delivery_retry_schedule\" (first set at line 3)"},
};

static void test_bad_configs(void **state)
{
	char path[256], want[1024], err[1024];
	struct pg_conf *c = malloc(sizeof(*c));

	(void)state;
	assert_non_null(c);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, CONF_FILE_NAME);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *t = &bad_cases[i];

		write_conf(t->text);
		snprintf(want, sizeof(want), t->want, path);
		err[0] = '\0';
		if (conf_load(tmpdir, c, err, sizeof(err)) != PG_ERROR || strcmp(err, want) != 0)
			fail_msg("case \"%s\":\n  want: %s\n  got:  %s", t->name, want, err);
	}
	free(c);
}

static void test_missing_file(void **state)
{
	struct pg_conf *c = malloc(sizeof(*c));
	char err[512], want[512];

	(void)state;
	assert_non_null(c);
	assert_int_equal(conf_load("/nonexistent/postern", c, err, sizeof(err)), PG_ERROR);
	snprintf(want, sizeof(want),
	         "/nonexistent/postern/%s: cannot open: No such file or"
	         " directory",
	         CONF_FILE_NAME);
	assert_string_equal(err, want);
	free(c);
}

/* ---- good files and what they must produce ---- */

static void check_defaults(const struct pg_conf *c)
{
	assert_int_equal(c->workers, 1);
	assert_int_equal(c->nports, 1);
	assert_string_equal(c->ports[0].device, "net_af_packet0,iface=dp0");
	assert_int_equal(c->ports[0].addr, ip("198.18.0.1"));
	assert_int_equal(c->ports[0].prefix_len, 24);
	assert_int_equal(c->ports[0].mtu, 1500);
	assert_int_equal(c->default_gateway, 0);
	assert_int_equal(c->arp_cache_ns, 300ull * 1000000000ull);
	assert_int_equal(c->arp_retry_ns, 1000000000ull);
	assert_int_equal(c->arp_max_retries, 3);
	assert_int_equal(c->arp_pending_max, 256);
	assert_true(c->gratuitous_arp);
	assert_int_equal(c->idle_sleep_ns, 100000);
	assert_int_equal(c->idle_polls, 256);
	assert_string_equal(c->shm_name, "postern");
	assert_int_equal(c->snapshot_max_size, 16u << 20);
	assert_string_equal(c->control_socket, "/run/postern/posternd.sock");
	assert_string_equal(c->control_group, "");
	assert_string_equal(c->log_file, "/var/log/postern/postern.log");
	assert_string_equal(c->metrics_listen, "");
	assert_int_equal(c->nroutes, 1);
	assert_int_equal(c->routes[0].prefix, ip("198.18.0.0"));
	assert_int_equal(c->routes[0].prefix_len, 24);
	assert_int_equal(c->routes[0].port, 0);
	assert_int_equal(c->routes[0].gateway, 0);
	/* never an open relay; opportunistic TLS by default */
	assert_int_equal(c->nmynetworks, 0);
	assert_int_equal(c->nrelay_domains, 0);
	assert_string_equal(c->relay_domains, "");
	assert_int_equal(c->tls_default_level, SNAP_TLS_MAY);
	/* TCP: tcp_config_default()'s values (test_adopt checks they agree) */
	assert_int_equal(c->tcp.cc, SNAP_TCP_CC_CUBIC);
	assert_int_equal(c->tcp.keepalive_idle_ns, 0);
	assert_int_equal(c->tcp.keepalive_intvl_ns, 0);
	assert_int_equal(c->tcp.keepalive_probes, 0);
	assert_int_equal(c->tcp.max_connections, 65536);
	assert_int_equal(c->tcp.buffer_memory_max, 1ull << 30);
	assert_int_equal(c->tcp.send_buffer, 256 << 10);
	assert_int_equal(c->tcp.receive_buffer, 256 << 10);
	assert_int_equal(c->tcp.backpressure_watermark, 90);
	assert_int_equal(c->tcp.syn_backlog, 1024);
	assert_true(c->tcp.syncookies);
	assert_int_equal(c->tcp.max_retries, 12);
}

static void check_relay(const struct pg_conf *c)
{
	assert_int_equal(c->nmynetworks, 3);
	assert_int_equal(c->mynetworks[0].prefix, ip("198.18.0.0"));
	assert_int_equal(c->mynetworks[0].len, 24);
	assert_int_equal(c->mynetworks[1].prefix, ip("10.1.2.3"));
	assert_int_equal(c->mynetworks[1].len, 32);
	assert_int_equal(c->mynetworks[2].prefix, ip("172.16.0.0"));
	assert_int_equal(c->mynetworks[2].len, 12);
	assert_int_equal(c->nrelay_domains, 3);
	assert_string_equal(c->relay_domains, "example.com .example.net xn--bcher-kva.de");
	assert_int_equal(c->tls_default_level, SNAP_TLS_SECURE);
}

static void check_full(const struct pg_conf *c)
{
	static const struct {
		const char *prefix;
		uint8_t len, port;
		const char *gw;
	} want[] = {
	    /* longest first; connected before static at equal length */
	    {"198.19.0.0", 24, 1, NULL},     {"10.20.30.0", 24, 1, "198.19.0.3"},
	    {"198.18.0.0", 23, 0, NULL},     {"10.0.0.0", 8, 0, "198.18.1.254"},
	    {"0.0.0.0", 0, 1, "198.19.0.2"},
	};

	assert_int_equal(c->workers, 2);
	assert_int_equal(c->nports, 2);
	assert_string_equal(c->ports[0].device, "0000:03:00.0");
	assert_string_equal(c->ports[1].device, "net_af_packet1,iface=dp1,qpairs=2");
	assert_int_equal(c->ports[1].mtu, 9000);
	assert_int_equal(c->ports[0].mtu, 1500);
	assert_int_equal(c->default_gateway, ip("198.19.0.2"));
	assert_int_equal(c->arp_cache_ns, 2ull * 60 * 1000000000ull);
	assert_int_equal(c->arp_retry_ns, 250ull * 1000000);
	assert_int_equal(c->idle_sleep_ns, 0);
	assert_int_equal(c->idle_polls, 0);
	assert_false(c->gratuitous_arp);
	assert_int_equal(c->snapshot_max_size, 64u << 10);
	assert_string_equal(c->shm_name, "postern-test.1");
	assert_string_equal(c->control_socket, "/tmp/pg.sock");
	assert_int_equal(c->nroutes, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(c->routes[i].prefix, ip(want[i].prefix));
		assert_int_equal(c->routes[i].prefix_len, want[i].len);
		assert_int_equal(c->routes[i].port, want[i].port);
		assert_int_equal(c->routes[i].gateway, want[i].gw ? ip(want[i].gw) : 0);
	}
}

static void check_continuation(const struct pg_conf *c)
{
	assert_int_equal(c->workers, 4);
	assert_int_equal(c->nroutes, 3);
	assert_int_equal(c->routes[0].prefix, ip("198.18.0.0"));
	assert_int_equal(c->routes[1].prefix, ip("172.16.0.0"));
	assert_int_equal(c->routes[1].gateway, ip("198.18.0.9"));
	assert_int_equal(c->routes[2].prefix, ip("10.0.0.0"));
	assert_int_equal(c->arp_max_retries, 20);
}

static void check_units(const struct pg_conf *c)
{
	assert_int_equal(c->arp_cache_ns, 3600ull * 1000000000ull);
	assert_int_equal(c->arp_retry_ns, 30ull * 1000000000ull); /* bare = seconds */
	assert_int_equal(c->idle_sleep_ns, 100ull * 1000000);
	assert_int_equal(c->snapshot_max_size, 1u << 30);
	assert_true(c->gratuitous_arp);
	assert_int_equal(c->ports[0].prefix_len, 31);
	assert_int_equal(c->ports[0].addr, ip("198.18.0.0")); /* RFC 3021: /31 hosts */
}

static void check_diag(const struct pg_conf *c)
{
	assert_true(c->diag_services);
	assert_true(c->diag_client.set);
	assert_int_equal(c->diag_client.addr, ip("198.19.0.2"));
	assert_int_equal(c->diag_client.port, 5001);
	assert_int_equal(c->diag_client.mode, 1);
	assert_int_equal(c->diag_client.bytes, 104857600);
	assert_int_equal(c->diag_client.count, 1);
}

static void check_diag_source(const struct pg_conf *c)
{
	assert_false(c->diag_services);
	assert_true(c->diag_client.set);
	assert_int_equal(c->diag_client.mode, 3);
	assert_int_equal(c->diag_client.bytes, 1ull << 40);
	assert_int_equal(c->diag_client.count, 100000);
}

static void check_diag_off(const struct pg_conf *c)
{
	assert_false(c->diag_services);
	assert_false(c->diag_client.set);
}

static void check_tcp(const struct pg_conf *c)
{
	assert_int_equal(c->tcp.cc, SNAP_TCP_CC_NEWRENO);
	assert_int_equal(c->tcp.keepalive_idle_ns, 7200ull * 1000000000ull);
	assert_int_equal(c->tcp.keepalive_intvl_ns, 75ull * 1000000000ull);
	assert_int_equal(c->tcp.keepalive_probes, 9);
	assert_int_equal(c->tcp.max_connections, 4194304);
	assert_int_equal(c->tcp.buffer_memory_max, 1025ull << 20);
	assert_int_equal(c->tcp.send_buffer, 512u << 20);
	assert_int_equal(c->tcp.receive_buffer, 512u << 20);
	assert_int_equal(c->tcp.backpressure_watermark, 75);
	assert_int_equal(c->tcp.syn_backlog, 1);
	assert_false(c->tcp.syncookies);
	assert_int_equal(c->tcp.max_retries, 3);
}

static void check_tcp_min(const struct pg_conf *c)
{
	assert_int_equal(c->tcp.cc, SNAP_TCP_CC_CUBIC);
	assert_int_equal(c->tcp.keepalive_idle_ns, 1000000000ull); /* bare = seconds */
	assert_int_equal(c->tcp.keepalive_intvl_ns, 3600ull * 1000000000ull);
	assert_int_equal(c->tcp.keepalive_probes, 100);
	assert_int_equal(c->tcp.send_buffer, 4096);
	assert_int_equal(c->tcp.receive_buffer, 4096);
	assert_int_equal(c->tcp.buffer_memory_max, 1u << 20);
	assert_int_equal(c->tcp.backpressure_watermark, 100);
	assert_int_equal(c->tcp.max_retries, 30);
}

static void check_ops(const struct pg_conf *c)
{
	assert_string_equal(c->control_group, "root");
	assert_int_equal(c->control_gid, 0);
	assert_string_equal(c->log_file, "/tmp/pg/postern.log");
	assert_string_equal(c->metrics_listen, "[::1]:9465");
}

static void check_inbound_tls_defaults(const struct pg_conf *c)
{
	/* opportunistic STARTTLS, nothing required, TLS 1.2 and 1.3 only */
	assert_int_equal(c->smtpd_tls.level, SNAP_TLS_MAY);
	assert_int_equal(c->smtpd_tls.protocols, SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3);
	assert_int_equal(c->smtpd_tls.mandatory_protocols, SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3);
	assert_int_equal(c->smtpd_tls.nnetworks, 0);
	assert_int_equal(c->smtpd_tls.nsenders, 0);
	assert_string_equal(c->smtpd_tls.senders, "");
	assert_int_equal(c->smtpd_tls.level_line, 0);
	/* outbound trust anchors: none; session tickets: Postfix's 3600 s */
	assert_string_equal(c->smtp_tls_cafile, "");
	assert_int_equal(c->smtp_tls_cafile_line, 0);
	assert_int_equal(c->smtpd_tls.session_cache_timeout_ns, 3600 * NS_PER_S);
}

static void check_tls_session_off(const struct pg_conf *c)
{
	assert_int_equal(c->smtpd_tls.session_cache_timeout_ns, 0);
	assert_string_equal(c->smtp_tls_cafile, "/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(c->smtp_tls_cafile_line, 4);
}

static void check_tls_session_min(const struct pg_conf *c)
{
	assert_int_equal(c->smtpd_tls.session_cache_timeout_ns, 120 * NS_PER_S);
	assert_string_equal(c->smtp_tls_cafile, "certs/partners.pem"); /* read by trust.c */
	assert_int_equal(c->smtp_tls_cafile_line, 3);
}

static void check_dns_off(const struct pg_conf *c)
{
	assert_false(conf_dns_enabled(&c->dns));
	assert_int_equal(c->dns.nresolvers, 0);
	assert_int_equal(c->settings[SET_smtp_mx_address_limit], 5);
	assert_int_equal(c->settings[SET_smtp_mx_session_limit], 2);
	assert_int_equal(c->settings[SET_dns_timeout], 10 * NS_PER_S);
}

static void check_dns(const struct pg_conf *c)
{
	assert_true(conf_dns_enabled(&c->dns));
	assert_int_equal(c->dns.nresolvers, 2);
	assert_int_equal(c->dns.resolvers[0], htonl(0xc612ff35)); /* 198.18.255.53 */
	assert_int_equal(c->dns.resolvers[1], htonl(0x09090909));
	assert_string_equal(c->dns.trust_anchor_file, "/usr/share/dns/root.key");
	assert_string_equal(c->dns.root_hints_file, "");
	assert_int_equal(c->settings[SET_smtp_mx_address_limit], 16);
	assert_int_equal(c->settings[SET_dns_cache_size], 50);
	assert_int_equal(c->settings[SET_dns_timeout], 2500 * NS_PER_S / 1000);
}

static void check_dns_hints(const struct pg_conf *c)
{
	assert_true(conf_dns_enabled(&c->dns)); /* recursion: hints, no resolvers */
	assert_int_equal(c->dns.nresolvers, 0);
	assert_string_equal(c->dns.root_hints_file, "/usr/share/dns/root.hints");
}

static void check_tls_session_max(const struct pg_conf *c)
{
	assert_int_equal(c->smtpd_tls.session_cache_timeout_ns, 604800 * NS_PER_S);
}

static void check_inbound_tls(const struct pg_conf *c)
{
	assert_int_equal(c->smtpd_tls.level, SNAP_TLS_ENCRYPT);
	assert_int_equal(c->smtpd_tls.level_line, 4);
	assert_int_equal(c->smtpd_tls.nnetworks, 3);
	assert_int_equal(c->smtpd_tls.networks[0].prefix, ip("198.19.0.0"));
	assert_int_equal(c->smtpd_tls.networks[0].len, 24);
	assert_int_equal(c->smtpd_tls.networks[1].prefix, ip("10.9.8.7"));
	assert_int_equal(c->smtpd_tls.networks[1].len, 32);
	assert_int_equal(c->smtpd_tls.networks[2].len, 0); /* no open-relay limit here */
	assert_int_equal(c->smtpd_tls.networks_line, 5);
	assert_int_equal(c->smtpd_tls.nsenders, 3);
	assert_string_equal(c->smtpd_tls.senders, "partner.test .partners.example bank.test");
	assert_int_equal(c->smtpd_tls.senders_line, 7);
	/* main.cf separators; SSLv2/SSLv3 never offered, whatever the list leaves */
	assert_int_equal(c->smtpd_tls.protocols,
	                 SNAP_TLS_P_TLSV1_1 | SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3);
	assert_int_equal(c->smtpd_tls.mandatory_protocols, SNAP_TLS_P_TLSV1_3);
	assert_int_equal(c->smtpd_tls.protocols_line, 9);
	assert_int_equal(c->smtpd_tls.mandatory_line, 10);
}

static void check_inbound_tls_recipients(const struct pg_conf *c)
{
	assert_int_equal(c->smtpd_tls.level, SNAP_TLS_MAY);
	assert_int_equal(c->smtpd_tls.nrecipients, 3);
	assert_string_equal(c->smtpd_tls.recipients, "strict.test .strict.example hosted.test");
	assert_int_equal(c->smtpd_tls.recipients_line, 4);
	assert_int_equal(c->smtpd_tls.nsenders, 0);
}

static void check_inbound_tls_none(const struct pg_conf *c)
{
	assert_int_equal(c->smtpd_tls.level, SNAP_TLS_NONE);
	assert_int_equal(c->smtpd_tls.protocols, SNAP_TLS_P_TLSV1_2);
}

static void check_smtp_defaults(const struct pg_conf *c)
{
	char host[256] = "";

	assert_false(c->smtp.service);
	assert_int_equal(c->smtp.listen_port, 25);
	assert_int_equal(c->settings[SET_smtp_max_sessions], 1000);
	assert_string_equal(c->smtp.spool_directory, "/var/spool/postern");
	assert_int_equal(c->settings[SET_message_size_limit], 10240000); /* Postfix */
	assert_int_equal(c->settings[SET_smtpd_recipient_limit], 1000);
	assert_int_equal(c->settings[SET_hopcount_limit], 50); /* Postfix */
	assert_false(c->smtp.bare_normalize);
	/* the machine's name, as Postfix (or localhost if it is not a host name) */
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	if (strcmp(c->smtp.myhostname, "localhost") != 0)
		assert_string_equal(c->smtp.myhostname, host);
}

static void check_smtp(const struct pg_conf *c)
{
	assert_true(c->smtp.service);
	assert_int_equal(c->smtp.listen_port, 2525);
	assert_int_equal(c->settings[SET_smtp_max_sessions], 1048576);
	assert_string_equal(c->smtp.spool_directory, "/var/spool/postern-lab");
	assert_string_equal(c->smtp.myhostname, "MX-1.example.COM");
	assert_int_equal(c->settings[SET_message_size_limit], 0);
	assert_int_equal(c->settings[SET_smtpd_recipient_limit], 100000);
	assert_int_equal(c->settings[SET_hopcount_limit], 7);
	assert_true(c->smtp.bare_normalize);
}

static void check_delivery_defaults(const struct pg_conf *c)
{
	/* snap_delivery_default()'s values (test_snap checks the snapshot agrees) */
	static const uint64_t want[] = {300, 600, 1200, 2400, 4020};

	assert_int_equal(c->settings[SET_smtp_destination_concurrency_limit], 20);
	assert_int_equal(c->settings[SET_smtp_connect_timeout], 30ull * 1000000000ull);
	assert_int_equal(c->settings[SET_smtp_connection_cache_time_limit], 2ull * 1000000000ull);
	assert_int_equal(c->settings[SET_maximal_queue_lifetime], 5ull * 86400 * 1000000000ull);
	assert_int_equal(c->delivery.nschedule, 5);
	for (size_t i = 0; i < SNAP_DELIVERY_SCHEDULE_MAX; i++)
		assert_int_equal(c->delivery.schedule_ns[i], i < 5 ? want[i] * 1000000000ull : 0);
}

static void check_delivery(const struct pg_conf *c)
{
	/* any order; commas, spaces, tabs and continuation lines between */
	static const uint64_t want[] = {60, 30, 7200, 86400, 1, 86400};

	assert_int_equal(c->settings[SET_smtp_destination_concurrency_limit], 1000);
	assert_int_equal(c->settings[SET_smtp_connect_timeout], 600ull * 1000000000ull);
	assert_int_equal(c->settings[SET_smtp_connection_cache_time_limit], 0);
	assert_int_equal(c->settings[SET_maximal_queue_lifetime], 0); /* one attempt only */
	assert_int_equal(c->delivery.nschedule, 6);
	for (size_t i = 0; i < SNAP_DELIVERY_SCHEDULE_MAX; i++)
		assert_int_equal(c->delivery.schedule_ns[i], i < 6 ? want[i] * 1000000000ull : 0);
}

static void check_delivery_bounds(const struct pg_conf *c)
{
	assert_int_equal(c->settings[SET_smtp_destination_concurrency_limit], 1);
	assert_int_equal(c->settings[SET_smtp_connect_timeout], 1000ull * 1000000);
	assert_int_equal(c->settings[SET_smtp_connection_cache_time_limit], 300ull * 1000000000ull);
	assert_int_equal(c->settings[SET_maximal_queue_lifetime], 365ull * 86400 * 1000000000ull);
	assert_int_equal(c->delivery.nschedule, 16);
	for (size_t i = 0; i < SNAP_DELIVERY_SCHEDULE_MAX; i++)
		assert_int_equal(c->delivery.schedule_ns[i], (i + 1) * 1000000000ull);
}

static void check_delivery_short(const struct pg_conf *c)
{
	/* one wait replaces the whole default list */
	assert_int_equal(c->settings[SET_smtp_connect_timeout], 1500ull * 1000000);
	assert_int_equal(c->settings[SET_maximal_queue_lifetime], 14ull * 86400 * 1000000000ull);
	assert_int_equal(c->delivery.nschedule, 1);
	assert_int_equal(c->delivery.schedule_ns[0], 600ull * 1000000000ull);
	for (size_t i = 1; i < SNAP_DELIVERY_SCHEDULE_MAX; i++)
		assert_int_equal(c->delivery.schedule_ns[i], 0);
}

static const struct good_case {
	const char *name;
	const char *text;
	void (*check)(const struct pg_conf *c);
} good_cases[] = {
    {"defaults", BASE, check_defaults},
    {"defaults with comments and blanks", "# postern.conf\n\n   \n" BASE "  # indented\n",
     check_defaults},
    {"crlf", "port0_device = net_af_packet0,iface=dp0\r\nport0_address = 198.18.0.1/24\r\n",
     check_defaults},
    {"full",
     "# two ports, routes in every flavour\n"
     "workers = 2\n"
     "port0_device = 0000:03:00.0\n"
     "port0_address = 198.18.0.1/23\n"
     "port1_device = net_af_packet1,iface=dp1,qpairs=2\n"
     "port1_address = 198.19.0.1/24\n"
     "port1_mtu = 9000\n"
     "default_gateway = 198.19.0.2\n"
     "static_routes = 10.0.0.0/8 via 198.18.1.254, 10.20.30.0/24 via 198.19.0.3\n"
     "arp_cache_timeout = 2m\n"
     "arp_retry_interval = 250ms\n"
     "idle_sleep = 0\n"
     "idle_polls = 0\n"
     "gratuitous_arp = no\n"
     "snapshot_max_size = 64k\n"
     "shm_name = postern-test.1\n"
     "control_socket = /tmp/pg.sock\n",
     check_full},
    {"continuation lines",
     BASE "workers =\n"
          "    4\n"
          "static_routes =\n"
          "    10.0.0.0/8 via 198.18.0.254,\n"
          "# a comment inside does not end the logical line\n"
          "\n"
          "\t172.16.0.0/12 via 198.18.0.9\n"
          "arp_max_retries\n"
          "  = 20\n",
     check_continuation},
    {"relay access",
     BASE "mynetworks = 198.18.0.0/24 10.1.2.3,\n  172.16.0.0/12\n"
          "relay_domains = Example.COM, .example.net xn--bcher-kva.de\n"
          "tls_default_level = Secure\n",
     check_relay},
    {"units",
     "port0_device = 03:00.1\nport0_address = 198.18.0.0/31\n"
     "arp_cache_timeout = 1h\narp_retry_interval = 30\nidle_sleep = 100ms\n"
     "snapshot_max_size = 1G\ngratuitous_arp = YES\n",
     check_units},
    {"operations",
     BASE "control_group = root\nlog_file = /tmp/pg/postern.log\nmetrics_listen = [::1]:9465\n",
     check_ops},
    {"metrics off explicitly", BASE "metrics_listen =\n", check_defaults},
    {"diag", BASE "diag_services = yes\ndiag_client = 198.19.0.2:5001 echo 104857600\n",
     check_diag},
    {"diag source max",
     BASE "diag_services = no\ndiag_client =   198.19.0.2:19\tsource  1099511627776 100000\n",
     check_diag_source},
    {"diag defaults", BASE, check_diag_off},
    {"diag client empty", BASE "diag_client =\n", check_diag_off},
    {"tcp",
     BASE "tcp_congestion_control = NewReno\n"
          "tcp_keepalive = 2h 75s 9\n"
          "tcp_max_connections = 4194304\n"
          "tcp_buffer_memory_max = 1025M\n"
          "tcp_send_buffer = 512M\n"
          "tcp_receive_buffer = 512M\n"
          "tcp_backpressure_watermark = 75%\n"
          "tcp_syn_backlog = 1\n"
          "tcp_syncookies = no\n"
          "tcp_max_retries = 3\n",
     check_tcp},
    {"tcp bounds",
     BASE "tcp_keepalive =\t1  60m\t100\ntcp_send_buffer = 4k\ntcp_receive_buffer = 4096\n"
          "tcp_buffer_memory_max = 1M\ntcp_backpressure_watermark = 100\ntcp_max_retries = 30\n",
     check_tcp_min},
    {"tcp explicit defaults",
     BASE "tcp_congestion_control = cubic\ntcp_keepalive = no\ntcp_syncookies = yes\n",
     check_defaults},
    {"smtp defaults", BASE, check_smtp_defaults},
    {"smtp",
     BASE "smtp_service = yes\nsmtp_listen_port = 2525\nsmtp_max_sessions = 1048576\n"
          "spool_directory = /var/spool/postern-lab/\nmyhostname = MX-1.example.COM\n"
          "message_size_limit = 0\nsmtpd_recipient_limit = 100000\nhopcount_limit = 7\n"
          "smtpd_forbid_bare_newline = Normalize\n",
     check_smtp},
    {"inbound tls defaults", BASE, check_inbound_tls_defaults},
    {"session tickets off",
     BASE "smtpd_tls_session_cache_timeout = 0\nsmtp_tls_CAfile = "
          "/etc/ssl/certs/ca-certificates.crt\n",
     check_tls_session_off},
    {"session timeout 2m",
     BASE "smtp_tls_CAfile = certs/partners.pem\n"
          "smtpd_tls_session_cache_timeout = 2m\n",
     check_tls_session_min},
    {"session timeout 1w", BASE "smtpd_tls_session_cache_timeout = 1w\n", check_tls_session_max},
    {"session timeout explicit default", BASE "smtpd_tls_session_cache_timeout = 3600\n",
     check_inbound_tls_defaults},
    {"inbound tls",
     BASE "tls_certificates = mx.pem\n"
          "smtpd_tls_security_level = Encrypt\n"
          "smtpd_tls_required_networks = 198.19.0.0/24, 10.9.8.7\n"
          "  0.0.0.0/0\n"
          "smtpd_tls_required_senders = Partner.TEST, .partners.example\n"
          "\tBANK.test\n"
          "smtpd_tls_protocols = !SSLv2, !SSLv3 !TLSv1\n"
          "smtpd_tls_mandatory_protocols = >=TLSv1.3\n",
     check_inbound_tls},
    {"inbound tls none", BASE "smtpd_tls_security_level = none\nsmtpd_tls_protocols = TLSv1.2\n",
     check_inbound_tls_none},
    {"inbound tls recipients",
     BASE "tls_certificates = mx.pem\n"
          "smtpd_tls_required_recipients = Strict.TEST, .strict.example\n"
          "\tHOSTED.test\n",
     check_inbound_tls_recipients},
    {"delivery defaults", BASE, check_delivery_defaults},
    {"dns off", BASE "dns_trust_anchor_file = /usr/share/dns/root.key\n", check_dns_off},
    {"dns forwarders",
     BASE "dns_resolvers = 198.18.255.53,9.9.9.9\n"
          "dns_trust_anchor_file = /usr/share/dns/root.key\n"
          "smtp_mx_address_limit = 16\ndns_cache_size = 50\ndns_timeout = 2500ms\n",
     check_dns},
    {"dns recursion", BASE "dns_root_hints_file = /usr/share/dns/root.hints\n", check_dns_hints},
    {"delivery explicit defaults",
     BASE "smtp_destination_concurrency_limit = 20\nsmtp_connect_timeout = 30\n"
          "smtp_connection_cache_time_limit = 2000ms\nmaximal_queue_lifetime = 120h\n"
          "delivery_retry_schedule = 300s,600s,1200s,2400s,4020s\n",
     check_delivery_defaults},
    {"delivery",
     BASE "smtp_destination_concurrency_limit = 1000\n"
          "smtp_connect_timeout = 10m\n"
          "smtp_connection_cache_time_limit = 0\n"
          "maximal_queue_lifetime = 0\n"
          "delivery_retry_schedule = 1m,30s\t2h ,\n"
          "    1d,, 1\n"
          "\t1d\n",
     check_delivery},
    {"delivery bounds",
     BASE "smtp_destination_concurrency_limit = 1\nsmtp_connect_timeout = 1000ms\n"
          "smtp_connection_cache_time_limit = 5m\nmaximal_queue_lifetime = 365d\n"
          "delivery_retry_schedule = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
     check_delivery_bounds},
    {"delivery short schedule",
     BASE "smtp_connect_timeout = 1500ms\nmaximal_queue_lifetime = 2w\n"
          "delivery_retry_schedule = 10m\n",
     check_delivery_short},
};

static void test_good_configs(void **state)
{
	struct pg_conf *c = malloc(sizeof(*c));
	char err[1024];

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		write_conf(good_cases[i].text);
		if (conf_load(tmpdir, c, err, sizeof(err)) != PG_OK)
			fail_msg("case \"%s\": %s", good_cases[i].name, err);
		good_cases[i].check(c);
	}
	free(c);
}

static void test_peek(void **state)
{
	char v[128], err[256];

	(void)state;
	/* invalid elsewhere, but the socket is still found */
	write_conf("workerz = 1\ncontrol_socket = /tmp/x.sock  \n");
	assert_int_equal(conf_peek(tmpdir, "control_socket", v, sizeof(v), err, sizeof(err)),
	                 PG_OK);
	assert_string_equal(v, "/tmp/x.sock");
	assert_int_equal(conf_peek(tmpdir, "shm_name", v, sizeof(v), err, sizeof(err)),
	                 PG_DECLINED);
	assert_int_equal(conf_peek("/nonexistent", "shm_name", v, sizeof(v), err, sizeof(err)),
	                 PG_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_configs),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_good_configs),
	    cmocka_unit_test(test_peek),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
