/*
 * metrics.c - GET /metrics for Prometheus (see metrics.h). The exposition
 * follows the text format 0.0.4: "# HELP" and "# TYPE" before each family,
 * label values escaped, counters suffixed _total. Names and docs of the
 * dataplane counters come from the shared memory (the dataplane writes
 * them at start), so they are checked before use. The deliveries per
 * domain and TLS outcome come from posternd's own count (tlsstats.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "ctl_wait.h"
#include "evring.h"
#include "metrics.h"
#include "result.h"

#define METRICS_NS_PER_S UINT64_C(1000000000)

/* ---- the exposition ---- */

static void metrics_family(struct ctl_buf *b, const char *name, const char *type, const char *help)
{
	ctl_buf_printf(b, "# HELP %s ", name);
	/* HELP text escapes backslash and line feed (exposition format 0.0.4) */
	for (const char *h = help; *h != '\0'; h++) {
		if (*h == '\\')
			ctl_buf_printf(b, "\\\\");
		else if (*h == '\n')
			ctl_buf_printf(b, "\\n");
		else
			ctl_buf_printf(b, "%c", *h);
	}
	ctl_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* A metric name part: [a-zA-Z_][a-zA-Z0-9_]*, as the dataplane wrote it. */
static bool metrics_name_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	return n > 0 && n < max &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n &&
	       !(s[0] >= '0' && s[0] <= '9');
}

static uint32_t metrics_nworkers(const struct shm_region *rg)
{
	uint32_t n = rg->dp.nworkers;

	return n > SNAP_MAX_WORKERS ? SNAP_MAX_WORKERS : n;
}

static void metrics_gauges(struct ctl_buf *b, struct shm_region *rg, uint64_t now_ns)
{
	const char *state = ctl_dp_state_name(rg);
	bool attached = strcmp(state, "absent") != 0;
	uint32_t nw = attached ? metrics_nworkers(rg) : 0;
	struct ctl_adoption adoption;

	metrics_family(b, "postern_dataplane_up", "gauge",
	               "1 when a live dataplane is attached and ready, else 0.");
	ctl_buf_printf(b, "postern_dataplane_up %d\n", strcmp(state, "ready") == 0);
	metrics_family(b, "postern_published_generation", "gauge",
	               "Generation of the configuration snapshot posternd published last.");
	ctl_buf_printf(b, "postern_published_generation %" PRIu64 "\n",
	               atomic_load(&rg->published_gen));
	if (nw == 0)
		return;
	metrics_family(b, "postern_worker_generation", "gauge",
	               "Configuration generation each dataplane worker runs.");
	for (uint32_t i = 0; i < nw; i++)
		ctl_buf_printf(b, "postern_worker_generation{worker=\"%" PRIu32 "\"} %" PRIu64 "\n",
		               i, atomic_load(&rg->readers[1 + i].adopted));
	if (ctl_adoption_check(rg, atomic_load(&rg->published_gen), atomic_load(&rg->published_ns),
	                       &adoption)) {
		metrics_family(b, "postern_snapshot_adoption_seconds", "gauge",
		               "Seconds from the publication of the current generation to its"
		               " adoption by the last worker.");
		ctl_buf_printf(b, "postern_snapshot_adoption_seconds %.9f\n",
		               (double)adoption.latency_ns / 1e9);
	}
	metrics_family(b, "postern_worker_heartbeat_age_seconds", "gauge",
	               "Seconds since each dataplane worker last published (every 1 ms when"
	               " alive).");
	for (uint32_t i = 0; i < nw; i++) {
		uint64_t hb = atomic_load(&rg->readers[1 + i].heartbeat_ns);
		uint64_t age = hb != 0 && now_ns > hb ? now_ns - hb : 0;

		if (hb == 0)
			continue; /* never ran: no sample rather than a made-up age */
		ctl_buf_printf(b,
		               "postern_worker_heartbeat_age_seconds{worker=\"%" PRIu32
		               "\"} %" PRIu64 ".%03" PRIu64 "\n",
		               i, age / METRICS_NS_PER_S, age % METRICS_NS_PER_S / 1000000u);
	}
	metrics_family(b, "postern_events_dropped_total", "counter",
	               "Dataplane events dropped because the ring to posternd was full.");
	for (uint32_t r = 0; r <= nw && r < rg->events_nrings; r++) {
		const struct evring *ring = shm_evring(rg, r);

		if (r == 0)
			ctl_buf_printf(b, "postern_events_dropped_total{source=\"dataplane\"}");
		else
			ctl_buf_printf(
			    b, "postern_events_dropped_total{source=\"worker %" PRIu32 "\"}",
			    r - 1);
		ctl_buf_printf(b, " %" PRIu64 "\n", atomic_load(&ring->dropped));
	}
}

