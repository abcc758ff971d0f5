/*
 * posternctl.c - the operator CLI. Sends one request line to posternd over
 * its Unix socket, prints the answer, and turns posternd's verdict line into
 * an exit code scripts can rely on (the lab waits on `posternctl status`):
 *   0 OK, 1 posternd reported an error, 2 usage error, 3 posternd not
 *   reachable, 4 status: dataplane not ready or a worker behind (also: a
 *   --wait that timed out, a worker that did not answer `sessions` or
 *   `queue`). `queue show|flush|delete|hold|release ID` of an id no worker
 *   has exits 1, like `policy show` of a missing entry.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ctl_client.h"
#include "ctl_queue.h"
#include "ctl_wait.h"
#include "result.h"

#define CTL_REPLY_TIMEOUT_S 15 /* reload may retry publishing for 2 s */

/* The command table: name, options it takes, what it does. */
static const struct ctl_cmd {
	const char *name;
	bool json_ok, all_ok;
	const char *args;
	const char *help;
} ctl_cmds[] = {
    {"status", true, false, "[--json]",
     "posternd, dataplane and per-worker state; exit 4 if the dataplane is not\n"
     "ready or a worker has not adopted the published generation"},
    {"stats", true, true, "[--all] [--json] | --watch [SECONDS] [--count N] [--all]",
     "dataplane counters, total and per worker (--all: include zero counters);\n"
     "then the deliveries by TLS outcome per domain: one row per recipient domain\n"
     "(lower case), one column per tls_outcome (verified, fingerprint, encrypted,\n"
     "plaintext, deferred, would_defer, none = no connection got that far), one\n"
     "count per recipient per attempt (--json: \"tls_outcomes\"). Counted by\n"
     "posternd since it started (a restarted posternd starts from zero); at most\n"
     "1000 domains, later ones are counted under \"other\". Also on /metrics as\n"
     "postern_delivery_tls_total{domain,outcome}.\n"
     "--watch: refresh every SECONDS (default 1) with the rate per second of each\n"
     "counter, total and per worker, from the last two readings (counters only,\n"
     "not the TLS outcomes); --count N stops after N tables (text only)"},
    {"reload", true, false, "[--wait [SECONDS]] [--json]",
     "re-read the configuration and publish it; an invalid configuration is\n"
     "refused (exit 1) and the running one stays live. --wait: answer only once\n"
     "every worker runs the new generation, with the time from publication to the\n"
     "last worker's adoption; after SECONDS (default 5, at most 10) exit 4 and name\n"
     "the workers behind"},
    {"policy", false, false, "list|show|test|set|del|inbound ...",
     "the outbound TLS policy (CONFIG_DIR/tls_policy), the sender floors\n"
     "(CONFIG_DIR/sender_tls_policy, --sender) and the inbound TLS requirements\n"
     "(smtpd_tls_*), see `posternctl policy SUB --help`"},
    {"transport", false, false, "test DOMAIN [--json]",
     "which next hops the transport table gives mail for DOMAIN"},
    {"cert", false, false, "list|show NAME [--json]",
     "the inbound TLS certificates (tls_certificates), see `posternctl cert SUB --help`"},
    {"sessions", true, false, "[--max N] [--json]",
     "every worker's TCP connections: local and remote address, state, bytes in\n"
     "(received in order) and out (acknowledged by the peer), modulo 4 GiB, send\n"
     "and receive buffer fill, age, and the owner (the listener's port and service,\n"
     "or \"client\"). At most N per worker (default 1000, at most 1397); a longer\n"
     "list is cut with a note.\n"
     "Exit 4 if a worker did not answer within 2 s"},
    {"queue", false, false, "list|show|flush|delete|hold|release ...",
     "the spool queue of every worker (like mailq, postqueue -f and postsuper -d|-h|-H),\n"
     "see `posternctl queue SUB --help`"},
    {"log", true, false, "[--lines N] [--follow [--count N]] [--json]",
     "the last N (default 10) events of posternd's JSON log (log_file; the path is\n"
     "asked from posternd, else read from CONFIG_DIR/postern.conf), as text or,\n"
     "with --json, as the JSON lines themselves. --follow: keep printing new\n"
     "events as they come (across log rotations), --count N: stop after N new ones"},
    {"dns", true, false, "lookup DOMAIN [--no-mx] [--json] | flush [DOMAIN] [--json]",
     "the dataplane's resolver (dataplane/dns), asked through worker 0:\n"
     "lookup: the MX route of DOMAIN as delivery would take it (--no-mx: the A\n"
     "records of the host DOMAIN only, as for smtp:[DOMAIN]): the outcome (ok,\n"
     "nullmx, nxdomain, nohost, temp, loop) and reason, the DNSSEC status, from the\n"
     "cache or fresh, the queries it took, the shortest TTL, then each next hop in\n"
     "order: preference, MX host, address, DNSSEC status.\n"
     "flush: drop DOMAIN's cached answers (MX and A), or the whole cache.\n"
     "Exit 3 without DNS configured"},
    {"help", false, false, "[COMMAND]", "this text, or the help of COMMAND"},
};

