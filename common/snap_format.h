/*
 * snap_format.h - wire format of a control snapshot (ABI between posternd
 * and postern-dp). A snapshot is one immutable, position-independent blob:
 * a header, a section directory, then section payloads. Offsets only, never
 * pointers, so the same bytes are valid at any mapping address.
 *
 * Integers are host byte order (both processes run on the same machine);
 * IPv4 addresses are stored in network byte order, as on the wire.
 * Bump SNAP_ABI_MAJOR for any incompatible change; readers refuse a major
 * they do not know.
 */
#ifndef PG_SNAP_FORMAT_H
#define PG_SNAP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC 0x4e534750u /* "PGSN" little-endian */
/*
 * major 2: scalar settings moved from the SMTP and delivery sections to
 * the settings section (common/settings.h), declared once.
 * 1.x minors: 1 TLS policy, transport and relay access sections; 2 inbound
 * TLS certificates and keys; 3 diagnostic client request; 4 TCP settings;
 * 5 the inbound SMTP service and the spool; 6 inbound TLS requirements; 7
 * delivery (outbound SMTP) settings; 8 outbound trust anchors and inbound
 * session-ticket keys; 9 hopcount_limit.
 * 2.x minors: 1 sender TLS floors (sender_tls_policy) and inbound TLS
 * required per recipient domain (smtpd_tls_required_recipients); 2 the
 * DNS resolver (SNAP_SEC_DNS); 3 IPv6 (port addresses, routes, the diag
 * client, mynetworks and TLS-required networks over IPv6).
 */
#define SNAP_ABI_MAJOR 2
#define SNAP_ABI_MINOR 3 /* the one place the minor is set */

#define SNAP_MAX_PORTS 8
#define SNAP_MAX_ROUTES 256
#define SNAP_MAX_WORKERS 64

/* Section kinds. A reader skips kinds it does not know (minor bumps). */
enum snap_section_kind {
	SNAP_SEC_STRINGS = 1,   /* char[]: NUL-terminated strings, see snap_str */
	SNAP_SEC_DATAPLANE = 2, /* struct snap_dataplane, count 1 */
	SNAP_SEC_PORTS = 3,     /* struct snap_port[count] */
	SNAP_SEC_ROUTES = 4,    /* struct snap_route[count], longest prefix first */
	/* ABI 1.1: outbound TLS policy, transport table, relay access */
	SNAP_SEC_RELAY = 5,                /* struct snap_relay, count 1 */
	SNAP_SEC_TLS_POLICY = 6,           /* struct snap_tls_policy[count], file order */
	SNAP_SEC_TLS_POLICY_INDEX = 7,     /* uint32_t[count] hash buckets over TLS_POLICY */
	SNAP_SEC_TRANSPORT = 8,            /* struct snap_transport[count], file order */
	SNAP_SEC_TRANSPORT_INDEX = 9,      /* uint32_t[count] hash buckets over TRANSPORT */
	SNAP_SEC_NEXTHOPS = 10,            /* struct snap_nexthop[count], ranges of TRANSPORT */
	SNAP_SEC_MYNETWORKS = 11,          /* struct snap_cidr[count] */
	SNAP_SEC_RELAY_DOMAINS = 12,       /* struct snap_name_key[count] */
	SNAP_SEC_RELAY_DOMAINS_INDEX = 13, /* uint32_t[count] hash buckets over RELAY_DOMAINS */
	/* ABI 1.2: inbound TLS certificates and private keys (see below) */
	SNAP_SEC_TLS_CERTS = 14,      /* struct snap_tls_cert[count], configuration order */
	SNAP_SEC_TLS_CERT_NAMES = 15, /* struct snap_str[count], ranges of TLS_CERTS */
	SNAP_SEC_TLS_CERT_CHAIN = 16, /* struct snap_bytes[count], ranges of TLS_CERTS */
	SNAP_SEC_TLS_DER = 17,        /* uint8_t[count]: the DER blobs of TLS_CERTS */
	/* ABI 1.3: the diagnostic client (dataplane/diag) */
	SNAP_SEC_DIAG_CLIENT = 18, /* struct snap_diag_client, count 0 (none) or 1 */
	/* ABI 1.4: TCP settings */
	SNAP_SEC_TCP = 19, /* struct snap_tcp, count 1 */
	/* ABI 1.5: the inbound SMTP service (dataplane/relay) */
	SNAP_SEC_SMTP = 20, /* struct snap_smtp, count 1 */
	/* ABI 1.6: inbound TLS requirements (see struct snap_inbound_tls) */
	SNAP_SEC_INBOUND_TLS = 21,               /* struct snap_inbound_tls, count 1 */
	SNAP_SEC_INBOUND_TLS_NETWORKS = 22,      /* struct snap_cidr[count] */
	SNAP_SEC_INBOUND_TLS_SENDERS = 23,       /* struct snap_name_key[count] */
	SNAP_SEC_INBOUND_TLS_SENDERS_INDEX = 24, /* uint32_t[count] buckets over SENDERS */
	/* ABI 1.7: delivery (dataplane/relay/outbound.h) */
	SNAP_SEC_DELIVERY = 25, /* struct snap_delivery, count 1 */
	/* ABI 1.8: outbound trust anchors, inbound session tickets (see below) */
	SNAP_SEC_TLS_TRUST = 26,       /* struct snap_tls_trust[count], grouped by policy */
	SNAP_SEC_TLS_TRUST_DER = 27,   /* uint8_t[count]: the DER blobs of TLS_TRUST */
	SNAP_SEC_TLS_TICKET_KEYS = 28, /* struct snap_tls_ticket_key[count], count 0..2 */
	/* ABI 2.0: the scalar keys of common/settings.h */
	SNAP_SEC_SETTINGS = 29, /* struct snap_setting[count], by increasing id */
	/* ABI 2.1: sender TLS floors, inbound TLS per recipient (see below) */
	SNAP_SEC_SENDER_TLS = 30,          /* struct snap_sender_tls[count], file order */
	SNAP_SEC_SENDER_TLS_INDEX = 31,    /* uint32_t[count] hash buckets over SENDER_TLS */
	SNAP_SEC_SENDER_TLS_NETWORKS = 32, /* uint32_t[count]: its NETWORK entries, longest first */
	SNAP_SEC_INBOUND_TLS_RECIPIENTS = 33,       /* struct snap_name_key[count] */
	SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX = 34, /* uint32_t[count] buckets over RECIPIENTS */
	/* ABI 2.2: the DNS resolver (dataplane/dns/README.md) */
	SNAP_SEC_DNS = 35, /* struct snap_dns, count 0 (no DNS) or 1 */
	/* ABI 2.3: IPv6 (see struct snap_port6) */
	SNAP_SEC_PORTS6 = 36,       /* struct snap_port6[count]: one per port, or count 0 */
	SNAP_SEC_ROUTES6 = 37,      /* struct snap_route6[count], longest prefix first */
	SNAP_SEC_DIAG_CLIENT6 = 38, /* struct snap_diag_client6, count 0 or 1 */
	SNAP_SEC_MYNETWORKS6 = 39,  /* struct snap_cidr6[count]: mynetworks' IPv6 entries */
	SNAP_SEC_INBOUND_TLS_NETWORKS6 = 40, /* struct snap_cidr6[count] */
	SNAP_SEC_SENDER_TLS_NETWORKS6 = 41,  /* struct snap_sender_net6[count], longest first */
};

