/*
 * diag.c - echo, discard and pattern source services and the diagnostic
 * client (diag.h), written against tcp.h only, as SMTP will be. All state
 * hangs off w->diag and is touched by its worker only; every session and
 * client run is on a list so a stop or a teardown can account for it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_log.h>

#include "core/events.h"
#include "core/timer.h"
#include "core/worker.h"
#include "diag.h"
#include "net/tcp.h"
#include "result.h"
#include "snap_format.h"

#define DIAG_CHUNK 16384 /* bytes built per tcp_send of the pattern */
#define DIAG_WATCHDOG_NS (1000ull * 1000 * 1000)

enum diag_service { DIAG_SVC_ECHO, DIAG_SVC_DISCARD, DIAG_SVC_SOURCE, DIAG_SVC__COUNT };

static const uint16_t diag_svc_port[DIAG_SVC__COUNT] = {
    [DIAG_SVC_ECHO] = DIAG_PORT_ECHO,
    [DIAG_SVC_DISCARD] = DIAG_PORT_DISCARD,
    [DIAG_SVC_SOURCE] = DIAG_PORT_SOURCE,
};

/* One accepted connection of a service. */
struct diag_session {
	struct diag_session *next, *prev;
	struct diag_state *d;
	struct tcp_conn *c;
	enum diag_service svc;
	/* source: the request line being read, then the answer being sent */
	bool req_done, req_cr;
	uint8_t req_len;
	uint64_t total, sent;
};

/* One client run. */
struct diag_client {
	struct diag_client *next, *prev;
	struct diag_state *d;
	struct tcp_conn *c;
	struct diag_result r;
	uint64_t start_ns, progress_ns;
	char req[24]; /* source: "N\n" */
	uint32_t req_len;
	bool shut;
	struct timer watchdog;
	diag_client_done_fn done;
	void *arg;
};

/* Per-worker state (w->diag), allocated at the first adoption. */
struct diag_state {
	struct worker *w;
	bool listening;
	struct diag_session *sessions;
	uint32_t nsessions;
	struct diag_client *clients;
	uint32_t nclients;
	/* worker 0: the diag_client setting and its runs */
	struct diag_client_cfg cfg;  /* last adopted; count 0 = none */
	struct diag_client *run;     /* the run in progress */
	uint32_t run_no, runs_left;
	struct timer next_run;
};

/* ---- the pattern ---- */

