/*
 * smtp_client_body.c - the message body on the wire: pulled from the
 * caller (body_read, which may say PG_AGAIN while the spool read is in
 * flight), every line ending made canonical CRLF (a bare LF or bare CR is
 * sent as CRLF - SMTP smuggling, CVE-2023-51764), long lines folded
 * (Postfix smtp_line_length_limit), then either dot-stuffed DATA ending in
 * CRLF "." CRLF (RFC 5321 §4.1.1.4, §4.5.2) or BDAT chunks (RFC 3030).
 */
#include <stdio.h>
#include <string.h>

#include "smtp_client_private.h"

/* Worst case output for one input octet: CR LF (pending CR) + "." + octet, or fold. */
#define ENC_MAX_STEP 6

void smtpc_body_begin(struct smtp_client *c)
{
	memset(&c->enc, 0, sizeof(c->enc));
	c->enc.bol = true;
	c->chunk_fill = 0;
	c->bdat_wait = c->bdat_last = false;
}

static void put_crlf(struct smtpc_encoder *e, uint8_t *dst, size_t *o)
{
	dst[(*o)++] = '\r';
	dst[(*o)++] = '\n';
	e->bol = true;
	e->linelen = 0;
}

/*
 * Encode from the current span into dst[0..room); returns octets written.
 * Stops when the span is used up or dst is nearly full.
 */
static size_t encode(struct smtp_client *c, uint8_t *dst, size_t room, bool stuff)
{
	struct smtpc_encoder *e = &c->enc;
	uint32_t limit = c->cfg.line_limit;
	size_t o = 0;

	while (e->off < e->n && o + ENC_MAX_STEP <= room) {
		uint8_t ch = e->p[e->off];

		if (e->cr) {
			/* CR LF, or a bare CR sent as CR LF. */
			e->cr = false;
			put_crlf(e, dst, &o);
			if (ch == '\n') {
				e->off++;
				continue;
			}
		}
		if (ch == '\r') {
			e->cr = true;
			e->off++;
			continue;
		}
		if (ch == '\n') {
			put_crlf(e, dst, &o); /* bare LF */
			e->off++;
			continue;
		}
		if (limit && e->linelen >= limit) {
			/* Fold: the continuation starts with a space, so never a "." line. */
			put_crlf(e, dst, &o);
			dst[o++] = ' ';
			e->linelen = 1;
			e->bol = false;
		}
		if (e->bol && ch == '.' && stuff) {
			dst[o++] = '.'; /* RFC 5321 §4.5.2 transparency */
			e->linelen++;
		}
		/* A run of plain octets in one go. */
		{
			size_t j = e->off, max = room - o;
			if (limit && limit - e->linelen < max)
				max = limit - e->linelen;
			while (j < e->n && j - e->off < max && e->p[j] != '\r' && e->p[j] != '\n')
				j++;
			if (j == e->off)
				j++; /* cannot happen: max >= 1 */
			memcpy(dst + o, e->p + e->off, j - e->off);
			o += j - e->off;
			e->linelen += (uint32_t)(j - e->off);
			e->off = j;
			e->bol = false;
		}
	}
	return o;
}

/* The end of the body: a pending CR, and a final line ending if missing. */
static size_t encode_end(struct smtpc_encoder *e, uint8_t *dst)
{
	size_t o = 0;

	if (e->cr || !e->bol) {
		e->cr = false;
		put_crlf(e, dst, &o);
	}
	return o;
}

/*
 * Ask the caller for more body. PG_OK (a span), PG_DONE (end), PG_AGAIN,
 * PG_ERROR.
 */
static int refill(struct smtp_client *c)
{
	struct smtpc_encoder *e = &c->enc;
	const uint8_t *p = NULL;
	size_t n = 0;
	int rc;

	if (e->eof)
		return PG_DONE;
	if (e->off < e->n)
		return PG_OK;
	rc = c->ops->body_read(c, &p, &n, c->cfg.owner);
	if (rc == PG_OK && (n == 0 || !p))
		rc = PG_AGAIN; /* nothing given: treat as "not yet" */
	if (rc == PG_OK) {
		e->p = p;
		e->n = n;
		e->off = 0;
	} else if (rc == PG_DONE) {
		e->eof = true;
		e->p = NULL;
		e->n = e->off = 0;
	}
	return rc;
}

/* Local failure while the body is on its way: the connection must go. */
static int body_error(struct smtp_client *c)
{
	struct smtp_client_reply r;

	/* Never "." after a partial body: that would deliver a truncated message. */
	smtpc_local(&r, 451, "4.3.0", SMTP_PHASE_BODY, "Error reading the queued message");
	smtpc_session_fail(c, &r, false);
	return PG_DONE;
}

/*
 * DATA body into the output. PG_OK: all sent, "." written and the state is
 * DOT; PG_AGAIN: output full or body_read said "not yet"; PG_DONE: failed.
 */
int smtpc_body_pump(struct smtp_client *c)
{
	for (;;) {
		size_t room = smtpc_out_room(c);
		int rc;

		if (room < 64 || c->out_len >= SMTPC_OUT_FILL)
			return PG_AGAIN;
		rc = refill(c);
		if (rc == PG_AGAIN)
			return PG_AGAIN;
		if (rc == PG_ERROR)
			return body_error(c);
		if (rc == PG_DONE) {
			uint8_t end[8];
			size_t n = encode_end(&c->enc, end);
			memcpy(end + n, ".\r\n", 3);
			smtpc_out_append(c, end, n + 3);
			smtpc_set_state(c, SMTPC_S_DOT);
			return PG_OK;
		}
		{
			uint8_t *dst = c->out + c->out_head + c->out_len;
			size_t lim = SMTPC_OUT_FILL - c->out_len;
			if (lim > room)
				lim = room;
			c->out_len += encode(c, dst, lim, true);
		}
	}
}

/*
 * BDAT: fill a chunk, then "BDAT n [LAST]" and the chunk, then wait for
 * its reply (smtp_client.c calls again after a 250). Same results as
 * smtpc_body_pump; PG_OK means a chunk is out and its reply awaited.
 */
int smtpc_bdat_pump(struct smtp_client *c)
{
	char cmd[48];
	int n;

	if (c->bdat_wait)
		return PG_OK;
	for (;;) {
		int rc;

		if (c->chunk_fill + ENC_MAX_STEP > sizeof(c->chunk))
			break; /* full: send it */
		rc = refill(c);
		if (rc == PG_AGAIN)
			return PG_AGAIN;
		if (rc == PG_ERROR)
			return body_error(c);
		if (rc == PG_DONE) {
			c->chunk_fill += encode_end(&c->enc, c->chunk + c->chunk_fill);
			c->bdat_last = true;
			break;
		}
		c->chunk_fill +=
		    encode(c, c->chunk + c->chunk_fill, sizeof(c->chunk) - c->chunk_fill, false);
	}
	n = snprintf(cmd, sizeof(cmd), "BDAT %zu%s\r\n", c->chunk_fill,
	             c->bdat_last ? " LAST" : "");
	if (smtpc_out_room(c) < (size_t)n + c->chunk_fill ||
	    c->out_len + (size_t)n + c->chunk_fill > SMTPC_OUT_CAP - 1024)
		return PG_AGAIN; /* wait for the output to drain */
	smtpc_out_append(c, cmd, (size_t)n);
	smtpc_out_append(c, c->chunk, c->chunk_fill);
	c->chunk_fill = 0;
	c->bdat_wait = true;
	return PG_OK;
}
