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
#include "inbound.h"
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
			if (kind == INBOUND_PARAMS_MAIL)
				ob_mail_param(&om->env, tok);
			else if (kind == INBOUND_PARAMS_RCPT && strncmp(tok, "NOTIFY=", 7) == 0)
				om->notify[r] |= ob_notify_parse(tok + 7);
			else if (kind == INBOUND_PARAMS_RCPT && strncmp(tok, "ORCPT=", 6) == 0)
				om->orcpt[r] = tok + 6;
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

/* The next hops of a transport result into j (IP literals only until there is DNS). */
static void ob_job_nexthops(const struct snap_header *h, const struct transport_result *tr,
                            struct ob_job *j)
{
	for (uint32_t k = 0; k < tr->nnexthops && j->nnh < OB_NH_MAX; k++) {
		struct ob_nh *nh = &j->nh[j->nnh];

		if ((tr->nexthops[k].flags & SNAP_NH_F_IP) != 0)
			nh->addr = pg_addr_v4(tr->nexthops[k].addr);
		else if ((tr->nexthops[k].flags & SNAP_NH_F_IP6) == 0 ||
		         pg_addr_parse(snap_string(h, tr->nexthops[k].host), &nh->addr) != 0 ||
		         !pg_addr_is_v6(&nh->addr))
			continue; /* a name among IPs: skipped until there is DNS */
		nh->port = tr->nexthops[k].port;
		pg_addr_fmt(&nh->addr, nh->host, sizeof(nh->host));
		snprintf(nh->dest, sizeof(nh->dest), "%s", snap_string(h, tr->nexthops[k].dest));
		j->nnh++;
	}
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
	const char *dom = ob_domain(om->rcpts[i]);
	struct ob_job *j;
	uint32_t nip = 0, cap, n = om->nrcpt;

	routed[i] = true;
	memset(&tr, 0, sizeof(tr));
	if (h == NULL || transport_lookup(h, dom, &tr) != PG_OK || tr.nnexthops == 0) {
		ob_result_local(&om->res[i], 450, "4.4.3", NULL,
		                "450 4.4.3 <%s>: no route: mail for %s needs an MX lookup "
		                "and there is no DNS resolver yet (add a transport entry)",
		                om->rcpts[i], dom[0] != '\0' ? dom : "(no domain)");
		return NULL;
	}
	for (uint32_t k = 0; k < tr.nnexthops; k++)
		nip += (tr.nexthops[k].flags & (SNAP_NH_F_IP | SNAP_NH_F_IP6)) != 0;
	if (nip == 0) {
		ob_result_local(&om->res[i], 450, "4.4.3", NULL,
		                "450 4.4.3 <%s>: next hop %s is a host name and there is no "
		                "DNS resolver yet",
		                om->rcpts[i], snap_string(h, tr.nexthops[0].dest));
		return NULL;
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

		if (spool_msg_rcpt_done(m, k) || routed[k])
			continue;
		if (transport_lookup(h, ob_domain(om->rcpts[k]), &tk) != PG_OK ||
		    tk.entry != tr.entry || !ob_same_tls(h, j, dom, ob_domain(om->rcpts[k])))
			continue; /* one transaction per next-hop list and TLS policy */
		j->idx[j->nrcpt++] = k;
		routed[k] = true;
	}
	ob_job_envelope(j);
	return j;
}

/*
 * Route every recipient not yet done and start its jobs. Recipients that
 * cannot be routed get their result at once. Returns PG_ERROR when the
 * message cannot even be looked at (memory): it stays queued.
 */
int ob_msg_start(struct outbound *ob, struct spool_msg *m)
{
	struct worker *w = ob->w;
	struct ob_msg *om = spool_msg_user(m);
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
		pg_list_init(&om->link);
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
		struct ob_job *j;

		if (spool_msg_rcpt_done(m, i) || routed[i])
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
	return PG_OK;
}