static inline uint64_t diag_mix(uint64_t k)
{
	uint64_t z = (k + 1) * UINT64_C(0x9e3779b97f4a7c15);

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint8_t diag_pattern_byte(uint64_t off)
{
	return (uint8_t)((diag_mix((off & 0xffff) >> 3) >> (8 * (off & 7))) + (off >> 16));
}

void diag_pattern_fill(uint64_t off, uint8_t *buf, size_t len)
{
	size_t k = 0;

	for (; k < len && ((off + k) & 7) != 0; k++)
		buf[k] = diag_pattern_byte(off + k);
	/* whole words: one mix per 8 bytes; a word never straddles a block */
	for (; len - k >= 8; k += 8) {
		uint64_t i = off + k, v = diag_mix((i & 0xffff) >> 3);
		uint8_t add = (uint8_t)(i >> 16);

		for (unsigned j = 0; j < 8; j++)
			buf[k + j] = (uint8_t)((uint8_t)(v >> (8 * j)) + add);
	}
	for (; k < len; k++)
		buf[k] = diag_pattern_byte(off + k);
}

size_t diag_pattern_check(uint64_t off, const uint8_t *buf, size_t len)
{
	uint8_t want[256];

	for (size_t k = 0; k < len; k += sizeof(want)) {
		size_t n = RTE_MIN(len - k, sizeof(want));

		diag_pattern_fill(off + k, want, n);
		if (memcmp(want, buf + k, n) == 0)
			continue;
		for (size_t j = 0; j < n; j++)
			if (want[j] != buf[k + j])
				return k + j;
	}
	return len;
}

/* ---- state ---- */

static void diag_run_next(struct timer *t, void *owner);

static struct diag_state *diag_get(struct worker *w)
{
	if (w->diag == NULL) {
		w->diag = worker_alloc(w, sizeof(*w->diag));
		if (w->diag == NULL)
			return NULL;
		w->diag->w = w;
		timer_init(&w->diag->next_run, diag_run_next);
	}
	return w->diag;
}

#define DIAG_LINK(head, n, e)                                                                      \
	do {                                                                                       \
		(e)->prev = NULL;                                                                  \
		(e)->next = (head);                                                                \
		if ((head) != NULL)                                                                \
			(head)->prev = (e);                                                        \
		(head) = (e);                                                                      \
		(n)++;                                                                             \
	} while (0)

#define DIAG_UNLINK(head, n, e)                                                                    \
	do {                                                                                       \
		if ((e)->prev != NULL)                                                             \
			(e)->prev->next = (e)->next;                                               \
		else                                                                               \
			(head) = (e)->next;                                                        \
		if ((e)->next != NULL)                                                             \
			(e)->next->prev = (e)->prev;                                               \
		(n)--;                                                                             \
	} while (0)

/*
 * Send pattern bytes [*done, total) as far as the send buffer takes them.
 * PG_OK when all is queued, PG_AGAIN when a `writable` event will follow,
 * PG_ERROR when the connection cannot send any more.
 */
static int diag_send_pattern(struct tcp_conn *c, uint64_t *done, uint64_t total)
{
	uint8_t buf[DIAG_CHUNK];

	while (*done < total) {
		uint32_t space = tcp_send_space(c);
		uint32_t n = (uint32_t)RTE_MIN(total - *done, (uint64_t)sizeof(buf));
		int rc;

		/*
		 * With no space, offer one byte anyway: tcp_send then returns
		 * PG_AGAIN and arms the `writable` event.
		 */
		n = space == 0 ? 1 : RTE_MIN(n, space);
		diag_pattern_fill(*done, buf, n);
		rc = tcp_send(c, buf, n);
		if (rc == PG_AGAIN)
			return PG_AGAIN;
		if (rc < 0)
			return PG_ERROR;
		*done += (uint64_t)rc;
		if ((uint32_t)rc < n)
			return PG_AGAIN;
	}
	return PG_OK;
}

/* ---- the services ---- */

static const struct tcp_ops diag_session_ops;

static void diag_session_end(struct diag_session *s, bool reset)
{
	struct diag_state *d = s->d;

	tcp_release(&s->c, reset);
	DIAG_UNLINK(d->sessions, d->nsessions, s);
	worker_free(d->w, s);
}

/* The peer's FIN has arrived and everything before it was handled: finish. */
static bool diag_session_eof(struct diag_session *s)
{
	int rc = tcp_recv(s->c, NULL, 0);

	if (rc == PG_DONE || rc == PG_ERROR) {
		diag_session_end(s, false); /* FIN after what is still queued */
		return true;
	}
	return false;
}

/* RFC 862: send back what arrives, no faster than the send buffer drains. */
static void diag_echo(struct diag_session *s)
{
	struct worker *w = s->d->w;

	for (;;) {
		const uint8_t *p1, *p2;
		uint32_t l1, l2;
		int rc;

		if (tcp_recv_peek(s->c, &p1, &l1, &p2, &l2) == 0)
			break;
		rc = tcp_send(s->c, p1, l1);
		if (rc == PG_AGAIN)
			return; /* reading stops; the window closes; `writable` resumes */
		if (rc < 0) {
			diag_session_end(s, true);
			return;
		}
		tcp_recv_consume(s->c, (uint32_t)rc);
		WCOUNT_ADD(w, diag_echo_bytes, (uint64_t)rc);
		if ((uint32_t)rc < l1)
			return;
	}
	diag_session_eof(s);
}

/* RFC 863: read and drop. */
static void diag_discard(struct diag_session *s)
{
	const uint8_t *p1, *p2;
	uint32_t l1, l2, n = tcp_recv_peek(s->c, &p1, &l1, &p2, &l2);

	tcp_recv_consume(s->c, n);
	WCOUNT_ADD(s->d->w, diag_discard_bytes, n);
	diag_session_eof(s);
}

/*
 * Source request: DIGITS [CR] LF within DIAG_SOURCE_REQ_MAX bytes, the
 * count at most DIAG_SOURCE_MAX. Returns PG_OK (complete), PG_AGAIN (more
 * needed) or PG_ERROR (bad); *used is how many bytes of buf it took.
 */
static int diag_source_parse(struct diag_session *s, const uint8_t *buf, uint32_t len,
                             uint32_t *used)
{
	for (uint32_t k = 0; k < len; k++) {
		uint8_t ch = buf[k];

		*used = k + 1;
		s->req_len++;
		if (ch == '\n') {
			/* at least one digit before the line end */
			return s->req_len - 1 - s->req_cr > 0 ? PG_OK : PG_ERROR;
		}
		if (s->req_len >= DIAG_SOURCE_REQ_MAX)
			return PG_ERROR; /* the LF can no longer come within the limit */
		if (s->req_cr)
			return PG_ERROR; /* CR not followed by LF */
		if (ch == '\r') {
			s->req_cr = true;
			continue;
		}
		if (ch < '0' || ch > '9')
			return PG_ERROR;
		s->total = s->total * 10 + (uint64_t)(ch - '0');
		if (s->total > DIAG_SOURCE_MAX)
			return PG_ERROR;
	}
	return PG_AGAIN;
}

static void diag_source_pump(struct diag_session *s)
{
	uint64_t before = s->sent;
	int rc = diag_send_pattern(s->c, &s->sent, s->total);

	WCOUNT_ADD(s->d->w, diag_source_bytes, s->sent - before);
	if (rc == PG_OK)
		diag_session_end(s, false); /* FIN after the last byte */
	else if (rc == PG_ERROR)
		diag_session_end(s, true);
}

static void diag_source_read(struct diag_session *s)
{
	const uint8_t *p[2];
	uint32_t l[2], n = tcp_recv_peek(s->c, &p[0], &l[0], &p[1], &l[1]);
	int rc = PG_AGAIN;

	if (!s->req_done) {
		for (unsigned i = 0; i < 2 && rc == PG_AGAIN; i++) {
			uint32_t used = 0;

			rc = diag_source_parse(s, p[i], l[i], &used);
		}
		if (rc == PG_AGAIN && tcp_recv(s->c, NULL, 0) != PG_AGAIN)
			rc = PG_ERROR; /* FIN (or the end) before the line was complete */
		if (rc == PG_ERROR) {
			WCOUNT(s->d->w, diag_bad_request);
			diag_session_end(s, true);
			return;
		}
	}
	/* Everything after the request line is read and dropped. */
	tcp_recv_consume(s->c, n);
	if (rc == PG_OK) {
		s->req_done = true;
		diag_source_pump(s);
	}
}

static void diag_session_readable(struct tcp_conn *c, void *user)
{
	struct diag_session *s = user;

	(void)c;
	switch (s->svc) {
	case DIAG_SVC_ECHO:
		diag_echo(s);
		break;
	case DIAG_SVC_DISCARD:
		diag_discard(s);
		break;
	case DIAG_SVC_SOURCE:
		diag_source_read(s);
		break;
	default:
		break;
	}
}

static void diag_session_writable(struct tcp_conn *c, void *user)
{
	struct diag_session *s = user;

	(void)c;
	if (s->svc == DIAG_SVC_ECHO)
		diag_echo(s);
	else if (s->svc == DIAG_SVC_SOURCE && s->req_done)
		diag_source_pump(s);
}

/* Over: both directions done, or reset / timed out. Release the handle. */
static void diag_session_closed(struct tcp_conn *c, void *user)
{
	(void)c;
	diag_session_end(user, false);
}

static void diag_session_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	(void)c;
	(void)err;
	diag_session_end(user, false);
}