struct snap_section {
	uint32_t kind;
	uint32_t count;  /* number of elements */
	uint64_t offset; /* from the start of the blob, 8-byte aligned */
	uint64_t size;   /* bytes */
};

struct snap_header {
	uint32_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint64_t generation; /* set by the publisher, not by the builder */
	uint64_t size;       /* whole blob, header included */
	uint32_t checksum;   /* crc32 (zlib) of the blob with this field as 0 */
	uint32_t nsections;
	uint64_t built_unix_ns; /* when posternd built it */
	struct snap_section sections[];
};

/* A string: offset and length inside SNAP_SEC_STRINGS (NUL follows). */
struct snap_str {
	uint32_t off;
	uint32_t len;
};

/* Dataplane-wide settings (postern.conf). Times in nanoseconds. */
struct snap_dataplane {
	uint32_t workers; /* worker lcores the dataplane runs */
	uint32_t nports;
	uint64_t idle_sleep_ns;   /* back-off sleep when idle */
	uint32_t idle_polls;      /* empty polls before backing off */
	uint32_t arp_max_retries; /* requests before giving up on a neighbour */
	uint64_t arp_retry_ns;    /* interval between ARP requests */
	uint64_t arp_cache_ns;    /* lifetime of a resolved entry */
	uint32_t arp_pending_max; /* packets parked awaiting ARP, per worker */
	uint32_t flags;           /* SNAP_DP_F_* */
	uint32_t default_gateway; /* network order, 0 = none */
	uint32_t reserved;
};

#define SNAP_DP_F_GRATUITOUS_ARP 0x1u /* announce addresses at start */
#define SNAP_DP_F_DIAG 0x2u           /* diag_services: echo, discard, source listeners */

/*
 * diag_client = HOST:PORT MODE BYTES [COUNT] (ABI 1.3): worker 0 makes
 * `count` runs one after the other whenever this differs from the one it
 * last adopted. snap_validate checks every field.
 */
#define SNAP_DIAG_BYTES_MAX (UINT64_C(1) << 40)
#define SNAP_DIAG_COUNT_MAX 100000u

