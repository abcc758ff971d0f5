/*
 * smtp_client_private.h - the session object of the SMTP client engine,
 * shared by its files: smtp_client.c (lifecycle, state machine, the
 * transaction and its results), smtp_client_reply.c (the resumable reply
 * parser and EHLO keywords), smtp_client_body.c (the body encoder: CRLF,
 * dot-stuffing, folding, BDAT chunks). Not for other layers.
 */
#ifndef PG_SMTP_CLIENT_PRIVATE_H
#define PG_SMTP_CLIENT_PRIVATE_H

#include "smtp_client.h"

/*
 * Output: commands and body. Writers that can fill it (the pipelined group,
 * the body) stop at SMTPC_OUT_FILL; the reserve above it is for the single
 * short command a reply can trigger (EHLO, HELO, STARTTLS, ".", QUIT).
 */
#define SMTPC_OUT_CAP 32768
#define SMTPC_OUT_FILL (SMTPC_OUT_CAP - 4096)
#define SMTPC_CMD_MAX 1400 /* MAIL/RCPT with every parameter at its limit */

/* States (one enum, a name table, one setter - as the server engine). */
enum smtpc_state {
	SMTPC_S_GREETING, /* waiting for the 220 */
	SMTPC_S_EHLO,     /* EHLO sent */
	SMTPC_S_HELO,     /* HELO sent (EHLO refused) */
	SMTPC_S_STARTTLS, /* STARTTLS sent */
	SMTPC_S_TLS,      /* the caller runs the handshake */
	SMTPC_S_IDLE,     /* ready; no message in progress */
	SMTPC_S_TXN,      /* RSET/MAIL/RCPT/DATA commands and their replies */
	SMTPC_S_BODY,     /* sending a DATA body */
	SMTPC_S_DOT,      /* end of data sent, waiting for the reply */
	SMTPC_S_NULLDOT,  /* RFC 2920 §3.1 lone "." sent, reply ignored */
	SMTPC_S_BDAT,     /* sending BDAT chunks / waiting for their replies */
	SMTPC_S_QUIT,     /* QUIT sent */
	SMTPC_S_CLOSED,   /* over: the caller closes the connection */
	SMTPC_S_COUNT
};

/* Per-recipient progress within the current message. */
enum smtpc_rstate {
	SMTPC_R_PENDING = 0, /* RCPT not answered yet */
	SMTPC_R_ACCEPTED,    /* RCPT 2xx, waiting for the end of data */
	SMTPC_R_FINAL,       /* rcpt_result given */
	SMTPC_R_SKIP,        /* refused locally before sending: no RCPT, final */
};

/* Steps of a transaction, in command (and reply) order. */
enum smtpc_step { SMTPC_STEP_RSET, SMTPC_STEP_MAIL, SMTPC_STEP_RCPT, SMTPC_STEP_DATA };

/* The reply being assembled (RFC 5321 §4.2.1 multiline). */
struct smtpc_reply_parser {
	char line[SMTP_CLIENT_LINE_MAX + 1];
	size_t len;
	bool skip;      /* an overlong line: the rest up to LF is dropped */
	unsigned lines; /* lines of the current reply so far */
	int code;       /* of the first line */
	char status[16];
	char text[SMTP_CLIENT_TEXT_MAX + 1];
	size_t textlen;
};

/* Body encoder state (smtp_client_body.c). */
struct smtpc_encoder {
	bool bol;         /* at the start of a line */
	bool cr;          /* a <CR> waits for its <LF> */
	uint32_t linelen; /* octets of the current wire line */
	const uint8_t *p; /* the span body_read gave */
	size_t n, off;
	bool eof; /* body_read said PG_DONE */
};

struct smtp_client {
	struct smtp_client_config cfg;
	const struct smtp_client_ops *ops;
	enum smtpc_state state;
	struct smtp_client_info info;
	struct smtp_client_reply failure; /* why the session ended */
	struct smtpc_reply_parser rp;
	bool in_run; /* inside the drive loop (upcalls may call send/quit) */
	bool quit_wanted;
	bool drop_input;   /* discard the rest of this input (after STARTTLS 220) */
	unsigned messages; /* transactions started on this session */

	/* The message. */
	const struct smtp_client_envelope *env; /* NULL = none */
	bool env_new;                           /* given, transaction not begun */
	uint8_t *rstate;                        /* nrcpt entries, enum smtpc_rstate */
	uint32_t rstate_cap;
	uint32_t accepted, nfinal;
	bool rset, mail_failed, use_bdat, stop_send;
	uint32_t nsteps, send_step, recv_step;

	/* Body. */
	struct smtpc_encoder enc;
	bool bdat_wait, bdat_last;
	size_t chunk_fill;

	size_t out_head, out_len;
	uint8_t out[SMTPC_OUT_CAP];
	uint8_t chunk[SMTP_CLIENT_BDAT_CHUNK];
};

/* smtp_client.c */
void smtpc_set_state(struct smtp_client *c, enum smtpc_state st);
void smtpc_on_line(struct smtp_client *c, const char *line, size_t len, unsigned lineno);
void smtpc_on_reply(struct smtp_client *c, const struct smtp_client_reply *r);
void smtpc_protocol_error(struct smtp_client *c, const char *why);
void smtpc_session_fail(struct smtp_client *c, const struct smtp_client_reply *r, bool quit);
size_t smtpc_out_room(const struct smtp_client *c);
void smtpc_out_append(struct smtp_client *c, const void *p, size_t n);
void smtpc_out_printf(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtpc_local(struct smtp_client_reply *r, int code, const char *status,
                 enum smtp_client_phase phase, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* smtp_client_reply.c */
size_t smtpc_reply_feed(struct smtp_client *c, const uint8_t *p, size_t len);
void smtpc_reply_reset(struct smtpc_reply_parser *rp);
void smtpc_ehlo_keyword(struct smtp_client_info *info, const char *kw, size_t len);

/* smtp_client_body.c */
void smtpc_body_begin(struct smtp_client *c);
int smtpc_body_pump(struct smtp_client *c);
int smtpc_bdat_pump(struct smtp_client *c);

#endif
