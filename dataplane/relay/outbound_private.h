/*
 * outbound_private.h - delivery's own types, shared by the files it is
 * split into the way Postfix splits smtp(8) (outbound.h says what
 * delivery does):
 *   outbound.c         the worker's side: adoption, the poll, queue
 *                      commands, and the scheduler's walk of the queue
 *   outbound_route.c   a message into jobs: its envelope, each recipient
 *                      routed through transport/relayhost
 *   outbound_dest.c    destinations and their connections: queues, the
 *                      concurrency limit, opening and reusing connections
 *   outbound_tls.c     the TLS policy of a delivery and the decision's
 *                      evidence (the decision itself: crypto/tls_decide.h)
 *   outbound_sess.c    one SMTP client session over the connection driver
 *                      (conn.h): the engine's upcalls, body reads, TLS
 *   outbound_result.c  the end of an attempt: results per recipient,
 *                      failover, retries, bounces (DSNs), delivery records
 *
 * Object lifetimes, all in the worker's arena and touched by its worker
 * only:
 *   ob_msg   per message being delivered, or with a deferral reason to
 *            show: hangs off the spool message (spool_msg_user) and is
 *            freed before the message can leave the queue.
 *   ob_job   a message's recipients for one next-hop list, queued on the
 *            destination of the list entry it is at, or run by a session.
 *   ob_dest  one next-hop address:port under one effective TLS policy (the
 *            destination's level combined with the sender's floor: a
 *            connection is only reused for mail of the same policy, as
 *            Postfix keys its connection cache, so strict and
 *            opportunistic mail never share one); kept while it has jobs
 *            or connections, freed by the sweep after that.
 *   ob_sess  one connection; runs one job at a time, idles for reuse.
 *   ob_read  one spool read in flight; outlives a session that dies while
 *            the read runs (the read cannot be cancelled).
 */
#ifndef PG_RELAY_OUTBOUND_PRIVATE_H
#define PG_RELAY_OUTBOUND_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <arpa/inet.h>

#include "conn.h"
#include "dns/dns_route.h"
#include "list.h"
#include "core/timer.h"
#include "core/worker.h"
#include "settings.h"
#include "smtp/smtp_client.h"
#include "snap_format.h"
#include "tls_client.h"
#include "tls_decide.h"

struct worker;
struct spool_msg;
struct snap_header;

#define OB_JOB_RCPT_MAX 100 /* recipients per transaction (RFC 5321 §4.5.3.1.8 minimum) */
#define OB_ACTIVE_MAX 4096  /* messages in delivery at once per worker */
#define OB_NH_MAX 16        /* next hops per job (TRANSPORT_MAX_NEXTHOPS) */
#define OB_SCAN_NS (1000ull * 1000 * 1000) /* full queue scan at least this often */
#define OB_AGAIN_NS (100ull * 1000 * 1000) /* retry after tcp_connect said PG_AGAIN */
#define OB_LINGER_NS (30ull * 1000 * 1000 * 1000)
#define OB_DSN_READ_MAX (64u * 1024) /* what of the original a DSN quotes at most */
#define OB_REPLY_MAX 200
/* level may (and mode=testing): a peer whose handshake failed gets plaintext this long */
#define OB_TLS_BROKEN_NS (600ull * 1000 * 1000 * 1000)
#define OB_TLS_BROKEN_MAX 256
#define OB_NH_DEST_MAX (DNS_NAME_MAX + 8) /* "[name]:65535" */

/* ---- results ---- */

enum ob_rstate { OB_R_PENDING, OB_R_DELIVERED, OB_R_DEFERRED, OB_R_BOUNCED };

/* What TLS did for an attempt: the evidence of the delivery record. */
struct ob_tls_ev {
	char policy[96];     /* the tls_policy entry as written, or "default" */
	char decided_by[12]; /* tls_rule_name: whose level was enforced */
	char level[48];      /* "may" ... "secure", "verify/testing (enforced: encrypt)" */
	char tls[16];    /* "TLSv1.3", or "none" */
	char cipher[48];
	char verdict[24]; /* tls_verdict_name */
	char subject[128];
	char fingerprint[96];
	char outcome[16]; /* tls_decide_outcome: verified ... not_sent */
	char note[160];   /* why it deferred, would have, or fell back */
};