/*
 * Sub-commands of policy and transport: the number of positional arguments
 * they take (max -1: any number from min), the options, and the help.
 */
enum { CTL_SENDER_NONE, CTL_SENDER_TABLE, CTL_SENDER_ADDRESS };

static const struct ctl_sub {
	const char *cmd, *name;
	int min, max;
	bool json_ok, nexthop_ok;
	const char *args;
	const char *help;
	bool wait_ok; /* --wait [SECONDS]: answer once every worker adopted it */
	bool max_ok;  /* --max N */
	bool id_args; /* the positional arguments are queue ids */
	/* --sender: CTL_SENDER_TABLE the sender floors table, CTL_SENDER_ADDRESS --sender A
	 * --client IP */
	uint8_t sender;
} ctl_subs[] = {
    {"policy", "list", 0, 0, true, false, "[--sender] [--json]",
     "every entry of the live TLS policy, in file order, and the default level;\n"
     "with --sender, every sender floor (CONFIG_DIR/sender_tls_policy) instead",
     false, false, false, CTL_SENDER_TABLE},
    {"policy", "show", 1, 1, true, false, "KEY [--json]",
     "the entry for KEY (domain, .domain or [host]:port); exit 1 if there is none"},
    {"policy", "test", 1, 1, true, true,
     "DOMAIN [--nexthop HOST[:PORT]] [--sender ADDRESS] [--client IP] [--json]",
     "which entry applies to a delivery to DOMAIN and why: the entry, FILE:LINE, the\n"
     "match kind (nexthop, exact, parent, default) and the resulting level and\n"
     "attributes. Without --nexthop, the next hops of the transport table are used\n"
     "(or the MX hosts of DOMAIN). Precedence: the next-hop destination ([host]:port\n"
     "exactly, or a next-hop domain and its parents), then DOMAIN, then its parents\n"
     "nearest first, then tls_default_level.\n"
     "With --sender ADDRESS (\"<>\": the null sender) and/or --client IP (the\n"
     "submitting client): the sender's floor too (sender_tls_policy: the sender\n"
     "domain exactly, its parents nearest first, the client's network longest\n"
     "prefix first; if both match, the stricter floor) and, per next hop, the\n"
     "effective level and which rule decided: the destination's level stands when\n"
     "it meets the floor, otherwise the floor applies",
     false, false, false, CTL_SENDER_ADDRESS},
    {"policy", "set", 2, -1, true, false,
     "[--sender] KEY LEVEL [ATTR=VALUE...] [--wait [SECONDS]] [--json]",
     "add or replace the entry for KEY in CONFIG_DIR/tls_policy (comments and other\n"
     "lines kept), validate the whole file, replace it atomically and publish; an\n"
     "invalid entry is refused (exit 1) and nothing changes. --wait: answer only\n"
     "once every worker runs the new generation, with the time from publication to\n"
     "the last worker's adoption; after SECONDS (default 5, at most 10) exit 4 and\n"
     "name the workers behind.\n"
     "policy set --sender KEY FLOOR [mode=testing]: the same for the sender floors\n"
     "(CONFIG_DIR/sender_tls_policy): KEY a sender domain (d.com), its sub-domains\n"
     "(.d.com) or a client network ([a.b.c.d/len]); FLOOR encrypt, verify or\n"
     "secure. Applies to queued mail at its next attempt",
     true, false, false, CTL_SENDER_TABLE},
    {"policy", "del", 1, 1, true, false, "[--sender] KEY [--wait [SECONDS]] [--json]",
     "remove the entry for KEY from CONFIG_DIR/tls_policy (with --sender: from\n"
     "CONFIG_DIR/sender_tls_policy) and publish; exit 1 if there is none. --wait as\n"
     "for set",
     true, false, false, CTL_SENDER_TABLE},
    {"policy", "inbound", 1, 2, true, false, "CLIENT_IP [SENDER_DOMAIN] [--json]",
     "must an SMTP client at CLIENT_IP (IPv4) use STARTTLS before MAIL FROM, and why,\n"
     "from the live snapshot. SENDER_DOMAIN is the domain of MAIL FROM (an address\n"
     "is taken after its last @); without it, the answer is the one before MAIL\n"
     "FROM. The first that applies decides: the listener (smtpd_tls_security_level\n"
     "= encrypt), then the client network (smtpd_tls_required_networks, longest\n"
     "prefix), then the sender domain (smtpd_tls_required_senders: exact, then\n"
     "parents nearest first); each check is shown with its postern.conf line, and\n"
     "the reply a plaintext client gets (530 5.7.0 Must issue a STARTTLS command\n"
     "first) and the protocol versions the handshake may use"},
    {"transport", "test", 1, 1, true, false, "DOMAIN [--json]",
     "the transport entry for DOMAIN (exact, parent or *) and its next hops in order"},
    {"cert", "list", 0, 0, true, false, "[--json]",
     "every certificate of the live snapshot in configuration order: file, key type,\n"
     "names, not after, days left, SHA-256 fingerprint of the leaf; \"default\" marks\n"
     "the first of each key type, used without SNI or for names no certificate covers;\n"
     "then the outbound trust anchors (smtp_tls_CAfile, tafile=) and the session-ticket\n"
     "keys with the current key's age (smtpd_tls_session_cache_timeout)"},
    {"cert", "show", 1, 1, true, false, "NAME [--json]",
     "the certificate(s) a ClientHello with SNI NAME gets, and why: exact (a\n"
     "certificate names NAME), wildcard (*.parent covers NAME, one label only) or\n"
     "default. Per key type: ECDSA for clients that verify it, else RSA"},
    {"queue", "list", 0, 0, true, false, "[--max N] [--json]",
     "the queued messages of every worker, oldest first, one line each as mailq shows\n"
     "them: queue id ('*': a delivery attempt is running, '!': on hold), body size in\n"
     "bytes, arrival (UTC), recipients still to deliver / all, next attempt (a UTC\n"
     "time, now, held, active or deleting) and sender (cut at 64 bytes with \"...\");\n"
     "then \"-- K Kbytes in N Requests.\". At most N messages (default 1000; at most\n"
     "1016 per worker); a longer queue ends with \"... and M more\".\n"
     "Exit 4 if a worker did not answer within 2 s",
     false, true},
    {"queue", "show", 1, 1, true, false, "ID [--json]",
     "one message: state, arrival, size, sender, delivery attempts, next attempt, the\n"
     "last deferral's reply and every recipient (done or pending). ID as queue list\n"
     "prints it (a trailing * or ! is ignored). Exit 1 if no worker has it, 4 if a\n"
     "worker did not answer",
     false, false, true},
    {"queue", "flush", 0, 1, true, false, "[ID] [--json]",
     "make ID, or every queued message, due now and wake the delivery scheduler;\n"
     "held messages stay held. Exit 1 if no worker has ID",
     false, false, true},
    {"queue", "delete", 1, 1, true, false, "ID [--json]",
     "remove ID from the queue, without a bounce. While a delivery attempt is running\n"
     "the message is deleted when it ends (recipients it delivers meanwhile stay\n"
     "delivered): \"delete pending\". Exit 1 if no worker has ID or the spool refused",
     false, false, true},
    {"queue", "hold", 1, 1, true, false, "ID [--json]",
     "put ID on hold: no delivery attempt until it is released (one running now ends\n"
     "normally). Kept across restarts. Exit 1 if no worker has ID",
     false, false, true},
    {"queue", "release", 1, 1, true, false, "ID [--json]",
     "take ID off hold: it is delivered at its next attempt time (queue flush ID: now).\n"
     "Exit 1 if no worker has ID",
     false, false, true},
};