struct snap_diag_client {
	uint32_t addr;  /* IPv4, network order, unicast */
	uint16_t port;  /* 1..65535 */
	uint8_t mode;   /* 1 echo, 2 discard, 3 source (enum diag_client_mode) */
	uint8_t pad;
	uint64_t bytes; /* 1..SNAP_DIAG_BYTES_MAX */
	uint32_t count; /* 1..SNAP_DIAG_COUNT_MAX */
	uint32_t reserved;
};

/*
 * TCP settings of postern.conf (ABI 1.4; dataplane/net/tcp.h says how each
 * applies). A snapshot without this section (minor < 4) leaves the
 * workers on the stack's defaults. Ranges are shared with control/conf.c;
 * snap_validate checks every field, reserved ones must be 0.
 */
enum snap_tcp_cc {
	SNAP_TCP_CC_CUBIC = 1,   /* RFC 9438 */
	SNAP_TCP_CC_NEWRENO = 2, /* RFC 5681 / RFC 6582 */
};

#define SNAP_TCP_F_SYNCOOKIES 0x1u /* RFC 4987 cookies when a SYN backlog is full */
#define SNAP_TCP_F_ALL 0x1u

#define SNAP_TCP_CONNS_MAX (1u << 22) /* the stack's largest connection table */
#define SNAP_TCP_BUF_MIN (4u << 10)
#define SNAP_TCP_BUF_MAX (512u << 20) /* RFC 7323 §2.3: under 65535 << 14 */
#define SNAP_TCP_MEM_MIN (UINT64_C(1) << 20)
#define SNAP_TCP_MEM_MAX (UINT64_C(256) << 30)
#define SNAP_TCP_WATERMARK_MIN 50u
#define SNAP_TCP_WATERMARK_MAX 100u
#define SNAP_TCP_BACKLOG_MAX (1u << 20)
#define SNAP_TCP_RETRIES_MIN 3u /* RFC 1122 §4.2.3.5 wants R2 >= 100 s: 8+ from 200 ms */
#define SNAP_TCP_RETRIES_MAX 30u
#define SNAP_TCP_KA_IDLE_MIN_NS UINT64_C(1000000000)
#define SNAP_TCP_KA_IDLE_MAX_NS (UINT64_C(86400) * 1000000000)
#define SNAP_TCP_KA_INTVL_MIN_NS UINT64_C(1000000000)
#define SNAP_TCP_KA_INTVL_MAX_NS (UINT64_C(3600) * 1000000000)
#define SNAP_TCP_KA_PROBES_MAX 100u

struct snap_tcp {
	uint32_t max_conns;          /* per worker, 1..SNAP_TCP_CONNS_MAX */
	uint32_t syn_backlog;        /* half-open per listener, 1..SNAP_TCP_BACKLOG_MAX */
	uint64_t max_buf_bytes;      /* per worker, MEM_MIN..MEM_MAX, >= sndbuf + rcvbuf */
	uint32_t sndbuf;             /* per connection, BUF_MIN..BUF_MAX */
	uint32_t rcvbuf;             /* per connection, BUF_MIN..BUF_MAX */
	uint64_t keepalive_idle_ns;  /* 0 = off (then interval and probes are 0) */
	uint64_t keepalive_intvl_ns; /* between unanswered probes */
	uint32_t keepalive_probes;   /* 1..SNAP_TCP_KA_PROBES_MAX */
	uint32_t max_retries;        /* RTO retries before abort */
	uint8_t cc;                  /* enum snap_tcp_cc */
	uint8_t watermark_pct;       /* WATERMARK_MIN..WATERMARK_MAX */
	uint16_t flags;              /* SNAP_TCP_F_* */
	uint32_t reserved;
};

/*
 * The inbound SMTP service and the spool (ABI 1.5; dataplane/relay/inbound.h).
 * A snapshot without this section (minor < 5) runs no SMTP service. The
 * spool directory is read once at start (postern-dp opens the spools before
 * its workers run); a change, or a service switched on without a spool,
 * takes effect at restart. snap_validate checks every field.
 */
#define SNAP_SMTP_F_SERVICE 0x1u         /* smtp_service = yes */
#define SNAP_SMTP_F_BARE_NORMALIZE 0x2u  /* smtpd_forbid_bare_newline = normalize */
#define SNAP_SMTP_F_ALL 0x3u

#define SNAP_SMTP_HOSTNAME_MAX 253             /* RFC 1035 §2.3.4 */
#define SNAP_SMTP_SPOOL_DIR_MAX 255            /* bytes; the spool adds w<N>/<segment> */

/* The limits of the service are settings (settings.h): smtp_max_sessions, ... */
struct snap_smtp {
	uint32_t flags;               /* SNAP_SMTP_F_* */
	uint16_t listen_port;         /* 1..65535 */
	uint16_t pad;                 /* 0 */
	struct snap_str myhostname;   /* letters, digits, '-', '.', 1..HOSTNAME_MAX */
	struct snap_str spool_directory; /* absolute, 2..SPOOL_DIR_MAX, no space */
	uint64_t reserved;               /* 0 */
};

