/*
 * outbound_route.c - a due message into jobs (outbound_private.h): its
 * envelope from the spool record, each recipient not yet done routed
 * through the snapshot's transport table (or relayhost), and recipients
 * that share a next-hop list and a TLS policy put into one job, up to
 * OB_JOB_RCPT_MAX per transaction. A recipient that cannot be routed gets
 * its result at once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>

#include "core/worker.h"
#include "cmdring.h"
#include "dns/resolver.h"
#include "inbound.h"
#include "outbound.h"
#include "outbound_private.h"
#include "policy_lookup.h"
#include "result.h"
#include "spool/spool.h"

void ob_msg_link(struct outbound *ob, struct ob_msg *om)
{
	pg_list_add(&ob->active, &om->link);
	ob->nactive++;
}

void ob_msg_unlink(struct outbound *ob, struct ob_msg *om)
{
	pg_list_del(&om->link);
	ob->nactive--;
}

/* Free what an attempt needed; the message keeps its last_reply. */
void ob_msg_release(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;

	worker_free(w, om->res);
	worker_free(w, om->params);
	worker_free(w, om->rcpts);
	worker_free(w, om->notify);
	worker_free(w, om->orcpt);
	worker_free(w, om->orig);
	worker_free(w, om->dsn);
	worker_free(w, om->dsn_params);
	om->dsn_params = NULL;
	worker_free(w, om->routes);
	om->routes = NULL;
	om->nroutes = 0;
	om->dns_wait = 0;
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

void ob_msg_free(struct outbound *ob, struct ob_msg *om)
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

/* The NOTIFY= values of a recipient's params (RFC 3461 §4.1). */
static unsigned ob_notify_parse(char *v)
{
	unsigned bits = 0;
	char *save = NULL;

	for (char *n = strtok_r(v, ",", &save); n != NULL; n = strtok_r(NULL, ",", &save)) {
		if (strcmp(n, "NEVER") == 0)
			bits |= SMTP_NOTIFY_NEVER;
		else if (strcmp(n, "SUCCESS") == 0)
			bits |= SMTP_NOTIFY_SUCCESS;
		else if (strcmp(n, "FAILURE") == 0)
			bits |= SMTP_NOTIFY_FAILURE;
		else if (strcmp(n, "DELAY") == 0)
			bits |= SMTP_NOTIFY_DELAY;
	}
	return bits;
}

/* One MAIL parameter the inbound side stored, into the envelope. */
static void ob_mail_param(struct smtp_client_envelope *env, char *tok)
{
	if (strcmp(tok, "BODY=8BITMIME") == 0)
		env->body = SMTP_BODY_8BITMIME;
	else if (strcmp(tok, "BODY=7BIT") == 0)
		env->body = SMTP_BODY_7BIT;
	else if (strcmp(tok, "SMTPUTF8") == 0)
		env->smtputf8 = true;
	else if (strcmp(tok, "RET=FULL") == 0)
		env->ret = SMTP_RET_FULL;
	else if (strcmp(tok, "RET=HDRS") == 0)
		env->ret = SMTP_RET_HDRS;
	else if (strncmp(tok, "ENVID=", 6) == 0)
		env->envid = tok + 6;
}

/*
 * The params the inbound side stored (inbound.h INBOUND_PARAMS_*) into
 * the engine's envelope, and who submitted the message. Unknown or missing
 * items are left at their defaults: the message is still delivered,
 * without the parameter (a message without a client line gets no
 * client-network floor).
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
	om->has_client = false;
	memset(&om->client, 0, sizeof(om->client));
	om->origin = NULL;
	for (line = strtok_r(om->params, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *tok, *tsave = NULL;
		char kind = line[0];

		if (kind == INBOUND_PARAMS_RCPT && r >= om->nrcpt)
			break;
		for (tok = strtok_r(line + 1, " ", &tsave); tok != NULL;
		     tok = strtok_r(NULL, " ", &tsave)) {
			if (kind == INBOUND_PARAMS_MAIL)
				ob_mail_param(&om->env, tok);
			else if (kind == INBOUND_PARAMS_RCPT && strncmp(tok, "NOTIFY=", 7) == 0)
				om->notify[r] |= ob_notify_parse(tok + 7);
			else if (kind == INBOUND_PARAMS_RCPT && strncmp(tok, "ORCPT=", 6) == 0)
				om->orcpt[r] = tok + 6;
			else if (kind == INBOUND_PARAMS_CLIENT)
				om->has_client = pg_addr_parse(tok, &om->client) == 0;
			else if (kind == INBOUND_PARAMS_ORIGIN)
				om->origin = tok;
		}
		if (kind == INBOUND_PARAMS_RCPT)
			r++;
	}
	return PG_OK;
}

/* A result made here, not by a server. */
void ob_result_local(struct ob_result *res, uint16_t code, const char *status, const char *remote,
                     const char *fmt, ...)
{
	va_list ap;

	res->code = code;
	snprintf(res->status, sizeof(res->status), "%s", status);
	snprintf(res->remote, sizeof(res->remote), "%s", remote != NULL ? remote : "");
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
	res->mxhost[0] = '\0';
	res->dnssec[0] = '\0';
	res->state = code >= 500 ? OB_R_BOUNCED : code >= 400 ? OB_R_DEFERRED : OB_R_DELIVERED;
	snprintf(res->tls.outcome, sizeof(res->tls.outcome), "%s",
	         tls_decide_outcome(NULL, false, TLS_VERDICT_NONE, false));
}

void ob_job_free(struct outbound *ob, struct ob_job *j)
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
const char *ob_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	return at != NULL ? at + 1 : "";
}

