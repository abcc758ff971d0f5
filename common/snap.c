/*
 * snap.c - validation of and access to a control snapshot blob
 * (common/snap_format.h). The dataplane runs snap_validate once per new
 * generation before it adopts anything, so a corrupt or truncated blob, or
 * one from a different ABI, is refused with a message instead of crashing a
 * worker. Every field is checked before it is used to reach another one.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

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
	return -1;
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
		return 0; /* unknown kind from a newer minor: skipped by readers */
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
	}
	return 0;
}

int snap_validate(const void *blob, size_t len, char *err, size_t errlen)
{
	const struct snap_header *h = blob;
	const uint8_t *base = blob;
	uint64_t dir_end;
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
			return -1;
	}
	sum = snap_checksum(blob, h->size);
	if (sum != h->checksum)
		return snap_fail(err, errlen, "checksum 0x%08" PRIx32 ", computed 0x%08" PRIx32,
		                 h->checksum, sum);
	return 0;
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