#define CTL_NSUBS (sizeof(ctl_subs) / sizeof(ctl_subs[0]))
_Static_assert(CTL_SESSIONS_MAX == 1397, "the help of sessions says 1397");
_Static_assert(CTL_QUEUE_MAX == 1016 && CTL_QUEUE_DEFAULT_MAX == 1000,
               "the help of queue list says 1000 and 1016");

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

static void ctl_usage(FILE *f)
{
	fprintf(f,
	        "usage: posternctl [-s SOCKET] [-c CONFIG_DIR] COMMAND [OPTIONS]\n"
	        "  -s SOCKET      posternd's socket (default: control_socket of\n"
	        "                 CONFIG_DIR/postern.conf with -c, else " CONF_DEFAULT_SOCKET ")\n"
	        "  -c CONFIG_DIR  configuration directory to find the socket in\n"
	        "commands:\n");
	for (size_t i = 0; i < CTL_NCMDS; i++)
		fprintf(f, "  %-9s %s\n", ctl_cmds[i].name, ctl_cmds[i].args);
	fprintf(f, "exit codes: 0 ok, 1 posternd reported an error, 2 usage error,\n"
	           "            3 posternd unreachable, 4 status: not ready (also a --wait\n"
	           "            that timed out, a worker that did not answer sessions or\n"
	           "            queue)\n");
}