/*
 * ---- Delivery (ABI 1.7) ----
 *
 * The outbound side of the relay, from postern.conf (Postfix names where
 * Postfix has the setting). A snapshot without the section (minor < 7)
 * gets snap_delivery_default() values from the reader.
 */
#define SNAP_DELIVERY_SCHEDULE_MAX 16
#define SNAP_DELIVERY_RETRY_MAX_S 86400u /* one schedule entry: 1 s..1 d */

/* The scalar delivery keys are settings (settings.h): smtp_connect_timeout, ... */
struct snap_delivery {
	uint32_t flags;                /* 0 */
	uint32_t nschedule;            /* 1..SNAP_DELIVERY_SCHEDULE_MAX */
	uint32_t schedule_s[SNAP_DELIVERY_SCHEDULE_MAX]; /* delivery_retry_schedule: wait before
	                                  attempt 2, 3, ...; the last repeats; each 1 s..1 d,
	                                  entries past nschedule 0 [5m 10m 20m 40m 67m] */
	uint32_t reserved[4]; /* 0 */
};

/*
 * ---- Settings (ABI 2.0) ----
 *
 * One entry per scalar key of common/settings.h, by increasing id: the
 * value in the key's canonical unit (settings.h enum setting_type).
 * snap_validate checks each known id against the range settings.h gives
 * it; ids it does not know (a newer posternd) are skipped. A key without
 * an entry has its default (setting_u64).
 */
struct snap_setting {
	uint32_t id;       /* enum setting_id */
	uint32_t reserved; /* 0 */
	uint64_t value;
};

/*
 * ---- DNS (ABI 2.2) ----
 *
 * The resolver postern-dp runs on its main lcore (dataplane/dns/README.md):
 * libunbound, forwarding to resolvers (dns_resolvers) or recursing from the
 * root hints (dns_root_hints_file; libunbound's built-in root servers when
 * ""), validating with dns_trust_anchor_file ("" = no validation: every
 * answer insecure). dns_unbound_conf: an unbound.conf with anything else
 * (ub_ctx_config). Paths are absolute. No section: no DNS, host-name next
 * hops and MX routes are deferred.
 */
#define SNAP_DNS_RESOLVERS_MAX 8

struct snap_dns {
	uint32_t flags;                             /* 0 */
	uint32_t nresolvers;                        /* 0..SNAP_DNS_RESOLVERS_MAX; 0 = recursion */
	uint32_t resolvers[SNAP_DNS_RESOLVERS_MAX]; /* IPv4, network order, port 53 */
	struct snap_str trust_anchor_file;          /* "" or absolute */
	struct snap_str root_hints_file;            /* "" or absolute */
	struct snap_str unbound_conf;               /* "" or absolute */
	uint64_t reserved;                          /* 0 */
};

struct snap_port {
	struct snap_str device; /* DPDK device: PCI address or vdev spec */
	uint32_t addr;          /* IPv4, network order */
	uint8_t prefix_len;
	uint8_t pad[1];
	uint16_t mtu;
	uint32_t reserved;
};

struct snap_route {
	uint32_t prefix; /* network order, host bits zero */
	uint8_t prefix_len;
	uint8_t port; /* egress port index */
	uint16_t pad;
	uint32_t gateway; /* network order, 0 = directly connected */
};

/*
 * ---- IPv6 (ABI 2.3) ----
 *
 * PORTS6 runs parallel to PORTS: element i is port i's IPv6 address
 * (prefix_len 0: the port speaks no IPv6; an IPv6-only port has addr 0 and
 * prefix_len 0 in PORTS). A snapshot without the section (2.0) has
 * no IPv6. The link-local address of a port is not here: the dataplane
 * derives it from the port's MAC. ROUTES6 is ROUTES for IPv6, sorted the
 * same way; a link-local gateway is on its `port`. DIAG_CLIENT6 replaces
 * DIAG_CLIENT (then count 0) when diag_client names an IPv6 address.
 */
struct snap_port6 {
	uint8_t addr[16];   /* global unicast, as on the wire */
	uint8_t prefix_len; /* 1..128, 0 = none */
	uint8_t pad[3];     /* 0 */
	uint32_t reserved;  /* 0 */
};

struct snap_route6 {
	uint8_t prefix[16];  /* host bits zero */
	uint8_t gateway[16]; /* all zero = directly connected */
	uint8_t prefix_len;  /* 0..128 */
	uint8_t port;        /* egress port index */
	uint16_t pad;        /* 0 */
	uint32_t reserved;   /* 0 */
};

struct snap_diag_client6 {
	uint8_t addr[16]; /* global unicast */
	uint16_t port;    /* 1..65535 */
	uint8_t mode;     /* as snap_diag_client */
	uint8_t pad;
	uint32_t count; /* 1..SNAP_DIAG_COUNT_MAX */
	uint64_t bytes; /* 1..SNAP_DIAG_BYTES_MAX */
};

