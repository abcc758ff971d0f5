/*
 * ctl_wait.c - answers posternd gives later (ctl_wait.h): the adoption of
 * a new generation by every worker, timed from the publication to the
 * last worker's switch with the clocks both sides wrote into shared
 * memory (so posternd's polling does not blur it), and the session list
 * gathered from every worker over the command channel. The session
 * records come from another process: strings and counts are bounded.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl_queue.h"
#include "ctl_wait.h"

#define CTL_NS_PER_MS UINT64_C(1000000)
#define CTL_NS_PER_S UINT64_C(1000000000)

bool ctl_adoption_check(const struct shm_region *rg, uint64_t gen, uint64_t published_ns,
                        struct ctl_adoption *a)
{
	uint64_t last = 0;

	memset(a, 0, sizeof(*a));
	if (strcmp(ctl_dp_state_name(rg), "ready") != 0)
		return false;
	a->nworkers = rg->dp.nworkers > SNAP_MAX_WORKERS ? SNAP_MAX_WORKERS : rg->dp.nworkers;
	for (uint32_t i = 0; i < a->nworkers; i++) {
		const struct shm_reader *rd = &rg->readers[1 + i];
		/* acquire: the adoption time was stored before the generation */
		uint64_t g = atomic_load_explicit(&rd->adopted, memory_order_acquire);
		uint64_t at = atomic_load_explicit(&rd->adopted_ns, memory_order_relaxed);

		if (g < gen) {
			a->lagging[a->nlagging] = i;
			a->lagging_gen[a->nlagging++] = g;
		} else if (at > last) {
			last = at;
		}
	}
	if (a->nworkers == 0 || a->nlagging > 0)
		return false;
	a->latency_ns = last > published_ns ? last - published_ns : 0;
	return true;
}

void ctl_wait_adopt(struct ctl_wait *cw, const struct shm_region *rg, uint64_t gen, uint64_t now_ns,
                    uint64_t timeout_ns, bool json, struct ctl_buf *body)
{
	memset(cw, 0, sizeof(*cw));
	cw->kind = CTL_WAIT_ADOPT;
	cw->json = json;
	cw->gen = gen;
	/* posternd is the only publisher: this is the publication just made */
	cw->published_ns = atomic_load(&rg->published_ns);
	cw->deadline_ns = now_ns + timeout_ns;
	cw->timeout_ns = timeout_ns;
	cw->body = *body;
	memset(body, 0, sizeof(*body));
}

/* "0.412 ms" */
static void ctl_fmt_ms(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 " ms", ns / CTL_NS_PER_MS,
	         ns % CTL_NS_PER_MS / 1000u);
}

/* The adoption verdict, appended to the publication's answer. */
static const char *ctl_adopt_answer(struct ctl_wait *cw, const struct ctl_adoption *a, bool done,
                                    struct ctl_buf *out)
{
	struct ctl_buf *b = &cw->body;
	char ms[48];

	if (cw->json) {
		/* the publication's object gets an "adoption" member */
		if (b->len >= 2 && b->p[b->len - 2] == '}' && b->p[b->len - 1] == '\n')
			b->len -= 2;
		else
			ctl_buf_printf(b, "{");
		if (b->len > 0 && b->p[b->len - 1] != '{')
			ctl_buf_printf(b, ",");
		ctl_buf_printf(b,
		               "\"adoption\":{\"adopted\":%s,\"generation\":%" PRIu64
		               ",\"workers\":%" PRIu32,
		               done ? "true" : "false", cw->gen, a->nworkers);
		if (done)
			ctl_buf_printf(b, ",\"latency_ns\":%" PRIu64, a->latency_ns);
		else
			ctl_buf_printf(b, ",\"timeout_ms\":%" PRIu64,
			               cw->timeout_ns / CTL_NS_PER_MS);
		ctl_buf_printf(b, ",\"lagging\":[");
		for (uint32_t i = 0; i < a->nlagging; i++)
			ctl_buf_printf(b, "%s{\"worker\":%" PRIu32 ",\"generation\":%" PRIu64 "}",
			               i > 0 ? "," : "", a->lagging[i], a->lagging_gen[i]);
		ctl_buf_printf(b, "]}}\n");
	} else if (done) {
		ctl_fmt_ms(ms, sizeof(ms), a->latency_ns);
		ctl_buf_printf(b, "adopted by %" PRIu32 " worker%s in %s\n", a->nworkers,
		               a->nworkers == 1 ? "" : "s", ms);
	} else if (a->nworkers == 0) {
		ctl_buf_printf(b, "not adopted: no ready dataplane\n");
	} else {
		ctl_buf_printf(b, "not adopted within %" PRIu64 " ms by",
		               cw->timeout_ns / CTL_NS_PER_MS);
		for (uint32_t i = 0; i < a->nlagging; i++)
			ctl_buf_printf(b, "%s worker %" PRIu32 " (on generation %" PRIu64 ")",
			               i > 0 ? "," : "", a->lagging[i], a->lagging_gen[i]);
		ctl_buf_printf(b, "\n");
	}
	*out = cw->body;
	memset(&cw->body, 0, sizeof(cw->body));
	cw->kind = CTL_WAIT_NONE;
	return done ? "ok" : "notready";
}

