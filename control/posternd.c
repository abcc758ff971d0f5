/*
 * posternd.c - the control-plane daemon. It is the only reader of the
 * configuration: it validates postern.conf, builds an immutable snapshot and
 * publishes it into shared memory for postern-dp, re-publishes on SIGHUP or
 * `reload` (an invalid change is refused and the old snapshot stays live),
 * and answers posternctl on a Unix socket with status and counters read
 * from the same region, and with the TLS policy as the published snapshot
 * holds it (`policy list|show|test|inbound`, `transport test`). `policy set|del`
 * rewrite CONFIG_DIR/tls_policy atomically and publish it. It drains the
 * dataplane's event rings into the JSON log (evlog.c) every 50 ms, reopens
 * that log on SIGUSR1, and serves GET /metrics (metrics.c) when
 * metrics_listen is set. Plain Linux, one thread, one poll() loop.
 * While draining it counts the delivery attempts by recipient domain and
 * TLS outcome (tlsstats.h) for `stats` and /metrics: in memory only, so a
 * restarted posternd counts from zero; at most 1000 domains, the later
 * ones under "other".
 * It draws the inbound session-ticket keys (tickets.h), keeps them in
 * memory only, carries them into every snapshot it publishes (reloads and
 * policy changes keep them), and publishes a new snapshot by itself when
 * smtpd_tls_session_cache_timeout says the current key is due for
 * replacement (checked every second). A restarted posternd draws new
 * keys: sessions made before the restart no longer resume.
 * Some answers come later, from that loop, never by blocking (ctl_wait.h):
 * `sessions` and `queue` ask every worker over the command rings (dpreq.h,
 * ctl_queue.c), and a publication with --wait is answered once every
 * worker has adopted it.
 *
 * Socket protocol: the client sends one request line; posternd answers with
 * one verdict line ("ok", "error" or "notready"), then the body, then closes.
 * "status", "stats" and "reload" take the words "json" and "all"; "policy"
 * and "transport" take a sub-command, its arguments and "--" options;
 * "policy set|del" and "reload" also "--wait=SECONDS", "sessions" "json"
 * and "--max=N"; "queue" a sub-command, an id, "--json" and "--max=N".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "certs.h"
#include "conf.h"
#include "ctl_queue.h"
#include "ctl_wait.h"
#include "dpreq.h"
#include "evlog.h"
#include "metrics.h"
#include "policy.h"
#include "policy_lookup.h"
#include "sender_policy.h"
#include "report.h"
#include "result.h"
#include "shm.h"
#include "snap_build.h"
#include "tickets.h"
#include "tlsstats.h"
#include "transport.h"
#include "trust.h"

#define CTL_MAX_CLIENTS 32
#define CTL_REQUEST_MAX 8192 /* policy set with a few fingerprints */
#define CTL_MAX_ARGS 64
#define CTL_CLIENT_TIMEOUT_NS (5 * 1000000000ull)
#define CTL_PUBLISH_RETRY_NS (2 * 1000000000ull) /* readers hold slots briefly */
#define CTL_PUBLISH_RETRY_SLEEP_NS (10 * 1000000ull)
#define CTL_TICKET_CHECK_NS 1000000000ull        /* is a ticket key due? */
#define CTL_TICKET_RETRY_NS (60 * 1000000000ull) /* after a failed rotation */

struct ctl_client {
	int fd;
	uint64_t deadline_ns;
	char req[CTL_REQUEST_MAX];
	size_t req_len;
	struct ctl_buf out;
	size_t out_off;
	bool replying;
	struct ctl_wait wait; /* an answer that comes later (--wait, sessions) */
};

struct ctl_daemon {
	const char *config_dir;
	struct pg_conf *conf;          /* the configuration of the live snapshot */
	struct pg_policy policy;       /* its tls_policy */
	struct pg_sender_policy senders; /* its sender_tls_policy (sender floors) */
	struct pg_transport transport; /* its transport table */
	struct pg_certs certs;         /* its tls_certificates */
	struct trust_bundle cafile;    /* its smtp_tls_CAfile */
	struct tickets tickets;        /* the live snapshot's session-ticket keys */
	uint64_t next_ticket_ns;       /* next check for a due ticket key */
	void *blob;                    /* a copy of the live snapshot, for lookups */
	struct shm_map shm;
	uint64_t start_ns;
	uint64_t gen;
	int listen_fd;
	int signal_fd;
	bool stop;
	struct ctl_client clients[CTL_MAX_CLIENTS];
	struct evlog log;              /* log_file: events of the dataplane and ours */
	struct metrics_server metrics; /* GET /metrics on metrics_listen */
	struct tlsstats tls;           /* deliveries by domain and TLS outcome, since start */
	struct tlsstats sender_tls;    /* ... by sender domain (issue 23), since start */
	uint64_t next_drain_ns;
	struct dpreq_table dpreq; /* requests to the workers in flight (dpreq.h) */
};

static void ctl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr: ISO 8601 UTC timestamp, program, pid. */
static void ctl_log(const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32], msg[1024];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ posternd[%d]: %s\n", stamp, ts.tv_nsec / 1000000L, (int)getpid(),
	        msg);
}

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: posternd [-c CONFIG_DIR] [--check] [--foreground]\n"
	           "  -c, --config DIR   configuration directory (default " CONF_DEFAULT_DIR ")\n"
	           "      --check        validate DIR (postern.conf, tls_policy,"
	           " sender_tls_policy,\n"
	           "                     transport), print \"config OK\" or the error\n"
	           "      --foreground   stay in the foreground (always the case; for"
	           " supervisors)\n"
	           "  -h, --help         this text\n");
}

/*
 * The session-ticket keys a snapshot of conf built now carries: the live
 * ones, replaced only when due (tickets_update), so reloads and policy
 * changes keep them. The caller makes them live (dm->tickets) once the
 * snapshot is published, and clears *next either way.
 */
static int ctl_tickets_next(const struct ctl_daemon *dm, const struct pg_conf *conf,
                            struct tickets *next, char *err, size_t errlen)
{
	int rc;

	*next = dm->tickets;
	rc = tickets_update(next, (int64_t)time(NULL),
	                    conf->smtpd_tls.session_cache_timeout_ns / 1000000000u, tickets_random,
	                    NULL);
	if (rc == PG_ERROR) {
		tickets_clear(next);
		snprintf(err, errlen,
		         "cannot draw a session-ticket key: the random generator failed");
		return PG_ERROR;
	}
	return rc;
}

/* Build a snapshot of a configuration and check that it fits its slot. */
static int ctl_build(const struct snap_build_input *in, void **blob, size_t *len, char *err,
                     size_t errlen)
{
	const struct pg_conf *conf = in->conf;

	if (snap_build_from(in, blob, len, err, errlen) != PG_OK)
		return PG_ERROR;
	if (*len > conf->snapshot_max_size) {
		snprintf(err, errlen,
		         "snapshot is %zu bytes, larger than snapshot_max_size"
		         " %" PRIu64,
		         *len, conf->snapshot_max_size);
		free(*blob);
		*blob = NULL;
		return PG_ERROR;
	}
	return PG_OK;
}

/*
 * Publish a built blob; on success it becomes dm->blob (the daemon's copy
 * for lookups), else it is freed. PG_AGAIN from shm_publish means every
 * spare slot is held by a reader that has not reached a quiescent point
 * yet; workers pass one every loop iteration, so retrying for a while is
 * enough.
 */