/* The next hops of a transport result into j (its IP literals). */
static void ob_job_nexthops(const struct snap_header *h, const struct transport_result *tr,
                            struct ob_job *j)
{
	for (uint32_t k = 0; k < tr->nnexthops && j->nnh < OB_NH_MAX; k++) {
		struct ob_nh *nh = &j->nh[j->nnh];

		memset(nh, 0, sizeof(*nh));
		if ((tr->nexthops[k].flags & SNAP_NH_F_IP) != 0)
			nh->addr = pg_addr_v4(tr->nexthops[k].addr);
		else if ((tr->nexthops[k].flags & SNAP_NH_F_IP6) == 0 ||
		         pg_addr_parse(snap_string(h, tr->nexthops[k].host), &nh->addr) != 0 ||
		         !pg_addr_is_v6(&nh->addr))
			continue; /* a name among IPs: the IPs are the list */
		nh->port = tr->nexthops[k].port;
		pg_addr_fmt(&nh->addr, nh->host, sizeof(nh->host));
		snprintf(nh->dest, sizeof(nh->dest), "%s", snap_string(h, tr->nexthops[k].dest));
		j->nnh++;
	}
}

/* The next hops of a resolved route into j, in its order. */
static void ob_job_dns_nexthops(const struct ob_route *rt, const struct dns_route *r,
                                struct ob_job *j)
{
	for (uint32_t k = 0; k < r->nhops && j->nnh < OB_NH_MAX; k++) {
		struct ob_nh *nh = &j->nh[j->nnh++];

		memset(nh, 0, sizeof(*nh));
		nh->addr = pg_addr_v4(r->hops[k].addr);
		nh->port = rt->port;
		nh->dnssec = r->hops[k].sec;
		pg_addr_fmt(&nh->addr, nh->host, sizeof(nh->host));
		snprintf(nh->dest, sizeof(nh->dest), "%s", rt->dest);
		snprintf(nh->mx, sizeof(nh->mx), "%s", r->hops[k].host);
	}
}

static void ob_lower(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; src[n] != '\0' && n + 1 < size; n++)
		dst[n] = (src[n] >= 'A' && src[n] <= 'Z') ? (char)(src[n] - 'A' + 'a') : src[n];
	while (n > 0 && dst[n - 1] == '.')
		n--; /* "example.com." is example.com */
	dst[n] = '\0';
}