static const struct tcp_ops diag_session_ops = {
    .readable = diag_session_readable,
    .writable = diag_session_writable,
    .closed = diag_session_closed,
    .error = diag_session_error,
};

static void diag_accept(struct tcp_conn *c, struct diag_state *d, enum diag_service svc)
{
	struct diag_session *s = worker_alloc(d->w, sizeof(*s));

	if (s == NULL) {
		tcp_abort(c);
		return;
	}
	s->d = d;
	s->c = c;
	s->svc = svc;
	DIAG_LINK(d->sessions, d->nsessions, s);
	tcp_set_handler(c, &diag_session_ops, s);
	switch (svc) {
	case DIAG_SVC_ECHO:
		WCOUNT(d->w, diag_echo_conns);
		break;
	case DIAG_SVC_DISCARD:
		WCOUNT(d->w, diag_discard_conns);
		break;
	default:
		WCOUNT(d->w, diag_source_conns);
		break;
	}
	/* Data may have come with the handshake's last ACK. */
	diag_session_readable(c, s);
}

static void diag_echo_accepted(struct tcp_conn *c, void *user)
{
	diag_accept(c, user, DIAG_SVC_ECHO);
}

static void diag_discard_accepted(struct tcp_conn *c, void *user)
{
	diag_accept(c, user, DIAG_SVC_DISCARD);
}