static int ctl_publish(struct ctl_daemon *dm, void *blob, size_t len, uint64_t *gen, char *err,
                       size_t errlen)
{
	uint64_t deadline = shm_now_ns() + CTL_PUBLISH_RETRY_NS;
	int rc;

	for (;;) {
		rc = shm_publish(&dm->shm, blob, len, gen, err, errlen);
		if (rc != PG_AGAIN || shm_now_ns() >= deadline)
			break;
		nanosleep(&(struct timespec){0, CTL_PUBLISH_RETRY_SLEEP_NS}, NULL);
	}
	if (rc == PG_AGAIN) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen,
		         "not published after 2 s: %s (is a dataplane worker"
		         " stuck?)",
		         why);
	}
	if (rc != PG_OK) {
		free(blob);
		return rc;
	}
	/* shm_publish stamped generation and checksum into the slot copy */
	((struct snap_header *)blob)->generation = *gen;
	((struct snap_header *)blob)->checksum = snap_checksum(blob, len);
	free(dm->blob);
	dm->blob = blob;
	return PG_OK;
}

/*
 * postern.conf, tls_policy (with its tafile= anchors), sender_tls_policy,
 * transport, certificates and smtp_tls_CAfile of dir, all valid.
 */
static int ctl_load_all(const char *dir, struct pg_conf *conf, struct pg_policy *pol,
                        struct pg_sender_policy *snd, struct pg_transport *tr,
                        struct pg_certs *certs, struct trust_bundle *cafile, char *err,
                        size_t errlen)
{
	memset(pol, 0, sizeof(*pol));
	memset(snd, 0, sizeof(*snd));
	memset(tr, 0, sizeof(*tr));
	memset(certs, 0, sizeof(*certs));
	memset(cafile, 0, sizeof(*cafile));
	if (conf_load(dir, conf, err, errlen) != PG_OK)
		return PG_ERROR;
	if (policy_load(dir, pol, err, errlen) != PG_OK)
		return PG_ERROR;
	if (sender_policy_load(dir, snd, err, errlen) != PG_OK) {
		policy_free(pol);
		return PG_ERROR;
	}
	if (transport_load(dir, tr, err, errlen) != PG_OK) {
		policy_free(pol);
		sender_policy_free(snd);
		return PG_ERROR;
	}
	if (conf->delivery.relayhost[0] != '\0') {
		char why[256];

		if (transport_add_relayhost(tr, conf->delivery.relayhost, why, sizeof(why)) ==
		    PG_ERROR) {
			snprintf(err, errlen, "%.512s: relayhost: %.256s", conf->path, why);
			policy_free(pol);
			sender_policy_free(snd);
			transport_free(tr);
			return PG_ERROR;
		}
	}
	if (certs_load(conf, certs, err, errlen) != PG_OK) {
		policy_free(pol);
		sender_policy_free(snd);
		transport_free(tr);
		return PG_ERROR;
	}
	if (trust_load_cafile(conf, cafile, err, errlen) != PG_OK) {
		policy_free(pol);
		sender_policy_free(snd);
		transport_free(tr);
		certs_free(certs);
		return PG_ERROR;
	}
	return PG_OK;
}

/* Settings the running daemon and dataplane cannot change on the fly. */
static int ctl_check_restart_only(const struct pg_conf *old, const struct pg_conf *nc, char *err,
                                  size_t errlen)
{
	if (strcmp(old->shm_name, nc->shm_name) != 0)
		snprintf(err, errlen,
		         "%.512s: shm_name changed (\"%s\" -> \"%s\"): restart"
		         " posternd and postern-dp to apply",
		         nc->path, old->shm_name, nc->shm_name);
	else if (old->snapshot_max_size != nc->snapshot_max_size)
		snprintf(err, errlen,
		         "%.512s: snapshot_max_size changed: restart posternd and"
		         " postern-dp to apply",
		         nc->path);
	else if (strcmp(old->control_socket, nc->control_socket) != 0)
		snprintf(err, errlen, "%.512s: control_socket changed: restart posternd to apply",
		         nc->path);
	else if (strcmp(old->control_group, nc->control_group) != 0 ||
	         strcmp(old->log_file, nc->log_file) != 0 ||
	         strcmp(old->metrics_listen, nc->metrics_listen) != 0)
		snprintf(err, errlen,
		         "%.512s: control_group, log_file or metrics_listen changed: restart"
		         " posternd to apply",
		         nc->path);
	else
		return PG_OK;
	return PG_ERROR;
}

/* Reload: on any error the old snapshot and configuration stay live. */
static int ctl_reload(struct ctl_daemon *dm, char *msg, size_t msglen)
{
	struct pg_conf *nc = malloc(sizeof(*nc));
	struct pg_policy pol;
	struct pg_sender_policy snd;
	struct pg_transport tr;
	struct pg_certs certs;
	struct trust_bundle cafile;
	struct tickets tickets = {0};
	void *blob = NULL;
	size_t len;
	uint64_t gen;
	int rc;

	if (nc == NULL) {
		snprintf(msg, msglen, "out of memory");
		return PG_ERROR;
	}
	rc = ctl_load_all(dm->config_dir, nc, &pol, &snd, &tr, &certs, &cafile, msg, msglen);
	if (rc == PG_OK)
		rc = ctl_check_restart_only(dm->conf, nc, msg, msglen);
	if (rc == PG_OK)
		rc = ctl_tickets_next(dm, nc, &tickets, msg, msglen) == PG_ERROR ? PG_ERROR : PG_OK;
	if (rc == PG_OK) {
		const struct snap_build_input in = {.conf = nc,
		                                    .policy = &pol,
		                                    .transport = &tr,
		                                    .certs = &certs,
		                                    .cafile = &cafile,
		                                    .tickets = &tickets,
		                                    .senders = &snd};

		rc = ctl_build(&in, &blob, &len, msg, msglen);
	}
	if (rc == PG_OK)
		rc = ctl_publish(dm, blob, len, &gen, msg, msglen);
	if (rc != PG_OK) {
		free(nc);
		policy_free(&pol);
		sender_policy_free(&snd);
		transport_free(&tr);
		certs_free(&certs);
		trust_bundle_free(&cafile);
		tickets_clear(&tickets);
		ctl_log("reload refused, generation %" PRIu64 " stays live: %s", dm->gen, msg);
		evlog_event(&dm->log, EVRING_ERROR, "config refused",
		            "generation=%" PRIu64 EVRING_SEP "reason=%s", dm->gen, msg);
		return PG_ERROR;
	}
	free(dm->conf);
	policy_free(&dm->policy);
	sender_policy_free(&dm->senders);
	transport_free(&dm->transport);
	certs_free(&dm->certs);
	trust_bundle_free(&dm->cafile);
	dm->conf = nc;
	dm->policy = pol;
	dm->senders = snd;
	dm->transport = tr;
	dm->certs = certs; /* a changed certificate is live: rotation */
	dm->cafile = cafile;
	dm->tickets = tickets; /* the same keys unless they were due */
	tickets_clear(&tickets);
	dm->gen = gen;
	snprintf(msg, msglen, "published generation %" PRIu64, gen);
	ctl_log("reload: %s", msg);
	evlog_event(&dm->log, EVRING_INFO, "config published",
	            "generation=%" PRIu64 EVRING_SEP "change=reload", gen);
	return PG_OK;
}