/*
 * How mail for dom is routed (Postfix trivial-rewrite + smtp): a transport
 * entry (relayhost is its "*" entry) with IP literals: those; with a host
 * name: the resolver (smtp:host the MX hosts of host, smtp:[host] its A
 * records); no entry, or one without a next hop: the MX hosts of dom.
 */
static enum ob_rkind ob_route_kind(const struct snap_header *h, const char *dom,
                                   struct transport_result *tr, struct ob_route *key)
{
	memset(tr, 0, sizeof(*tr));
	memset(key, 0, sizeof(*key));
	if (h == NULL)
		return OB_RK_NONE;
	if (transport_lookup(h, dom, tr) == PG_OK && tr->nnexthops > 0) {
		const struct snap_nexthop *nh = &tr->nexthops[0];

		for (uint32_t k = 0; k < tr->nnexthops; k++)
			if ((tr->nexthops[k].flags & (SNAP_NH_F_IP | SNAP_NH_F_IP6)) != 0)
				return OB_RK_IP;
		ob_lower(key->name, sizeof(key->name), snap_string(h, nh->host));
		snprintf(key->dest, sizeof(key->dest), "%s", snap_string(h, nh->dest));
		key->flags = (nh->flags & SNAP_NH_F_NO_MX) != 0 ? DNS_OP_NO_MX : 0;
		key->port = nh->port;
		return key->name[0] != '\0' ? OB_RK_DNS : OB_RK_NONE;
	}
	if (dom[0] == '\0' || dom[0] == '[')
		return OB_RK_NONE; /* no domain, or an address literal: nothing to look up */
	ob_lower(key->name, sizeof(key->name), dom);
	snprintf(key->dest, sizeof(key->dest), "%s", key->name);
	key->port = 25;
	return key->name[0] != '\0' ? OB_RK_DNS : OB_RK_NONE;
}

static bool ob_route_same(const struct ob_route *a, const struct ob_route *b)
{
	return a->flags == b->flags && a->port == b->port && strcmp(a->name, b->name) == 0;
}

static int ob_route_find(const struct ob_msg *om, const struct ob_route *key)
{
	for (uint32_t k = 0; k < om->nroutes; k++)
		if (ob_route_same(&om->routes[k], key))
			return (int)k;
	return -1;
}

/* Our own addresses (the ports'), for the MX loop check. */
static size_t ob_own_addrs(const struct snap_header *h, uint32_t *own, size_t max)
{
	uint32_t n = 0;
	const struct snap_port *sp = snap_section(h, SNAP_SEC_PORTS, &n);
	size_t k = 0;

	for (uint32_t i = 0; sp != NULL && i < n && k < max; i++)
		own[k++] = sp[i].addr;
	return k;
}

