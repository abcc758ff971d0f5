/*
 * smtp_harness.h - drives the SMTP server engine like the TCP glue will:
 * a backlog of received bytes fed with smtp_server_input(), replies
 * drained, upcalls answered by a deterministic scripted relay and logged
 * as text. Golden transcripts (golden/ *.txt) are run through it, whole,
 * byte by byte and split at every byte boundary.
 *
 * Transcript lines:
 *   # comment
 *   @ key=value ...   config before the first C: (see harness_config())
 *   C: text           client sends text + CRLF   (escapes \r \n \t \\ \xHH)
 *   C~ text           client sends text as is    (same escapes)
 *   S: text           expected reply line (CRLF added)
 *   U: text           expected upcall, as logged by the scripted relay
 *   A: action         hold | commit ok | commit fail | commit reject |
 *                     timeout | tls ok | tls fail | state NAME | errors N
 */
#ifndef SMTP_HARNESS_H
#define SMTP_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_server.h"

struct strbuf {
	char *p;
	size_t len, cap;
};

void sb_append(struct strbuf *b, const void *p, size_t n);
void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(struct strbuf *b);
/* Append p[0..n) with non-printables escaped as in transcripts. */
void sb_escape(struct strbuf *b, const uint8_t *p, size_t n);

struct harness {
	struct smtp_server_config cfg;
	struct smtp_server *s;
	struct strbuf backlog; /* received, not yet taken by the engine */
	struct strbuf out;     /* replies as sent */
	struct strbuf up;      /* upcall log, one line each */
	struct strbuf body;    /* the current message as given to data_chunk */
	bool done;             /* input said PG_DONE */
	bool hold;             /* the next message_end is not committed automatically */
	bool auto_resume;      /* an async mail/rcpt/data verdict to give */
	int resume_rc;
	int end_mode;   /* 0 async + auto commit, 1 sync OK */
	int chunk_mode; /* 0 ok, 1 alternate PG_AGAIN, 2 PG_ERROR */
	int data_mode;  /* 0 ok, 1 reject, 2 async ok, 3 temp */
	unsigned chunk_calls;
	unsigned qid;
	unsigned tls_hook; /* starttls upcalls */
	uint64_t max_body; /* largest message seen (memory checks) */
	bool log_body;     /* put bodies in the log (off for fuzzing) */
};

/* Parse "@ k=v k=v" words into h (before harness_start). false: unknown key. */
bool harness_config(struct harness *h, const char *line);
void harness_init(struct harness *h);
void harness_start(struct harness *h);
void harness_fini(struct harness *h);
/* Receive bytes (appended to the backlog) and run the engine. */
void harness_recv(struct harness *h, const void *p, size_t n);
/* Run the engine on the backlog until it stops making progress. */
void harness_pump(struct harness *h);
/* An A: action; false when unknown or when a check fails (msg says why). */
bool harness_action(struct harness *h, const char *action, char *msg, size_t msgsz);

/* Decode transcript escapes into out; returns the length. */
size_t harness_unescape(const char *in, uint8_t *out, size_t outsz);

#endif