/*
 * policy set [--sender] KEY LEVEL [ATTR...] (args != NULL) or policy del
 * [--sender] KEY: edit the file (tls_policy, or with sender
 * sender_tls_policy) as it is on disk now, validate the whole result, build
 * and size the snapshot, and only then replace the file and publish. If
 * publishing fails after the file was replaced, the old file is put back,
 * so file and live snapshot never disagree because of a refused change.
 */
static int ctl_policy_edit(struct ctl_daemon *dm, bool sender, const char *key, const char *args,
                           char *msg, size_t msglen)
{
	char path[CONF_PATH_MAX + 32], why[1024];
	char *old = NULL, *text = NULL;
	size_t oldlen = 0, len, bloblen;
	struct pg_policy pol = {0};
	struct pg_sender_policy snd = {0};
	struct tickets tickets = {0};
	void *blob = NULL;
	uint64_t gen;
	int rc, existed;

	snprintf(path, sizeof(path), "%s/%s", dm->config_dir,
	         sender ? SENDER_POLICY_FILE_NAME : POLICY_FILE_NAME);
	existed = policy_read_file(path, sender ? SENDER_POLICY_FILE_MAX : POLICY_FILE_MAX, &old,
	                           &oldlen, msg, msglen);
	if (existed == PG_ERROR)
		return PG_ERROR;
	if (sender)
		rc = sender_policy_edit(dm->config_dir, old != NULL ? old : "", oldlen, key, args,
		                        &text, &len, msg, msglen);
	else
		rc = policy_edit(dm->config_dir, old != NULL ? old : "", oldlen, key, args, &text,
		                 &len, msg, msglen);
	if (rc == PG_OK && sender)
		rc = sender_policy_parse_text(dm->config_dir, text, len, &snd, msg, msglen);
	else if (rc == PG_OK)
		rc = policy_parse_text(dm->config_dir, text, len, &pol, msg, msglen);
	if (rc != PG_OK) {
		free(old);
		free(text);
		sender_policy_free(&snd);
		return PG_ERROR;
	}
	rc = ctl_tickets_next(dm, dm->conf, &tickets, msg, msglen) == PG_ERROR ? PG_ERROR : PG_OK;
	if (rc == PG_OK) {
		const struct snap_build_input in = {.conf = dm->conf,
		                                    .policy = sender ? &dm->policy : &pol,
		                                    .transport = &dm->transport,
		                                    .certs = &dm->certs,
		                                    .cafile = &dm->cafile,
		                                    .tickets = &tickets,
		                                    .senders = sender ? &snd : &dm->senders};

		rc = ctl_build(&in, &blob, &bloblen, msg, msglen);
	}
	if (rc == PG_OK)
		rc = policy_write_file(path, text, len, msg, msglen);
	if (rc == PG_OK) {
		rc = ctl_publish(dm, blob, bloblen, &gen, msg, msglen);
		blob = NULL;
		if (rc != PG_OK) {
			/* put the old file back; the live snapshot is unchanged */
			if (existed == PG_OK)
				policy_write_file(path, old, oldlen, why, sizeof(why));
			else
				unlink(path);
		}
	}
	free(blob);
	free(old);
	free(text);
	if (rc != PG_OK) {
		if (sender)
			sender_policy_free(&snd);
		else
			policy_free(&pol);
		tickets_clear(&tickets);
		return PG_ERROR;
	}
	if (sender) {
		sender_policy_free(&dm->senders);
		dm->senders = snd;
	} else {
		policy_free(&dm->policy);
		dm->policy = pol;
	}
	dm->tickets = tickets;
	tickets_clear(&tickets);
	dm->gen = gen;
	snprintf(msg, msglen, "published generation %" PRIu64, gen);
	ctl_log("policy %s%s %s: %s", args != NULL ? "set" : "del", sender ? " --sender" : "", key,
	        msg);
	evlog_event(&dm->log, EVRING_INFO, "config published",
	            "generation=%" PRIu64 EVRING_SEP "change=policy %s%s %s", gen,
	            args != NULL ? "set" : "del", sender ? " --sender" : "", key);
	return PG_OK;
}

/*
 * Once a second: when the current session-ticket key is due
 * (smtpd_tls_session_cache_timeout old), publish the live configuration
 * again with a new current key, the old one kept as the previous. If that
 * fails, the live snapshot keeps its keys (tickets still work) and the
 * rotation is tried again in a minute.
 */
static void ctl_tickets_tick(struct ctl_daemon *dm, uint64_t now_ns)
{
	struct tickets tickets;
	char msg[1024];
	void *blob = NULL;
	size_t len;
	uint64_t gen;
	int rc;

	if (now_ns < dm->next_ticket_ns)
		return;
	dm->next_ticket_ns = now_ns + CTL_TICKET_CHECK_NS;
	rc = ctl_tickets_next(dm, dm->conf, &tickets, msg, sizeof(msg));
	if (rc == PG_DECLINED) {
		tickets_clear(&tickets);
		return;
	}
	if (rc == PG_OK) {
		const struct snap_build_input in = {.conf = dm->conf,
		                                    .policy = &dm->policy,
		                                    .transport = &dm->transport,
		                                    .certs = &dm->certs,
		                                    .cafile = &dm->cafile,
		                                    .tickets = &tickets,
		                                    .senders = &dm->senders};

		rc = ctl_build(&in, &blob, &len, msg, sizeof(msg));
	}
	if (rc == PG_OK)
		rc = ctl_publish(dm, blob, len, &gen, msg, sizeof(msg));
	if (rc != PG_OK) {
		tickets_clear(&tickets);
		dm->next_ticket_ns = now_ns + CTL_TICKET_RETRY_NS;
		ctl_log("session-ticket key rotation failed, generation %" PRIu64
		        " keeps its keys (retry in 60 s): %s",
		        dm->gen, msg);
		evlog_event(&dm->log, EVRING_ERROR, "ticket key rotation failed",
		            "generation=%" PRIu64 EVRING_SEP "reason=%s", dm->gen, msg);
		return;
	}
	dm->tickets = tickets;
	tickets_clear(&tickets);
	dm->gen = gen;
	ctl_log("session-ticket key replaced: published generation %" PRIu64, gen);
	evlog_event(&dm->log, EVRING_INFO, "config published",
	            "generation=%" PRIu64 EVRING_SEP "change=ticket key", gen);
}

/* ---- the control socket ---- */

/*
 * Who may talk to posternd: root only (0600), or also control_group (0660,
 * group set). Done between bind and listen, before anyone can connect.
 */
static int ctl_socket_access(const char *path, const struct pg_conf *conf)
{
	if (conf->control_group[0] == '\0')
		return chmod(path, 0600);
	if (chown(path, (uid_t)-1, (gid_t)conf->control_gid) != 0)
		return -1;
	return chmod(path, 0660);
}