static void ctl_cmd_help(const struct ctl_cmd *c)
{
	printf("usage: posternctl [-s SOCKET] [-c CONFIG_DIR] %s %s\n%s\n", c->name, c->args,
	       c->help);
}

static const struct ctl_sub *ctl_find_sub(const char *cmd, const char *name)
{
	for (size_t i = 0; i < CTL_NSUBS; i++)
		if (strcmp(ctl_subs[i].cmd, cmd) == 0 && strcmp(ctl_subs[i].name, name) == 0)
			return &ctl_subs[i];
	return NULL;
}

/* policy, transport, cert: commands with sub-commands in ctl_subs. */
static bool ctl_has_subs(const char *cmd)
{
	for (size_t i = 0; i < CTL_NSUBS; i++)
		if (strcmp(ctl_subs[i].cmd, cmd) == 0)
			return true;
	return false;
}

static void ctl_sub_usage(FILE *f, const char *cmd)
{
	fprintf(f, "usage:\n");
	for (size_t i = 0; i < CTL_NSUBS; i++)
		if (strcmp(ctl_subs[i].cmd, cmd) == 0)
			fprintf(f, "  posternctl %s %s %s\n", cmd, ctl_subs[i].name,
			        ctl_subs[i].args);
}

static const struct ctl_cmd *ctl_find_cmd(const char *name)
{
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

static int ctl_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "posternctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	ctl_usage(stderr);
	return CTL_EXIT_USAGE;
}

/* -s wins; then control_socket of -c DIR (even if the rest is invalid). */
int ctl_socket_path(const char *opt_s, const char *opt_c, char *path, size_t len)
{
	char err[512], why[256];
	int rc;

	if (opt_s != NULL) {
		snprintf(path, len, "%s", opt_s);
		return CTL_EXIT_OK;
	}
	snprintf(path, len, "%s", CONF_DEFAULT_SOCKET);
	if (opt_c == NULL)
		return CTL_EXIT_OK;
	rc = conf_peek(opt_c, "control_socket", path, len, err, sizeof(err));
	if (rc == PG_ERROR) {
		fprintf(stderr, "posternctl: cannot find posternd's socket: %s\n", err);
		return CTL_EXIT_UNREACHABLE;
	}
	if (rc == PG_DECLINED) {
		snprintf(path, len, "%s", CONF_DEFAULT_SOCKET);
		return CTL_EXIT_OK;
	}
	if (conf_check_socket_path(path, why, sizeof(why)) != 0) {
		fprintf(stderr, "posternctl: control_socket in %s/%s: \"%s\": %s\n", opt_c,
		        CONF_FILE_NAME, path, why);
		return CTL_EXIT_UNREACHABLE;
	}
	return CTL_EXIT_OK;
}

