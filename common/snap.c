/*
 * snap.c - validation of and access to a control snapshot blob
 * (common/snap_format.h). The dataplane runs snap_validate once per new
 * generation before it adopts anything, so a corrupt or truncated blob, or
 * one from a different ABI, is refused with a message instead of crashing a
 * worker. Every field is checked before it is used to reach another one.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "result.h"
#include "settings.h"
#include "snap_format.h"

#define SNAP_CHECKSUM_OFF offsetof(struct snap_header, checksum)
#define SNAP_ALIGN 8u

static int snap_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int snap_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return PG_ERROR;
}

/*
 * crc32 over the blob as if the checksum field were 0, computed in three
 * pieces so the blob (possibly a read-only mapping) is never written.
 */
uint32_t snap_checksum(const void *blob, size_t len)
{
	static const uint8_t zero[sizeof(uint32_t)];
	const uint8_t *p = blob;
	uLong crc = crc32_z(0L, Z_NULL, 0);
	size_t head = len < SNAP_CHECKSUM_OFF ? len : SNAP_CHECKSUM_OFF;
	size_t mid;

	crc = crc32_z(crc, p, head);
	if (len <= head)
		return (uint32_t)crc;
	mid = len - head < sizeof(zero) ? len - head : sizeof(zero);
	crc = crc32_z(crc, zero, mid);
	if (len > head + mid)
		crc = crc32_z(crc, p + head + mid, len - head - mid);
	return (uint32_t)crc;
}

/* Element size of the known section kinds; 0 for kinds a reader skips. */
static size_t snap_elem_size(uint32_t kind)
{
	switch (kind) {
	case SNAP_SEC_STRINGS:
		return 1;
	case SNAP_SEC_DATAPLANE:
		return sizeof(struct snap_dataplane);
	case SNAP_SEC_PORTS:
		return sizeof(struct snap_port);
	case SNAP_SEC_ROUTES:
		return sizeof(struct snap_route);
	case SNAP_SEC_RELAY:
		return sizeof(struct snap_relay);
	case SNAP_SEC_TLS_POLICY:
		return sizeof(struct snap_tls_policy);
	case SNAP_SEC_TRANSPORT:
		return sizeof(struct snap_transport);
	case SNAP_SEC_NEXTHOPS:
		return sizeof(struct snap_nexthop);
	case SNAP_SEC_MYNETWORKS:
		return sizeof(struct snap_cidr);
	case SNAP_SEC_RELAY_DOMAINS:
		return sizeof(struct snap_name_key);
	case SNAP_SEC_TLS_POLICY_INDEX:
	case SNAP_SEC_TRANSPORT_INDEX:
	case SNAP_SEC_RELAY_DOMAINS_INDEX:
		return sizeof(uint32_t);
	case SNAP_SEC_TLS_CERTS:
		return sizeof(struct snap_tls_cert);
	case SNAP_SEC_TLS_CERT_NAMES:
		return sizeof(struct snap_str);
	case SNAP_SEC_TLS_CERT_CHAIN:
		return sizeof(struct snap_bytes);
	case SNAP_SEC_TLS_DER:
		return 1;
	case SNAP_SEC_DIAG_CLIENT:
		return sizeof(struct snap_diag_client);
	case SNAP_SEC_TCP:
		return sizeof(struct snap_tcp);
	case SNAP_SEC_SMTP:
		return sizeof(struct snap_smtp);
	case SNAP_SEC_INBOUND_TLS:
		return sizeof(struct snap_inbound_tls);
	case SNAP_SEC_INBOUND_TLS_NETWORKS:
		return sizeof(struct snap_cidr);
	case SNAP_SEC_INBOUND_TLS_SENDERS:
		return sizeof(struct snap_name_key);
	case SNAP_SEC_INBOUND_TLS_SENDERS_INDEX:
		return sizeof(uint32_t);
	case SNAP_SEC_DELIVERY:
		return sizeof(struct snap_delivery);
	case SNAP_SEC_TLS_TRUST:
		return sizeof(struct snap_tls_trust);
	case SNAP_SEC_TLS_TRUST_DER:
		return 1;
	case SNAP_SEC_TLS_TICKET_KEYS:
		return sizeof(struct snap_tls_ticket_key);
	case SNAP_SEC_PORTS6:
		return sizeof(struct snap_port6);
	case SNAP_SEC_ROUTES6:
		return sizeof(struct snap_route6);
	case SNAP_SEC_DIAG_CLIENT6:
		return sizeof(struct snap_diag_client6);
	case SNAP_SEC_MYNETWORKS6:
	case SNAP_SEC_INBOUND_TLS_NETWORKS6:
		return sizeof(struct snap_cidr6);
	case SNAP_SEC_SETTINGS:
		return sizeof(struct snap_setting);
	case SNAP_SEC_SENDER_TLS:
		return sizeof(struct snap_sender_tls);
	case SNAP_SEC_SENDER_TLS_INDEX:
	case SNAP_SEC_SENDER_TLS_NETWORKS:
	case SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX:
		return sizeof(uint32_t);
	case SNAP_SEC_INBOUND_TLS_RECIPIENTS:
		return sizeof(struct snap_name_key);
	case SNAP_SEC_DNS:
		return sizeof(struct snap_dns);
	case SNAP_SEC_SENDER_TLS_NETWORKS6:
		return sizeof(struct snap_sender_net6);
	}
	return 0;
}

/* ABI 1.4 TCP settings: every field in the range postern.conf allows. */
static int snap_check_tcp(const struct snap_tcp *t, char *err, size_t errlen)
{
	const bool ka = t->keepalive_idle_ns != 0;
	const struct {
		const char *name;
		uint64_t v, lo, hi;
	} f[] = {
	    {"max_conns", t->max_conns, 1, SNAP_TCP_CONNS_MAX},
	    {"syn_backlog", t->syn_backlog, 1, SNAP_TCP_BACKLOG_MAX},
	    {"max_buf_bytes", t->max_buf_bytes, SNAP_TCP_MEM_MIN, SNAP_TCP_MEM_MAX},
	    {"sndbuf", t->sndbuf, SNAP_TCP_BUF_MIN, SNAP_TCP_BUF_MAX},
	    {"rcvbuf", t->rcvbuf, SNAP_TCP_BUF_MIN, SNAP_TCP_BUF_MAX},
	    {"keepalive_idle_ns", t->keepalive_idle_ns, ka ? SNAP_TCP_KA_IDLE_MIN_NS : 0,
	     ka ? SNAP_TCP_KA_IDLE_MAX_NS : 0},
	    {"keepalive_intvl_ns", t->keepalive_intvl_ns, ka ? SNAP_TCP_KA_INTVL_MIN_NS : 0,
	     ka ? SNAP_TCP_KA_INTVL_MAX_NS : 0},
	    {"keepalive_probes", t->keepalive_probes, ka ? 1 : 0, ka ? SNAP_TCP_KA_PROBES_MAX : 0},
	    {"max_retries", t->max_retries, SNAP_TCP_RETRIES_MIN, SNAP_TCP_RETRIES_MAX},
	    {"cc", t->cc, SNAP_TCP_CC_CUBIC, SNAP_TCP_CC_NEWRENO},
	    {"watermark_pct", t->watermark_pct, SNAP_TCP_WATERMARK_MIN, SNAP_TCP_WATERMARK_MAX},
	    {"reserved", t->reserved, 0, 0},
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v < f[i].lo || f[i].v > f[i].hi)
			return snap_fail(err, errlen,
			                 "tcp section: %s %" PRIu64 " out of range %" PRIu64
			                 "..%" PRIu64,
			                 f[i].name, f[i].v, f[i].lo, f[i].hi);
	if ((t->flags & ~SNAP_TCP_F_ALL) != 0)
		return snap_fail(err, errlen, "tcp section: unknown flags 0x%x",
		                 (unsigned)(t->flags & ~SNAP_TCP_F_ALL));
	if ((uint64_t)t->sndbuf + t->rcvbuf > t->max_buf_bytes)
		return snap_fail(err, errlen,
		                 "tcp section: sndbuf + rcvbuf exceed max_buf_bytes %" PRIu64,
		                 t->max_buf_bytes);
	return PG_OK;
}