static int ctl_listen(const char *path, const struct pg_conf *conf)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (evlog_mkdir_parents(path) != 0) {
		ctl_log("cannot create the directory of %s: %s", path, strerror(errno));
		return -1;
	}
	/*
	 * A socket file left by a previous run is removed; one that still
	 * answers belongs to a live posternd (perhaps of another shm_name,
	 * which shm_open_control cannot see) and is left alone.
	 */
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			ctl_log("%s exists and is not a socket; not removing it", path);
			return -1;
		}
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			ctl_log("another posternd answers on %s; not taking it over", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ctl_log("socket: %s", strerror(errno));
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    ctl_socket_access(path, conf) != 0 || listen(fd, 16) != 0) {
		ctl_log("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void ctl_client_close(struct ctl_client *c)
{
	ctl_wait_cancel(&c->wait);
	close(c->fd);
	ctl_buf_free(&c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* The request table: verb, and what it answers. */
static const char *ctl_handle_status(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);
static const char *ctl_handle_stats(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);
static const char *ctl_handle_reload(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);
static const char *ctl_handle_logfile(struct ctl_daemon *dm, struct ctl_buf *b, bool json,
                                      bool all);

static const struct ctl_command {
	const char *verb;
	const char *(*handle)(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);
} ctl_commands[] = {
    {"status", ctl_handle_status},
    {"stats", ctl_handle_stats},
    {"reload", ctl_handle_reload},
    {"logfile", ctl_handle_logfile},
};

static const char *ctl_handle_status(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all)
{
	struct ctl_daemon_info info = {
	    .pid = getpid(),
	    .start_ns = dm->start_ns,
	    .now_ns = shm_now_ns(),
	    .config_dir = dm->config_dir,
	};

	(void)all;
	return ctl_status_report(b, dm->shm.region, &info, json) ? "ok" : "notready";
}

static const char *ctl_handle_stats(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all)
{
	ctl_stats_report(b, dm->shm.region, &dm->tls, all, json);
	return "ok";
}

static const char *ctl_handle_reload(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all)
{
	char msg[1024];
	int rc = ctl_reload(dm, msg, sizeof(msg));

	(void)all;
	if (json) {
		ctl_buf_printf(b, "{\"ok\":%s,\"generation\":%" PRIu64 ",\"message\":",
		               rc == PG_OK ? "true" : "false", dm->gen);
		ctl_buf_json_str(b, msg, sizeof(msg));
		ctl_buf_printf(b, "}\n");
	} else {
		ctl_buf_printf(b, "%s\n", msg);
	}
	return rc == PG_OK ? "ok" : "error";
}

/* Where the JSON log is, for `posternctl log`. */
static const char *ctl_handle_logfile(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all)
{
	(void)all;
	if (json) {
		ctl_buf_printf(b, "{\"log_file\":");
		ctl_buf_json_str(b, dm->log.path, SIZE_MAX);
		ctl_buf_printf(b, "}\n");
	} else {
		ctl_buf_printf(b, "%s\n", dm->log.path);
	}
	return "ok";
}

/*
 * "--json", "--nexthop=H", "--sender" (the sender floors table),
 * "--sender=ADDRESS" and "--client=IP" (policy test) among the arguments;
 * the rest in order.
 */
struct ctl_args {
	bool json;
	bool senders;
	const char *nexthop;
	const char *sender; /* "" or "<>": the null sender */
	const char *client;
	int n;
	char *v[CTL_MAX_ARGS];
};

static const char *ctl_parse_args(struct ctl_args *a, int argc, char **argv, struct ctl_buf *b)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a->json = true;
		} else if (strncmp(argv[i], "--nexthop=", 10) == 0) {
			a->nexthop = argv[i] + 10;
		} else if (strcmp(argv[i], "--sender") == 0) {
			a->senders = true;
		} else if (strncmp(argv[i], "--sender=", 9) == 0) {
			a->sender = argv[i] + 9;
		} else if (strncmp(argv[i], "--client=", 9) == 0) {
			a->client = argv[i] + 9;
		} else if (strncmp(argv[i], "--", 2) == 0) {
			ctl_buf_printf(b, "unknown option \"%.40s\"\n", argv[i]);
			return "error";
		} else {
			a->v[a->n++] = argv[i];
		}
	}
	return NULL;
}

static const char *ctl_edit_reply(struct ctl_daemon *dm, struct ctl_buf *b, int rc, const char *msg,
                                  bool json)
{
	if (rc != PG_OK)
		evlog_event(&dm->log, EVRING_ERROR, "config refused",
		            "generation=%" PRIu64 EVRING_SEP "reason=%s", dm->gen, msg);
	if (json) {
		ctl_buf_printf(b, "{\"ok\":%s,\"generation\":%" PRIu64 ",\"message\":",
		               rc == PG_OK ? "true" : "false", dm->gen);
		ctl_buf_json_str(b, msg, SIZE_MAX);
		ctl_buf_printf(b, "}\n");
	} else {
		ctl_buf_printf(b, "%s\n", msg);
	}
	return rc == PG_OK ? "ok" : "error";
}

/*
 * policy inbound CLIENT_IP [SENDER_DOMAIN]: must this client use STARTTLS
 * before MAIL FROM, and why (inbound_report.c). The sender may be given as
 * an address: its domain is the part after the last '@'.
 */
static const char *ctl_handle_policy_inbound(struct ctl_daemon *dm, struct ctl_buf *b,
                                             const struct ctl_args *a)
{
	char why[512], norm[SNAP_NAME_MAX + 1];
	const char *sender = a->n == 3 ? a->v[2] : NULL, *at;
	struct pg_addr ip;

	if (pg_addr_parse(a->v[1], &ip) != 0) {
		ctl_buf_printf(b, "bad client address \"%.100s\": not an IPv4 or IPv6 address\n",
		               a->v[1]);
		return "error";
	}
	if (sender != NULL && (at = strrchr(sender, '@')) != NULL)
		sender = at + 1;
	if (sender != NULL &&
	    policy_check_domain(sender, false, norm, sizeof(norm), why, sizeof(why)) != 0) {
		ctl_buf_printf(b, "bad sender domain \"%.100s\": %s\n", sender, why);
		return "error";
	}
	ctl_policy_inbound(b, dm->blob, dm->config_dir, &ip, sender != NULL ? norm : NULL, a->json);
	return "ok";
}

/*
 * policy test DOMAIN --sender=ADDRESS [--client=IP]: the sender's domain
 * (after the last '@'; "" or "<>" is the null sender, which has none) and
 * the floor that applies to it, into *q (domain in dom).
 */
static int ctl_sender_query(const struct snap_header *h, const struct ctl_args *a,
                            struct ctl_sender_query *q, char *dom, size_t domlen, struct ctl_buf *b)
{
	const char *addr = a->sender != NULL ? a->sender : "", *at = strrchr(addr, '@');
	char why[512];

	if (strcmp(addr, "<>") == 0)
		addr = "";
	q->address = addr;
	q->domain = dom;
	dom[0] = '\0';
	if (addr[0] != '\0') {
		const char *d = at != NULL ? at + 1 : addr;

		if (policy_check_domain(d, false, dom, domlen, why, sizeof(why)) != 0) {
			ctl_buf_printf(b, "bad sender \"%.100s\": its domain: %s\n", addr, why);
			return PG_ERROR;
		}
	}
	if (a->client != NULL) {
		if (pg_addr_parse(a->client, &q->client) != 0) {
			ctl_buf_printf(b, "bad --client \"%.100s\": not an IPv4 or IPv6 address\n",
			               a->client);
			return PG_ERROR;
		}
		q->has_client = true;
	}
	sender_tls_lookup_addr(h, dom, q->has_client ? &q->client : NULL, &q->r);
	return PG_OK;
}

/* policy list --sender | set --sender KEY FLOOR [mode=testing] | del --sender KEY */
static const char *ctl_handle_policy_senders(struct ctl_daemon *dm, struct ctl_buf *b,
                                             const struct ctl_args *a)
{
	const char *sub = a->n > 0 ? a->v[0] : "";
	char why[1024];

	if (a->nexthop != NULL || a->sender != NULL || a->client != NULL)
		sub = "";
	if (strcmp(sub, "list") == 0 && a->n == 1) {
		ctl_sender_list(b, dm->blob, dm->config_dir, a->json);
		return "ok";
	}
	if (strcmp(sub, "set") == 0 && a->n >= 3) {
		char args[CTL_REQUEST_MAX];
		size_t o = 0;

		args[0] = '\0';
		for (int i = 2; i < a->n; i++)
			o += (size_t)snprintf(args + o, sizeof(args) - o, "%s%s", i > 2 ? " " : "",
			                      a->v[i]);
		return ctl_edit_reply(dm, b,
		                      ctl_policy_edit(dm, true, a->v[1], args, why, sizeof(why)),
		                      why, a->json);
	}
	if (strcmp(sub, "del") == 0 && a->n == 2)
		return ctl_edit_reply(dm, b,
		                      ctl_policy_edit(dm, true, a->v[1], NULL, why, sizeof(why)),
		                      why, a->json);
	ctl_buf_printf(b, "usage: policy list --sender | set --sender KEY FLOOR [mode=testing] |"
	                  " del --sender KEY (KEY: domain, .domain or [a.b.c.d/len]; FLOOR:"
	                  " encrypt, verify or secure)\n");
	return "error";
}

/* policy list | show KEY | test DOMAIN [--nexthop=H] [--sender=A] [--client=IP] |
 * set KEY LEVEL [ATTR...] | del KEY | inbound CLIENT_IP [SENDER_DOMAIN] |
 * list|set|del --sender ... */
static const char *ctl_handle_policy(struct ctl_daemon *dm, struct ctl_buf *b, int argc,
                                     char **argv)
{
	const struct snap_header *h = dm->blob;
	char why[1024], norm[SNAP_NAME_MAX + 1];
	struct ctl_args a;
	const char *verdict = ctl_parse_args(&a, argc, argv, b), *sub;
	uint32_t kind;

	if (verdict != NULL)
		return verdict;
	sub = a.n > 0 ? a.v[0] : "";
	if (a.senders)
		return ctl_handle_policy_senders(dm, b, &a);
	if ((a.sender != NULL || a.client != NULL) && strcmp(sub, "test") != 0) {
		ctl_buf_printf(b, "--sender ADDRESS and --client IP go with policy test\n");
		return "error";
	}
	if (strcmp(sub, "list") == 0 && a.n == 1) {
		ctl_policy_list(b, h, dm->config_dir, a.json);
		return "ok";
	}
	if (strcmp(sub, "show") == 0 && a.n == 2) {
		if (policy_parse_key(a.v[1], norm, sizeof(norm), &kind, why, sizeof(why)) != 0) {
			ctl_buf_printf(b, "bad key \"%.100s\": %s\n", a.v[1], why);
			return "error";
		}
		return ctl_policy_show(b, h, dm->config_dir, norm, a.json) == PG_OK ? "ok"
		                                                                    : "error";
	}
	if (strcmp(sub, "test") == 0 && a.n == 2) {
		struct transport_nexthop nh;
		struct ctl_sender_query q = {0};
		char sdomain[SNAP_NAME_MAX + 1] = "";

		if (policy_check_domain(a.v[1], false, norm, sizeof(norm), why, sizeof(why)) != 0) {
			ctl_buf_printf(b, "bad domain \"%.100s\": %s\n", a.v[1], why);
			return "error";
		}
		if (a.nexthop != NULL &&
		    transport_parse_nexthop(a.nexthop, &nh, why, sizeof(why)) != 0) {
			ctl_buf_printf(b, "bad --nexthop: %s\n", why);
			return "error";
		}
		if ((a.sender != NULL || a.client != NULL) &&
		    ctl_sender_query(h, &a, &q, sdomain, sizeof(sdomain), b) != PG_OK)
			return "error";
		ctl_policy_test(b, h, dm->config_dir, norm, a.nexthop != NULL ? nh.dest : NULL,
		                a.sender != NULL || a.client != NULL ? &q : NULL, a.json);
		return "ok";
	}
	if (strcmp(sub, "set") == 0 && a.n >= 3) {
		char args[CTL_REQUEST_MAX];
		size_t o = 0;

		args[0] = '\0';
		for (int i = 2; i < a.n; i++)
			o += (size_t)snprintf(args + o, sizeof(args) - o, "%s%s", i > 2 ? " " : "",
			                      a.v[i]);
		return ctl_edit_reply(
		    dm, b, ctl_policy_edit(dm, false, a.v[1], args, why, sizeof(why)), why, a.json);
	}
	if (strcmp(sub, "del") == 0 && a.n == 2)
		return ctl_edit_reply(
		    dm, b, ctl_policy_edit(dm, false, a.v[1], NULL, why, sizeof(why)), why, a.json);
	if (strcmp(sub, "inbound") == 0 && (a.n == 2 || a.n == 3) && a.nexthop == NULL)
		return ctl_handle_policy_inbound(dm, b, &a);
	ctl_buf_printf(b, "usage: policy list | show KEY | test DOMAIN [--nexthop=HOST[:PORT]]"
	                  " [--sender=ADDRESS] [--client=IP] | set KEY LEVEL [ATTR=VALUE...] |"
	                  " del KEY | inbound CLIENT_IP [SENDER_DOMAIN] |"
	                  " list --sender | set --sender KEY FLOOR [mode=testing] |"
	                  " del --sender KEY\n");
	return "error";
}

/* transport test DOMAIN */
static const char *ctl_handle_transport(struct ctl_daemon *dm, struct ctl_buf *b, int argc,
                                        char **argv)
{
	char why[512], norm[SNAP_NAME_MAX + 1];
	struct ctl_args a;
	const char *verdict = ctl_parse_args(&a, argc, argv, b);

	if (verdict != NULL)
		return verdict;
	if (a.n != 2 || strcmp(a.v[0], "test") != 0 || a.nexthop != NULL) {
		ctl_buf_printf(b, "usage: transport test DOMAIN\n");
		return "error";
	}
	if (policy_check_domain(a.v[1], false, norm, sizeof(norm), why, sizeof(why)) != 0) {
		ctl_buf_printf(b, "bad domain \"%.100s\": %s\n", a.v[1], why);
		return "error";
	}
	ctl_transport_test(b, dm->blob, dm->config_dir, norm, a.json);
	return "ok";
}

/*
 * "--wait=SECONDS" of policy set|del and reload, taken out of argv:
 * *wait_ns 0 when absent. An error verdict for a bad value.
 */
static const char *ctl_take_wait(int *argc, char **argv, uint64_t *wait_ns, struct ctl_buf *b)
{
	int kept = 0;

	*wait_ns = 0;
	for (int i = 0; i < *argc; i++) {
		char *end;
		unsigned long s;

		if (strncmp(argv[i], "--wait=", 7) != 0) {
			argv[kept++] = argv[i];
			continue;
		}
		s = strtoul(argv[i] + 7, &end, 10);
		if (argv[i][7] < '0' || argv[i][7] > '9' || *end != '\0' || s < 1 ||
		    s > CTL_WAIT_MAX_S) {
			ctl_buf_printf(b, "--wait: \"%.20s\" is not 1..%d seconds\n", argv[i] + 7,
			               CTL_WAIT_MAX_S);
			return "error";
		}
		*wait_ns = s * 1000000000ull;
	}
	*argc = kept;
	return NULL;
}

/* sessions [json|--json] [--max=N]: every worker's connections (ctl_wait.h). */
static const char *ctl_handle_sessions(struct ctl_daemon *dm, struct ctl_client *c,
                                       struct ctl_buf *b, int argc, char **argv)
{
	unsigned long max = CTL_SESSIONS_DEFAULT_MAX;
	bool json = false;

	for (int i = 0; i < argc; i++) {
		char *end;

		if (strcmp(argv[i], "json") == 0 || strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strncmp(argv[i], "--max=", 6) == 0) {
			max = strtoul(argv[i] + 6, &end, 10);
			if (argv[i][6] < '0' || argv[i][6] > '9' || *end != '\0' ||
			    max > CTL_SESSIONS_MAX) {
				ctl_buf_printf(b, "--max: \"%.20s\" is not 0..%lu\n", argv[i] + 6,
				               (unsigned long)CTL_SESSIONS_MAX);
				return "error";
			}
		} else {
			ctl_buf_printf(b, "usage: sessions [--json] [--max=N]\n");
			return "error";
		}
	}
	return ctl_wait_sessions(&c->wait, &dm->dpreq, dm->shm.region, (uint32_t)max, json,
	                         shm_now_ns(), b);
}

/*
 * dns lookup NAME [no-mx] [json] | dns flush [NAME] [json]: through worker 0
 * to the dataplane's resolver (ctl_wait_dns); "pending" until answered.
 */
static const char *ctl_handle_dns(struct ctl_daemon *dm, struct ctl_client *c, struct ctl_buf *b,
                                  int argc, char **argv)
{
	struct cmd_dns_req q;
	bool json = false;
	int npos = 0;
	const char *pos[2] = {NULL, NULL};
	char why[256], norm[SNAP_NAME_MAX + 1];

	memset(&q, 0, sizeof(q));
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "json") == 0 || strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "no-mx") == 0 || strcmp(argv[i], "--no-mx") == 0)
			q.flags |= CMD_DNS_F_NO_MX;
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			npos = 3;
	}
	if (npos >= 1 && strcmp(pos[0], "lookup") == 0 && npos == 2)
		q.op = CMD_DNS_LOOKUP;
	else if (npos >= 1 && strcmp(pos[0], "flush") == 0 && npos <= 2 &&
	         (q.flags & CMD_DNS_F_NO_MX) == 0)
		q.op = CMD_DNS_FLUSH;
	if (q.op == 0) {
		ctl_buf_printf(b, "usage: dns lookup DOMAIN [--no-mx] | dns flush [DOMAIN]\n");
		return "error";
	}
	if (npos == 2) {
		if (policy_check_domain(pos[1], false, norm, sizeof(norm), why, sizeof(why)) != 0) {
			ctl_buf_printf(b, "bad domain \"%.100s\": %s\n", pos[1], why);
			return "error";
		}
		if (strlen(norm) >= sizeof(q.name)) {
			ctl_buf_printf(b, "domain longer than %zu bytes\n", sizeof(q.name) - 1);
			return "error";
		}
		memcpy(q.name, norm, strlen(norm) + 1);
	}
	return ctl_wait_dns(&c->wait, &dm->dpreq, dm->shm.region, &q, json, shm_now_ns(), b);
}