static void diag_source_accepted(struct tcp_conn *c, void *user)
{
	diag_accept(c, user, DIAG_SVC_SOURCE);
}

static const struct tcp_ops diag_listen_ops[DIAG_SVC__COUNT] = {
    [DIAG_SVC_ECHO] = {.accepted = diag_echo_accepted},
    [DIAG_SVC_DISCARD] = {.accepted = diag_discard_accepted},
    [DIAG_SVC_SOURCE] = {.accepted = diag_source_accepted},
};

/* The services listen on every address of both families. */
static const uint8_t diag_families[] = {PG_AF_INET, PG_AF_INET6};
#define DIAG_NLISTEN (DIAG_SVC__COUNT * sizeof(diag_families))

static void diag_unlisten(struct worker *w, unsigned n)
{
	while (n-- > 0) {
		struct pg_addr any = pg_addr_any(diag_families[n / DIAG_SVC__COUNT]);

		tcp_unlisten_addr(w, &any, diag_svc_port[n % DIAG_SVC__COUNT]);
	}
}

int diag_services_start(struct worker *w)
{
	struct diag_state *d;

	if (w->tcp == NULL || (d = diag_get(w)) == NULL)
		return PG_ERROR;
	if (d->listening)
		return PG_OK;
	for (unsigned i = 0; i < DIAG_NLISTEN; i++) {
		struct pg_addr any = pg_addr_any(diag_families[i / DIAG_SVC__COUNT]);
		unsigned svc = i % DIAG_SVC__COUNT;

		if (tcp_listen_addr(w, &any, diag_svc_port[svc], &diag_listen_ops[svc], d) !=
		    PG_OK) {
			/* taken by someone else, or the table is full: undo ours */
			diag_unlisten(w, i);
			return PG_ERROR;
		}
	}
	d->listening = true;
	return PG_OK;
}

void diag_services_stop(struct worker *w)
{
	struct diag_state *d = w->diag;

	if (d == NULL || !d->listening)
		return;
	diag_unlisten(w, DIAG_NLISTEN);
	d->listening = false;
}

bool diag_services_running(const struct worker *w)
{
	return w->diag != NULL && w->diag->listening;
}

uint32_t diag_service_conns(const struct worker *w)
{
	return w->diag != NULL ? w->diag->nsessions : 0;
}

/* ---- the client ---- */

const char *diag_client_mode_name(enum diag_client_mode mode)
{
	switch (mode) {
	case DIAG_CLIENT_ECHO:
		return "echo";
	case DIAG_CLIENT_DISCARD:
		return "discard";
	case DIAG_CLIENT_SOURCE:
		return "source";
	}
	return "?";
}

/* "198.19.0.2" or "[2001:db8:19::2]", ready for ":PORT". */
static void diag_fmt_host(const struct pg_addr *a, char *buf, size_t len)
{
	char ip[PG_ADDR_STRLEN];

	pg_addr_fmt(a, ip, sizeof(ip));
	snprintf(buf, len, pg_addr_is_v6(a) ? "[%s]" : "%s", ip);
}

void diag_result_format(const struct diag_result *r, char *buf, size_t len)
{
	char ip[PG_ADDR_STRLEN + 2], verdict[128];
	double s = (double)r->elapsed_ns / 1e9;
	uint64_t payload = r->mode == DIAG_CLIENT_SOURCE ? r->received : r->sent;

	diag_fmt_host(&r->dst, ip, sizeof(ip));
	if (r->ok)
		snprintf(verdict, sizeof(verdict), "verified ok");
	else if (r->mismatch)
		snprintf(verdict, sizeof(verdict), "FAILED: mismatch at offset %" PRIu64,
		         r->mismatch_off);
	else
		snprintf(verdict, sizeof(verdict), "FAILED: %s", r->error);
	snprintf(buf, len,
	         "%s %s:%u %" PRIu64 " bytes: sent %" PRIu64 ", received %" PRIu64
	         ", %s, %.3f s, %.1f Mbit/s",
	         diag_client_mode_name(r->mode), ip, r->dst_port, r->bytes, r->sent, r->received,
	         verdict, s, s > 0 ? (double)payload * 8 / s / 1e6 : 0.0);
}

