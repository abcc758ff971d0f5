/*
 * conf.c - parser and validator of postern.conf (see conf.h for the syntax).
 * Two passes: the first reads logical lines and parses each value on its
 * own through the key table below; the second checks what involves several
 * keys (ports numbered from 0, gateways inside a connected subnet) and
 * compiles the route list. The first error stops the load and names the
 * file and line, so an operator can fix it without guessing.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_ipv6.h"
#include "files.h"
#include "policy.h"
#include "result.h"
#include "transport.h"

#define CONF_FILE_MAX (1u << 20) /* a main.cf-style file is a few KB */
#define CONF_LINE_MAX 65536      /* one logical line, continuations included */
#define CONF_ROUTE_TEXT 80
#define CONF_NS_PER_S UINT64_C(1000000000)

enum conf_type {
	CT_UINT,            /* decimal integer in [min, max] */
	CT_TIME,            /* integer + us|ms|s|m|h|d|w, bare = seconds; stored in ns */
	CT_TIME_MS,         /* CT_TIME in whole milliseconds */
	CT_LIFETIME,        /* CT_TIME in whole seconds, a unit required but for 0 */
	CT_SCHEDULE,        /* delivery_retry_schedule: a list of CT_TIME in whole seconds */
	CT_SIZE,            /* bytes + optional k|M|G */
	CT_BOOL,            /* yes|no */
	CT_DEVICE,          /* PCI address or DPDK vdev spec */
	CT_PREFIX,          /* IPv4/len and/or IPv6/len: a port's addresses */
	CT_IPV4,            /* a unicast gateway of each family, empty = none */
	CT_ROUTES,          /* PREFIX/LEN via GATEWAY, ... (either family) */
	CT_SHM_NAME,        /* [A-Za-z0-9_.-]+ */
	CT_SOCKET,          /* absolute path that fits sun_path */
	CT_LOG_PATH,        /* absolute path of a file */
	CT_LISTEN,          /* ADDRESS:PORT to listen on, empty = off */
	CT_GROUP,           /* an existing group name, empty = none */
	CT_NETWORKS,        /* mynetworks: IPv4 CIDR list */
	CT_DOMAINS,         /* relay_domains: domain and .domain list */
	CT_TLS_LEVEL,       /* a TLS security level, dane* refused */
	CT_SMTPD_TLS_LEVEL, /* none|may|encrypt (Postfix smtpd_tls_security_level) */
	CT_TLS_PROTOCOLS,   /* Postfix protocols list, SSLv2/SSLv3 never offered */
	CT_TLS_NETWORKS,    /* smtpd_tls_required_networks: IPv4 CIDR list */
	CT_TLS_SENDERS,     /* smtpd_tls_required_senders: domain and .domain list */
	CT_TLS_RECIPIENTS,  /* smtpd_tls_required_recipients: domain and .domain list */
	CT_FILES,           /* tls_certificates: file list, read by control/certs.c */
	CT_DIAG_CLIENT,     /* diag_client: HOST:PORT MODE BYTES [COUNT], empty = none */
	CT_PERCENT,         /* integer in [min, max], optional "%" */
	CT_TCP_CC,          /* cubic|newreno */
	CT_KEEPALIVE,       /* no | IDLE INTERVAL COUNT */
	CT_DIR,             /* absolute path of a directory */
	CT_HOSTNAME,        /* a host name (RFC 1035 letters, digits, hyphens) */
	CT_BARE,            /* reject|normalize */
	CT_RELAYHOST,       /* one next hop: [host]:port, [host], host, host:port */
	CT_FILE,            /* one file name, empty = none (read by control/trust.c) */
	CT_SESSION_TIMEOUT, /* 0, or a time in whole seconds in [min, max] */
	CT_ABSFILE,         /* one absolute file name, empty = none (read by postern-dp) */
	CT_RESOLVERS,       /* dns_resolvers: IPv4 addresses, space or comma separated */
};

/* A port key is "port<N>_<name>"; its offset is inside struct pg_conf_port. */
struct conf_key {
	const char *name;
	enum conf_type type;
	bool per_port;
	size_t offset;
	size_t width; /* bytes of the integer field for CT_UINT */
	uint64_t min, max;
	const char *def; /* default, parsed like a value; NULL = none */
};

#define CONF_FIELD(f) offsetof(struct pg_conf, f), sizeof(((struct pg_conf *)0)->f)
/* how each enum setting_type is parsed */
#define CONF_TYPE_SETTING_UINT CT_UINT
#define CONF_TYPE_SETTING_SIZE CT_SIZE
#define CONF_TYPE_SETTING_TIME_MS CT_TIME_MS
#define CONF_TYPE_SETTING_LIFETIME CT_LIFETIME
#define CONF_TYPE_SETTING_BOOL CT_BOOL
#define CONF_PORT_FIELD(f) offsetof(struct pg_conf_port, f), sizeof(((struct pg_conf_port *)0)->f)
#define MS UINT64_C(1000000)
#define US UINT64_C(1000)
#define S CONF_NS_PER_S

static const struct conf_key conf_keys[] = {
    {"workers", CT_UINT, false, CONF_FIELD(workers), 1, SNAP_MAX_WORKERS, "1"},
    {"device", CT_DEVICE, true, CONF_PORT_FIELD(device), 0, 0, NULL},
    {"address", CT_PREFIX, true, CONF_PORT_FIELD(addr), 0, 0, NULL},
    {"mtu", CT_UINT, true, CONF_PORT_FIELD(mtu), 576, 9000, "1500"},
    {"default_gateway", CT_IPV4, false, CONF_FIELD(default_gateway), 0, 0, NULL},
    {"static_routes", CT_ROUTES, false, 0, 0, 0, 0, NULL},
    {"arp_cache_timeout", CT_TIME, false, CONF_FIELD(arp_cache_ns), 1 * S, 86400 * S, "300s"},
    {"arp_retry_interval", CT_TIME, false, CONF_FIELD(arp_retry_ns), 10 * MS, 60 * S, "1s"},
    {"arp_max_retries", CT_UINT, false, CONF_FIELD(arp_max_retries), 1, 20, "3"},
    {"arp_pending_max", CT_UINT, false, CONF_FIELD(arp_pending_max), 1, 65536, "256"},
    {"gratuitous_arp", CT_BOOL, false, CONF_FIELD(gratuitous_arp), 0, 0, "yes"},
    {"idle_sleep", CT_TIME, false, CONF_FIELD(idle_sleep_ns), 0, 100 * MS, "100us"},
    {"idle_polls", CT_UINT, false, CONF_FIELD(idle_polls), 0, 1000000, "256"},
    {"shm_name", CT_SHM_NAME, false, CONF_FIELD(shm_name), 0, 0, "postern"},
    {"snapshot_max_size", CT_SIZE, false, CONF_FIELD(snapshot_max_size), 64u << 10, 1u << 30,
     "16M"},
    {"control_socket", CT_SOCKET, false, CONF_FIELD(control_socket), 0, 0, CONF_DEFAULT_SOCKET},
    {"control_group", CT_GROUP, false, CONF_FIELD(control_group), 0, 0, ""},
    {"log_file", CT_LOG_PATH, false, CONF_FIELD(log_file), 0, 0, CONF_DEFAULT_LOG_FILE},
    {"metrics_listen", CT_LISTEN, false, CONF_FIELD(metrics_listen), 0, 0, ""},
    {"mynetworks", CT_NETWORKS, false, 0, 0, 0, 0, ""},
    {"relay_domains", CT_DOMAINS, false, 0, 0, 0, 0, ""},
    {"tls_default_level", CT_TLS_LEVEL, false, CONF_FIELD(tls_default_level), 0, 0, "may"},
    {"tls_certificates", CT_FILES, false, 0, 0, 0, 0, ""},
    /* outbound trust anchors for verify and secure (control/trust.h) */
    {"smtp_tls_CAfile", CT_FILE, false, CONF_FIELD(smtp_tls_cafile), 0, 0, ""},
    /* inbound TLS requirements (common/policy_lookup.h policy_inbound_required) */
    {"smtpd_tls_security_level", CT_SMTPD_TLS_LEVEL, false, CONF_FIELD(smtpd_tls.level), 0, 0,
     "may"},
    {"smtpd_tls_required_networks", CT_TLS_NETWORKS, false, 0, 0, 0, 0, ""},
    {"smtpd_tls_required_senders", CT_TLS_SENDERS, false, 0, 0, 0, 0, ""},
    {"smtpd_tls_required_recipients", CT_TLS_RECIPIENTS, false, 0, 0, 0, 0, ""},
    {"smtpd_tls_protocols", CT_TLS_PROTOCOLS, false, CONF_FIELD(smtpd_tls.protocols), 0, 0,
     ">=TLSv1.2"},
    {"smtpd_tls_mandatory_protocols", CT_TLS_PROTOCOLS, false,
     CONF_FIELD(smtpd_tls.mandatory_protocols), 0, 0, ">=TLSv1.2"},
    /* session-ticket key lifetime (control/tickets.h), Postfix's default */
    {"smtpd_tls_session_cache_timeout", CT_SESSION_TIMEOUT, false,
     CONF_FIELD(smtpd_tls.session_cache_timeout_ns), CONF_TLS_SESSION_TIMEOUT_MIN_S *S,
     CONF_TLS_SESSION_TIMEOUT_MAX_S *S, "3600s"},
    {"diag_services", CT_BOOL, false, CONF_FIELD(diag_services), 0, 0, "no"},
    {"diag_client", CT_DIAG_CLIENT, false, CONF_FIELD(diag_client), 0, 0, ""},
    /* TCP (dataplane/net/tcp.h); the defaults are tcp_config_default()'s */
    {"tcp_congestion_control", CT_TCP_CC, false, CONF_FIELD(tcp.cc), 0, 0, "cubic"},
    {"tcp_keepalive", CT_KEEPALIVE, false, CONF_FIELD(tcp), 0, 0, "no"},
    {"tcp_max_connections", CT_UINT, false, CONF_FIELD(tcp.max_connections), 1, SNAP_TCP_CONNS_MAX,
     "65536"},
    {"tcp_buffer_memory_max", CT_SIZE, false, CONF_FIELD(tcp.buffer_memory_max), SNAP_TCP_MEM_MIN,
     SNAP_TCP_MEM_MAX, "1G"},
    {"tcp_send_buffer", CT_SIZE, false, CONF_FIELD(tcp.send_buffer), SNAP_TCP_BUF_MIN,
     SNAP_TCP_BUF_MAX, "256k"},
    {"tcp_receive_buffer", CT_SIZE, false, CONF_FIELD(tcp.receive_buffer), SNAP_TCP_BUF_MIN,
     SNAP_TCP_BUF_MAX, "256k"},
    {"tcp_backpressure_watermark", CT_PERCENT, false, CONF_FIELD(tcp.backpressure_watermark),
     SNAP_TCP_WATERMARK_MIN, SNAP_TCP_WATERMARK_MAX, "90"},
    {"tcp_syn_backlog", CT_UINT, false, CONF_FIELD(tcp.syn_backlog), 1, SNAP_TCP_BACKLOG_MAX,
     "1024"},
    {"tcp_syncookies", CT_BOOL, false, CONF_FIELD(tcp.syncookies), 0, 0, "yes"},
    {"tcp_max_retries", CT_UINT, false, CONF_FIELD(tcp.max_retries), SNAP_TCP_RETRIES_MIN,
     SNAP_TCP_RETRIES_MAX, "12"},
    /* the inbound SMTP service (dataplane/relay/inbound.h); Postfix names and defaults */
    {"smtp_service", CT_BOOL, false, CONF_FIELD(smtp.service), 0, 0, "no"},
    {"smtp_listen_port", CT_UINT, false, CONF_FIELD(smtp.listen_port), 1, 65535, "25"},
    {"spool_directory", CT_DIR, false, CONF_FIELD(smtp.spool_directory), 0, 0,
     "/var/spool/postern"},
    /* default: gethostname(), filled in after the file is read (conf_default_hostname) */
    {"myhostname", CT_HOSTNAME, false, CONF_FIELD(smtp.myhostname), 0, 0, NULL},
    {"smtpd_forbid_bare_newline", CT_BARE, false, CONF_FIELD(smtp.bare_normalize), 0, 0, "reject"},
    /*
     * delivery, the outbound side (dataplane/relay/outbound.h): Postfix names
     * and defaults (snap_delivery_default() has the same, for old snapshots)
     */
    {"delivery_retry_schedule", CT_SCHEDULE, false, CONF_FIELD(delivery), 0, 0,
     "5m 10m 20m 40m 67m"},
    {"relayhost", CT_RELAYHOST, false, CONF_FIELD(delivery.relayhost), 0, 0, ""},
    /* the resolver of MX routing (dataplane/dns/README.md); read by postern-dp */
    {"dns_resolvers", CT_RESOLVERS, false, CONF_FIELD(dns), 0, 0, ""},
    {"dns_trust_anchor_file", CT_ABSFILE, false, CONF_FIELD(dns.trust_anchor_file), 0, 0, ""},
    {"dns_root_hints_file", CT_ABSFILE, false, CONF_FIELD(dns.root_hints_file), 0, 0, ""},
    {"dns_unbound_conf", CT_ABSFILE, false, CONF_FIELD(dns.unbound_conf), 0, 0, ""},
/* the declared-once scalar keys (settings.h): parsed here, stored in settings[] by id */
#define CONF_SETTING(name, type, text, def, lo, hi, doc)                                           \
	{#name,                                                                                    \
	 CONF_TYPE_##type,                                                                         \
	 false,                                                                                    \
	 offsetof(struct pg_conf, settings) + SET_##name * sizeof(uint64_t),                       \
	 sizeof(uint64_t),                                                                         \
	 lo,                                                                                       \
	 hi,                                                                                       \
	 text},
    PG_SETTINGS(CONF_SETTING)
#undef CONF_SETTING
};