/*
 * queue list|show|flush|delete|hold|release (ctl_queue.h). A change to
 * the queue is an operator's act on mail: it goes into the log.
 */
static const char *ctl_handle_queue(struct ctl_daemon *dm, struct ctl_client *c, struct ctl_buf *b,
                                    int argc, char **argv)
{
	const char *verdict =
	    ctl_queue_start(&c->wait, &dm->dpreq, dm->shm.region, argc, argv, shm_now_ns(), b);

	char id[24] = "all";

	if (verdict == NULL && c->wait.queue_op != CMD_QUEUE_LIST &&
	    c->wait.queue_op != CMD_QUEUE_SHOW) {
		if (c->wait.queue_id != 0)
			snprintf(id, sizeof(id), "%016" PRIX64, c->wait.queue_id);
		evlog_event(&dm->log, EVRING_INFO, "queue command", "op=%s" EVRING_SEP "id=%s",
		            argv[0], id);
	}
	return verdict;
}

/*
 * The answer of a publication asked with --wait is held back until every
 * worker has adopted the generation (ctl_wait.h); the client's deadline
 * is pushed out accordingly.
 */
static bool ctl_hold_for_adoption(struct ctl_daemon *dm, struct ctl_client *c, uint64_t gen_before,
                                  uint64_t wait_ns, int argc, char **argv, struct ctl_buf *body)
{
	uint64_t now = shm_now_ns();
	bool json = false;

	if (wait_ns == 0 || dm->gen == gen_before)
		return false;
	for (int i = 0; i < argc; i++)
		json |= strcmp(argv[i], "json") == 0 || strcmp(argv[i], "--json") == 0;
	ctl_wait_adopt(&c->wait, dm->shm.region, dm->gen, now, wait_ns, json, body);
	if (c->deadline_ns < now + wait_ns + CTL_CLIENT_TIMEOUT_NS)
		c->deadline_ns = now + wait_ns + CTL_CLIENT_TIMEOUT_NS;
	return true;
}

