/*
 * resolver.c - the resolver of resolver.h on postern-dp's main lcore.
 *
 * libunbound does the DNS: recursion or forwarding, retries, TCP fallback,
 * DNSSEC validation (ub_ctx_async with its own thread, so ub_process never
 * waits on the network). Answers are parsed with ldns from the reply
 * libunbound hands back (answer_packet): no DNS parsing of our own.
 *
 * The cache: one entry per (name, type), PENDING while its one query is in
 * flight (every lookup of it meanwhile waits on the entry: merged), then
 * DONE until its TTL ends: the answer's TTL (libunbound's, the smallest of
 * the RRset's remaining TTLs), for NXDOMAIN and NODATA the SOA's
 * min(TTL, MINIMUM) of the authority section (RFC 2308 §5), none for
 * failures (SERVFAIL, timeout, bogus: retried by the next lookup). At most
 * dns_cache_size DONE entries, the least recently used evicted first; the
 * records an entry holds are capped (DNS_MX_MAX hosts, DNS_ROUTE_MAX
 * addresses), so memory is bounded.
 *
 * A route lookup (struct dns_job) is the MX query of the name, then the A
 * query of each MX host in MX order (dns_route.h): Postfix's order. No MX
 * records (NODATA): the name's own A (implicit MX). DNS_OP_NO_MX: A only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ldns/ldns.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_random.h>
#include <rte_ring.h>
#include <unbound.h>

#include "list.h"
#include "resolver.h"
#include "result.h"
#include "settings.h"
#include "snap_format.h"

#define DNS_BUCKETS 16384u /* power of two */
#define DNS_TYPE_A 1
#define DNS_TYPE_MX 15
#define DNS_WHY_MAX 120
#define DNS_RUN_BATCH 64

enum { ENT_PENDING, ENT_DONE };

struct dns_wait {
	struct dns_wait *next;
	struct dns_job *job;
	int slot; /* -1: the MX query; else the host's index */
};

struct dns_ent {
	struct dns_ent *hnext;
	struct pg_list link; /* PENDING: D.pending (by start); DONE: D.lru (recent first) */
	uint32_t hash;
	uint16_t type;
	uint8_t state, kind, sec;
	uint32_t ttl;
	uint64_t expires_ns, started_ns;
	int async_id;
	bool in_ub; /* libunbound has the query (its callback will come) */
	struct dns_wait *waiters;
	uint32_t n;
	struct dns_mx *mx; /* MX: [n] */
	uint32_t *a;       /* A: [n], network order */
	char why[DNS_WHY_MAX];
	char name[DNS_NAME_MAX];
};

struct dns_hostres {
	uint8_t kind, sec;
	uint32_t naddr, ttl;
	uint32_t addr[DNS_ROUTE_MAX];
	char why[DNS_WHY_MAX];
};

struct dns_job {
	struct dns_op *op;
	uint32_t pending; /* answers still awaited, +1 while issuing */
	bool fresh;       /* some answer was not from the cache */
	uint8_t mx_sec;
	uint32_t ttl;
	size_t nmx;
	struct dns_mx mx[DNS_MX_MAX];
	struct dns_hostres host[DNS_MX_MAX];
};

struct dns_state {
	unsigned nworkers;
	struct rte_ring *req;
	struct rte_ring *done[SNAP_MAX_WORKERS];
	struct dns_op **ovf; /* answered ops whose completion ring was full */
	unsigned novf, ovf_cap;
	struct ub_ctx *ctx;
	bool enabled;
	struct snap_dns cfg; /* strings resolved below */
	char ta[4096], hints[4096], conf[4096];
	uint64_t cache_max, timeout_ns;
	struct dns_ent *bucket[DNS_BUCKETS];
	struct pg_list pending, lru;
	uint64_t ndone;
};

static struct dns_state *D;
static bool dns_on; /* read by workers (atomics) */

static uint64_t dns_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t dns_hash(const char *name, uint16_t type)
{
	uint32_t h = 2166136261u ^ type;

	for (const char *c = name; *c != '\0'; c++) {
		h ^= (uint8_t)*c;
		h *= 16777619u;
	}
	return h;
}

