/*
 * snap_format.h - wire format of a control snapshot (ABI between posternd
 * and postern-dp). A snapshot is one immutable, position-independent blob:
 * a header, a section directory, then section payloads. Offsets only, never
 * pointers, so the same bytes are valid at any mapping address.
 *
 * Integers are host byte order (both processes run on the same machine);
 * IPv4 addresses are stored in network byte order, as on the wire.
 * Bump SNAP_ABI_MAJOR for any incompatible change; readers refuse a major
 * they do not know.
 */
#ifndef PG_SNAP_FORMAT_H
#define PG_SNAP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC 0x4e534750u /* "PGSN" little-endian */
#define SNAP_ABI_MAJOR 1
#define SNAP_ABI_MINOR 0

#define SNAP_MAX_PORTS 8
#define SNAP_MAX_ROUTES 256
#define SNAP_MAX_WORKERS 64

/* Section kinds. A reader skips kinds it does not know (minor bumps). */
enum snap_section_kind {
	SNAP_SEC_STRINGS = 1,   /* char[]: NUL-terminated strings, see snap_str */
	SNAP_SEC_DATAPLANE = 2, /* struct snap_dataplane, count 1 */
	SNAP_SEC_PORTS = 3,     /* struct snap_port[count] */
	SNAP_SEC_ROUTES = 4,    /* struct snap_route[count], longest prefix first */
};

struct snap_section {
	uint32_t kind;
	uint32_t count;  /* number of elements */
	uint64_t offset; /* from the start of the blob, 8-byte aligned */
	uint64_t size;   /* bytes */
};

struct snap_header {
	uint32_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint64_t generation; /* set by the publisher, not by the builder */
	uint64_t size;       /* whole blob, header included */
	uint32_t checksum;   /* crc32 (zlib) of the blob with this field as 0 */
	uint32_t nsections;
	uint64_t built_unix_ns; /* when posternd built it */
	struct snap_section sections[];
};

/* A string: offset and length inside SNAP_SEC_STRINGS (NUL follows). */
struct snap_str {
	uint32_t off;
	uint32_t len;
};

/* Dataplane-wide settings (postern.conf). Times in nanoseconds. */
struct snap_dataplane {
	uint32_t workers;          /* worker lcores the dataplane runs */
	uint32_t nports;
	uint64_t idle_sleep_ns;    /* back-off sleep when idle */
	uint32_t idle_polls;       /* empty polls before backing off */
	uint32_t arp_max_retries;  /* requests before giving up on a neighbour */
	uint64_t arp_retry_ns;     /* interval between ARP requests */
	uint64_t arp_cache_ns;     /* lifetime of a resolved entry */
	uint32_t arp_pending_max;  /* packets parked awaiting ARP, per worker */
	uint32_t flags;            /* SNAP_DP_F_* */
	uint32_t default_gateway;  /* network order, 0 = none */
	uint32_t reserved;
};

#define SNAP_DP_F_GRATUITOUS_ARP 0x1u /* announce addresses at start */

struct snap_port {
	struct snap_str device; /* DPDK device: PCI address or vdev spec */
	uint32_t addr;          /* IPv4, network order */
	uint8_t prefix_len;
	uint8_t pad[1];
	uint16_t mtu;
	uint32_t reserved;
};

struct snap_route {
	uint32_t prefix;  /* network order, host bits zero */
	uint8_t prefix_len;
	uint8_t port;     /* egress port index */
	uint16_t pad;
	uint32_t gateway; /* network order, 0 = directly connected */
};

/*
 * Validation and access (common/snap.c). snap_validate checks magic, ABI,
 * size, checksum and that every section lies inside the blob; it never
 * trusts a field before checking it. Returns 0 or -1 with a message.
 */
int snap_validate(const void *blob, size_t len, char *err, size_t errlen);
uint32_t snap_checksum(const void *blob, size_t len);
/* First section of a kind, or NULL. *count receives its element count. */
const void *snap_section(const struct snap_header *h, uint32_t kind, uint32_t *count);
/* A string of the strings section; "" if out of range. */
const char *snap_string(const struct snap_header *h, struct snap_str s);

#endif
