/*
 * tlsio.c - ciphertext between a TLS stream and TCP (tlsio.h).
 */
#include <stdint.h>

#include <rte_common.h>

#include "result.h"
#include "tlsio.h"

size_t tlsio_pull(struct tls_stream *ts, struct tcp_conn *c)
{
	const uint8_t *p[2];
	uint32_t l[2];
	size_t moved = 0;

	if (tcp_recv_peek(c, &p[0], &l[0], &p[1], &l[1]) == 0)
		return 0;
	for (unsigned i = 0; i < 2; i++) {
		size_t k;

		if (l[i] == 0)
			continue;
		k = tls_stream_net_in(ts, p[i], l[i]);
		moved += k;
		if (k < l[i])
			break;
	}
	if (moved > 0)
		tcp_recv_consume(c, (uint32_t)moved);
	return moved;
}

int tlsio_send(struct tls_stream *ts, struct tcp_conn *c, const uint8_t *p, size_t n,
               size_t *taken)
{
	*taken = 0;
	while (*taken < n) {
		int k = tls_stream_write(ts, p + *taken, n - *taken);

		if (k == PG_AGAIN) {
			size_t pushed;
			int out = tlsio_push(ts, c, &pushed);

			if (out != PG_OK)
				return out;
			if (pushed == 0)
				return PG_AGAIN; /* nothing drained: never spin */
			continue;
		}
		if (k < 0)
			return PG_ERROR;
		*taken += (size_t)k;
	}
	return PG_OK;
}

int tlsio_push(struct tls_stream *ts, struct tcp_conn *c, size_t *sent)
{
	const uint8_t *p;
	size_t n;

	*sent = 0;
	while ((n = tls_stream_net_out(ts, &p)) > 0) {
		int k = tcp_send(c, p, (uint32_t)RTE_MIN(n, (size_t)UINT32_MAX));

		if (k == PG_AGAIN)
			return PG_AGAIN;
		if (k < 0)
			return PG_ERROR;
		tls_stream_net_out_consume(ts, (size_t)k);
		*sent += (size_t)k;
		if ((size_t)k < n)
			return PG_AGAIN;
	}
	return PG_OK;
}

bool tlsio_eof(const struct tls_stream *ts, struct tcp_conn *c)
{
	const uint8_t *p1, *p2;
	uint32_t l1, l2;

	if (ts != NULL && !tls_stream_drained(ts))
		return false; /* decrypted input is still to be read */
	return tcp_recv_peek(c, &p1, &l1, &p2, &l2) == 0 && tcp_recv(c, NULL, 0) == PG_DONE;
}