static uint32_t dns_rand(void *ctx, uint32_t n)
{
	(void)ctx;
	return (uint32_t)rte_rand_max(n);
}

/* ---- the cache ---- */

static struct dns_ent *dns_ent_find(const char *name, uint16_t type, uint32_t hash)
{
	for (struct dns_ent *e = D->bucket[hash & (DNS_BUCKETS - 1)]; e != NULL; e = e->hnext)
		if (e->hash == hash && e->type == type && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static void dns_ent_unhash(struct dns_ent *e)
{
	struct dns_ent **pp = &D->bucket[e->hash & (DNS_BUCKETS - 1)];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
}

static void dns_ent_free(struct dns_ent *e)
{
	free(e->mx);
	free(e->a);
	free(e);
}

/* A DONE entry out of the cache. */
static void dns_ent_drop(struct dns_ent *e)
{
	dns_ent_unhash(e);
	pg_list_del(&e->link);
	D->ndone--;
	dns_ent_free(e);
}

static void dns_cache_trim(void)
{
	while (D->ndone > D->cache_max && !pg_list_empty(&D->lru)) {
		struct dns_ent *e = PG_LIST_ENTRY(D->lru.prev, struct dns_ent, link);

		dns_ent_drop(e);
	}
}

unsigned dns_flush(const char *name)
{
	unsigned n = 0;

	if (D == NULL)
		return 0;
	for (struct pg_list *l = D->lru.next, *nx; l != &D->lru; l = nx) {
		struct dns_ent *e = PG_LIST_ENTRY(l, struct dns_ent, link);

		nx = l->next;
		if (name == NULL || name[0] == '\0' || strcmp(e->name, name) == 0) {
			dns_ent_drop(e);
			n++;
		}
	}
	return n;
}

/* ---- jobs ---- */

static void dns_complete(struct dns_op *op)
{
	op->answered_ns = dns_now_ns();
	if (op->worker >= D->nworkers || rte_ring_sp_enqueue(D->done[op->worker], op) != 0) {
		if (D->novf == D->ovf_cap) {
			unsigned cap = D->ovf_cap ? D->ovf_cap * 2 : 64;
			struct dns_op **n = realloc(D->ovf, cap * sizeof(*n));

			if (n == NULL) {
				/* nowhere to keep it: the worker never hears; its message is
				 * retried */
				RTE_LOG(ERR, USER1, "dns: out of memory: answer for %s lost\n",
				        op->name);
				rte_free(op);
				return;
			}
			D->ovf = n;
			D->ovf_cap = cap;
		}
		D->ovf[D->novf++] = op;
	}
}

static void dns_job_finish(struct dns_job *j)
{
	struct dns_op *op = j->op;
	struct dns_host_answer ans[DNS_MX_MAX];

	if (op->route.kind == DNS_R_OK) { /* not decided by the MX answer already */
		for (size_t i = 0; i < j->nmx; i++) {
			ans[i].kind = j->host[i].kind;
			ans[i].sec = j->host[i].sec;
			ans[i].naddr = j->host[i].naddr;
			ans[i].addr = j->host[i].addr;
			ans[i].why = j->host[i].why;
			if (j->host[i].kind == DNS_K_DATA && j->host[i].ttl < j->ttl)
				j->ttl = j->host[i].ttl;
			if (j->host[i].kind != DNS_K_DATA && j->host[i].kind != DNS_K_NODATA &&
			    j->host[i].kind != DNS_K_NXDOMAIN)
				op->fail_kind = j->host[i].kind;
		}
		/* a host's addresses in random order (Postfix smtp_randomize_addresses) */
		for (size_t i = 0; i < j->nmx; i++)
			for (uint32_t k = j->host[i].naddr; k > 1; k--) {
				uint32_t r = dns_rand(NULL, k), t = j->host[i].addr[k - 1];

				j->host[i].addr[k - 1] = j->host[i].addr[r];
				j->host[i].addr[r] = t;
			}
		dns_route_build(&op->route, j->mx, j->nmx, ans, j->mx_sec, op->addr_limit);
		if (op->route.kind == DNS_R_NOHOST && (op->flags & DNS_OP_NO_MX) != 0 &&
		    j->host[0].kind == DNS_K_NXDOMAIN) {
			op->route.kind = DNS_R_NXDOMAIN;
			snprintf(op->route.reason, sizeof(op->route.reason), "%s", j->host[0].why);
		}
	}
	op->route.cached = !j->fresh;
	op->route.ttl = j->ttl;
	free(j);
	dns_complete(op);
}

static void dns_job_unref(struct dns_job *j)
{
	if (--j->pending == 0)
		dns_job_finish(j);
}

static void dns_query(struct dns_job *j, const char *name, uint16_t type, int slot);

/* A route that failed at the MX (or the [host]/implicit A) step. */
static void dns_job_fail(struct dns_job *j, const struct dns_ent *e)
{
	struct dns_route *r = &j->op->route;

	r->nhops = 0;
	snprintf(r->reason, sizeof(r->reason), "%s", e->why);
	switch (e->kind) {
	case DNS_K_NXDOMAIN:
		r->kind = DNS_R_NXDOMAIN;
		break;
	case DNS_K_NODATA:
		r->kind = DNS_R_NOHOST;
		break;
	default:
		r->kind = DNS_R_TEMP;
		j->op->fail_kind = e->kind;
		break;
	}
}

/* An entry's answer for one waiting job. */
static void dns_job_answer(struct dns_job *j, int slot, const struct dns_ent *e, bool cached)
{
	struct dns_op *op = j->op;

	j->fresh |= !cached;
	if (slot < 0) { /* the MX answer */
		j->mx_sec = e->sec;
		op->route.mx_sec = e->sec;
		if (e->kind == DNS_K_DATA && e->ttl < j->ttl)
			j->ttl = e->ttl;
		if (e->kind == DNS_K_DATA && dns_mx_is_null(e->mx, e->n)) {
			op->route.kind = DNS_R_NULLMX;
		} else if (e->kind == DNS_K_DATA) {
			struct dns_mx mx[DNS_MX_MAX];
			size_t n = RTE_MIN((size_t)e->n, (size_t)DNS_MX_MAX);

			memcpy(mx, e->mx, n * sizeof(mx[0]));
			n = dns_mx_order(mx, n, dns_rand, NULL);
			memcpy(j->mx, mx, n * sizeof(mx[0]));
			j->nmx = n;
			if (n == 0) {
				op->route.kind = DNS_R_NOHOST;
				snprintf(op->route.reason, sizeof(op->route.reason),
				         "MX records with no host");
			}
			for (size_t i = 0; i < n; i++) {
				j->pending++;
				dns_query(j, j->mx[i].host, DNS_TYPE_A, (int)i);
			}
		} else if (e->kind == DNS_K_NODATA) {
			/* no MX: the domain itself (RFC 5321 §5.1) */
			op->route.implicit = true;
			j->nmx = 1;
			j->mx[0].pref = 0;
			snprintf(j->mx[0].host, sizeof(j->mx[0].host), "%s", op->name);
			j->pending++;
			dns_query(j, op->name, DNS_TYPE_A, 0);
		} else {
			dns_job_fail(j, e);
		}
	} else {
		struct dns_hostres *h = &j->host[slot];

		h->kind = e->kind;
		h->sec = e->sec;
		h->ttl = e->ttl;
		h->naddr = e->kind == DNS_K_DATA ? RTE_MIN(e->n, (uint32_t)DNS_ROUTE_MAX) : 0;
		if (h->naddr > 0)
			memcpy(h->addr, e->a, h->naddr * sizeof(h->addr[0]));
		snprintf(h->why, sizeof(h->why), "%s", e->why);
		if (op->route.implicit || (op->flags & DNS_OP_NO_MX) != 0) {
			if (e->kind != DNS_K_DATA && e->kind != DNS_K_NODATA)
				dns_job_fail(j, e);
			else
				j->mx_sec = e->sec; /* no MX answer: the A answer's status */
			op->route.mx_sec = j->mx_sec;
		}
	}
	dns_job_unref(j);
}

/* ---- libunbound ---- */

/* RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM); no SOA: not cached. */
static uint32_t dns_negative_ttl(ldns_pkt *pkt)
{
	ldns_rr_list *l = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_SOA, LDNS_SECTION_AUTHORITY);
	uint32_t ttl = 0;

	if (l != NULL && ldns_rr_list_rr_count(l) > 0) {
		ldns_rr *soa = ldns_rr_list_rr(l, 0);
		ldns_rdf *min = ldns_rr_rdf(soa, 6);

		ttl = ldns_rr_ttl(soa);
		if (min != NULL && ldns_rdf2native_int32(min) < ttl)
			ttl = ldns_rdf2native_int32(min);
	}
	ldns_rr_list_deep_free(l);
	return ttl;
}

/* The records of the entry's type in the answer section. */
static void dns_parse_records(struct dns_ent *e, ldns_pkt *pkt)
{
	ldns_rr_list *l = ldns_pkt_rr_list_by_type(
	    pkt, e->type == DNS_TYPE_MX ? LDNS_RR_TYPE_MX : LDNS_RR_TYPE_A, LDNS_SECTION_ANSWER);
	size_t n = l != NULL ? ldns_rr_list_rr_count(l) : 0;

	if (e->type == DNS_TYPE_MX) {
		n = RTE_MIN(n, (size_t)DNS_MX_MAX);
		e->mx = calloc(n ? n : 1, sizeof(*e->mx));
	} else {
		n = RTE_MIN(n, (size_t)DNS_ROUTE_MAX);
		e->a = calloc(n ? n : 1, sizeof(*e->a));
	}
	if (e->mx == NULL && e->a == NULL) {
		ldns_rr_list_deep_free(l);
		e->kind = DNS_K_ERROR;
		snprintf(e->why, sizeof(e->why), "out of memory");
		return;
	}
	e->n = 0;
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);