/*
 * ---- Name tables (ABI 1.1) ----
 *
 * The TLS policy, transport and relay_domains tables are each an array of
 * entries that begin with a struct snap_name_key, plus an index section: an
 * open-addressing hash table of uint32_t buckets (a power of two of them,
 * at least one empty), each 0 for empty or 1 + the index of an entry. A
 * lookup probes from (hash & (count - 1)) onwards until an empty bucket.
 *
 * The hash is 64-bit FNV-1a over the key's bytes taken from the LAST to the
 * first. Hashing from the right gives, in one pass over a name, the hash of
 * every ".parent" suffix (each is a prefix of the reversed name), so exact
 * and parent-domain lookups cost O(length of the name) together
 * (common/policy_lookup.c). Keys are stored lowercased.
 */
#define SNAP_NAME_HASH_OFFSET UINT64_C(0xcbf29ce484222325)
#define SNAP_NAME_HASH_PRIME UINT64_C(0x100000001b3)
#define SNAP_NAME_MAX 300 /* longest key: "[" 253 "]:65535", with margin */

enum snap_name_kind {
	SNAP_NAME_DOMAIN = 1,   /* "example.com": that domain only */
	SNAP_NAME_PARENT = 2,   /* ".example.com": its sub-domains only */
	SNAP_NAME_NEXTHOP = 3,  /* "[mx.example.com]" or "[198.19.0.2]:587" */
	SNAP_NAME_WILDCARD = 4, /* "*": the transport table's default */
	SNAP_NAME_NETWORK = 5,  /* "[198.18.0.0/24]": a client network (sender_tls_policy) */
	SNAP_NAME_NETWORK6 = 6, /* "[2001:db8::/32]": an IPv6 client network (ABI 2.3) */
};

struct snap_name_key {
	uint64_t hash;        /* see above, over name */
	struct snap_str name; /* lowercased key as looked up */
	uint32_t kind;        /* enum snap_name_kind */
	uint32_t line;        /* line of its file, for explanations; 0 = none */
};

/* Outbound TLS security levels (Postfix smtp_tls_security_level). */
enum snap_tls_level {
	SNAP_TLS_NONE = 0,
	SNAP_TLS_MAY = 1,
	SNAP_TLS_ENCRYPT = 2,
	SNAP_TLS_FINGERPRINT = 3,
	SNAP_TLS_VERIFY = 4,
	SNAP_TLS_SECURE = 5,
	/* dane and dane-only arrive with DNSSEC lookups; refused until then */
	SNAP_TLS_LEVEL_MAX = SNAP_TLS_SECURE,
};

/* Cipher grades of the ciphers= attribute (Postfix tls_*_ciphers). */
enum snap_tls_grade {
	SNAP_TLS_GRADE_DEFAULT = 0, /* the level's default (Postfix: medium) */
	SNAP_TLS_GRADE_EXPORT = 1,
	SNAP_TLS_GRADE_LOW = 2,
	SNAP_TLS_GRADE_MEDIUM = 3,
	SNAP_TLS_GRADE_HIGH = 4,
	SNAP_TLS_GRADE_NULL = 5,
	SNAP_TLS_GRADE_MAX = SNAP_TLS_GRADE_NULL,
};

/* Protocol versions, as bits of snap_tls_policy.protocols. */
#define SNAP_TLS_P_SSLV2 0x01u
#define SNAP_TLS_P_SSLV3 0x02u
#define SNAP_TLS_P_TLSV1 0x04u
#define SNAP_TLS_P_TLSV1_1 0x08u
#define SNAP_TLS_P_TLSV1_2 0x10u
#define SNAP_TLS_P_TLSV1_3 0x20u
#define SNAP_TLS_P_ALL 0x3fu

#define SNAP_TLS_F_TESTING 0x1u      /* mode=testing: evaluate, log, never defer */
#define SNAP_TLS_F_SNI_HOSTNAME 0x2u /* servername=hostname: SNI is the MX host */
#define SNAP_TLS_F_ALL 0x3u

struct snap_tls_policy {
	struct snap_name_key key;
	uint8_t level;      /* enum snap_tls_level */
	uint8_t ciphers;    /* enum snap_tls_grade */
	uint16_t protocols; /* SNAP_TLS_P_* allowed; 0 = the level's default */
	uint32_t flags;     /* SNAP_TLS_F_* */
	/*
	 * fingerprint: SHA-256 digests "AB:CD:..|..." (Postfix: '|' between
	 * fingerprints); verify/secure: "hostname:nexthop:dot-nexthop:NAME..."
	 * (Postfix: ':' between strategies); "" = the level's default.
	 */
	struct snap_str match;
	struct snap_str exclude;    /* OpenSSL cipher names, as written */
	struct snap_str servername; /* SNI name; "" = none or F_SNI_HOSTNAME */
	struct snap_str tafile;     /* trust-anchor PEM file; "" = none */
	struct snap_str text;       /* the entry as written (one line) */
};

