/*
 * ctl_client.h - what posternctl's command files share: the exit codes, how
 * the socket is found, and one request/answer round trip with posternd
 * (defined in posternctl.c); the operations commands of ctl_ops.c.
 */
#ifndef PG_CTL_CLIENT_H
#define PG_CTL_CLIENT_H

#include <stddef.h>

enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_DAEMON_ERROR = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_UNREACHABLE = 3,
	CTL_EXIT_NOT_READY = 4,
};

/* -s wins; then control_socket of -c DIR; else the default. */
int ctl_socket_path(const char *opt_s, const char *opt_c, char *path, size_t len);
/*
 * Send one request line, read the whole answer. Returns the exit code of
 * the verdict ("ok" 0, "notready" 4, "busy" 3, else 1); *reply is then the
 * malloc'd answer (the caller frees it) and *body its text after the
 * verdict line. On failure to talk at all: CTL_EXIT_UNREACHABLE, message
 * on stderr, *reply NULL.
 */
int ctl_fetch(const char *sock, const char *request, char **reply, char **body);

/* ctl_ops.c: `stats --watch` and `log`. argv[0] is the first argument after the command. */
int ctl_stats_watch(int argc, char **argv, const char *opt_s, const char *opt_c);
int ctl_log_cmd(int argc, char **argv, const char *opt_s, const char *opt_c);
/* Does a stats command line ask for --watch? */
int ctl_stats_is_watch(int argc, char **argv);

#endif