/*
 * End a run: release the connection (RST when `reset`), report, free.
 * fmt NULL means success. The result is handed out after the client is
 * gone, so the callback may start the next run.
 */
static void diag_client_finish(struct diag_client *cl, bool reset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void diag_client_finish(struct diag_client *cl, bool reset, const char *fmt, ...)
{
	struct diag_state *d = cl->d;
	struct worker *w = d->w;
	struct diag_result r = cl->r;
	diag_client_done_fn done = cl->done;
	void *arg = cl->arg;

	r.ok = fmt == NULL && !r.mismatch;
	if (fmt != NULL) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(r.error, sizeof(r.error), fmt, ap);
		va_end(ap);
	}
	r.elapsed_ns = w->now_ns - cl->start_ns;
	tcp_release(&cl->c, reset);
	timer_cancel(w->timers, &cl->watchdog);
	DIAG_UNLINK(d->clients, d->nclients, cl);
	worker_free(w, cl);

	WCOUNT(w, diag_client_runs);
	if (r.ok)
		WCOUNT(w, diag_client_ok);
	else
		WCOUNT(w, diag_client_fail);
	WCOUNT_ADD(w, diag_client_bytes, r.sent + r.received);
	if (done != NULL)
		done(w, &r, arg);
}

/* Send what this mode sends: the pattern then FIN, or the request line. */
static void diag_client_pump(struct diag_client *cl)
{
	uint64_t before = cl->r.sent;
	int rc;

	if (cl->r.mode == DIAG_CLIENT_SOURCE) {
		uint64_t off = cl->r.sent;

		while (off < cl->req_len) {
			int n = tcp_send(cl->c, cl->req + off, (uint32_t)(cl->req_len - off));

			if (n == PG_AGAIN)
				break;
			if (n < 0) {
				diag_client_finish(cl, true, "cannot send the request");
				return;
			}
			off += (uint64_t)n;
		}
		cl->r.sent = off;
	} else if (!cl->shut) {
		rc = diag_send_pattern(cl->c, &cl->r.sent, cl->r.bytes);
		if (rc == PG_ERROR) {
			diag_client_finish(cl, true, "connection closed while sending");
			return;
		}
		if (rc == PG_OK) {
			cl->shut = true;
			tcp_shutdown(cl->c);
		}
	}
	if (cl->r.sent != before)
		cl->progress_ns = cl->d->w->now_ns;
}

/* The peer closed its side: judge the run. */
static void diag_client_eof(struct diag_client *cl)
{
	const struct diag_result *r = &cl->r;

	switch (r->mode) {
	case DIAG_CLIENT_ECHO:
		if (r->sent < r->bytes)
			diag_client_finish(cl, false, "peer closed after %" PRIu64 " bytes sent",
			                   r->sent);
		else if (r->received < r->bytes)
			diag_client_finish(
			    cl, false, "peer closed after echoing %" PRIu64 " of %" PRIu64 " bytes",
			    r->received, r->bytes);
		else
			diag_client_finish(cl, false, NULL);
		break;
	case DIAG_CLIENT_DISCARD:
		if (r->sent < r->bytes)
			diag_client_finish(cl, false, "peer closed after %" PRIu64 " bytes sent",
			                   r->sent);
		else
			diag_client_finish(cl, false, NULL);
		break;
	case DIAG_CLIENT_SOURCE:
		if (r->received < r->bytes)
			diag_client_finish(cl, false,
			                   "peer closed after %" PRIu64 " of %" PRIu64 " bytes",
			                   r->received, r->bytes);
		else
			diag_client_finish(cl, false, NULL);
		break;
	}
}