/* One next hop of a transport entry. */
#define SNAP_NH_F_NO_MX 0x1u /* "[host]": connect to host itself, no MX lookup */
#define SNAP_NH_F_IP 0x2u    /* host is an IPv4 literal, addr holds it */
/* ABI 2.3: host is an IPv6 literal ("[ipv6:2001:db8::1]" or "[2001:db8::1]"
 * as written; host holds the address in RFC 5952 text, addr is 0) */
#define SNAP_NH_F_IP6 0x4u

struct snap_nexthop {
	struct snap_str host; /* lowercased name or dotted quad, no brackets */
	struct snap_str dest; /* Postfix next-hop destination, the TLS policy key */
	uint16_t port;        /* 25 unless given */
	uint8_t flags;        /* SNAP_NH_F_* */
	uint8_t pad;
	uint32_t addr; /* IPv4, network order, with SNAP_NH_F_IP */
};

struct snap_transport {
	struct snap_name_key key;
	uint32_t nexthop_first; /* into SNAP_SEC_NEXTHOPS */
	uint32_t nexthop_count; /* 0: the recipient domain itself (MX lookup) */
	struct snap_str text;   /* the entry as written (one line) */
};

struct snap_cidr {
	uint32_t prefix; /* network order, host bits zero */
	uint8_t len;
	uint8_t pad[3];
};

/*
 * ABI 2.3: an IPv6 network of mynetworks or smtpd_tls_required_networks
 * (SNAP_SEC_MYNETWORKS6, SNAP_SEC_INBOUND_TLS_NETWORKS6): length 0..128,
 * host bits zero. The IPv4 entries stay in the 1.x sections; a 2.0 reader
 * skips these and so lets no IPv6 client relay and requires nothing of one.
 */
struct snap_cidr6 {
	uint8_t prefix[16]; /* as on the wire, host bits zero */
	uint8_t len;
	uint8_t pad[3];
};

/* Relay and outbound-policy settings from postern.conf. */
struct snap_relay {
	uint8_t tls_default_level; /* enum snap_tls_level when no entry applies */
	uint8_t pad[7];
};

/*
 * ---- Inbound TLS requirements (ABI 1.6) ----
 *
 * smtpd_tls_* of postern.conf (common/policy_lookup.h policy_inbound_required
 * says how they combine). level is NONE, MAY or ENCRYPT of enum
 * snap_tls_level (Postfix smtpd_tls_security_level has only these three);
 * with NONE both tables are empty. The networks are struct snap_cidr like
 * mynetworks; the sender domains a name table ("domain" exactly, ".domain"
 * its sub-domains). Protocols are SNAP_TLS_P_* without SSLv2 and SSLv3,
 * never 0. Lines are those of postern.conf, for explanations (0 = the
 * default). A snapshot without these sections (minor < 6) requires nothing.
 */
#define SNAP_INBOUND_TLS_P_ALL                                                                     \
	(SNAP_TLS_P_TLSV1 | SNAP_TLS_P_TLSV1_1 | SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3)

struct snap_inbound_tls {
	uint8_t level;                /* enum snap_tls_level: NONE, MAY or ENCRYPT */
	uint8_t pad;                  /* 0 */
	uint16_t protocols;           /* smtpd_tls_protocols: TLS optional */
	uint16_t mandatory_protocols; /* smtpd_tls_mandatory_protocols: TLS required */
	uint16_t reserved;            /* 0 */
	uint32_t level_line;          /* smtpd_tls_security_level */
	uint32_t networks_line;       /* smtpd_tls_required_networks */
	uint32_t senders_line;        /* smtpd_tls_required_senders */
	uint32_t protocols_line;      /* smtpd_tls_protocols */
	uint32_t mandatory_line;      /* smtpd_tls_mandatory_protocols */
	uint32_t reserved2;           /* 0 */
};

/*
 * ---- Inbound TLS required per recipient domain (ABI 2.1) ----
 *
 * smtpd_tls_required_recipients: RCPT TO a listed domain ("domain"
 * exactly, ".domain" its sub-domains) in a plaintext session is refused
 * 530 5.7.0, other recipients of the session are not affected. A name
 * table (RECIPIENTS with its index) whose keys carry the postern.conf line;
 * it comes with the ABI 1.6 sections and is empty at level none. A
 * snapshot without it (minor < 1) requires nothing per recipient.
 */

