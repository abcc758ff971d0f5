/*
 * tcp_seq.h - sequence-space arithmetic modulo 2^32 (RFC 9293 §3.4) and
 * the half-open range type, shared by the TCP core and its pure modules
 * (tcp_sack.c) so those build without DPDK.
 */
#ifndef PG_TCP_SEQ_H
#define PG_TCP_SEQ_H

#include <stdint.h>

#define SEQ_LT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)

/* A sequence range [start, end). */
struct tcp_range {
	uint32_t start, end;
};

#endif
