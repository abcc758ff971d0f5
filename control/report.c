/*
 * report.c - status and stats of the running system, read from the shared
 * memory region and rendered as text for operators or JSON for scripts.
 * Everything in the region was written by another process, so counts and
 * strings are bounded before use: a confused dataplane must not be able to
 * crash the control plane.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_lookup.h"
#include "report.h"
#include "result.h"
#include "tls_decide.h"

#define CTL_NS_PER_MS UINT64_C(1000000)
#define CTL_NS_PER_S UINT64_C(1000000000)
#define CTL_FILE_MAX 4200 /* CONFIG_DIR + "/tls_policy" */

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap == 0 ? 4096 : b->cap * 2;
		while (ncap < b->len + (size_t)n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

void ctl_buf_json_str(struct ctl_buf *b, const char *s, size_t maxlen)
{
	ctl_buf_printf(b, "\"");
	for (size_t i = 0; i < maxlen && s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			ctl_buf_printf(b, "\\%c", ch);
		else if (ch == '\n')
			ctl_buf_printf(b, "\\n");
		else if (ch == '\t')
			ctl_buf_printf(b, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			ctl_buf_printf(b, "\\u%04x", ch);
		else
			ctl_buf_printf(b, "%c", ch);
	}
	ctl_buf_printf(b, "\"");
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool ctl_pid_alive(pid_t pid)
{
	return shm_pid_alive(pid);
}

static const char *const ctl_dp_states[] = {
    [SHM_DP_ABSENT] = "absent",     [SHM_DP_STARTING] = "starting", [SHM_DP_READY] = "ready",
    [SHM_DP_STOPPING] = "stopping", [SHM_DP_FAILED] = "failed",
};

const char *ctl_dp_state_name(const struct shm_region *rg)
{
	uint32_t st = atomic_load(&rg->dp.state);
	int32_t pid = atomic_load(&rg->dp.pid);

	if (st >= sizeof(ctl_dp_states) / sizeof(ctl_dp_states[0]))
		return "unknown";
	/* a crashed dataplane cannot say so itself: look at its pid */
	if (st != SHM_DP_ABSENT && st != SHM_DP_FAILED && !ctl_pid_alive(pid))
		return "dead";
	return ctl_dp_states[st];
}

static uint64_t ctl_age(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static void ctl_fmt_duration(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / CTL_NS_PER_S;

	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 86400,
		         s / 3600 % 24, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60,
		         s % 60);
}

static uint32_t ctl_nworkers(const struct shm_region *rg)
{
	uint32_t n = rg->dp.nworkers;

	return n > SNAP_MAX_WORKERS ? SNAP_MAX_WORKERS : n;
}

/* Ready: live dataplane in READY, every worker on the published generation. */
static bool ctl_ready(const struct shm_region *rg, char *why, size_t whylen)
{
	uint64_t pub = atomic_load(&rg->published_gen);
	const char *state = ctl_dp_state_name(rg);
	uint32_t nw = ctl_nworkers(rg);

	if (pub == 0)
		return snprintf(why, whylen, "nothing published"), false;
	if (strcmp(state, "ready") != 0)
		return snprintf(why, whylen, "dataplane %s", state), false;
	if (nw == 0)
		return snprintf(why, whylen, "dataplane reports no workers"), false;
	for (uint32_t i = 0; i < nw; i++) {
		uint64_t g = atomic_load(&rg->readers[1 + i].adopted);

		if (g != pub)
			return snprintf(why, whylen,
			                "worker %" PRIu32 " on generation %" PRIu64
			                ", published %" PRIu64,
			                i, g, pub),
			       false;
	}
	why[0] = '\0';
	return true;
}

static void ctl_status_text(struct ctl_buf *b, const struct shm_region *rg,
                            const struct ctl_daemon_info *d, bool ready, const char *why)
{
	uint64_t pub = atomic_load(&rg->published_gen);
	int32_t dp_pid = atomic_load(&rg->dp.pid);
	uint64_t start = atomic_load(&rg->dp.start_ns), ready_ns = atomic_load(&rg->dp.ready_ns);
	const char *state = ctl_dp_state_name(rg);
	char up[64];

	ctl_fmt_duration(ctl_age(d->now_ns, d->start_ns), up, sizeof(up));
	ctl_buf_printf(b, "posternd:    pid %d, up %s, config %s\n", (int)d->pid, up,
	               d->config_dir);
	ctl_buf_printf(b, "generation:  %" PRIu64 " published\n", pub);
	ctl_buf_printf(b, "dataplane:   %s", state);
	if (strcmp(state, "failed") == 0)
		ctl_buf_printf(b, ": %.*s", (int)sizeof(rg->dp.message), rg->dp.message);
	if (dp_pid != 0)
		ctl_buf_printf(b, ", pid %" PRId32, dp_pid);
	if (start != 0 && strcmp(state, "absent") != 0) {
		ctl_fmt_duration(ctl_age(d->now_ns, start), up, sizeof(up));
		ctl_buf_printf(b, ", up %s", up);
	}
	if (start != 0 && ready_ns >= start)
		ctl_buf_printf(b, ", start-up %" PRIu64 " ms", (ready_ns - start) / CTL_NS_PER_MS);
	ctl_buf_printf(b, "\n");
	if (strcmp(state, "absent") != 0 && ctl_nworkers(rg) > 0) {
		ctl_buf_printf(b, "workers:     %" PRIu32 "\n", ctl_nworkers(rg));
		ctl_buf_printf(b, "  %-6s %-5s %-10s %s\n", "worker", "lcore", "generation",
		               "heartbeat");
		for (uint32_t i = 0; i < ctl_nworkers(rg); i++) {
			const struct shm_reader *r = &rg->readers[1 + i];
			uint64_t g = atomic_load(&r->adopted), hb = atomic_load(&r->heartbeat_ns);
			char hbs[32];

			if (hb == 0)
				snprintf(hbs, sizeof(hbs), "never");
			else
				snprintf(hbs, sizeof(hbs), "%" PRIu64 " ms ago",
				         ctl_age(d->now_ns, hb) / CTL_NS_PER_MS);
			ctl_buf_printf(b, "  %-6" PRIu32 " %-5" PRIu32 " %-10" PRIu64 " %s%s\n", i,
			               r->lcore, g, hbs, g != pub ? "  (behind)" : "");
		}
	}
	ctl_buf_printf(b, "ready:       %s%s%s\n", ready ? "yes" : "no", ready ? "" : " - ", why);
}

static void ctl_status_json(struct ctl_buf *b, const struct shm_region *rg,
                            const struct ctl_daemon_info *d, bool ready, const char *why)
{
	uint64_t pub = atomic_load(&rg->published_gen);
	int32_t dp_pid = atomic_load(&rg->dp.pid);
	uint64_t start = atomic_load(&rg->dp.start_ns), ready_ns = atomic_load(&rg->dp.ready_ns);
	const char *state = ctl_dp_state_name(rg);

	ctl_buf_printf(b, "{\"posternd\":{\"pid\":%d,\"uptime_ms\":%" PRIu64 ",\"config_dir\":",
	               (int)d->pid, ctl_age(d->now_ns, d->start_ns) / CTL_NS_PER_MS);
	ctl_buf_json_str(b, d->config_dir, SIZE_MAX);
	ctl_buf_printf(b,
	               "},\"generation\":%" PRIu64 ",\"dataplane\":{\"state\":\"%s\","
	               "\"pid\":%" PRId32 ",\"message\":",
	               pub, state, dp_pid);
	ctl_buf_json_str(b, strcmp(state, "failed") == 0 ? rg->dp.message : "",
	                 sizeof(rg->dp.message));
	if (start != 0 && strcmp(state, "absent") != 0)
		ctl_buf_printf(b, ",\"uptime_ms\":%" PRIu64,
		               ctl_age(d->now_ns, start) / CTL_NS_PER_MS);
	else
		ctl_buf_printf(b, ",\"uptime_ms\":null");
	if (start != 0 && ready_ns >= start)
		ctl_buf_printf(b, ",\"startup_ms\":%" PRIu64, (ready_ns - start) / CTL_NS_PER_MS);
	else
		ctl_buf_printf(b, ",\"startup_ms\":null");
	ctl_buf_printf(b, "},\"workers\":[");
	for (uint32_t i = 0; strcmp(state, "absent") != 0 && i < ctl_nworkers(rg); i++) {
		const struct shm_reader *r = &rg->readers[1 + i];
		uint64_t hb = atomic_load(&r->heartbeat_ns);

		ctl_buf_printf(b,
		               "%s{\"id\":%" PRIu32 ",\"lcore\":%" PRIu32 ",\"generation\":%" PRIu64
		               ",\"heartbeat_age_ms\":",
		               i ? "," : "", i, r->lcore, atomic_load(&r->adopted));
		if (hb == 0)
			ctl_buf_printf(b, "null}");
		else
			ctl_buf_printf(b, "%" PRIu64 "}", ctl_age(d->now_ns, hb) / CTL_NS_PER_MS);
	}
	ctl_buf_printf(b, "],\"ready\":%s,\"not_ready_reason\":", ready ? "true" : "false");
	ctl_buf_json_str(b, why, SIZE_MAX);
	ctl_buf_printf(b, "}\n");
}

bool ctl_status_report(struct ctl_buf *b, const struct shm_region *rg,
                       const struct ctl_daemon_info *d, bool json)
{
	char why[160];
	bool ready = ctl_ready(rg, why, sizeof(why));

	if (json)
		ctl_status_json(b, rg, d, ready, why);
	else
		ctl_status_text(b, rg, d, ready, why);
	return ready;
}

static uint32_t ctl_ncounters(const struct shm_region *rg)
{
	uint32_t n = rg->dp.ncounters;

	return n > SHM_MAX_COUNTERS ? SHM_MAX_COUNTERS : n;
}

/*
 * "tls_outcomes":{"DOMAIN":{"verified":N,...},...},"tls_outcomes_skipped":N;
 * the by-sender table as "tls_outcomes_by_sender" and
 * "tls_outcomes_by_sender_skipped".
 */
static void ctl_tls_outcomes_json(struct ctl_buf *b, const struct tlsstats *tls, const char *name)
{
	ctl_buf_printf(b, "\"%s\":{", name);
	for (uint32_t r = 0; tls != NULL && r < tls->nrows; r++) {
		ctl_buf_printf(b, "%s", r ? "," : "");
		ctl_buf_json_str(b, tls->rows[r].domain, sizeof(tls->rows[r].domain));
		for (unsigned o = 0; o < TLSSTATS__COUNT; o++)
			ctl_buf_printf(b, "%s\"%s\":%" PRIu64, o ? "," : ":{",
			               tlsstats_outcome_name(o), tls->rows[r].count[o]);
		ctl_buf_printf(b, "}");
	}
	ctl_buf_printf(b, "},\"%s_skipped\":%" PRIu64, name, tls != NULL ? tls->skipped : 0);
}

/*
 * The second table of `stats`: one row per domain, one column per outcome;
 * a note when the table is full (new domains go to "other") and when
 * records could not be counted.
 */
static void ctl_tls_outcomes_text(struct ctl_buf *b, const struct tlsstats *tls)
{
	uint32_t nrows = tls != NULL ? tls->nrows : 0;
	bool other = false, by_sender = tls != NULL && tls->by_sender;
	const char *per = by_sender ? "sender domain" : "domain";
	int width = 6;

	for (uint32_t r = 0; r < nrows; r++) {
		int n = (int)strlen(tls->rows[r].domain);

		if (n > width)
			width = n;
		other |= strcmp(tls->rows[r].domain, TLSSTATS_OTHER) == 0;
	}
	if (nrows == 0) {
		ctl_buf_printf(b, "deliveries by TLS outcome per %s: none since posternd started\n",
		               per);
	} else {
		ctl_buf_printf(b, "deliveries by TLS outcome per %s, since posternd started:\n",
		               per);
		ctl_buf_printf(b, "%-*s", width, by_sender ? "sender" : "domain");
		for (unsigned o = 0; o < TLSSTATS__COUNT; o++)
			ctl_buf_printf(b, " %12s", tlsstats_outcome_name(o));
		ctl_buf_printf(b, "\n");
	}
	for (uint32_t r = 0; r < nrows; r++) {
		ctl_buf_printf(b, "%-*s", width, tls->rows[r].domain);
		for (unsigned o = 0; o < TLSSTATS__COUNT; o++)
			ctl_buf_printf(b, " %12" PRIu64, tls->rows[r].count[o]);
		ctl_buf_printf(b, "\n");
	}
	if (other && nrows - 1 >= tls->max_domains)
		ctl_buf_printf(
		    b, "(table full: domains after the first %" PRIu32 " are counted as \"%s\")\n",
		    tls->max_domains, TLSSTATS_OTHER);
	if (tls != NULL && tls->skipped != 0)
		ctl_buf_printf(b,
		               "not counted: %" PRIu64 " delivery record%s without a %s"
		               " domain or a known tls_outcome\n",
		               tls->skipped, tls->skipped == 1 ? "" : "s",
		               by_sender ? "sender" : "recipient");
}

static void ctl_counters_text(struct ctl_buf *b, const struct shm_region *rg, bool all)
{
	uint32_t nw = ctl_nworkers(rg), nc = ctl_ncounters(rg);
	int width = 7;

	if (nc == 0 || nw == 0) {
		ctl_buf_printf(b, "no counters: the dataplane has not published any\n");
		return;
	}
	for (uint32_t k = 0; k < nc; k++) {
		int n = (int)strnlen(rg->dp.counter_names[k], SHM_COUNTER_NAME);

		if (n > width)
			width = n;
	}
	ctl_buf_printf(b, "%-*s %14s", width, "counter", "total");
	for (uint32_t i = 0; i < nw; i++) {
		char col[16];

		snprintf(col, sizeof(col), "worker%" PRIu32, i);
		ctl_buf_printf(b, " %12s", col);
	}
	ctl_buf_printf(b, "\n");
	for (uint32_t k = 0; k < nc; k++) {
		uint64_t total = 0;

		for (uint32_t i = 0; i < nw; i++)
			total +=
			    atomic_load_explicit(&rg->dp.counters[i].v[k], memory_order_relaxed);
		if (total == 0 && !all)
			continue;
		ctl_buf_printf(b, "%-*.*s %14" PRIu64, width, SHM_COUNTER_NAME,
		               rg->dp.counter_names[k], total);
		for (uint32_t i = 0; i < nw; i++)
			ctl_buf_printf(
			    b, " %12" PRIu64,
			    atomic_load_explicit(&rg->dp.counters[i].v[k], memory_order_relaxed));
		ctl_buf_printf(b, "\n");
	}
}

void ctl_stats_report(struct ctl_buf *b, const struct shm_region *rg, const struct tlsstats *tls,
                      bool all, bool json)
{
	uint32_t nw = ctl_nworkers(rg), nc = ctl_ncounters(rg);

	if (json) {
		ctl_buf_printf(b, "{\"workers\":%" PRIu32 ",\"counters\":{", nw);
		for (uint32_t k = 0; k < nc; k++) {
			uint64_t total = 0;

			for (uint32_t i = 0; i < nw; i++)
				total += atomic_load_explicit(&rg->dp.counters[i].v[k],
				                              memory_order_relaxed);
			ctl_buf_printf(b, "%s", k ? "," : "");
			ctl_buf_json_str(b, rg->dp.counter_names[k], SHM_COUNTER_NAME);
			ctl_buf_printf(b, ":{\"total\":%" PRIu64 ",\"per_worker\":[", total);
			for (uint32_t i = 0; i < nw; i++)
				ctl_buf_printf(b, "%s%" PRIu64, i ? "," : "",
				               atomic_load_explicit(&rg->dp.counters[i].v[k],
				                                    memory_order_relaxed));
			ctl_buf_printf(b, "]}");
		}
		ctl_buf_printf(b, "},");
		ctl_tls_outcomes_json(b, tls, "tls_outcomes");
		if (tls != NULL && tls->senders != NULL) {
			ctl_buf_printf(b, ",");
			ctl_tls_outcomes_json(b, tls->senders, "tls_outcomes_by_sender");
		}
		ctl_buf_printf(b, "}\n");
		return;
	}
	ctl_counters_text(b, rg, all);
	/* the empty line ends the counter table for `stats --watch` (ctl_ops.c) */
	ctl_buf_printf(b, "\n");
	ctl_tls_outcomes_text(b, tls);
	if (tls != NULL && tls->senders != NULL) {
		ctl_buf_printf(b, "\n");
		ctl_tls_outcomes_text(b, tls->senders);
	}
}

/* ---- policy list / show / test, transport test ---- */

/* Allowed protocol versions in Postfix include-list syntax. */
void ctl_protocols_text(uint16_t mask, char *buf, size_t len)
{
	static const char *const names[] = {"SSLv2",   "SSLv3",   "TLSv1",
	                                    "TLSv1.1", "TLSv1.2", "TLSv1.3"};
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < 6 && mask != 0; i++)
		if (mask & (1u << i))
			o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", o ? ":" : "",
			                      names[i]);
}

static const char *ctl_kind_name(uint32_t kind)
{
	switch (kind) {
	case SNAP_NAME_DOMAIN:
		return "domain";
	case SNAP_NAME_PARENT:
		return "parent";
	case SNAP_NAME_NEXTHOP:
		return "nexthop";
	case SNAP_NAME_WILDCARD:
		return "wildcard";
	case SNAP_NAME_NETWORK:
		return "network";
	case SNAP_NAME_NETWORK6:
		return "network6";
	}
	return "?";
}

/* The attributes as NAME=VALUE pairs, in a fixed order; "" when none. */
static void ctl_policy_attrs(const struct snap_header *h, const struct snap_tls_policy *e,
                             struct ctl_buf *b, bool json)
{
	char proto[64];
	const struct {
		const char *name;
		const char *value;
	} attrs[] = {
	    {"match", snap_string(h, e->match)},
	    {"protocols", proto},
	    {"ciphers", policy_grade_name(e->ciphers)},
	    {"exclude", snap_string(h, e->exclude)},
	    {"servername",
	     (e->flags & SNAP_TLS_F_SNI_HOSTNAME) ? "hostname" : snap_string(h, e->servername)},
	    {"tafile", snap_string(h, e->tafile)},
	    {"mode", (e->flags & SNAP_TLS_F_TESTING) ? "testing" : ""},
	};
	bool first = true;

	ctl_protocols_text(e->protocols, proto, sizeof(proto));
	if (json)
		ctl_buf_printf(b, "{");
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (attrs[i].value[0] == '\0')
			continue;
		if (json) {
			ctl_buf_printf(b, "%s\"%s\":", first ? "" : ",", attrs[i].name);
			ctl_buf_json_str(b, attrs[i].value, SIZE_MAX);
		} else {
			ctl_buf_printf(b, "%s%s=%s", first ? "" : " ", attrs[i].name,
			               attrs[i].value);
		}
		first = false;
	}
	if (json)
		ctl_buf_printf(b, "}");
}

