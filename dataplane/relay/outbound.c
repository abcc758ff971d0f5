/*
 * outbound.c - delivery (outbound.h): the scheduler over the worker's spool
 * queue, jobs per next-hop list, destinations with their connection
 * limits, sessions running the SMTP client engine over TCP, the results
 * per recipient, retries, and bounces (DSNs) back into the spool.
 *
 * Object lifetimes, all in the worker's arena and touched by its worker
 * only:
 *   ob_msg   per message being delivered, or with a deferral reason to
 *            show: hangs off the spool message (spool_msg_user) and is
 *            freed before the message can leave the queue.
 *   ob_job   a message's recipients for one next-hop list, queued on the
 *            destination of the list entry it is at, or run by a session.
 *   ob_dest  one next-hop address:port under one TLS policy (a connection
 *            is only reused for mail of the same policy, as Postfix keys
 *            its connection cache); kept while it has jobs or
 *            connections, freed by the sweep after that.
 *   ob_sess  one connection; runs one job at a time, idles for reuse.
 *   ob_read  one spool read in flight; outlives a session that dies while
 *            the read runs (the read cannot be cancelled).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_log.h>

#include "core/events.h"
#include "core/timer.h"
#include "core/worker.h"
#include "dsn.h"
#include "inbound.h"
#include "net/tcp.h"
#include "outbound.h"
#include "policy_lookup.h"
#include "result.h"
#include "smtp/smtp_client.h"
#include "snap_format.h"
#include "spool/spool.h"
#include "tls_client.h"
#include "tls_stream.h"
#include "tlsio.h"

#define OB_JOB_RCPT_MAX 100         /* recipients per transaction (RFC 5321 §4.5.3.1.8 minimum) */
#define OB_ACTIVE_MAX 4096          /* messages in delivery at once per worker */
#define OB_NH_MAX 16                /* next hops per job (TRANSPORT_MAX_NEXTHOPS) */
#define OB_RUN_ROUNDS 64            /* feed/flush rounds per event */
#define OB_SCAN_NS (1000ull * 1000 * 1000) /* full queue scan at least this often */
#define OB_AGAIN_NS (100ull * 1000 * 1000) /* retry after tcp_connect said PG_AGAIN */
#define OB_LINGER_NS (30ull * 1000 * 1000 * 1000)
#define OB_DSN_READ_MAX (64u * 1024) /* what of the original a DSN quotes at most */
#define OB_REPLY_MAX 200
/* level may (and mode=testing): a peer whose handshake failed gets plaintext this long */
#define OB_TLS_BROKEN_NS (600ull * 1000 * 1000 * 1000)
#define OB_TLS_BROKEN_MAX 256
#define OB_NH_DEST_MAX 40 /* "[255.255.255.255]:65535" */

enum ob_rstate { OB_R_PENDING, OB_R_DELIVERED, OB_R_DEFERRED, OB_R_BOUNCED };

/* What TLS did for an attempt: the evidence of the delivery record. */
struct ob_tls_ev {
	char policy[96];  /* the tls_policy entry as written, or "default" */
	char level[12];   /* "may" ... "secure" */
	char tls[16];     /* "TLSv1.3", or "none" */
	char cipher[48];
	char verdict[24]; /* tls_verdict_name */
	char subject[128];
	char fingerprint[96];
	char outcome[16]; /* verified fingerprint encrypted plaintext deferred would_defer not_sent */
	char note[160];   /* why it deferred, would have, or fell back */
};

struct ob_result {
	uint8_t state; /* enum ob_rstate */
	uint16_t code;
	char status[16];
	char remote[24]; /* "198.19.0.2" */
	char text[OB_REPLY_MAX + 1];
	struct ob_tls_ev tls;
};

enum ob_mstate {
	OB_M_IDLE,    /* only a deferral reason to show */
	OB_M_ACTIVE,  /* jobs running */
	OB_M_DSN,     /* the DSN needs the original's first chunk: read to start */
	OB_M_DSN_READING, /* that read is in flight */
	OB_M_DSN_PUT, /* writing the DSN to the spool (retried while PG_AGAIN) */
	OB_M_DSN_SYNC /* the DSN is being committed */
};

struct ob_msg {
	struct ob_msg *next, *prev; /* ob->active, while not IDLE */
	struct outbound *ob;
	struct spool_msg *m;
	uint8_t state;
	bool delete_pending;
	uint32_t jobs_left;
	uint32_t nrcpt;
	struct ob_result *res; /* [nrcpt] this attempt's results */
	/* the envelope for the engine, from the spool record's params */
	char *params;      /* a copy, tokens NUL-terminated in place */
	const char **rcpts;
	unsigned *notify;
	const char **orcpt;
	struct smtp_client_envelope env;
	/* the DSN */
	uint8_t *orig;
	size_t orig_len;
	bool orig_complete;
	char *dsn;
	size_t dsn_len;
	struct spool_msg *dsn_msg;
	struct ob_read *rd; /* the DSN's read in flight */
	bool dsn_8bit;
	char last_reply[OB_REPLY_MAX + 1];
};

struct ob_nh {
	uint32_t addr; /* network order */
	uint16_t port;
	char dest[OB_NH_DEST_MAX]; /* the next-hop destination, the TLS policy key */
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
	bool tls_retried; /* level may: this job went back for plaintext once */
};

enum ob_sstate { OB_S_CONNECTING, OB_S_BUSY, OB_S_IDLE, OB_S_CLOSING };

struct ob_dest {
	struct ob_dest *next;
	uint32_t addr;
	uint16_t port;
	uint64_t polkey;               /* of pol without its store */
	struct tls_client_policy pol; /* pol.store is a reference */
	char name[INET_ADDRSTRLEN];
	uint32_t nconn;
	struct ob_job *qhead, *qtail;
	uint32_t nqueued;
	struct ob_sess *sessions; /* every session of this destination */
	uint64_t again_ns;        /* tcp_connect said PG_AGAIN: not before this */
};

struct ob_read {
	struct worker *w;  /* frees it: the session and the message may be gone */
	struct ob_sess *s; /* a body read; NULL once the session is gone */
	struct ob_msg *om; /* a DSN's read; NULL once the message state is gone */
};

struct ob_sess {
	struct ob_sess *next, *prev; /* d->sessions */
	struct outbound *ob;
	struct ob_dest *d;
	struct tcp_conn *c;
	struct smtp_client *smtp;
	struct timer timer;
	uint8_t state;
	struct ob_job *job;
	uint32_t messages; /* sent on this connection */
	/* the body of the job's message, chunk by chunk */
	uint32_t chunk;     /* next chunk to read */
	uint8_t *buf;
	size_t buf_len, buf_cap;
	bool buf_full;  /* buf holds the next piece, not handed out yet */
	bool buf_given; /* buf was handed to the engine */
	struct ob_read *rd; /* read in flight */
	bool read_wait;     /* spool_read_chunk said PG_AGAIN */
	int read_err;
	bool job_done; /* message_done came: finish the job after the engine returns */
	bool in_run, dead;
	/* STARTTLS */
	struct tls_stream *tls;
	bool tls_start;     /* STARTTLS got 220: start the handshake */
	bool tls_on;        /* the handshake completed */
	bool tls_failed;    /* the handshake failed (or could not start) */
	bool tls_shut;      /* our close_notify is queued */
	bool tls_ok;        /* the session meets the level (tls_client_check) */
	bool tls_declined;  /* helo_done deferred the mail by TLS policy */
	bool would_defer;   /* mode=testing: it would have */
	struct tls_peer peer;
	char tls_why[200];
};

struct ob_broken {
	uint32_t addr;
	uint16_t port;
	uint64_t until_ns;
};

struct outbound {
	struct worker *w;
	struct snap_delivery cfg;
	char hostname[SNAP_SMTP_HOSTNAME_MAX + 1];
	struct smtp_client_config ccfg;
	struct ob_dest *dests;
	struct ob_msg *active; /* messages not IDLE */
	uint32_t nactive;
	uint32_t nsess;
	uint64_t seen_commits;
	uint64_t next_scan_rt; /* CLOCK_REALTIME ns: the next full scan */
	uint64_t last_id;      /* the last message the scans saw */
	bool rescan;
	uint64_t dsn_seq;
	unsigned work;
	/* TLS */
	SSL_CTX *tls_ctx;          /* the client context; NULL: TLS unavailable */
	X509_STORE *ca_store;      /* smtp_tls_CAfile of this generation */
	X509_STORE **ta_stores;    /* [npolicy] tafile= stores, built when first used */
	uint32_t npolicy;
	struct ob_broken broken[OB_TLS_BROKEN_MAX]; /* level may: handshakes that failed */
};

static void ob_run(struct ob_sess *s);
static const char *ob_domain(const char *rcpt);
static void ob_sess_free(struct ob_sess *s);
static void ob_dispatch(struct outbound *ob, struct ob_dest *d);
static void ob_job_finish(struct outbound *ob, struct ob_job *j, bool failover);
static void ob_msg_done(struct outbound *ob, struct ob_msg *om);
static void ob_dsn_put(struct outbound *ob, struct ob_msg *om);
static void ob_dsn_read_start(struct outbound *ob, struct ob_msg *om);

static uint64_t ob_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* An event field value: no separator, no control characters. */
static void ob_value(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = (unsigned char)src[i] < 32 || src[i] == 127 ? '?' : src[i];
	dst[i] = '\0';
}

static struct outbound *ob_get(struct worker *w)
{
	struct outbound *ob = w->outbound;

	if (ob != NULL)
		return ob;
	ob = worker_alloc(w, sizeof(*ob));
	if (ob == NULL)
		return NULL;
	ob->w = w;
	snap_delivery_default(&ob->cfg);
	snprintf(ob->hostname, sizeof(ob->hostname), "localhost");
	smtp_client_config_default(&ob->ccfg);
	ob->ccfg.helo_name = ob->hostname;
	ob->rescan = true;
	ob->tls_ctx = tls_client_ctx_new();
	if (ob->tls_ctx == NULL)
		RTE_LOG(ERR, USER1, "worker %u: no TLS client context: strict TLS mail is deferred\n",
		        w->id);
	w->outbound = ob;
	return ob;
}

/* ---- TLS policy ---- */

/* The trust anchors of a policy entry (or SNAP_TRUST_GLOBAL) as a store. */
static X509_STORE *ob_store_range(const struct snap_header *h, uint32_t policy, bool partial)
{
	uint32_t first = 0, count = 0, n = snap_tls_trust_range(h, policy, &first);
	const struct snap_tls_trust *t = snap_tls_trust(h, &count);
	X509_STORE *st;

	if (n == 0 || t == NULL || (st = X509_STORE_new()) == NULL)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *der = snap_trust_der(h, &t[first + i]);

		if (der == NULL || tls_store_add_der(st, der, t[first + i].der.len) != PG_OK) {
			X509_STORE_free(st);
			return NULL; /* verify/secure then fail: "not trusted" */
		}
	}
	if (partial)
		X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	return st;
}