/*
 * ABI 2.0 settings: ids strictly increasing (no key twice), reserved 0,
 * every id this reader knows within the range settings.h gives it; an id
 * it does not know comes from a newer posternd and is skipped.
 */
static int snap_check_settings(const struct snap_setting *st, uint32_t n, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct setting_def *d =
		    st[i].id < SET__COUNT ? &setting_defs[st[i].id] : NULL;

		if (i > 0 && st[i].id <= st[i - 1].id)
			return snap_fail(err, errlen,
			                 "settings section: id %" PRIu32 " after %" PRIu32
			                 " (not increasing)",
			                 st[i].id, st[i - 1].id);
		if (st[i].reserved != 0)
			return snap_fail(err, errlen,
			                 "settings section: entry %" PRIu32 " reserved not 0", i);
		if (d != NULL && (st[i].value < d->min || st[i].value > d->max))
			return snap_fail(err, errlen,
			                 "settings section: %s %" PRIu64 " out of range %" PRIu64
			                 "..%" PRIu64,
			                 d->name, st[i].value, d->min, d->max);
	}
	return PG_OK;
}

/*
 * The delivery section (its scalars are settings): the schedule's used
 * entries 1 s..1 d and the unused ones 0, so a reader may index
 * schedule_s[] by nschedule - 1 without a check of its own.
 */
static int snap_check_delivery(const struct snap_delivery *d, char *err, size_t errlen)
{
	const struct {
		const char *name;
		uint64_t v, lo, hi;
	} f[] = {
	    {"flags", d->flags, 0, 0},
	    {"nschedule", d->nschedule, 1, SNAP_DELIVERY_SCHEDULE_MAX},
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v < f[i].lo || f[i].v > f[i].hi)
			return snap_fail(err, errlen,
			                 "delivery section: %s %" PRIu64 " out of range %" PRIu64
			                 "..%" PRIu64,
			                 f[i].name, f[i].v, f[i].lo, f[i].hi);
	for (uint32_t i = 0; i < SNAP_DELIVERY_SCHEDULE_MAX; i++) {
		bool used = i < d->nschedule;
		uint32_t lo = used ? 1 : 0, hi = used ? SNAP_DELIVERY_RETRY_MAX_S : 0;

		if (d->schedule_s[i] < lo || d->schedule_s[i] > hi)
			return snap_fail(err, errlen,
			                 "delivery section: schedule_s[%" PRIu32 "] %" PRIu32
			                 " out of range %" PRIu32 "..%" PRIu32
			                 " (nschedule %" PRIu32 ")",
			                 i, d->schedule_s[i], lo, hi, d->nschedule);
	}
	for (size_t i = 0; i < sizeof(d->reserved) / sizeof(d->reserved[0]); i++)
		if (d->reserved[i] != 0)
			return snap_fail(err, errlen, "delivery section: reserved[%zu] not 0", i);
	return PG_OK;
}

/*
 * ABI 1.8 session-ticket keys: at most two; OpenSSL's ticket callback finds
 * the decryption key by name, so a name must be set and the two distinct.
 */
static int snap_check_ticket_keys(const struct snap_tls_ticket_key *k, uint32_t n, char *err,
                                  size_t errlen)
{
	static const uint8_t zero[sizeof(k->name)];

	if (n > SNAP_TICKET_KEYS_MAX)
		return snap_fail(err, errlen, "ticket key section count %" PRIu32 ", at most %d", n,
		                 SNAP_TICKET_KEYS_MAX);
	for (uint32_t i = 0; i < n; i++)
		if (memcmp(k[i].name, zero, sizeof(zero)) == 0)
			return snap_fail(err, errlen, "ticket key %" PRIu32 ": name is all zero",
			                 i);
	if (n == 2 && memcmp(k[0].name, k[1].name, sizeof(k[0].name)) == 0)
		return snap_fail(err, errlen, "ticket keys 0 and 1 have the same name");
	return PG_OK;
}

/*
 * ABI 2.3 IPv6 sections, each on its own: counts within the limits,
 * prefix lengths, the diag client's fields; reserved fields 0. How ports
 * and routes relate (route order, port indexes) is checked at adoption,
 * as for IPv4.
 */
static int snap_check_ipv6(const struct snap_section *s, const uint8_t *p, char *err, size_t errlen)
{
	if (s->kind == SNAP_SEC_PORTS6) {
		const struct snap_port6 *pt = (const void *)p;

		if (s->count > SNAP_MAX_PORTS)
			return snap_fail(err, errlen, "%" PRIu32 " IPv6 ports, at most %d",
			                 s->count, SNAP_MAX_PORTS);
		for (uint32_t i = 0; i < s->count; i++)
			if (pt[i].prefix_len > 128 || pt[i].reserved != 0 ||
			    (pt[i].prefix_len != 0 && pt[i].addr[0] == 0xff))
				return snap_fail(err, errlen, "IPv6 port %" PRIu32 ": bad address",
				                 i);
	} else if (s->kind == SNAP_SEC_ROUTES6) {
		const struct snap_route6 *r = (const void *)p;

		if (s->count > SNAP_MAX_ROUTES)
			return snap_fail(err, errlen, "%" PRIu32 " IPv6 routes, at most %d",
			                 s->count, SNAP_MAX_ROUTES);
		for (uint32_t i = 0; i < s->count; i++)
			if (r[i].prefix_len > 128 || r[i].port >= SNAP_MAX_PORTS ||
			    r[i].reserved != 0)
				return snap_fail(err, errlen,
				                 "IPv6 route %" PRIu32 ": out of range", i);
	} else {
		const struct snap_diag_client6 *d = (const void *)p;

		if (s->count > 1)
			return snap_fail(err, errlen,
			                 "IPv6 diag client section count %" PRIu32
			                 ", expected 0 or 1",
			                 s->count);
		if (s->count == 1 &&
		    (d->addr[0] == 0xff || d->port == 0 || d->mode < 1 || d->mode > 3 ||
		     d->bytes == 0 || d->bytes > SNAP_DIAG_BYTES_MAX || d->count == 0 ||
		     d->count > SNAP_DIAG_COUNT_MAX))
			return snap_fail(err, errlen,
			                 "IPv6 diag client section: field out of range");
	}
	return 0;
}