/* The fields every table entry shows in JSON: {"key", "kind", "file", "line", "text" (open object).
 */
static void ctl_entry_json_head(struct ctl_buf *b, const struct snap_header *h,
                                const struct snap_name_key *key, struct snap_str text,
                                const char *file)
{
	ctl_buf_printf(b, "{\"key\":");
	ctl_buf_json_str(b, snap_string(h, key->name), SIZE_MAX);
	ctl_buf_printf(b, ",\"kind\":\"%s\",\"file\":", ctl_kind_name(key->kind));
	ctl_buf_json_str(b, file, SIZE_MAX);
	ctl_buf_printf(b, ",\"line\":%" PRIu32 ",\"text\":", key->line);
	ctl_buf_json_str(b, snap_string(h, text), SIZE_MAX);
}

static void ctl_policy_entry_json(struct ctl_buf *b, const struct snap_header *h,
                                  const struct snap_tls_policy *e, const char *file)
{
	ctl_entry_json_head(b, h, &e->key, e->text, file);
	ctl_buf_printf(
	    b, ",\"level\":\"%s\",\"testing\":%s,\"attributes\":", policy_level_name(e->level),
	    (e->flags & SNAP_TLS_F_TESTING) ? "true" : "false");
	ctl_policy_attrs(h, e, b, true);
	ctl_buf_printf(b, "}");
}