		if (e->type == DNS_TYPE_MX) {
			ldns_rdf *pref = ldns_rr_mx_preference(rr), *host = ldns_rr_mx_exchange(rr);
			char *s = host != NULL ? ldns_rdf2str(host) : NULL;
			size_t len;

			if (pref == NULL || s == NULL) {
				free(s);
				continue;
			}
			len = strlen(s);
			if (len > 0 && s[len - 1] == '.')
				s[--len] = '\0'; /* "." (null MX) becomes "" */
			for (char *c = s; *c != '\0'; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			e->mx[e->n].pref = ldns_rdf2native_int16(pref);
			snprintf(e->mx[e->n].host, sizeof(e->mx[e->n].host), "%s", s);
			free(s);
			e->n++;
		} else {
			ldns_rdf *a = ldns_rr_a_address(rr);

			if (a == NULL || ldns_rdf_size(a) != 4)
				continue;
			memcpy(&e->a[e->n++], ldns_rdf_data(a), 4);
		}
	}
	ldns_rr_list_deep_free(l);
	if (e->n == 0) {
		e->kind = DNS_K_NODATA;
		snprintf(e->why, sizeof(e->why), "no %s record",
		         e->type == DNS_TYPE_MX ? "MX" : "A");
	}
}

static void dns_ent_done(struct dns_ent *e, bool cached);

