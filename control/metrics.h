/*
 * metrics.h - the Prometheus endpoint of posternd: GET /metrics on
 * metrics_listen answers the dataplane counters, a few gauges and the
 * deliveries per domain and TLS outcome in the text exposition format
 * 0.0.4. A deliberately small HTTP/1.0 responder run from posternd's poll
 * loop: non-blocking, one request per connection, bounded request size, a
 * deadline per client, a fixed number of clients.
 */
#ifndef PG_METRICS_H
#define PG_METRICS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "shm.h"
#include "tlsstats.h"

#define METRICS_MAX_CLIENTS 16
#define METRICS_MAX_FDS (1 + METRICS_MAX_CLIENTS)
#define METRICS_REQUEST_MAX 4096
#define METRICS_TIMEOUT_NS (5 * 1000000000ull)

struct metrics_client {
	int fd;
	uint64_t deadline_ns;
	char req[METRICS_REQUEST_MAX + 1];
	size_t req_len;
	struct ctl_buf out;
	size_t out_off;
	bool replying;
};

struct metrics_server {
	int listen_fd; /* -1: metrics_listen is empty */
	struct metrics_client clients[METRICS_MAX_CLIENTS];
	uint64_t requests; /* answered, any status */
};

/* Listen on "ADDRESS:PORT" ("" = off: PG_OK, nothing opened). */
int metrics_open(struct metrics_server *s, const char *listen, char *err, size_t errlen);
void metrics_close(struct metrics_server *s);

/* The descriptors to poll, in pfd[0..return). */
unsigned metrics_poll_fds(const struct metrics_server *s, struct pollfd *pfd, unsigned max);
/*
 * Serve what poll() reported on those descriptors; expire slow clients.
 * tls: posternd's deliveries per domain and TLS outcome (NULL: none).
 */
void metrics_poll_events(struct metrics_server *s, const struct pollfd *pfd, unsigned n,
                         struct shm_region *rg, const struct tlsstats *tls, uint64_t now_ns);

/* ---- pieces, for the tests ---- */

/*
 * The HTTP status a request gets: 200 (GET /metrics), 400, 404, 405, 431;
 * 0 while the request is incomplete (eof: the client has finished sending).
 */
int metrics_request_status(const char *req, size_t len, bool eof);
/*
 * The exposition text; now_ns is CLOCK_MONOTONIC (heartbeat ages). With
 * tls, after the dataplane counters:
 *   postern_delivery_tls_total{domain="example.com",outcome="verified"} N
 * (every outcome of every domain in the table) and
 * postern_delivery_tls_skipped_total N.
 */
void metrics_render(struct ctl_buf *b, struct shm_region *rg, const struct tlsstats *tls,
                    uint64_t now_ns);
/* A whole response: status line, headers, body (none for HEAD-less errors). */
void metrics_response(struct ctl_buf *out, int status, const struct ctl_buf *body);

#endif