/* This generation's trust: smtp_tls_CAfile now, tafile= stores when used. */
static void ob_tls_adopt(struct outbound *ob, const struct snap_header *h)
{
	struct worker *w = ob->w;
	uint32_t np = 0;

	X509_STORE_free(ob->ca_store); /* sessions and destinations hold their own references */
	ob->ca_store = ob_store_range(h, SNAP_TRUST_GLOBAL, false);
	for (uint32_t i = 0; ob->ta_stores != NULL && i < ob->npolicy; i++)
		X509_STORE_free(ob->ta_stores[i]);
	worker_free(w, ob->ta_stores);
	ob->ta_stores = NULL;
	ob->npolicy = 0;
	(void)snap_section(h, SNAP_SEC_TLS_POLICY, &np);
	if (np > 0) {
		ob->ta_stores = worker_alloc(w, np * sizeof(*ob->ta_stores));
		if (ob->ta_stores != NULL) {
			memset(ob->ta_stores, 0, np * sizeof(*ob->ta_stores));
			ob->npolicy = np;
		}
	}
}

static uint64_t ob_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t ob_polkey(const struct tls_client_policy *p)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = ob_fnv(h, &p->level, 1);
	h = ob_fnv(h, &p->grade, 1);
	h = ob_fnv(h, &p->protocols, sizeof(p->protocols));
	h = ob_fnv(h, &p->flags, sizeof(p->flags));
	h = ob_fnv(h, p->match, strlen(p->match) + 1);
	h = ob_fnv(h, p->exclude, strlen(p->exclude) + 1);
	h = ob_fnv(h, p->servername, strlen(p->servername) + 1);
	return ob_fnv(h, p->source, strlen(p->source) + 1);
}

/*
 * The TLS policy of a delivery to `domain` through next hop nh
 * (policy_tls_lookup: the next hop's entry, then the domain's, then
 * tls_default_level). p->store is borrowed from ob.
 */
static void ob_policy(struct outbound *ob, const char *domain, const struct ob_nh *nh,
                      struct tls_client_policy *p)
{
	const struct snap_header *h = ob->w->snap;
	struct policy_result pr;

	memset(p, 0, sizeof(*p));
	p->level = SNAP_TLS_MAY;
	snprintf(p->source, sizeof(p->source), "default");
	if (h == NULL || policy_tls_lookup(h, domain, nh->dest, &pr) != PG_OK) {
		if (h != NULL)
			p->level = policy_default_level(h);
		snprintf(p->source, sizeof(p->source), "default (tls_default_level = %s)",
		         policy_level_name(p->level));
		return;
	}
	p->level = pr.level;
	if (pr.entry == NULL) {
		snprintf(p->source, sizeof(p->source), "default (tls_default_level = %s)",
		         policy_level_name(p->level));
	} else {
		const struct snap_tls_policy *e = pr.entry;
		uint32_t n = 0;
		const struct snap_tls_policy *base = snap_section(h, SNAP_SEC_TLS_POLICY, &n);
		uint32_t idx = (uint32_t)(e - base);

		p->grade = e->ciphers;
		p->protocols = e->protocols;
		p->flags = e->flags;
		snprintf(p->match, sizeof(p->match), "%s", snap_string(h, e->match));
		snprintf(p->exclude, sizeof(p->exclude), "%s", snap_string(h, e->exclude));
		snprintf(p->servername, sizeof(p->servername), "%s", snap_string(h, e->servername));
		snprintf(p->source, sizeof(p->source), "%s", snap_string(h, e->text));
		for (char *c = p->source; *c != '\0'; c++)
			if (*c == '\t')
				*c = ' '; /* the entry as written, one line, for the records */
		if (snap_string(h, e->tafile)[0] != '\0' && idx < ob->npolicy) {
			if (ob->ta_stores[idx] == NULL)
				ob->ta_stores[idx] = ob_store_range(h, idx, true);
			p->store = ob->ta_stores[idx];
			return;
		}
	}
	if (p->level == SNAP_TLS_VERIFY || p->level == SNAP_TLS_SECURE)
		p->store = ob->ca_store;
}

static bool ob_tls_broken(struct outbound *ob, uint32_t addr, uint16_t port)
{
	for (unsigned i = 0; i < OB_TLS_BROKEN_MAX; i++) {
		struct ob_broken *b = &ob->broken[i];

		if (b->addr == addr && b->port == port && b->until_ns > ob->w->now_ns)
			return true;
	}
	return false;
}

static void ob_tls_mark_broken(struct outbound *ob, uint32_t addr, uint16_t port)
{
	struct ob_broken *slot = &ob->broken[0];

	for (unsigned i = 0; i < OB_TLS_BROKEN_MAX; i++) {
		struct ob_broken *b = &ob->broken[i];

		if (b->addr == addr && b->port == port) {
			slot = b;
			break;
		}
		if (b->until_ns < slot->until_ns)
			slot = b; /* the oldest (or an empty one) makes room */
	}
	slot->addr = addr;
	slot->port = port;
	slot->until_ns = ob->w->now_ns + OB_TLS_BROKEN_NS;
}

/* ---- messages ---- */

static void ob_msg_link(struct outbound *ob, struct ob_msg *om)
{
	om->prev = NULL;
	om->next = ob->active;
	if (ob->active != NULL)
		ob->active->prev = om;
	ob->active = om;
	ob->nactive++;
}

static void ob_msg_unlink(struct outbound *ob, struct ob_msg *om)
{
	if (om->prev != NULL)
		om->prev->next = om->next;
	else
		ob->active = om->next;
	if (om->next != NULL)
		om->next->prev = om->prev;
	om->next = om->prev = NULL;
	ob->nactive--;
}

/* Free what an attempt needed; the message keeps its last_reply. */
static void ob_msg_release(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;

	worker_free(w, om->res);
	worker_free(w, om->params);
	worker_free(w, om->rcpts);
	worker_free(w, om->notify);
	worker_free(w, om->orcpt);
	worker_free(w, om->orig);
	worker_free(w, om->dsn);
	om->res = NULL;
	om->params = NULL;
	om->rcpts = NULL;
	om->notify = NULL;
	om->orcpt = NULL;
	om->orig = NULL;
	om->dsn = NULL;
	om->orig_len = om->dsn_len = 0;
	om->orig_complete = false;
}

static void ob_msg_free(struct outbound *ob, struct ob_msg *om)
{
	if (om->rd != NULL)
		om->rd->om = NULL; /* the read completes on its own */
	if (om->dsn_msg != NULL)
		spool_msg_forget_cb(ob->w->spool, om->dsn_msg); /* the DSN stays queued */
	if (om->state != OB_M_IDLE)
		ob_msg_unlink(ob, om);
	ob_msg_release(ob, om);
	if (om->m != NULL)
		spool_msg_set_user(om->m, NULL);
	worker_free(ob->w, om);
}

/*
 * The params the inbound side stored (inbound.h INBOUND_PARAMS_*) into
 * the engine's envelope. Unknown or missing items are left at their
 * defaults: the message is still delivered, without the parameter.
 */