/* Route recipient i by the resolver's answer; NULL (and its result) when it cannot go. */
static struct ob_job *ob_route_dns(struct outbound *ob, struct ob_msg *om, uint32_t i,
                                   const struct ob_route *key, bool *routed)
{
	const struct snap_header *h = ob->w->snap;
	const char *dom = ob_domain(om->rcpts[i]);
	int ri = ob_route_find(om, key);
	const struct ob_route *rt;
	struct dns_route r;
	struct dns_action act;
	uint32_t own[SNAP_MAX_PORTS], cap, n = om->nrcpt;
	struct ob_job *j;

	if (ri < 0 || !om->routes[ri].done) {
		ob_result_local(&om->res[i], 450, "4.4.3", NULL,
		                "450 4.4.3 <%s>: mail for %s needs a DNS lookup of %s and there is "
		                "no DNS resolver (dns_resolvers or dns_root_hints_file)",
		                om->rcpts[i], dom[0] != '\0' ? dom : "(no domain)", key->name);
		return NULL;
	}
	rt = &om->routes[ri];
	r = rt->r;
	if ((key->flags & DNS_OP_NO_MX) == 0) {
		dns_route_self(&r, own, ob_own_addrs(h, own, SNAP_MAX_PORTS));
		if (r.kind == DNS_R_LOOP)
			WCOUNT(ob->w, dns_loops);
	}
	dns_route_action(&r, key->name, &act);
	if (act.code != 0) {
		ob_result_local(&om->res[i], act.code, act.status, NULL, "%u %s <%s>: %s", act.code,
		                act.status, om->rcpts[i], act.text);
		snprintf(om->res[i].dnssec, sizeof(om->res[i].dnssec), "%s",
		         dns_sec_name(r.kind == DNS_R_TEMP && r.mx_sec == DNS_SEC_BOGUS
		                          ? DNS_SEC_BOGUS
		                          : r.mx_sec));
		return NULL;
	}
	cap = RTE_MIN(n - i, (uint32_t)OB_JOB_RCPT_MAX);
	j = ob_job_new(ob, om, cap);
	if (j == NULL) {
		ob_result_local(&om->res[i], 451, "4.3.0", NULL, "451 4.3.0 Error: out of memory");
		return NULL;
	}
	ob_job_dns_nexthops(rt, &r, j);
	j->idx[j->nrcpt++] = i;
	for (uint32_t k = i + 1; k < n && j->nrcpt < cap; k++) {
		struct transport_result tk;
		struct ob_route kk;

		if (spool_msg_rcpt_done(om->m, k) || routed[k])
			continue;
		if (ob_route_kind(h, ob_domain(om->rcpts[k]), &tk, &kk) != OB_RK_DNS ||
		    !ob_route_same(&kk, key) || !ob_same_tls(h, j, dom, ob_domain(om->rcpts[k])))
			continue;
		j->idx[j->nrcpt++] = k;
		routed[k] = true;
	}
	ob_job_envelope(j);
	return j;
}

/*
 * Route recipient i (and every later one with the same transport entry and
 * TLS policy, up to the job limit) into a job, or give it its result.
 */
static struct ob_job *ob_route_one(struct outbound *ob, struct ob_msg *om, uint32_t i, bool *routed)
{
	const struct snap_header *h = ob->w->snap;
	struct spool_msg *m = om->m;
	struct transport_result tr;
	struct ob_route key;
	const char *dom = ob_domain(om->rcpts[i]);
	struct ob_job *j;
	uint32_t cap, n = om->nrcpt;

	routed[i] = true;
	switch (ob_route_kind(h, dom, &tr, &key)) {
	case OB_RK_DNS:
		return ob_route_dns(ob, om, i, &key, routed);
	case OB_RK_NONE:
		ob_result_local(&om->res[i], 450, "4.4.3", NULL,
		                "450 4.4.3 <%s>: no route: mail for %s has no transport entry and "
		                "nothing to look up in DNS",
		                om->rcpts[i], dom[0] != '\0' ? dom : "(no domain)");
		return NULL;
	case OB_RK_IP:
		break;
	}
	cap = RTE_MIN(n - i, (uint32_t)OB_JOB_RCPT_MAX);
	j = ob_job_new(ob, om, cap);
	if (j == NULL) {
		ob_result_local(&om->res[i], 451, "4.3.0", NULL, "451 4.3.0 Error: out of memory");
		return NULL;
	}
	ob_job_nexthops(h, &tr, j);
	j->idx[j->nrcpt++] = i;
	for (uint32_t k = i + 1; k < n && j->nrcpt < cap; k++) {
		struct transport_result tk;
		struct ob_route kk;

		if (spool_msg_rcpt_done(m, k) || routed[k])
			continue;
		if (ob_route_kind(h, ob_domain(om->rcpts[k]), &tk, &kk) != OB_RK_IP ||
		    tk.entry != tr.entry || !ob_same_tls(h, j, dom, ob_domain(om->rcpts[k])))
			continue; /* one transaction per next-hop list and TLS policy */
		j->idx[j->nrcpt++] = k;
		routed[k] = true;
	}
	ob_job_envelope(j);
	return j;
}

/*
 * Route every recipient not yet done and start its jobs (the DNS answers
 * it needed are in om->routes). Recipients that cannot be routed get their
 * result at once; without memory for the routing itself, every one of
 * them is deferred 4.3.0.
 */
