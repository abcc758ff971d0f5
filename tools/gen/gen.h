/*
 * gen.h - postern-gen, the SMTP/TLS traffic generator (issue 7): a DPDK
 * program on Postern's own userspace TCP (dataplane/net), TLS
 * (crypto/tls_stream) and SMTP engines (dataplane/smtp). One worker on one
 * lcore, one port; the mode decides what runs on it:
 *
 *   client  sessions to a server: closed loop (as fast as the server
 *           answers) or open loop at a target message rate, with
 *           STARTTLS and session resumption, pipelining on or off;
 *   sink    a next hop that accepts mail, refuses a share with 4xx/5xx,
 *           delays its replies, offers STARTTLS with a chosen certificate.
 *
 * Results are counters and latency histograms (gen_hist.c), printed as a
 * table or as JSON (--json), and a progress line on a terminal.
 */
#ifndef PG_GEN_H
#define PG_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "list.h"

struct worker;

/* ---- latency histograms (gen_hist.c) ---- */

/*
 * Log-linear buckets (the HdrHistogram layout): values below 64 exactly,
 * above that 64 buckets per power of two, so every recorded value is
 * within 1/64 (1.6 %) of the bucket it lands in. Nanoseconds up to 2^42
 * (73 minutes); anything larger lands in the last bucket.
 */
#define GEN_HIST_SUB_BITS 6
#define GEN_HIST_SUB (1u << GEN_HIST_SUB_BITS)
#define GEN_HIST_MAX_EXP 42
#define GEN_HIST_BUCKETS ((GEN_HIST_MAX_EXP - GEN_HIST_SUB_BITS + 2) * GEN_HIST_SUB)

struct gen_hist {
	uint64_t count, sum, min, max;
	uint32_t b[GEN_HIST_BUCKETS];
};

void gen_hist_add(struct gen_hist *h, uint64_t v);
/* The value at quantile q (0..1): the middle of its bucket, clamped to min/max. */
uint64_t gen_hist_quantile(const struct gen_hist *h, double q);
/* Bucket index and its value range (for the unit test). */
unsigned gen_hist_index(uint64_t v);
void gen_hist_range(unsigned idx, uint64_t *lo, uint64_t *hi);

/* ---- what is measured ---- */

/* Latencies the client records (nanoseconds). */
enum gen_lat {
	GEN_L_CONNECT,  /* SYN to established */
	GEN_L_GREETING, /* established to the 220 */
	GEN_L_EHLO,
	GEN_L_STARTTLS, /* STARTTLS to its 220 */
	GEN_L_TLS,      /* the handshake: ClientHello to finished */
	GEN_L_RSET,
	GEN_L_MAIL,
	GEN_L_RCPT,
	GEN_L_DATA,     /* DATA to 354 */
	GEN_L_EOD,      /* end of data (".") to the 250 */
	GEN_L_QUIT,
	GEN_L_MESSAGE,  /* the message's intended start to its 250 (queueing included) */
	GEN_L_COUNT
};

/* Error kinds, both modes. */
enum gen_err {
	GEN_E_REFUSED,       /* RST to our SYN */
	GEN_E_CONN_TIMEOUT,  /* TCP gave up (SYN or data retransmissions) */
	GEN_E_RESET,         /* RST on an established connection */
	GEN_E_CLOSED,        /* the peer closed in the middle of a session */
	GEN_E_TLS,           /* handshake failed */
	GEN_E_SMTP_TIMEOUT,  /* the peer went silent (engine timeout) */
	GEN_E_PROTOCOL,      /* a reply the engine could not accept, or a local refusal */
	GEN_E_NO_STARTTLS,   /* --starttls but the server did not offer it */
	GEN_E_NO_PORT,       /* tcp_connect said AGAIN (ports or memory caps) */
	GEN_E_BACKLOG,       /* open loop: the schedule ran this far ahead of the sessions */
	GEN_E_UNFINISHED,    /* still running when the drain time was up */
	GEN_E_COUNT
};

struct gen_counts {
	/* connections */
	uint64_t conns_opened, conns_established, conns_closed;
	/* messages (client: sent; sink: received) */
	uint64_t msgs_started, msgs_accepted, msgs_tempfail, msgs_permfail, msgs_failed;
	uint64_t rcpts_accepted, rcpts_tempfail, rcpts_permfail;
	uint64_t msg_bytes;            /* message octets of accepted messages */
	uint64_t tcp_bytes_out, tcp_bytes_in; /* frames on the wire (Ethernet, IP, TCP, TLS included) */
	uint64_t tls_handshakes, tls_resumed;
	uint64_t tcp_retransmits, tcp_rtos; /* our TCP's (losses on the path show here) */
	uint64_t delayed;              /* sink: replies held back by --delay */
	uint64_t err[GEN_E_COUNT];
};