int ctl_fetch(const char *sock, const char *request, char **reply_out, char **body_out)
{
	*reply_out = *body_out = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = CTL_REPLY_TIMEOUT_S};
	char *reply = NULL;
	size_t len = 0, cap = 0;
	char *nl, *body;
	int fd, rc;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "posternctl: socket path %s too long\n", sock);
		return CTL_EXIT_UNREACHABLE;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "posternctl: cannot reach posternd at %s: %s%s\n", sock,
		        strerror(errno),
		        errno == ENOENT || errno == ECONNREFUSED ? " (is posternd running?)" : "");
		if (fd >= 0)
			close(fd);
		return CTL_EXIT_UNREACHABLE;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
		fprintf(stderr, "posternctl: sending to posternd at %s: %s\n", sock,
		        strerror(errno));
		close(fd);
		return CTL_EXIT_UNREACHABLE;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *np = realloc(reply, cap ? cap * 2 : 65536);

			if (np == NULL) {
				fprintf(stderr, "posternctl: out of memory\n");
				free(reply);
				close(fd);
				return CTL_EXIT_DAEMON_ERROR;
			}
			reply = np;
			cap = cap ? cap * 2 : 65536;
		}
		n = read(fd, reply + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "posternctl: reading from posternd at %s: %s\n", sock,
			        errno == EAGAIN ? "no answer (timed out)" : strerror(errno));
			free(reply);
			close(fd);
			return CTL_EXIT_UNREACHABLE;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	reply[len] = '\0';
	nl = strchr(reply, '\n');
	if (nl == NULL) {
		fprintf(stderr, "posternctl: posternd at %s closed without an answer\n", sock);
		free(reply);
		return CTL_EXIT_UNREACHABLE;
	}
	*nl = '\0';
	body = nl + 1;
	if (strcmp(reply, "ok") == 0) {
		rc = CTL_EXIT_OK;
	} else if (strcmp(reply, "notready") == 0) {
		rc = CTL_EXIT_NOT_READY;
	} else if (strcmp(reply, "busy") == 0) {
		rc = CTL_EXIT_UNREACHABLE; /* not a refusal: nothing was looked at */
	} else {
		rc = CTL_EXIT_DAEMON_ERROR;
	}
	*reply_out = reply;
	*body_out = body;
	return rc;
}

static int ctl_request(const char *sock, const char *request)
{
	char *reply, *body;
	int rc = ctl_fetch(sock, request, &reply, &body);

	if (reply == NULL)
		return rc;
	/*
	 * Error text goes to stderr so scripts parsing stdout are not
	 * confused; an error asked for as JSON is the output, so stdout.
	 */
	fputs(body, rc != CTL_EXIT_OK && rc != CTL_EXIT_NOT_READY && body[0] != '{' ? stderr : stdout);
	free(reply);
	return rc;
}

/*
 * "--wait [SECONDS]" or "--wait=SECONDS" at argv[*i]: 0 if it is not that
 * option, 1 with *secs set and *i past a SECONDS argument, -1 for a bad
 * value (message printed). A bare number after --wait is its SECONDS: no
 * policy attribute or level is a bare number.
 */
static int ctl_parse_wait(const char *cmd, int argc, char **argv, int *i, unsigned *secs)
{
	const char *v = NULL;
	char *end;
	unsigned long s;

	if (strncmp(argv[*i], "--wait=", 7) == 0)
		v = argv[*i] + 7;
	else if (strcmp(argv[*i], "--wait") != 0)
		return 0;
	else if (*i + 1 < argc && argv[*i + 1][0] >= '0' && argv[*i + 1][0] <= '9')
		v = argv[++*i];
	*secs = CTL_WAIT_DEFAULT_S;
	if (v == NULL)
		return 1;
	s = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || s < 1 || s > CTL_WAIT_MAX_S) {
		fprintf(stderr, "posternctl: %s: --wait: \"%s\" is not 1..%d seconds\n", cmd, v,
		        CTL_WAIT_MAX_S);
		return -1;
	}
	*secs = (unsigned)s;
	return 1;
}

/*
 * posternctl policy|transport SUB ARGS: check the arguments here (usage
 * errors exit 2 without bothering posternd), then send
 * "CMD SUB [--json] [--nexthop=H] ARGS" on one line.
 */
static int ctl_dns_main(int argc, char **argv, const char *opt_s, const char *opt_c);