static void diag_client_readable(struct tcp_conn *c, void *user)
{
	struct diag_client *cl = user;
	struct diag_result *r = &cl->r;
	const uint8_t *p[2];
	uint32_t l[2], n;

	cl->c = c;
	n = tcp_recv_peek(c, &p[0], &l[0], &p[1], &l[1]);
	if (n > 0) {
		uint64_t expect = r->mode == DIAG_CLIENT_DISCARD ? 0 : r->bytes;
		uint64_t off = r->received;

		if (r->received + n > expect) {
			diag_client_finish(
			    cl, true, "received more than the %" PRIu64 " bytes expected", expect);
			return;
		}
		for (unsigned i = 0; i < 2; i++) {
			size_t k = diag_pattern_check(off, p[i], l[i]);

			if (k < l[i]) {
				r->mismatch = true;
				r->mismatch_off = off + k;
				r->received = off + k;
				diag_client_finish(cl, true, "mismatch at offset %" PRIu64,
				                   r->mismatch_off);
				return;
			}
			off += l[i];
		}
		r->received += n;
		tcp_recv_consume(c, n);
		cl->progress_ns = cl->d->w->now_ns;
	}
	if (tcp_recv(c, NULL, 0) == PG_DONE)
		diag_client_eof(cl);
}

static void diag_client_connected(struct tcp_conn *c, void *user)
{
	struct diag_client *cl = user;

	cl->c = c;
	cl->progress_ns = cl->d->w->now_ns;
	diag_client_pump(cl);
}

static void diag_client_writable(struct tcp_conn *c, void *user)
{
	struct diag_client *cl = user;

	cl->c = c;
	diag_client_pump(cl);
}

static void diag_client_closed(struct tcp_conn *c, void *user)
{
	struct diag_client *cl = user;

	cl->c = c;
	diag_client_eof(cl);
}

static void diag_client_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	struct diag_client *cl = user;

	cl->c = c;
	switch (err) {
	case TCP_ERR_REFUSED:
		diag_client_finish(cl, false, "connection refused");
		break;
	case TCP_ERR_TIMEOUT:
		diag_client_finish(cl, false, "connection timed out");
		break;
	case TCP_ERR_RESET:
		diag_client_finish(cl, false, "connection reset by peer");
		break;
	default:
		diag_client_finish(cl, false, "connection failed");
		break;
	}
}

static const struct tcp_ops diag_client_ops = {
    .connected = diag_client_connected,
    .readable = diag_client_readable,
    .writable = diag_client_writable,
    .closed = diag_client_closed,
    .error = diag_client_error,
};

static void diag_client_watchdog(struct timer *t, void *owner)
{
	struct diag_client *cl = container_of(t, struct diag_client, watchdog);
	struct worker *w = owner;

	if (w->now_ns - cl->progress_ns >= DIAG_CLIENT_STALL_NS) {
		diag_client_finish(cl, true, "stalled: no progress for %" PRIu64 " s",
		                   (uint64_t)(DIAG_CLIENT_STALL_NS / 1000000000ull));
		return;
	}
	timer_arm(w->timers, t, w->now_ns + DIAG_WATCHDOG_NS);
}

static int diag_client_open(struct worker *w, const struct pg_addr *dst, uint16_t dst_port,
                            enum diag_client_mode mode, uint64_t bytes, diag_client_done_fn done,
                            void *arg, struct diag_client **out)
{
	struct diag_state *d;
	struct diag_client *cl;
	struct tcp_conn *c = NULL;
	int rc;

	if (bytes == 0 || bytes > DIAG_SOURCE_MAX || dst_port == 0 ||
	    (mode != DIAG_CLIENT_ECHO && mode != DIAG_CLIENT_DISCARD &&
	     mode != DIAG_CLIENT_SOURCE) ||
	    w->tcp == NULL || w->timers == NULL || (d = diag_get(w)) == NULL)
		return PG_ERROR;
	cl = worker_alloc(w, sizeof(*cl));
	if (cl == NULL)
		return PG_ERROR;
	cl->d = d;
	cl->r.mode = mode;
	cl->r.dst = *dst;
	cl->r.dst_ip = pg_addr_is_v4(dst) ? dst->v4 : 0;
	cl->r.dst_port = dst_port;
	cl->r.bytes = bytes;
	cl->start_ns = cl->progress_ns = w->now_ns;
	cl->done = done;
	cl->arg = arg;
	if (mode == DIAG_CLIENT_SOURCE)
		cl->req_len = (uint32_t)snprintf(cl->req, sizeof(cl->req), "%" PRIu64 "\n", bytes);
	timer_init(&cl->watchdog, diag_client_watchdog);
	DIAG_LINK(d->clients, d->nclients, cl);
	rc = tcp_connect_addr(w, dst, dst_port, &diag_client_ops, cl, &c);
	if (rc != PG_OK) {
		DIAG_UNLINK(d->clients, d->nclients, cl);
		worker_free(w, cl);
		return rc;
	}
	cl->c = c;
	timer_arm(w->timers, &cl->watchdog, w->now_ns + DIAG_WATCHDOG_NS);
	if (out != NULL)
		*out = cl;
	return PG_OK;
}

