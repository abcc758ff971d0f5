/*
 * conf.h - postern.conf, the main settings file, as posternd sees it after
 * parsing and validation. Syntax follows Postfix main.cf: `key = value`,
 * whole-line `#` comments, and a line starting with whitespace continues the
 * previous logical line. Every key, its default and its range are in the
 * table at the top of conf.c.
 */
#ifndef PG_CONF_H
#define PG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "settings.h"
#include "snap_format.h"

#define CONF_FILE_NAME "postern.conf"
#define CONF_DEFAULT_DIR "/etc/postern"
#define CONF_DEFAULT_SOCKET "/run/postern/posternd.sock"
#define CONF_DEFAULT_LOG_FILE "/var/log/postern/postern.log"
#define CONF_LOG_PATH_MAX 1024
#define CONF_LISTEN_MAX 64
#define CONF_GROUP_MAX 32
#define CONF_DEVICE_MAX 256
#define CONF_PATH_MAX 4096
#define CONF_SOCKET_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define CONF_SHM_NAME_MAX 60
#define CONF_MYNETWORKS_MAX 256
#define CONF_RELAY_DOMAINS_MAX 16384 /* bytes of the normalized list */
#define CONF_TLS_CERT_FILES_MAX 64   /* files in tls_certificates */
#define CONF_TLS_CERTIFICATES_MAX 16384 /* bytes of the normalized list */
/*
 * smtpd_tls_session_cache_timeout: 0 (no session tickets) or 2 min..7 d.
 * Postfix raises a value under 2 min to 2 min and allows up to 100 days;
 * Postern refuses both, the upper bound being RFC 8446 §4.6.1's limit on
 * a ticket's lifetime.
 */
#define CONF_TLS_SESSION_TIMEOUT_MIN_S 120u
#define CONF_TLS_SESSION_TIMEOUT_MAX_S (7u * 86400u)

struct pg_conf_port {
	char device[CONF_DEVICE_MAX]; /* PCI address or DPDK vdev spec */
	uint32_t addr;                /* IPv4, network order; 0 = none (an IPv6-only port) */
	uint8_t prefix_len;
	uint16_t mtu;
	uint8_t addr6[16];   /* IPv6 global unicast, as on the wire (conf_ipv6.c) */
	uint8_t prefix6_len; /* 1..128; 0 = no IPv6 on this port */
};

/* A compiled route. Connected subnets have gateway 0. */
struct pg_conf_route {
	uint32_t prefix; /* network order, host bits zero */
	uint8_t prefix_len;
	uint8_t port;     /* egress port */
	uint32_t gateway; /* network order, 0 = directly connected */
};

/* A compiled IPv6 route (conf_ipv6.c). Connected prefixes have a zero gateway. */
struct pg_conf_route6 {
	uint8_t prefix[16];  /* host bits zero */
	uint8_t gateway[16]; /* zero = directly connected; link-local on `port` */
	uint8_t prefix_len;
	uint8_t port; /* egress port */
};

/* diag_client = HOST:PORT MODE BYTES [COUNT]; set false = none. */
struct pg_conf_diag_client {
	bool set;
	bool v6;        /* HOST was [IPv6]: addr6, not addr */
	uint8_t mode;   /* 1 echo, 2 discard, 3 source */
	uint16_t port;  /* host order */
	uint32_t addr;  /* network order */
	uint8_t addr6[16];
	uint64_t bytes; /* 1..2^40 */
	uint32_t count; /* 1..100000 */
};

/* The tcp_* keys (dataplane/net/tcp.h; ranges in snap_format.h). */
struct pg_conf_tcp {
	uint8_t cc;                      /* tcp_congestion_control, enum snap_tcp_cc */
	uint64_t keepalive_idle_ns;      /* tcp_keepalive IDLE, 0 = no */
	uint64_t keepalive_intvl_ns;     /* INTERVAL, 0 with no */
	uint32_t keepalive_probes;       /* COUNT, 0 with no */
	uint32_t max_connections;        /* per worker */
	uint64_t buffer_memory_max;      /* per worker */
	uint64_t send_buffer;            /* per connection */
	uint64_t receive_buffer;         /* per connection */
	uint32_t backpressure_watermark; /* percent of each cap */
	uint32_t syn_backlog;            /* per listener */
	bool syncookies;
	uint32_t max_retries;
};

