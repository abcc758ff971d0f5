/*
 * gen_stats.c - postern-gen's histograms, random numbers and reports
 * (text table, JSON, progress line). No DPDK: the unit test links it.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "gen.h"

/* ---- histograms ---- */

unsigned gen_hist_index(uint64_t v)
{
	unsigned e;

	if (v < GEN_HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= GEN_HIST_SUB_BITS */
	if (e > GEN_HIST_MAX_EXP)
		return GEN_HIST_BUCKETS - 1;
	return (e - GEN_HIST_SUB_BITS + 1) * GEN_HIST_SUB +
	       (unsigned)((v >> (e - GEN_HIST_SUB_BITS)) & (GEN_HIST_SUB - 1));
}

void gen_hist_range(unsigned idx, uint64_t *lo, uint64_t *hi)
{
	unsigned band = idx / GEN_HIST_SUB, sub = idx % GEN_HIST_SUB, shift;

	if (band == 0) {
		*lo = *hi = idx;
		return;
	}
	shift = band - 1; /* band 1 holds 64..127 in steps of 1 */
	*lo = ((uint64_t)(GEN_HIST_SUB + sub)) << shift;
	*hi = *lo + (1ull << shift) - 1;
}

void gen_hist_add(struct gen_hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->b[gen_hist_index(v)]++;
}

uint64_t gen_hist_quantile(const struct gen_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	/* the smallest value with at least ceil(q * count) values at or below it */
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < GEN_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t lo, hi, mid;

			gen_hist_range(i, &lo, &hi);
			mid = lo + (hi - lo) / 2;
			if (mid < h->min)
				mid = h->min;
			if (mid > h->max)
				mid = h->max;
			return mid;
		}
	}
	return h->max;
}

/* ---- random numbers: xorshift64* (Vigna), seeded by --seed ---- */