int diag_client_start_addr(struct worker *w, const struct pg_addr *dst, uint16_t dst_port,
                           enum diag_client_mode mode, uint64_t bytes, diag_client_done_fn done,
                           void *arg)
{
	return diag_client_open(w, dst, dst_port, mode, bytes, done, arg, NULL);
}

int diag_client_start(struct worker *w, uint32_t dst_ip, uint16_t dst_port,
                      enum diag_client_mode mode, uint64_t bytes, diag_client_done_fn done,
                      void *arg)
{
	struct pg_addr dst = pg_addr_v4(dst_ip);

	return diag_client_open(w, &dst, dst_port, mode, bytes, done, arg, NULL);
}

uint32_t diag_client_active(const struct worker *w)
{
	return w->diag != NULL ? w->diag->nclients : 0;
}

/* ---- configured runs (worker 0) ---- */

/* A configured run ended: the log line, and the event for posternd's JSON log. */
static void diag_run_report(struct diag_state *d, const struct diag_result *r)
{
	char line[256], ip[PG_ADDR_STRLEN + 2];

	diag_result_format(r, line, sizeof(line));
	diag_fmt_host(&r->dst, ip, sizeof(ip));
	if (r->ok)
		RTE_LOG(NOTICE, USER1, "diag client: run %u/%u: %s\n", d->run_no, d->cfg.count,
		        line);
	else
		RTE_LOG(WARNING, USER1, "diag client: run %u/%u: %s\n", d->run_no, d->cfg.count,
		        line);
	dp_event(d->w, r->ok ? EV_DIAG_CLIENT_OK : EV_DIAG_CLIENT_FAILED,
	         "run=%u" EVRING_SEP "count=%u" EVRING_SEP "mode=%s" EVRING_SEP
	         "peer=%s:%u" EVRING_SEP "bytes=%" PRIu64 EVRING_SEP "sent=%" PRIu64 EVRING_SEP
	         "received=%" PRIu64 EVRING_SEP "verified=%s" EVRING_SEP
	         "elapsed_ns=%" PRIu64 EVRING_SEP "error=%s",
	         d->run_no, d->cfg.count, diag_client_mode_name(r->mode), ip, r->dst_port, r->bytes,
	         r->sent, r->received,
	         r->ok         ? "ok"
	         : r->mismatch ? "mismatch"
	                       : "no",
	         r->elapsed_ns, r->mismatch ? "mismatch" : r->error);
}

static void diag_run_done(struct worker *w, const struct diag_result *r, void *arg)
{
	struct diag_state *d = arg;

	d->run = NULL;
	diag_run_report(d, r);
	/* The next run starts from the timer, outside this TCP callback. */
	if (d->runs_left > 0)
		timer_arm(w->timers, &d->next_run, w->now_ns);
}

static void diag_run_next(struct timer *t, void *owner)
{
	struct diag_state *d = container_of(t, struct diag_state, next_run);
	struct worker *w = owner;
	const struct diag_client_cfg *cfg = &d->cfg;
	struct diag_result r;
	int rc;

	if (d->runs_left == 0 || d->run != NULL)
		return;
	d->runs_left--;
	d->run_no++;
	rc = diag_client_open(w, &cfg->addr, cfg->port, (enum diag_client_mode)cfg->mode,
	                      cfg->bytes, diag_run_done, d, &d->run);
	if (rc == PG_OK)
		return;
	/* Could not even start: report it and give up the rest of the series. */
	memset(&r, 0, sizeof(r));
	r.mode = (enum diag_client_mode)cfg->mode;
	r.dst = cfg->addr;
	r.dst_ip = pg_addr_is_v4(&cfg->addr) ? cfg->addr.v4 : 0;
	r.dst_port = cfg->port;
	r.bytes = cfg->bytes;
	snprintf(r.error, sizeof(r.error), "cannot connect: %s%s",
	         rc == PG_DECLINED ? "no route"
	         : rc == PG_AGAIN  ? "no local port or connection cap reached"
	                           : "no memory",
	         d->runs_left > 0 ? " (remaining runs skipped)" : "");
	WCOUNT(w, diag_client_runs);
	WCOUNT(w, diag_client_fail);
	diag_run_report(d, &r);
	d->runs_left = 0;
}

