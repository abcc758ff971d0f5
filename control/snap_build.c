/*
 * snap_build.c - lay out a control snapshot from struct pg_conf. posternd is
 * the only writer of this format; postern-dp reads it through snap_section
 * and snap_string after snap_validate. Sizes are computed first, then one
 * zeroed allocation is filled, so padding bytes are deterministic and the
 * checksum is reproducible.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "result.h"
#include "snap_build.h"

#define SNAP_BUILD_NSECTIONS 4

static size_t snap_align8(size_t v)
{
	return (v + 7) & ~(size_t)7;
}

/* Strings: offset 0 holds "" so a zero snap_str is the empty string. */
static size_t snap_strings_size(const struct pg_conf *c)
{
	size_t n = 1;

	for (uint32_t i = 0; i < c->nports; i++)
		n += strlen(c->ports[i].device) + 1;
	return n;
}

static void snap_fill_dataplane(const struct pg_conf *c, struct snap_dataplane *dp)
{
	dp->workers = c->workers;
	dp->nports = c->nports;
	dp->idle_sleep_ns = c->idle_sleep_ns;
	dp->idle_polls = c->idle_polls;
	dp->arp_max_retries = c->arp_max_retries;
	dp->arp_retry_ns = c->arp_retry_ns;
	dp->arp_cache_ns = c->arp_cache_ns;
	dp->arp_pending_max = c->arp_pending_max;
	dp->flags = c->gratuitous_arp ? SNAP_DP_F_GRATUITOUS_ARP : 0;
	dp->default_gateway = c->default_gateway;
}

int snap_build(const struct pg_conf *c, void **blob_out, size_t *len_out, char *err, size_t errlen)
{
	struct snap_header *h;
	struct snap_section *sec;
	struct snap_port *ports;
	struct snap_route *routes;
	struct timespec now;
	size_t off_str, off_dp, off_ports, off_routes, len, str_size, str_used = 1;
	char *strings;
	uint8_t *base;

	if (c->nports > SNAP_MAX_PORTS || c->nroutes > SNAP_MAX_ROUTES ||
	    c->workers > SNAP_MAX_WORKERS) {
		snprintf(err, errlen, "configuration exceeds snapshot limits");
		return PG_ERROR;
	}
	str_size = snap_strings_size(c);
	off_str = snap_align8(sizeof(*h) + SNAP_BUILD_NSECTIONS * sizeof(*sec));
	off_dp = snap_align8(off_str + str_size);
	off_ports = snap_align8(off_dp + sizeof(struct snap_dataplane));
	off_routes = snap_align8(off_ports + c->nports * sizeof(struct snap_port));
	len = snap_align8(off_routes + c->nroutes * sizeof(struct snap_route));

	base = calloc(1, len);
	if (base == NULL) {
		snprintf(err, errlen, "out of memory building a %zu-byte snapshot", len);
		return PG_ERROR;
	}
	h = (struct snap_header *)base;
	h->magic = SNAP_MAGIC;
	h->abi_major = SNAP_ABI_MAJOR;
	h->abi_minor = SNAP_ABI_MINOR;
	h->size = len;
	h->nsections = SNAP_BUILD_NSECTIONS;
	clock_gettime(CLOCK_REALTIME, &now);
	h->built_unix_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;

	sec = h->sections;
	sec[0] = (struct snap_section){SNAP_SEC_STRINGS, (uint32_t)str_size, off_str, str_size};
	sec[1] =
	    (struct snap_section){SNAP_SEC_DATAPLANE, 1, off_dp, sizeof(struct snap_dataplane)};
	sec[2] = (struct snap_section){SNAP_SEC_PORTS, c->nports, off_ports,
	                               c->nports * sizeof(struct snap_port)};
	sec[3] = (struct snap_section){SNAP_SEC_ROUTES, c->nroutes, off_routes,
	                               c->nroutes * sizeof(struct snap_route)};

	strings = (char *)base + off_str; /* strings[0] = '\0' from calloc */
	snap_fill_dataplane(c, (struct snap_dataplane *)(base + off_dp));

	ports = (struct snap_port *)(base + off_ports);
	for (uint32_t i = 0; i < c->nports; i++) {
		size_t n = strlen(c->ports[i].device);

		memcpy(strings + str_used, c->ports[i].device, n + 1);
		ports[i].device.off = (uint32_t)str_used;
		ports[i].device.len = (uint32_t)n;
		str_used += n + 1;
		ports[i].addr = c->ports[i].addr;
		ports[i].prefix_len = c->ports[i].prefix_len;
		ports[i].mtu = c->ports[i].mtu;
	}

	routes = (struct snap_route *)(base + off_routes);
	for (uint32_t i = 0; i < c->nroutes; i++) {
		routes[i].prefix = c->routes[i].prefix;
		routes[i].prefix_len = c->routes[i].prefix_len;
		routes[i].port = c->routes[i].port;
		routes[i].gateway = c->routes[i].gateway;
	}

	*blob_out = base;
	*len_out = len;
	return PG_OK;
}