static void ctl_policy_entry_text(struct ctl_buf *b, const struct snap_header *h,
                                  const struct snap_tls_policy *e, const char *file)
{
	ctl_buf_printf(b, "%s:%" PRIu32 ": %s\n", file, e->key.line, snap_string(h, e->text));
	ctl_buf_printf(b, "  key:        %s (%s)\n", snap_string(h, e->key.name),
	               ctl_kind_name(e->key.kind));
	ctl_buf_printf(b, "  level:      %s%s\n", policy_level_name(e->level),
	               (e->flags & SNAP_TLS_F_TESTING) ? " (mode=testing: never defers)" : "");
	ctl_buf_printf(b, "  attributes: ");
	ctl_policy_attrs(h, e, b, false);
	ctl_buf_printf(b, "\n");
}

void ctl_policy_list(struct ctl_buf *b, const struct snap_header *h, const char *dir, bool json)
{
	uint32_t n;
	const struct snap_tls_policy *e = snap_section(h, SNAP_SEC_TLS_POLICY, &n);
	char file[CTL_FILE_MAX];

	snprintf(file, sizeof(file), "%s/tls_policy", dir);
	if (json) {
		ctl_buf_printf(b, "{\"file\":");
		ctl_buf_json_str(b, file, SIZE_MAX);
		ctl_buf_printf(b, ",\"default_level\":\"%s\",\"entries\":[",
		               policy_level_name(policy_default_level(h)));
		for (uint32_t i = 0; e != NULL && i < n; i++) {
			ctl_buf_printf(b, "%s", i ? "," : "");
			ctl_policy_entry_json(b, h, &e[i], file);
		}
		ctl_buf_printf(b, "]}\n");
		return;
	}
	ctl_buf_printf(b, "%s: %" PRIu32 " entr%s; default level %s\n", file, e ? n : 0,
	               e != NULL && n == 1 ? "y" : "ies",
	               policy_level_name(policy_default_level(h)));
	for (uint32_t i = 0; e != NULL && i < n; i++)
		ctl_buf_printf(b, "%6" PRIu32 "  %-30s %-11s %s\n", e[i].key.line,
		               snap_string(h, e[i].key.name), policy_level_name(e[i].level),
		               snap_string(h, e[i].text));
}