const char *ctl_wait_sessions(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                              uint32_t max, bool json, uint64_t now_ns, struct ctl_buf *b)
{
	struct cmd_sessions_req q = {.max = max};
	const char *verdict = ctl_wait_workers(cw, t, rg, CTL_WAIT_SESSIONS, CMD_SESSIONS, &q,
	                                       sizeof(q), json, "no sessions to list", now_ns, b);

	cw->max = max;
	return verdict;
}

const char *ctl_wait_workers(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                             uint8_t kind, uint16_t code, const void *payload, uint16_t len,
                             bool json, const char *absent, uint64_t now_ns, struct ctl_buf *b)
{
	uint32_t nw = rg->dp.nworkers > SNAP_MAX_WORKERS ? SNAP_MAX_WORKERS : rg->dp.nworkers;

	memset(cw, 0, sizeof(*cw));
	if (strcmp(ctl_dp_state_name(rg), "ready") != 0 || nw == 0) {
		if (json)
			ctl_buf_printf(b, "{\"error\":\"dataplane %s\"}\n", ctl_dp_state_name(rg));
		else
			ctl_buf_printf(b, "dataplane %s: %s\n", ctl_dp_state_name(rg), absent);
		return "notready";
	}
	cw->req = dpreq_start(t, rg, nw, code, payload, len, now_ns, DPREQ_TIMEOUT_NS);
	if (cw->req == NULL) {
		ctl_buf_printf(b, "too many requests to the dataplane in flight, try again\n");
		return "error";
	}
	cw->kind = kind;
	cw->json = json;
	return NULL;
}

const char *ctl_wait_poll(struct ctl_wait *cw, const struct shm_region *rg, uint64_t now_ns,
                          struct ctl_buf *out)
{
	struct ctl_adoption a;
	const char *verdict;

	switch (cw->kind) {
	case CTL_WAIT_ADOPT:
		if (ctl_adoption_check(rg, cw->gen, cw->published_ns, &a))
			return ctl_adopt_answer(cw, &a, true, out);
		/* no dataplane: nobody will adopt it, say so at once */
		if (a.nworkers == 0 || now_ns >= cw->deadline_ns)
			return ctl_adopt_answer(cw, &a, false, out);
		return NULL;
	case CTL_WAIT_SESSIONS:
		if (!dpreq_complete(cw->req))
			return NULL;
		verdict = ctl_sessions_report(&cw->body, cw->req, cw->max, cw->json);
		dpreq_free(cw->req);
		*out = cw->body;
		memset(cw, 0, sizeof(*cw));
		return verdict;
	case CTL_WAIT_DNS:
		if (!dpreq_complete(cw->req))
			return NULL;
		verdict = ctl_dns_report(&cw->body, cw->req, cw->dns_name, cw->dns_op, cw->json);
		dpreq_free(cw->req);
		*out = cw->body;
		memset(cw, 0, sizeof(*cw));
		return verdict;
	case CTL_WAIT_QUEUE:
		if (!dpreq_complete(cw->req))
			return NULL;
		verdict =
		    ctl_queue_report(&cw->body, cw->req, cw->queue_op, cw->queue_id, cw->max,
		                     cw->json, (int64_t)(evring_realtime_ns() / CTL_NS_PER_S));
		dpreq_free(cw->req);
		*out = cw->body;
		memset(cw, 0, sizeof(*cw));
		return verdict;
	default:
		return NULL;
	}
}

void ctl_wait_cancel(struct ctl_wait *cw)
{
	if ((cw->kind == CTL_WAIT_SESSIONS || cw->kind == CTL_WAIT_QUEUE ||
	     cw->kind == CTL_WAIT_DNS) &&
	    cw->req != NULL)
		dpreq_free(cw->req);
	ctl_buf_free(&cw->body);
	memset(cw, 0, sizeof(*cw));
}

/* ---- dns ---- */

