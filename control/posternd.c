/*
 * posternd.c - the control-plane daemon. It is the only reader of the
 * configuration: it validates postern.conf, builds an immutable snapshot and
 * publishes it into shared memory for postern-dp, re-publishes on SIGHUP or
 * `reload` (an invalid change is refused and the old snapshot stays live),
 * and answers posternctl on a Unix socket with status and counters read
 * from the same region. Plain Linux, one thread, one poll() loop.
 *
 * Socket protocol: the client sends one request line; posternd answers with
 * one verdict line ("ok", "error" or "notready"), then the body, then closes.
 */
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

#include "conf.h"
#include "report.h"
#include "result.h"
#include "shm.h"
#include "snap_build.h"

#define CTL_MAX_CLIENTS 32
#define CTL_REQUEST_MAX 256
#define CTL_CLIENT_TIMEOUT_NS (5 * 1000000000ull)
#define CTL_PUBLISH_RETRY_NS (2 * 1000000000ull) /* readers hold slots briefly */
#define CTL_PUBLISH_RETRY_SLEEP_NS (10 * 1000000ull)

struct ctl_client {
	int fd;
	uint64_t deadline_ns;
	char req[CTL_REQUEST_MAX];
	size_t req_len;
	struct ctl_buf out;
	size_t out_off;
	bool replying;
};

struct ctl_daemon {
	const char *config_dir;
	struct pg_conf *conf; /* the configuration of the live snapshot */
	struct shm_map shm;
	uint64_t start_ns;
	uint64_t gen;
	int listen_fd;
	int signal_fd;
	bool stop;
	struct ctl_client clients[CTL_MAX_CLIENTS];
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
	           "      --check        validate DIR/postern.conf, print \"config OK\" or the"
	           " error\n"
	           "      --foreground   stay in the foreground (always the case; for"
	           " supervisors)\n"
	           "  -h, --help         this text\n");
}

/*
 * Build and publish. PG_AGAIN from shm_publish means every spare slot is
 * held by a reader that has not reached a quiescent point yet; workers pass
 * one every loop iteration, so retrying for a while is enough.
 */
static int ctl_publish(struct ctl_daemon *dm, const struct pg_conf *conf, uint64_t *gen, char *err,
                       size_t errlen)
{
	uint64_t deadline = shm_now_ns() + CTL_PUBLISH_RETRY_NS;
	void *blob;
	size_t len;
	int rc;

	if (snap_build(conf, &blob, &len, err, errlen) != PG_OK)
		return PG_ERROR;
	if (len > conf->snapshot_max_size) {
		snprintf(err, errlen,
		         "snapshot is %zu bytes, larger than snapshot_max_size"
		         " %" PRIu64,
		         len, conf->snapshot_max_size);
		free(blob);
		return PG_ERROR;
	}
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
	free(blob);
	return rc;
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
	else
		return PG_OK;
	return PG_ERROR;
}

/* Reload: on any error the old snapshot and configuration stay live. */
static int ctl_reload(struct ctl_daemon *dm, char *msg, size_t msglen)
{
	struct pg_conf *nc = malloc(sizeof(*nc));
	uint64_t gen;
	int rc;

	if (nc == NULL) {
		snprintf(msg, msglen, "out of memory");
		return PG_ERROR;
	}
	rc = conf_load(dm->config_dir, nc, msg, msglen);
	if (rc == PG_OK)
		rc = ctl_check_restart_only(dm->conf, nc, msg, msglen);
	if (rc == PG_OK)
		rc = ctl_publish(dm, nc, &gen, msg, msglen);
	if (rc != PG_OK) {
		free(nc);
		ctl_log("reload refused, generation %" PRIu64 " stays live: %s", dm->gen, msg);
		return PG_ERROR;
	}
	free(dm->conf);
	dm->conf = nc;
	dm->gen = gen;
	snprintf(msg, msglen, "published generation %" PRIu64, gen);
	ctl_log("reload: %s", msg);
	return PG_OK;
}

/* ---- the control socket ---- */