static void ctl_sender_entry_json(struct ctl_buf *b, const struct snap_header *h,
                                  const struct snap_sender_tls *e, const char *file)
{
	ctl_entry_json_head(b, h, &e->key, e->text, file);
	ctl_buf_printf(b, ",\"floor\":\"%s\",\"testing\":%s}", policy_level_name(e->level),
	               (e->flags & SNAP_TLS_F_TESTING) ? "true" : "false");
}

void ctl_sender_list(struct ctl_buf *b, const struct snap_header *h, const char *dir, bool json)
{
	uint32_t n = 0;
	const struct snap_sender_tls *e = snap_section(h, SNAP_SEC_SENDER_TLS, &n);
	char file[CTL_FILE_MAX];

	if (e == NULL)
		n = 0;
	snprintf(file, sizeof(file), "%s/sender_tls_policy", dir);
	if (json) {
		ctl_buf_printf(b, "{\"file\":");
		ctl_buf_json_str(b, file, SIZE_MAX);
		ctl_buf_printf(b, ",\"entries\":[");
		for (uint32_t i = 0; i < n; i++) {
			ctl_buf_printf(b, "%s", i ? "," : "");
			ctl_sender_entry_json(b, h, &e[i], file);
		}
		ctl_buf_printf(b, "]}\n");
		return;
	}
	ctl_buf_printf(b, "%s: %" PRIu32 " sender floor%s\n", file, n, n == 1 ? "" : "s");
	for (uint32_t i = 0; i < n; i++)
		ctl_buf_printf(b, "%6" PRIu32 "  %-30s %-8s%s %s\n", e[i].key.line,
		               snap_string(h, e[i].key.name), policy_level_name(e[i].level),
		               (e[i].flags & SNAP_TLS_F_TESTING) ? " testing" : "        ",
		               snap_string(h, e[i].text));
}