const char *ctl_wait_dns(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                         const struct cmd_dns_req *q, bool json, uint64_t now_ns, struct ctl_buf *b)
{
	const char *verdict = ctl_wait_workers(cw, t, rg, CTL_WAIT_DNS, CMD_DNS, q, sizeof(*q),
	                                       json, "no resolver to ask", now_ns, b);

	cw->dns_op = q->op;
	snprintf(cw->dns_name, sizeof(cw->dns_name), "%s", q->name);
	return verdict;
}

static const char *const ctl_dns_routes[] = {"ok", "nullmx", "nxdomain", "nohost", "temp", "loop"};
static const char *const ctl_dns_secs[] = {"insecure", "secure", "bogus"};
static const char *const ctl_dns_kinds[] = {"data",    "nodata", "nxdomain", "servfail",
                                            "timeout", "bogus",  "error"};
#define CTL_PICK(t, i) ((i) < sizeof(t) / sizeof((t)[0]) ? (t)[i] : "?")

/* A string another process wrote: up to its NUL or the end, JSON-escaped or as it is. */
static void ctl_dns_str(struct ctl_buf *b, const char *s, size_t max, bool json)
{
	for (size_t i = 0; i < max && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			ctl_buf_printf(b, json ? "\\u%04x" : "\\x%02x", c);
		else if (json && (c == '"' || c == '\\'))
			ctl_buf_printf(b, "\\%c", c);
		else
			ctl_buf_printf(b, "%c", c);
	}
}

const char *ctl_dns_report(struct ctl_buf *b, const struct dpreq *r, const char *name, uint8_t op,
                           bool json)
{
	const struct dpreq_worker *dw = r->nworkers > 0 ? &r->w[0] : NULL;
	const union cmd_dns_item *it;
	const struct cmd_dns_head *h;
	uint32_t n;
	char ip[INET_ADDRSTRLEN];

	if (dw == NULL || dw->state != DPREQ_DONE || dw->status != CMDRING_OK) {
		const char *why = dw == NULL                ? "no worker"
		                  : dw->state != DPREQ_DONE ? dpreq_worker_state_name(dw->state)
		                  : dw->status == CMDRING_UNKNOWN
		                      ? "the dataplane does not know dns"
		                      : "the dataplane refused the request";

		if (json)
			ctl_buf_printf(b, "{\"error\":\"%s\"}\n", why);
		else
			ctl_buf_printf(b, "worker 0: %s\n", why);
		return "error";
	}
	it = (const union cmd_dns_item *)(const void *)dw->data.p;
	n = (uint32_t)(dw->data.len / sizeof(*it));
	if (n == 0 || it[0].kind != CMD_DNS_ITEM_HEAD) {
		ctl_buf_printf(b, "worker 0 gave no answer\n");
		return "error";
	}
	h = &it[0].head;
	if (h->state == CMD_DNS_PENDING)
		return "pending"; /* posternctl asks again */
	if (h->state == CMD_DNS_OFF || h->state == CMD_DNS_BUSY) {
		const char *why = h->state == CMD_DNS_OFF
		                      ? "no DNS configured (dns_resolvers, dns_root_hints_file)"
		                      : "the resolver is busy, try again";

		if (json)
			ctl_buf_printf(b, "{\"error\":\"%s\"}\n", why);
		else
			ctl_buf_printf(b, "%s\n", why);
		return h->state == CMD_DNS_OFF ? "notready" : "error";
	}
	if (op == CMD_DNS_FLUSH) {
		if (json)
			ctl_buf_printf(b, "{\"flushed\":%" PRIu32 "}\n", h->flushed);
		else
			ctl_buf_printf(b, "flushed %" PRIu32 " cache entr%s%s%s\n", h->flushed,
			               h->flushed == 1 ? "y" : "ies", name[0] ? " of " : "", name);
		return "ok";
	}
	if (json) {
		ctl_buf_printf(b, "{\"name\":\"");
		ctl_dns_str(b, name, 256, true);
		ctl_buf_printf(
		    b,
		    "\",\"route\":\"%s\",\"dnssec\":\"%s\",\"implicit_mx\":%s,"
		    "\"source\":\"%s\",\"ttl\":%" PRIu32 ",\"queries\":%" PRIu32
		    ",\"cache_hits\":%" PRIu32 ",\"latency_ns\":%" PRIu64 ",\"failure\":\"%s\","
		    "\"reason\":\"",
		    CTL_PICK(ctl_dns_routes, h->route), CTL_PICK(ctl_dns_secs, h->mx_sec),
		    h->implicit ? "true" : "false", h->cached ? "cache" : "fresh",
		    h->ttl == UINT32_MAX ? 0 : h->ttl, h->queries, h->hits, h->latency_ns,
		    h->route == 4 ? CTL_PICK(ctl_dns_kinds, h->fail_kind) : "");
		ctl_dns_str(b, h->reason, sizeof(h->reason), true);
		ctl_buf_printf(b, "\",\"hops\":[");
	} else {
		ctl_buf_printf(b,
		               "%s: %s%s, DNSSEC %s, %s (%" PRIu32 " quer%s, %" PRIu32
		               " cache hit%s), TTL %" PRIu32 " s\n",
		               name, CTL_PICK(ctl_dns_routes, h->route),
		               h->implicit ? " (implicit MX: no MX records)" : "",
		               CTL_PICK(ctl_dns_secs, h->mx_sec), h->cached ? "cache" : "fresh",
		               h->queries, h->queries == 1 ? "y" : "ies", h->hits,
		               h->hits == 1 ? "" : "s", h->ttl == UINT32_MAX ? 0 : h->ttl);
		if (h->reason[0] != '\0') {
			ctl_buf_printf(b, "  reason: ");
			ctl_dns_str(b, h->reason, sizeof(h->reason), false);
			ctl_buf_printf(b, "\n");
		}
	}
	for (uint32_t k = 1, nh = 0; k < n; k++) {
		const struct cmd_dns_hop *p = &it[k].hop;
		struct in_addr a = {.s_addr = p->addr};

		if (p->kind != CMD_DNS_ITEM_HOP)
			continue;
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		if (json) {
			ctl_buf_printf(b, "%s{\"preference\":%u,\"host\":\"", nh++ > 0 ? "," : "",
			               p->pref);
			ctl_dns_str(b, p->host, sizeof(p->host), true);
			ctl_buf_printf(b, "\",\"address\":\"%s\",\"dnssec\":\"%s\"}", ip,
			               CTL_PICK(ctl_dns_secs, p->sec));
		} else {
			ctl_buf_printf(b, "  %5u ", p->pref);
			ctl_dns_str(b, p->host, sizeof(p->host), false);
			ctl_buf_printf(b, " %s %s\n", ip, CTL_PICK(ctl_dns_secs, p->sec));
		}
	}
	if (json)
		ctl_buf_printf(b, "]}\n");
	return "ok";
}