struct ob_result {
	uint8_t state; /* enum ob_rstate */
	uint16_t code;
	char status[16];
	char remote[PG_ADDR_STRLEN]; /* "198.19.0.2", "2001:db8:19::2" */
	char mxhost[DNS_NAME_MAX]; /* the MX host of remote (DNS routes), "" otherwise */
	char dnssec[12];           /* its DNSSEC status (dns_sec_name), "" without DNS */
	char text[OB_REPLY_MAX + 1];
	struct ob_tls_ev tls;
};

/* ---- messages ---- */

enum ob_mstate {
	OB_M_IDLE,        /* only a deferral reason to show */
	OB_M_ACTIVE,      /* jobs running */
	OB_M_DSN,         /* the DSN needs the original's first chunk: read to start */
	OB_M_DSN_READING, /* that read is in flight */
	OB_M_DSN_PUT,     /* writing the DSN to the spool (retried while PG_AGAIN) */
	OB_M_DSN_SYNC     /* the DSN is being committed */
};

/*
 * The sender's floor of a message (sender_tls_policy), looked up from the
 * live snapshot at every delivery attempt: a copy, since jobs outlive the
 * snapshot they were routed with.
 */
struct ob_floor {
	bool present;
	struct tls_rule_level rule; /* its level and mode=testing */
	char text[96];              /* the entry as written, for records and replies */
};

struct ob_msg {
	struct pg_list link; /* ob->active, while not IDLE */
	struct outbound *ob;
	struct spool_msg *m;
	uint8_t state; /* enum ob_mstate */
	bool delete_pending;
	uint32_t jobs_left;
	uint32_t nrcpt;
	struct ob_result *res; /* [nrcpt] this attempt's results */
	/* the envelope for the engine, from the spool record's params */
	char *params; /* a copy, tokens NUL-terminated in place */
	const char **rcpts;
	unsigned *notify;
	const char **orcpt;
	struct smtp_client_envelope env;
	/* who submitted it (INBOUND_PARAMS_CLIENT), and the floor of this attempt */
	bool has_client;
	struct pg_addr client; /* either family */
	const char *origin; /* INBOUND_PARAMS_ORIGIN of a bounce: the original sender's domain */
	struct ob_floor floor;
	/* the DSN */
	uint8_t *orig;
	size_t orig_len;
	bool orig_complete;
	char *dsn;
	size_t dsn_len;
	struct spool_msg *dsn_msg;
	struct ob_read *rd; /* the DSN's read in flight */
	/* DNS routes of this attempt (dataplane/dns): asked before routing */
	struct ob_route *routes;
	uint32_t nroutes;
	uint32_t dns_wait; /* answers still awaited: routing waits for them */
	uint64_t dns_seq;  /* this attempt's, in the resolver's ops */
	bool dsn_8bit;
	char *dsn_params; /* its spool params: the original's client and sender domain (floors) */
	char last_reply[OB_REPLY_MAX + 1];
};

/*
 * What one recipient domain is routed by: an IP-literal transport entry
 * (or relayhost), or a name the resolver routes: the domain's MX hosts,
 * a transport "smtp:host" (MX of host) or "smtp:[host]" (its A only).
 */
enum ob_rkind { OB_RK_NONE, OB_RK_IP, OB_RK_DNS };

struct ob_route {
	char name[DNS_NAME_MAX];   /* looked up */
	char dest[OB_NH_DEST_MAX]; /* the next-hop destination (TLS policy key) */
	uint32_t flags;            /* DNS_OP_NO_MX */
	uint16_t port;
	bool done; /* r holds the answer */
	struct dns_route r;
};

/*
 * One next hop of a job: an IP literal from transport or relayhost, or
 * one address of an MX host (mx: its name, dnssec: the answers' status).
 */
struct ob_nh {
	struct pg_addr addr; /* either family */
	uint16_t port;
	uint8_t dnssec; /* enum dns_sec, with mx[0] != '\0' */
	char mx[DNS_NAME_MAX];
	char host[PG_ADDR_STRLEN];  /* the next-hop host, for tls_client_check and the records */
	char dest[OB_NH_DEST_MAX];  /* the next-hop destination, the TLS policy key */
};