int ctl_policy_show(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                    const char *key, bool json)
{
	uint32_t n;
	const struct snap_tls_policy *e = snap_section(h, SNAP_SEC_TLS_POLICY, &n);
	char file[CTL_FILE_MAX];

	snprintf(file, sizeof(file), "%s/tls_policy", dir);
	for (uint32_t i = 0; e != NULL && i < n; i++) {
		if (strcmp(snap_string(h, e[i].key.name), key) != 0)
			continue;
		if (json) {
			ctl_policy_entry_json(b, h, &e[i], file);
			ctl_buf_printf(b, "\n");
		} else {
			ctl_policy_entry_text(b, h, &e[i], file);
		}
		return PG_OK;
	}
	ctl_buf_printf(b,
	               "%s: no entry for \"%s\" (`policy test %s` shows what applies to"
	               " it)\n",
	               file, key, key);
	return PG_DECLINED;
}

/* Why an entry applies, in words. */
static void ctl_policy_why(struct ctl_buf *b, const struct policy_result *r, const char *key,
                           const char *domain, const char *nexthop)
{
	switch (r->match) {
	case POLICY_MATCH_NEXTHOP:
		ctl_buf_printf(b, "the next-hop destination %s has its own entry", key);
		break;
	case POLICY_MATCH_EXACT:
		ctl_buf_printf(b, "%s %s has an entry of its own",
		               r->via_nexthop ? "the next-hop domain" : "the domain",
		               r->via_nexthop ? nexthop : domain);
		break;
	case POLICY_MATCH_PARENT:
		ctl_buf_printf(b, "%s is the nearest parent of %s %s with an entry", key,
		               r->via_nexthop ? "the next-hop domain" : "the domain",
		               r->via_nexthop ? nexthop : domain);
		break;
	default:
		ctl_buf_printf(b,
		               "no entry for %s%s%s or its parent domains: tls_default_level"
		               " applies",
		               nexthop != NULL ? nexthop : "", nexthop != NULL ? ", " : "", domain);
		break;
	}
}

