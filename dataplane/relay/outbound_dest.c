/*
 * outbound_dest.c - destinations and their connections (outbound_private.h):
 * a destination is one next-hop address and port under one effective TLS
 * policy (the destination's level and the sender's floor combined, so mail
 * under a floor never rides a connection made for opportunistic mail).
 * Jobs wait on it in order; idle connections of its cache take them first
 * (RFC 5321 §4.1.1.5: RSET between messages), then new connections open up
 * to smtp_destination_concurrency_limit, never more than the jobs that
 * wait. A destination nothing waits on and nothing is connected to is
 * freed by the sweep.
 */
#include <stdio.h>
#include <string.h>

#include "core/counters.h"
#include "core/worker.h"
#include "outbound_private.h"
#include "result.h"

/* Hold a reference to store in *slot (a new generation's trust for new connections). */
static void ob_store_take(X509_STORE **slot, X509_STORE *store)
{
	if (*slot == store)
		return;
	X509_STORE_free(*slot);
	*slot = store;
	if (store != NULL)
		X509_STORE_up_ref(store);
}

static struct ob_dest *ob_dest_get(struct outbound *ob, const struct pg_addr *addr, uint16_t port,
                                   const struct tls_client_policy *pol,
                                   const struct tls_client_policy *enf)
{
	struct ob_dest *d;
	uint64_t key = ob_polkey(pol, enf);

	for (d = ob->dests; d != NULL; d = d->next) {
		if (pg_addr_eq(&d->addr, addr) && d->port == port && d->polkey == key &&
		    d->pol.level == pol->level && d->enf.level == enf->level &&
		    d->pol.flags == pol->flags && strcmp(d->pol.source, pol->source) == 0) {
			ob_store_take(&d->pol.store, pol->store);
			ob_store_take(&d->enf.store, enf->store);
			return d;
		}
	}
	d = worker_alloc(ob->w, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->addr = *addr;
	d->port = port;
	d->polkey = key;
	pg_list_init(&d->sessions);
	d->pol = *pol;
	d->pol.store = NULL;
	ob_store_take(&d->pol.store, pol->store);
	d->enf = *enf;
	d->enf.store = NULL;
	ob_store_take(&d->enf.store, enf->store);
	pg_addr_fmt(addr, d->name, sizeof(d->name));
	d->next = ob->dests;
	ob->dests = d;
	return d;
}

static void ob_dest_free(struct outbound *ob, struct ob_dest *d)
{
	X509_STORE_free(d->pol.store);
	X509_STORE_free(d->enf.store);
	worker_free(ob->w, d);
}

/*
 * Queue j on the destination of its current next hop, under the policy of
 * this attempt: the next hop's and the domain's entries of the live
 * snapshot combined with the message's floor.
 */
void ob_job_enqueue(struct outbound *ob, struct ob_job *j)
{
	struct tls_client_policy pol, enf;
	struct ob_dest *d;

	ob_policy(ob, ob_domain(j->rcpts[0]), &j->nh[j->at], &j->om->floor, &pol, &enf, &j->tls);
	if (j->tls.decided_by == TLS_RULE_SENDER)
		WCOUNT(ob->w, delivery_tls_floor_raised);
	d = ob_dest_get(ob, &j->nh[j->at].addr, j->nh[j->at].port, &pol, &enf);
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

static void ob_connect(struct outbound *ob, struct ob_dest *d)
{
	struct worker *w = ob->w;
	int rc;
	struct ob_sess *s = ob_sess_open(ob, d, &rc);

	if (s != NULL) {
		WCOUNT(w, delivery_connections);
		if (pg_addr_is_v6(&d->addr))
			WCOUNT(w, delivery_connections_ipv6);
		return;
	}
	if (rc == PG_AGAIN) {
		d->again_ns = w->now_ns + OB_AGAIN_NS; /* no port, a cap or memory: soon again */
		return;
	}
	WCOUNT(w, delivery_connect_failures);
	ob_dest_fail_queue(ob, d, "No route to host");
}

/* Give waiting jobs to idle sessions, and open connections up to the limit. */
void ob_dispatch(struct outbound *ob, struct ob_dest *d)
{
	struct worker *w = ob->w;

	struct pg_list *n, *tmp;

	pg_list_foreach_safe(n, tmp, &d->sessions)
	{
		struct ob_sess *s = PG_LIST_ENTRY(n, struct ob_sess, link);

		if (d->qhead == NULL)
			break;
		if (s->state == OB_S_IDLE && smtp_client_reusable(s->smtp)) {
			timer_cancel(w->timers, &s->idle_timer);
			ob_sess_take(s);
			conn_run(&s->conn);
			return; /* the run may have changed the list: the poll dispatches the rest
			         */
		}
	}
	while (d->qhead != NULL &&
	       d->nconn < ob_setting(ob, SET_smtp_destination_concurrency_limit) &&
	       w->now_ns >= d->again_ns) {
		uint32_t connecting = 0, before = d->nconn;

		pg_list_foreach_safe(n, tmp, &d->sessions) connecting +=
		    PG_LIST_ENTRY(n, struct ob_sess, link)->state == OB_S_CONNECTING;
		if (connecting >= d->nqueued)
			break; /* enough connections on their way for what waits */
		ob_connect(ob, d);
		if (d->nconn == before)
			break;
	}
}

/*
 * Every job waiting on d fails with `why` (connection refused, timed out,
 * no route) - unless another connection to d is up or on its way to take
 * them. Each fails over to its next next hop, or is deferred.
 */
void ob_dest_fail_queue(struct outbound *ob, struct ob_dest *d, const char *why)
{
	if (d->nconn > 0)
		return;
	while (d->qhead != NULL) {
		struct ob_job *j = d->qhead;

		d->qhead = j->next;
		if (d->qhead == NULL)
			d->qtail = NULL;
		d->nqueued--;
		for (uint32_t i = 0; i < j->nrcpt; i++) {
			struct smtp_client_reply *r = &j->reply[i];

			r->code = 451;
			snprintf(r->status, sizeof(r->status), "4.4.1");
			snprintf(r->text, sizeof(r->text), "connect to %s%s%s:%u: %s",
			         pg_addr_is_v6(&d->addr) ? "[" : "", d->name,
			         pg_addr_is_v6(&d->addr) ? "]" : "", d->port, why);
			r->local = true;
			r->phase = SMTP_PHASE_GREETING;
			j->got[i] = true;
		}
		ob_job_results(ob, d, NULL, j);
	}
}

/* The poll's pass: body reads the spool could not start, due connects, empty destinations. */
void ob_dests_sweep(struct outbound *ob)
{
	struct worker *w = ob->w;

	for (struct ob_dest **pd = &ob->dests; *pd != NULL;) {
		struct ob_dest *d = *pd;

		struct pg_list *n, *tmp;

		pg_list_foreach_safe(n, tmp, &d->sessions)
		    ob_sess_retry_read(PG_LIST_ENTRY(n, struct ob_sess, link));
		if (d->qhead != NULL && w->now_ns >= d->again_ns)
			ob_dispatch(ob, d);
		if (d->qhead == NULL && pg_list_empty(&d->sessions)) {
			*pd = d->next; /* nothing here any more */
			ob_dest_free(ob, d);
			continue;
		}
		pd = &d->next;
	}
}

/* Shutdown: every connection aborted, every job dropped (the spool keeps the mail). */
void ob_dests_destroy(struct outbound *ob)
{
	while (ob->dests != NULL) {
		struct ob_dest *d = ob->dests;

		while (!pg_list_empty(&d->sessions))
			ob_sess_destroy(PG_LIST_FIRST(&d->sessions, struct ob_sess, link));
		while (d->qhead != NULL) {
			struct ob_job *j = d->qhead;

			d->qhead = j->next;
			ob_job_free(ob, j);
		}
		ob->dests = d->next;
		ob_dest_free(ob, d);
	}
}