static int ctl_sub_main(const char *cmdname, int argc, char **argv, const char *opt_s,
                        const char *opt_c)
{
	const struct ctl_sub *sub;
	const char *nexthop = NULL, *sender = NULL, *client = NULL;
	bool senders = false;
	char sock[CONF_PATH_MAX], *request;
	size_t cap = 64, o;
	bool json = false;
	unsigned wait_s = 0, secs;
	long max = -1;
	int npos = 0, rc, w;
	uint64_t id;

	if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		ctl_sub_usage(argc == 0 ? stderr : stdout, cmdname);
		return argc == 0 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
	}
	sub = ctl_find_sub(cmdname, argv[0]);
	if (sub == NULL) {
		fprintf(stderr, "posternctl: %s: unknown sub-command \"%s\"\n", cmdname, argv[0]);
		ctl_sub_usage(stderr, cmdname);
		return CTL_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: posternctl [-s SOCKET] [-c CONFIG_DIR] %s %s %s\n%s\n",
			       cmdname, sub->name, sub->args, sub->help);
			return CTL_EXIT_OK;
		}
	}
	for (int i = 1; i < argc; i++) {
		cap += strlen(argv[i]) + 16;
		if (strpbrk(argv[i], "\n\r") != NULL) {
			fprintf(stderr, "posternctl: %s %s: an argument contains a line break\n",
			        cmdname, sub->name);
			return CTL_EXIT_USAGE;
		}
		if (sub->json_ok && strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (sub->nexthop_ok && strcmp(argv[i], "--nexthop") == 0 && i + 1 < argc) {
			nexthop = argv[++i];
			cap += strlen(nexthop);
		} else if (sub->sender == CTL_SENDER_TABLE && strcmp(argv[i], "--sender") == 0) {
			senders = true;
		} else if (sub->sender == CTL_SENDER_ADDRESS &&
		           (strcmp(argv[i], "--sender") == 0 || strcmp(argv[i], "--client") == 0) &&
		           i + 1 < argc) {
			if (strpbrk(argv[i + 1], " \t") != NULL) {
				fprintf(stderr, "posternctl: %s %s: %s: \"%s\" contains a space\n",
				        cmdname, sub->name, argv[i], argv[i + 1]);
				return CTL_EXIT_USAGE;
			}
			if (argv[i][2] == 's')
				sender = argv[++i];
			else
				client = argv[++i];
			cap += strlen(argv[i]) + 16;
		} else if (sub->wait_ok &&
		           (w = ctl_parse_wait(cmdname, argc, argv, &i, &secs)) != 0) {
			if (w < 0)
				return CTL_EXIT_USAGE;
			wait_s = secs;
		} else if (sub->max_ok &&
		           (strcmp(argv[i], "--max") == 0 || strncmp(argv[i], "--max=", 6) == 0)) {
			const char *v = argv[i][5] == '=' ? argv[i] + 6
			                : i + 1 < argc    ? argv[++i]
			                                  : "";
			char *end;
			unsigned long n = strtoul(v, &end, 10);

			if (*v < '0' || *v > '9' || *end != '\0' || n > CTL_QUEUE_MAX) {
				fprintf(stderr, "posternctl: %s %s: --max needs a number 0..%lu\n",
				        cmdname, sub->name, (unsigned long)CTL_QUEUE_MAX);
				return CTL_EXIT_USAGE;
			}
			max = (long)n;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "posternctl: %s %s: unknown option \"%s\"\n", cmdname,
			        sub->name, argv[i]);
			fprintf(stderr, "usage: posternctl %s %s %s\n", cmdname, sub->name,
			        sub->args);
			return CTL_EXIT_USAGE;
		} else if (sub->id_args && ctl_queue_id_parse(argv[i], &id) != PG_OK) {
			fprintf(stderr,
			        "posternctl: %s %s: bad queue id \"%s\": 1 to 16 hex digits, as"
			        " `posternctl queue list` shows\n",
			        cmdname, sub->name, argv[i]);
			return CTL_EXIT_USAGE;
		} else {
			npos++;
		}
	}
	if (npos < sub->min || (sub->max >= 0 && npos > sub->max)) {
		fprintf(stderr, "posternctl: %s %s: wrong number of arguments\n", cmdname,
		        sub->name);
		fprintf(stderr, "usage: posternctl %s %s %s\n", cmdname, sub->name, sub->args);
		return CTL_EXIT_USAGE;
	}
	rc = ctl_socket_path(opt_s, opt_c, sock, sizeof(sock));
	if (rc != CTL_EXIT_OK)
		return rc;
	request = malloc(cap);
	if (request == NULL)
		return CTL_EXIT_DAEMON_ERROR;
	o = (size_t)snprintf(request, cap, "%s %s%s", cmdname, sub->name, json ? " --json" : "");
	if (nexthop != NULL)
		o += (size_t)snprintf(request + o, cap - o, " --nexthop=%s", nexthop);
	if (senders)
		o += (size_t)snprintf(request + o, cap - o, " --sender");
	if (sender != NULL)
		o += (size_t)snprintf(request + o, cap - o, " --sender=%s", sender);
	if (client != NULL)
		o += (size_t)snprintf(request + o, cap - o, " --client=%s", client);
	if (wait_s != 0)
		o += (size_t)snprintf(request + o, cap - o, " --wait=%u", wait_s);
	if (max >= 0)
		o += (size_t)snprintf(request + o, cap - o, " --max=%ld", max);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (sub->wait_ok && ctl_parse_wait(cmdname, argc, argv, &i, &secs) != 0)
			continue;
		if (strcmp(argv[i], "--nexthop") == 0 ||
		    (sub->max_ok && strcmp(argv[i], "--max") == 0) ||
		    (sub->sender == CTL_SENDER_ADDRESS &&
		     (strcmp(argv[i], "--sender") == 0 || strcmp(argv[i], "--client") == 0))) {
			i++;
			continue;
		}
		if (sub->sender == CTL_SENDER_TABLE && strcmp(argv[i], "--sender") == 0)
			continue;
		if (sub->max_ok && strncmp(argv[i], "--max=", 6) == 0)
			continue;
		o += (size_t)snprintf(request + o, cap - o, " %s", argv[i]);
	}
	snprintf(request + o, cap - o, "\n");
	if (strcmp(cmdname, "transport") == 0 && !json) {
		/* the MX route too, when the transport table leaves it to DNS */
		char *reply, *body;
		const char *dom = NULL;

		rc = ctl_fetch(sock, request, &reply, &body);
		free(request);
		if (reply == NULL)
			return rc;
		fputs(body, rc != CTL_EXIT_OK ? stderr : stdout);
		for (int i = 1; i < argc && dom == NULL; i++)
			if (argv[i][0] != '-')
				dom = argv[i];
		if (rc == CTL_EXIT_OK && dom != NULL && strstr(body, "the MX hosts of") != NULL) {
			const char *dargv[] = {"lookup", dom};

			free(reply);
			printf("MX route (the dataplane's resolver, as delivery takes it):\n");
			fflush(stdout);
			ctl_dns_main(2, (char **)dargv, opt_s, opt_c);
			return rc; /* the transport answer decides the exit */
		}
		free(reply);
		return rc;
	}
	rc = ctl_request(sock, request);
	free(request);
	return rc;
}