/*
 * The two rules combined for one next hop (crypto/tls_decide.h
 * tls_decide_combine), as delivery combines them at every attempt.
 */
static void ctl_policy_effective(struct ctl_buf *b, const struct policy_result *r,
                                 const struct ctl_sender_query *q, bool json)
{
	struct tls_rule_level dl = {
	    .level = r->level,
	    .testing = r->entry != NULL && (r->entry->flags & SNAP_TLS_F_TESTING) != 0,
	};
	struct tls_rule_level fl;
	struct tls_combined c;

	if (q->r.entry != NULL) {
		fl.level = q->r.entry->level;
		fl.testing = (q->r.entry->flags & SNAP_TLS_F_TESTING) != 0;
	}
	tls_decide_combine(&dl, q->r.entry != NULL ? &fl : NULL, &c);
	if (json) {
		ctl_buf_printf(b,
		               ",\"effective\":{\"level\":\"%s\",\"testing\":%s,"
		               "\"enforced\":\"%s\",\"level_by\":\"%s\",\"decided_by\":\"%s\"}",
		               policy_level_name(c.level), c.testing ? "true" : "false",
		               policy_level_name(c.enforced), tls_rule_name(c.level_by),
		               tls_rule_name(c.decided_by));
		return;
	}
	ctl_buf_printf(b, "effective:  %s", policy_level_name(c.enforced));
	if (c.testing)
		ctl_buf_printf(b,
		               " (evaluated: %s by the %s rule in mode=testing, would-defer"
		               " recorded)",
		               policy_level_name(c.level), tls_rule_name(c.level_by));
	ctl_buf_printf(b, "\ndecided by: %s rule", tls_rule_name(c.decided_by));
	if (q->r.entry == NULL)
		ctl_buf_printf(b, " (no sender floor)");
	else if (c.decided_by == TLS_RULE_SENDER)
		ctl_buf_printf(b, " (the destination's %s is below the floor %s)",
		               policy_level_name(dl.testing ? SNAP_TLS_MAY : dl.level),
		               policy_level_name(fl.level));
	else if (fl.testing)
		ctl_buf_printf(b, " (the floor is in mode=testing: it defers nothing)");
	else
		ctl_buf_printf(b, " (the destination's %s meets the floor %s)",
		               policy_level_name(dl.level), policy_level_name(fl.level));
	ctl_buf_printf(b, "\n");
}