/* Parse the request line and build the whole reply into c->out. */
static void ctl_dispatch(struct ctl_daemon *dm, struct ctl_client *c)
{
	struct ctl_buf body = {0};
	char *save = NULL, *verb, *word, *argv[CTL_MAX_ARGS];
	const char *verdict = NULL;
	bool json = false, all = false;
	int argc = 0;
	uint64_t wait_ns = 0, gen_before = dm->gen;

	verb = strtok_r(c->req, " \t\r", &save);
	while ((word = strtok_r(NULL, " \t\r", &save)) != NULL) {
		if (argc == CTL_MAX_ARGS) {
			verdict = "error";
			ctl_buf_printf(&body, "more than %d arguments\n", CTL_MAX_ARGS);
			break;
		}
		argv[argc++] = word;
	}
	if (verdict == NULL && verb != NULL &&
	    (strcmp(verb, "policy") == 0 || strcmp(verb, "reload") == 0))
		verdict = ctl_take_wait(&argc, argv, &wait_ns, &body);
	if (verdict == NULL && verb != NULL &&
	    (strcmp(verb, "sessions") == 0 || strcmp(verb, "queue") == 0 ||
	     strcmp(verb, "dns") == 0)) {
		verdict = verb[0] == 's'   ? ctl_handle_sessions(dm, c, &body, argc, argv)
		          : verb[0] == 'd' ? ctl_handle_dns(dm, c, &body, argc, argv)
		                           : ctl_handle_queue(dm, c, &body, argc, argv);
		if (verdict == NULL) {
			ctl_buf_free(&body); /* the answer comes from ctl_wait_poll */
			return;
		}
	} else if (verdict == NULL && verb != NULL && strcmp(verb, "policy") == 0) {
		verdict = ctl_handle_policy(dm, &body, argc, argv);
	} else if (verdict == NULL && verb != NULL && strcmp(verb, "transport") == 0) {
		verdict = ctl_handle_transport(dm, &body, argc, argv);
	} else if (verdict == NULL && verb != NULL && strcmp(verb, "cert") == 0) {
		/* cert list|show NAME [--json], from the live snapshot (certs.h) */
		verdict =
		    ctl_cert_command(&body, dm->blob, dm->gen, (int64_t)time(NULL), argc, argv);
	} else if (verdict == NULL) {
		for (int i = 0; i < argc && verdict == NULL; i++) {
			if (strcmp(argv[i], "json") == 0) {
				json = true;
			} else if (strcmp(argv[i], "all") == 0) {
				all = true;
			} else {
				verdict = "error";
				ctl_buf_printf(&body, "unknown argument \"%.40s\"\n", argv[i]);
			}
		}
	}
	if (verdict == NULL) {
		for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
			if (verb != NULL && strcmp(verb, ctl_commands[i].verb) == 0)
				verdict = ctl_commands[i].handle(dm, &body, json, all);
		if (verdict == NULL) {
			verdict = "error";
			ctl_buf_printf(&body,
			               "unknown command \"%.40s\" (status, stats, reload, policy,"
			               " transport, cert, sessions, queue, dns)\n",
			               verb != NULL ? verb : "");
		}
	}
	if (strcmp(verdict, "ok") == 0 &&
	    ctl_hold_for_adoption(dm, c, gen_before, wait_ns, argc, argv, &body))
		return;
	ctl_buf_printf(&c->out, "%s\n%.*s", verdict, (int)body.len, body.p != NULL ? body.p : "");
	ctl_buf_free(&body);
	c->replying = true;
}

