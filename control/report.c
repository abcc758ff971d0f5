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

#include "report.h"

#define CTL_NS_PER_MS UINT64_C(1000000)
#define CTL_NS_PER_S UINT64_C(1000000000)

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
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
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

void ctl_stats_report(struct ctl_buf *b, const struct shm_region *rg, bool all, bool json)
{
	uint32_t nw = ctl_nworkers(rg), nc = ctl_ncounters(rg);
	int width = 7;

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
		ctl_buf_printf(b, "}}\n");
		return;
	}
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