/*
 * posternctl dns lookup|flush: the answer is asked for again while
 * posternd says "pending" (the resolver works off the dataplane's poll
 * loop), every 100 ms, for at most CTL_REPLY_TIMEOUT_S.
 */
static int ctl_dns_main(int argc, char **argv, const char *opt_s, const char *opt_c)
{
	char sock[CONF_PATH_MAX], request[512];
	const char *name = "";
	bool json = false, nomx = false;
	int npos = 0, rc;
	const char *sub = NULL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--no-mx") == 0)
			nomx = true;
		else if (argv[i][0] == '-' || npos == 2)
			return ctl_usage_error("dns: unknown argument \"%s\"", argv[i]);
		else if (npos++ == 0)
			sub = argv[i];
		else
			name = argv[i];
	}
	if (sub == NULL || (strcmp(sub, "lookup") != 0 && strcmp(sub, "flush") != 0) ||
	    (strcmp(sub, "lookup") == 0 && npos != 2) || (strcmp(sub, "flush") == 0 && nomx) ||
	    strlen(name) > 255 || strchr(name, ' ') != NULL)
		return ctl_usage_error("%s",
		                       "usage: posternctl dns lookup DOMAIN [--no-mx] [--json] | "
		                       "dns flush [DOMAIN] [--json]");
	rc = ctl_socket_path(opt_s, opt_c, sock, sizeof(sock));
	if (rc != CTL_EXIT_OK)
		return rc;
	snprintf(request, sizeof(request), "dns %s %s%s%s\n", sub, name, nomx ? " no-mx" : "",
	         json ? " json" : "");
	for (int tries = 0; tries < CTL_REPLY_TIMEOUT_S * 10; tries++) {
		char *reply, *body;
		struct timespec ts = {0, 100 * 1000 * 1000};

		rc = ctl_fetch(sock, request, &reply, &body);
		if (reply == NULL)
			return rc;
		if (strcmp(reply, "pending") != 0) {
			fputs(body, rc != CTL_EXIT_OK && rc != CTL_EXIT_NOT_READY && body[0] != '{'
			                ? stderr
			                : stdout);
			free(reply);
			return rc;
		}
		free(reply);
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "posternctl: dns %s %s: no answer within %d s\n", sub, name,
	        CTL_REPLY_TIMEOUT_S);
	return CTL_EXIT_UNREACHABLE;
}