static void ob_msg_route(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct spool_msg *m = om->m;
	uint32_t n = om->nrcpt, njobs = 0;
	bool *routed = worker_alloc(w, n * sizeof(bool));
	struct ob_job **jobs = worker_alloc(w, n * sizeof(*jobs));

	om->jobs_left = 1; /* held by the routing loop until its end */
	for (uint32_t i = 0; i < n; i++) {
		struct ob_job *j;

		if (spool_msg_rcpt_done(m, i))
			continue;
		if (routed == NULL || jobs == NULL) {
			ob_result_local(&om->res[i], 451, "4.3.0", NULL,
			                "451 4.3.0 Error: out of memory routing the message");
			continue;
		}
		if (routed[i])
			continue;
		j = ob_route_one(ob, om, i, routed);
		if (j != NULL)
			jobs[njobs++] = j;
	}
	om->jobs_left += njobs;
	worker_free(w, routed);
	for (uint32_t k = 0; k < njobs; k++)
		ob_job_enqueue(ob, jobs[k]);
	worker_free(w, jobs);
	if (--om->jobs_left == 0)
		ob_msg_done(ob, om);
}

/* Ask the resolver for route k of om. */
static void ob_dns_ask(struct outbound *ob, struct ob_msg *om, uint32_t k)
{
	struct ob_route *rt = &om->routes[k];
	struct dns_op *op = dns_op_new();
	int rc;

	if (op == NULL) {
		rt->r.kind = DNS_R_TEMP;
		snprintf(rt->r.reason, sizeof(rt->r.reason), "out of memory for the DNS lookup");
		rt->done = true;
		return;
	}
	op->worker = ob->w->id;
	op->flags = rt->flags;
	op->addr_limit = (uint32_t)ob_setting(ob, SET_smtp_mx_address_limit);
	op->slot = k;
	op->cookie = (uint64_t)(uintptr_t)om;
	op->seq = om->dns_seq;
	snprintf(op->name, sizeof(op->name), "%s", rt->name);
	rc = dns_submit(op);
	if (rc == PG_OK) {
		WCOUNT(ob->w, dns_routes);
		om->dns_wait++;
		return;
	}
	dns_op_free(op);
	if (rc == PG_AGAIN) {
		WCOUNT(ob->w, dns_busy);
		rt->r.kind = DNS_R_TEMP;
		snprintf(rt->r.reason, sizeof(rt->r.reason), "the resolver is busy, try again");
		rt->done = true;
	}
	/* PG_ERROR: no resolver; ob_route_dns says so */
}

/* The resolver's answers for this worker: a message whose last one came is routed. */
unsigned ob_dns_poll(struct outbound *ob)
{
	struct dns_op *ops[32];
	unsigned n = dns_poll(ob->w->id, ops, 32);

	for (unsigned i = 0; i < n; i++) {
		struct dns_op *op = ops[i];
		struct ob_msg *om = (struct ob_msg *)(uintptr_t)op->cookie;
		const struct dns_route *r = &op->route;

		if (op->cookie == 0) { /* a posternctl request's */
			struct ob_dnsq *q = &ob->dnsq[op->slot % OB_DNSQ_MAX];

			WCOUNT_ADD(ob->w, dns_queries, op->queries);
			WCOUNT_ADD(ob->w, dns_cache_hits, op->hits);
			if (q->state == OB_DNSQ_PENDING && q->seq == op->seq) {
				q->r = *r;
				q->queries = op->queries;
				q->hits = op->hits;
				q->flushed = op->flushed;
				q->fail_kind = op->fail_kind;
				q->latency_ns = op->answered_ns - op->submitted_ns;
				q->state = OB_DNSQ_DONE;
			}
			dns_op_free(op);
			continue;
		}
		WCOUNT_ADD(ob->w, dns_queries, op->queries);
		WCOUNT_ADD(ob->w, dns_cache_hits, op->hits);
		WCOUNT_ADD(ob->w, dns_merged, op->merged);
		WCOUNT_ADD(ob->w, dns_latency_ns, op->answered_ns - op->submitted_ns);
		if (r->cached)
			WCOUNT(ob->w, dns_routes_cached);
		if (r->kind == DNS_R_NXDOMAIN)
			WCOUNT(ob->w, dns_nxdomain);
		else if (r->kind == DNS_R_NULLMX)
			WCOUNT(ob->w, dns_nullmx);
		else if (r->kind == DNS_R_TEMP && op->fail_kind == DNS_K_TIMEOUT)
			WCOUNT(ob->w, dns_timeouts);
		else if (r->kind == DNS_R_TEMP && op->fail_kind == DNS_K_BOGUS)
			WCOUNT(ob->w, dns_bogus);
		else if (r->kind == DNS_R_TEMP)
			WCOUNT(ob->w, dns_servfail);
		/* an active message is not freed, so om is alive; seq: this attempt's */
		if (om->dns_wait > 0 && om->dns_seq == op->seq && op->slot < om->nroutes) {
			struct ob_route *rt = &om->routes[op->slot];

			rt->r = *r;
			if (r->kind == DNS_R_TEMP && op->fail_kind == DNS_K_BOGUS)
				rt->r.mx_sec = DNS_SEC_BOGUS;
			rt->done = true;
			if (--om->dns_wait == 0)
				ob_msg_route(ob, om);
		}
		dns_op_free(op);
	}
	return n;
}