#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* A static route as written, kept for the second pass and its messages. */
struct conf_static_route {
	uint32_t prefix, gateway; /* network order */
	uint8_t len;
	char text[CONF_ROUTE_TEXT];
};

struct conf_parser {
	const char *file;
	struct pg_conf *conf;
	char *err;
	size_t errlen;
	unsigned line_of[CONF_NKEYS][SNAP_MAX_PORTS]; /* where each key was set */
	unsigned nstatic;
	struct conf_static_route statics[SNAP_MAX_ROUTES];
	struct conf6_pending v6; /* the IPv6 static routes (conf_ipv6.c) */
};

static int conf_error(struct conf_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int conf_error(struct conf_parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	files_verror(p->err, p->errlen, p->file, line, fmt, ap);
	va_end(ap);
	return PG_ERROR;
}

static int conf_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int conf_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return PG_ERROR;
}

/* ---- IPv4 helpers (host order inside, network order in pg_conf) ---- */

static uint32_t conf_mask(unsigned len)
{
	return len == 0 ? 0 : 0xffffffffu << (32 - len);
}

static void conf_fmt_ip(uint32_t net_order, char *buf, size_t len)
{
	struct in_addr a = {.s_addr = net_order};

	inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

/* Strict dotted quad: inet_pton(AF_INET) refuses shorthand and octal. */
static int conf_parse_ip(const char *s, uint32_t *host)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return PG_ERROR;
	*host = ntohl(a.s_addr);
	return 0;
}

/* Unicast and usable as a host or gateway (RFC 1122 §3.2.1.3, RFC 5771). */
static const char *conf_not_unicast(uint32_t host)
{
	if ((host >> 24) == 0)
		return "not a unicast address (0.0.0.0/8 is \"this network\")";
	if ((host >> 24) == 127)
		return "not a unicast address (127.0.0.0/8 is loopback)";
	if (host >= 0xe0000000u)
		return "not a unicast address (multicast or reserved)";
	return NULL;
}

/* "A.B.C.D/N" into host-order address and length; reason in why. */
static int conf_parse_prefix(const char *s, uint32_t *host, uint8_t *len, char *why, size_t whylen)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	const char *d;
	unsigned n = 0;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
		return conf_why(why, whylen, "expected IPv4/prefix, e.g. 198.18.0.1/24");
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (conf_parse_ip(ip, host) != 0)
		return conf_why(why, whylen, "\"%s\" is not an IPv4 address", ip);
	d = slash + 1;
	if (*d == '\0' || strlen(d) > 2 || strspn(d, "0123456789") != strlen(d))
		return conf_why(why, whylen, "prefix length must be 0..32");
	n = (unsigned)atoi(d);
	if (n > 32)
		return conf_why(why, whylen, "prefix length must be 0..32");
	*len = (uint8_t)n;
	return 0;
}

/* ---- value parsers, one per type ---- */

static int conf_parse_u64(const char *s, uint64_t *v, const char **end)
{
	uint64_t x = 0;

	if (!isdigit((unsigned char)*s))
		return PG_ERROR;
	for (; isdigit((unsigned char)*s); s++) {
		if (x > (UINT64_MAX - 9) / 10)
			return PG_ERROR;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	*end = s;
	return 0;
}

/* Shortest exact spelling of a duration, for range messages. */
static void conf_fmt_time(uint64_t ns, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {
	    {"d", 86400 * S}, {"h", 3600 * S}, {"m", 60 * S}, {"s", S}, {"ms", MS}, {"us", US},
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ns != 0 && ns % units[i].ns == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", ns / units[i].ns, units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64 "%s", ns / US, ns == 0 ? "" : "us");
}

static void conf_fmt_size(uint64_t b, char *buf, size_t len)
{
	if (b != 0 && b % (1u << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", b >> 30);
	else if (b != 0 && b % (1u << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", b >> 20);
	else if (b != 0 && b % (1u << 10) == 0)
		snprintf(buf, len, "%" PRIu64 "k", b >> 10);
	else
		snprintf(buf, len, "%" PRIu64, b);
}

static void conf_store_uint(void *dst, size_t width, uint64_t v)
{
	switch (width) {
	case 1:
		*(uint8_t *)dst = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)dst = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)dst = (uint32_t)v;
		break;
	default:
		*(uint64_t *)dst = v;
		break;
	}
}

static int conf_val_uint(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen)
{
	const char *end;
	uint64_t v;

	if (conf_parse_u64(s, &v, &end) != 0 || *end != '\0' || v < k->min || v > k->max)
		return conf_why(why, whylen, "must be an integer %" PRIu64 "..%" PRIu64, k->min,
		                k->max);
	conf_store_uint(dst, k->width, v);
	return 0;
}

static int conf_val_time(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {
	    {"", S},       {"us", US},      {"ms", MS},       {"s", S},
	    {"m", 60 * S}, {"h", 3600 * S}, {"d", 86400 * S}, {"w", 604800 * S},
	};
	char lo[32], hi[32];
	const char *end;
	uint64_t v;

	conf_fmt_time(k->min, lo, sizeof(lo));
	conf_fmt_time(k->max, hi, sizeof(hi));
	if (conf_parse_u64(s, &v, &end) != 0)
		return conf_why(why, whylen,
		                "expected a time: integer with unit us, ms, s, m,"
		                " h, d or w (bare integer = seconds)");
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].ns || v * units[i].ns < k->min ||
		    v * units[i].ns > k->max)
			return conf_why(why, whylen, "must be between %s and %s", lo, hi);
		*(uint64_t *)dst = v * units[i].ns;
		return 0;
	}
	return conf_why(why, whylen, "unknown time unit \"%s\" (use us, ms, s, m, h, d or w)", end);
}

/*
 * A time the snapshot stores in whole milliseconds or seconds (step): a
 * finer value is refused rather than silently cut.
 */
static int conf_val_time_step(const struct conf_key *k, uint64_t step, const char *s, uint64_t *dst,
                              char *why, size_t whylen)
{
	uint64_t v;

	if (conf_val_time(k, s, &v, why, whylen) != 0)
		return PG_ERROR;
	if (v % step != 0)
		return conf_why(why, whylen, "must be in whole %s",
		                step == S ? "seconds" : "milliseconds");
	*dst = v;
	return 0;
}

/*
 * maximal_queue_lifetime: Postfix reads a bare number there as days
 * (postconf(5): "the default time unit is d"), postern.conf as seconds
 * everywhere; a main.cf line copied as is would bounce mail after seconds,
 * so a unit is required (0, one attempt only, means the same either way).
 */
static int conf_val_lifetime(const struct conf_key *k, const char *s, void *dst, char *why,
                             size_t whylen)
{
	if (*s != '\0' && strspn(s, "0123456789") == strlen(s) && strspn(s, "0") != strlen(s))
		return conf_why(why, whylen,
		                "needs a unit, e.g. 5d (Postfix reads a bare number here as days,"
		                " postern.conf as seconds)");
	return conf_val_time_step(k, S, s, dst, why, whylen);
}

static int conf_val_size(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen)
{
	char lo[32], hi[32];
	const char *end;
	uint64_t v, mult;

	conf_fmt_size(k->min, lo, sizeof(lo));
	conf_fmt_size(k->max, hi, sizeof(hi));
	if (conf_parse_u64(s, &v, &end) != 0)
		return conf_why(why, whylen,
		                "expected a size: bytes with optional suffix k, M"
		                " or G");
	if (strcmp(end, "") == 0)
		mult = 1;
	else if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
		mult = 1u << 10;
	else if (strcmp(end, "M") == 0)
		mult = 1u << 20;
	else if (strcmp(end, "G") == 0)
		mult = 1u << 30;
	else
		return conf_why(why, whylen, "unknown size suffix \"%s\" (use k, M or G)", end);
	if (v > UINT64_MAX / mult || v * mult < k->min || v * mult > k->max)
		return conf_why(why, whylen, "must be between %s and %s", lo, hi);
	*(uint64_t *)dst = v * mult;
	return 0;
}

static int conf_val_bool(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0)
		conf_store_uint(dst, k->width, 1);
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0)
		conf_store_uint(dst, k->width, 0);
	else
		return conf_why(why, whylen, "expected yes or no");
	return 0;
}