int main(int argc, char **argv)
{
	const char *opt_s = NULL, *opt_c = NULL;
	const struct ctl_cmd *cmd;
	char sock[CONF_PATH_MAX], request[128], extra[48] = "";
	bool json = false, all = false;
	unsigned secs;
	int i = 1, rc, w;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			ctl_usage(stdout);
			return CTL_EXIT_OK;
		} else if (strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc)
				return ctl_usage_error("option %s needs an argument", argv[i]);
			if (argv[i][1] == 's')
				opt_s = argv[++i];
			else
				opt_c = argv[++i];
		} else {
			return ctl_usage_error("unknown option \"%s\"", argv[i]);
		}
	}
	if (i >= argc)
		return ctl_usage_error("%s", "no command given");
	cmd = ctl_find_cmd(argv[i]);
	if (cmd == NULL)
		return ctl_usage_error("unknown command \"%s\"", argv[i]);
	if (ctl_has_subs(cmd->name))
		return ctl_sub_main(cmd->name, argc - i - 1, argv + i + 1, opt_s, opt_c);
	for (int k = i + 1; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			ctl_cmd_help(cmd);
			return CTL_EXIT_OK;
		}
	}
	if (strcmp(cmd->name, "dns") == 0)
		return ctl_dns_main(argc - i - 1, argv + i + 1, opt_s, opt_c);
	/* the operations commands with options of their own (ctl_ops.c) */
	if (strcmp(cmd->name, "log") == 0)
		return ctl_log_cmd(argc - i - 1, argv + i + 1, opt_s, opt_c);
	if (strcmp(cmd->name, "stats") == 0 && ctl_stats_is_watch(argc - i - 1, argv + i + 1))
		return ctl_stats_watch(argc - i - 1, argv + i + 1, opt_s, opt_c);
	for (i++; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			ctl_cmd_help(cmd);
			return CTL_EXIT_OK;
		} else if (cmd->json_ok && strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (cmd->all_ok && strcmp(argv[i], "--all") == 0) {
			all = true;
		} else if (strcmp(cmd->name, "reload") == 0 &&
		           (w = ctl_parse_wait(cmd->name, argc, argv, &i, &secs)) != 0) {
			if (w < 0)
				return CTL_EXIT_USAGE;
			snprintf(extra, sizeof(extra), " --wait=%u", secs);
		} else if (strcmp(cmd->name, "sessions") == 0 && strcmp(argv[i], "--max") == 0) {
			char *end;
			const char *v = i + 1 < argc ? argv[++i] : "";
			unsigned long max = strtoul(v, &end, 10);

			if (*v < '0' || *v > '9' || *end != '\0' || max > CTL_SESSIONS_MAX) {
				fprintf(stderr,
				        "posternctl: sessions: --max needs a number 0..%lu\n",
				        (unsigned long)CTL_SESSIONS_MAX);
				return CTL_EXIT_USAGE;
			}
			snprintf(extra, sizeof(extra), " --max=%lu", max);
		} else if (strcmp(cmd->name, "help") == 0 && ctl_find_cmd(argv[i]) != NULL &&
		           i + 1 == argc) {
			const struct ctl_cmd *hc = ctl_find_cmd(argv[i]);

			if (ctl_has_subs(hc->name))
				ctl_sub_usage(stdout, hc->name);
			else
				ctl_cmd_help(hc);
			return CTL_EXIT_OK;
		} else {
			fprintf(stderr, "posternctl: %s: unknown argument \"%s\"\n", cmd->name,
			        argv[i]);
			fprintf(stderr, "usage: posternctl %s %s\n", cmd->name, cmd->args);
			return CTL_EXIT_USAGE;
		}
	}
	if (strcmp(cmd->name, "help") == 0) {
		ctl_usage(stdout);
		return CTL_EXIT_OK;
	}
	rc = ctl_socket_path(opt_s, opt_c, sock, sizeof(sock));
	if (rc != CTL_EXIT_OK)
		return rc;
	snprintf(request, sizeof(request), "%s%s%s%s\n", cmd->name, all ? " all" : "",
	         json ? " json" : "", extra);
	return ctl_request(sock, request);
}