/* A new diag_client setting (count 0 = none): cancel the old series, start the new. */
static void diag_runs_configure(struct diag_state *d, const struct diag_client_cfg *want)
{
	struct worker *w = d->w;

	if (pg_addr_eq(&d->cfg.addr, &want->addr) && d->cfg.port == want->port &&
	    d->cfg.mode == want->mode && d->cfg.bytes == want->bytes && d->cfg.count == want->count)
		return;
	d->runs_left = 0;
	timer_cancel(w->timers, &d->next_run);
	if (d->run != NULL)
		diag_client_finish(d->run, true, "cancelled: diag_client changed");
	d->cfg = *want;
	d->run_no = 0;
	d->runs_left = want->count;
	if (want->count > 0)
		timer_arm(w->timers, &d->next_run, w->now_ns);
}

void diag_adopt(struct worker *w, const struct snap_header *h)
{
	const struct snap_dataplane *dp;
	const struct snap_diag_client *sc;
	const struct snap_diag_client6 *sc6;
	struct diag_client_cfg want;
	struct diag_state *d;
	uint32_t n;

	if (w->tcp == NULL || w->timers == NULL || h == NULL)
		return;
	dp = snap_section(h, SNAP_SEC_DATAPLANE, &n);
	if (dp == NULL || n != 1)
		return;
	if ((dp->flags & SNAP_DP_F_DIAG) != 0) {
		if (!diag_services_running(w) && diag_services_start(w) != PG_OK)
			RTE_LOG(ERR, USER1,
			        "worker %u: diag_services: cannot listen on ports %u, %u and %u\n",
			        w->id, DIAG_PORT_ECHO, DIAG_PORT_DISCARD, DIAG_PORT_SOURCE);
	} else {
		diag_services_stop(w);
	}
	if (w->id != 0)
		return;
	memset(&want, 0, sizeof(want));
	sc = snap_section(h, SNAP_SEC_DIAG_CLIENT, &n);
	if (sc != NULL && n == 1) {
		want.addr = pg_addr_v4(sc->addr);
		want.port = sc->port;
		want.mode = sc->mode;
		want.bytes = sc->bytes;
		want.count = sc->count;
	}
	sc6 = snap_section(h, SNAP_SEC_DIAG_CLIENT6, &n); /* ABI 2.3: to an IPv6 address */
	if (sc6 != NULL && n == 1) {
		want.addr = pg_addr_v6(sc6->addr);
		want.port = sc6->port;
		want.mode = sc6->mode;
		want.bytes = sc6->bytes;
		want.count = sc6->count;
	}
	if (want.count == 0 && w->diag == NULL)
		return;
	d = diag_get(w);
	if (d == NULL)
		return;
	diag_runs_configure(d, &want);
}

void diag_destroy(struct worker *w)
{
	struct diag_state *d = w->diag;

	if (d == NULL)
		return;
	if (w->timers != NULL)
		timer_cancel(w->timers, &d->next_run);
	while (d->clients != NULL) {
		struct diag_client *cl = d->clients;

		if (cl->c != NULL)
			tcp_abort(cl->c);
		timer_cancel(w->timers, &cl->watchdog);
		DIAG_UNLINK(d->clients, d->nclients, cl);
		worker_free(w, cl);
	}
	while (d->sessions != NULL) {
		struct diag_session *s = d->sessions;

		tcp_abort(s->c);
		DIAG_UNLINK(d->sessions, d->nsessions, s);
		worker_free(w, s);
	}
	diag_services_stop(w);
	worker_free(w, d);
	w->diag = NULL;
}