static void ctl_client_read(struct ctl_daemon *dm, struct ctl_client *c)
{
	ssize_t n = read(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		ctl_client_close(c);
		return;
	}
	c->req_len += (size_t)n;
	c->req[c->req_len] = '\0';
	nl = strchr(c->req, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (nl != NULL || n == 0 || c->req_len == sizeof(c->req) - 1)
		ctl_dispatch(dm, c);
}

static void ctl_client_write(struct ctl_client *c)
{
	ssize_t n = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ctl_client_close(c);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off == c->out.len)
		ctl_client_close(c);
}

static void ctl_accept(struct ctl_daemon *dm)
{
	for (;;) {
		int fd = accept4(dm->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *slot = NULL;

		if (fd < 0)
			return;
		for (int i = 0; i < CTL_MAX_CLIENTS; i++)
			if (dm->clients[i].fd < 0) {
				slot = &dm->clients[i];
				break;
			}
		if (slot == NULL) {
			static const char busy[] = "busy\nposternd is busy, try again\n";

			(void)!write(fd, busy, sizeof(busy) - 1);
			close(fd);
			continue;
		}
		slot->fd = fd;
		slot->deadline_ns = shm_now_ns() + CTL_CLIENT_TIMEOUT_NS;
	}
}

static void ctl_signal(struct ctl_daemon *dm)
{
	struct signalfd_siginfo si;
	char msg[1024];

	while (read(dm->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			ctl_log("SIGHUP: reloading %s", dm->config_dir);
			ctl_reload(dm, msg, sizeof(msg));
		} else if (si.ssi_signo == SIGUSR1) {
			/* logrotate: the old file was renamed; write to a new one */
			if (evlog_reopen(&dm->log, msg, sizeof(msg)) != PG_OK)
				ctl_log("SIGUSR1: %s (still writing the old file)", msg);
			else
				evlog_event(&dm->log, EVRING_INFO, "log reopened", NULL);
		} else {
			ctl_log("%s: shutting down (the dataplane keeps its snapshot)",
			        strsignal((int)si.ssi_signo));
			dm->stop = true;
		}
	}
}

/* Is an answer held back (--wait, sessions)? Then posternd polls every 1 ms. */
static bool ctl_waiting(const struct ctl_daemon *dm)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (dm->clients[i].fd >= 0 && dm->clients[i].wait.kind != CTL_WAIT_NONE)
			return true;
	return false;
}

/* Take the workers' answers, and send every held-back answer now ready. */
static void ctl_answer_waiting(struct ctl_daemon *dm, uint64_t now)
{
	dpreq_poll(&dm->dpreq, dm->shm.region, now);
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &dm->clients[i];
		struct ctl_buf body = {0};
		const char *verdict;

		if (c->fd < 0 || c->wait.kind == CTL_WAIT_NONE)
			continue;
		verdict = ctl_wait_poll(&c->wait, dm->shm.region, now, &body);
		if (verdict == NULL)
			continue;
		ctl_buf_printf(&c->out, "%s\n%.*s", verdict, (int)body.len,
		               body.p != NULL ? body.p : "");
		ctl_buf_free(&body);
		c->replying = true;
		ctl_client_write(c);
	}
}