/* [dddd:]bb:dd.f as DPDK accepts on -a (domain optional). */
static bool conf_is_pci(const char *s)
{
	/* a pattern per form: x = hex digit, f = function 0..7 */
	static const char *const forms[] = {"xxxx:xx:xx.f", "xx:xx.f"};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		const char *f = forms[i];
		size_t k = 0;

		for (; f[k] != '\0' && s[k] != '\0'; k++) {
			if (f[k] == 'x' && !isxdigit((unsigned char)s[k]))
				break;
			if (f[k] == 'f' && (s[k] < '0' || s[k] > '7'))
				break;
			if (f[k] != 'x' && f[k] != 'f' && f[k] != s[k])
				break;
		}
		if (f[k] == '\0' && s[k] == '\0')
			return true;
	}
	return false;
}

/* net_<driver>[,key=value]... as rte_vdev / --vdev take it. */
static bool conf_is_vdev(const char *s)
{
	const char *lower = "abcdefghijklmnopqrstuvwxyz0123456789_";
	size_t n;

	if (strncmp(s, "net_", 4) != 0)
		return false;
	n = strspn(s + 4, lower);
	if (n == 0)
		return false;
	s += 4 + n;
	while (*s == ',') {
		s++;
		n = strspn(s, lower);
		if (n == 0 || s[n] != '=')
			return false;
		s += n + 1;
		n = 0;
		while (s[n] != '\0' && s[n] != ',' && isgraph((unsigned char)s[n]))
			n++;
		if (n == 0)
			return false;
		s += n;
	}
	return *s == '\0';
}

static int conf_val_device(const struct conf_key *k, const char *s, void *dst, char *why,
                           size_t whylen)
{
	(void)k;
	if (strlen(s) >= CONF_DEVICE_MAX)
		return conf_why(why, whylen, "longer than %d bytes", CONF_DEVICE_MAX - 1);
	if (!conf_is_pci(s) && !conf_is_vdev(s))
		return conf_why(why, whylen,
		                "expected a PCI address (0000:03:00.0) or a DPDK"
		                " vdev spec (net_af_packet0,iface=dp0)");
	snprintf(dst, CONF_DEVICE_MAX, "%s", s);
	return 0;
}

/* A port's IPv4 address: the host part must name a host, not the subnet itself. */
static int conf_val_port_prefix4(struct pg_conf_port *port, const char *s, char *why, size_t whylen)
{
	const char *bad;
	uint32_t host;
	uint8_t len;

	if (conf_parse_prefix(s, &host, &len, why, whylen) != 0)
		return PG_ERROR;
	if ((bad = conf_not_unicast(host)) != NULL)
		return conf_why(why, whylen, "%s", bad);
	if (len == 0)
		return conf_why(why, whylen, "prefix length must be 1..32 for a port");
	/* RFC 3021 makes /31 host bits usable; /32 is a single address */
	if (len < 31 && (host & ~conf_mask(len)) == 0)
		return conf_why(why, whylen, "host part is zero (that is the subnet address)");
	if (len < 31 && (host & ~conf_mask(len)) == ~conf_mask(len))
		return conf_why(why, whylen,
		                "host part is all ones (that is the broadcast"
		                " address)");
	port->addr = htonl(host);
	port->prefix_len = len;
	return 0;
}

static const char *conf_next_elem(const char *s, char *elem, size_t elemlen, bool *too_long);

/* The reason about one element of a list value; the element is named only in a longer list. */
static int conf_elem_why(char *why, size_t whylen, const char *value, const char *elem,
                         const char *inner)
{
	if (strcmp(value, elem) == 0)
		return conf_why(why, whylen, "%s", inner);
	return conf_why(why, whylen, "\"%s\": %s", elem, inner);
}

/* One element of a per-family list, is6 telling which family; the reason in why. */
typedef int (*conf_family_fn)(bool is6, const char *elem, void *arg, char *why, size_t whylen);

/*
 * A value of at most one element of each family, comma/space separated
 * ("198.18.0.1/24, 2001:db8:18::1/64"; a ':' makes an element IPv6), each
 * handed to fn. `what` names an element in the messages.
 */
static int conf_per_family(const char *s, const char *what, conf_family_fn fn, void *arg, char *why,
                           size_t whylen)
{
	char elem[CONF6_ROUTE_TEXT], inner[200];
	bool too_long, seen[2] = {false, false};
	const char *cur = s;

	while ((cur = conf_next_elem(cur, elem, sizeof(elem), &too_long)) != NULL) {
		bool is6 = strchr(elem, ':') != NULL;

		if (too_long)
			return conf_why(why, whylen, "\"%.40s...\" too long", elem);
		if (seen[is6])
			return conf_why(why, whylen, "more than one %s %s (one of each family)",
			                is6 ? "IPv6" : "IPv4", what);
		if (fn(is6, elem, arg, inner, sizeof(inner)) != 0)
			return conf_elem_why(why, whylen, s, elem, inner);
		seen[is6] = true;
	}
	return 0;
}

static int conf_port_family(bool is6, const char *elem, void *arg, char *why, size_t whylen)
{
	return is6 ? conf6_port_address(elem, arg, why, whylen)
	           : conf_val_port_prefix4(arg, elem, why, whylen);
}

/* portN_address: an IPv4 prefix, an IPv6 prefix (conf_ipv6.c), or one of each. */
static int conf_val_port_prefix(const struct conf_key *k, const char *s, void *dst, char *why,
                                size_t whylen)
{
	struct pg_conf_port *port = (struct pg_conf_port *)((char *)dst - k->offset);

	if (strpbrk(s, ":, \t") == NULL)
		return conf_val_port_prefix4(port, s, why, whylen);
	return conf_per_family(s, "address", conf_port_family, port, why, whylen);
}

static int conf_val_ipv4(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen);

struct conf_gateway_arg {
	const struct conf_key *k;
	void *dst;
};

static int conf_gateway_family(bool is6, const char *elem, void *arg, char *why, size_t whylen)
{
	struct conf_gateway_arg *g = arg;

	if (is6)
		return conf6_default_gateway(
		    elem, (struct pg_conf *)((char *)g->dst - g->k->offset), why, whylen);
	return conf_val_ipv4(g->k, elem, g->dst, why, whylen);
}

static int conf_val_ipv4(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen)
{
	const char *bad;
	uint32_t host;

	/* default_gateway: IPv6 elements, and a list of one of each, go to conf_ipv6.c */
	if (strpbrk(s, ":, \t") != NULL) {
		struct conf_gateway_arg g = {.k = k, .dst = dst};

		*(uint32_t *)dst = 0;
		return conf_per_family(s, "gateway", conf_gateway_family, &g, why, whylen);
	}
	if (*s == '\0') {
		*(uint32_t *)dst = 0; /* explicitly none */
		return 0;
	}
	if (conf_parse_ip(s, &host) != 0)
		return conf_why(why, whylen, "not an IPv4 address");
	if ((bad = conf_not_unicast(host)) != NULL)
		return conf_why(why, whylen, "%s", bad);
	*(uint32_t *)dst = htonl(host);
	return 0;
}

static int conf_val_shm_name(const struct conf_key *k, const char *s, void *dst, char *why,
                             size_t whylen)
{
	size_t n = strlen(s);

	(void)k;
	if (n == 0 || n > CONF_SHM_NAME_MAX ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n ||
	    strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return conf_why(why, whylen, "expected 1..%d characters from [A-Za-z0-9_.-]",
		                CONF_SHM_NAME_MAX);
	snprintf(dst, CONF_SHM_NAME_MAX + 1, "%s", s);
	return 0;
}

/* An absolute path of at most max - 1 bytes naming a `what`, not a directory. */
static int conf_check_path(const char *value, size_t max, const char *limit, const char *what,
                           char *why, size_t whylen)
{
	size_t n = strlen(value);

	if (value[0] != '/')
		return conf_why(why, whylen, "must be an absolute path");
	if (n >= max)
		return conf_why(why, whylen, "longer than %zu bytes%s", max - 1, limit);
	if (value[n - 1] == '/')
		return conf_why(why, whylen, "names a directory, not a %s", what);
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)value[i]))
			return conf_why(why, whylen, "contains whitespace or control characters");
	return 0;
}

int conf_check_socket_path(const char *value, char *why, size_t whylen)
{
	return conf_check_path(value, CONF_SOCKET_MAX, " (the limit of a Unix socket path)",
	                       "socket", why, whylen);
}

static int conf_val_log_path(const struct conf_key *k, const char *s, void *dst, char *why,
                             size_t whylen)
{
	if (conf_check_path(s, k->width, "", "file", why, whylen) != 0)
		return PG_ERROR;
	snprintf(dst, k->width, "%s", s);
	return 0;
}

int conf_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *why,
                      size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':'), *h = s, *d;
	size_t hlen;
	unsigned long port = 0;

	if (colon == NULL || colon == s || colon[1] == '\0')
		return conf_why(why, whylen, "expected ADDRESS:PORT, e.g. 127.0.0.1:9465");
	for (d = colon + 1; *d != '\0'; d++) {
		if (!isdigit((unsigned char)*d) || port > 65535)
			return conf_why(why, whylen, "port must be 1..65535");
		port = port * 10 + (unsigned long)(*d - '0');
	}
	if (port == 0 || port > 65535)
		return conf_why(why, whylen, "port must be 1..65535");
	hlen = (size_t)(colon - s);
	if (s[0] == '[' && colon[-1] == ']') {
		h = s + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		hlen = sizeof(host) - 1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (h == s && inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		*sslen = sizeof(struct sockaddr_in);
		return 0;
	}
	if (h != s && inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(struct sockaddr_in6);
		return 0;
	}
	return conf_why(why, whylen,
	                "\"%.*s\" is not an IPv4 address or a bracketed IPv6 address ([::1])",
	                (int)(colon - s), s);
}

static int conf_val_listen(const struct conf_key *k, const char *s, void *dst, char *why,
                           size_t whylen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (strlen(s) >= k->width)
		return conf_why(why, whylen, "longer than %zu bytes", k->width - 1);
	if (*s != '\0' && conf_parse_listen(s, &ss, &len, why, whylen) != 0)
		return PG_ERROR; /* empty: no /metrics endpoint */
	snprintf(dst, k->width, "%s", s);
	return 0;
}