static void ctl_policy_result(struct ctl_buf *b, const struct snap_header *h, const char *file,
                              const char *domain, const char *nexthop,
                              const struct ctl_sender_query *q, bool json, bool first)
{
	struct policy_result r;
	const char *key;

	policy_tls_lookup(h, domain, nexthop, &r);
	key = r.entry != NULL ? snap_string(h, r.entry->key.name) : "";
	if (json) {
		ctl_buf_printf(b, "%s{\"nexthop\":", first ? "" : ",");
		if (nexthop != NULL)
			ctl_buf_json_str(b, nexthop, SIZE_MAX);
		else
			ctl_buf_printf(b, "null");
		ctl_buf_printf(b, ",\"match\":\"%s\",\"via\":\"%s\",\"level\":\"%s\",\"reason\":",
		               policy_match_name(r.match),
		               r.entry == NULL ? "default"
		               : r.via_nexthop ? "nexthop"
		                               : "domain",
		               policy_level_name(r.level));
		{
			struct ctl_buf why = {0};

			ctl_policy_why(&why, &r, key, domain, nexthop);
			ctl_buf_json_str(b, why.p != NULL ? why.p : "", SIZE_MAX);
			ctl_buf_free(&why);
		}
		ctl_buf_printf(b, ",\"entry\":");
		if (r.entry != NULL)
			ctl_policy_entry_json(b, h, r.entry, file);
		else
			ctl_buf_printf(b, "null");
		if (q != NULL)
			ctl_policy_effective(b, &r, q, true);
		ctl_buf_printf(b, "}");
		return;
	}
	ctl_buf_printf(b, "next hop:   %s\n",
	               nexthop != NULL ? nexthop : "(the MX hosts of the domain)");
	ctl_buf_printf(b, "match:      %s - ", policy_match_name(r.match));
	ctl_policy_why(b, &r, key, domain, nexthop);
	ctl_buf_printf(b, "\n");
	if (r.entry != NULL) {
		ctl_buf_printf(b, "entry:      %s:%" PRIu32 ": %s\n", file, r.entry->key.line,
		               snap_string(h, r.entry->text));
		ctl_buf_printf(b, "level:      %s%s\n", policy_level_name(r.level),
		               (r.entry->flags & SNAP_TLS_F_TESTING)
		                   ? " (mode=testing: a failure is logged, never deferred)"
		                   : "");
		ctl_buf_printf(b, "attributes: ");
		ctl_policy_attrs(h, r.entry, b, false);
		ctl_buf_printf(b, "\n");
	} else {
		ctl_buf_printf(b, "level:      %s (tls_default_level)\n",
		               policy_level_name(r.level));
	}
	if (q != NULL)
		ctl_policy_effective(b, &r, q, false);
}

/* The sender rule of `policy test --sender`: which floor applies and why. */
static void ctl_sender_rule(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                            const struct ctl_sender_query *q, bool json)
{
	char file[CTL_FILE_MAX], ip[PG_ADDR_STRLEN] = "";
	const struct sender_tls_result *r = &q->r;

	snprintf(file, sizeof(file), "%s/sender_tls_policy", dir);
	if (q->has_client)
		pg_addr_fmt(&q->client, ip, sizeof(ip));
	if (json) {
		ctl_buf_printf(b, ",\"sender\":");
		ctl_buf_json_str(b, q->address, SIZE_MAX);
		ctl_buf_printf(b, ",\"sender_domain\":");
		ctl_buf_json_str(b, q->domain, SIZE_MAX);
		ctl_buf_printf(b, ",\"client\":");
		if (q->has_client)
			ctl_buf_json_str(b, ip, SIZE_MAX);
		else
			ctl_buf_printf(b, "null");
		ctl_buf_printf(b, ",\"sender_rule\":");
		if (r->entry == NULL) {
			ctl_buf_printf(b, "null");
			return;
		}
		ctl_buf_printf(b, "{\"match\":\"%s\",\"entry\":", policy_match_name(r->match));
		ctl_sender_entry_json(b, h, r->entry, file);
		ctl_buf_printf(b, "}");
		return;
	}
	ctl_buf_printf(b, "sender:     %s (domain %s", q->address[0] ? q->address : "<>",
	               q->domain[0] ? q->domain : "none: the null sender");
	if (q->has_client)
		ctl_buf_printf(b, ", client %s", ip);
	ctl_buf_printf(b, ")\n");
	if (r->entry == NULL) {
		ctl_buf_printf(b, "floor:      none - no entry for %s%s%s in %s\n",
		               q->domain[0] ? q->domain : "the null sender",
		               q->domain[0] ? ", its parent domains" : "",
		               q->has_client ? " or the client's networks" : "", file);
		return;
	}
	ctl_buf_printf(b, "floor:      %s%s - %s:%" PRIu32 ": %s (%s match)\n",
	               policy_level_name(r->entry->level),
	               (r->entry->flags & SNAP_TLS_F_TESTING) ? " (mode=testing)" : "", file,
	               r->entry->key.line, snap_string(h, r->entry->text),
	               policy_match_name(r->match));
	if (r->domain_entry != NULL && r->network_entry != NULL)
		ctl_buf_printf(b,
		               "            (both the sender domain's entry %s and the network"
		               " %s match: the stricter floor applies)\n",
		               snap_string(h, r->domain_entry->key.name),
		               snap_string(h, r->network_entry->key.name));
}