struct ob_job {
	struct ob_job *next; /* the destination's queue */
	struct ob_msg *om;
	uint32_t nrcpt;
	uint32_t *idx; /* into the message's recipients */
	struct ob_nh nh[OB_NH_MAX];
	uint32_t nnh, at;
	const char **rcpts; /* the job's addresses, for its envelope */
	unsigned *notify;
	const char **orcpt;
	struct smtp_client_envelope env;
	struct smtp_client_reply *reply; /* [nrcpt] from the engine */
	bool *got;
	bool tls_retried;        /* level may: this job went back for plaintext once */
	struct tls_combined tls; /* at its current next hop: destination and floor combined */
	uint32_t sessions;       /* servers that answered this attempt (smtp_mx_session_limit) */
};

/* ---- destinations and sessions ---- */

struct ob_dest {
	struct ob_dest *next;
	struct pg_addr addr;
	uint16_t port;
	uint64_t polkey; /* of pol and enf without their stores */
	struct tls_client_policy
	    pol; /* evaluated (level, mode=testing); pol.store is a reference */
	/*
	 * With pol in mode=testing: the level still enforced (tls_combined.
	 * enforced) as a policy of its own, for the second certificate check
	 * (enf.level fingerprint and above); enf.store is a reference.
	 */
	struct tls_client_policy enf;
	char name[PG_ADDR_STRLEN];
	uint32_t nconn;
	struct ob_job *qhead, *qtail;
	uint32_t nqueued;
	struct pg_list sessions; /* every session of this destination (ob_sess.link) */
	uint64_t again_ns;       /* tcp_connect said PG_AGAIN: not before this */
};

struct ob_read {
	struct worker *w;  /* frees it: the session and the message may be gone */
	struct ob_sess *s; /* a body read; NULL once the session is gone */
	struct ob_msg *om; /* a DSN's read; NULL once the message state is gone */
};

/* A session, as the job side sees it (ob_sess_set_state traces changes). */
enum ob_sstate {
	OB_S_CONNECTING, /* the connection is being opened */
	OB_S_BUSY,       /* running a job, or QUIT */
	OB_S_IDLE,       /* cached for the next job of its destination */
	OB_S_CLOSING,    /* the engine is done: the connection ends */
	OB_S_COUNT
};

/* Where the body of the session's job stands (spool reads, chunk by chunk). */
enum ob_body {
	OB_B_NONE,    /* nothing read yet, or the last piece was handed out */
	OB_B_READING, /* a spool read is in flight (rd) */
	OB_B_WAIT,    /* the spool's ring was full: the poll starts the read */
	OB_B_READY,   /* buf holds the next piece */
	OB_B_FAILED,  /* a read failed (read_err): the message is never sent truncated */
};

struct ob_sess {
	struct pg_list link; /* d->sessions */
	struct outbound *ob;
	struct ob_dest *d;
	struct conn conn; /* TCP, STARTTLS, the engine's I/O (conn.h) */
	struct smtp_client *smtp;
	struct timer idle_timer; /* the connection cache's limit while IDLE */
	enum ob_sstate state;
	struct ob_job *job;
	bool job_done;     /* message_done came: finish the job outside the engine */
	uint32_t messages; /* sent on this connection */
	/* the body of the job's message, chunk by chunk */
	enum ob_body body;
	uint32_t chunk; /* next chunk to read */
	uint8_t *buf;
	size_t buf_len, buf_cap;
	struct ob_read *rd; /* read in flight */
	int read_err;
	/* TLS: the policy's decision and what the handshake showed */
	bool starttls; /* STARTTLS was tried (tls_decide_starttls) */
	bool decided;  /* tls holds the decision of this session */
	struct tls_decision tls;
	bool cert_ok; /* tls_client_check: the certificate meets the level */
	struct tls_peer peer;
	char cert_why[200];
	bool enf_cert_ok; /* ... and the enforced level (ob_dest.enf) under mode=testing */
	char enf_cert_why[200];
};

/* A `posternctl dns` request of worker 0 (outbound_dns_cmd): asked, then answered. */
#define OB_DNSQ_MAX 8
enum { OB_DNSQ_FREE, OB_DNSQ_PENDING, OB_DNSQ_DONE };

struct ob_dnsq {
	uint8_t state, op, flags, fail_kind;
	uint32_t queries, hits, flushed;
	uint64_t seq, latency_ns;
	char name[DNS_NAME_MAX];
	struct dns_route r;
};

struct ob_broken {
	struct pg_addr addr;
	uint16_t port;
	uint64_t until_ns;
};