static int snap_validate_section(const uint8_t *base, uint64_t size, uint64_t dir_end, uint32_t i,
                                 const struct snap_section *s, char *err, size_t errlen)
{
	size_t esize = snap_elem_size(s->kind);

	if (s->offset % SNAP_ALIGN != 0)
		return snap_fail(err, errlen,
		                 "section %" PRIu32 ": offset %" PRIu64 " not 8-byte aligned", i,
		                 s->offset);
	if (s->offset < dir_end || s->offset > size || s->size > size - s->offset)
		return snap_fail(err, errlen,
		                 "section %" PRIu32 ": [%" PRIu64 ", +%" PRIu64
		                 ") outside the blob [%" PRIu64 ", %" PRIu64 ")",
		                 i, s->offset, s->size, dir_end, size);
	if (esize == 0)
		return PG_OK; /* unknown kind from a newer minor: skipped by readers */
	/* count * esize must fit in size; divide rather than multiply (overflow) */
	if (s->count > s->size / esize)
		return snap_fail(err, errlen,
		                 "section %" PRIu32 " (kind %" PRIu32 "): %" PRIu32
		                 " elements do not fit in %" PRIu64 " bytes",
		                 i, s->kind, s->count, s->size);
	switch (s->kind) {
	case SNAP_SEC_STRINGS:
		/* snap_string relies on every string being NUL-terminated */
		if (s->size == 0 || base[s->offset + s->size - 1] != '\0')
			return snap_fail(err, errlen, "strings section not NUL-terminated");
		break;
	case SNAP_SEC_DATAPLANE:
		if (s->count != 1)
			return snap_fail(err, errlen,
			                 "dataplane section count %" PRIu32 ", expected 1",
			                 s->count);
		break;
	case SNAP_SEC_PORTS:
		if (s->count > SNAP_MAX_PORTS)
			return snap_fail(err, errlen, "%" PRIu32 " ports, at most %d", s->count,
			                 SNAP_MAX_PORTS);
		break;
	case SNAP_SEC_ROUTES:
		if (s->count > SNAP_MAX_ROUTES)
			return snap_fail(err, errlen, "%" PRIu32 " routes, at most %d", s->count,
			                 SNAP_MAX_ROUTES);
		break;
	case SNAP_SEC_RELAY:
		if (s->count != 1)
			return snap_fail(err, errlen, "relay section count %" PRIu32 ", expected 1",
			                 s->count);
		break;
	case SNAP_SEC_DIAG_CLIENT:
		if (s->count > 1)
			return snap_fail(err, errlen,
			                 "diag client section count %" PRIu32 ", expected 0 or 1",
			                 s->count);
		if (s->count == 1) {
			const struct snap_diag_client *d = (const void *)(base + s->offset);

			if (d->addr == 0 || d->port == 0 || d->mode < 1 || d->mode > 3 ||
			    d->bytes == 0 || d->bytes > SNAP_DIAG_BYTES_MAX || d->count == 0 ||
			    d->count > SNAP_DIAG_COUNT_MAX)
				return snap_fail(err, errlen,
				                 "diag client section: field out of range");
		}
		break;
	case SNAP_SEC_PORTS6:
	case SNAP_SEC_ROUTES6:
	case SNAP_SEC_DIAG_CLIENT6:
		return snap_check_ipv6(s, base + s->offset, err, errlen);
	case SNAP_SEC_TCP:
		if (s->count != 1)
			return snap_fail(err, errlen, "tcp section count %" PRIu32 ", expected 1",
			                 s->count);
		return snap_check_tcp((const void *)(base + s->offset), err, errlen);
	case SNAP_SEC_SMTP:
		/* the fields, strings included, are checked with the names */
		if (s->count != 1)
			return snap_fail(err, errlen, "smtp section count %" PRIu32 ", expected 1",
			                 s->count);
		break;
	case SNAP_SEC_DELIVERY:
		/* exactly one element of exactly this size: a longer one is not this ABI's */
		if (s->count != 1)
			return snap_fail(err, errlen,
			                 "delivery section count %" PRIu32 ", expected 1",
			                 s->count);
		if (s->size != sizeof(struct snap_delivery))
			return snap_fail(err, errlen,
			                 "delivery section size %" PRIu64 ", expected %zu", s->size,
			                 sizeof(struct snap_delivery));
		return snap_check_delivery((const void *)(base + s->offset), err, errlen);
	case SNAP_SEC_TLS_TICKET_KEYS:
		return snap_check_ticket_keys((const void *)(base + s->offset), s->count, err,
		                              errlen);
	case SNAP_SEC_SETTINGS:
		return snap_check_settings((const void *)(base + s->offset), s->count, err, errlen);
	case SNAP_SEC_DNS:
		if (s->count > 1 || s->size != (uint64_t)s->count * sizeof(struct snap_dns))
			return snap_fail(err, errlen,
			                 "dns section count %" PRIu32 " size %" PRIu64
			                 ", expected 0 or 1 of %zu bytes",
			                 s->count, s->size, sizeof(struct snap_dns));
		break;
	}
	return PG_OK;
}

/* ---- ABI 1.1 name tables: checked once every section is in the blob ---- */

struct snap_names {
	const struct snap_header *h;
	const char *strings;
	uint64_t strings_size; /* 0: no strings section */
	char *err;
	size_t errlen;
};

/* A string inside the strings section, NUL right after it and none inside. */
static int snap_check_str(const struct snap_names *v, struct snap_str s, const char *what,
                          uint32_t i)
{
	if (s.off == 0 && s.len == 0)
		return PG_OK;
	if (v->strings_size == 0 || s.off >= v->strings_size || s.len >= v->strings_size - s.off ||
	    v->strings[s.off + s.len] != '\0' || memchr(v->strings + s.off, '\0', s.len) != NULL)
		return snap_fail(v->err, v->errlen,
		                 "%s of entry %" PRIu32 ": string [%" PRIu32 ", +%" PRIu32
		                 ") is not a string of the strings section",
		                 what, i, s.off, s.len);
	return PG_OK;
}

static uint64_t snap_hash(const char *s, size_t len)
{
	uint64_t h = SNAP_NAME_HASH_OFFSET;

	while (len-- > 0) {
		h ^= (uint8_t)s[len];
		h *= SNAP_NAME_HASH_PRIME;
	}
	return h;
}

static int snap_check_key(const struct snap_names *v, const struct snap_name_key *k,
                          const char *table, uint32_t i, uint32_t kinds)
{
	if (snap_check_str(v, k->name, table, i) != 0)
		return PG_ERROR;
	if (k->name.len == 0 || k->name.len > SNAP_NAME_MAX)
		return snap_fail(v->err, v->errlen, "%s entry %" PRIu32 ": key length %" PRIu32,
		                 table, i, k->name.len);
	if (k->kind > 31 || !(kinds & (1u << k->kind)))
		return snap_fail(v->err, v->errlen, "%s entry %" PRIu32 ": key kind %" PRIu32,
		                 table, i, k->kind);
	if (snap_hash(v->strings + k->name.off, k->name.len) != k->hash)
		return snap_fail(v->err, v->errlen,
		                 "%s entry %" PRIu32 ": hash does not match its key", table, i);
	return PG_OK;
}

/*
 * An index over n entries: a power of two of buckets, each 0 or 1 + an
 * entry, exactly n of them used (so at least one is empty and every probe
 * ends), and every entry reachable from its home bucket without crossing an
 * empty one.
 */
static int snap_check_index(const struct snap_names *v, const char *table, const uint32_t *buckets,
                            uint32_t nb, const uint8_t *entries, size_t stride, uint32_t n)
{
	uint32_t used = 0;

	if (nb == 0 || (nb & (nb - 1)) != 0 || n >= nb)
		return snap_fail(v->err, v->errlen,
		                 "%s index: %" PRIu32 " buckets for %" PRIu32
		                 " entries (a power of two above the entry count)",
		                 table, nb, n);
	for (uint32_t i = 0; i < nb; i++) {
		if (buckets[i] > n)
			return snap_fail(v->err, v->errlen,
			                 "%s index: bucket %" PRIu32 " refers to entry %" PRIu32
			                 " of %" PRIu32,
			                 table, i, buckets[i], n);
		used += buckets[i] != 0;
	}
	if (used != n)
		return snap_fail(v->err, v->errlen,
		                 "%s index: %" PRIu32 " buckets used for %" PRIu32 " entries",
		                 table, used, n);
	for (uint32_t e = 0; e < n; e++) {
		const struct snap_name_key *k = (const void *)(entries + (size_t)e * stride);
		uint32_t j = (uint32_t)k->hash & (nb - 1), steps = 0;

		while (buckets[j] != e + 1 && buckets[j] != 0 && steps++ < nb)
			j = (j + 1) & (nb - 1);
		if (buckets[j] != e + 1)
			return snap_fail(v->err, v->errlen,
			                 "%s index: entry %" PRIu32 " cannot be found", table, e);
	}
	return PG_OK;
}

static const struct snap_section *snap_find(const struct snap_header *h, uint32_t kind)
{
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == kind)
			return &h->sections[i];
	return NULL;
}

/* A table and its index come together or not at all. */
static int snap_check_table(const struct snap_names *v, uint32_t kind, uint32_t index_kind,
                            const char *table, size_t stride, uint32_t kinds,
                            const uint8_t **entries_out, uint32_t *n_out)
{
	const struct snap_section *t = snap_find(v->h, kind), *x = snap_find(v->h, index_kind);
	const uint8_t *base = (const uint8_t *)v->h;

	*entries_out = NULL;
	*n_out = 0;
	if (t == NULL && x == NULL)
		return PG_OK;
	if (t == NULL || x == NULL)
		return snap_fail(v->err, v->errlen,
		                 "%s: table without its index or index without"
		                 " its table",
		                 table);
	for (uint32_t i = 0; i < t->count; i++)
		if (snap_check_key(v, (const void *)(base + t->offset + (size_t)i * stride), table,
		                   i, kinds) != 0)
			return PG_ERROR;
	if (snap_check_index(v, table, (const uint32_t *)(base + x->offset), x->count,
	                     base + t->offset, stride, t->count) != 0)
		return PG_ERROR;
	*entries_out = base + t->offset;
	*n_out = t->count;
	return PG_OK;
}