/*
 * Start a due message: its envelope, the DNS routes its recipients need
 * (asked of the resolver; routing waits for the answers, ob_dns_poll), then
 * its jobs. Returns PG_ERROR when the message cannot even be looked at
 * (memory): it stays queued.
 */
int ob_msg_start(struct outbound *ob, struct spool_msg *m)
{
	struct worker *w = ob->w;
	struct ob_msg *om = spool_msg_user(m);
	const struct snap_header *h = w->snap;
	uint32_t n;

	if (om == NULL) {
		om = worker_alloc(w, sizeof(*om));
		if (om == NULL)
			return PG_ERROR;
		om->ob = ob;
		om->m = m;
		pg_list_init(&om->link);
		spool_msg_set_user(m, om);
	}
	if (ob_msg_envelope(ob, om) != PG_OK) {
		ob_msg_release(ob, om);
		return PG_ERROR;
	}
	/* the sender's floor of this attempt, from the live snapshot */
	ob_floor_lookup(ob, om);
	n = om->nrcpt;
	om->routes = worker_alloc(w, n * sizeof(*om->routes));
	if (om->routes == NULL) {
		ob_msg_release(ob, om);
		return PG_ERROR;
	}
	om->nroutes = 0;
	om->dns_wait = 0;
	om->dns_seq = ++ob->dns_seq;
	om->state = OB_M_ACTIVE;
	ob_msg_link(ob, om);
	for (uint32_t i = 0; i < n && dns_available(); i++) {
		struct transport_result tr;
		struct ob_route key;

		if (spool_msg_rcpt_done(m, i) ||
		    ob_route_kind(h, ob_domain(om->rcpts[i]), &tr, &key) != OB_RK_DNS ||
		    ob_route_find(om, &key) >= 0)
			continue;
		om->routes[om->nroutes] = key;
		ob_dns_ask(ob, om, om->nroutes++);
	}
	if (om->dns_wait == 0)
		ob_msg_route(ob, om);
	return PG_OK;
}

/* The answer items of a posternctl request. */
static void ob_dnsq_reply(struct outbound *ob, struct ob_dnsq *q, uint8_t state,
                          struct cmdring_reply *rp)
{
	union cmd_dns_item it;

