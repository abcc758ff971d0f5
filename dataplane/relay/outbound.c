/*
 * outbound.c - delivery's side of the worker (outbound.h): adoption, the
 * loop's poll, the queue commands, and the scheduler that walks the
 * worker's spool queue for messages that are due. The rest of delivery is
 * split by concern (outbound_private.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_log.h>

#include "core/counters.h"
#include "core/worker.h"
#include "outbound.h"
#include "outbound_private.h"
#include "result.h"
#include "spool/spool.h"

uint64_t ob_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* An event field value: no separator, no control characters. */
void ob_value(char *dst, size_t size, const char *src)
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
	pg_list_init(&ob->active);
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
	struct pg_list *n, *tmp;

	pg_list_foreach_safe(n, tmp, &ob->active)
	{
		struct ob_msg *om = PG_LIST_ENTRY(n, struct ob_msg, link); /* may leave the list */

		if (om->state == OB_M_DSN)
			ob_dsn_read_start(ob, om);
		else if (om->state == OB_M_DSN_PUT)
			ob_dsn_put(ob, om);
	}
	ob_dests_sweep(ob);
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
	if (!pg_list_empty(&ob->active) || ob->dests != NULL)
		ob_retry(ob);
	w->ctr[CTR_delivery_active] = ob->nactive;
	return ob->work;
}

bool outbound_busy(const struct worker *w)
{
	const struct outbound *ob = w->outbound;

	return ob != NULL && !pg_list_empty(&ob->active);
}

void outbound_destroy(struct worker *w)
{
	struct outbound *ob = w->outbound;

	if (ob == NULL)
		return;
	/* sessions first (their jobs' results are dropped with them) */
	ob_dests_destroy(ob);
	ob_tls_destroy(ob);
	/* the messages stay queued in the spool, untouched */
	while (!pg_list_empty(&ob->active))
		ob_msg_free(ob, PG_LIST_FIRST(&ob->active, struct ob_msg, link));
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