/* ---- the session list ---- */

static const struct {
	uint16_t port;
	const char *name;
} ctl_services[] = {
    {7, "echo"},  {9, "discard"},       {19, "source"},
    {25, "smtp"}, {465, "submissions"}, {587, "submission"},
};

const char *ctl_port_service(uint16_t port)
{
	for (size_t i = 0; i < sizeof(ctl_services) / sizeof(ctl_services[0]); i++)
		if (ctl_services[i].port == port)
			return ctl_services[i].name;
	return NULL;
}

/* "198.18.0.1:25", or "[2001:db8:18::1]:25" for an IPv6 session. */
static void ctl_fmt_endpoint(char *buf, size_t len, const struct cmd_session *s, bool local)
{
	char ip[INET6_ADDRSTRLEN];
	uint16_t port = local ? s->lport : s->rport;

	if (s->flags & CMD_SESSION_F_IPV6) {
		inet_ntop(AF_INET6, local ? s->laddr6 : s->raddr6, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, (unsigned)port);
	} else {
		struct in_addr in = {.s_addr = local ? s->laddr : s->raddr};

		inet_ntop(AF_INET, &in, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, (unsigned)port);
	}
}

/* Who owns the connection: the listener's port and its service, or "client". */
static void ctl_fmt_owner(char *buf, size_t len, const struct cmd_session *s)
{
	const char *svc;

	if (!(s->flags & CMD_SESSION_F_PASSIVE)) {
		snprintf(buf, len, "client");
		return;
	}
	svc = ctl_port_service(s->lport);
	snprintf(buf, len, ":%u%s%s", (unsigned)s->lport, svc != NULL ? " " : "",
	         svc != NULL ? svc : "");
}

static void ctl_fmt_age(char *buf, size_t len, uint64_t ns)
{
	uint64_t s = ns / CTL_NS_PER_S;

	if (s < 60)
		snprintf(buf, len, "%" PRIu64 ".%01" PRIu64 "s", s, ns % CTL_NS_PER_S / 100000000u);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
}

/* Why a worker's list is short, or NULL. */
static const char *ctl_worker_note(const struct dpreq_worker *dw, uint32_t max)
{
	if (dw->state != DPREQ_DONE)
		return dpreq_worker_state_name(dw->state);
	if (dw->status == CMDRING_UNKNOWN)
		return "the dataplane does not know this command";
	if (dw->status != CMDRING_OK)
		return "the dataplane refused the request";
	if (dw->truncated)
		return dw->items >= max ? "truncated at --max" : "truncated (response ring full)";
	return NULL;
}