	memset(&it, 0, sizeof(it));
	it.head.kind = CMD_DNS_ITEM_HEAD;
	it.head.state = state;
	if (q != NULL && state == CMD_DNS_DONE) {
		struct dns_route r = q->r;
		uint32_t own[SNAP_MAX_PORTS];

		if (q->op == CMD_DNS_LOOKUP && (q->flags & CMD_DNS_F_NO_MX) == 0 &&
		    ob->w->snap != NULL)
			dns_route_self(&r, own, ob_own_addrs(ob->w->snap, own, SNAP_MAX_PORTS));
		it.head.route = r.kind;
		it.head.mx_sec = r.mx_sec;
		it.head.implicit = r.implicit;
		it.head.cached = r.cached;
		it.head.fail_kind = q->fail_kind;
		it.head.nhops = r.nhops;
		it.head.ttl = r.ttl;
		it.head.queries = q->queries;
		it.head.hits = q->hits;
		it.head.flushed = q->flushed;
		it.head.latency_ns = q->latency_ns;
		snprintf(it.head.reason, sizeof(it.head.reason), "%s", r.reason);
		if (!cmdring_reply_add(rp, &it, sizeof(it)))
			return;
		for (uint32_t k = 0; k < r.nhops; k++) {
			memset(&it, 0, sizeof(it));
			it.hop.kind = CMD_DNS_ITEM_HOP;
			it.hop.sec = r.hops[k].sec;
			it.hop.pref = r.hops[k].pref;
			it.hop.addr = r.hops[k].addr;
			snprintf(it.hop.host, sizeof(it.hop.host), "%s", r.hops[k].host);
			if (!cmdring_reply_add(rp, &it, sizeof(it)))
				return;
		}
		return;
	}
	cmdring_reply_add(rp, &it, sizeof(it));
}

void outbound_dns_cmd(struct worker *w, const struct cmd_dns_req *req, struct cmdring_reply *rp)
{
	struct outbound *ob = w->outbound;
	struct ob_dnsq *q = NULL, *free_q = NULL;
	struct dns_op *op;
	char name[DNS_NAME_MAX];

	if (w->id != 0) /* worker 0 asks the resolver for everyone */
		return;
	if (ob == NULL || !dns_available()) {
		ob_dnsq_reply(ob, NULL, CMD_DNS_OFF, rp);
		return;
	}
	ob_lower(name, sizeof(name), req->name);
	for (unsigned k = 0; k < OB_DNSQ_MAX; k++) {
		struct ob_dnsq *c = &ob->dnsq[k];

		if (c->state == OB_DNSQ_FREE && free_q == NULL)
			free_q = c;
		if (c->state != OB_DNSQ_FREE && c->op == req->op && c->flags == req->flags &&
		    strcmp(c->name, name) == 0)
			q = c;
	}
	if (q != NULL) {
		ob_dnsq_reply(ob, q, q->state == OB_DNSQ_DONE ? CMD_DNS_DONE : CMD_DNS_PENDING, rp);
		if (q->state == OB_DNSQ_DONE)
			q->state = OB_DNSQ_FREE; /* told: the next request looks up again */
		return;
	}
	if (free_q == NULL || (op = dns_op_new()) == NULL) {
		ob_dnsq_reply(ob, NULL, CMD_DNS_BUSY, rp);
		return;
	}
	q = free_q;
	memset(q, 0, sizeof(*q));
	q->op = req->op;
	q->flags = req->flags;
	q->seq = ++ob->dns_seq;
	snprintf(q->name, sizeof(q->name), "%s", name);
	op->worker = w->id;
	op->flags = (req->op == CMD_DNS_FLUSH ? DNS_OP_FLUSH : 0) |
	            ((req->flags & CMD_DNS_F_NO_MX) != 0 ? DNS_OP_NO_MX : 0);
	op->addr_limit = DNS_ROUTE_MAX; /* every address: the operator sees the whole set */
	op->slot = (uint32_t)(q - ob->dnsq);
	op->cookie = 0;
	op->seq = q->seq;
	snprintf(op->name, sizeof(op->name), "%s", name);
	if (dns_submit(op) != PG_OK) {
		dns_op_free(op);
		ob_dnsq_reply(ob, NULL, CMD_DNS_BUSY, rp);
		return;
	}
	q->state = OB_DNSQ_PENDING;
	ob_dnsq_reply(ob, q, CMD_DNS_PENDING, rp);
}