/* A label value: backslash, double quote and line feed escaped (format 0.0.4). */
static void metrics_label_value(struct ctl_buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			ctl_buf_printf(b, "\\\\");
		else if (*v == '"')
			ctl_buf_printf(b, "\\\"");
		else if (*v == '\n')
			ctl_buf_printf(b, "\\n");
		else
			ctl_buf_printf(b, "%c", *v);
	}
}

/*
 * Deliveries per recipient domain and TLS outcome, counted by posternd
 * (tlsstats.h): every outcome of a domain is a series from the domain's
 * first delivery on, zeros included, so rate() sees each first increment.
 */
static void metrics_tls_outcomes(struct ctl_buf *b, const struct tlsstats *tls)
{
	char help[512];

	snprintf(help, sizeof(help),
	         "Deliveries (one per recipient per attempt) by recipient domain and TLS"
	         " outcome, counted by posternd since it started. At most %" PRIu32
	         " domains; later ones are counted under domain=\"%s\".",
	         tls->max_domains, TLSSTATS_OTHER);
	metrics_family(b, "postern_delivery_tls_total", "counter", help);
	for (uint32_t r = 0; r < tls->nrows; r++) {
		for (unsigned o = 0; o < TLSSTATS__COUNT; o++) {
			ctl_buf_printf(b, "postern_delivery_tls_total{domain=\"");
			metrics_label_value(b, tls->rows[r].domain);
			ctl_buf_printf(b, "\",outcome=\"%s\"} %" PRIu64 "\n",
			               tlsstats_outcome_name(o), tls->rows[r].count[o]);
		}
	}
	metrics_family(b, "postern_delivery_tls_skipped_total", "counter",
	               "Delivery records posternd could not count by domain and TLS outcome"
	               " (no recipient domain or no known tls_outcome).");
	ctl_buf_printf(b, "postern_delivery_tls_skipped_total %" PRIu64 "\n", tls->skipped);
}

/*
 * The same deliveries by the envelope sender's domain (issue 23): a fixed
 * table of at most max_domains sender domains, then "other"; the null
 * sender is sender_domain="<>".
 */
static void metrics_tls_sender_outcomes(struct ctl_buf *b, const struct tlsstats *tls)
{
	char help[512];

	snprintf(help, sizeof(help),
	         "Deliveries (one per recipient per attempt) by envelope sender domain and TLS"
	         " outcome, counted by posternd since it started. At most %" PRIu32
	         " sender domains; later ones are counted under sender_domain=\"%s\"; the"
	         " null sender is sender_domain=\"%s\".",
	         tls->max_domains, TLSSTATS_OTHER, TLSSTATS_NULL_SENDER);
	metrics_family(b, "postern_delivery_tls_by_sender_total", "counter", help);
	for (uint32_t r = 0; r < tls->nrows; r++) {
		for (unsigned o = 0; o < TLSSTATS__COUNT; o++) {
			ctl_buf_printf(b, "postern_delivery_tls_by_sender_total{sender_domain=\"");
			metrics_label_value(b, tls->rows[r].domain);
			ctl_buf_printf(b, "\",outcome=\"%s\"} %" PRIu64 "\n",
			               tlsstats_outcome_name(o), tls->rows[r].count[o]);
		}
	}
}