/* The inbound SMTP service and the spool (dataplane/relay/inbound.h). */
struct pg_conf_smtp {
	bool service;                /* smtp_service */
	uint32_t listen_port;        /* smtp_listen_port */
	char spool_directory[SNAP_SMTP_SPOOL_DIR_MAX + 1]; /* no trailing '/' */
	char myhostname[SNAP_SMTP_HOSTNAME_MAX + 1];       /* default: gethostname() */
	bool bare_normalize;         /* smtpd_forbid_bare_newline = normalize */
};

/*
 * Delivery, the outbound side of the relay (snap_format.h struct
 * snap_delivery, dataplane/relay/outbound.h). Times in nanoseconds like the
 * rest of pg_conf; the parser keeps them whole milliseconds or seconds as
 * the snapshot stores them.
 */
struct pg_conf_delivery {
	uint32_t nschedule;             /* delivery_retry_schedule: 1..16 waits, */
	uint64_t schedule_ns[SNAP_DELIVERY_SCHEDULE_MAX]; /* whole s, the last repeats */
	/*
	 * relayhost: the next hop of mail no transport entry routes ("" =
	 * none), as written ("[198.19.0.2]:25"); posternd adds it to the
	 * transport table as a "*" entry unless that table has its own "*"
	 * (Postfix: the transport table overrides relayhost).
	 */
	char relayhost[SNAP_NAME_MAX + 16];
};

/*
 * The DNS resolver (common/snap_format.h struct snap_dns,
 * dataplane/dns/README.md). enabled: one of dns_resolvers,
 * dns_root_hints_file, dns_unbound_conf is set (the resolver needs
 * somewhere to ask); otherwise no DNS section, and MX routes are deferred.
 */
struct pg_conf_dns {
	uint32_t nresolvers;
	uint32_t resolvers[SNAP_DNS_RESOLVERS_MAX]; /* network order */
	char trust_anchor_file[CONF_PATH_MAX];      /* absolute or "" */
	char root_hints_file[CONF_PATH_MAX];
	char unbound_conf[CONF_PATH_MAX];
};

static inline bool conf_dns_enabled(const struct pg_conf_dns *d)
{
	return d->nresolvers > 0 || d->root_hints_file[0] != '\0' || d->unbound_conf[0] != '\0';
}

/* A client network of mynetworks (or smtpd_tls_required_networks). */
struct pg_conf_cidr {
	uint32_t prefix; /* IPv4, network order, host bits zero */
	uint8_t len;     /* 0..32, or 0..128 with v6 */
	bool v6;         /* an IPv6 network: addr6 holds it (conf_ipv6.c conf6_network) */
	uint8_t addr6[16];
};

/*
 * Inbound TLS requirements, the smtpd_tls_* keys (snap_format.h struct
 * snap_inbound_tls; common/policy_lookup.h policy_inbound_required). Lines
 * are where each key is set in postern.conf, 0 = its default.
 */
struct pg_conf_smtpd_tls {
	uint8_t level;      /* enum snap_tls_level: NONE, MAY or ENCRYPT */
	uint16_t protocols; /* SNAP_TLS_P_*, never SSLv2 or SSLv3 */
	uint16_t mandatory_protocols;
	uint32_t nnetworks;
	struct pg_conf_cidr networks[CONF_MYNETWORKS_MAX];
	uint32_t nsenders;
	char senders[CONF_RELAY_DOMAINS_MAX]; /* lowercased, one space between */
	uint32_t nrecipients; /* smtpd_tls_required_recipients: RCPT TO these in plaintext: 530 */
	char recipients[CONF_RELAY_DOMAINS_MAX]; /* lowercased, one space between */
	unsigned level_line, networks_line, senders_line, protocols_line, mandatory_line,
	    recipients_line;
	/*
	 * smtpd_tls_session_cache_timeout, whole seconds (in ns like every
	 * time here): the age at which posternd replaces the session-ticket
	 * key (control/tickets.h); 0 = no session tickets.
	 */
	uint64_t session_cache_timeout_ns;
};

struct pg_conf {
	char dir[CONF_PATH_MAX];  /* the configuration directory */
	char path[CONF_PATH_MAX]; /* DIR/postern.conf */

	uint32_t workers;

	uint32_t nports;
	struct pg_conf_port ports[SNAP_MAX_PORTS];