static void ctl_transport_json(struct ctl_buf *b, const struct snap_header *h, const char *file,
                               const struct transport_result *t)
{
	if (t->entry == NULL) {
		ctl_buf_printf(b, "null");
		return;
	}
	ctl_buf_printf(b, "{\"match\":\"%s\",\"key\":", policy_match_name(t->match));
	ctl_buf_json_str(b, snap_string(h, t->entry->key.name), SIZE_MAX);
	ctl_buf_printf(b, ",\"file\":");
	ctl_buf_json_str(b, file, SIZE_MAX);
	ctl_buf_printf(b, ",\"line\":%" PRIu32 ",\"text\":", t->entry->key.line);
	ctl_buf_json_str(b, snap_string(h, t->entry->text), SIZE_MAX);
	ctl_buf_printf(b, ",\"nexthops\":[");
	for (uint32_t i = 0; i < t->nnexthops; i++) {
		const struct snap_nexthop *n = &t->nexthops[i];

		ctl_buf_printf(b, "%s{\"destination\":", i ? "," : "");
		ctl_buf_json_str(b, snap_string(h, n->dest), SIZE_MAX);
		ctl_buf_printf(b, ",\"host\":");
		ctl_buf_json_str(b, snap_string(h, n->host), SIZE_MAX);
		ctl_buf_printf(b, ",\"port\":%u,\"mx_lookup\":%s}", n->port,
		               (n->flags & SNAP_NH_F_NO_MX) ? "false" : "true");
	}
	ctl_buf_printf(b, "]}");
}

static void ctl_transport_text(struct ctl_buf *b, const struct snap_header *h, const char *file,
                               const char *domain, const struct transport_result *t)
{
	if (t->entry == NULL) {
		ctl_buf_printf(b,
		               "transport:  no entry for %s, its parents or \"*\": the MX hosts"
		               " of %s\n",
		               domain, domain);
		return;
	}
	ctl_buf_printf(b, "transport:  %s match, %s:%" PRIu32 ": %s\n", policy_match_name(t->match),
	               file, t->entry->key.line, snap_string(h, t->entry->text));
	if (t->nnexthops == 0)
		ctl_buf_printf(b, "next hops:  the MX hosts of %s\n", domain);
	for (uint32_t i = 0; i < t->nnexthops; i++)
		ctl_buf_printf(b, "next hop %" PRIu32 ": %s (%s)\n", i + 1,
		               snap_string(h, t->nexthops[i].dest),
		               (t->nexthops[i].flags & SNAP_NH_F_NO_MX) ? "that host, no MX lookup"
		                                                        : "its MX hosts");
}

void ctl_policy_test(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                     const char *domain, const char *nexthop, const struct ctl_sender_query *q,
                     bool json)
{
	char pfile[CTL_FILE_MAX], tfile[CTL_FILE_MAX];
	struct transport_result t = {0};

	snprintf(pfile, sizeof(pfile), "%s/tls_policy", dir);
	snprintf(tfile, sizeof(tfile), "%s/transport", dir);
	if (nexthop == NULL)
		transport_lookup(h, domain, &t);
	if (json) {
		ctl_buf_printf(b, "{\"domain\":");
		ctl_buf_json_str(b, domain, SIZE_MAX);
		ctl_buf_printf(b, ",\"default_level\":\"%s\",\"transport\":",
		               policy_level_name(policy_default_level(h)));
		ctl_transport_json(b, h, tfile, &t);
		if (q != NULL)
			ctl_sender_rule(b, h, dir, q, true);
		ctl_buf_printf(b, ",\"results\":[");
	} else {
		ctl_buf_printf(b, "domain:     %s\n", domain);
		if (nexthop == NULL)
			ctl_transport_text(b, h, tfile, domain, &t);
		if (q != NULL)
			ctl_sender_rule(b, h, dir, q, false);
	}
	if (nexthop != NULL || t.nnexthops == 0) {
		ctl_policy_result(b, h, pfile, domain, nexthop, q, json, true);
	} else {
		for (uint32_t i = 0; i < t.nnexthops; i++) {
			if (!json)
				ctl_buf_printf(b, "\n");
			ctl_policy_result(b, h, pfile, domain, snap_string(h, t.nexthops[i].dest),
			                  q, json, i == 0);
		}
	}
	if (json)
		ctl_buf_printf(b, "]}\n");
}

void ctl_transport_test(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                        const char *domain, bool json)
{
	char tfile[CTL_FILE_MAX];
	struct transport_result t;

	snprintf(tfile, sizeof(tfile), "%s/transport", dir);
	transport_lookup(h, domain, &t);
	if (json) {
		ctl_buf_printf(b, "{\"domain\":");
		ctl_buf_json_str(b, domain, SIZE_MAX);
		ctl_buf_printf(b, ",\"transport\":");
		ctl_transport_json(b, h, tfile, &t);
		ctl_buf_printf(b, "}\n");
		return;
	}
	ctl_buf_printf(b, "domain:     %s\n", domain);
	ctl_transport_text(b, h, tfile, domain, &t);
}