/* An existing group, by name (POSIX portable names, no leading '-'). */
static int conf_val_group(struct pg_conf *c, const char *s, char *why, size_t whylen)
{
	size_t n = strlen(s);
	struct group gr, *res = NULL;
	char buf[16384];

	c->control_group[0] = '\0';
	c->control_gid = 0;
	if (n == 0)
		return 0;
	if (n > CONF_GROUP_MAX || s[0] == '-' ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
		return conf_why(why, whylen, "expected a group name: 1..%d characters from"
		                " [A-Za-z0-9_.-]", CONF_GROUP_MAX);
	if (getgrnam_r(s, &gr, buf, sizeof(buf), &res) != 0 || res == NULL)
		return conf_why(why, whylen, "no such group");
	snprintf(c->control_group, sizeof(c->control_group), "%s", s);
	c->control_gid = (uint32_t)gr.gr_gid;
	return 0;
}

static int conf_val_socket(const struct conf_key *k, const char *s, void *dst, char *why,
                           size_t whylen)
{
	(void)k;
	if (conf_check_socket_path(s, why, whylen) != 0)
		return PG_ERROR;
	snprintf(dst, CONF_SOCKET_MAX, "%s", s);
	return 0;
}

/* static_routes: syntax only here; gateways are checked in the second pass. */
static int conf_val_routes(struct conf_parser *p, const char *s, char *why, size_t whylen)
{
	const char *cur = s;

	p->nstatic = 0;
	p->v6.nstatic = 0;
	if (*s == '\0')
		return 0;
	for (;;) {
		const char *comma = strchr(cur, ',');
		size_t n = comma != NULL ? (size_t)(comma - cur) : strlen(cur);
		char elem[CONF6_ROUTE_TEXT], pfx[CONF_ROUTE_TEXT], via[8], gw[CONF_ROUTE_TEXT];
		struct conf_static_route *r;
		uint32_t host, gwhost;
		char extra;
		const char *bad;
		bool is6;

		while (n > 0 && isspace((unsigned char)*cur))
			cur++, n--;
		while (n > 0 && isspace((unsigned char)cur[n - 1]))
			n--;
		if (n == 0)
			return conf_why(why, whylen, "empty route in the list");
		/* IPv6 routes are longer: they get a longer limit */
		is6 = memchr(cur, ':', n) != NULL;
		if (n >= (is6 ? CONF6_ROUTE_TEXT : CONF_ROUTE_TEXT))
			return conf_why(why, whylen, "route \"%.*s...\" too long", 40, cur);
		memcpy(elem, cur, n);
		elem[n] = '\0';
		if (is6) {
			/* an IPv6 route (conf_ipv6.c) */
			if (conf6_static_route(&p->v6, elem, why, whylen) != 0)
				return -1;
			if (comma == NULL)
				return 0;
			cur = comma + 1;
			continue;
		}
		if (p->nstatic >= SNAP_MAX_ROUTES - SNAP_MAX_PORTS - 1)
			return conf_why(why, whylen, "more than %d static routes",
			                SNAP_MAX_ROUTES - SNAP_MAX_PORTS - 1);
		r = &p->statics[p->nstatic];
		if (sscanf(elem, "%79s %7s %79s %c", pfx, via, gw, &extra) != 3 ||
		    strcmp(via, "via") != 0)
			return conf_why(why, whylen, "\"%s\": expected PREFIX/LEN via GATEWAY",
			                elem);
		if (conf_parse_prefix(pfx, &host, &r->len, why, whylen) != 0) {
			char inner[160];

			snprintf(inner, sizeof(inner), "%s", why);
			return conf_why(why, whylen, "\"%s\": %s", elem, inner);
		}
		if ((host & ~conf_mask(r->len)) != 0) {
			char fix[INET_ADDRSTRLEN];

			conf_fmt_ip(htonl(host & conf_mask(r->len)), fix, sizeof(fix));
			return conf_why(why, whylen,
			                "\"%s\": host bits of %s are not zero (did you"
			                " mean %s/%u?)",
			                elem, pfx, fix, r->len);
		}
		if (conf_parse_ip(gw, &gwhost) != 0)
			return conf_why(why, whylen,
			                "\"%s\": gateway \"%s\" is not an IPv4 address", elem, gw);
		if ((bad = conf_not_unicast(gwhost)) != NULL)
			return conf_why(why, whylen, "\"%s\": gateway %s", elem, bad);
		r->prefix = htonl(host);
		r->gateway = htonl(gwhost);
		snprintf(r->text, sizeof(r->text), "%.*s", CONF_ROUTE_TEXT - 1, elem); /* n < 80 */
		p->nstatic++;
		if (comma == NULL)
			return 0;
		cur = comma + 1;
	}
}

/* Next element of a list separated by commas and/or whitespace (Postfix). */
static const char *conf_next_elem(const char *s, char *elem, size_t elemlen, bool *too_long)
{
	size_t n;

	s += strspn(s, ", \t");
	n = strcspn(s, ", \t");
	*too_long = n >= elemlen;
	if (n == 0)
		return NULL;
	snprintf(elem, elemlen, "%.*s", (int)(n < elemlen ? n : elemlen - 1), s);
	return s + n;
}

/*
 * mynetworks (Postfix postconf(5) mynetworks): IPv4 "address/len" or a bare
 * address (/32); IPv6 "[address]/len" or "[address]" (/128), brackets
 * optional (conf_ipv6.c conf6_network). Host bits must be zero (Postfix refuses "non-null host
 * address bits"); a network shorter than /8 would make Postern an open
 * relay for a good part of the Internet and is refused.
 */
static int conf_parse_networks(const char *key, bool relay, const char *s,
                               struct pg_conf_cidr *nets, uint32_t *nnets, char *why, size_t whylen)
{
	char elem[64];
	bool too_long;

	*nnets = 0;
	while ((s = conf_next_elem(s, elem, sizeof(elem), &too_long)) != NULL) {
		struct pg_conf_cidr *n;
		char inner[160];
		uint32_t host;
		uint8_t len = 32;

		if (too_long)
			return conf_why(why, whylen, "\"%s...\": not an IPv4 or IPv6 network",
			                elem);
		if (*nnets == CONF_MYNETWORKS_MAX)
			return conf_why(why, whylen, "more than %d networks", CONF_MYNETWORKS_MAX);
		if (strchr(elem, '[') != NULL || strchr(elem, ':') != NULL) {
			struct pg_conf_cidr v6;

			if (strchr(elem, '[') == NULL && strchr(elem, ':') == strrchr(elem, ':'))
				return conf_why(why, whylen,
				                "\"%s\": lookup tables are not supported in %s",
				                elem, key);
			if (conf6_network(elem, relay, &v6, why, whylen) != 0)
				return -1;
			for (uint32_t i = 0; i < *nnets; i++)
				if (nets[i].v6 && nets[i].len == v6.len &&
				    memcmp(nets[i].addr6, v6.addr6, 16) == 0)
					return conf_why(why, whylen, "\"%s\": listed twice", elem);
			nets[(*nnets)++] = v6;
			continue;
		}
		if (strchr(elem, '/') != NULL) {
			if (elem[0] == '/')
				return conf_why(why, whylen,
				                "\"%s\": files are not supported in %s", elem, key);
			if (conf_parse_prefix(elem, &host, &len, inner, sizeof(inner)) != 0)
				return conf_why(why, whylen, "\"%s\": %s", elem, inner);
		} else if (conf_parse_ip(elem, &host) != 0) {
			return conf_why(why, whylen,
			                "\"%s\": expected an IPv4 network, e.g. 198.18.0.0/24",
			                elem);
		}
		if ((host & ~conf_mask(len)) != 0) {
			char fix[INET_ADDRSTRLEN];

			conf_fmt_ip(htonl(host & conf_mask(len)), fix, sizeof(fix));
			return conf_why(why, whylen,
			                "\"%s\": host bits are not zero (did you mean %s/%u?)",
			                elem, fix, len);
		}
		if (relay && len < 8)
			return conf_why(why, whylen,
			                "\"%s\": a /%u network would make Postern an open"
			                " relay (shortest allowed: /8)",
			                elem, len);
		for (uint32_t i = 0; i < *nnets; i++)
			if (!nets[i].v6 && nets[i].prefix == htonl(host) && nets[i].len == len)
				return conf_why(why, whylen, "\"%s\": listed twice", elem);
		n = &nets[(*nnets)++];
		memset(n, 0, sizeof(*n));
		n->prefix = htonl(host);
		n->len = len;
	}
	return 0;
}

static int conf_val_networks(struct pg_conf *c, const char *s, char *why, size_t whylen)
{
	return conf_parse_networks("mynetworks", true, s, c->mynetworks, &c->nmynetworks, why,
	                           whylen);
}

/*
 * smtpd_tls_required_networks: clients from these networks must use TLS
 * (the syntax of mynetworks; any prefix length, requiring TLS opens
 * nothing).
 */
static int conf_val_tls_networks(struct pg_conf *c, const char *s, char *why, size_t whylen)
{
	return conf_parse_networks("smtpd_tls_required_networks", false, s, c->smtpd_tls.networks,
	                           &c->smtpd_tls.nnetworks, why, whylen);
}

/*
 * relay_domains: "domain" matches that domain only, ".domain" its
 * sub-domains only. Postfix's default parent_domain_matches_subdomains
 * lets "domain" match sub-domains too; Postern does not, so a relay
 * domain never opens the relay for names the operator did not write.
 */
static int conf_parse_domains(const char *key, const char *star, const char *s, char *list,
                              uint32_t *nlist, char *why, size_t whylen)
{
	char elem[300], norm[300], inner[POLICY_WHY_MAX];
	size_t used = 0;
	bool too_long;

	*nlist = 0;
	list[0] = '\0';
	while ((s = conf_next_elem(s, elem, sizeof(elem), &too_long)) != NULL) {
		if (too_long)
			return conf_why(why, whylen, "\"%.60s...\": longer than 253 characters",
			                elem);
		if (strcmp(elem, "*") == 0 || strcmp(elem, ".") == 0)
			return conf_why(why, whylen, "\"%s\" %s", elem, star);
		if (strchr(elem, ':') != NULL || elem[0] == '/' || elem[0] == '$')
			return conf_why(why, whylen,
			                "\"%.60s\": lookup tables, files and $parameters are not"
			                " supported in %s",
			                elem, key);
		if (policy_check_domain(elem, true, norm, sizeof(norm), inner, sizeof(inner)) != 0)
			return conf_why(why, whylen, "\"%.60s\": %s", elem, inner);
		for (const char *d = list; *d != '\0';) {
			size_t n = strcspn(d, " ");

			if (n == strlen(norm) && strncmp(d, norm, n) == 0)
				return conf_why(why, whylen, "\"%s\": listed twice", elem);
			d += n + (d[n] == ' ');
		}
		if (used + strlen(norm) + 2 > CONF_RELAY_DOMAINS_MAX)
			return conf_why(why, whylen, "list longer than %d bytes",
			                CONF_RELAY_DOMAINS_MAX);
		used += (size_t)snprintf(list + used, CONF_RELAY_DOMAINS_MAX - used, "%s%s",
		                         used ? " " : "", norm);
		(*nlist)++;
	}
	return 0;
}

static int conf_val_domains(struct pg_conf *c, const char *s, char *why, size_t whylen)
{
	return conf_parse_domains("relay_domains", "would make Postern an open relay", s,
	                          c->relay_domains, &c->nrelay_domains, why, whylen);
}

/*
 * smtpd_tls_required_senders: MAIL FROM a listed partner domain ("domain"
 * exactly, ".domain" its sub-domains, as in relay_domains) must come over
 * TLS. An inline list rather than a file: partner lists are short, and one
 * file keeps every inbound TLS setting in view.
 */
static int conf_val_tls_senders(struct pg_conf *c, const char *s, char *why, size_t whylen)
{
	return conf_parse_domains("smtpd_tls_required_senders",
	                          "would match every sender: to require TLS of every client,"
	                          " set smtpd_tls_security_level = encrypt",
	                          s, c->smtpd_tls.senders, &c->smtpd_tls.nsenders, why, whylen);
}

/*
 * smtpd_tls_required_recipients: RCPT TO a listed domain ("domain" exactly,
 * ".domain" its sub-domains) must come over TLS, for the hosted customers
 * who ask for it; other recipients of the same session are not affected.
 */
static int conf_val_tls_recipients(struct pg_conf *c, const char *s, char *why, size_t whylen)
{
	return conf_parse_domains("smtpd_tls_required_recipients",
	                          "would match every recipient: to require TLS of every client,"
	                          " set smtpd_tls_security_level = encrypt",
	                          s, c->smtpd_tls.recipients, &c->smtpd_tls.nrecipients, why,
	                          whylen);
}

/*
 * tls_certificates: PEM files, each the private key and its chain (leaf
 * first), like Postfix smtpd_tls_chain_files. Only the list is checked here;
 * control/certs.c opens and validates the files.
 */
static int conf_val_files(struct pg_conf *c, const char *s, char *why, size_t whylen)
{
	char elem[CONF_PATH_MAX];
	size_t used = 0;
	bool too_long;

	c->ntls_certificates = 0;
	c->tls_certificates[0] = '\0';
	while ((s = conf_next_elem(s, elem, sizeof(elem), &too_long)) != NULL) {
		if (too_long)
			return conf_why(why, whylen, "\"%.60s...\": path longer than %d bytes",
			                elem, CONF_PATH_MAX - 1);
		for (const char *d = c->tls_certificates; *d != '\0';) {
			size_t n = strcspn(d, " ");

			if (n == strlen(elem) && strncmp(d, elem, n) == 0)
				return conf_why(why, whylen, "\"%.100s\": listed twice", elem);
			d += n + (d[n] == ' ');
		}
		if (c->ntls_certificates == CONF_TLS_CERT_FILES_MAX)
			return conf_why(why, whylen, "more than %d files", CONF_TLS_CERT_FILES_MAX);
		if (used + strlen(elem) + 2 > sizeof(c->tls_certificates))
			return conf_why(why, whylen, "list longer than %d bytes",
			                CONF_TLS_CERTIFICATES_MAX);
		used +=
		    (size_t)snprintf(c->tls_certificates + used, sizeof(c->tls_certificates) - used,
		                     "%s%s", used ? " " : "", elem);
		c->ntls_certificates++;
	}
	return 0;
}

/*
 * smtp_tls_CAfile: one PEM bundle (Postfix reads a single file here; a
 * directory of hashed names, smtp_tls_CApath, is not supported). Only the
 * name is checked here; control/trust.c reads the certificates.
 */
static int conf_val_file(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen)
{
	for (const char *c = s; *c != '\0'; c++)
		if (!isgraph((unsigned char)*c))
			return conf_why(why, whylen,
			                "one file name without whitespace or control characters");
	if (strlen(s) >= k->width)
		return conf_why(why, whylen, "path longer than %zu bytes", k->width - 1);
	snprintf(dst, k->width, "%s", s);
	return 0;
}

/* dns_trust_anchor_file and the like: postern-dp opens them, from / */
static int conf_val_absfile(const struct conf_key *k, const char *s, void *dst, char *why,
                            size_t whylen)
{
	if (*s != '\0' && *s != '/')
		return conf_why(why, whylen,
		                "an absolute path (postern-dp reads it, not posternd)");
	return conf_val_file(k, s, dst, why, whylen);
}

/* dns_resolvers: "198.18.255.53, 198.18.255.54" (port 53), at most SNAP_DNS_RESOLVERS_MAX. */
static int conf_val_resolvers(const struct conf_key *k, const char *s, void *dst, char *why,
                              size_t whylen)
{
	struct pg_conf_dns *d = dst;
	char buf[512], *save = NULL;
	uint32_t host;

	(void)k;
	if (strlen(s) >= sizeof(buf))
		return conf_why(why, whylen, "longer than %zu bytes", sizeof(buf) - 1);
	snprintf(buf, sizeof(buf), "%s", s);
	d->nresolvers = 0;
	for (char *t = strtok_r(buf, ", \t", &save); t != NULL; t = strtok_r(NULL, ", \t", &save)) {
		if (d->nresolvers == SNAP_DNS_RESOLVERS_MAX)
			return conf_why(why, whylen, "more than %d resolvers",
			                SNAP_DNS_RESOLVERS_MAX);
		if (conf_parse_ip(t, &host) != 0 || conf_not_unicast(host) != NULL)
			return conf_why(why, whylen, "\"%s\" is not a unicast IPv4 address", t);
		d->resolvers[d->nresolvers++] = htonl(host);
	}
	return 0;
}

/*
 * smtpd_tls_session_cache_timeout: 0 turns session tickets off (Postfix: a
 * value <= 0 disables session caching, tickets included); anything else
 * in whole seconds within [min, max]. A negative value is refused like any
 * other value that is not a time.
 */
static int conf_val_session_timeout(const struct conf_key *k, const char *s, void *dst, char *why,
                                    size_t whylen)
{
	static const struct conf_key any = {.min = 0, .max = UINT64_MAX};
	char lo[32], hi[32];
	uint64_t v = 0;

	int rc = conf_val_time_step(&any, S, s, &v, why, whylen);

	/* a value whose nanoseconds overflow is out of range, like any too big */
	if (rc != 0 && strncmp(why, "must be between", 15) != 0)
		return PG_ERROR;
	if (rc != 0 || (v != 0 && (v < k->min || v > k->max))) {
		conf_fmt_time(k->min, lo, sizeof(lo));
		conf_fmt_time(k->max, hi, sizeof(hi));
		return conf_why(why, whylen,
		                "must be 0 (no session tickets) or between %s and %s (RFC 8446"
		                " §4.6.1: a ticket lives at most 7 days)",
		                lo, hi);
	}
	*(uint64_t *)dst = v;
	return 0;
}

/*
 * delivery_retry_schedule = 5m 10m 20m 40m 67m: the wait before attempt
 * 2, 3, ... of a deferred message, the last repeating until
 * maximal_queue_lifetime. Postern's own key: Postfix derives its waits from
 * minimal_backoff_time and maximal_backoff_time (this default writes them
 * out), and an explicit list says what happens without arithmetic. Any
 * order is allowed (a quick second try, then longer waits, or not).
 */
static int conf_val_schedule(const struct conf_key *k, const char *s, void *dst, char *why,
                             size_t whylen)
{
	static const struct conf_key wait = {.min = S, .max = SNAP_DELIVERY_RETRY_MAX_S * S};
	struct pg_conf_delivery *d = dst;
	char elem[32], inner[160];
	bool too_long;

	(void)k;
	d->nschedule = 0;
	memset(d->schedule_ns, 0, sizeof(d->schedule_ns));
	while ((s = conf_next_elem(s, elem, sizeof(elem), &too_long)) != NULL) {
		if (too_long)
			return conf_why(why, whylen, "\"%s...\": not a time", elem);
		if (d->nschedule == SNAP_DELIVERY_SCHEDULE_MAX)
			return conf_why(why, whylen, "more than %d waits",
			                SNAP_DELIVERY_SCHEDULE_MAX);
		if (conf_val_time_step(&wait, S, elem, &d->schedule_ns[d->nschedule], inner,
		                       sizeof(inner)) != 0)
			return conf_why(why, whylen, "\"%s\": %s", elem, inner);
		d->nschedule++;
	}
	if (d->nschedule == 0)
		return conf_why(why, whylen, "expected 1..%d waits, e.g. 5m 10m 20m 40m 67m",
		                SNAP_DELIVERY_SCHEDULE_MAX);
	return 0;
}

/* Next whitespace-separated word of s into word; NULL at the end. */
static const char *conf_next_word(const char *s, char *word, size_t wordlen, bool *too_long)
{
	size_t n;

	s += strspn(s, " \t");
	n = strcspn(s, " \t");
	*too_long = n >= wordlen;
	if (n == 0)
		return NULL;
	snprintf(word, wordlen, "%.*s", (int)(n < wordlen ? n : wordlen - 1), s);
	return s + n;
}

/*
 * diag_client = HOST:PORT MODE BYTES [COUNT] (dataplane/diag/diag.h):
 * worker 0 of the dataplane connects to HOST:PORT and runs MODE (echo,
 * discard, source) with BYTES of the test pattern, COUNT times in a row
 * (default 1), each time the setting changes. Empty = none.
 */
static int conf_val_diag_client(const struct conf_key *k, const char *s, void *dst, char *why,
                                size_t whylen)
{
	static const char *const modes[] = {"echo", "discard", "source"};
	struct pg_conf_diag_client *d = dst;
	char words[4][64], ip[INET6_ADDRSTRLEN];
	const char *colon, *end, *bad;
	unsigned nw = 0;
	bool too_long = false;
	uint64_t v;
	uint32_t host;

	(void)k;
	memset(d, 0, sizeof(*d));
	if (*s == '\0')
		return 0;
	for (const char *cur = s; nw < 5; nw++) {
		char extra[64];

		cur = conf_next_word(cur, nw < 4 ? words[nw] : extra, sizeof(extra), &too_long);
		if (cur == NULL || too_long)
			break;
	}
	if (too_long || nw < 3 || nw > 4)
		return conf_why(why, whylen,
		                "expected HOST:PORT MODE BYTES [COUNT], e.g. 198.19.0.2:5001 echo"
		                " 104857600");
	if (words[0][0] == '[') {
		/* [IPv6]:PORT (conf_ipv6.c); link-local has no zone in a TCP tuple */
		const char *close = strchr(words[0], ']');
		char inner[160];

		if (close == NULL || close[1] != ':' ||
		    (size_t)(close - words[0] - 1) >= sizeof(ip))
			return conf_why(why, whylen, "\"%s\": expected [IPv6]:PORT", words[0]);
		snprintf(ip, sizeof(ip), "%.*s", (int)(close - words[0] - 1), words[0] + 1);
		if (conf6_parse_addr(ip, d->addr6, NULL, inner, sizeof(inner)) != 0)
			return conf_why(why, whylen, "%s", inner);
		if (d->addr6[0] == 0xfe && (d->addr6[1] & 0xc0) == 0x80)
			return conf_why(why, whylen, "%s: a link-local address (no TCP there)", ip);
		d->v6 = true;
		colon = close + 1;
	} else {
		colon = strchr(words[0], ':');
		if (colon == NULL || (size_t)(colon - words[0]) >= INET_ADDRSTRLEN)
			return conf_why(why, whylen, "\"%s\": expected IPv4:PORT", words[0]);
		snprintf(ip, sizeof(ip), "%.*s", (int)(colon - words[0]), words[0]);
		if (conf_parse_ip(ip, &host) != 0)
			return conf_why(why, whylen, "\"%s\" is not an IPv4 address", ip);
		if ((bad = conf_not_unicast(host)) != NULL)
			return conf_why(why, whylen, "%s: %s", ip, bad);
		d->addr = htonl(host);
	}
	if (conf_parse_u64(colon + 1, &v, &end) != 0 || *end != '\0' || v == 0 || v > 65535)
		return conf_why(why, whylen, "port \"%s\" must be 1..65535", colon + 1);
	d->port = (uint16_t)v;
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(words[1], modes[i]) == 0)
			d->mode = (uint8_t)(i + 1);
	if (d->mode == 0)
		return conf_why(why, whylen, "unknown mode \"%s\" (echo, discard or source)",
		                words[1]);
	if (conf_parse_u64(words[2], &v, &end) != 0 || *end != '\0' || v == 0 ||
	    v > SNAP_DIAG_BYTES_MAX)
		return conf_why(why, whylen, "bytes \"%s\" must be 1..%" PRIu64 " (2^40)", words[2],
		                SNAP_DIAG_BYTES_MAX);
	d->bytes = v;
	d->count = 1;
	if (nw == 4) {
		if (conf_parse_u64(words[3], &v, &end) != 0 || *end != '\0' || v == 0 ||
		    v > SNAP_DIAG_COUNT_MAX)
			return conf_why(why, whylen, "count \"%s\" must be 1..%u", words[3],
			                SNAP_DIAG_COUNT_MAX);
		d->count = (uint32_t)v;
	}
	d->set = true;
	return 0;
}