static int snap_check_tls(const struct snap_names *v, const struct snap_tls_policy *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (p[i].level > SNAP_TLS_LEVEL_MAX || p[i].ciphers > SNAP_TLS_GRADE_MAX ||
		    (p[i].protocols & ~SNAP_TLS_P_ALL) != 0 || (p[i].flags & ~SNAP_TLS_F_ALL) != 0)
			return snap_fail(v->err, v->errlen,
			                 "tls_policy entry %" PRIu32 ": level, ciphers, protocols"
			                 " or flags out of range",
			                 i);
		if (snap_check_str(v, p[i].match, "tls_policy match", i) != 0 ||
		    snap_check_str(v, p[i].exclude, "tls_policy exclude", i) != 0 ||
		    snap_check_str(v, p[i].servername, "tls_policy servername", i) != 0 ||
		    snap_check_str(v, p[i].tafile, "tls_policy tafile", i) != 0 ||
		    snap_check_str(v, p[i].text, "tls_policy text", i) != 0)
			return PG_ERROR;
	}
	return PG_OK;
}

static int snap_check_transport(const struct snap_names *v, const struct snap_transport *t,
                                uint32_t n)
{
	const struct snap_section *ns = snap_find(v->h, SNAP_SEC_NEXTHOPS);
	const struct snap_nexthop *nh =
	    ns != NULL ? (const void *)((const uint8_t *)v->h + ns->offset) : NULL;
	uint32_t nnh = ns != NULL ? ns->count : 0;

	for (uint32_t i = 0; i < n; i++) {
		if (t[i].nexthop_count > nnh || t[i].nexthop_first > nnh - t[i].nexthop_count)
			return snap_fail(v->err, v->errlen,
			                 "transport entry %" PRIu32 ": next hops [%" PRIu32
			                 ", +%" PRIu32 ") outside the %" PRIu32 " next hops",
			                 i, t[i].nexthop_first, t[i].nexthop_count, nnh);
		if (snap_check_str(v, t[i].text, "transport text", i) != 0)
			return PG_ERROR;
	}
	for (uint32_t i = 0; i < nnh; i++) {
		if (nh[i].port == 0 ||
		    (nh[i].flags & ~(SNAP_NH_F_NO_MX | SNAP_NH_F_IP | SNAP_NH_F_IP6)) != 0 ||
		    (nh[i].flags & SNAP_NH_F_IP6 &&
		     (nh[i].flags & SNAP_NH_F_IP || nh[i].addr != 0)) ||
		    nh[i].host.len == 0 || nh[i].dest.len == 0)
			return snap_fail(v->err, v->errlen,
			                 "next hop %" PRIu32 ": port, flags or name missing", i);
		if (snap_check_str(v, nh[i].host, "next hop host", i) != 0 ||
		    snap_check_str(v, nh[i].dest, "next hop destination", i) != 0)
			return PG_ERROR;
	}
	return PG_OK;
}

/* ---- ABI 2.2 DNS ---- */

static int snap_check_dns(const struct snap_names *v)
{
	const struct snap_section *sec = snap_find(v->h, SNAP_SEC_DNS);
	const struct snap_dns *d;
	const struct snap_str *f[3];
	static const char *const what[3] = {"dns trust_anchor_file", "dns root_hints_file",
	                                    "dns unbound_conf"};

	if (sec == NULL || sec->count == 0)
		return PG_OK;
	d = (const void *)((const uint8_t *)v->h + sec->offset);
	if (d->flags != 0 || d->reserved != 0 || d->nresolvers > SNAP_DNS_RESOLVERS_MAX)
		return snap_fail(v->err, v->errlen,
		                 "dns section: flags 0x%x, reserved, or %" PRIu32
		                 " resolvers (max %d)",
		                 (unsigned)d->flags, d->nresolvers, SNAP_DNS_RESOLVERS_MAX);
	f[0] = &d->trust_anchor_file;
	f[1] = &d->root_hints_file;
	f[2] = &d->unbound_conf;
	for (int i = 0; i < 3; i++) {
		if (snap_check_str(v, *f[i], what[i], 0) != 0)
			return PG_ERROR;
		if (f[i]->len > 0 && v->strings[f[i]->off] != '/')
			return snap_fail(v->err, v->errlen, "%s: not an absolute path", what[i]);
	}
	return PG_OK;
}

/* ---- ABI 1.5 SMTP service ---- */

static int snap_check_smtp(const struct snap_names *v)
{
	const struct snap_section *sec = snap_find(v->h, SNAP_SEC_SMTP);
	const struct snap_smtp *t;
	const char *name, *dir;
	const struct {
		const char *name;
		uint64_t v, lo, hi;
	} f[] = {
	    {"listen_port", 0, 1, 65535},
	    {"pad", 0, 0, 0},
	    {"reserved", 0, 0, 0},
	};
	uint64_t val[sizeof(f) / sizeof(f[0])];

	if (sec == NULL)
		return PG_OK;
	t = (const void *)((const uint8_t *)v->h + sec->offset);
	val[0] = t->listen_port;
	val[1] = t->pad;
	val[2] = t->reserved;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (val[i] < f[i].lo || val[i] > f[i].hi)
			return snap_fail(v->err, v->errlen,
			                 "smtp section: %s %" PRIu64 " out of range %" PRIu64
			                 "..%" PRIu64,
			                 f[i].name, val[i], f[i].lo, f[i].hi);
	if ((t->flags & ~SNAP_SMTP_F_ALL) != 0)
		return snap_fail(v->err, v->errlen, "smtp section: unknown flags 0x%x",
		                 (unsigned)(t->flags & ~SNAP_SMTP_F_ALL));
	if (snap_check_str(v, t->myhostname, "smtp myhostname", 0) != 0 ||
	    snap_check_str(v, t->spool_directory, "smtp spool_directory", 0) != 0)
		return PG_ERROR;
	/* a non-empty string was found inside the strings section just above */
	if (t->myhostname.len == 0 || t->myhostname.len > SNAP_SMTP_HOSTNAME_MAX)
		return snap_fail(v->err, v->errlen, "smtp section: myhostname is not a host name");
	name = v->strings + t->myhostname.off;
	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
	    t->myhostname.len)
		return snap_fail(v->err, v->errlen, "smtp section: myhostname is not a host name");
	if (t->spool_directory.len < 2 || t->spool_directory.len > SNAP_SMTP_SPOOL_DIR_MAX)
		return snap_fail(v->err, v->errlen,
		                 "smtp section: spool_directory is not an absolute path");
	dir = v->strings + t->spool_directory.off;
	if (dir[0] != '/')
		return snap_fail(v->err, v->errlen,
		                 "smtp section: spool_directory is not an absolute path");
	for (uint32_t i = 0; i < t->spool_directory.len; i++)
		if (dir[i] <= ' ' || dir[i] == 127)
			return snap_fail(v->err, v->errlen,
			                 "smtp section: spool_directory has a space or control"
			                 " character");
	return PG_OK;
}

/* ---- ABI 1.6 inbound TLS requirements ---- */

/* mynetworks and smtpd_tls_required_networks: length 0..32, host bits zero. */
static int snap_check_cidrs(const struct snap_names *v, uint32_t kind, const char *table)
{
	const struct snap_section *s = snap_find(v->h, kind);
	const struct snap_cidr *c;

	if (s == NULL)
		return PG_OK;
	c = (const void *)((const uint8_t *)v->h + s->offset);
	for (uint32_t i = 0; i < s->count; i++) {
		uint32_t mask = c[i].len == 0 || c[i].len > 32 ? 0 : 0xffffffffu << (32 - c[i].len);

		if (c[i].len > 32 || (ntohl(c[i].prefix) & ~mask) != 0 || c[i].pad[0] != 0 ||
		    c[i].pad[1] != 0 || c[i].pad[2] != 0)
			return snap_fail(v->err, v->errlen, "%s entry %" PRIu32 ": bad prefix",
			                 table, i);
	}
	return PG_OK;
}