/* ---- options ---- */

enum gen_mode { GEN_CLIENT, GEN_SINK };

#define GEN_SIZES_MAX 16
#define GEN_RCPTS_MAX 1000
#define GEN_TICKETS 256

struct gen_opts {
	enum gen_mode mode;
	/* network */
	uint32_t addr;    /* network order */
	uint8_t prefix;
	uint32_t gateway; /* network order, 0 = none */
	uint16_t mtu;
	/* run */
	uint64_t messages;   /* client: messages to start (0 = by duration only) */
	double duration_s;   /* client: stop starting messages; sink: exit after */
	double drain_s;      /* client: wait this long for what is in flight [30] */
	const char *json;    /* file or "-" */
	int progress;        /* -1 auto (stderr is a terminal), 0 off, 1 on */
	uint64_t seed;
	double idle_sleep_us;
	uint32_t idle_polls; /* empty passes before sleeping */
	/* client */
	uint32_t server;  /* network order */
	uint16_t server_port;
	uint32_t sessions;
	uint32_t per_conn;
	uint32_t rcpts;
	bool pipelining;
	bool starttls;
	bool resume;
	int tls_max;         /* TLS1_2_VERSION or TLS1_3_VERSION */
	const char *sigalgs; /* OpenSSL signature algorithm list, NULL = its default */
	const char *sni;
	double rate;      /* messages/s; 0 = closed loop */
	unsigned nsizes;
	uint64_t size[GEN_SIZES_MAX];
	double size_w[GEN_SIZES_MAX];
	const char *from;
	const char *to_domain;
	const char *helo;
	bool quit_each;   /* close with QUIT (always, today) */
	/* sink */
	uint16_t listen_port;
	double tempfail_pct, permfail_pct;
	bool fail_at_rcpt; /* refuse RCPTs instead of whole messages */
	uint32_t delay_ms; /* hold every end-of-data reply this long */
	uint32_t greet_delay_ms;
	const char *cert;  /* PEM with key and chain: offer STARTTLS */
	const char *hostname;
};

/* ---- the running generator ---- */

struct gc_sess;
struct gs_sess;

struct gen {
	struct gen_opts o;
	struct worker *w;
	SSL_CTX *ssl_ctx;
	/*
	 * Client --resume: tickets the servers gave, each offered once (RFC
	 * 8446 §C.4: clients SHOULD NOT reuse a ticket), newest first; when
	 * none is left the newest seen is offered again.
	 */
	SSL_SESSION *tickets[GEN_TICKETS];
	unsigned ntickets;
	SSL_SESSION *resume_sess;
	uint64_t start_ns, stop_ns; /* stop starting work at stop_ns (--duration) */
	uint64_t drain_from_ns;     /* when stopping began: the drain time runs from here */
	bool stopping;     /* no new work: draining */
	bool done;         /* everything finished */
	uint64_t rng;      /* xorshift64* state */
	struct gen_counts n;
	struct gen_hist lat[GEN_L_COUNT];
	/* client */
	uint32_t nsess;        /* live client sessions */
	struct pg_list idle;   /* open loop: sessions waiting for a message (gc_sess.idle_link) */
	struct pg_list sessions; /* client mode: every session (gc_sess.link) */
	uint64_t next_due_ns;  /* open loop: the next message's intended start */
	uint64_t *due;         /* open loop: intended starts waiting for a session */
	uint32_t due_head, due_len, due_cap;
	uint8_t *filler;       /* body text: lines of 78 octets */
	size_t filler_len;
	/* sink */
	uint32_t nsink;        /* live sink sessions */
	bool listening;
};

/* gen_client.c / gen_sink.c: start, per-pass work, stop. */
int gen_client_start(struct gen *g);
/* One connection before the clock starts (ARP both ways); poll is the loop's pass. */
int gen_client_warmup(struct gen *g, unsigned (*poll)(struct gen *));
unsigned gen_client_poll(struct gen *g);
int gen_sink_start(struct gen *g);
unsigned gen_sink_poll(struct gen *g);

/* gen_report.c */
uint64_t gen_rand(struct gen *g);
double gen_rand01(struct gen *g);
void gen_report_text(const struct gen *g, FILE *f, double elapsed_s);
int gen_report_json(const struct gen *g, FILE *f, double elapsed_s);
void gen_progress(const struct gen *g, FILE *f, double elapsed_s);
const char *gen_lat_name(enum gen_lat l);
const char *gen_err_name(enum gen_err e);

#endif