static int conf_val_percent(const struct conf_key *k, const char *s, void *dst, char *why,
                            size_t whylen)
{
	const char *end;
	uint64_t v;

	if (conf_parse_u64(s, &v, &end) != 0 || (strcmp(end, "") != 0 && strcmp(end, "%") != 0) ||
	    v < k->min || v > k->max)
		return conf_why(why, whylen,
		                "must be a percentage %" PRIu64 "..%" PRIu64 " (90 or 90%%)",
		                k->min, k->max);
	conf_store_uint(dst, k->width, v);
	return 0;
}

/* spool_directory: an absolute path; trailing slashes are dropped. */
static int conf_val_dir(const struct conf_key *k, const char *s, void *dst, char *why,
                        size_t whylen)
{
	size_t n = strlen(s);

	if (s[0] != '/')
		return conf_why(why, whylen, "must be an absolute path");
	while (n > 1 && s[n - 1] == '/')
		n--;
	if (n == 1)
		return conf_why(why, whylen, "must not be the root directory");
	if (n >= k->width)
		return conf_why(why, whylen, "longer than %zu bytes", k->width - 1);
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return conf_why(why, whylen, "contains whitespace or control characters");
	snprintf(dst, k->width, "%.*s", (int)n, s);
	return 0;
}

/* A host name (RFC 1035 §2.3.1, with RFC 1123 §2.1's leading digits). */
static int conf_check_hostname(const char *s, char *why, size_t whylen)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > SNAP_SMTP_HOSTNAME_MAX)
		return conf_why(why, whylen, "must be 1..%d bytes", SNAP_SMTP_HOSTNAME_MAX);
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0)
				return conf_why(why, whylen, "empty label");
			if (label > 63)
				return conf_why(why, whylen, "label longer than 63 bytes");
			if (s[i - 1] == '-')
				return conf_why(why, whylen, "label ends with a hyphen");
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return conf_why(why, whylen,
			                "only letters, digits, hyphens and dots are allowed");
		if (label == 0 && s[i] == '-')
			return conf_why(why, whylen, "label starts with a hyphen");
		label++;
	}
	return 0;
}