void metrics_render(struct ctl_buf *b, struct shm_region *rg, const struct tlsstats *tls,
                    uint64_t now_ns)
{
	uint32_t nw = metrics_nworkers(rg);
	uint32_t nc = rg->dp.ncounters > SHM_MAX_COUNTERS ? SHM_MAX_COUNTERS : rg->dp.ncounters;

	metrics_gauges(b, rg, now_ns);
	for (uint32_t k = 0; nw > 0 && k < nc; k++) {
		const char *name = rg->dp.counter_names[k];
		char metric[SHM_COUNTER_NAME + 32], help[SHM_COUNTER_DOC + 1];

		if (!metrics_name_ok(name, SHM_COUNTER_NAME))
			continue;
		snprintf(metric, sizeof(metric), "postern_%s_total", name);
		snprintf(help, sizeof(help), "%.*s", SHM_COUNTER_DOC, rg->dp.counter_docs[k]);
		if (help[0] == '\0')
			snprintf(help, sizeof(help), "Dataplane counter %s.", name);
		metrics_family(b, metric, "counter", help);
		for (uint32_t i = 0; i < nw; i++)
			ctl_buf_printf(
			    b, "%s{worker=\"%" PRIu32 "\"} %" PRIu64 "\n", metric, i,
			    atomic_load_explicit(&rg->dp.counters[i].v[k], memory_order_relaxed));
	}
	if (tls != NULL)
		metrics_tls_outcomes(b, tls);
	if (tls != NULL && tls->senders != NULL)
		metrics_tls_sender_outcomes(b, tls->senders);
}

/* ---- HTTP ---- */

static const char *metrics_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	}
	return "Error";
}

void metrics_response(struct ctl_buf *out, int status, const struct ctl_buf *body)
{
	struct ctl_buf err = {0};

	if (status != 200) {
		ctl_buf_printf(&err, "%d %s%s\n", status, metrics_reason(status),
		               status == 404 ? ": only /metrics is served here" : "");
		body = &err;
	}
	ctl_buf_printf(out,
	               "HTTP/1.0 %d %s\r\n"
	               "Content-Type: %s\r\n"
	               "Content-Length: %zu\r\n"
	               "%s"
	               "Connection: close\r\n\r\n",
	               status, metrics_reason(status),
	               status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
	                             : "text/plain; charset=utf-8",
	               body->len, status == 405 ? "Allow: GET\r\n" : "");
	if (body->len > 0)
		ctl_buf_printf(out, "%.*s", (int)body->len, body->p);
	ctl_buf_free(&err);
}

/*
 * RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
 * Only the request line matters to us; header lines are skipped, but the
 * whole head must arrive (up to the empty line) within the size bound.
 */
int metrics_request_status(const char *req, size_t len, bool eof)
{
	const char *end = NULL, *eol, *sp1, *sp2, *target;
	size_t line_len, mlen, tlen, vlen;

	/* a method is upper-case letters: anything else (TLS, binary) fails now */
	if (memchr(req, '\0', len) != NULL || (len > 0 && (req[0] < 'A' || req[0] > 'Z')))
		return 400;
	for (size_t i = 0; i + 1 < len && end == NULL; i++)
		if (req[i] == '\n' && (req[i + 1] == '\n' ||
		                       (req[i + 1] == '\r' && i + 2 < len && req[i + 2] == '\n')))
			end = req + i;
	eol = memchr(req, '\n', len);
	if (end == NULL && len >= METRICS_REQUEST_MAX)
		return eol == NULL ? 400 : 431;
	if (end == NULL && !eof)
		return 0;
	if (eol == NULL)
		return 400;
	line_len = (size_t)(eol - req);
	if (line_len > 0 && req[line_len - 1] == '\r')
		line_len--;
	/* exactly three parts, one space between them */
	sp1 = memchr(req, ' ', line_len);
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', line_len - (size_t)(sp1 + 1 - req)) : NULL;
	if (sp1 == NULL || sp2 == NULL)
		return 400;
	mlen = (size_t)(sp1 - req);
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);
	vlen = line_len - (size_t)(sp2 + 1 - req);
	if (mlen == 0 || mlen > 16 || strspn(req, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") < mlen ||
	    tlen == 0 || target[0] != '/' || memchr(target, ' ', tlen) != NULL ||
	    memchr(target, '\t', tlen) != NULL || vlen != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.0", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.1", 8) != 0))
		return 400;
	for (size_t i = 0; i < line_len; i++)
		if ((unsigned char)req[i] < 0x20 || req[i] == 0x7f)
			return 400;
	if (strcspn(target, "? ") != strlen("/metrics") ||
	    strncmp(target, "/metrics", strlen("/metrics")) != 0)
		return 404;
	if (mlen != 3 || memcmp(req, "GET", 3) != 0)
		return 405;
	return 200;
}