uint64_t gen_rand(struct gen *g)
{
	uint64_t x = g->rng ? g->rng : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	g->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

double gen_rand01(struct gen *g)
{
	return (double)(gen_rand(g) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- names ---- */

static const char *const lat_names[GEN_L_COUNT] = {
    [GEN_L_CONNECT] = "connect", [GEN_L_GREETING] = "greeting", [GEN_L_EHLO] = "ehlo",
    [GEN_L_STARTTLS] = "starttls", [GEN_L_TLS] = "tls_handshake", [GEN_L_RSET] = "rset",
    [GEN_L_MAIL] = "mail",       [GEN_L_RCPT] = "rcpt",         [GEN_L_DATA] = "data",
    [GEN_L_EOD] = "end_of_data", [GEN_L_QUIT] = "quit",         [GEN_L_MESSAGE] = "message",
};

static const char *const err_names[GEN_E_COUNT] = {
    [GEN_E_REFUSED] = "connection_refused", [GEN_E_CONN_TIMEOUT] = "connection_timeout",
    [GEN_E_RESET] = "connection_reset",     [GEN_E_CLOSED] = "closed_by_peer",
    [GEN_E_TLS] = "tls_handshake",          [GEN_E_SMTP_TIMEOUT] = "smtp_timeout",
    [GEN_E_PROTOCOL] = "protocol",          [GEN_E_NO_STARTTLS] = "starttls_not_offered",
    [GEN_E_NO_PORT] = "no_local_port",      [GEN_E_BACKLOG] = "schedule_backlog",
    [GEN_E_UNFINISHED] = "unfinished",
};

const char *gen_lat_name(enum gen_lat l)
{
	return l < GEN_L_COUNT ? lat_names[l] : "?";
}

const char *gen_err_name(enum gen_err e)
{
	return e < GEN_E_COUNT ? err_names[e] : "?";
}

/* ---- reports ---- */

static uint64_t gen_errors(const struct gen_counts *n)
{
	uint64_t e = 0;

	for (unsigned i = 0; i < GEN_E_COUNT; i++)
		e += n->err[i];
	return e;
}

static double per_s(uint64_t v, double s)
{
	return s > 0 ? (double)v / s : 0;
}

void gen_report_text(const struct gen *g, FILE *f, double el)
{
	const struct gen_counts *n = &g->n;
	bool client = g->o.mode == GEN_CLIENT;

	fprintf(f, "postern-gen %s: %.3f s\n", client ? "client" : "sink", el);
	fprintf(f, "  connections  %" PRIu64 " opened, %" PRIu64 " established, %" PRIu64
	           " closed  (%.1f/s)\n",
	        n->conns_opened, n->conns_established, n->conns_closed,
	        per_s(n->conns_established, el));
	fprintf(f, "  messages     %" PRIu64 " %s, %" PRIu64 " accepted, %" PRIu64
	           " tempfail, %" PRIu64 " permfail, %" PRIu64 " failed  (%.1f accepted/s)\n",
	        n->msgs_started, client ? "started" : "received", n->msgs_accepted, n->msgs_tempfail,
	        n->msgs_permfail, n->msgs_failed, per_s(n->msgs_accepted, el));
	fprintf(f, "  recipients   %" PRIu64 " accepted, %" PRIu64 " tempfail, %" PRIu64
	           " permfail\n",
	        n->rcpts_accepted, n->rcpts_tempfail, n->rcpts_permfail);
	fprintf(f, "  bytes        %" PRIu64 " message, %" PRIu64 " wire out, %" PRIu64
	           " wire in  (%.2f MB/s message)\n",
	        n->msg_bytes, n->tcp_bytes_out, n->tcp_bytes_in, per_s(n->msg_bytes, el) / 1e6);
	fprintf(f, "  TLS          %" PRIu64 " handshakes (%" PRIu64 " resumed)  (%.1f/s)\n",
	        n->tls_handshakes, n->tls_resumed, per_s(n->tls_handshakes, el));
	fprintf(f, "  TCP          %" PRIu64 " retransmissions, %" PRIu64 " timeouts (RTO)\n",
	        n->tcp_retransmits, n->tcp_rtos);
	if (!client)
		fprintf(f, "  delayed      %" PRIu64 " replies\n", n->delayed);
	fprintf(f, "  errors       %" PRIu64, gen_errors(n));
	for (unsigned i = 0; i < GEN_E_COUNT; i++)
		if (n->err[i])
			fprintf(f, "  %s=%" PRIu64, err_names[i], n->err[i]);
	fprintf(f, "\n");
	if (!client)
		return;
	fprintf(f, "  latency (us)       count      p50      p99    p99.9      max\n");
	for (unsigned i = 0; i < GEN_L_COUNT; i++) {
		const struct gen_hist *h = &g->lat[i];

		if (h->count == 0)
			continue;
		fprintf(f, "  %-14s %9" PRIu64 " %8.1f %8.1f %8.1f %8.1f\n", lat_names[i], h->count,
		        gen_hist_quantile(h, 0.5) / 1e3, gen_hist_quantile(h, 0.99) / 1e3,
		        gen_hist_quantile(h, 0.999) / 1e3, h->max / 1e3);
	}
}

int gen_report_json(const struct gen *g, FILE *f, double el)
{
	const struct gen_counts *n = &g->n;
	const struct gen_opts *o = &g->o;
	bool first = true;

	fprintf(f, "{\n \"mode\": \"%s\",\n \"elapsed_s\": %.6f,\n",
	        o->mode == GEN_CLIENT ? "client" : "sink", el);
	fprintf(f, " \"config\": {\"sessions\": %u, \"per_conn\": %u, \"rcpts\": %u, "
	           "\"pipelining\": %s, \"starttls\": %s, \"resume\": %s, \"rate\": %.3f, "
	           "\"messages\": %" PRIu64 ", \"duration_s\": %.3f, \"tempfail_pct\": %.3f, "
	           "\"permfail_pct\": %.3f, \"fail_at\": \"%s\", \"delay_ms\": %u, "
	           "\"sink_starttls\": %s},\n",
	        o->sessions, o->per_conn, o->rcpts, o->pipelining ? "true" : "false",
	        o->starttls ? "true" : "false", o->resume ? "true" : "false", o->rate, o->messages,
	        o->duration_s, o->tempfail_pct, o->permfail_pct, o->fail_at_rcpt ? "rcpt" : "data",
	        o->delay_ms, o->cert != NULL ? "true" : "false");
	fprintf(f, " \"counts\": {\"conns_opened\": %" PRIu64 ", \"conns_established\": %" PRIu64
	           ", \"conns_closed\": %" PRIu64 ", \"msgs_started\": %" PRIu64
	           ", \"msgs_accepted\": %" PRIu64 ", \"msgs_tempfail\": %" PRIu64
	           ", \"msgs_permfail\": %" PRIu64 ", \"msgs_failed\": %" PRIu64
	           ", \"rcpts_accepted\": %" PRIu64 ", \"rcpts_tempfail\": %" PRIu64
	           ", \"rcpts_permfail\": %" PRIu64 ", \"msg_bytes\": %" PRIu64
	           ", \"wire_bytes_out\": %" PRIu64 ", \"wire_bytes_in\": %" PRIu64
	           ", \"tls_handshakes\": %" PRIu64 ", \"tls_resumed\": %" PRIu64
	           ", \"delayed\": %" PRIu64 ", \"tcp_retransmits\": %" PRIu64
	           ", \"tcp_rtos\": %" PRIu64 "},\n",
	        n->conns_opened, n->conns_established, n->conns_closed, n->msgs_started,
	        n->msgs_accepted, n->msgs_tempfail, n->msgs_permfail, n->msgs_failed,
	        n->rcpts_accepted, n->rcpts_tempfail, n->rcpts_permfail, n->msg_bytes,
	        n->tcp_bytes_out, n->tcp_bytes_in, n->tls_handshakes, n->tls_resumed, n->delayed,
	        n->tcp_retransmits, n->tcp_rtos);
	fprintf(f, " \"rates\": {\"messages_per_s\": %.3f, \"connections_per_s\": %.3f, "
	           "\"handshakes_per_s\": %.3f, \"message_bytes_per_s\": %.1f, "
	           "\"wire_bytes_per_s\": %.1f},\n",
	        per_s(n->msgs_accepted, el), per_s(n->conns_established, el),
	        per_s(n->tls_handshakes, el), per_s(n->msg_bytes, el),
	        per_s(n->tcp_bytes_out + n->tcp_bytes_in, el));
	fprintf(f, " \"errors\": {");
	for (unsigned i = 0; i < GEN_E_COUNT; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", err_names[i], n->err[i]);
	fprintf(f, "},\n \"errors_total\": %" PRIu64 ",\n \"latency_us\": {", gen_errors(n));
	for (unsigned i = 0; i < GEN_L_COUNT; i++) {
		const struct gen_hist *h = &g->lat[i];

		if (h->count == 0)
			continue;
		fprintf(f, "%s\n  \"%s\": {\"count\": %" PRIu64 ", \"min\": %.3f, \"mean\": %.3f, "
		           "\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p99.9\": %.3f, \"max\": %.3f}",
		        first ? "" : ",", lat_names[i], h->count, h->min / 1e3,
		        (double)h->sum / (double)h->count / 1e3, gen_hist_quantile(h, 0.5) / 1e3,
		        gen_hist_quantile(h, 0.9) / 1e3, gen_hist_quantile(h, 0.99) / 1e3,
		        gen_hist_quantile(h, 0.999) / 1e3, h->max / 1e3);
		first = false;
	}
	fprintf(f, "%s}\n}\n", first ? "" : "\n ");
	return ferror(f) ? -1 : 0;
}

void gen_progress(const struct gen *g, FILE *f, double el)
{
	const struct gen_counts *n = &g->n;
	const struct gen_hist *eod = &g->lat[GEN_L_EOD];

	fprintf(f, "\r%7.1fs  msgs %" PRIu64 " ok %" PRIu64 " (%.0f/s)  conns %" PRIu64
	           "  tls %" PRIu64 "  err %" PRIu64 "  eod p99 %.2f ms   ",
	        el, n->msgs_started, n->msgs_accepted, per_s(n->msgs_accepted, el),
	        n->conns_established, n->tls_handshakes, gen_errors(n),
	        gen_hist_quantile(eod, 0.99) / 1e6);
	fflush(f);
}
