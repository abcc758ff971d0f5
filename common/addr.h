/*
 * addr.h - one address type for both network layers (struct pg_addr): an
 * IPv4 or an IPv6 address with its family, compared and hashed as 20 bytes.
 * The TCP API, its flow table and the layers above take it, so one TCP
 * serves both IPv4 and IPv6. Header only, no DPDK: posternd may use it too.
 */
#ifndef PG_ADDR_H
#define PG_ADDR_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PG_AF_INET 4
#define PG_AF_INET6 6
#define PG_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

/*
 * An address of either family. Unused bytes are always zero (the
 * constructors below guarantee it), so two addresses are equal exactly
 * when their 20 bytes are; the all-zero address of a family is its
 * unspecified address ("any" in a listener).
 */
struct pg_addr {
	uint8_t family;      /* PG_AF_INET or PG_AF_INET6; 0 = none */
	uint8_t reserved[3]; /* 0 */
	union {
		uint32_t v4;    /* network order, with w[1..3] zero */
		uint8_t v6[16]; /* as on the wire */
		uint32_t w[4];
	};
};

_Static_assert(sizeof(struct pg_addr) == 20, "pg_addr is compared and hashed as 20 bytes");

static inline struct pg_addr pg_addr_v4(uint32_t net_order)
{
	struct pg_addr a;

	memset(&a, 0, sizeof(a));
	a.family = PG_AF_INET;
	a.v4 = net_order;
	return a;
}

static inline struct pg_addr pg_addr_v6(const void *bytes16)
{
	struct pg_addr a;

	memset(&a, 0, sizeof(a));
	a.family = PG_AF_INET6;
	memcpy(a.v6, bytes16, 16);
	return a;
}

/* The unspecified address of a family: "every address" for a listener. */
static inline struct pg_addr pg_addr_any(uint8_t family)
{
	struct pg_addr a;

	memset(&a, 0, sizeof(a));
	a.family = family;
	return a;
}

static inline bool pg_addr_is_v4(const struct pg_addr *a)
{
	return a->family == PG_AF_INET;
}

static inline bool pg_addr_is_v6(const struct pg_addr *a)
{
	return a->family == PG_AF_INET6;
}

static inline bool pg_addr_eq(const struct pg_addr *a, const struct pg_addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] &&
	       a->w[3] == b->w[3] && a->family == b->family;
}

/* The family's unspecified address (0.0.0.0, ::), or no family at all. */
static inline bool pg_addr_is_unspec(const struct pg_addr *a)
{
	return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0;
}

/* Text form ("198.18.0.2", "2001:db8::1"); "?" for no family. Returns buf. */
static inline const char *pg_addr_fmt(const struct pg_addr *a, char *buf, size_t len)
{
	const char *r = NULL;

	if (a->family == PG_AF_INET)
		r = inet_ntop(AF_INET, &a->v4, buf, (socklen_t)len);
	else if (a->family == PG_AF_INET6)
		r = inet_ntop(AF_INET6, a->v6, buf, (socklen_t)len);
	if (r == NULL && len > 0)
		snprintf(buf, len, "?");
	return buf;
}

/* An address in text form, either family; 0, or -1 if it is neither. */
static inline int pg_addr_parse(const char *s, struct pg_addr *a)
{
	uint8_t b[16];

	if (inet_pton(AF_INET, s, b) == 1) {
		uint32_t v;

		memcpy(&v, b, 4);
		*a = pg_addr_v4(v);
		return 0;
	}
	if (inet_pton(AF_INET6, s, b) == 1) {
		*a = pg_addr_v6(b);
		return 0;
	}
	return -1;
}

#endif