int metrics_open(struct metrics_server *s, const char *listen_on, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char why[256];
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	for (unsigned i = 0; i < METRICS_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	if (listen_on[0] == '\0')
		return PG_OK;
	if (conf_parse_listen(listen_on, &ss, &sslen, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "metrics_listen %s: %s", listen_on, why);
		return PG_ERROR;
	}
	s->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 ||
	    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(s->listen_fd, 16) != 0) {
		snprintf(err, errlen, "metrics_listen %s: cannot listen: %s", listen_on,
		         strerror(errno));
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		s->listen_fd = -1;
		return PG_ERROR;
	}
	return PG_OK;
}

static void metrics_client_close(struct metrics_client *c)
{
	close(c->fd);
	ctl_buf_free(&c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void metrics_close(struct metrics_server *s)
{
	for (unsigned i = 0; i < METRICS_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			metrics_client_close(&s->clients[i]);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
}

unsigned metrics_poll_fds(const struct metrics_server *s, struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;

	if (s->listen_fd < 0 || max == 0)
		return 0;
	pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
	for (unsigned i = 0; i < METRICS_MAX_CLIENTS && n < max; i++) {
		const struct metrics_client *c = &s->clients[i];

		if (c->fd >= 0)
			pfd[n++] =
			    (struct pollfd){.fd = c->fd, .events = c->replying ? POLLOUT : POLLIN};
	}
	return n;
}

static void metrics_accept(struct metrics_server *s, uint64_t now_ns)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct metrics_client *slot = NULL;

		if (fd < 0)
			return;
		for (unsigned i = 0; i < METRICS_MAX_CLIENTS && slot == NULL; i++)
			if (s->clients[i].fd < 0)
				slot = &s->clients[i];
		if (slot == NULL) {
			static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\n"
			                           "Content-Length: 0\r\nConnection: close\r\n\r\n";

			(void)!write(fd, busy, sizeof(busy) - 1);
			close(fd);
			continue;
		}
		slot->fd = fd;
		slot->deadline_ns = now_ns + METRICS_TIMEOUT_NS;
	}
}

static void metrics_client_write(struct metrics_client *c)
{
	ssize_t n = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		metrics_client_close(c);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off == c->out.len)
		metrics_client_close(c);
}

static void metrics_client_read(struct metrics_server *s, struct metrics_client *c,
                                struct shm_region *rg, const struct tlsstats *tls, uint64_t now_ns)
{
	ssize_t n = read(c->fd, c->req + c->req_len, METRICS_REQUEST_MAX - c->req_len);
	struct ctl_buf body = {0};
	int status;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		metrics_client_close(c);
		return;
	}
	c->req_len += (size_t)n;
	if (n == 0 && c->req_len == 0) {
		metrics_client_close(c); /* connected and left: nothing to answer */
		return;
	}
	status = metrics_request_status(c->req, c->req_len, n == 0);
	if (status == 0)
		return;
	if (status == 200)
		metrics_render(&body, rg, tls, now_ns);
	metrics_response(&c->out, status, &body);
	ctl_buf_free(&body);
	if (c->out.oom) {
		metrics_client_close(c);
		return;
	}
	/* the rest of the request, if any, is not read: one answer, then close */
	shutdown(c->fd, SHUT_RD);
	c->replying = true;
	s->requests++;
	metrics_client_write(c);
}

void metrics_poll_events(struct metrics_server *s, const struct pollfd *pfd, unsigned n,
                         struct shm_region *rg, const struct tlsstats *tls, uint64_t now_ns)
{
	for (unsigned i = 0; i < n; i++) {
		struct metrics_client *c = NULL;

		if (pfd[i].fd == s->listen_fd) {
			if (pfd[i].revents & POLLIN)
				metrics_accept(s, now_ns);
			continue;
		}
		for (unsigned k = 0; k < METRICS_MAX_CLIENTS && c == NULL; k++)
			if (s->clients[k].fd == pfd[i].fd)
				c = &s->clients[k];
		if (c == NULL || pfd[i].revents == 0)
			continue;
		if (pfd[i].revents & (POLLERR | POLLNVAL))
			metrics_client_close(c);
		else if (c->replying)
			metrics_client_write(c);
		else
			metrics_client_read(s, c, rg, tls, now_ns);
	}
	/* a client that never finishes must not hold a slot forever */
	for (unsigned k = 0; k < METRICS_MAX_CLIENTS; k++)
		if (s->clients[k].fd >= 0 && now_ns > s->clients[k].deadline_ns)
			metrics_client_close(&s->clients[k]);
}
