/*
 * tcp_buf.c - the byte rings behind each connection and the data half of
 * the event API: tcp_send appends to the send ring; the receive ring holds
 * in-order data for the user (read in place with peek/consume) and, past
 * it, out-of-order data already at its final offset, so filling a hole
 * never moves bytes.
 */
#include <string.h>

#include "result.h"
#include "tcp_private.h"

int tcp_ring_alloc(struct tcp_stack *st, struct tcp_ring *r, uint32_t cap)
{
	r->buf = worker_alloc_buf(st->w, cap); /* bytes are written before read */
	if (r->buf == NULL)
		return PG_ERROR;
	st->buf_bytes += cap;
	r->cap = cap;
	r->head = 0;
	r->len = 0;
	return PG_OK;
}

void tcp_ring_free(struct tcp_stack *st, struct tcp_ring *r)
{
	st->buf_bytes -= r->cap;
	worker_free(st->w, r->buf);
	r->buf = NULL;
	r->cap = 0;
	r->head = 0;
	r->len = 0;
}

void tcp_ring_read(const struct tcp_ring *r, uint32_t off, void *dst, uint32_t n)
{
	uint32_t pos = (r->head + off) % r->cap;
	uint32_t first = r->cap - pos < n ? r->cap - pos : n;

	memcpy(dst, r->buf + pos, first);
	if (n > first)
		memcpy((uint8_t *)dst + first, r->buf, n - first);
}

void tcp_ring_write_at(struct tcp_ring *r, uint32_t off, const void *src, uint32_t n)
{
	uint32_t pos = (r->head + off) % r->cap;
	uint32_t first = r->cap - pos < n ? r->cap - pos : n;

	memcpy(r->buf + pos, src, first);
	if (n > first)
		memcpy(r->buf, (const uint8_t *)src + first, n - first);
}

void tcp_ring_write_mbuf(struct tcp_ring *r, uint32_t roff, const struct rte_mbuf *m, uint32_t off,
			 uint32_t n)
{
	/* Walk to the segment holding `off`, then copy segment by segment. */
	while (m != NULL && off >= m->data_len) {
		off -= m->data_len;
		m = m->next;
	}
	while (n > 0 && m != NULL) {
		uint32_t chunk = m->data_len - off;

		if (chunk > n)
			chunk = n;
		tcp_ring_write_at(r, roff, rte_pktmbuf_mtod_offset(m, const uint8_t *, off), chunk);
		roff += chunk;
		n -= chunk;
		off = 0;
		m = m->next;
	}
}

void tcp_ring_drop(struct tcp_ring *r, uint32_t n)
{
	r->head = (r->head + n) % r->cap;
	r->len -= n;
}

/* Receive space: what the ring can take beyond the unread in-order data. */
uint32_t tcp_rcv_space(const struct tcp_conn *c)
{
	return c->rcvq.cap - c->rcvq.len;
}

uint32_t tcp_send_space(const struct tcp_conn *c)
{
	return c->sndq.cap - c->sndq.len;
}

int tcp_send(struct tcp_conn *c, const void *buf, uint32_t len)
{
	uint32_t n;

	switch (c->state) {
	case TCPS_SYN_SENT:
	case TCPS_SYN_RECEIVED:
	case TCPS_ESTABLISHED:
	case TCPS_CLOSE_WAIT:
		break;
	default:
		return PG_ERROR;
	}
	if (c->fin_queued)
		return PG_ERROR;
	n = tcp_send_space(c);
	if (n > len)
		n = len;
	if (n < len)
		c->want_writable = true;
	if (n == 0)
		return PG_AGAIN;
	tcp_ring_write_at(&c->sndq, c->sndq.len, buf, n);
	c->sndq.len += n;
	if (tcp_state_synchronized(c->state)) {
		tcp_conn_hold(c);
		tcp_output(c);
		tcp_conn_release(c);
	}
	return (int)n;
}

uint32_t tcp_recv_peek(const struct tcp_conn *c, const uint8_t **p1, uint32_t *l1,
		       const uint8_t **p2, uint32_t *l2)
{
	const struct tcp_ring *r = &c->rcvq;
	uint32_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;

	*p1 = r->buf + r->head;
	*l1 = first;
	*p2 = r->buf;
	*l2 = r->len - first;
	return r->len;
}

void tcp_recv_consume(struct tcp_conn *c, uint32_t n)
{
	uint32_t old_wnd, new_wnd;

	if (n > c->rcvq.len)
		n = c->rcvq.len;
	if (n == 0)
		return;
	/* Out-of-order bytes sit at fixed offsets from head; they must move with it. */
	tcp_ring_drop(&c->rcvq, n);
	if (c->rcvq.len == 0 && c->nooo == 0)
		c->rcvq.head = 0; /* keeps small exchanges contiguous for peek */
	if (!tcp_state_synchronized(c->state) || c->rcv_fin || c->state == TCPS_CLOSED)
		return;
	/*
	 * Window update (RFC 9293 §3.8.6.2.2, and as Linux does): tell the
	 * peer when the window we can offer at least doubled and grew by a
	 * segment; a closed window reopening is the case that matters.
	 */
	old_wnd = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	new_wnd = tcp_rcv_space(c);
	if (new_wnd >= 2 * old_wnd && new_wnd - old_wnd >= c->mss) {
		tcp_conn_hold(c);
		c->ack_now = true;
		tcp_output(c);
		tcp_conn_release(c);
	}
}

uint32_t tcp_recv_discard(struct tcp_conn *c)
{
	const uint8_t *p1, *p2;
	uint32_t l1, l2, n = tcp_recv_peek(c, &p1, &l1, &p2, &l2);

	if (n > 0)
		tcp_recv_consume(c, n);
	return n;
}

int tcp_recv(struct tcp_conn *c, void *buf, uint32_t len)
{
	uint32_t n = c->rcvq.len < len ? c->rcvq.len : len;

	if (n > 0) {
		tcp_ring_read(&c->rcvq, 0, buf, n);
		tcp_recv_consume(c, n);
		return (int)n;
	}
	if (c->rcv_fin)
		return PG_DONE;
	if (c->state == TCPS_CLOSED)
		return c->err != TCP_ERR_NONE ? PG_ERROR : PG_DONE;
	return PG_AGAIN;
}