/*
 * ---- Sender TLS floors (ABI 2.1) ----
 *
 * CONFIG_DIR/sender_tls_policy: mail from a sender domain, or submitted
 * by a client network, is never delivered below a floor (crypto/
 * tls_decide.h tls_decide_combine says how it combines with the
 * destination's level). One entry per line of the file, in file order, in
 * a name table (SENDER_TLS with its index: every entry is indexed by its
 * key) whose keys are DOMAIN ("provider.example"), PARENT
 * (".provider.example") or NETWORK ("[198.18.0.0/24]", exactly as
 * "[%s/%u]" prints the prefix and its length). SENDER_TLS_NETWORKS lists
 * the index of every NETWORK entry once, longest prefix first (ties in
 * file order), so the first that contains a client address is its longest
 * match. snap_validate checks the three sections come together, every key,
 * level (ENCRYPT, VERIFY or SECURE), flag (SNAP_TLS_F_TESTING only),
 * prefix (host bits zero, its key the same prefix), reserved field and
 * the network list. A snapshot without them (minor < 1) has no floors.
 *
 * ABI 2.3: IPv6 client networks. Their entries are NETWORK6 keys
 * ("[2001:db8::/32]", RFC 5952 text, as "[%s/%u]" prints the prefix and
 * its length) with prefix 0 and prefix_len 0..128; SENDER_TLS_NETWORKS6
 * lists each of them once with its prefix, longest first (ties in file
 * order). SENDER_TLS_NETWORKS lists only the IPv4 ones. The section is
 * absent or empty when there are none; a reader before 2.3 refuses the
 * NETWORK6 key kind, so it keeps its last snapshot rather than drop a
 * floor.
 */
struct snap_sender_tls {
	struct snap_name_key key;
	uint8_t level;        /* enum snap_tls_level: ENCRYPT, VERIFY or SECURE */
	uint8_t prefix_len;   /* NETWORK: 0..32; NETWORK6: 0..128; 0 otherwise */
	uint16_t pad;         /* 0 */
	uint32_t flags;       /* SNAP_TLS_F_TESTING or 0 */
	uint32_t prefix;      /* NETWORK: IPv4, network order, host bits zero; 0 otherwise */
	uint32_t reserved;    /* 0 */
	struct snap_str text; /* the entry as written (one line) */
};

/* ABI 2.3: a NETWORK6 entry of SENDER_TLS and its prefix. */
struct snap_sender_net6 {
	uint32_t entry;     /* index into SENDER_TLS */
	uint8_t prefix[16]; /* host bits zero (the entry's prefix_len) */
};

/*
 * ---- Inbound TLS certificates (ABI 1.2) ----
 *
 * One snap_tls_cert per PEM file of tls_certificates, in configuration
 * order: for each key type the first one is the default (no SNI, or a name
 * no certificate covers). The private key (PKCS#8 PrivateKeyInfo) and the
 * chain (leaf first, then each issuer) are DER blobs inside SNAP_SEC_TLS_DER
 * that each worker turns into OpenSSL objects when it adopts the
 * generation (crypto/tls_certs.c). Names are the leaf's subjectAltName DNS
 * entries (its CN only without any), lowercased; "*.example.com" is a
 * wildcard for exactly one label (RFC 6125 §6.4.3). The section carries
 * private keys: the shared memory object is mode 0600 (common/shm.c).
 */
enum snap_tls_key_type {
	SNAP_TLS_KEY_RSA = 1,     /* rsaEncryption, at least 2048 bits */
	SNAP_TLS_KEY_ECDSA = 2,   /* P-256 or P-384 (key_bits 256 or 384) */
	SNAP_TLS_KEY_ED25519 = 3, /* RFC 8410 */
	SNAP_TLS_KEY_MAX = SNAP_TLS_KEY_ED25519,
};

/* Bytes inside SNAP_SEC_TLS_DER. */
struct snap_bytes {
	uint32_t off;
	uint32_t len;
};

struct snap_tls_cert {
	uint8_t key_type; /* enum snap_tls_key_type */
	uint8_t pad[3];
	uint32_t key_bits;     /* RSA modulus or EC group bits; 253 for Ed25519 */
	struct snap_bytes key; /* PKCS#8 PrivateKeyInfo, DER */
	uint32_t chain_first;  /* into TLS_CERT_CHAIN: the leaf, then its issuers */
	uint32_t chain_count;  /* at least 1 */
	uint32_t name_first;   /* into TLS_CERT_NAMES */
	uint32_t name_count;   /* 0: only ever chosen as a default */
	int64_t not_before;    /* leaf validity, unix seconds */
	int64_t not_after;
	uint8_t sha256[32];   /* SHA-256 of the leaf's DER */
	struct snap_str file; /* the PEM file, for posternctl cert */
	uint32_t line;        /* of tls_certificates in postern.conf */
	uint32_t reserved;
};