static int ctl_mkdir_parents(const char *path)
{
	char dir[CONF_SOCKET_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

static int ctl_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (ctl_mkdir_parents(path) != 0) {
		ctl_log("cannot create the directory of %s: %s", path, strerror(errno));
		return -1;
	}
	/* a stale socket of a previous run; shm_open_control refused a live one */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			ctl_log("%s exists and is not a socket; not removing it", path);
			return -1;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ctl_log("socket: %s", strerror(errno));
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0660) != 0 ||
	    listen(fd, 16) != 0) {
		ctl_log("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void ctl_client_close(struct ctl_client *c)
{
	close(c->fd);
	ctl_buf_free(&c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* The request table: verb, and what it answers. */
static const char *ctl_handle_status(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);
static const char *ctl_handle_stats(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);
static const char *ctl_handle_reload(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);

static const struct ctl_command {
	const char *verb;
	const char *(*handle)(struct ctl_daemon *dm, struct ctl_buf *b, bool json, bool all);
} ctl_commands[] = {
    {"status", ctl_handle_status},
    {"stats", ctl_handle_stats},
    {"reload", ctl_handle_reload},
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
	ctl_stats_report(b, dm->shm.region, all, json);
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

/* Parse "VERB [json] [all]" and build the whole reply into c->out. */
static void ctl_dispatch(struct ctl_daemon *dm, struct ctl_client *c)
{
	struct ctl_buf body = {0};
	char *save = NULL, *verb, *word;
	const char *verdict = NULL;
	bool json = false, all = false;

	verb = strtok_r(c->req, " \t\r", &save);
	while ((word = strtok_r(NULL, " \t\r", &save)) != NULL) {
		if (strcmp(word, "json") == 0) {
			json = true;
		} else if (strcmp(word, "all") == 0) {
			all = true;
		} else {
			verdict = "error";
			ctl_buf_printf(&body, "unknown argument \"%.40s\"\n", word);
			break;
		}
	}
	if (verdict == NULL) {
		for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
			if (verb != NULL && strcmp(verb, ctl_commands[i].verb) == 0)
				verdict = ctl_commands[i].handle(dm, &body, json, all);
		if (verdict == NULL) {
			verdict = "error";
			ctl_buf_printf(&body, "unknown command \"%.40s\" (status, stats, reload)\n",
			               verb != NULL ? verb : "");
		}
	}
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
			static const char busy[] = "error\nposternd is busy, try again\n";

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
			ctl_log("SIGHUP: reloading %s/%s", dm->config_dir, CONF_FILE_NAME);
			ctl_reload(dm, msg, sizeof(msg));
		} else {
			ctl_log("%s: shutting down (the dataplane keeps its snapshot)",
			        strsignal((int)si.ssi_signo));
			dm->stop = true;
		}
	}
}

static void ctl_loop(struct ctl_daemon *dm)
{
	struct pollfd pfd[2 + CTL_MAX_CLIENTS];
	struct ctl_client *who[2 + CTL_MAX_CLIENTS];

	while (!dm->stop) {
		nfds_t n = 0;
		uint64_t now;

		pfd[n++] = (struct pollfd){.fd = dm->signal_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = dm->listen_fd, .events = POLLIN};
		for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
			struct ctl_client *c = &dm->clients[i];

			if (c->fd < 0)
				continue;
			who[n] = c;
			pfd[n++] =
			    (struct pollfd){.fd = c->fd, .events = c->replying ? POLLOUT : POLLIN};
		}
		if (poll(pfd, n, 1000) < 0 && errno != EINTR) {
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
	}
}

static int ctl_signals(void)
{
	sigset_t set;

	/* a client that hangs up early must not kill us on write */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
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

	dm.start_ns = shm_now_ns();
	dm.listen_fd = dm.signal_fd = -1;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		dm.clients[i].fd = -1;
	dm.conf = malloc(sizeof(*dm.conf));
	if (dm.conf == NULL)
		return 1;
	if (conf_load(dm.config_dir, dm.conf, err, sizeof(err)) != PG_OK) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			ctl_log("%s", err);
		return 1;
	}
	if (check) {
		void *blob;
		size_t len;

		/* also prove the snapshot builds and fits its slot */
		if (snap_build(dm.conf, &blob, &len, err, sizeof(err)) != PG_OK) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		free(blob);
		printf("config OK\n");
		return 0;
	}

	dm.signal_fd = ctl_signals();
	if (dm.signal_fd < 0) {
		ctl_log("signalfd: %s", strerror(errno));
		return 1;
	}
	if (shm_open_control(dm.conf->shm_name, dm.conf->snapshot_max_size, &dm.shm, err,
	                     sizeof(err)) != PG_OK) {
		ctl_log("%s", err);
		return 1;
	}
	if (ctl_publish(&dm, dm.conf, &dm.gen, err, sizeof(err)) != PG_OK) {
		ctl_log("cannot publish the first snapshot: %s", err);
		return 1;
	}
	ctl_log("published generation %" PRIu64 " (config %s, shm /dev/shm/%s)", dm.gen,
	        dm.conf->path, dm.conf->shm_name);
	dm.listen_fd = ctl_listen(dm.conf->control_socket);
	if (dm.listen_fd < 0)
		return 1;
	ctl_log("listening on %s", dm.conf->control_socket);

	ctl_loop(&dm);

	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (dm.clients[i].fd >= 0)
			ctl_client_close(&dm.clients[i]);
	close(dm.listen_fd);
	unlink(dm.conf->control_socket);
	/* not shm_unlink: the dataplane keeps running on the current snapshot */
	atomic_store(&dm.shm.region->control_pid, 0);
	shm_detach(&dm.shm);
	free(dm.conf);
	ctl_log("stopped");
	return 0;
}