static int ob_msg_envelope(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	uint32_t len = 0, r = 0;
	const void *params = spool_msg_params(om->m, &len);
	char *line, *save = NULL;

	om->nrcpt = spool_msg_nrcpt(om->m);
	om->res = worker_alloc(w, om->nrcpt * sizeof(*om->res));
	om->rcpts = worker_alloc(w, om->nrcpt * sizeof(*om->rcpts));
	om->notify = worker_alloc(w, om->nrcpt * sizeof(*om->notify));
	om->orcpt = worker_alloc(w, om->nrcpt * sizeof(*om->orcpt));
	om->params = worker_alloc(w, (size_t)len + 1);
	if (om->res == NULL || om->rcpts == NULL || om->notify == NULL || om->orcpt == NULL ||
	    om->params == NULL)
		return PG_ERROR;
	if (len > 0)
		memcpy(om->params, params, len);
	om->params[len] = '\0';
	for (uint32_t i = 0; i < om->nrcpt; i++) {
		om->rcpts[i] = spool_msg_rcpt(om->m, i);
		om->orcpt[i] = "";
	}
	memset(&om->env, 0, sizeof(om->env));
	om->env.sender = spool_msg_sender(om->m);
	om->env.size = spool_msg_body_len(om->m);
	om->env.envid = "";
	for (line = strtok_r(om->params, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *tok, *tsave = NULL;
		char kind = line[0];

		if (kind == INBOUND_PARAMS_RCPT && r >= om->nrcpt)
			break;
		for (tok = strtok_r(line + 1, " ", &tsave); tok != NULL;
		     tok = strtok_r(NULL, " ", &tsave)) {
			if (kind == INBOUND_PARAMS_MAIL) {
				if (strcmp(tok, "BODY=8BITMIME") == 0)
					om->env.body = SMTP_BODY_8BITMIME;
				else if (strcmp(tok, "BODY=7BIT") == 0)
					om->env.body = SMTP_BODY_7BIT;
				else if (strcmp(tok, "SMTPUTF8") == 0)
					om->env.smtputf8 = true;
				else if (strcmp(tok, "RET=FULL") == 0)
					om->env.ret = SMTP_RET_FULL;
				else if (strcmp(tok, "RET=HDRS") == 0)
					om->env.ret = SMTP_RET_HDRS;
				else if (strncmp(tok, "ENVID=", 6) == 0)
					om->env.envid = tok + 6;
			} else if (kind == INBOUND_PARAMS_RCPT) {
				if (strncmp(tok, "NOTIFY=", 7) == 0) {
					char *v = tok + 7, *vsave = NULL;

					for (char *n = strtok_r(v, ",", &vsave); n != NULL;
					     n = strtok_r(NULL, ",", &vsave)) {
						if (strcmp(n, "NEVER") == 0)
							om->notify[r] |= SMTP_NOTIFY_NEVER;
						else if (strcmp(n, "SUCCESS") == 0)
							om->notify[r] |= SMTP_NOTIFY_SUCCESS;
						else if (strcmp(n, "FAILURE") == 0)
							om->notify[r] |= SMTP_NOTIFY_FAILURE;
						else if (strcmp(n, "DELAY") == 0)
							om->notify[r] |= SMTP_NOTIFY_DELAY;
					}
				} else if (strncmp(tok, "ORCPT=", 6) == 0) {
					om->orcpt[r] = tok + 6;
				}
			}
		}
		if (kind == INBOUND_PARAMS_RCPT)
			r++;
	}
	return PG_OK;
}

/* A result made here, not by a server. */
static void ob_result_local(struct ob_result *res, uint16_t code, const char *status,
                            const char *remote, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void ob_result_local(struct ob_result *res, uint16_t code, const char *status,
                            const char *remote, const char *fmt, ...)
{
	va_list ap;

	res->code = code;
	snprintf(res->status, sizeof(res->status), "%s", status);
	snprintf(res->remote, sizeof(res->remote), "%s", remote != NULL ? remote : "");
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
	res->state = code >= 500 ? OB_R_BOUNCED : code >= 400 ? OB_R_DEFERRED : OB_R_DELIVERED;
}

/* ---- destinations and jobs ---- */

static struct ob_dest *ob_dest_get(struct outbound *ob, uint32_t addr, uint16_t port,
                                  const struct tls_client_policy *pol)
{
	struct ob_dest *d;
	struct in_addr a = {.s_addr = addr};
	uint64_t key = ob_polkey(pol);

	for (d = ob->dests; d != NULL; d = d->next) {
		if (d->addr == addr && d->port == port && d->polkey == key &&
		    strcmp(d->pol.source, pol->source) == 0) {
			if (d->pol.store != pol->store) {
				/* a new generation's trust for the connections made from now on */
				X509_STORE_free(d->pol.store);
				d->pol.store = pol->store;
				if (d->pol.store != NULL)
					X509_STORE_up_ref(d->pol.store);
			}
			return d;
		}
	}
	d = worker_alloc(ob->w, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->addr = addr;
	d->port = port;
	d->polkey = key;
	d->pol = *pol;
	if (d->pol.store != NULL)
		X509_STORE_up_ref(d->pol.store);
	inet_ntop(AF_INET, &a, d->name, sizeof(d->name));
	d->next = ob->dests;
	ob->dests = d;
	return d;
}

static void ob_job_free(struct outbound *ob, struct ob_job *j)
{
	struct worker *w = ob->w;

	worker_free(w, j->idx);
	worker_free(w, j->rcpts);
	worker_free(w, j->notify);
	worker_free(w, j->orcpt);
	worker_free(w, j->reply);
	worker_free(w, j->got);
	worker_free(w, j);
}

/* Queue j on the destination of its current next hop. */
static void ob_job_enqueue(struct outbound *ob, struct ob_job *j)
{
	struct tls_client_policy pol;
	struct ob_dest *d;

	ob_policy(ob, ob_domain(j->rcpts[0]), &j->nh[j->at], &pol);
	d = ob_dest_get(ob, j->nh[j->at].addr, j->nh[j->at].port, &pol);

	if (d == NULL) {
		/* out of memory: every recipient of the job is deferred */
		for (uint32_t i = 0; i < j->nrcpt; i++)
			ob_result_local(&j->om->res[j->idx[i]], 451, "4.3.0", NULL,
			                "451 4.3.0 Error: out of memory");
		ob_job_finish(ob, j, false);
		return;
	}
	j->next = NULL;
	if (d->qtail != NULL)
		d->qtail->next = j;
	else
		d->qhead = j;
	d->qtail = j;
	d->nqueued++;
	ob_dispatch(ob, d);
}

static struct ob_job *ob_job_new(struct outbound *ob, struct ob_msg *om, uint32_t cap)
{
	struct worker *w = ob->w;
	struct ob_job *j = worker_alloc(w, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->om = om;
	j->idx = worker_alloc(w, cap * sizeof(*j->idx));
	j->rcpts = worker_alloc(w, cap * sizeof(*j->rcpts));
	j->notify = worker_alloc(w, cap * sizeof(*j->notify));
	j->orcpt = worker_alloc(w, cap * sizeof(*j->orcpt));
	j->reply = worker_alloc(w, cap * sizeof(*j->reply));
	j->got = worker_alloc(w, cap * sizeof(*j->got));
	if (j->idx == NULL || j->rcpts == NULL || j->notify == NULL || j->orcpt == NULL ||
	    j->reply == NULL || j->got == NULL) {
		ob_job_free(ob, j);
		return NULL;
	}
	return j;
}

/* The envelope of a job: the message's, with the job's recipients only. */
static void ob_job_envelope(struct ob_job *j)
{
	struct ob_msg *om = j->om;

	for (uint32_t i = 0; i < j->nrcpt; i++) {
		j->rcpts[i] = om->rcpts[j->idx[i]];
		j->notify[i] = om->notify[j->idx[i]];
		j->orcpt[i] = om->orcpt[j->idx[i]];
		j->got[i] = false;
	}
	j->env = om->env;
	j->env.rcpts = j->rcpts;
	j->env.notify = j->notify;
	j->env.orcpt = j->orcpt;
	j->env.nrcpt = j->nrcpt;
}

/* The recipient's domain, "" without one. */
static const char *ob_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	return at != NULL ? at + 1 : "";
}

/* Do two recipient domains get the same TLS policy at every next hop? */
static bool ob_same_tls(const struct snap_header *h, const struct ob_job *j, const char *a,
                        const char *b)
{
	if (strcasecmp(a, b) == 0)
		return true;
	for (uint32_t k = 0; k < j->nnh; k++) {
		struct policy_result ra, rb;

		if (policy_tls_lookup(h, a, j->nh[k].dest, &ra) != PG_OK ||
		    policy_tls_lookup(h, b, j->nh[k].dest, &rb) != PG_OK)
			return false;
		if (ra.entry != rb.entry || ra.level != rb.level)
			return false;
	}
	return true;
}

/*
 * Route every recipient not yet done and start its jobs. Recipients that
 * cannot be routed get their result at once. Returns PG_ERROR when the
 * message cannot even be looked at (memory): it stays queued.
 */
static int ob_msg_start(struct outbound *ob, struct spool_msg *m)
{
	struct worker *w = ob->w;
	struct ob_msg *om = spool_msg_user(m);
	const struct snap_header *h = w->snap;
	uint32_t n;
	bool *routed;
	struct ob_job **jobs;
	uint32_t njobs = 0;

	if (om == NULL) {
		om = worker_alloc(w, sizeof(*om));
		if (om == NULL)
			return PG_ERROR;
		om->ob = ob;
		om->m = m;
		spool_msg_set_user(m, om);
	}
	if (ob_msg_envelope(ob, om) != PG_OK) {
		ob_msg_release(ob, om);
		return PG_ERROR;
	}
	n = om->nrcpt;
	routed = worker_alloc(w, n * sizeof(*routed));
	jobs = worker_alloc(w, n * sizeof(*jobs));
	if (routed == NULL || jobs == NULL) {
		worker_free(w, routed);
		worker_free(w, jobs);
		ob_msg_release(ob, om);
		return PG_ERROR;
	}
	om->state = OB_M_ACTIVE;
	ob_msg_link(ob, om);
	om->jobs_left = 1; /* held by the routing loop until its end */
	for (uint32_t i = 0; i < n; i++) {
		struct transport_result tr;
		const char *dom;
		struct ob_job *j;
		uint32_t nip = 0, cap;

		if (spool_msg_rcpt_done(m, i) || routed[i])
			continue;
		dom = ob_domain(om->rcpts[i]);
		memset(&tr, 0, sizeof(tr));
		if (h == NULL || transport_lookup(h, dom, &tr) != PG_OK || tr.nnexthops == 0) {
			ob_result_local(&om->res[i], 450, "4.4.3", NULL,
			                "450 4.4.3 <%s>: no route: mail for %s needs an MX lookup "
			                "and there is no DNS resolver yet (add a transport entry)",
			                om->rcpts[i], dom[0] != '\0' ? dom : "(no domain)");
			routed[i] = true;
			continue;
		}
		for (uint32_t k = 0; k < tr.nnexthops; k++)
			nip += (tr.nexthops[k].flags & SNAP_NH_F_IP) != 0;
		if (nip == 0) {
			ob_result_local(&om->res[i], 450, "4.4.3", NULL,
			                "450 4.4.3 <%s>: next hop %s is a host name and there is no "
			                "DNS resolver yet",
			                om->rcpts[i], snap_string(h, tr.nexthops[0].dest));
			routed[i] = true;
			continue;
		}
		/* every recipient with the same transport entry, up to the limit */
		cap = RTE_MIN(n - i, (uint32_t)OB_JOB_RCPT_MAX);
		j = ob_job_new(ob, om, cap);
		if (j == NULL) {
			ob_result_local(&om->res[i], 451, "4.3.0", NULL,
			                "451 4.3.0 Error: out of memory");
			routed[i] = true;
			continue;
		}
		for (uint32_t k = 0; k < tr.nnexthops && j->nnh < OB_NH_MAX; k++) {
			if ((tr.nexthops[k].flags & SNAP_NH_F_IP) == 0)
				continue; /* a name among IPs: skipped until there is DNS */
			j->nh[j->nnh].addr = tr.nexthops[k].addr;
			j->nh[j->nnh].port = tr.nexthops[k].port;
			snprintf(j->nh[j->nnh].dest, sizeof(j->nh[j->nnh].dest), "%s",
			         snap_string(h, tr.nexthops[k].dest));
			j->nnh++;
		}
		for (uint32_t k = i; k < n && j->nrcpt < cap; k++) {
			struct transport_result tk;

			if (spool_msg_rcpt_done(m, k) || routed[k])
				continue;
			if (k != i && (transport_lookup(h, ob_domain(om->rcpts[k]), &tk) != PG_OK ||
			               tk.entry != tr.entry ||
			               !ob_same_tls(h, j, dom, ob_domain(om->rcpts[k]))))
				continue; /* one transaction per next-hop list and TLS policy */
			j->idx[j->nrcpt++] = k;
			routed[k] = true;
		}
		ob_job_envelope(j);
		jobs[njobs++] = j;
	}
	om->jobs_left += njobs;
	worker_free(w, routed);
	for (uint32_t k = 0; k < njobs; k++)
		ob_job_enqueue(ob, jobs[k]);
	worker_free(w, jobs);
	if (--om->jobs_left == 0)
		ob_msg_done(ob, om);
	return PG_OK;
}

/* ---- the end of an attempt ---- */

static bool ob_failover_reply(const struct smtp_client_reply *r)
{
	if (r->code < 400)
		return false;
	switch (r->phase) {
	case SMTP_PHASE_GREETING:
	case SMTP_PHASE_EHLO:
	case SMTP_PHASE_HELO:
	case SMTP_PHASE_STARTTLS:
	case SMTP_PHASE_TLS:
	case SMTP_PHASE_POLICY: /* TLS policy: another next hop may do better */
		return true;
	case SMTP_PHASE_RSET:
	case SMTP_PHASE_MAIL:
		return r->local; /* lost the connection before the transaction */
	default:
		return false;
	}
}

static void ob_event_result(struct outbound *ob, struct ob_msg *om, uint32_t i,
                            const struct ob_result *res, const char *what)
{
	char id[SPOOL_ID_STRLEN], to[96], text[OB_REPLY_MAX + 1], policy[96], subject[128], note[160];
	const struct ob_tls_ev *t = &res->tls;

	ob_value(to, sizeof(to), om->rcpts[i]);
	ob_value(text, sizeof(text), res->text);
	ob_value(policy, sizeof(policy), t->policy);
	ob_value(subject, sizeof(subject), t->subject);
	ob_value(note, sizeof(note), t->note);
	dp_event(ob->w, EV_DELIVERY_ATTEMPT,
	         "queue_id=%s" EVRING_SEP "to=%s" EVRING_SEP "relay=%s" EVRING_SEP
	         "status=%s" EVRING_SEP "dsn=%s" EVRING_SEP "reply=%s" EVRING_SEP
	         "tls_policy=%s" EVRING_SEP "tls_level=%s" EVRING_SEP "tls=%s" EVRING_SEP
	         "tls_cipher=%s" EVRING_SEP "tls_verdict=%s" EVRING_SEP "peer_subject=%s" EVRING_SEP
	         "peer_fingerprint=%s" EVRING_SEP "tls_outcome=%s" EVRING_SEP "tls_note=%s",
	         spool_id_str(spool_msg_id(om->m), id), to, res->remote[0] ? res->remote : "none",
	         what, res->status, text, policy[0] ? policy : "none", t->level[0] ? t->level : "none",
	         t->tls[0] ? t->tls : "none", t->cipher, t->verdict[0] ? t->verdict : "none", subject,
	         t->fingerprint, t->outcome[0] ? t->outcome : "not_sent", note);
}

/*
 * A job is over: its results go to the message (or, on a connection
 * failure with next hops left, it moves on to the next one).
 */
static void ob_job_finish(struct outbound *ob, struct ob_job *j, bool failover)
{
	struct ob_msg *om = j->om;

	if (failover && j->at + 1 < j->nnh) {
		j->at++;
		ob_job_enqueue(ob, j);
		return;
	}
	ob_job_free(ob, j);
	if (--om->jobs_left == 0)
		ob_msg_done(ob, om);
}

/*
 * Did the message's bytes go to the server for this recipient? Only once
 * the body was being sent (BDAT starts only after a recipient was
 * accepted): an attempt that ended earlier - connection refused or lost,
 * greeting, EHLO, MAIL, RCPT or DATA refused - sent no mail, in clear or
 * otherwise, and must never be counted as a plaintext delivery.
 */
static bool ob_body_sent(const struct smtp_client_reply *r)
{
	return r != NULL && (r->phase == SMTP_PHASE_BODY || r->phase == SMTP_PHASE_EOD);
}

/* What TLS did on s for a recipient whose attempt ended with r, for the delivery records. */
static void ob_tls_evidence(const struct ob_sess *s, const struct smtp_client_reply *r,
                            struct ob_tls_ev *t)
{
	const struct tls_client_policy *p = &s->d->pol;

	memset(t, 0, sizeof(*t));
	snprintf(t->policy, sizeof(t->policy), "%.*s", (int)sizeof(t->policy) - 1, p->source);
	snprintf(t->level, sizeof(t->level), "%s%s", policy_level_name(p->level),
	         (p->flags & SNAP_TLS_F_TESTING) != 0 ? "/testing" : "");
	if (s->tls_on) {
		snprintf(t->tls, sizeof(t->tls), "%s", s->peer.protocol);
		snprintf(t->cipher, sizeof(t->cipher), "%.*s", (int)sizeof(t->cipher) - 1, s->peer.cipher);
		snprintf(t->verdict, sizeof(t->verdict), "%s", tls_verdict_name(s->peer.verdict));
		snprintf(t->subject, sizeof(t->subject), "%.*s", (int)sizeof(t->subject) - 1,
		         s->peer.subject);
		snprintf(t->fingerprint, sizeof(t->fingerprint), "%s", s->peer.fingerprint);
	} else {
		snprintf(t->tls, sizeof(t->tls), "none");
	}
	if (s->tls_declined || (s->tls_failed && p->level >= SNAP_TLS_ENCRYPT &&
	                        (p->flags & SNAP_TLS_F_TESTING) == 0))
		snprintf(t->outcome, sizeof(t->outcome), "deferred");
	else if (s->would_defer)
		snprintf(t->outcome, sizeof(t->outcome), "would_defer");
	else if (!ob_body_sent(r))
		snprintf(t->outcome, sizeof(t->outcome), "not_sent");
	else if (!s->tls_on)
		snprintf(t->outcome, sizeof(t->outcome), "plaintext");
	else if (s->peer.verdict == TLS_VERDICT_VERIFIED)
		snprintf(t->outcome, sizeof(t->outcome), "verified");
	else if (s->peer.verdict == TLS_VERDICT_FP_MATCHED)
		snprintf(t->outcome, sizeof(t->outcome), "fingerprint");
	else
		snprintf(t->outcome, sizeof(t->outcome), "encrypted");
	if (s->tls_why[0] != '\0')
		snprintf(t->note, sizeof(t->note), "%s%.*s", s->would_defer ? "would have deferred: " : "",
		         (int)sizeof(t->note) - 24, s->tls_why);
}

/*
 * Level may (or a mode=testing entry) whose handshake failed: remember the
 * peer and send the job again; the new connection skips STARTTLS.
 */
static bool ob_tls_fallback(struct ob_sess *s, struct ob_job *j)
{
	const struct tls_client_policy *p = &s->d->pol;

	if (!s->tls_failed || j->tls_retried)
		return false;
	if (p->level != SNAP_TLS_MAY && (p->flags & SNAP_TLS_F_TESTING) == 0)
		return false;
	ob_tls_mark_broken(s->ob, s->d->addr, s->d->port);
	WCOUNT(s->ob->w, delivery_tls_plaintext_fallbacks);
	if ((p->flags & SNAP_TLS_F_TESTING) != 0)
		WCOUNT(s->ob->w, delivery_tls_would_defer);
	j->tls_retried = true;
	for (uint32_t i = 0; i < j->nrcpt; i++)
		j->got[i] = false;
	ob_job_enqueue(s->ob, j);
	return true;
}

/* The engine's results of the job a session ran. */
static void ob_job_results(struct ob_sess *s, struct ob_job *j)
{
	struct outbound *ob = s->ob;
	bool failover = true;

	if (ob_tls_fallback(s, j))
		return;

	for (uint32_t i = 0; i < j->nrcpt; i++) {
		if (!j->got[i]) {
			/* the engine's contract says this cannot happen; never lose it */
			j->reply[i].code = 451;
			snprintf(j->reply[i].status, sizeof(j->reply[i].status), "4.3.0");
			snprintf(j->reply[i].text, sizeof(j->reply[i].text), "no result");
			j->reply[i].local = true;
			j->reply[i].phase = SMTP_PHASE_MAIL;
		}
		failover = failover && ob_failover_reply(&j->reply[i]);
	}
	if (!(failover && j->at + 1 < j->nnh)) {
		for (uint32_t i = 0; i < j->nrcpt; i++) {
			const struct smtp_client_reply *r = &j->reply[i];
			struct ob_result *res = &j->om->res[j->idx[i]];

			res->code = r->code;
			snprintf(res->status, sizeof(res->status), "%.15s", r->status);
			snprintf(res->remote, sizeof(res->remote), "%.23s", s->d->name);
			/* local or not, the reply as a server would have said it */
			snprintf(res->text, sizeof(res->text), "%u %.15s %.*s", r->code, r->status,
			         (int)(sizeof(res->text) - 24), r->text);
			res->state = r->code < 400   ? OB_R_DELIVERED
			             : r->code < 500 ? OB_R_DEFERRED
			                             : OB_R_BOUNCED;
			if (r->phase == SMTP_PHASE_TLS && s->tls_why[0] != '\0')
				snprintf(res->text, sizeof(res->text), "%u %.15s Cannot start TLS: %.*s",
				         r->code, r->status, (int)(sizeof(res->text) - 48), s->tls_why);
			ob_tls_evidence(s, r, &res->tls);
		}
	} else {
		WCOUNT(ob->w, delivery_failovers);
	}
	ob_job_finish(ob, j, failover);
}

static uint64_t ob_retry_delay_ns(const struct snap_delivery *cfg, uint32_t attempts)
{
	uint32_t k = attempts == 0 ? 0 : attempts - 1;

	if (k >= cfg->nschedule)
		k = cfg->nschedule - 1;
	return (uint64_t)cfg->schedule_s[k] * 1000000000ull;
}

/* Apply the attempt's results to the spool; om is gone if the message is. */
static void ob_msg_apply(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct spool *sp = w->spool;
	struct spool_msg *m = om->m;
	uint32_t left = 0;
	uint32_t attempts = spool_msg_attempts(m) + 1;

	for (uint32_t i = 0; i < om->nrcpt; i++) {
		struct ob_result *res = &om->res[i];

		if (spool_msg_rcpt_done(m, i))
			continue;
		if (res->state == OB_R_DEFERRED) {
			left++;
			snprintf(om->last_reply, sizeof(om->last_reply), "%s", res->text);
		} else if (res->state == OB_R_PENDING) {
			left++; /* not attempted (cannot happen): stays queued */
		}
	}
	ob_msg_unlink(ob, om);
	om->state = OB_M_IDLE;
	if (om->delete_pending || left == 0) {
		/* the message leaves the queue: om goes first (spool_msg_user) */
		bool del = om->delete_pending;

		om->m = NULL;
		spool_msg_set_user(m, NULL);
		ob_msg_release(ob, om);
		worker_free(w, om);
		if (del) {
			WCOUNT(w, queue_deleted);
			spool_msg_delete(sp, m);
		} else {
			spool_msg_delivered(sp, m, SPOOL_RCPT_ALL);
		}
		return;
	}
	spool_msg_defer(sp, m, ob_realtime() + ob_retry_delay_ns(&ob->cfg, attempts), attempts);
	for (uint32_t i = 0; i < om->nrcpt; i++) {
		uint8_t st = om->res[i].state;

		if (!spool_msg_rcpt_done(m, i) && (st == OB_R_DELIVERED || st == OB_R_BOUNCED))
			spool_msg_delivered(sp, m, i); /* recipients remain: m stays */
	}
	ob_msg_release(ob, om);
	/* the next full scan finds it when it is due */
}

/*
 * Every job of the message is over. Decide each recipient: delivered,
 * bounced (5xx, or 4xx past the queue lifetime), deferred. Bounces go
 * into a DSN first; the spool is told only once the DSN is committed.
 */
static void ob_msg_done(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct spool_msg *m = om->m;
	uint64_t now = ob_realtime();
	uint64_t age = now > spool_msg_arrival(m) ? now - spool_msg_arrival(m) : 0;
	bool expired = age >= (uint64_t)ob->cfg.max_queue_lifetime_s * 1000000000ull;
	bool dsn = false;

	for (uint32_t i = 0; i < om->nrcpt; i++) {
		struct ob_result *res = &om->res[i];

		if (spool_msg_rcpt_done(m, i))
			continue;
		if (res->state == OB_R_DEFERRED && expired) {
			char why[OB_REPLY_MAX + 1];

			snprintf(why, sizeof(why), "%s", res->text);
			snprintf(res->text, sizeof(res->text),
			         "delivery time expired (maximal_queue_lifetime): %.*s",
			         (int)(sizeof(res->text) - 50), why);
			snprintf(res->status, sizeof(res->status), "4.4.7");
			res->state = OB_R_BOUNCED;
		}
		switch (res->state) {
		case OB_R_DELIVERED:
			WCOUNT(w, delivery_rcpts_delivered);
			ob_event_result(ob, om, i, res, "sent");
			break;
		case OB_R_DEFERRED:
			WCOUNT(w, delivery_rcpts_deferred);
			ob_event_result(ob, om, i, res, "deferred");
			break;
		case OB_R_BOUNCED:
			WCOUNT(w, delivery_rcpts_bounced);
			ob_event_result(ob, om, i, res, "bounced");
			if ((om->notify[i] & SMTP_NOTIFY_NEVER) == 0 &&
			    (om->notify[i] == 0 || (om->notify[i] & SMTP_NOTIFY_FAILURE) != 0))
				dsn = true;
			break;
		default:
			break;
		}
	}
	if (dsn && spool_msg_sender(m)[0] == '\0') {
		/* RFC 5321 §6.1: never a bounce to the null sender */
		WCOUNT(w, dsn_discarded);
		dsn = false;
	}
	if (!dsn || om->delete_pending) {
		ob_msg_apply(ob, om);
		return;
	}
	/* the original's first chunk: its headers, the whole of a small message */
	if (spool_msg_nchunks(m) == 0) {
		om->orig_complete = true;
		om->state = OB_M_DSN_PUT;
		ob_dsn_put(ob, om);
		return;
	}
	om->state = OB_M_DSN;
	ob_dsn_read_start(ob, om); /* on PG_AGAIN the poll starts it */
}

/* ---- the DSN ---- */

static void ob_dsn_read_cb(void *arg, struct spool_msg *m, uint32_t chunk, const void *data,
                           size_t len, int result, int err)
{
	struct ob_read *rd = arg;
	struct ob_msg *om = rd->om;
	struct outbound *ob;

	(void)m, (void)chunk, (void)err;
	worker_free(rd->w, rd);
	if (om == NULL)
		return; /* shutting down */
	ob = om->ob;
	om->rd = NULL;
	if (result == PG_OK) {
		size_t n = RTE_MIN(len, (size_t)OB_DSN_READ_MAX);

		om->orig = worker_alloc(ob->w, n + 1);
		if (om->orig != NULL) {
			memcpy(om->orig, data, n);
			om->orig_len = n;
			om->orig_complete = n == spool_msg_body_len(om->m);
		}
	}
	/* without the original (read error, memory): a DSN with no content part */
	om->state = OB_M_DSN_PUT;
	ob_dsn_put(ob, om);
}

static void ob_dsn_read_start(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct ob_read *rd = worker_alloc(w, sizeof(*rd));

	if (rd == NULL)
		return;
	rd->w = w;
	rd->om = om;
	if (spool_read_chunk(w->spool, om->m, 0, ob_dsn_read_cb, rd) != PG_OK) {
		worker_free(w, rd);
		return;
	}
	om->rd = rd;
	om->state = OB_M_DSN_READING;
}

static void ob_dsn_commit_cb(void *arg, struct spool_msg *m, int result, int err)
{
	struct ob_msg *om = arg;
	struct outbound *ob = om->ob;

	(void)m, (void)err;
	om->dsn_msg = NULL;
	if (result != PG_OK) {
		/* not written: the bounced recipients stay queued, tried again later */
		for (uint32_t i = 0; i < om->nrcpt; i++)
			if (om->res[i].state == OB_R_BOUNCED) {
				om->res[i].state = OB_R_DEFERRED;
				snprintf(om->res[i].text, sizeof(om->res[i].text),
				         "bounce not written: spool error");
			}
	} else {
		WCOUNT(ob->w, dsn_sent);
	}
	ob_msg_apply(ob, om);
}

/* Build the DSN and write it to the spool; PG_AGAIN from the spool retries from the poll. */
static void ob_dsn_put(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct spool *sp = w->spool;
	struct spool_msg *m = om->m;
	struct spool_envelope se;
	const char *rcpt = spool_msg_sender(m);
	char id[SPOOL_ID_STRLEN], msgid[SNAP_SMTP_HOSTNAME_MAX + 64];
	int rc;

	if (om->dsn == NULL) {
		struct dsn_rcpt *dr = worker_alloc(w, om->nrcpt * sizeof(*dr));
		struct dsn_msg dm;
		uint32_t nd = 0;
		size_t cap;
		uint64_t now = ob_realtime();

		if (dr == NULL)
			goto fail;
		for (uint32_t i = 0; i < om->nrcpt; i++) {
			struct ob_result *res = &om->res[i];

			if (spool_msg_rcpt_done(m, i) || res->state != OB_R_BOUNCED)
				continue;
			if ((om->notify[i] & SMTP_NOTIFY_NEVER) != 0 ||
			    (om->notify[i] != 0 && (om->notify[i] & SMTP_NOTIFY_FAILURE) == 0))
				continue;
			dr[nd].rcpt = om->rcpts[i];
			dr[nd].orcpt = om->orcpt[i];
			dr[nd].action = DSN_FAILED;
			dr[nd].status = res->status;
			dr[nd].remote_mta = res->remote[0] != '\0' ? res->remote : NULL;
			dr[nd].diagnostic = res->text;
			dr[nd].last_attempt = (int64_t)(now / 1000000000ull);
			nd++;
		}
		snprintf(msgid, sizeof(msgid), "%s.%" PRIu64 ".%u@%s",
		         spool_id_str(spool_msg_id(m), id), ++ob->dsn_seq, w->id, ob->hostname);
		memset(&dm, 0, sizeof(dm));
		dm.reporting_mta = ob->hostname;
		dm.sender = rcpt;
		dm.envid = om->env.envid;
		dm.arrival = (int64_t)(spool_msg_arrival(m) / 1000000000ull);
		dm.now = (int64_t)(now / 1000000000ull);
		dm.message_id = msgid;
		dm.ret_hdrs = om->env.ret == SMTP_RET_HDRS;
		dm.orig = om->orig;
		dm.orig_len = om->orig_len;
		dm.orig_complete = om->orig_complete;
		dm.rcpts = dr;
		dm.nrcpt = nd;
		dm.utf8 = om->env.smtputf8;
		cap = dsn_size_bound(&dm);
		om->dsn = worker_alloc(w, cap);
		if (om->dsn != NULL)
			om->dsn_len = dsn_write(&dm, om->dsn, cap);
		om->dsn_8bit = dsn_is_8bit(&dm);
		worker_free(w, dr);
		if (om->dsn == NULL || om->dsn_len == 0)
			goto fail;
	}
	memset(&se, 0, sizeof(se));
	se.sender = "";
	se.rcpts = &rcpt;
	se.nrcpt = 1;
	/* the DSN quotes the original: 8-bit if that was (RFC 6152) */
	se.params = om->dsn_8bit ? "M BODY=8BITMIME\nR\n" : "M\nR\n";
	se.params_len = (uint32_t)strlen(se.params);
	se.arrival_ns = ob_realtime();
	if (om->dsn_msg == NULL) {
		rc = spool_msg_begin(sp, &se, &om->dsn_msg);
		if (rc == PG_AGAIN)
			return; /* the poll retries */
		if (rc != PG_OK)
			goto fail;
		rc = spool_msg_append(sp, om->dsn_msg, om->dsn, om->dsn_len);
		if (rc == PG_AGAIN) {
			spool_msg_abort(sp, om->dsn_msg);
			om->dsn_msg = NULL;
			return;
		}
		if (rc != PG_OK) {
			spool_msg_abort(sp, om->dsn_msg);
			om->dsn_msg = NULL;
			goto fail;
		}
	}
	rc = spool_msg_commit(sp, om->dsn_msg, ob_dsn_commit_cb, om);
	if (rc == PG_AGAIN)
		return;
	if (rc != PG_OK) {
		spool_msg_abort(sp, om->dsn_msg);
		om->dsn_msg = NULL;
		goto fail;
	}
	om->state = OB_M_DSN_SYNC;
	return;
fail:
	ob_dsn_commit_cb(om, NULL, PG_ERROR, EIO);
}

/* ---- sessions ---- */

static void ob_sess_timer(struct timer *t, void *owner);
static const struct tcp_ops ob_tcp_ops;

static void ob_sess_link(struct ob_dest *d, struct ob_sess *s)
{
	s->prev = NULL;
	s->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = s;
	d->sessions = s;
	d->nconn++;
}

static void ob_sess_unlink(struct ob_dest *d, struct ob_sess *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	d->nconn--;
}

static int ob_body_read(void *user, struct smtp_client *c, const uint8_t **p, size_t *n);
static void ob_rcpt_result(void *user, struct smtp_client *c, uint32_t i,
                           const struct smtp_client_reply *r);
static void ob_message_done(void *user, struct smtp_client *c);
static void ob_starttls(void *user, struct smtp_client *c);
static int ob_helo_done(void *user, struct smtp_client *c, const struct smtp_client_info *info,
                        struct smtp_client_reply *r);

static const struct smtp_client_ops ob_smtp_ops = {
    .body_read = ob_body_read,
    .rcpt_result = ob_rcpt_result,
    .message_done = ob_message_done,
    .starttls = ob_starttls,
    .helo_done = ob_helo_done,
};

/* Start the next queued job of the destination on s. */
static void ob_sess_take(struct ob_sess *s)
{
	struct ob_dest *d = s->d;
	struct ob_job *j = d->qhead;

	d->qhead = j->next;
	if (d->qhead == NULL)
		d->qtail = NULL;
	d->nqueued--;
	j->next = NULL;
	s->job = j;
	s->chunk = 0;
	s->buf_full = s->buf_given = false;
	s->read_err = 0;
	s->read_wait = false;
	s->job_done = false;
	s->state = OB_S_BUSY;
	if (s->messages++ > 0)
		WCOUNT(s->ob->w, delivery_connection_reuses);
	WCOUNT(s->ob->w, delivery_attempts);
	smtp_client_send(s->smtp, &j->env);
}

static void ob_dest_fail_queue(struct outbound *ob, struct ob_dest *d, const char *why);

static void ob_connect(struct outbound *ob, struct ob_dest *d)
{
	struct worker *w = ob->w;
	struct ob_sess *s = worker_alloc(w, sizeof(*s));
	int rc;

	if (s == NULL)
		return;
	s->ob = ob;
	s->d = d;
	timer_init(&s->timer, ob_sess_timer);
	s->state = OB_S_CONNECTING;
	rc = tcp_connect(w, d->addr, d->port, &ob_tcp_ops, s, &s->c);
	if (rc != PG_OK) {
		worker_free(w, s);
		if (rc == PG_AGAIN || rc == PG_ERROR) {
			d->again_ns = w->now_ns + OB_AGAIN_NS; /* no port or a cap: soon again */
			return;
		}
		WCOUNT(w, delivery_connect_failures);
		ob_dest_fail_queue(ob, d, "No route to host");
		return;
	}
	ob->nsess++;
	ob_sess_link(d, s);
	WCOUNT(w, delivery_connections);
	timer_arm(w->timers, &s->timer,
	          w->now_ns + (uint64_t)ob->cfg.connect_timeout_ms * 1000000ull);
}

/* Give waiting jobs to idle sessions, and open connections up to the limit. */
static void ob_dispatch(struct outbound *ob, struct ob_dest *d)
{
	struct worker *w = ob->w;

	for (struct ob_sess *s = d->sessions; s != NULL && d->qhead != NULL; s = s->next) {
		if (s->state == OB_S_IDLE && smtp_client_reusable(s->smtp)) {
			timer_cancel(w->timers, &s->timer);
			ob_sess_take(s);
			ob_run(s);
			return; /* ob_run may have changed the list: the poll dispatches the rest */
		}
	}
	while (d->qhead != NULL && d->nconn < ob->cfg.concurrency_limit &&
	       w->now_ns >= d->again_ns) {
		uint32_t connecting = 0;

		for (struct ob_sess *s = d->sessions; s != NULL; s = s->next)
			connecting += s->state == OB_S_CONNECTING;
		if (connecting >= d->nqueued)
			break; /* enough connections on their way for what waits */
		uint32_t before = d->nconn;

		ob_connect(ob, d);
		if (d->nconn == before)
			break;
	}
}

static void ob_sess_end(struct ob_sess *s, bool reset)
{
	tcp_release(&s->c, reset);
	if (s->in_run)
		s->dead = true;
	else
		ob_sess_free(s);
}

static void ob_sess_free(struct ob_sess *s)
{
	struct outbound *ob = s->ob;
	struct worker *w = ob->w;
	struct ob_job *j = s->job;

	timer_cancel(w->timers, &s->timer);
	if (s->rd != NULL) {
		s->rd->s = NULL; /* the read completes on its own */
		s->rd = NULL;
	}
	s->job = NULL;
	if (j != NULL) {
		/* the engine gave every pending recipient a result by now (closed/timeout) */
		ob_job_results(s, j);
	}
	if (s->smtp != NULL)
		smtp_client_destroy(s->smtp);
	s->smtp = NULL;
	if (s->tls != NULL) {
		(void)tls_stream_free(s->tls); /* no ASYNC jobs on client SSLs yet */
		worker_free(w, s->tls);
		s->tls = NULL;
	}
	worker_free(w, s->buf);
	ob_sess_unlink(s->d, s);
	ob->nsess--;
	{
		struct ob_dest *d = s->d;

		worker_free(w, s);
		ob_dispatch(ob, d); /* a slot is free */
	}
}

/* ---- the engine's upcalls ---- */

static void ob_read_cb(void *arg, struct spool_msg *m, uint32_t chunk, const void *data, size_t len,
                       int result, int err)
{
	struct ob_read *rd = arg;
	struct ob_sess *s = rd->s;
	struct outbound *ob;

	(void)m, (void)chunk;
	worker_free(rd->w, rd);
	if (s == NULL)
		return; /* the session went away meanwhile */
	ob = s->ob;
	s->rd = NULL;
	if (result != PG_OK) {
		s->read_err = err != 0 ? err : EIO;
	} else {
		if (len > s->buf_cap) {
			uint8_t *nb = worker_alloc(ob->w, len);

			if (nb == NULL) {
				s->read_err = ENOMEM;
				ob_run(s);
				return;
			}
			worker_free(ob->w, s->buf);
			s->buf = nb;
			s->buf_cap = len;
		}
		memcpy(s->buf, data, len);
		s->buf_len = len;
		s->buf_full = true;
		s->chunk++;
	}
	ob_run(s);
}

static int ob_read_start(struct ob_sess *s)
{
	struct ob_read *rd = worker_alloc(s->ob->w, sizeof(*rd));
	int rc;

	if (rd == NULL)
		return PG_AGAIN;
	rd->s = s;
	rd->w = s->ob->w;
	rc = spool_read_chunk(s->ob->w->spool, s->job->om->m, s->chunk, ob_read_cb, rd);
	if (rc != PG_OK) {
		worker_free(s->ob->w, rd);
		return rc;
	}
	s->rd = rd;
	return PG_OK;
}

static int ob_body_read(void *user, struct smtp_client *c, const uint8_t **p, size_t *n)
{
	struct ob_sess *s = user;
	struct spool_msg *m = s->job->om->m;

	(void)c;
	if (s->read_err != 0)
		return PG_ERROR; /* a truncated message is never delivered */
	if (s->buf_full) {
		s->buf_full = false;
		*p = s->buf;
		*n = s->buf_len;
		if (s->buf_len > 0)
			return PG_OK;
	}
	if (s->chunk >= spool_msg_nchunks(m))
		return PG_DONE;
	if (s->rd == NULL && ob_read_start(s) != PG_OK)
		s->read_wait = true; /* the ring is full: the poll starts it */
	return PG_AGAIN;
}

static void ob_rcpt_result(void *user, struct smtp_client *c, uint32_t i,
                           const struct smtp_client_reply *r)
{
	struct ob_sess *s = user;
	struct ob_job *j = s->job;

	(void)c;
	if (j == NULL || i >= j->nrcpt)
		return;
	j->reply[i] = *r;
	j->got[i] = true;
}

static void ob_message_done(void *user, struct smtp_client *c)
{
	struct ob_sess *s = user;

	(void)c;
	s->job_done = true;
}

/* STARTTLS got 220: ob_feed drops what followed it and starts the handshake. */
static void ob_starttls(void *user, struct smtp_client *c)
{
	struct ob_sess *s = user;

	(void)c;
	s->tls_start = true;
}

/*
 * EHLO is done (after TLS, if any): the TLS policy decides whether the
 * mail goes. Postfix's wording and codes: 4.7.4 when TLS did not happen,
 * 4.7.5 when the peer's certificate fails the level. Under mode=testing
 * the verdict is logged and counted, and the mail goes as the weaker
 * levels allow (TLS as established, else plaintext).
 */
static int ob_helo_done(void *user, struct smtp_client *c, const struct smtp_client_info *info,
                        struct smtp_client_reply *r)
{
	struct ob_sess *s = user;
	struct worker *w = s->ob->w;
	const struct tls_client_policy *p = &s->d->pol;
	const char *status = "4.7.4";

	(void)c;
	if (p->level < SNAP_TLS_ENCRYPT)
		return PG_OK; /* none, may: plaintext is allowed */
	if (!info->tls) {
		if (s->ob->tls_ctx == NULL)
			snprintf(s->tls_why, sizeof(s->tls_why), "TLS is required, but unavailable locally");
		else if (!info->starttls_offered)
			snprintf(s->tls_why, sizeof(s->tls_why),
			         "TLS is required, but was not offered by host %s", s->d->name);
		else if (info->starttls_reply.code != 0)
			snprintf(s->tls_why, sizeof(s->tls_why),
			         "TLS is required, but host %s refused to start TLS: %u %.100s", s->d->name,
			         info->starttls_reply.code, info->starttls_reply.text);
		else
			snprintf(s->tls_why, sizeof(s->tls_why), "TLS is required, but was not used");
	} else if (!s->tls_ok) {
		status = "4.7.5"; /* tls_why says what the certificate lacks */
	} else {
		return PG_OK;
	}
	if ((p->flags & SNAP_TLS_F_TESTING) != 0) {
		s->would_defer = true;
		WCOUNT(w, delivery_tls_would_defer);
		return PG_OK;
	}
	s->tls_declined = true;
	WCOUNT(w, delivery_tls_policy_deferred);
	r->code = 451;
	snprintf(r->status, sizeof(r->status), "%s", status);
	snprintf(r->text, sizeof(r->text), "%s", s->tls_why);
	return PG_DECLINED;
}

/* The handshake, from the first ClientHello on; PG_DONE if it failed. */
static int ob_tls_step(struct ob_sess *s)
{
	struct worker *w = s->ob->w;
	struct tls_stream *ts = s->tls;
	int h = tls_stream_handshake(ts);

	if (h == PG_AGAIN)
		return PG_AGAIN;
	if (h == PG_ERROR) {
		WCOUNT(w, delivery_tls_failures);
		s->tls_failed = true;
		snprintf(s->tls_why, sizeof(s->tls_why), "%s", ts->why);
		smtp_client_tls_done(s->smtp, false);
		return PG_DONE;
	}
	s->tls_on = true;
	WCOUNT(w, delivery_tls_handshakes);
	s->tls_ok = tls_client_check(ts->ssl, &s->d->pol, s->d->name, s->d->name, &s->peer,
	                             s->tls_why, sizeof(s->tls_why)) == PG_OK;
	smtp_client_tls_done(s->smtp, true); /* EHLO again, over TLS */
	return PG_OK;
}

/* Start TLS after the 220 to STARTTLS: a client stream under the policy. */
static int ob_tls_start(struct ob_sess *s)
{
	struct worker *w = s->ob->w;
	struct tls_stream *ts;

	s->tls_start = false;
	ts = s->ob->tls_ctx != NULL ? worker_alloc(w, sizeof(*ts)) : NULL;
	if (ts == NULL || tls_stream_init(ts, s->ob->tls_ctx, false) != PG_OK) {
		worker_free(w, ts);
		snprintf(s->tls_why, sizeof(s->tls_why), "TLS unavailable locally (memory)");
		goto fail;
	}
	s->tls = ts;
	if (tls_client_prepare(ts->ssl, &s->d->pol, s->d->name, s->tls_why, sizeof(s->tls_why)) !=
	    PG_OK)
		goto fail;
	return ob_tls_step(s) == PG_DONE ? PG_DONE : PG_OK;
fail:
	WCOUNT(w, delivery_tls_failures);
	s->tls_failed = true;
	smtp_client_tls_done(s->smtp, false);
	return PG_DONE;
}

/* ---- the session over TCP ---- */

/* The TLS side of ob_feed: ciphertext in, the handshake, plaintext to the engine. */
static int ob_feed_tls(struct ob_sess *s, size_t *fed)
{
	struct tls_stream *ts = s->tls;
	const uint8_t *p;
	size_t n, used = 0;
	int rc, d;

	*fed = tlsio_pull(ts, s->c);
	if (!s->tls_on) {
		if (s->tls_failed)
			return smtp_client_run(s->smtp);
		rc = ob_tls_step(s);
		if (rc == PG_AGAIN)
			return PG_OK;
		if (rc == PG_DONE)
			return smtp_client_run(s->smtp);
		*fed += 1;
	}
	d = tls_stream_decrypt(ts);
	if (d == PG_ERROR) {
		smtp_client_closed(s->smtp);
		return PG_DONE;
	}
	n = tls_stream_plain(ts, &p);
	if (n > 0) {
		rc = smtp_client_input(s->smtp, p, n, &used);
		tls_stream_plain_consume(ts, used);
		*fed += used;
		if (rc == PG_OK)
			rc = smtp_client_run(s->smtp);
		return rc;
	}
	if (d == PG_DONE) {
		smtp_client_closed(s->smtp); /* the server's close_notify */
		return PG_DONE;
	}
	return smtp_client_run(s->smtp);
}

static int ob_feed(struct ob_sess *s, size_t *fed)
{
	const uint8_t *p[2];
	uint32_t l[2], total = 0;
	size_t used = 0;
	int rc = PG_OK;

	*fed = 0;
	if (s->tls != NULL)
		return ob_feed_tls(s, fed);
	if (tcp_recv_peek(s->c, &p[0], &l[0], &p[1], &l[1]) == 0)
		return smtp_client_run(s->smtp);
	for (unsigned i = 0; i < 2; i++) {
		if (l[i] == 0)
			continue;
		used = 0;
		rc = smtp_client_input(s->smtp, p[i], l[i], &used);
		total += (uint32_t)used;
		if (rc != PG_OK || used < l[i])
			break;
	}
	if (total > 0)
		tcp_recv_consume(s->c, total);
	*fed = total;
	if (s->tls_start) {
		/* what the server sent after its 220, before our ClientHello: injection */
		tcp_recv_discard(s->c);
		*fed += 1;
		if (ob_tls_start(s) == PG_DONE)
			return smtp_client_run(s->smtp);
		return PG_OK;
	}
	if (rc == PG_OK)
		rc = smtp_client_run(s->smtp);
	return rc;
}

static void ob_arm(struct ob_sess *s)
{
	struct worker *w = s->ob->w;
	uint32_t ms;

	switch (s->state) {
	case OB_S_CLOSING:
		if (!timer_armed(&s->timer))
			timer_arm(w->timers, &s->timer, w->now_ns + OB_LINGER_NS);
		return;
	case OB_S_IDLE:
		return; /* armed when it became idle */
	default:
		break;
	}
	ms = smtp_client_timeout_ms(s->smtp);
	if (s->tls != NULL && !s->tls_on && !s->tls_failed)
		ms = s->ob->ccfg.helo_timeout_ms; /* the handshake (Postfix smtp_starttls_timeout) */
	if (ms == 0)
		timer_cancel(w->timers, &s->timer);
	else
		timer_arm(w->timers, &s->timer, w->now_ns + (uint64_t)ms * 1000000ull);
}

/* The job is over on this session: results, then the next job, idle or QUIT. */
static void ob_job_over(struct ob_sess *s)
{
	struct ob_job *j = s->job;
	struct worker *w = s->ob->w;

	s->job = NULL;
	s->job_done = false;
	if (s->rd != NULL) {
		s->rd->s = NULL;
		s->rd = NULL;
	}
	ob_job_results(s, j);
	if (s->state == OB_S_CLOSING || s->c == NULL)
		return;
	if (smtp_client_reusable(s->smtp) && s->d->qhead != NULL) {
		ob_sess_take(s);
		return;
	}
	if (!smtp_client_reusable(s->smtp) || s->ob->cfg.cache_time_ms == 0) {
		smtp_client_quit(s->smtp); /* PG_DONE comes through the next run */
		return;
	}
	s->state = OB_S_IDLE;
	timer_arm(w->timers, &s->timer, w->now_ns + (uint64_t)s->ob->cfg.cache_time_ms * 1000000ull);
}

/*
 * Run the session as far as it goes: server bytes in, our bytes out,
 * finished jobs handed back; on the engine's PG_DONE (or the server's
 * EOF) the last bytes go out and the connection is closed.
 */
static void ob_run(struct ob_sess *s)
{
	if (s->in_run || s->c == NULL || s->smtp == NULL)
		return;
	s->in_run = true;
	for (unsigned round = 0; round < OB_RUN_ROUNDS; round++) {
		size_t fed = 0, sent = 0;
		bool moved = false;
		int out;

		if (s->state != OB_S_CLOSING && ob_feed(s, &fed) == PG_DONE)
			s->state = OB_S_CLOSING;
		if (s->job_done) {
			ob_job_over(s);
			moved = true;
		}
		{
			struct tlsio_engine e = tlsio_client(s->smtp);

			out = tlsio_flush(s->tls, s->tls_on, s->c, &e, &sent);
		}
		if (out == PG_ERROR) {
			smtp_client_closed(s->smtp);
			if (s->job_done)
				ob_job_over(s);
			ob_sess_end(s, true);
			break;
		}
		if (s->state != OB_S_CLOSING && tlsio_eof(s->tls, s->c)) {
			smtp_client_closed(s->smtp); /* the server went away */
			if (s->job_done)
				ob_job_over(s);
			s->state = OB_S_CLOSING;
		}
		if (s->state == OB_S_CLOSING && out == PG_OK && s->tls_on && !s->tls_shut) {
			size_t pushed;

			s->tls_shut = true;
			tls_stream_shutdown(s->tls); /* close_notify before our FIN */
			out = tlsio_push(s->tls, s->c, &pushed);
			if (out == PG_ERROR) {
				ob_sess_end(s, true);
				break;
			}
		}
		if (s->state == OB_S_CLOSING) {
			if (out == PG_OK) {
				/* unread input would turn the FIN into a RST: drop it */
				tcp_recv_discard(s->c);
				ob_sess_end(s, false);
			}
			break;
		}
		if (!moved && fed == 0 && sent == 0)
			break;
	}
	s->in_run = false;
	if (s->dead) {
		ob_sess_free(s);
		return;
	}
	ob_arm(s);
}

/* A connection that never got to SMTP: its waiting jobs fail over or defer. */
static void ob_connect_failed(struct ob_sess *s, const char *why, bool reset)
{
	struct outbound *ob = s->ob;
	struct ob_dest *d = s->d;

	WCOUNT(ob->w, delivery_connect_failures);
	timer_cancel(ob->w->timers, &s->timer);
	tcp_release(&s->c, reset);
	ob_sess_unlink(d, s);
	ob->nsess--;
	worker_free(ob->w, s);
	ob_dest_fail_queue(ob, d, why);
}

static void ob_sess_timer(struct timer *t, void *owner)
{
	struct ob_sess *s = container_of(t, struct ob_sess, timer);
	struct worker *w = s->ob->w;

	(void)owner;
	switch (s->state) {
	case OB_S_CONNECTING:
		ob_connect_failed(s, "Connection timed out", true); /* smtp_connect_timeout */
		return;
	case OB_S_IDLE:
		s->state = OB_S_BUSY; /* QUIT, then PG_DONE */
		smtp_client_quit(s->smtp);
		ob_run(s);
		return;
	case OB_S_CLOSING:
		ob_sess_end(s, true); /* the server does not take our last bytes */
		return;
	default:
		WCOUNT(w, delivery_timeouts);
		if (s->tls != NULL && !s->tls_on && !s->tls_failed) {
			WCOUNT(w, delivery_tls_failures);
			s->tls_failed = true; /* level may: plaintext next time */
			snprintf(s->tls_why, sizeof(s->tls_why), "handshake: timed out");
		}
		if (smtp_client_timeout(s->smtp) == PG_DONE)
			s->state = OB_S_CLOSING;
		ob_run(s);
		return;
	}
}

/*
 * Every job waiting on d fails with `why` (connection refused, timed out,
 * no route) - unless another connection to d is up or on its way to take
 * them. Each fails over to its next next hop, or is deferred.
 */
static void ob_dest_fail_queue(struct outbound *ob, struct ob_dest *d, const char *why)
{
	if (d->nconn > 0)
		return;
	while (d->qhead != NULL) {
		struct ob_job *j = d->qhead;
		struct ob_sess tmp = {.ob = ob, .d = d};

		d->qhead = j->next;
		if (d->qhead == NULL)
			d->qtail = NULL;
		d->nqueued--;
		for (uint32_t i = 0; i < j->nrcpt; i++) {
			struct smtp_client_reply *r = &j->reply[i];

			r->code = 451;
			snprintf(r->status, sizeof(r->status), "4.4.1");
			snprintf(r->text, sizeof(r->text), "connect to %s:%u: %s",
			         d->name, d->port, why);
			r->local = true;
			r->phase = SMTP_PHASE_GREETING;
			j->got[i] = true;
		}
		ob_job_results(&tmp, j);
	}
}

static void ob_connected(struct tcp_conn *c, void *user)
{
	struct ob_sess *s = user;
	struct outbound *ob = s->ob;
	struct smtp_client_config cfg = ob->ccfg;

	(void)c;
	timer_cancel(ob->w->timers, &s->timer);
	cfg.ops = &ob_smtp_ops;
	cfg.user = s;
	/*
	 * STARTTLS at every level but none. Strict levels always try (and
	 * defer without TLS); may and mode=testing skip a peer whose
	 * handshake failed lately (ob_tls_fallback).
	 */
	cfg.starttls = s->d->pol.level != SNAP_TLS_NONE && ob->tls_ctx != NULL;
	if ((s->d->pol.level == SNAP_TLS_MAY || (s->d->pol.flags & SNAP_TLS_F_TESTING) != 0) &&
	    ob_tls_broken(ob, s->d->addr, s->d->port))
		cfg.starttls = false;
	s->smtp = smtp_client_create(&cfg);
	if (s->smtp == NULL || s->d->qhead == NULL) {
		if (s->smtp != NULL) {
			smtp_client_quit(s->smtp);
			s->state = OB_S_CLOSING;
			ob_run(s);
			return;
		}
		ob_sess_end(s, true);
		return;
	}
	ob_sess_take(s);
	ob_run(s);
}

static void ob_readable(struct tcp_conn *c, void *user)
{
	(void)c;
	ob_run(user);
}

static void ob_gone(struct ob_sess *s, const char *why)
{
	if (s->c == NULL)
		return;
	if (s->state == OB_S_CONNECTING) {
		ob_connect_failed(s, why, false);
		return;
	}
	tcp_close(s->c); /* releases the handle; the connection is over anyway */
	s->c = NULL;
	if (s->smtp != NULL)
		smtp_client_closed(s->smtp); /* 4.4.2 for what was pending */
	if (s->in_run) {
		s->dead = true;
		return;
	}
	ob_sess_free(s);
}

static void ob_closed(struct tcp_conn *c, void *user)
{
	(void)c;
	ob_gone(user, "Connection closed");
}

static void ob_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	(void)c;
	ob_gone(user, err == TCP_ERR_REFUSED   ? "Connection refused"
	              : err == TCP_ERR_TIMEOUT ? "Connection timed out"
	                                       : "Connection reset by peer");
}

static const struct tcp_ops ob_tcp_ops = {
    .connected = ob_connected,
    .readable = ob_readable,
    .writable = ob_readable,
    .closed = ob_closed,
    .error = ob_error,
};

/* ---- the scheduler ---- */

/* Start due messages from m on; returns the earliest future attempt seen. */
static uint64_t ob_scan_from(struct outbound *ob, struct spool_msg *m, uint64_t now_rt)
{
	struct spool *sp = ob->w->spool;
	uint64_t next = UINT64_MAX;

	for (; m != NULL && ob->nactive < OB_ACTIVE_MAX; m = spool_queue_next(sp, m)) {
		struct ob_msg *om = spool_msg_user(m);

		ob->last_id = spool_msg_id(m);
		if (spool_msg_held(m) || (om != NULL && om->state != OB_M_IDLE))
			continue;
		if (spool_msg_next_attempt(m) > now_rt) {
			if (spool_msg_next_attempt(m) < next)
				next = spool_msg_next_attempt(m);
			continue;
		}
		if (ob_msg_start(ob, m) != PG_OK) {
			next = now_rt; /* memory: try again soon */
			break;
		}
		ob->work++;
	}
	if (m != NULL)
		next = now_rt; /* the active limit stopped the scan */
	return next;
}

static void ob_schedule(struct outbound *ob)
{
	struct worker *w = ob->w;
	struct spool *sp = w->spool;
	uint64_t commits = spool_stats(sp)->commits;
	uint64_t now_rt;

	if (!ob->rescan && commits == ob->seen_commits) {
		/* cheap test first: the realtime clock only when a scan may be due */
		if (ob->next_scan_rt == 0)
			return;
		now_rt = ob_realtime();
		if (now_rt < ob->next_scan_rt)
			return;
		ob->rescan = true;
	} else {
		now_rt = ob_realtime();
	}
	if (ob->rescan || now_rt >= ob->next_scan_rt) {
		uint64_t next = ob_scan_from(ob, spool_queue_first(sp), now_rt);
		uint64_t cap = now_rt + OB_SCAN_NS;

		ob->rescan = false;
		ob->next_scan_rt = next < cap ? (next > now_rt ? next : now_rt + OB_AGAIN_NS) : cap;
	} else {
		/* new commits only: they are at the tail, after the last one seen */
		struct spool_msg *last = ob->last_id != 0 ? spool_msg_lookup(sp, ob->last_id) : NULL;
		struct spool_msg *from = last != NULL ? spool_queue_next(sp, last)
		                                      : spool_queue_first(sp);
		uint64_t next = ob_scan_from(ob, from, now_rt);

		if (next < ob->next_scan_rt)
			ob->next_scan_rt = next > now_rt ? next : now_rt + OB_AGAIN_NS;
	}
	ob->seen_commits = commits;
}


/* Go on with what waits on the spool or on a cap: DSNs, body reads, connects. */
static void ob_retry(struct outbound *ob)
{
	struct worker *w = ob->w;

	for (struct ob_msg *om = ob->active, *next; om != NULL; om = next) {
		next = om->next; /* om may leave the list */
		if (om->state == OB_M_DSN)
			ob_dsn_read_start(ob, om);
		else if (om->state == OB_M_DSN_PUT)
			ob_dsn_put(ob, om);
	}
	for (struct ob_dest **pd = &ob->dests; *pd != NULL;) {
		struct ob_dest *d = *pd;

		for (struct ob_sess *s = d->sessions, *sn; s != NULL; s = sn) {
			sn = s->next;
			if (s->read_wait && s->rd == NULL && s->job != NULL) {
				s->read_wait = false;
				ob_run(s); /* body_read asks the spool again */
			}
		}
		if (d->qhead != NULL && w->now_ns >= d->again_ns)
			ob_dispatch(ob, d);
		if (d->qhead == NULL && d->sessions == NULL) {
			*pd = d->next; /* nothing here any more */
			X509_STORE_free(d->pol.store);
			worker_free(w, d);
			continue;
		}
		pd = &d->next;
	}
}

void outbound_adopt(struct worker *w, const struct snap_header *h)
{
	const struct snap_smtp *t;
	struct snap_delivery fallback;
	struct outbound *ob;
	uint32_t n;

	if (w->tcp == NULL || w->timers == NULL || w->spool == NULL || h == NULL)
		return;
	ob = ob_get(w);
	if (ob == NULL)
		return;
	ob->cfg = *snap_delivery(h, &fallback);
	t = snap_section(h, SNAP_SEC_SMTP, &n);
	if (t != NULL && n == 1)
		snprintf(ob->hostname, sizeof(ob->hostname), "%s", snap_string(h, t->myhostname));
	ob_tls_adopt(ob, h);
	ob->rescan = true; /* routes may have changed for deferred mail too */
}

unsigned outbound_poll(struct worker *w)
{
	struct outbound *ob = w->outbound;

	if (ob == NULL || w->spool == NULL || w->snap == NULL)
		return 0;
	ob->work = 0;
	ob_schedule(ob);
	if (ob->active != NULL || ob->dests != NULL)
		ob_retry(ob);
	w->ctr[CTR_delivery_active] = ob->nactive;
	return ob->work;
}

bool outbound_busy(const struct worker *w)
{
	const struct outbound *ob = w->outbound;

	return ob != NULL && ob->active != NULL;
}

void outbound_destroy(struct worker *w)
{
	struct outbound *ob = w->outbound;

	if (ob == NULL)
		return;
	/* sessions first (their jobs' results are dropped with them) */
	while (ob->dests != NULL) {
		struct ob_dest *d = ob->dests;

		while (d->sessions != NULL) {
			struct ob_sess *s = d->sessions;

			timer_cancel(w->timers, &s->timer);
			if (s->rd != NULL)
				s->rd->s = NULL;
			if (s->c != NULL)
				tcp_abort(s->c);
			if (s->smtp != NULL)
				smtp_client_destroy(s->smtp);
			if (s->job != NULL)
				ob_job_free(ob, s->job);
			if (s->tls != NULL) {
				(void)tls_stream_free(s->tls);
				worker_free(w, s->tls);
			}
			worker_free(w, s->buf);
			ob_sess_unlink(d, s);
			worker_free(w, s);
		}
		while (d->qhead != NULL) {
			struct ob_job *j = d->qhead;

			d->qhead = j->next;
			ob_job_free(ob, j);
		}
		ob->dests = d->next;
		X509_STORE_free(d->pol.store);
		worker_free(w, d);
	}
	X509_STORE_free(ob->ca_store);
	for (uint32_t i = 0; ob->ta_stores != NULL && i < ob->npolicy; i++)
		X509_STORE_free(ob->ta_stores[i]);
	worker_free(w, ob->ta_stores);
	SSL_CTX_free(ob->tls_ctx);
	/* the messages stay queued in the spool, untouched */
	while (ob->active != NULL)
		ob_msg_free(ob, ob->active);
	for (struct spool_msg *m = spool_queue_first(w->spool); m != NULL;
	     m = spool_queue_next(w->spool, m)) {
		struct ob_msg *om = spool_msg_user(m);

		if (om != NULL)
			ob_msg_free(ob, om);
	}
	worker_free(w, ob);
	w->outbound = NULL;
}

unsigned outbound_flush(struct worker *w, struct spool_msg *m)
{
	struct outbound *ob = ob_get(w);
	unsigned n = 0;

	if (ob == NULL || w->spool == NULL)
		return 0;
	for (struct spool_msg *it = m != NULL ? m : spool_queue_first(w->spool); it != NULL;
	     it = m != NULL ? NULL : spool_queue_next(w->spool, it)) {
		struct ob_msg *om = spool_msg_user(it);

		if (om != NULL && om->state != OB_M_IDLE)
			continue; /* being delivered now */
		if (spool_msg_next_attempt(it) != 0)
			spool_msg_defer(w->spool, it, 0, spool_msg_attempts(it));
		n++;
	}
	ob->rescan = true;
	return n;
}

int outbound_msg_delete(struct worker *w, struct spool_msg *m)
{
	struct outbound *ob = w->outbound;
	struct ob_msg *om = spool_msg_user(m);

	if (om != NULL && om->state != OB_M_IDLE) {
		om->delete_pending = true;
		return PG_AGAIN;
	}
	if (om != NULL)
		ob_msg_free(ob, om);
	WCOUNT(w, queue_deleted);
	return spool_msg_delete(w->spool, m) == PG_OK ? PG_OK : PG_ERROR;
}

void outbound_msg_info(const struct worker *w, const struct spool_msg *m,
                       struct outbound_msg_info *out)
{
	const struct ob_msg *om = spool_msg_user(m);

	(void)w;
	out->active = om != NULL && om->state != OB_M_IDLE;
	out->delete_pending = om != NULL && om->delete_pending;
	out->last_reply = om != NULL ? om->last_reply : "";
}

uint32_t outbound_connections(const struct worker *w)
{
	return w->outbound != NULL ? w->outbound->nsess : 0;
}

uint32_t outbound_active_messages(const struct worker *w)
{
	return w->outbound != NULL ? w->outbound->nactive : 0;
}