const char *ctl_sessions_report(struct ctl_buf *b, const struct dpreq *r, uint32_t max, bool json)
{
	bool complete = true;

	if (json)
		ctl_buf_printf(b, "{\"workers\":[");
	for (uint32_t w = 0; w < r->nworkers; w++) {
		const struct dpreq_worker *dw = &r->w[w];
		const struct cmd_session *s = (const struct cmd_session *)(const void *)dw->data.p;
		uint32_t n = (uint32_t)(dw->data.len / sizeof(*s));
		const char *note = ctl_worker_note(dw, max);

		if (dw->state != DPREQ_DONE || dw->status != CMDRING_OK)
			complete = false;
		if (json) {
			ctl_buf_printf(b, "%s{\"worker\":%" PRIu32 ",\"answered\":%s",
			               w > 0 ? "," : "", w,
			               dw->state == DPREQ_DONE ? "true" : "false");
			if (dw->state == DPREQ_DONE)
				ctl_buf_printf(b, ",\"connections\":%" PRIu64, dw->aux);
			ctl_buf_printf(b, ",\"listed\":%" PRIu32 ",\"truncated\":%s", n,
			               dw->truncated ? "true" : "false");
			if (note != NULL) {
				ctl_buf_printf(b, ",\"note\":");
				ctl_buf_json_str(b, note, SIZE_MAX);
			}
			ctl_buf_printf(b, ",\"sessions\":[");
		} else if (dw->state == DPREQ_DONE) {
			ctl_buf_printf(b, "worker %" PRIu32 ": %" PRIu64 " connection%s", w,
			               dw->aux, dw->aux == 1 ? "" : "s");
			if (n != dw->aux)
				ctl_buf_printf(b, ", %" PRIu32 " listed", n);
			ctl_buf_printf(b, "%s%s\n", note != NULL ? " - " : "",
			               note != NULL ? note : "");
			if (n > 0)
				ctl_buf_printf(b, "  %-21s %-21s %-12s %10s %10s %7s %7s %7s  %s\n",
				               "local", "remote", "state", "in", "out", "sndq",
				               "rcvq", "age", "owner");
		} else {
			ctl_buf_printf(b, "worker %" PRIu32 ": %s\n", w, note);
		}
		for (uint32_t i = 0; i < n; i++) {
			char local[64], remote[64], owner[32], age[24];
			const struct cmd_session *c = &s[i];
			int slen = (int)strnlen(c->state, sizeof(c->state));

			ctl_fmt_endpoint(local, sizeof(local), c, true);
			ctl_fmt_endpoint(remote, sizeof(remote), c, false);
			ctl_fmt_owner(owner, sizeof(owner), c);
			if (json) {
				const char *svc = ctl_port_service(c->lport);
				char state[CMD_SESSION_STATE_MAX + 1];

				snprintf(state, sizeof(state), "%.*s", slen, c->state);
				ctl_buf_printf(b,
				               "%s{\"local\":\"%s\",\"remote\":\"%s\",\"state\":",
				               i > 0 ? "," : "", local, remote);
				ctl_buf_json_str(b, state, sizeof(state));
				ctl_buf_printf(b,
				               ",\"bytes_in\":%" PRIu32 ",\"bytes_out\":%" PRIu32
				               ",\"sndq\":%" PRIu32 ",\"rcvq\":%" PRIu32
				               ",\"age_ms\":%" PRIu64 ",\"passive\":%s",
				               c->bytes_in, c->bytes_out, c->sndq, c->rcvq,
				               c->age_ns / CTL_NS_PER_MS,
				               (c->flags & CMD_SESSION_F_PASSIVE) ? "true"
				                                                  : "false");
				if ((c->flags & CMD_SESSION_F_PASSIVE) && svc != NULL)
					ctl_buf_printf(b, ",\"service\":\"%s\"", svc);
				ctl_buf_printf(b, "}");
			} else {
				ctl_fmt_age(age, sizeof(age), c->age_ns);
				ctl_buf_printf(b,
				               "  %-21s %-21s %-12.*s %10" PRIu32 " %10" PRIu32
				               " %7" PRIu32 " %7" PRIu32 " %7s  %s\n",
				               local, remote, slen, c->state, c->bytes_in,
				               c->bytes_out, c->sndq, c->rcvq, age, owner);
			}
		}
		if (json)
			ctl_buf_printf(b, "]}");
	}
	if (json)
		ctl_buf_printf(b, "],\"complete\":%s}\n", complete ? "true" : "false");
	return complete ? "ok" : "notready";
}