/* An IPv6 prefix of len bits (0..128): are its host bits zero? */
static bool snap_prefix6_ok(const uint8_t prefix[16], unsigned len)
{
	if (len > 128)
		return false;
	for (unsigned b = 0; b < 16; b++) {
		unsigned keep = len >= (b + 1) * 8 ? 8 : len > b * 8 ? len - b * 8 : 0;
		uint8_t mask = keep == 0 ? 0 : (uint8_t)(0xffu << (8 - keep));

		if ((prefix[b] & ~mask) != 0)
			return false;
	}
	return true;
}

/* The IPv6 networks (ABI 2.3): length 0..128, host bits zero, pad 0. */
static int snap_check_cidrs6(const struct snap_names *v, uint32_t kind, const char *table)
{
	const struct snap_section *s = snap_find(v->h, kind);
	const struct snap_cidr6 *c;

	if (s == NULL)
		return PG_OK;
	c = (const void *)((const uint8_t *)v->h + s->offset);
	for (uint32_t i = 0; i < s->count; i++) {
		if (!snap_prefix6_ok(c[i].prefix, c[i].len) || c[i].pad[0] != 0 ||
		    c[i].pad[1] != 0 || c[i].pad[2] != 0)
			return snap_fail(v->err, v->errlen, "%s entry %" PRIu32 ": bad IPv6 prefix",
			                 table, i);
	}
	return PG_OK;
}

/*
 * The settings, the networks and the sender table come together or not at
 * all (a snapshot of minor < 6 has none of them); with level none nothing
 * can be required, so both tables are empty.
 */
static int snap_check_inbound_tls(const struct snap_names *v)
{
	const struct snap_section *s = snap_find(v->h, SNAP_SEC_INBOUND_TLS),
	                          *ns = snap_find(v->h, SNAP_SEC_INBOUND_TLS_NETWORKS),
	                          *ss = snap_find(v->h, SNAP_SEC_INBOUND_TLS_SENDERS),
	                          *sx = snap_find(v->h, SNAP_SEC_INBOUND_TLS_SENDERS_INDEX);
	const struct snap_inbound_tls *t;
	const uint8_t *entries;
	uint32_t n;

	if (s == NULL && ns == NULL && ss == NULL && sx == NULL)
		return PG_OK;
	if (s == NULL || ns == NULL || ss == NULL || sx == NULL)
		return snap_fail(v->err, v->errlen,
		                 "inbound tls: the settings, networks, senders and senders"
		                 " index sections come together");
	if (s->count != 1)
		return snap_fail(v->err, v->errlen,
		                 "inbound tls section count %" PRIu32 ", expected 1", s->count);
	t = (const void *)((const uint8_t *)v->h + s->offset);
	if (t->level > SNAP_TLS_ENCRYPT)
		return snap_fail(v->err, v->errlen,
		                 "inbound tls section: level %u is not none, may or encrypt",
		                 t->level);
	if (t->protocols == 0 || (t->protocols & ~SNAP_INBOUND_TLS_P_ALL) != 0 ||
	    t->mandatory_protocols == 0 || (t->mandatory_protocols & ~SNAP_INBOUND_TLS_P_ALL) != 0)
		return snap_fail(v->err, v->errlen,
		                 "inbound tls section: protocols 0x%x, mandatory 0x%x (TLSv1 to"
		                 " TLSv1.3 only, at least one)",
		                 t->protocols, t->mandatory_protocols);
	if (t->pad != 0 || t->reserved != 0 || t->reserved2 != 0)
		return snap_fail(v->err, v->errlen, "inbound tls section: reserved field not 0");
	if (t->level == SNAP_TLS_NONE && (ns->count != 0 || ss->count != 0))
		return snap_fail(v->err, v->errlen,
		                 "inbound tls section: level none with required networks or"
		                 " senders");
	if (snap_check_cidrs(v, SNAP_SEC_INBOUND_TLS_NETWORKS, "inbound tls network") != 0 ||
	    snap_check_cidrs6(v, SNAP_SEC_INBOUND_TLS_NETWORKS6, "inbound tls network") != 0)
		return PG_ERROR;
	if (t->level == SNAP_TLS_NONE &&
	    (ns = snap_find(v->h, SNAP_SEC_INBOUND_TLS_NETWORKS6)) != NULL && ns->count != 0)
		return snap_fail(v->err, v->errlen,
		                 "inbound tls section: level none with required IPv6 networks");
	if (snap_check_table(v, SNAP_SEC_INBOUND_TLS_SENDERS, SNAP_SEC_INBOUND_TLS_SENDERS_INDEX,
	                     "inbound tls senders", sizeof(struct snap_name_key),
	                     1u << SNAP_NAME_DOMAIN | 1u << SNAP_NAME_PARENT, &entries, &n) != 0)
		return PG_ERROR;
	/* ABI 2.1: the recipients come with the settings, and are empty at level none */
	if (snap_check_table(v, SNAP_SEC_INBOUND_TLS_RECIPIENTS,
	                     SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX, "inbound tls recipients",
	                     sizeof(struct snap_name_key),
	                     1u << SNAP_NAME_DOMAIN | 1u << SNAP_NAME_PARENT, &entries, &n) != 0)
		return PG_ERROR;
	if (t->level == SNAP_TLS_NONE && n != 0)
		return snap_fail(v->err, v->errlen,
		                 "inbound tls section: level none with required recipients");
	return PG_OK;
}

/*
 * Recipients without the inbound TLS settings they belong to (a snapshot
 * with no ABI 1.6 sections has nothing to require them with).
 */
static int snap_check_recipients_alone(const struct snap_names *v)
{
	if (snap_find(v->h, SNAP_SEC_INBOUND_TLS) == NULL &&
	    (snap_find(v->h, SNAP_SEC_INBOUND_TLS_RECIPIENTS) != NULL ||
	     snap_find(v->h, SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX) != NULL))
		return snap_fail(v->err, v->errlen,
		                 "inbound tls recipients without the inbound tls section");
	return PG_OK;
}

/* ---- ABI 2.1 sender TLS floors ---- */

/* One floor: its level, flags, reserved fields, and a prefix that is its key's. */
static int snap_check_sender_entry(const struct snap_names *v, const struct snap_sender_tls *e,
                                   uint32_t i)
{
	if (e->level != SNAP_TLS_ENCRYPT && e->level != SNAP_TLS_VERIFY &&
	    e->level != SNAP_TLS_SECURE)
		return snap_fail(v->err, v->errlen,
		                 "sender tls entry %" PRIu32 ": level %u is not a floor (encrypt,"
		                 " verify, secure)",
		                 i, e->level);
	if ((e->flags & ~SNAP_TLS_F_TESTING) != 0 || e->pad != 0 || e->reserved != 0)
		return snap_fail(v->err, v->errlen,
		                 "sender tls entry %" PRIu32 ": flags 0x%" PRIx32
		                 " or a reserved field not 0",
		                 i, e->flags);
	if (snap_check_str(v, e->text, "sender tls text", i) != 0)
		return PG_ERROR;
	if (e->key.kind == SNAP_NAME_NETWORK) {
		uint32_t mask = e->prefix_len == 0 || e->prefix_len > 32
		                    ? 0
		                    : 0xffffffffu << (32 - e->prefix_len);
		struct in_addr a = {.s_addr = e->prefix};
		char want[INET_ADDRSTRLEN + 8], addr[INET_ADDRSTRLEN];

		if (e->prefix_len > 32 || (ntohl(e->prefix) & ~mask) != 0)
			return snap_fail(v->err, v->errlen,
			                 "sender tls entry %" PRIu32 ": bad prefix", i);
		inet_ntop(AF_INET, &a, addr, sizeof(addr));
		snprintf(want, sizeof(want), "[%s/%u]", addr, e->prefix_len);
		/* snap_check_key has checked the key string */
		if (strlen(want) != e->key.name.len ||
		    memcmp(v->strings + e->key.name.off, want, e->key.name.len) != 0)
			return snap_fail(v->err, v->errlen,
			                 "sender tls entry %" PRIu32 ": key is not its prefix %s",
			                 i, want);
	} else if (e->key.kind == SNAP_NAME_NETWORK6) {
		/* its prefix is in SENDER_TLS_NETWORKS6, checked with that list */
		if (e->prefix != 0 || e->prefix_len > 128)
			return snap_fail(v->err, v->errlen,
			                 "sender tls entry %" PRIu32 ": bad IPv6 prefix length", i);
	} else if (e->prefix != 0 || e->prefix_len != 0) {
		return snap_fail(v->err, v->errlen,
		                 "sender tls entry %" PRIu32 ": a prefix on a domain key", i);
	}
	return PG_OK;
}