	uint32_t default_gateway; /* network order, 0 = none */

	/* longest prefix first: connected, static_routes, then the default */
	uint32_t nroutes;
	struct pg_conf_route routes[SNAP_MAX_ROUTES];

	/* IPv6: default_gateway's IPv6 element (zero = none), and the routes */
	uint8_t default_gateway6[16];
	uint8_t default_gateway6_port; /* its %portN (link-local), or 0xff */
	uint32_t nroutes6;
	struct pg_conf_route6 routes6[SNAP_MAX_ROUTES];

	uint64_t arp_cache_ns;
	uint64_t arp_retry_ns;
	uint32_t arp_max_retries;
	uint32_t arp_pending_max;
	bool gratuitous_arp;

	uint64_t idle_sleep_ns;
	uint32_t idle_polls;

	char shm_name[CONF_SHM_NAME_MAX + 1];
	uint64_t snapshot_max_size;
	char control_socket[CONF_SOCKET_MAX];
	char control_group[CONF_GROUP_MAX + 1]; /* "" = root only (socket 0600) */
	uint32_t control_gid;                    /* of control_group */
	char log_file[CONF_LOG_PATH_MAX];       /* the JSON lines log */
	char metrics_listen[CONF_LISTEN_MAX];   /* ADDRESS:PORT of /metrics, "" = off */

	/* relay access: Postern is never an open relay (both empty by default) */
	uint32_t nmynetworks;
	struct pg_conf_cidr mynetworks[CONF_MYNETWORKS_MAX];
	uint32_t nrelay_domains;
	char relay_domains[CONF_RELAY_DOMAINS_MAX]; /* lowercased, one space between */

	uint8_t tls_default_level; /* enum snap_tls_level without a tls_policy entry */

	/*
	 * smtp_tls_CAfile: one PEM bundle of CA certificates for the outbound
	 * levels verify and secure ("" = none), as written; relative to dir.
	 * control/trust.c reads and validates it.
	 */
	char smtp_tls_cafile[CONF_PATH_MAX];
	unsigned smtp_tls_cafile_line; /* where it is set, 0 = not set */

	/*
	 * tls_certificates: PEM files (key + chain, like Postfix
	 * smtpd_tls_chain_files) as written, one space between; relative to dir.
	 * control/certs.c reads and validates them.
	 */
	uint32_t ntls_certificates;
	char tls_certificates[CONF_TLS_CERTIFICATES_MAX];
	unsigned tls_certificates_line; /* where it is set, 0 = not set */

	struct pg_conf_tcp tcp;

	struct pg_conf_smtpd_tls smtpd_tls; /* inbound TLS requirements */

	struct pg_conf_smtp smtp;

	struct pg_conf_delivery delivery; /* outbound SMTP */
	struct pg_conf_dns dns;           /* the resolver of MX routing */
	uint64_t settings[SET__COUNT];    /* the declared-once keys (settings.h), by id */

	/* diagnostic services and client (dataplane/diag/diag.h); off by default */
	bool diag_services;
	struct pg_conf_diag_client diag_client;
};

/*
 * Read DIR/postern.conf into *out (defaults for what it does not set),
 * validate it and compile the routes. PG_OK, or PG_ERROR with
 * "FILE:LINE: message" (or "FILE: message") in err.
 */
int conf_load(const char *dir, struct pg_conf *out, char *err, size_t errlen);

/* Parse a string as if it were DIR/postern.conf (tests, fuzzing). */
int conf_parse_text(const char *dir, const char *text, size_t len, struct pg_conf *out, char *err,
                    size_t errlen);

/*
 * The raw value of one key, without validating the rest of the file, so
 * posternctl still finds the socket while postern.conf is being edited.
 * PG_OK with the value, PG_DECLINED if the key is not set, PG_ERROR if the
 * file cannot be read.
 */
int conf_peek(const char *dir, const char *key, char *value, size_t valuelen, char *err,
              size_t errlen);

/* Validators shared with posternctl (reason in why on failure). */
int conf_check_socket_path(const char *value, char *why, size_t whylen);
/*
 * "A.B.C.D:PORT" or "[IPv6]:PORT" (metrics_listen) into a socket address;
 * 0, or -1 with the reason in why.
 */
int conf_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *why,
                      size_t whylen);

#endif