static int conf_val_hostname(const struct conf_key *k, const char *s, void *dst, char *why,
                             size_t whylen)
{
	if (conf_check_hostname(s, why, whylen) != 0)
		return PG_ERROR;
	snprintf(dst, k->width, "%s", s);
	return 0;
}

static int conf_val_relayhost(const struct conf_key *k, const char *s, void *dst, char *why,
                              size_t whylen)
{
	struct transport_nexthop nh;

	if (s[0] != '\0' && transport_parse_nexthop(s, &nh, why, whylen) != 0)
		return PG_ERROR;
	if (strlen(s) >= k->width)
		return conf_why(why, whylen, "too long");
	snprintf(dst, k->width, "%s", s);
	return 0;
}

static int conf_val_bare(const struct conf_key *k, const char *s, void *dst, char *why,
                         size_t whylen)
{
	(void)k;
	if (strcasecmp(s, "reject") == 0)
		*(bool *)dst = false;
	else if (strcasecmp(s, "normalize") == 0)
		*(bool *)dst = true;
	else
		return conf_why(why, whylen, "expected reject or normalize");
	return 0;
}

static int conf_val_tcp_cc(const struct conf_key *k, const char *s, void *dst, char *why,
                           size_t whylen)
{
	(void)k;
	if (strcasecmp(s, "cubic") == 0)
		*(uint8_t *)dst = SNAP_TCP_CC_CUBIC;
	else if (strcasecmp(s, "newreno") == 0)
		*(uint8_t *)dst = SNAP_TCP_CC_NEWRENO;
	else
		return conf_why(why, whylen, "expected cubic or newreno");
	return 0;
}

/*
 * tcp_keepalive = no | IDLE INTERVAL COUNT (RFC 9293 §3.8.4, RFC 1122
 * §4.2.3.6; Linux tcp_keepalive_time/_intvl/_probes): probe after IDLE
 * without hearing from the peer, every INTERVAL, give up after COUNT.
 */
static int conf_val_keepalive(const struct conf_key *k, const char *s, void *dst, char *why,
                              size_t whylen)
{
	static const struct conf_key idle = {.min = SNAP_TCP_KA_IDLE_MIN_NS,
	                                     .max = SNAP_TCP_KA_IDLE_MAX_NS};
	static const struct conf_key intvl = {.min = SNAP_TCP_KA_INTVL_MIN_NS,
	                                      .max = SNAP_TCP_KA_INTVL_MAX_NS};
	struct pg_conf_tcp *t = dst;
	char words[3][32], inner[256];
	unsigned nw = 0;
	bool too_long = false;
	const char *end;
	uint64_t v;

	(void)k;
	t->keepalive_idle_ns = t->keepalive_intvl_ns = 0;
	t->keepalive_probes = 0;
	if (strcasecmp(s, "no") == 0)
		return 0;
	for (const char *cur = s; nw < 4; nw++) {
		char extra[32];

		cur = conf_next_word(cur, nw < 3 ? words[nw] : extra, sizeof(extra), &too_long);
		if (cur == NULL || too_long)
			break;
	}
	if (too_long || nw != 3)
		return conf_why(why, whylen, "expected no or IDLE INTERVAL COUNT, e.g. 2h 75s 9");
	if (conf_val_time(&idle, words[0], &t->keepalive_idle_ns, inner, sizeof(inner)) != 0)
		return conf_why(why, whylen, "IDLE \"%s\": %s", words[0], inner);
	if (conf_val_time(&intvl, words[1], &t->keepalive_intvl_ns, inner, sizeof(inner)) != 0)
		return conf_why(why, whylen, "INTERVAL \"%s\": %s", words[1], inner);
	if (conf_parse_u64(words[2], &v, &end) != 0 || *end != '\0' || v == 0 ||
	    v > SNAP_TCP_KA_PROBES_MAX)
		return conf_why(why, whylen, "COUNT \"%s\" must be 1..%u", words[2],
		                SNAP_TCP_KA_PROBES_MAX);
	t->keepalive_probes = (uint32_t)v;
	return 0;
}

static int conf_val_tls_level(const struct conf_key *k, const char *s, void *dst, char *why,
                              size_t whylen)
{
	(void)k;
	return policy_parse_default_level(s, dst, why, whylen);
}

/*
 * smtpd_tls_security_level: Postfix's server levels. Postfix warns and
 * uses encrypt for fingerprint, verify and secure (smtpd.c pre_jail_init);
 * Postern refuses them, as it refuses every setting it cannot honour.
 */
static int conf_val_smtpd_tls_level(const struct conf_key *k, const char *s, void *dst, char *why,
                                    size_t whylen)
{
	static const char *const levels[] = {
	    [SNAP_TLS_NONE] = "none", [SNAP_TLS_MAY] = "may", [SNAP_TLS_ENCRYPT] = "encrypt"};

	(void)k;
	for (unsigned i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcasecmp(s, levels[i]) == 0) {
			*(uint8_t *)dst = (uint8_t)i;
			return 0;
		}
	}
	return conf_why(why, whylen, "expected none, may or encrypt (the SMTP server's levels)");
}

/*
 * smtpd_tls_protocols, smtpd_tls_mandatory_protocols: Postfix syntax (the
 * parser of tls_policy protocols=, with main.cf's separators). OpenSSL 3
 * has no SSLv2 and Postern never offers SSLv3 (RFC 7568), so they are
 * dropped from the result; a list that leaves nothing else is refused.
 */
static int conf_val_tls_protocols(const struct conf_key *k, const char *s, void *dst, char *why,
                                  size_t whylen)
{
	uint16_t mask;

	(void)k;
	if (policy_parse_protocols(s, ": ,\t", &mask, why, whylen) != 0)
		return PG_ERROR;
	if ((mask & SNAP_INBOUND_TLS_P_ALL) == 0)
		return conf_why(
		    why, whylen,
		    "leaves only SSLv2 or SSLv3, which Postern never offers (RFC 7568)");
	*(uint16_t *)dst = mask & SNAP_INBOUND_TLS_P_ALL;
	return 0;
}

/* ---- first pass: logical lines ---- */

/* Key table lookup; *port receives N of portN_* keys. */
static const struct conf_key *conf_find_key(const char *name, unsigned *port, bool *bad_port)
{
	const char *suffix = name;

	*port = 0;
	*bad_port = false;
	if (strncmp(name, "port", 4) == 0 && isdigit((unsigned char)name[4])) {
		const char *d = name + 4;
		size_t nd = strspn(d, "0123456789");

		if (d[nd] != '_')
			return NULL;
		if (nd != 1 || d[0] - '0' >= SNAP_MAX_PORTS) {
			*bad_port = true;
			return NULL;
		}
		*port = (unsigned)(d[0] - '0');
		suffix = d + 2;
	}
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (conf_keys[i].per_port != (suffix != name))
			continue;
		if (strcmp(conf_keys[i].name, suffix) == 0)
			return &conf_keys[i];
	}
	return NULL;
}

static void conf_key_display(const struct conf_key *k, unsigned port, char *buf, size_t len)
{
	if (k->per_port)
		snprintf(buf, len, "port%u_%s", port, k->name);
	else
		snprintf(buf, len, "%s", k->name);
}

static void *conf_key_dst(struct pg_conf *c, const struct conf_key *k, unsigned port)
{
	if (k->per_port)
		return (char *)&c->ports[port] + k->offset;
	return (char *)c + k->offset;
}