/*
 * ABI 2.3: SENDER_TLS_NETWORKS6 names every NETWORK6 entry exactly once
 * with its prefix: host bits zero, the key the same prefix in RFC 5952
 * text, longest first, ties in entry order. Absent = no NETWORK6 entry.
 */
static int snap_check_sender_net6(const struct snap_names *v, const struct snap_sender_tls *e,
                                  uint32_t n, uint32_t nnet6)
{
	const struct snap_section *s6 = snap_find(v->h, SNAP_SEC_SENDER_TLS_NETWORKS6);
	const struct snap_sender_net6 *l;
	uint32_t count = s6 != NULL ? s6->count : 0;

	if (count != nnet6)
		return snap_fail(v->err, v->errlen,
		                 "sender tls IPv6 networks: %" PRIu32 " listed, %" PRIu32
		                 " IPv6 network entries",
		                 count, nnet6);
	if (count == 0)
		return PG_OK;
	l = (const void *)((const uint8_t *)v->h + s6->offset);
	for (uint32_t i = 0; i < count; i++) {
		const struct snap_sender_tls *x;
		char want[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];

		if (l[i].entry >= n || e[l[i].entry].key.kind != SNAP_NAME_NETWORK6)
			return snap_fail(v->err, v->errlen,
			                 "sender tls IPv6 networks: item %" PRIu32
			                 " is not an IPv6 network entry",
			                 i);
		x = &e[l[i].entry];
		if (!snap_prefix6_ok(l[i].prefix, x->prefix_len))
			return snap_fail(
			    v->err, v->errlen,
			    "sender tls IPv6 networks: item %" PRIu32 ": host bits set", i);
		inet_ntop(AF_INET6, l[i].prefix, addr, sizeof(addr));
		snprintf(want, sizeof(want), "[%s/%u]", addr, x->prefix_len);
		if (strlen(want) != x->key.name.len ||
		    memcmp(v->strings + x->key.name.off, want, x->key.name.len) != 0)
			return snap_fail(v->err, v->errlen,
			                 "sender tls entry %" PRIu32 ": key is not its prefix %s",
			                 l[i].entry, want);
		if (i > 0) {
			const struct snap_sender_tls *a = &e[l[i - 1].entry];

			if (a->prefix_len < x->prefix_len ||
			    (a->prefix_len == x->prefix_len && l[i - 1].entry >= l[i].entry))
				return snap_fail(
				    v->err, v->errlen,
				    "sender tls IPv6 networks: item %" PRIu32
				    " out of order (longest prefix first, then entry order)",
				    i);
		}
	}
	return PG_OK;
}

/*
 * The table, its index and its network list come together or not at all.
 * The list names every NETWORK entry exactly once, longest prefix first,
 * ties in entry order (so it is strictly ordered, which makes it free of
 * duplicates).
 */
static int snap_check_sender_tls(const struct snap_names *v)
{
	const struct snap_section *ts = snap_find(v->h, SNAP_SEC_SENDER_TLS),
	                          *xs = snap_find(v->h, SNAP_SEC_SENDER_TLS_INDEX),
	                          *ns = snap_find(v->h, SNAP_SEC_SENDER_TLS_NETWORKS);
	const struct snap_sender_tls *e;
	const uint32_t *nets;
	const uint8_t *entries;
	uint32_t n, nnet = 0, nnet6 = 0;

	if (ts == NULL && xs == NULL && ns == NULL) {
		const struct snap_section *s6 = snap_find(v->h, SNAP_SEC_SENDER_TLS_NETWORKS6);

		if (s6 != NULL && s6->count != 0)
			return snap_fail(v->err, v->errlen,
			                 "sender tls IPv6 networks without the sender tls table");
		return PG_OK;
	}
	if (ts == NULL || xs == NULL || ns == NULL)
		return snap_fail(v->err, v->errlen,
		                 "sender tls: the table, index and network sections come together");
	if (snap_check_table(v, SNAP_SEC_SENDER_TLS, SNAP_SEC_SENDER_TLS_INDEX, "sender tls",
	                     sizeof(struct snap_sender_tls),
	                     1u << SNAP_NAME_DOMAIN | 1u << SNAP_NAME_PARENT |
	                         1u << SNAP_NAME_NETWORK | 1u << SNAP_NAME_NETWORK6,
	                     &entries, &n) != 0)
		return PG_ERROR;
	e = (const void *)entries;
	for (uint32_t i = 0; i < n; i++) {
		if (snap_check_sender_entry(v, &e[i], i) != 0)
			return PG_ERROR;
		nnet += e[i].key.kind == SNAP_NAME_NETWORK;
		nnet6 += e[i].key.kind == SNAP_NAME_NETWORK6;
	}
	if (snap_check_sender_net6(v, e, n, nnet6) != 0)
		return PG_ERROR;
	if (ns->count != nnet)
		return snap_fail(v->err, v->errlen,
		                 "sender tls networks: %" PRIu32 " listed, %" PRIu32
		                 " network entries",
		                 ns->count, nnet);
	nets = (const void *)((const uint8_t *)v->h + ns->offset);
	for (uint32_t i = 0; i < nnet; i++) {
		const struct snap_sender_tls *a, *b;

		if (nets[i] >= n || e[nets[i]].key.kind != SNAP_NAME_NETWORK)
			return snap_fail(v->err, v->errlen,
			                 "sender tls networks: item %" PRIu32 " is not a network"
			                 " entry",
			                 i);
		if (i == 0)
			continue;
		a = &e[nets[i - 1]];
		b = &e[nets[i]];
		if (a->prefix_len < b->prefix_len ||
		    (a->prefix_len == b->prefix_len && nets[i - 1] >= nets[i]))
			return snap_fail(v->err, v->errlen,
			                 "sender tls networks: item %" PRIu32
			                 " out of order (longest prefix first, then entry order)",
			                 i);
	}
	return PG_OK;
}

/* ---- ABI 1.2 certificates ---- */

static int snap_check_bytes(const struct snap_names *v, struct snap_bytes b, uint64_t der_size,
                            const char *what, uint32_t i)
{
	if (b.len == 0 || b.off > der_size || b.len > der_size - b.off)
		return snap_fail(v->err, v->errlen,
		                 "%s %" PRIu32 ": bytes [%" PRIu32 ", +%" PRIu32
		                 ") outside the %" PRIu64 " DER bytes",
		                 what, i, b.off, b.len, der_size);
	return PG_OK;
}

/*
 * The four certificate sections come together or not at all. Every cert's
 * key type, key blob, chain and name ranges are checked, then every chain
 * entry's blob and every name (a string of 1..SNAP_NAME_MAX bytes without
 * upper case, which SNI matching relies on).
 */