static void dns_ub_callback(void *arg, int err, struct ub_result *res)
{
	struct dns_ent *e = arg;
	ldns_pkt *pkt = NULL;
	uint64_t now = dns_now_ns();

	e->in_ub = false;
	e->ttl = 0;
	e->sec = DNS_SEC_INSECURE;
	if (err != 0 || res == NULL) {
		e->kind = DNS_K_SERVFAIL;
		snprintf(e->why, sizeof(e->why), "resolver error: %s", ub_strerror(err));
	} else if (res->bogus) {
		e->kind = DNS_K_BOGUS;
		e->sec = DNS_SEC_BOGUS;
		snprintf(e->why, sizeof(e->why), "DNSSEC validation failed (bogus): %s",
		         res->why_bogus != NULL ? res->why_bogus : "no reason given");
	} else {
		e->sec = res->secure ? DNS_SEC_SECURE : DNS_SEC_INSECURE;
		if (res->answer_packet == NULL ||
		    ldns_wire2pkt(&pkt, res->answer_packet, (size_t)res->answer_len) !=
		        LDNS_STATUS_OK) {
			pkt = NULL;
		}
		if (res->nxdomain) {
			e->kind = DNS_K_NXDOMAIN;
			snprintf(e->why, sizeof(e->why), "NXDOMAIN");
			e->ttl = pkt != NULL ? dns_negative_ttl(pkt) : 0;
		} else if (res->rcode != 0) {
			e->kind = DNS_K_SERVFAIL;
			snprintf(e->why, sizeof(e->why), "%s",
			         res->rcode == 2 ? "SERVFAIL (host not found, try again)"
			                         : "the resolver's answer is an error");
		} else if (!res->havedata) {
			e->kind = DNS_K_NODATA;
			snprintf(e->why, sizeof(e->why), "no %s record",
			         e->type == DNS_TYPE_MX ? "MX" : "A");
			e->ttl = pkt != NULL ? dns_negative_ttl(pkt) : 0;
		} else if (pkt == NULL) {
			e->kind = DNS_K_SERVFAIL;
			snprintf(e->why, sizeof(e->why), "the answer could not be parsed");
		} else {
			e->kind = DNS_K_DATA;
			e->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
			dns_parse_records(e, pkt);
			if (e->kind == DNS_K_NODATA)
				e->ttl = dns_negative_ttl(pkt);
		}
	}
	if (pkt != NULL)
		ldns_pkt_free(pkt);
	if (res != NULL)
		ub_resolve_free(res);
	e->expires_ns = now + (uint64_t)e->ttl * 1000000000ull;
	dns_ent_done(e, false);
}