static void ctl_loop(struct ctl_daemon *dm)
{
	struct pollfd pfd[2 + CTL_MAX_CLIENTS + METRICS_MAX_FDS];
	struct ctl_client *who[2 + CTL_MAX_CLIENTS];

	while (!dm->stop) {
		nfds_t n = 0, nm;
		uint64_t now;
		bool waiting;

		pfd[n++] = (struct pollfd){.fd = dm->signal_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = dm->listen_fd, .events = POLLIN};
		for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
			struct ctl_client *c = &dm->clients[i];

			if (c->fd < 0)
				continue;
			who[n] = c;
			/* a held-back answer: only a hang-up matters until it is ready */
			pfd[n++] =
			    (struct pollfd){.fd = c->fd,
			                    .events = c->replying                     ? POLLOUT
			                              : c->wait.kind != CTL_WAIT_NONE ? 0
			                                                              : POLLIN};
		}
		nm = metrics_poll_fds(&dm->metrics, pfd + n, METRICS_MAX_FDS);
		/*
		 * Wake up for the next drain of the event rings at the latest, or
		 * in 1 ms while an answer waits for the workers (and only then).
		 */
		waiting = ctl_waiting(dm);
		if (poll(pfd, n + nm, waiting ? 1 : (int)(EVLOG_DRAIN_NS / 1000000u)) < 0 &&
		    errno != EINTR) {
			ctl_log("poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN)
			ctl_signal(dm);
		if (pfd[1].revents & POLLIN)
			ctl_accept(dm);
		now = shm_now_ns();
		for (nfds_t i = 2; i < n; i++) {
			struct ctl_client *c = who[i];

			if (pfd[i].revents & (POLLERR | POLLNVAL)) {
				ctl_client_close(c);
			} else if (c->wait.kind != CTL_WAIT_NONE) {
				if (pfd[i].revents & POLLHUP)
					ctl_client_close(c); /* gave up waiting */
			} else if (c->replying && (pfd[i].revents & (POLLOUT | POLLHUP))) {
				ctl_client_write(c);
			} else if (!c->replying && (pfd[i].revents & (POLLIN | POLLHUP))) {
				ctl_client_read(dm, c);
				if (c->fd >= 0 && c->replying)
					ctl_client_write(c);
			}
			/* a client that never finishes must not hold a slot forever */
			if (c->fd >= 0 && now > c->deadline_ns)
				ctl_client_close(c);
		}
		if (waiting || ctl_waiting(dm))
			ctl_answer_waiting(dm, now);
		metrics_poll_events(&dm->metrics, pfd + n, (unsigned)nm, dm->shm.region, &dm->tls,
		                    now);
		if (now >= dm->next_drain_ns) {
			evlog_drain(&dm->log, dm->shm.region);
			dm->next_drain_ns = now + EVLOG_DRAIN_NS;
		}
		ctl_tickets_tick(dm, now);
	}
}

static int ctl_signals(void)
{
	sigset_t set;

	/* a client that hangs up early must not kill us on write */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct ctl_daemon dm;
	char err[1024];
	bool check = false;
	int opt;

	dm.config_dir = CONF_DEFAULT_DIR;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			dm.config_dir = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'f':
			break; /* never daemonizes: supervisors want it this way */
		case 'h':
			ctl_usage(stdout);
			return 0;
		default:
			ctl_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "posternd: unexpected argument \"%s\"\n", argv[optind]);
		ctl_usage(stderr);
		return 2;
	}

	/* FILE:LINE in answers must not depend on posternd's working directory */
	{
		static char absdir[CONF_PATH_MAX];

		if (realpath(dm.config_dir, absdir) != NULL)
			dm.config_dir = absdir;
	}
	dm.start_ns = shm_now_ns();
	/* request ids never repeat across restarts: late answers stay strays */
	dpreq_init(&dm.dpreq, evring_realtime_ns());
	dm.listen_fd = dm.signal_fd = -1;
	dm.log.fd = dm.metrics.listen_fd = -1;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		dm.clients[i].fd = -1;
	dm.conf = malloc(sizeof(*dm.conf));
	if (dm.conf == NULL)
		return 1;
	if (ctl_load_all(dm.config_dir, dm.conf, &dm.policy, &dm.senders, &dm.transport, &dm.certs,
	                 &dm.cafile, err, sizeof(err)) != PG_OK) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			ctl_log("%s", err);
		return 1;
	}
	/* the first session-ticket key (none with a timeout of 0) */
	if (ctl_tickets_next(&dm, dm.conf, &dm.tickets, err, sizeof(err)) == PG_ERROR) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			ctl_log("%s", err);
		return 1;
	}
	if (check) {
		const struct snap_build_input in = {.conf = dm.conf,
		                                    .policy = &dm.policy,
		                                    .transport = &dm.transport,
		                                    .certs = &dm.certs,
		                                    .cafile = &dm.cafile,
		                                    .tickets = &dm.tickets,
		                                    .senders = &dm.senders};
		void *blob;
		size_t len;

		/* also prove the snapshot builds and fits its slot */
		if (ctl_build(&in, &blob, &len, err, sizeof(err)) != PG_OK) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		free(blob);
		free(dm.conf);
		policy_free(&dm.policy);
		sender_policy_free(&dm.senders);
		transport_free(&dm.transport);
		certs_free(&dm.certs);
		trust_bundle_free(&dm.cafile);
		tickets_clear(&dm.tickets);
		printf("config OK\n");
		return 0;
	}

	dm.signal_fd = ctl_signals();
	if (dm.signal_fd < 0) {
		ctl_log("signalfd: %s", strerror(errno));
		return 1;
	}
	if (evlog_open(&dm.log, dm.conf->log_file,
	               dm.conf->control_group[0] != '\0' ? (long)dm.conf->control_gid : -1, err,
	               sizeof(err)) != PG_OK) {
		ctl_log("%s", err);
		return 1;
	}
	if (tlsstats_init(&dm.tls, TLSSTATS_MAX_DOMAINS) != PG_OK) {
		ctl_log("out of memory for the TLS outcome counts");
		return 1;
	}
	if (tlsstats_init(&dm.sender_tls, TLSSTATS_MAX_DOMAINS) != PG_OK) {
		ctl_log("out of memory for the TLS outcome counts by sender");
		return 1;
	}
	dm.sender_tls.by_sender = true;
	dm.tls.senders = &dm.sender_tls;
	dm.log.tls = &dm.tls;
	if (shm_open_control(dm.conf->shm_name, dm.conf->snapshot_max_size, &dm.shm, err,
	                     sizeof(err)) != PG_OK) {
		ctl_log("%s", err);
		return 1;
	}
	evlog_event(&dm.log, EVRING_INFO, "posternd started",
	            "pid=%d" EVRING_SEP "config_dir=%s" EVRING_SEP "shm_name=%s", (int)getpid(),
	            dm.config_dir, dm.conf->shm_name);
	{
		const struct snap_build_input in = {.conf = dm.conf,
		                                    .policy = &dm.policy,
		                                    .transport = &dm.transport,
		                                    .certs = &dm.certs,
		                                    .cafile = &dm.cafile,
		                                    .tickets = &dm.tickets,
		                                    .senders = &dm.senders};
		void *blob;
		size_t len;

		if (ctl_build(&in, &blob, &len, err, sizeof(err)) != PG_OK ||
		    ctl_publish(&dm, blob, len, &dm.gen, err, sizeof(err)) != PG_OK) {
			ctl_log("cannot publish the first snapshot: %s", err);
			return 1;
		}
	}
	ctl_log("published generation %" PRIu64 " (config %s, shm /dev/shm/%s)", dm.gen,
	        dm.conf->path, dm.conf->shm_name);
	evlog_event(&dm.log, EVRING_INFO, "config published",
	            "generation=%" PRIu64 EVRING_SEP "change=start", dm.gen);
	dm.listen_fd = ctl_listen(dm.conf->control_socket, dm.conf);
	if (dm.listen_fd < 0)
		return 1;
	ctl_log("listening on %s", dm.conf->control_socket);
	if (metrics_open(&dm.metrics, dm.conf->metrics_listen, err, sizeof(err)) != PG_OK) {
		ctl_log("%s", err);
		return 1;
	}
	if (dm.metrics.listen_fd >= 0)
		ctl_log("metrics on http://%s/metrics", dm.conf->metrics_listen);

	ctl_loop(&dm);

	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (dm.clients[i].fd >= 0)
			ctl_client_close(&dm.clients[i]);
	close(dm.listen_fd);
	unlink(dm.conf->control_socket);
	metrics_close(&dm.metrics);
	evlog_drain(&dm.log, dm.shm.region);
	evlog_event(&dm.log, EVRING_INFO, "posternd stopped", NULL);
	evlog_close(&dm.log);
	/* not shm_unlink: the dataplane keeps running on the current snapshot */
	atomic_store(&dm.shm.region->control_pid, 0);
	shm_detach(&dm.shm);
	free(dm.conf);
	free(dm.blob);
	policy_free(&dm.policy);
	sender_policy_free(&dm.senders);
	transport_free(&dm.transport);
	certs_free(&dm.certs);
	trust_bundle_free(&dm.cafile);
	tickets_clear(&dm.tickets);
	tlsstats_free(&dm.tls);
	tlsstats_free(&dm.sender_tls);
	ctl_log("stopped");
	return 0;
}