static int snap_check_certs(const struct snap_names *v)
{
	const struct snap_section *cs = snap_find(v->h, SNAP_SEC_TLS_CERTS),
	                          *ns = snap_find(v->h, SNAP_SEC_TLS_CERT_NAMES),
	                          *ks = snap_find(v->h, SNAP_SEC_TLS_CERT_CHAIN),
	                          *ds = snap_find(v->h, SNAP_SEC_TLS_DER);
	const uint8_t *base = (const uint8_t *)v->h;
	const struct snap_tls_cert *c;
	const struct snap_str *names;
	const struct snap_bytes *chain;

	if (cs == NULL && ns == NULL && ks == NULL && ds == NULL)
		return PG_OK;
	if (cs == NULL || ns == NULL || ks == NULL || ds == NULL)
		return snap_fail(v->err, v->errlen,
		                 "tls certificates: the certificate, name, chain and DER"
		                 " sections come together");
	if (ds->count != ds->size)
		return snap_fail(v->err, v->errlen,
		                 "tls certificates: DER section count %" PRIu32
		                 " is not its size %" PRIu64,
		                 ds->count, ds->size);
	c = (const void *)(base + cs->offset);
	names = (const void *)(base + ns->offset);
	chain = (const void *)(base + ks->offset);
	for (uint32_t i = 0; i < cs->count; i++) {
		if (c[i].key_type == 0 || c[i].key_type > SNAP_TLS_KEY_MAX)
			return snap_fail(v->err, v->errlen,
			                 "certificate %" PRIu32 ": key type %u out of range", i,
			                 c[i].key_type);
		if (snap_check_bytes(v, c[i].key, ds->size, "private key of certificate", i) != 0)
			return PG_ERROR;
		if (c[i].chain_count == 0 || c[i].chain_count > ks->count ||
		    c[i].chain_first > ks->count - c[i].chain_count)
			return snap_fail(v->err, v->errlen,
			                 "certificate %" PRIu32 ": chain [%" PRIu32 ", +%" PRIu32
			                 ") outside the %" PRIu32 " chain entries",
			                 i, c[i].chain_first, c[i].chain_count, ks->count);
		if (c[i].name_count > ns->count || c[i].name_first > ns->count - c[i].name_count)
			return snap_fail(v->err, v->errlen,
			                 "certificate %" PRIu32 ": names [%" PRIu32 ", +%" PRIu32
			                 ") outside the %" PRIu32 " names",
			                 i, c[i].name_first, c[i].name_count, ns->count);
		if (c[i].not_before > c[i].not_after)
			return snap_fail(v->err, v->errlen,
			                 "certificate %" PRIu32 ": not_before after not_after", i);
		if (snap_check_str(v, c[i].file, "certificate file", i) != 0)
			return PG_ERROR;
	}
	for (uint32_t i = 0; i < ks->count; i++)
		if (snap_check_bytes(v, chain[i], ds->size, "chain entry", i) != 0)
			return PG_ERROR;
	for (uint32_t i = 0; i < ns->count; i++) {
		if (snap_check_str(v, names[i], "certificate name", i) != 0)
			return PG_ERROR;
		if (names[i].len == 0 || names[i].len > SNAP_NAME_MAX)
			return snap_fail(v->err, v->errlen,
			                 "certificate name %" PRIu32 ": length %" PRIu32, i,
			                 names[i].len);
		for (uint32_t j = 0; j < names[i].len; j++) {
			char ch = v->strings[names[i].off + j];

			if (ch >= 'A' && ch <= 'Z')
				return snap_fail(v->err, v->errlen,
				                 "certificate name %" PRIu32 ": not lowercased", i);
		}
	}
	return PG_OK;
}

/* ---- ABI 1.8 trust anchors ---- */

/*
 * TLS_TRUST and TLS_TRUST_DER come together or not at all. Every anchor's
 * DER lies inside TLS_TRUST_DER; its policy is GLOBAL or an entry of
 * TLS_POLICY with a tafile; GLOBAL ones come first, then ascending policy
 * indexes (snap_tls_trust_range relies on it).
 */
static int snap_check_trust(const struct snap_names *v)
{
	const struct snap_section *ts = snap_find(v->h, SNAP_SEC_TLS_TRUST),
	                          *ds = snap_find(v->h, SNAP_SEC_TLS_TRUST_DER),
	                          *ps = snap_find(v->h, SNAP_SEC_TLS_POLICY);
	const uint8_t *base = (const uint8_t *)v->h;
	const struct snap_tls_policy *pol = ps != NULL ? (const void *)(base + ps->offset) : NULL;
	uint32_t npol = ps != NULL ? ps->count : 0;
	const struct snap_tls_trust *t;

	if (ts == NULL && ds == NULL)
		return PG_OK;
	if (ts == NULL || ds == NULL)
		return snap_fail(v->err, v->errlen,
		                 "trust anchors: the anchor and DER sections come together");
	if (ds->count != ds->size)
		return snap_fail(v->err, v->errlen,
		                 "trust anchors: DER section count %" PRIu32
		                 " is not its size %" PRIu64,
		                 ds->count, ds->size);
	t = (const void *)(base + ts->offset);
	for (uint32_t i = 0; i < ts->count; i++) {
		if (t[i].reserved != 0)
			return snap_fail(v->err, v->errlen,
			                 "trust anchor %" PRIu32 ": reserved field not 0", i);
		if (snap_check_bytes(v, t[i].der, ds->size, "trust anchor", i) != 0)
			return PG_ERROR;
		if (t[i].policy == SNAP_TRUST_GLOBAL) {
			if (i > 0 && t[i - 1].policy != SNAP_TRUST_GLOBAL)
				return snap_fail(v->err, v->errlen,
				                 "trust anchor %" PRIu32
				                 ": a global anchor after those of a tls_policy"
				                 " entry",
				                 i);
			continue;
		}
		if (t[i].policy >= npol)
			return snap_fail(v->err, v->errlen,
			                 "trust anchor %" PRIu32 ": tls_policy entry %" PRIu32
			                 " of %" PRIu32,
			                 i, t[i].policy, npol);
		/* snap_check_tls has checked this string already */
		if (pol[t[i].policy].tafile.len == 0)
			return snap_fail(v->err, v->errlen,
			                 "trust anchor %" PRIu32 ": tls_policy entry %" PRIu32
			                 " has no tafile",
			                 i, t[i].policy);
		if (i > 0 && t[i - 1].policy != SNAP_TRUST_GLOBAL && t[i - 1].policy > t[i].policy)
			return snap_fail(v->err, v->errlen,
			                 "trust anchor %" PRIu32 ": tls_policy entry %" PRIu32
			                 " after entry %" PRIu32 " (ascending order)",
			                 i, t[i].policy, t[i - 1].policy);
	}
	return PG_OK;
}

static int snap_validate_names(const struct snap_header *h, char *err, size_t errlen)
{
	const struct snap_section *str = snap_find(h, SNAP_SEC_STRINGS), *mn;
	struct snap_names v = {.h = h, .err = err, .errlen = errlen};
	const uint8_t *entries;
	uint32_t n;

	if (str != NULL) {
		v.strings = (const char *)h + str->offset;
		v.strings_size = str->size;
	}
	if (snap_check_table(&v, SNAP_SEC_TLS_POLICY, SNAP_SEC_TLS_POLICY_INDEX, "tls_policy",
	                     sizeof(struct snap_tls_policy),
	                     1u << SNAP_NAME_DOMAIN | 1u << SNAP_NAME_PARENT |
	                         1u << SNAP_NAME_NEXTHOP,
	                     &entries, &n) != 0 ||
	    snap_check_tls(&v, (const void *)entries, n) != 0)
		return PG_ERROR;
	if (snap_check_table(&v, SNAP_SEC_TRANSPORT, SNAP_SEC_TRANSPORT_INDEX, "transport",
	                     sizeof(struct snap_transport),
	                     1u << SNAP_NAME_DOMAIN | 1u << SNAP_NAME_PARENT |
	                         1u << SNAP_NAME_WILDCARD,
	                     &entries, &n) != 0 ||
	    snap_check_transport(&v, (const void *)entries, n) != 0)
		return PG_ERROR;
	if (snap_check_table(&v, SNAP_SEC_RELAY_DOMAINS, SNAP_SEC_RELAY_DOMAINS_INDEX,
	                     "relay_domains", sizeof(struct snap_name_key),
	                     1u << SNAP_NAME_DOMAIN | 1u << SNAP_NAME_PARENT, &entries, &n) != 0)
		return PG_ERROR;
	mn = snap_find(h, SNAP_SEC_MYNETWORKS);
	for (uint32_t i = 0; mn != NULL && i < mn->count; i++) {
		const struct snap_cidr *c = (const void *)((const uint8_t *)h + mn->offset);
		uint32_t mask = c[i].len == 0 || c[i].len > 32 ? 0 : 0xffffffffu << (32 - c[i].len);

		if (c[i].len > 32 || (ntohl(c[i].prefix) & ~mask) != 0)
			return snap_fail(err, errlen, "mynetworks entry %" PRIu32 ": bad prefix",
			                 i);
	}
	if (snap_check_cidrs6(&v, SNAP_SEC_MYNETWORKS6, "mynetworks") != 0)
		return PG_ERROR;
	if ((mn = snap_find(h, SNAP_SEC_RELAY)) != NULL &&
	    ((const struct snap_relay *)((const uint8_t *)h + mn->offset))->tls_default_level >
	        SNAP_TLS_LEVEL_MAX)
		return snap_fail(err, errlen, "relay section: default TLS level out of range");
	if (snap_check_smtp(&v) != 0 || snap_check_inbound_tls(&v) != 0 ||
	    snap_check_recipients_alone(&v) != 0 || snap_check_sender_tls(&v) != 0 ||
	    snap_check_dns(&v) != 0)
		return PG_ERROR;
	if (snap_check_certs(&v) != 0)
		return PG_ERROR;
	return snap_check_trust(&v);
}