/* A PENDING entry got its answer: to the cache (or not), then to its waiters. */
static void dns_ent_done(struct dns_ent *e, bool cached)
{
	struct dns_wait *w = e->waiters;
	bool keep = e->kind == DNS_K_DATA || e->kind == DNS_K_NODATA || e->kind == DNS_K_NXDOMAIN;

	e->waiters = NULL;
	e->state = ENT_DONE;
	pg_list_del(&e->link);
	if (keep && e->ttl > 0) {
		pg_list_add(&D->lru, &e->link);
		D->ndone++;
	} else {
		dns_ent_unhash(e);
		pg_list_init(&e->link);
		keep = false;
	}
	while (w != NULL) {
		struct dns_wait *n = w->next;

		dns_job_answer(w->job, w->slot, e, cached);
		free(w);
		w = n;
	}
	if (!keep)
		dns_ent_free(e);
	else
		dns_cache_trim();
}

static void dns_query(struct dns_job *j, const char *name, uint16_t type, int slot)
{
	uint32_t hash = dns_hash(name, type);
	struct dns_ent *e = dns_ent_find(name, type, hash);
	struct dns_wait *w;
	int rc;

	if (e != NULL && e->state == ENT_DONE) {
		if (dns_now_ns() < e->expires_ns) {
			j->op->hits++;
			pg_list_del(&e->link);
			pg_list_add(&D->lru, &e->link); /* most recently used */
			dns_job_answer(j, slot, e, true);
			return;
		}
		dns_ent_drop(e); /* its TTL ended: ask again */
		e = NULL;
	}
	w = malloc(sizeof(*w));
	if (w == NULL) {
		struct dns_ent oom = {.kind = DNS_K_ERROR, .why = "out of memory"};

		dns_job_answer(j, slot, &oom, true);
		return;
	}
	w->job = j;
	w->slot = slot;
	if (e != NULL) { /* in flight: wait for the same answer */
		j->op->merged++;
		w->next = e->waiters;
		e->waiters = w;
		return;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		struct dns_ent oom = {.kind = DNS_K_ERROR, .why = "out of memory"};

		free(w);
		dns_job_answer(j, slot, &oom, true);
		return;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->hash = hash;
	e->type = type;
	e->state = ENT_PENDING;
	e->started_ns = dns_now_ns();
	w->next = NULL;
	e->waiters = w;
	e->hnext = D->bucket[hash & (DNS_BUCKETS - 1)];
	D->bucket[hash & (DNS_BUCKETS - 1)] = e;
	pg_list_add_tail(&D->pending, &e->link);
	j->op->queries++;
	rc = D->ctx != NULL
	         ? ub_resolve_async(D->ctx, name, type, 1, e, dns_ub_callback, &e->async_id)
	         : UB_NOERROR - 1;
	if (rc != 0) {
		e->kind = DNS_K_ERROR;
		snprintf(e->why, sizeof(e->why), "resolver: %s",
		         D->ctx != NULL ? ub_strerror(rc) : "not configured");
		dns_ent_done(e, false);
		return;
	}
	e->in_ub = true;
}

static void dns_job_start(struct dns_op *op)
{
	struct dns_job *j = calloc(1, sizeof(*j));

	memset(&op->route, 0, sizeof(op->route));
	op->queries = op->hits = op->merged = 0;
	op->fail_kind = DNS_K_DATA;
	op->route.kind = DNS_R_OK;
	if (j == NULL) {
		op->route.kind = DNS_R_TEMP;
		op->fail_kind = DNS_K_ERROR;
		snprintf(op->route.reason, sizeof(op->route.reason), "resolver out of memory");
		dns_complete(op);
		return;
	}
	if ((op->flags & DNS_OP_FLUSH) != 0) {
		free(j);
		op->flushed = dns_flush(op->name);
		dns_complete(op);
		return;
	}
	j->op = op;
	j->ttl = UINT32_MAX;
	j->pending = 1;
	if ((op->flags & DNS_OP_NO_MX) != 0) {
		j->nmx = 1;
		snprintf(j->mx[0].host, sizeof(j->mx[0].host), "%s", op->name);
		j->pending++;
		dns_query(j, op->name, DNS_TYPE_A, 0);
	} else {
		j->pending++;
		dns_query(j, op->name, DNS_TYPE_MX, -1);
	}
	dns_job_unref(j);
}

/* ---- the context ---- */

/* Fail every query in flight (the context is going away). */
static void dns_fail_pending(const char *why, uint8_t kind)
{
	while (!pg_list_empty(&D->pending)) {
		struct dns_ent *e = PG_LIST_ENTRY(D->pending.next, struct dns_ent, link);

		if (e->in_ub && D->ctx != NULL)
			ub_cancel(D->ctx, e->async_id);
		e->in_ub = false;
		e->kind = kind;
		snprintf(e->why, sizeof(e->why), "%s", why);
		dns_ent_done(e, false);
	}
}

static const char *dns_str(const struct snap_header *h, struct snap_str s)
{
	return s.len == 0 ? "" : snap_string(h, s);
}

static struct ub_ctx *dns_ctx_new(void)
{
	struct ub_ctx *ctx = ub_ctx_create();
	int rc = 0;
	char a[INET_ADDRSTRLEN];

	if (ctx == NULL) {
		RTE_LOG(ERR, USER1, "dns: ub_ctx_create failed\n");
		return NULL;
	}
	if ((rc = ub_ctx_async(ctx, 1)) != 0 || (rc = ub_ctx_set_option(ctx, "do-ip6:", "no")) != 0)
		goto fail;
	if (D->conf[0] != '\0' && (rc = ub_ctx_config(ctx, D->conf)) != 0) {
		RTE_LOG(ERR, USER1, "dns: dns_unbound_conf %s: %s\n", D->conf, ub_strerror(rc));
		goto fail;
	}
	if (D->hints[0] != '\0' && (rc = ub_ctx_set_option(ctx, "root-hints:", D->hints)) != 0) {
		RTE_LOG(ERR, USER1, "dns: dns_root_hints_file %s: %s\n", D->hints, ub_strerror(rc));
		goto fail;
	}
	if (D->ta[0] != '\0' && (rc = ub_ctx_add_ta_file(ctx, D->ta)) != 0) {
		RTE_LOG(ERR, USER1, "dns: dns_trust_anchor_file %s: %s\n", D->ta, ub_strerror(rc));
		goto fail;
	}
	for (uint32_t i = 0; i < D->cfg.nresolvers; i++) {
		struct in_addr in = {.s_addr = D->cfg.resolvers[i]};

		inet_ntop(AF_INET, &in, a, sizeof(a));
		if ((rc = ub_ctx_set_fwd(ctx, a)) != 0) {
			RTE_LOG(ERR, USER1, "dns: dns_resolvers %s: %s\n", a, ub_strerror(rc));
			goto fail;
		}
	}
	return ctx;
fail:
	RTE_LOG(ERR, USER1, "dns: the resolver is not usable (%s): lookups fail 4.4.3\n",
	        ub_strerror(rc));
	ub_ctx_delete(ctx);
	return NULL;
}

void dns_adopt(const struct snap_header *h)
{
	uint32_t n = 0;
	const struct snap_dns *s;
	struct snap_dns cfg;
	char ta[4096], hints[4096], conf[4096];

	if (D == NULL)
		return;
	D->cache_max = setting_u64(h, SET_dns_cache_size);
	D->timeout_ns = setting_u64(h, SET_dns_timeout);
	s = snap_section(h, SNAP_SEC_DNS, &n);
	memset(&cfg, 0, sizeof(cfg));
	ta[0] = hints[0] = conf[0] = '\0';
	if (s != NULL && n == 1) {
		cfg.nresolvers = s->nresolvers;
		memcpy(cfg.resolvers, s->resolvers, sizeof(cfg.resolvers));
		snprintf(ta, sizeof(ta), "%s", dns_str(h, s->trust_anchor_file));
		snprintf(hints, sizeof(hints), "%s", dns_str(h, s->root_hints_file));
		snprintf(conf, sizeof(conf), "%s", dns_str(h, s->unbound_conf));
	}
	if ((s != NULL && n == 1) == D->enabled && cfg.nresolvers == D->cfg.nresolvers &&
	    memcmp(cfg.resolvers, D->cfg.resolvers, sizeof(cfg.resolvers)) == 0 &&
	    strcmp(ta, D->ta) == 0 && strcmp(hints, D->hints) == 0 && strcmp(conf, D->conf) == 0) {
		dns_cache_trim();
		return;
	}
	dns_fail_pending("resolver reconfigured, try again", DNS_K_SERVFAIL);
	if (D->ctx != NULL)
		ub_ctx_delete(D->ctx);
	D->ctx = NULL;
	dns_flush(NULL);
	D->cfg = cfg;
	memcpy(D->ta, ta, sizeof(ta));
	memcpy(D->hints, hints, sizeof(hints));
	memcpy(D->conf, conf, sizeof(conf));
	D->enabled = s != NULL && n == 1;
	if (D->enabled)
		D->ctx = dns_ctx_new();
	__atomic_store_n(&dns_on, D->enabled, __ATOMIC_RELEASE);
	RTE_LOG(NOTICE, USER1,
	        "dns: %s (%u resolvers, root hints %s, trust anchor %s, validation %s)\n",
	        !D->enabled      ? "off"
	        : D->ctx != NULL ? "on"
	                         : "broken",
	        cfg.nresolvers, hints[0] ? hints : "-", ta[0] ? ta : "-", ta[0] ? "on" : "off");
}

int dns_init(unsigned nworkers, char *err, size_t errlen)
{
	char name[RTE_RING_NAMESIZE];

	D = calloc(1, sizeof(*D));
	if (D == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return PG_ERROR;
	}
	D->nworkers = nworkers;
	D->cache_max = 10000;
	D->timeout_ns = 10ull * 1000000000ull;
	pg_list_init(&D->pending);
	pg_list_init(&D->lru);
	D->req = rte_ring_create("pg_dns_req", DNS_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	for (unsigned i = 0; i < nworkers && D->req != NULL; i++) {
		snprintf(name, sizeof(name), "pg_dns_done%u", i);
		D->done[i] = rte_ring_create(name, DNS_RING_SIZE, SOCKET_ID_ANY,
		                             RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (D->done[i] == NULL)
			break;
	}
	if (D->req == NULL || (nworkers > 0 && D->done[nworkers - 1] == NULL)) {
		snprintf(err, errlen, "dns: cannot create its rings: %s", rte_strerror(rte_errno));
		return PG_ERROR;
	}
	return PG_OK;
}

static void dns_timeouts(uint64_t now)
{
	while (!pg_list_empty(&D->pending)) {
		struct dns_ent *e = PG_LIST_ENTRY(D->pending.next, struct dns_ent, link);

		if (now - e->started_ns < D->timeout_ns)
			break;
		if (e->in_ub && D->ctx != NULL)
			ub_cancel(D->ctx, e->async_id);
		e->in_ub = false;
		e->kind = DNS_K_TIMEOUT;
		snprintf(e->why, sizeof(e->why), "timeout: no answer within %lu s",
		         (unsigned long)(D->timeout_ns / 1000000000ull));
		dns_ent_done(e, false);
	}
}

void dns_run(unsigned max_ms)
{
	uint64_t end = dns_now_ns() + (uint64_t)max_ms * 1000000ull;

	if (D == NULL) {
		struct timespec ts = {.tv_sec = max_ms / 1000,
		                      .tv_nsec = (long)(max_ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
		return;
	}
	for (;;) {
		void *ops[DNS_RUN_BATCH];
		unsigned n;
		uint64_t now;
		struct pollfd pfd = {.fd = D->ctx != NULL ? ub_fd(D->ctx) : -1, .events = POLLIN};

		/* the completions the rings had no room for */
		while (D->novf > 0 &&
		       rte_ring_sp_enqueue(D->done[D->ovf[0]->worker], D->ovf[0]) == 0)
			memmove(D->ovf, D->ovf + 1, --D->novf * sizeof(D->ovf[0]));
		n = rte_ring_sc_dequeue_burst(D->req, ops, DNS_RUN_BATCH, NULL);
		for (unsigned i = 0; i < n; i++)
			dns_job_start(ops[i]);
		if (D->ctx != NULL)
			ub_process(D->ctx);
		now = dns_now_ns();
		dns_timeouts(now);
		if (now >= end)
			return;
		if (n == DNS_RUN_BATCH)
			continue;
		/* 2 ms: the latency a request may wait in the ring */
		poll(&pfd, pfd.fd >= 0 ? 1 : 0, 2);
	}
}

void dns_destroy(void)
{
	void *op;

	if (D == NULL)
		return;
	__atomic_store_n(&dns_on, false, __ATOMIC_RELEASE);
	dns_fail_pending("postern-dp stopping", DNS_K_SERVFAIL);
	if (D->ctx != NULL)
		ub_ctx_delete(D->ctx);
	dns_flush(NULL);
	while (rte_ring_sc_dequeue(D->req, &op) == 0)
		rte_free(op);
	for (unsigned i = 0; i < D->nworkers; i++) {
		while (rte_ring_sc_dequeue(D->done[i], &op) == 0)
			rte_free(op);
		rte_ring_free(D->done[i]);
	}
	for (unsigned i = 0; i < D->novf; i++)
		rte_free(D->ovf[i]);
	free(D->ovf);
	rte_ring_free(D->req);
	free(D);
	D = NULL;
}

/* ---- the workers' side ---- */

bool dns_available(void)
{
	return __atomic_load_n(&dns_on, __ATOMIC_ACQUIRE);
}

struct dns_op *dns_op_new(void)
{
	return rte_zmalloc("dns_op", sizeof(struct dns_op), 0);
}

void dns_op_free(struct dns_op *op)
{
	rte_free(op);
}

int dns_submit(struct dns_op *op)
{
	if (D == NULL || !dns_available())
		return PG_ERROR;
	op->submitted_ns = dns_now_ns();
	return rte_ring_mp_enqueue(D->req, op) == 0 ? PG_OK : PG_AGAIN;
}

unsigned dns_poll(uint32_t worker, struct dns_op **ops, unsigned max)
{
	if (D == NULL || worker >= D->nworkers)
		return 0;
	return rte_ring_sc_dequeue_burst(D->done[worker], (void **)ops, max, NULL);
}