static int conf_apply(struct conf_parser *p, const struct conf_key *k, unsigned port,
                      const char *value, char *why, size_t whylen)
{
	void *dst = conf_key_dst(p->conf, k, port);

	switch (k->type) {
	case CT_UINT:
		return conf_val_uint(k, value, dst, why, whylen);
	case CT_TIME:
		return conf_val_time(k, value, dst, why, whylen);
	case CT_TIME_MS:
		return conf_val_time_step(k, MS, value, dst, why, whylen);
	case CT_LIFETIME:
		return conf_val_lifetime(k, value, dst, why, whylen);
	case CT_SCHEDULE:
		return conf_val_schedule(k, value, dst, why, whylen);
	case CT_SIZE:
		return conf_val_size(k, value, dst, why, whylen);
	case CT_BOOL:
		return conf_val_bool(k, value, dst, why, whylen);
	case CT_DEVICE:
		return conf_val_device(k, value, dst, why, whylen);
	case CT_PREFIX:
		return conf_val_port_prefix(k, value, dst, why, whylen);
	case CT_IPV4:
		return conf_val_ipv4(k, value, dst, why, whylen);
	case CT_ROUTES:
		return conf_val_routes(p, value, why, whylen);
	case CT_SHM_NAME:
		return conf_val_shm_name(k, value, dst, why, whylen);
	case CT_SOCKET:
		return conf_val_socket(k, value, dst, why, whylen);
	case CT_LOG_PATH:
		return conf_val_log_path(k, value, dst, why, whylen);
	case CT_LISTEN:
		return conf_val_listen(k, value, dst, why, whylen);
	case CT_GROUP:
		return conf_val_group(p->conf, value, why, whylen);
	case CT_NETWORKS:
		return conf_val_networks(p->conf, value, why, whylen);
	case CT_DOMAINS:
		return conf_val_domains(p->conf, value, why, whylen);
	case CT_TLS_LEVEL:
		return conf_val_tls_level(k, value, dst, why, whylen);
	case CT_SMTPD_TLS_LEVEL:
		return conf_val_smtpd_tls_level(k, value, dst, why, whylen);
	case CT_TLS_PROTOCOLS:
		return conf_val_tls_protocols(k, value, dst, why, whylen);
	case CT_TLS_NETWORKS:
		return conf_val_tls_networks(p->conf, value, why, whylen);
	case CT_TLS_SENDERS:
		return conf_val_tls_senders(p->conf, value, why, whylen);
	case CT_TLS_RECIPIENTS:
		return conf_val_tls_recipients(p->conf, value, why, whylen);
	case CT_FILES:
		return conf_val_files(p->conf, value, why, whylen);
	case CT_DIAG_CLIENT:
		return conf_val_diag_client(k, value, dst, why, whylen);
	case CT_PERCENT:
		return conf_val_percent(k, value, dst, why, whylen);
	case CT_TCP_CC:
		return conf_val_tcp_cc(k, value, dst, why, whylen);
	case CT_KEEPALIVE:
		return conf_val_keepalive(k, value, dst, why, whylen);
	case CT_DIR:
		return conf_val_dir(k, value, dst, why, whylen);
	case CT_HOSTNAME:
		return conf_val_hostname(k, value, dst, why, whylen);
	case CT_BARE:
		return conf_val_bare(k, value, dst, why, whylen);
	case CT_RELAYHOST:
		return conf_val_relayhost(k, value, dst, why, whylen);
	case CT_FILE:
		return conf_val_file(k, value, dst, why, whylen);
	case CT_SESSION_TIMEOUT:
		return conf_val_session_timeout(k, value, dst, why, whylen);
	case CT_ABSFILE:
		return conf_val_absfile(k, value, dst, why, whylen);
	case CT_RESOLVERS:
		return conf_val_resolvers(k, value, dst, why, whylen);
	}
	return conf_why(why, whylen, "internal: unknown key type");
}

static char *conf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One logical line "key = value" starting at physical line `line`. */
static int conf_logical_line(struct conf_parser *p, char *text, unsigned line)
{
	char *eq = strchr(text, '=');
	const struct conf_key *k;
	char name[64], why[POLICY_WHY_MAX];
	unsigned port, idx;
	bool bad_port;
	char *key, *value;

	if (eq == NULL)
		return conf_error(p, line, "missing \"=\" in \"%.60s\"", conf_trim(text));
	*eq = '\0';
	key = conf_trim(text);
	value = conf_trim(eq + 1);
	if (*key == '\0')
		return conf_error(p, line, "missing key before \"=\"");
	k = conf_find_key(key, &port, &bad_port);
	if (k == NULL && bad_port)
		return conf_error(p, line, "unknown key \"%.60s\": ports are port0..port%d", key,
		                  SNAP_MAX_PORTS - 1);
	if (k == NULL)
		return conf_error(p, line, "unknown key \"%.60s\"", key);
	idx = (unsigned)(k - conf_keys);
	conf_key_display(k, port, name, sizeof(name));
	if (p->line_of[idx][port] != 0)
		return conf_error(p, line, "duplicate key \"%s\" (first set at line %u)", name,
		                  p->line_of[idx][port]);
	p->line_of[idx][port] = line;
	if (conf_apply(p, k, port, value, why, sizeof(why)) != 0) {
		/* a route list can be long: its errors quote just the bad route */
		if (k->type == CT_ROUTES || k->type == CT_NETWORKS || k->type == CT_DOMAINS ||
		    k->type == CT_FILES || k->type == CT_TLS_NETWORKS ||
		    k->type == CT_TLS_SENDERS || k->type == CT_TLS_RECIPIENTS ||
		    k->type == CT_SCHEDULE)
			return conf_error(p, line, "bad value for %s: %s", name, why);
		return conf_error(p, line, "bad value for %s: \"%.100s\": %s", name, value, why);
	}
	return PG_OK;
}

static int conf_read_lines(struct conf_parser *p, const char *text, size_t len)
{
	char *logical = malloc(CONF_LINE_MAX);
	size_t llen = 0;
	unsigned lline = 0, lineno = 0;
	size_t pos = 0;
	int rc = PG_OK;

	if (logical == NULL)
		return conf_error(p, 0, "out of memory");
	while (pos < len && rc == PG_OK) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		const char *phys = text + pos;
		size_t skip = 0;

		lineno++;
		pos += n + (nl != NULL);
		if (n > 0 && phys[n - 1] == '\r')
			n--; /* tolerate files edited on Windows */
		if (memchr(phys, '\0', n) != NULL) {
			rc = conf_error(p, lineno, "NUL byte in line");
			break;
		}
		while (skip < n && isspace((unsigned char)phys[skip]))
			skip++;
		/* Postfix postconf(5): blank and #-lines are ignored entirely */
		if (skip == n || phys[skip] == '#')
			continue;
		if (skip > 0) {
			/* starts with whitespace: continues the logical line */
			if (lline == 0) {
				rc = conf_error(p, lineno,
				                "continuation line (starts with"
				                " whitespace) without a preceding \"key = value\"");
				break;
			}
			if (llen + 1 + (n - skip) >= CONF_LINE_MAX) {
				rc = conf_error(p, lline, "logical line longer than %d bytes",
				                CONF_LINE_MAX);
				break;
			}
			logical[llen++] = ' ';
			memcpy(logical + llen, phys + skip, n - skip);
			llen += n - skip;
			continue;
		}
		if (lline != 0) {
			logical[llen] = '\0';
			rc = conf_logical_line(p, logical, lline);
			if (rc != PG_OK)
				break;
		}
		if (n >= CONF_LINE_MAX) {
			rc = conf_error(p, lineno, "line longer than %d bytes", CONF_LINE_MAX);
			break;
		}
		memcpy(logical, phys, n);
		llen = n;
		lline = lineno;
	}
	if (rc == PG_OK && lline != 0) {
		logical[llen] = '\0';
		rc = conf_logical_line(p, logical, lline);
	}
	free(logical);
	return rc;
}

/* ---- second pass: relations between keys, routes ---- */

static unsigned conf_line(const struct conf_parser *p, const char *name, unsigned port)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return p->line_of[i][port];
	return 0;
}

static bool conf_in_subnet(uint32_t ip_net, const struct pg_conf_port *port)
{
	uint32_t m = conf_mask(port->prefix_len);

	return (ntohl(ip_net) & m) == (ntohl(port->addr) & m);
}

/*
 * A next hop must be a neighbour: inside a connected subnet, and neither
 * our own address nor the subnet or broadcast address there.
 */
static int conf_check_gateway(const struct pg_conf *c, uint32_t gw_net, uint8_t *port_out,
                              char *why, size_t whylen)
{
	char ip[INET_ADDRSTRLEN];

	conf_fmt_ip(gw_net, ip, sizeof(ip));
	for (uint32_t i = 0; i < c->nports; i++) {
		const struct pg_conf_port *pt = &c->ports[i];
		uint32_t hostbits = ntohl(gw_net) & ~conf_mask(pt->prefix_len);

		if (!conf_in_subnet(gw_net, pt))
			continue;
		if (gw_net == pt->addr)
			return conf_why(why, whylen, "gateway %s is port%u's own address", ip, i);
		if (pt->prefix_len < 31 &&
		    (hostbits == 0 || hostbits == ~conf_mask(pt->prefix_len)))
			return conf_why(why, whylen,
			                "gateway %s is the subnet or broadcast address"
			                " of port%u",
			                ip, i);
		*port_out = (uint8_t)i;
		return 0;
	}
	return conf_why(why, whylen, "gateway %s is not in a connected subnet", ip);
}

static int conf_check_ports(struct conf_parser *p)
{
	struct pg_conf *c = p->conf;
	static const char *const others[] = {"address", "mtu"};

	for (unsigned i = 0; i < SNAP_MAX_PORTS; i++) {
		unsigned dev_line = conf_line(p, "device", i);

		if (dev_line == 0) {
			for (size_t o = 0; o < sizeof(others) / sizeof(others[0]); o++) {
				unsigned l = conf_line(p, others[o], i);

				if (l != 0)
					return conf_error(p, l,
					                  "port%u_%s is set but port%u_device"
					                  " is not",
					                  i, others[o], i);
			}
			continue;
		}
		if (i > 0 && conf_line(p, "device", i - 1) == 0)
			return conf_error(p, dev_line,
			                  "port%u_device is set but port%u_device is"
			                  " not: ports must be numbered contiguously from 0",
			                  i, i - 1);
		if (conf_line(p, "address", i) == 0)
			return conf_error(p, dev_line,
			                  "port%u_device is set but port%u_address is"
			                  " missing",
			                  i, i);
		c->nports = i + 1;
	}
	if (c->nports == 0)
		return conf_error(p, 0,
		                  "no port configured: port0_device and port0_address"
		                  " are required");

	for (unsigned j = 1; j < c->nports; j++) {
		for (unsigned i = 0; i < j; i++) {
			const struct pg_conf_port *a = &c->ports[i], *b = &c->ports[j];
			uint8_t len = a->prefix_len < b->prefix_len ? a->prefix_len : b->prefix_len;
			uint32_t m = conf_mask(len);
			size_t na = strcspn(a->device, ","), nb = strcspn(b->device, ",");

			if (na == nb && strncmp(a->device, b->device, na) == 0)
				return conf_error(p, conf_line(p, "device", j),
				                  "port%u_device names"
				                  " the same device as port%u_device (line %u)",
				                  j, i, conf_line(p, "device", i));
			/* an IPv6-only port has no IPv4 subnet to overlap */
			if (a->addr != 0 && b->addr != 0 &&
			    (ntohl(a->addr) & m) == (ntohl(b->addr) & m)) {
				char ip[INET_ADDRSTRLEN];

				conf_fmt_ip(a->addr, ip, sizeof(ip));
				return conf_error(p, conf_line(p, "address", j),
				                  "port%u_address"
				                  " overlaps the subnet of port%u_address %s/%u"
				                  " (line %u)",
				                  j, i, ip, a->prefix_len,
				                  conf_line(p, "address", i));
			}
		}
	}
	return PG_OK;
}

/* The IPv6 side of the ports (conf_ipv6.c): prefixes apart, MTU 1280 at least. */
static int conf_check_ports6(struct conf_parser *p)
{
	enum conf6_key key;
	unsigned port = 0;
	char why[256];

	if (conf6_check_ports(p->conf, &key, &port, why, sizeof(why)) == PG_OK)
		return PG_OK;
	return conf_error(p, conf_line(p, key == CONF6_KEY_MTU ? "mtu" : "address", port), "%s",
	                  why);
}