struct outbound {
	struct worker *w;
	struct snap_delivery cfg; /* the retry schedule; the scalar keys: ob_setting() */
	char hostname[SNAP_SMTP_HOSTNAME_MAX + 1];
	struct smtp_client_config ccfg;
	struct ob_dest *dests;
	struct pg_list active; /* messages not IDLE (ob_msg.link) */
	uint32_t nactive;
	uint32_t nsess;
	uint64_t seen_commits;
	uint64_t next_scan_rt; /* CLOCK_REALTIME ns: the next full scan */
	uint64_t last_id;      /* the last message the scans saw */
	bool rescan;
	uint64_t dsn_seq;
	uint64_t dns_seq;
	unsigned work;
	/* TLS */
	SSL_CTX *tls_ctx;       /* the client context; NULL: TLS unavailable */
	X509_STORE *ca_store;   /* smtp_tls_CAfile of this generation */
	X509_STORE **ta_stores; /* [npolicy] tafile= stores, built when first used */
	uint32_t npolicy;
	struct ob_broken broken[OB_TLS_BROKEN_MAX]; /* level may: handshakes that failed */
	struct ob_dnsq dnsq[OB_DNSQ_MAX];
};

/* A declared-once key (settings.h) of the worker's live snapshot. */
static inline uint64_t ob_setting(const struct outbound *ob, enum setting_id id)
{
	return setting_u64(ob->w->snap, id);
}

/* outbound.c */
uint64_t ob_realtime(void);
void ob_value(char *dst, size_t size, const char *src);

/* outbound_route.c */
int ob_msg_start(struct outbound *ob, struct spool_msg *m);
unsigned ob_dns_poll(struct outbound *ob);
void ob_msg_link(struct outbound *ob, struct ob_msg *om);
void ob_msg_unlink(struct outbound *ob, struct ob_msg *om);
void ob_msg_release(struct outbound *ob, struct ob_msg *om);
void ob_msg_free(struct outbound *ob, struct ob_msg *om);
void ob_job_free(struct outbound *ob, struct ob_job *j);
const char *ob_domain(const char *rcpt);
void ob_result_local(struct ob_result *res, uint16_t code, const char *status, const char *remote,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* outbound_dest.c */
void ob_job_enqueue(struct outbound *ob, struct ob_job *j);
void ob_dispatch(struct outbound *ob, struct ob_dest *d);
void ob_dest_fail_queue(struct outbound *ob, struct ob_dest *d, const char *why);
void ob_dests_sweep(struct outbound *ob);
void ob_dests_destroy(struct outbound *ob);

/* outbound_tls.c */
void ob_tls_adopt(struct outbound *ob, const struct snap_header *h);
void ob_tls_destroy(struct outbound *ob);
void ob_policy(struct outbound *ob, const char *domain, const struct ob_nh *nh,
               const struct ob_floor *floor, struct tls_client_policy *p,
               struct tls_client_policy *enf, struct tls_combined *c);
uint64_t ob_polkey(const struct tls_client_policy *p, const struct tls_client_policy *enf);
bool ob_tls_testing(const struct tls_client_policy *p);
void ob_floor_lookup(struct outbound *ob, struct ob_msg *om);
bool ob_tls_broken(struct outbound *ob, const struct pg_addr *addr, uint16_t port);
void ob_tls_mark_broken(struct outbound *ob, const struct pg_addr *addr, uint16_t port);
bool ob_same_tls(const struct snap_header *h, const struct ob_job *j, const char *a, const char *b);
void ob_tls_evidence(const struct ob_dest *d, const struct ob_sess *s, const struct ob_job *j,
                     const struct smtp_client_reply *r, struct ob_tls_ev *t);

/* outbound_sess.c */
struct ob_sess *ob_sess_open(struct outbound *ob, struct ob_dest *d, int *rc);
void ob_sess_take(struct ob_sess *s);
void ob_sess_retry_read(struct ob_sess *s);
void ob_sess_destroy(struct ob_sess *s);

/* outbound_result.c */
void ob_job_results(struct outbound *ob, struct ob_dest *d, struct ob_sess *s, struct ob_job *j);
void ob_job_finish(struct outbound *ob, struct ob_job *j, bool failover);
void ob_msg_done(struct outbound *ob, struct ob_msg *om);
void ob_dsn_put(struct outbound *ob, struct ob_msg *om);
void ob_dsn_read_start(struct outbound *ob, struct ob_msg *om);

#endif
