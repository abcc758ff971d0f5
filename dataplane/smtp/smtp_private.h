/*
 * smtp_private.h - the session object of the SMTP server engine, shared by
 * its files: smtp_server.c (lifecycle, input loop, body decoders),
 * smtp_cmd.c (command table and handlers), smtp_reply.c (output buffer,
 * reply formatting, the Received: header). Not for other layers.
 */
#ifndef PG_SMTP_PRIVATE_H
#define PG_SMTP_PRIVATE_H

#include <stdarg.h>

#include "smtp_server.h"

/* Output: replies queue here; input stops being read past the watermark. */
#define SMTP_OUT_CAP 16384
#define SMTP_OUT_WATERMARK 4096
#define SMTP_REPLY_TEXT_MAX 400 /* clamp on text taken from the upper layer */
/* Body bytes are batched before data_chunk (the Received: header fits too). */
#define SMTP_BODY_BUF 16384
#define SMTP_CMD_LINE_MIN 512 /* RFC 5321 §4.5.3.1.4 */
#define SMTP_CMD_LINE_CAP 65536

/*
 * Protocol states (OpenSMTPD style: one enum, a name table, one setter).
 * The legal commands per state are in the command table (smtp_cmd.c).
 */
enum smtp_state {
	SMTP_S_GREETED,  /* greeting sent, no HELO/EHLO yet */
	SMTP_S_HELO,     /* HELO/EHLO done, no transaction */
	SMTP_S_MAIL,     /* MAIL accepted, no recipient yet */
	SMTP_S_RCPT,     /* one or more recipients accepted */
	SMTP_S_DATA,     /* reading a DATA body (RFC 5321 §4.1.1.4) */
	SMTP_S_CHUNKING, /* between BDAT chunks, LAST not seen (RFC 3030) */
	SMTP_S_COMMIT,   /* end of message with the upper layer, reply pending */
	SMTP_S_TLS,      /* STARTTLS accepted, waiting for the handshake */
	SMTP_S_CLOSED,   /* QUIT or a 421: nothing more is read */
	SMTP_S_COUNT
};

#define SMTP_SB(st) (1u << (st))
/* States in which command lines are read. */
#define SMTP_CMD_STATES                                                                            \
	(SMTP_SB(SMTP_S_GREETED) | SMTP_SB(SMTP_S_HELO) | SMTP_SB(SMTP_S_MAIL) |                   \
	 SMTP_SB(SMTP_S_RCPT) | SMTP_SB(SMTP_S_CHUNKING))

/* What the session waits for from the upper layer (PG_AGAIN upcalls). */
enum smtp_await {
	SMTP_AWAIT_NONE = 0,
	SMTP_AWAIT_MAIL,
	SMTP_AWAIT_RCPT,
	SMTP_AWAIT_DATA, /* data_start of DATA or of the first BDAT */
	SMTP_AWAIT_END,  /* message_end: the spool commit */
	SMTP_AWAIT_TLS,  /* the handshake */
};

/* Input parser modes (nginx style: the state of a resumable byte loop). */
enum smtp_in {
	SMTP_IN_LINE,      /* assembling a command line */
	SMTP_IN_LINE_SKIP, /* an overlong line: discarding up to its LF */
	SMTP_IN_DATA,      /* a dot-stuffed DATA body */
	SMTP_IN_BDAT,      /* BDAT chunk octets (stored or skipped) */
	SMTP_IN_DROP,      /* everything is discarded (TLS wait, closed) */
};

/* DATA body decoder (RFC 5321 §4.5.2 transparency, §4.1.1.4 end of data). */
enum smtp_dstate {
	SMTP_D_BOL,    /* at the start of a line */
	SMTP_D_DOT,    /* "." at the start of a line */
	SMTP_D_DOT_CR, /* ".<CR>" at the start of a line */
	SMTP_D_TEXT,   /* inside a line */
	SMTP_D_CR,     /* <CR> inside a line */
};

/* Why the current message will be refused at its end. */
enum smtp_msg_fail {
	SMTP_MSG_OK = 0,
	SMTP_MSG_BARE_LF,
	SMTP_MSG_BARE_CR,
	SMTP_MSG_SIZE,
	SMTP_MSG_STORE,
	SMTP_MSG_HOPS, /* more Received: fields than cfg.max_hops: a mail loop */
};

/*
 * Where the body stands in the message's header section (RFC 5322 §2.2,
 * §3.6.7, obsolete syntax §4.5 allowing white space before the colon), so
 * that Received: fields can be counted as the bytes go by.
 */