static int conf_route_cmp(const void *x, const void *y)
{
	const struct pg_conf_route *a = x, *b = y;

	if (a->prefix_len != b->prefix_len)
		return a->prefix_len > b->prefix_len ? -1 : 1;
	/* same length: connected before via-gateway, then by address */
	if ((a->gateway == 0) != (b->gateway == 0))
		return a->gateway == 0 ? -1 : 1;
	if (a->prefix != b->prefix)
		return ntohl(a->prefix) < ntohl(b->prefix) ? -1 : 1;
	return 0;
}

static int conf_compile_routes(struct conf_parser *p)
{
	struct pg_conf *c = p->conf;
	unsigned sr_line = conf_line(p, "static_routes", 0);
	char why[256];

	c->nroutes = 0;
	for (uint32_t i = 0; i < c->nports; i++) {
		struct pg_conf_route *r;

		if (c->ports[i].addr == 0)
			continue; /* IPv6 only */
		r = &c->routes[c->nroutes++];
		r->prefix_len = c->ports[i].prefix_len;
		r->prefix = htonl(ntohl(c->ports[i].addr) & conf_mask(r->prefix_len));
		r->port = (uint8_t)i;
		r->gateway = 0;
	}
	for (unsigned i = 0; i < p->nstatic; i++) {
		const struct conf_static_route *s = &p->statics[i];
		struct pg_conf_route *r;

		if (s->len == 0 && c->default_gateway != 0)
			return conf_error(p, sr_line,
			                  "bad value for static_routes: \"%s\": a"
			                  " default route is already set by default_gateway"
			                  " (line %u)",
			                  s->text, conf_line(p, "default_gateway", 0));
		for (uint32_t j = 0; j < c->nroutes; j++) {
			if (c->routes[j].prefix == s->prefix && c->routes[j].prefix_len == s->len)
				return conf_error(p, sr_line,
				                  "bad value for static_routes: \"%s\":"
				                  " duplicates %s",
				                  s->text,
				                  c->routes[j].gateway == 0
				                      ? "the connected subnet of a port"
				                      : "an earlier route");
		}
		r = &c->routes[c->nroutes];
		if (conf_check_gateway(c, s->gateway, &r->port, why, sizeof(why)) != 0)
			return conf_error(p, sr_line, "bad value for static_routes: \"%s\": %s",
			                  s->text, why);
		r->prefix = s->prefix;
		r->prefix_len = s->len;
		r->gateway = s->gateway;
		c->nroutes++;
	}
	if (c->default_gateway != 0) {
		struct pg_conf_route *r = &c->routes[c->nroutes];
		char ip[INET_ADDRSTRLEN];

		conf_fmt_ip(c->default_gateway, ip, sizeof(ip));
		if (conf_check_gateway(c, c->default_gateway, &r->port, why, sizeof(why)) != 0)
			return conf_error(p, conf_line(p, "default_gateway", 0),
			                  "bad value for"
			                  " default_gateway: \"%s\": %s",
			                  ip, why);
		r->prefix = 0;
		r->prefix_len = 0;
		r->gateway = c->default_gateway;
		c->nroutes++;
	}
	/* the dataplane does a first-match scan, so order is the semantics */
	qsort(c->routes, c->nroutes, sizeof(c->routes[0]), conf_route_cmp);
	return PG_OK;
}

/* The IPv6 route table (conf_ipv6.c); errors at static_routes or default_gateway. */
static int conf_compile_routes6(struct conf_parser *p)
{
	enum conf6_key key;
	char why[320];

	if (conf6_compile_routes(p->conf, &p->v6, &key, why, sizeof(why)) == PG_OK)
		return PG_OK;
	if (key == CONF6_KEY_GATEWAY)
		return conf_error(p, conf_line(p, "default_gateway", 0),
		                  "bad value for default_gateway: %s", why);
	return conf_error(p, conf_line(p, "static_routes", 0), "bad value for static_routes: %s",
	                  why);
}

/*
 * One connection's buffers must fit in the per-worker budget, or the
 * worker could never accept anything. Reported at the last of the three
 * keys set, the one that made them disagree.
 */
static int conf_check_tcp(struct conf_parser *p)
{
	static const char *const keys[] = {"tcp_send_buffer", "tcp_receive_buffer",
	                                   "tcp_buffer_memory_max"};
	const struct pg_conf_tcp *t = &p->conf->tcp;
	char snd[32], rcv[32], mem[32];
	unsigned line = 0;

	if (t->send_buffer + t->receive_buffer <= t->buffer_memory_max)
		return PG_OK;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (conf_line(p, keys[i], 0) > line)
			line = conf_line(p, keys[i], 0);
	conf_fmt_size(t->send_buffer, snd, sizeof(snd));
	conf_fmt_size(t->receive_buffer, rcv, sizeof(rcv));
	conf_fmt_size(t->buffer_memory_max, mem, sizeof(mem));
	return conf_error(p, line,
	                  "tcp_send_buffer (%s) + tcp_receive_buffer (%s) exceed"
	                  " tcp_buffer_memory_max (%s): no connection would fit",
	                  snd, rcv, mem);
}

/*
 * myhostname unset: the machine's name, as Postfix does; "localhost" if the
 * kernel's name is not a host name (an underscore, say).
 */
static void conf_default_hostname(struct pg_conf *c)
{
	char name[SNAP_SMTP_HOSTNAME_MAX + 2], why[128];

	memset(name, 0, sizeof(name));
	if (gethostname(name, sizeof(name) - 1) != 0 ||
	    conf_check_hostname(name, why, sizeof(why)) != 0)
		snprintf(name, sizeof(name), "localhost");
	memcpy(c->smtp.myhostname, name, sizeof(c->smtp.myhostname) - 1);
	c->smtp.myhostname[sizeof(c->smtp.myhostname) - 1] = '\0';
}

/*
 * Inbound TLS requirements that cannot be met are refused here rather than
 * turned into a 530 for every MAIL FROM: a requirement needs STARTTLS
 * offered (level may or encrypt) and a certificate to offer it with.
 */
static int conf_check_smtpd_tls(struct conf_parser *p)
{
	struct pg_conf_smtpd_tls *t = &p->conf->smtpd_tls;
	const char *need = NULL;
	unsigned line = 0;

	t->level_line = conf_line(p, "smtpd_tls_security_level", 0);
	t->networks_line = conf_line(p, "smtpd_tls_required_networks", 0);
	t->senders_line = conf_line(p, "smtpd_tls_required_senders", 0);
	t->protocols_line = conf_line(p, "smtpd_tls_protocols", 0);
	t->mandatory_line = conf_line(p, "smtpd_tls_mandatory_protocols", 0);
	t->recipients_line = conf_line(p, "smtpd_tls_required_recipients", 0);
	if (t->nnetworks > 0) {
		need = "smtpd_tls_required_networks";
		line = t->networks_line;
	} else if (t->nsenders > 0) {
		need = "smtpd_tls_required_senders";
		line = t->senders_line;
	} else if (t->nrecipients > 0) {
		need = "smtpd_tls_required_recipients";
		line = t->recipients_line;
	}
	if (need != NULL && t->level == SNAP_TLS_NONE)
		return conf_error(p, line,
		                  "%s requires TLS, but smtpd_tls_security_level = none (line %u)"
		                  " does not offer STARTTLS",
		                  need, t->level_line);
	if (t->level == SNAP_TLS_ENCRYPT && need == NULL) {
		need = "smtpd_tls_security_level = encrypt";
		line = t->level_line;
	}
	if (need != NULL && p->conf->ntls_certificates == 0)
		return conf_error(p, line,
		                  "%s requires TLS, but tls_certificates is empty: STARTTLS cannot"
		                  " be offered without a certificate",
		                  need);
	return PG_OK;
}

static int conf_defaults(struct conf_parser *p)
{
	char why[256];

	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		unsigned nports = k->per_port ? SNAP_MAX_PORTS : 1;

		if (k->def == NULL)
			continue;
		for (unsigned port = 0; port < nports; port++)
			if (conf_apply(p, k, port, k->def, why, sizeof(why)) != 0)
				return conf_error(p, 0, "internal: default of %s: %s", k->name,
				                  why);
	}
	return PG_OK;
}

int conf_parse_text(const char *dir, const char *text, size_t len, struct pg_conf *out, char *err,
                    size_t errlen)
{
	struct conf_parser *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return PG_ERROR;
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->dir, sizeof(out->dir), "%s", dir);
	snprintf(out->path, sizeof(out->path), "%s/%s", dir, CONF_FILE_NAME);
	p->file = out->path;
	p->conf = out;
	p->err = err;
	p->errlen = errlen;
	rc = conf_defaults(p);
	if (rc == PG_OK)
		rc = conf_read_lines(p, text, len);
	if (rc == PG_OK && conf_line(p, "myhostname", 0) == 0)
		conf_default_hostname(out);
	if (rc == PG_OK)
		rc = conf_check_ports(p);
	if (rc == PG_OK)
		rc = conf_check_ports6(p);
	if (rc == PG_OK)
		rc = conf_compile_routes(p);
	if (rc == PG_OK)
		rc = conf_compile_routes6(p);
	if (rc == PG_OK)
		rc = conf_check_tcp(p);
	if (rc == PG_OK)
		rc = conf_check_smtpd_tls(p);
	out->tls_certificates_line = conf_line(p, "tls_certificates", 0);
	out->smtp_tls_cafile_line = conf_line(p, "smtp_tls_CAfile", 0);
	free(p);
	return rc;
}

static int conf_slurp(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	char why[256];

	if (files_read(path, CONF_FILE_MAX, false, text, len, why, sizeof(why)) != PG_OK) {
		snprintf(err, errlen, "%s: %s", path, why);
		return PG_ERROR;
	}
	return PG_OK;
}

int conf_load(const char *dir, struct pg_conf *out, char *err, size_t errlen)
{
	char path[CONF_PATH_MAX + sizeof(CONF_FILE_NAME) + 1];
	char *text;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, CONF_FILE_NAME);
	if (conf_slurp(path, &text, &len, err, errlen) != PG_OK)
		return PG_ERROR;
	rc = conf_parse_text(dir, text, len, out, err, errlen);
	free(text);
	return rc;
}

int conf_peek(const char *dir, const char *key, char *value, size_t valuelen, char *err,
              size_t errlen)
{
	char path[CONF_PATH_MAX + sizeof(CONF_FILE_NAME) + 1];
	char *text, *line, *save = NULL;
	size_t len;
	int rc = PG_DECLINED;

	snprintf(path, sizeof(path), "%s/%s", dir, CONF_FILE_NAME);
	if (conf_slurp(path, &text, &len, err, errlen) != PG_OK)
		return PG_ERROR;
	/* only single-line settings matter here (paths have no spaces) */
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (isspace((unsigned char)line[0]) || line[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(conf_trim(line), key) == 0) {
			snprintf(value, valuelen, "%s", conf_trim(eq + 1));
			rc = PG_OK;
		}
	}
	free(text);
	return rc;
}