/*
 * ---- Outbound trust anchors (ABI 1.8) ----
 *
 * The CA certificates a verify or secure level checks a next hop's chain
 * against: those of postern.conf smtp_tls_CAfile (policy SNAP_TRUST_GLOBAL)
 * and those of each tls_policy entry's tafile= (policy = the index of that
 * entry in SNAP_SEC_TLS_POLICY). Postfix semantics: an entry with a tafile
 * trusts exactly its own anchors, any other verify/secure lookup those of
 * smtp_tls_CAfile; a tafile anchor need not be self-signed (partial chain).
 * Each anchor is the DER of one X.509 certificate inside
 * SNAP_SEC_TLS_TRUST_DER; entries that share a file share the bytes.
 *
 * Order: the GLOBAL entries first, then by ascending policy index, each
 * group in the order of its PEM file, so the anchors of one policy entry
 * are one contiguous range (snap_tls_trust_range). snap_validate checks
 * the order, every DER range (non-empty, inside TLS_TRUST_DER), every
 * policy index (GLOBAL, or an entry of TLS_POLICY that has a tafile),
 * reserved 0, and that TLS_TRUST and TLS_TRUST_DER come together. A
 * snapshot without them (minor < 8) trusts nothing: verify and secure
 * deliveries then fail verification.
 */
#define SNAP_TRUST_GLOBAL 0xffffffffu /* snap_tls_trust.policy of smtp_tls_CAfile */

struct snap_tls_trust {
	uint32_t policy;       /* SNAP_TRUST_GLOBAL or an index into TLS_POLICY */
	uint32_t reserved;     /* 0 */
	struct snap_bytes der; /* one X.509 certificate, inside TLS_TRUST_DER */
};

/*
 * ---- Inbound TLS session-ticket keys (ABI 1.8) ----
 *
 * RFC 5077 / RFC 8446 §4.6.1 stateless tickets, the same keys on every
 * worker so a session resumes whichever worker the client reaches. posternd
 * draws them with RAND_bytes and keeps them in memory only (never on disk):
 * [0] is the current key (encrypt and decrypt), [1] the previous one
 * (decrypt only). The current key is replaced when it is
 * smtpd_tls_session_cache_timeout old, the old current becoming the
 * previous one, so a ticket stays usable for 1 to 2 timeouts. Count 0 (the
 * timeout is 0, or a snapshot of minor < 8) means no session tickets.
 * Reloads and policy changes keep the keys; a restarted posternd draws new
 * ones (resumption across a posternd restart is lost). snap_validate
 * checks the count (at most SNAP_TICKET_KEYS_MAX), and that no name is all
 * zero and the two names differ (OpenSSL picks the decryption key by name).
 * The section carries secret keys: the shared memory object is mode 0600.
 */
#define SNAP_TICKET_KEYS_MAX 2

struct snap_tls_ticket_key {
	uint8_t name[16];     /* key name, sent in the ticket (random) */
	uint8_t hmac_key[32]; /* HMAC-SHA256 key */
	uint8_t aes_key[32];  /* AES-256-CBC key */
	int64_t created;      /* unix seconds, when posternd drew it */
};

/*
 * Validation and access (common/snap.c). snap_validate checks magic, ABI,
 * size, checksum and that every section lies inside the blob, and for the
 * name tables every string, hash, index bucket, enum and next-hop range,
 * for the certificates every key type, range, blob and name, for the trust
 * anchors and ticket keys what their comments above say; it never trusts
 * a field before checking it. Returns PG_OK, or PG_ERROR with a message.
 */
int snap_validate(const void *blob, size_t len, char *err, size_t errlen);
uint32_t snap_checksum(const void *blob, size_t len);
/* The retry schedule when postern.conf sets none: 5m 10m 20m 40m 67m, the last repeating. */
void snap_delivery_default(struct snap_delivery *d);
/* The delivery section of a validated snapshot, or *fallback filled with snap_delivery_default().
 */
const struct snap_delivery *snap_delivery(const struct snap_header *h,
                                          struct snap_delivery *fallback);
/*
 * The trust anchors of a validated snapshot (ABI 1.8) and their count in
 * *count; NULL and 0 without the section (minor < 8) or with none.
 */
const struct snap_tls_trust *snap_tls_trust(const struct snap_header *h, uint32_t *count);
/*
 * The range of anchors of one policy entry, or of SNAP_TRUST_GLOBAL: their
 * number, the first one's index in *first (binary search; a validated
 * snapshot keeps each group contiguous). 0 when it has none.
 */
uint32_t snap_tls_trust_range(const struct snap_header *h, uint32_t policy, uint32_t *first);
/* The DER bytes of an anchor (t->der.len of them), NULL if out of range. */
const uint8_t *snap_trust_der(const struct snap_header *h, const struct snap_tls_trust *t);
/*
 * The session-ticket keys of a validated snapshot, [0] the current one,
 * and their count (0..SNAP_TICKET_KEYS_MAX) in *count; NULL and 0 when
 * session tickets are off or the snapshot is of minor < 8.
 */
const struct snap_tls_ticket_key *snap_ticket_keys(const struct snap_header *h, uint32_t *count);
/* First section of a kind, or NULL. *count receives its element count. */
const void *snap_section(const struct snap_header *h, uint32_t kind, uint32_t *count);
/* A string of the strings section; "" if out of range. */
const char *snap_string(const struct snap_header *h, struct snap_str s);

#endif