enum smtp_hdr {
	SMTP_H_BOL,  /* at the start of a header line */
	SMTP_H_NAME, /* in a field name */
	SMTP_H_WSP,  /* white space after a field name, before its colon */
	SMTP_H_LINE, /* in a field body (or a folded continuation line) */
	SMTP_H_BODY, /* past the header section */
};

struct smtp_server {
	struct smtp_server_config cfg;
	const struct smtp_server_ops *ops;
	enum smtp_state state;
	enum smtp_await await;
	enum smtp_in in;
	uint32_t errors;
	bool esmtp;         /* EHLO (not HELO) */
	bool tls;           /* after a completed STARTTLS */
	bool authenticated; /* reserved for AUTH (RFC 4954): ESMTPA/ESMTPSA */
	bool txn_open;      /* mail_from accepted and no end/abort yet */
	bool line_bare;     /* the last command line ended in a bare LF */
	bool starttls_drop; /* drop the rest of this input (CVE-2011-0411) */

	char hostname[SMTP_DOMAIN_MAX + 1];
	char peer_addr[64];
	char peer_name[SMTP_DOMAIN_MAX + 1];
	char helo[SMTP_DOMAIN_MAX + 1];
	char tls_info[SMTP_TLS_INFO_MAX + 1];
	char queue_id[SMTP_QUEUE_ID_MAX + 1];

	/* The transaction. */
	struct smtp_envelope env;
	struct smtp_rcpt rcpt;              /* the one being decided */
	char first_rcpt[SMTP_PATH_MAX + 1]; /* for "for <...>" in Received: */
	uint32_t rcpt_tried;                /* RCPT commands that parsed */

	/* Body. */
	enum smtp_dstate dstate;
	bool line_clean; /* the last line ended in CRLF (end of data may follow) */
	bool bdat_cr;    /* BDAT: a <CR> ended the last chunk */
	bool eod;        /* end of data seen, message end pending */
	enum smtp_msg_fail msg_fail;
	enum smtp_hdr hdr;
	uint8_t hdr_match; /* bytes of "received" matched by the field name (9: no match) */
	uint32_t hops;     /* Received: fields in the header section, ours included */
	uint64_t body_len;   /* client body bytes (Received: not counted) */
	uint64_t body_total; /* bytes given to data_chunk incl. Received: */
	uint32_t cur_line, max_line;
	bool body_bol; /* the last byte emitted ended a line (or none yet) */

	/* BDAT chunk being read. */
	uint64_t bdat_left;
	uint64_t bdat_size;
	bool bdat_last;
	bool bdat_skip; /* discarding: bdat_reply goes out at the end */
	char bdat_reply[SMTP_REPLY_TEXT_MAX + 64];

	/* Buffers. */
	size_t body_fill;
	size_t out_head, out_len;
	size_t line_len;
	bool line_long;
	uint8_t body[SMTP_BODY_BUF];
	uint8_t out[SMTP_OUT_CAP];
	char *line; /* cfg.cmd_line_max bytes, allocated with the session */
};

/* smtp_server.c */
void smtp_set_state(struct smtp_server *s, enum smtp_state st);
const char *smtp_state_name(enum smtp_state st);
void smtp_txn_reset(struct smtp_server *s, bool abort);
void smtp_close(struct smtp_server *s);
void smtp_count_error(struct smtp_server *s);
void smtp_body_begin(struct smtp_server *s);
void smtp_bdat_begin(struct smtp_server *s, uint64_t size, bool last, bool skip);
void smtp_message_done(struct smtp_server *s);

/* smtp_cmd.c */
void smtp_cmd_dispatch(struct smtp_server *s, const char *line, size_t len);
void smtp_finish_mail(struct smtp_server *s, int rc, const struct smtp_verdict *v);
void smtp_finish_rcpt(struct smtp_server *s, int rc, const struct smtp_verdict *v);
void smtp_finish_data(struct smtp_server *s, int rc, const struct smtp_verdict *v);

/* smtp_reply.c */
void smtp_reply(struct smtp_server *s, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void smtp_reply_cont(struct smtp_server *s, int code, bool last, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void smtp_reply_raw(struct smtp_server *s, const char *text);
void smtp_reply_verdict(struct smtp_server *s, const struct smtp_verdict *v, int dcode,
                        const char *dstatus, const char *dtext);
int smtp_format_verdict(char *buf, size_t size, const struct smtp_verdict *v, int dcode,
                        const char *dstatus, const char *dtext);
size_t smtp_received_header(const struct smtp_server *s, char *buf, size_t size);
const char *smtp_protocol_name(const struct smtp_server *s);

#endif