int snap_validate(const void *blob, size_t len, char *err, size_t errlen)
{
	const struct snap_header *h = blob;
	const uint8_t *base = blob;
	uint64_t dir_end, seen = 0;
	uint32_t sum;

	if (blob == NULL)
		return snap_fail(err, errlen, "no snapshot");
	if ((uintptr_t)blob % SNAP_ALIGN != 0)
		return snap_fail(err, errlen, "snapshot not 8-byte aligned in memory");
	if (len < sizeof(*h))
		return snap_fail(err, errlen, "snapshot too short: %zu bytes, header is %zu", len,
		                 sizeof(*h));
	if (h->magic != SNAP_MAGIC)
		return snap_fail(err, errlen, "bad magic 0x%08" PRIx32, h->magic);
	if (h->abi_major != SNAP_ABI_MAJOR)
		return snap_fail(err, errlen, "snapshot ABI %u.%u, this program reads %d.x",
		                 h->abi_major, h->abi_minor, SNAP_ABI_MAJOR);
	if (h->size < sizeof(*h))
		return snap_fail(err, errlen, "size field %" PRIu64 " smaller than the header",
		                 h->size);
	if (h->size > len)
		return snap_fail(err, errlen,
		                 "size field %" PRIu64 " larger than the %zu bytes"
		                 " available",
		                 h->size, len);
	/* nsections is a uint32_t, so this product cannot overflow 64 bits */
	dir_end = sizeof(*h) + (uint64_t)h->nsections * sizeof(struct snap_section);
	if (dir_end > h->size)
		return snap_fail(err, errlen,
		                 "%" PRIu32 " sections do not fit in %" PRIu64 " bytes",
		                 h->nsections, h->size);
	for (uint32_t i = 0; i < h->nsections; i++) {
		if (snap_validate_section(base, h->size, dir_end, i, &h->sections[i], err,
		                          errlen) != 0)
			return PG_ERROR;
		/* readers take the first section of a kind: a second one is a lie
		 * (known kinds are all below 64, see snap_elem_size) */
		if (snap_elem_size(h->sections[i].kind) != 0) {
			uint64_t bit = UINT64_C(1) << h->sections[i].kind;

			if (seen & bit)
				return snap_fail(err, errlen,
				                 "section %" PRIu32
				                 ": a second section of kind %" PRIu32,
				                 i, h->sections[i].kind);
			seen |= bit;
		}
	}
	if (snap_validate_names(h, err, errlen) != 0)
		return PG_ERROR;
	sum = snap_checksum(blob, h->size);
	if (sum != h->checksum)
		return snap_fail(err, errlen, "checksum 0x%08" PRIx32 ", computed 0x%08" PRIx32,
		                 h->checksum, sum);
	return PG_OK;
}

const void *snap_section(const struct snap_header *h, uint32_t kind, uint32_t *count)
{
	for (uint32_t i = 0; i < h->nsections; i++) {
		if (h->sections[i].kind == kind) {
			if (count != NULL)
				*count = h->sections[i].count;
			return (const uint8_t *)h + h->sections[i].offset;
		}
	}
	if (count != NULL)
		*count = 0;
	return NULL;
}

void snap_delivery_default(struct snap_delivery *d)
{
	/*
	 * Postfix's defaults; the schedule writes out its backoff
	 * (minimal_backoff_time 300s doubling up to maximal_backoff_time 4000s)
	 * in whole minutes.
	 */
	static const uint32_t schedule_s[] = {300, 600, 1200, 2400, 4020};

	memset(d, 0, sizeof(*d));
	d->nschedule = sizeof(schedule_s) / sizeof(schedule_s[0]);
	memcpy(d->schedule_s, schedule_s, sizeof(schedule_s));
}

const struct snap_delivery *snap_delivery(const struct snap_header *h,
                                          struct snap_delivery *fallback)
{
	uint32_t n;
	const struct snap_delivery *d = snap_section(h, SNAP_SEC_DELIVERY, &n);

	/* snap_validate made a present section exactly one valid element */
	if (d != NULL && n == 1)
		return d;
	snap_delivery_default(fallback);
	return fallback;
}

const struct snap_tls_trust *snap_tls_trust(const struct snap_header *h, uint32_t *count)
{
	const struct snap_tls_trust *t = snap_section(h, SNAP_SEC_TLS_TRUST, count);

	if (t == NULL || *count == 0) {
		*count = 0;
		return NULL;
	}
	return t;
}

/* The order of TLS_TRUST: GLOBAL below every policy index. */
static uint64_t snap_trust_rank(uint32_t policy)
{
	return policy == SNAP_TRUST_GLOBAL ? 0 : (uint64_t)policy + 1;
}

uint32_t snap_tls_trust_range(const struct snap_header *h, uint32_t policy, uint32_t *first)
{
	uint32_t n, lo = 0, hi, end;
	const struct snap_tls_trust *t = snap_tls_trust(h, &n);

	*first = 0;
	if (t == NULL)
		return 0;
	hi = n;
	while (lo < hi) { /* the first anchor whose rank is >= policy's */
		uint32_t mid = lo + (hi - lo) / 2;

		if (snap_trust_rank(t[mid].policy) < snap_trust_rank(policy))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < n && t[end].policy == policy; end++)
		;
	*first = lo;
	return end - lo;
}

const uint8_t *snap_trust_der(const struct snap_header *h, const struct snap_tls_trust *t)
{
	uint32_t n;
	const uint8_t *der = snap_section(h, SNAP_SEC_TLS_TRUST_DER, &n);

	/* for a validated snapshot n is the section's size */
	if (der == NULL || t->der.len == 0 || t->der.off > n || t->der.len > n - t->der.off)
		return NULL;
	return der + t->der.off;
}

const struct snap_tls_ticket_key *snap_ticket_keys(const struct snap_header *h, uint32_t *count)
{
	const struct snap_tls_ticket_key *k = snap_section(h, SNAP_SEC_TLS_TICKET_KEYS, count);

	if (k == NULL || *count == 0) {
		*count = 0;
		return NULL;
	}
	return k;
}

const char *snap_string(const struct snap_header *h, struct snap_str s)
{
	const struct snap_section *sec = NULL;
	const char *base;

	for (uint32_t i = 0; i < h->nsections; i++) {
		if (h->sections[i].kind == SNAP_SEC_STRINGS) {
			sec = &h->sections[i];
			break;
		}
	}
	/* the string and its NUL must lie inside the section */
	if (sec == NULL || s.off >= sec->size || s.len >= sec->size - s.off)
		return "";
	base = (const char *)h + sec->offset;
	if (base[s.off + s.len] != '\0')
		return "";
	return base + s.off;
}
