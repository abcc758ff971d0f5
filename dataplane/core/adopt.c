/*
 * adopt.c - snapshot adoption at a quiescent point of the worker loop
 * (DESIGN.md, "Control plane and shared memory"). The worker announces the
 * new generation in its reader record (shm_acquire), validates the blob
 * once, compiles what it needs into private memory from its own jemalloc
 * arena, switches, and frees the previous compiled config. It keeps the
 * announcement until the next adoption, so the slot stays untouched for
 * as long as later layers read policy straight from the snapshot.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_log.h>

#include <zlib.h>

#include "adopt.h"
#include "crypto/tls_certs.h"
#include "events.h"
#include "diag/diag.h"
#include "relay/inbound.h"
#include "relay/outbound.h"
#include "result.h"
#include "shm.h"
#include "snap_format.h"
#include "worker.h"

static uint32_t adopt_netmask(uint8_t len)
{
	return len == 0 ? 0 : rte_cpu_to_be_32(~0u << (32 - len));
}

/*
 * ABI 2.3: the ports' IPv6 addresses (link-local from each MAC) and the
 * IPv6 routes, checked as the IPv4 ones. Absent sections: no IPv6.
 */
static int adopt_compile_net6(const struct snap_header *h, struct net_config *nc, char *err,
                              size_t errlen)
{
	const struct snap_port6 *sp;
	const struct snap_route6 *sr;
	uint32_t nsp = 0, nsr = 0;

	sp = snap_section(h, SNAP_SEC_PORTS6, &nsp);
	sr = snap_section(h, SNAP_SEC_ROUTES6, &nsr);
	if (sr != NULL && nsr > NET_MAX_ROUTES) {
		snprintf(err, errlen, "snapshot has %u IPv6 routes, limit %d", nsr, NET_MAX_ROUTES);
		return PG_ERROR;
	}
	for (uint16_t i = 0; sp != NULL && i < nc->nports && i < nsp; i++) {
		struct net_port *np = &nc->ports[i];

		if (sp[i].prefix_len == 0)
			continue;
		if (sp[i].prefix_len > 128 || np->mtu < 1280) {
			snprintf(err, errlen, "port %u: IPv6 prefix /%u or MTU %u out of range", i,
			         sp[i].prefix_len, np->mtu);
			return PG_ERROR;
		}
		np->has_ip6 = true;
		np->prefix6_len = sp[i].prefix_len;
		memcpy(np->addr6, sp[i].addr, 16);
		net_port_ipv6_init(np);
	}
	for (uint32_t i = 0; sr != NULL && i < nsr; i++) {
		struct net_route6 *nr;

		/* net_route6_lookup takes the first match: longest prefix first. */
		if (sr[i].prefix_len > 128 || (i > 0 && sr[i].prefix_len > sr[i - 1].prefix_len)) {
			snprintf(err, errlen,
			         "IPv6 route %u: prefix /%u out of range or out of order", i,
			         sr[i].prefix_len);
			return PG_ERROR;
		}
		/* As for IPv4: a route out of a port this process lacks is left out. */
		if (sr[i].port >= nc->nports || !nc->ports[sr[i].port].has_ip6)
			continue;
		nr = &nc->routes6[nc->nroutes6++];
		memcpy(nr->prefix, sr[i].prefix, 16);
		memcpy(nr->gateway, sr[i].gateway, 16);
		nr->prefix_len = sr[i].prefix_len;
		nr->port = sr[i].port;
	}
	return PG_OK;
}

int adopt_compile_net(const struct snap_header *h, const struct adopt_hw *hw,
		      struct net_config *nc, char *err, size_t errlen)
{
	const struct snap_dataplane *dp;
	const struct snap_port *sp;
	const struct snap_route *sr;
	uint32_t ndp, nsp, nsr;

	memset(nc, 0, sizeof(*nc));
	dp = snap_section(h, SNAP_SEC_DATAPLANE, &ndp);
	sp = snap_section(h, SNAP_SEC_PORTS, &nsp);
	sr = snap_section(h, SNAP_SEC_ROUTES, &nsr);
	if (dp == NULL || ndp != 1 || sp == NULL) {
		snprintf(err, errlen, "snapshot lacks the dataplane or ports section");
		return PG_ERROR;
	}
	if (nsp > NET_MAX_PORTS || (sr != NULL && nsr > NET_MAX_ROUTES)) {
		snprintf(err, errlen, "snapshot has %u ports / %u routes, limits %d / %d", nsp,
			 nsr, NET_MAX_PORTS, NET_MAX_ROUTES);
		return PG_ERROR;
	}

	nc->nports = (uint16_t)RTE_MIN(nsp, (uint32_t)hw->nports);
	for (uint16_t i = 0; i < nc->nports; i++) {
		struct net_port *np = &nc->ports[i];

		if (sp[i].prefix_len > 32 || sp[i].mtu < 68) {
			snprintf(err, errlen, "port %u: prefix /%u or MTU %u out of range", i,
				 sp[i].prefix_len, sp[i].mtu);
			return PG_ERROR;
		}
		*np = hw->ports[i];
		np->addr = sp[i].addr;
		np->prefix_len = sp[i].prefix_len;
		np->netmask = adopt_netmask(sp[i].prefix_len);
		/* The device may have refused the configured MTU (port.c). */
		np->mtu = hw->ports[i].mtu != 0 ? RTE_MIN(sp[i].mtu, hw->ports[i].mtu) : sp[i].mtu;
	}
	for (uint32_t i = 0; sr != NULL && i < nsr; i++) {
		struct net_route *nr;

		/* net_route_lookup takes the first match: longest prefix first. */
		if (sr[i].prefix_len > 32 || (i > 0 && sr[i].prefix_len > sr[i - 1].prefix_len)) {
			snprintf(err, errlen, "route %u: prefix /%u out of range or out of order", i,
				 sr[i].prefix_len);
			return PG_ERROR;
		}
		/*
		 * A route out of a port this process does not have (added by a
		 * reload, effective at restart) is left out, as the kernel
		 * drops routes of a missing interface; lookups fall through to
		 * the remaining routes.
		 */
		if (sr[i].port >= nc->nports)
			continue;
		nr = &nc->routes[nc->nroutes++];
		nr->prefix = sr[i].prefix;
		nr->prefix_len = sr[i].prefix_len;
		nr->netmask = adopt_netmask(sr[i].prefix_len);
		nr->port = sr[i].port;
		nr->gateway = sr[i].gateway;
	}
	nc->arp_retry_ns = dp->arp_retry_ns;
	nc->arp_cache_ns = dp->arp_cache_ns;
	nc->arp_max_retries = dp->arp_max_retries;
	nc->arp_pending_max = dp->arp_pending_max;
	nc->gratuitous_arp = (dp->flags & SNAP_DP_F_GRATUITOUS_ARP) != 0;
	return adopt_compile_net6(h, nc, err, errlen);
}

void adopt_compile_tcp(const struct snap_header *h, struct tcp_config *cfg)
{
	const struct snap_tcp *t = snap_section(h, SNAP_SEC_TCP, NULL);
	struct tcp_config def;

	tcp_config_default(&def);
	cfg->max_conns = t != NULL ? t->max_conns : def.max_conns;
	cfg->syn_backlog = t != NULL ? t->syn_backlog : def.syn_backlog;
	cfg->max_buf_bytes = t != NULL ? t->max_buf_bytes : def.max_buf_bytes;
	cfg->sndbuf = t != NULL ? t->sndbuf : def.sndbuf;
	cfg->rcvbuf = t != NULL ? t->rcvbuf : def.rcvbuf;
	cfg->max_retries = t != NULL ? t->max_retries : def.max_retries;
	cfg->watermark_pct = t != NULL ? t->watermark_pct : def.watermark_pct;
	cfg->syncookies = t != NULL ? (t->flags & SNAP_TCP_F_SYNCOOKIES) != 0 : def.syncookies;
	cfg->cc = t != NULL && t->cc == SNAP_TCP_CC_NEWRENO ? TCP_CC_NEWRENO : TCP_CC_CUBIC;
	cfg->keepalive_idle_ns = t != NULL ? t->keepalive_idle_ns : def.keepalive_idle_ns;
	/* off: the stack keeps its interval and count (unused until switched on) */
	if (cfg->keepalive_idle_ns != 0) {
		cfg->keepalive_intvl_ns = t->keepalive_intvl_ns;
		cfg->keepalive_probes = t->keepalive_probes;
	}
}

/*
 * A digest of everything the certificates are decoded from: their four
 * sections and the strings they name. Policy changes, the common case,
 * leave it alone, so keys are not parsed again on every adoption.
 */
static uint32_t adopt_certs_digest(const struct snap_header *h)
{
	static const uint32_t kinds[] = {SNAP_SEC_TLS_CERTS, SNAP_SEC_TLS_CERT_NAMES,
					 SNAP_SEC_TLS_CERT_CHAIN, SNAP_SEC_TLS_DER};
	const struct snap_tls_cert *certs;
	const struct snap_str *names;
	uint32_t n, nnames;
	uLong crc = crc32(0L, Z_NULL, 0);

	for (unsigned k = 0; k < RTE_DIM(kinds); k++) {
		for (uint32_t i = 0; i < h->nsections; i++) {
			const struct snap_section *sec = &h->sections[i];

			if (sec->kind == kinds[k])
				crc = crc32(crc, (const Bytef *)h + sec->offset, (uInt)sec->size);
		}
	}
	certs = snap_section(h, SNAP_SEC_TLS_CERTS, &n);
	for (uint32_t i = 0; certs != NULL && i < n; i++) {
		const char *file = snap_string(h, certs[i].file);

		crc = crc32(crc, (const Bytef *)file, (uInt)strlen(file) + 1);
	}
	names = snap_section(h, SNAP_SEC_TLS_CERT_NAMES, &nnames);
	for (uint32_t i = 0; names != NULL && i < nnames; i++) {
		const char *name = snap_string(h, names[i]);

		crc = crc32(crc, (const Bytef *)name, (uInt)strlen(name) + 1);
	}
	return (uint32_t)crc;
}

/*
 * Certificates as OpenSSL objects for this generation (DESIGN.md: workers
 * turn the DER blobs into objects when they adopt). *fresh is NULL when the
 * worker's current set still applies. OpenSSL objects are reference
 * counted, so connections set up with the old set keep it.
 */
static int adopt_certs(struct worker *w, const struct snap_header *h, uint64_t gen,
		       struct tls_cert_set **fresh, uint32_t *digest, char *err, size_t errlen)
{
	struct tls_cert_set *set;

	*fresh = NULL;
	*digest = adopt_certs_digest(h);
	if (w->certs != NULL && *digest == w->certs_digest)
		return PG_OK;
	set = worker_alloc(w, sizeof(*set));
	if (set == NULL) {
		snprintf(err, errlen, "out of memory");
		return PG_ERROR;
	}
	if (tls_certs_load(h, set, err, errlen) != PG_OK) {
		worker_free(w, set);
		return PG_ERROR;
	}
	set->generation = gen;
	*fresh = set;
	return PG_OK;
}

void adopt_release_certs(struct worker *w)
{
	if (w->certs == NULL)
		return;
	tls_certs_free(w->certs);
	worker_free(w, w->certs);
	w->certs = NULL;
}

int adopt_snapshot(struct worker *w, const struct adopt_hw *hw)
{
	struct tls_cert_set *certs;
	uint32_t certs_digest;
	const struct snap_header *h;
	const struct snap_dataplane *dp;
	struct net_config *nc;
	char err[256];
	uint64_t gen;
	uint32_t n;

	uint64_t published = shm_published_gen(w->shm);

	if (published == 0)
		return PG_AGAIN;
	if (published == w->gen)
		return PG_OK;
	h = shm_acquire(w->shm, w->reader, &gen);
	if (h == NULL)
		return PG_AGAIN;
	if (gen == w->gen)
		return PG_OK;

	/* The size field is checked against the slot, never trusted alone. */
	if (snap_validate(h, RTE_MIN(h->size, w->shm->region->slot_capacity), err, sizeof(err)) != 0)
		goto refuse;
	nc = worker_alloc(w, sizeof(*nc));
	if (nc == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto refuse;
	}
	if (adopt_compile_net(h, hw, nc, err, sizeof(err)) != PG_OK) {
		worker_free(w, nc);
		goto refuse;
	}
	if (w->tcp != NULL) {
		/* New connections take it; established ones keep theirs (net/tcp.h). */
		struct tcp_config tcfg = *tcp_stack_config(w->tcp);

		adopt_compile_tcp(h, &tcfg);
		if (tcp_stack_reconfigure(w->tcp, &tcfg) != PG_OK) {
			worker_free(w, nc);
			snprintf(err, sizeof(err), "TCP settings refused by the stack");
			goto refuse;
		}
	}
	if (adopt_certs(w, h, gen, &certs, &certs_digest, err, sizeof(err)) != PG_OK) {
		worker_free(w, nc);
		goto refuse;
	}
	dp = snap_section(h, SNAP_SEC_DATAPLANE, &n);
	w->idle_polls_max = dp->idle_polls;
	w->idle_sleep_ns = dp->idle_sleep_ns;

	w->net = nc;
	worker_free(w, w->net_owned);
	w->net_owned = nc;
	if (certs != NULL) {
		adopt_release_certs(w);
		w->certs = certs;
		w->certs_digest = certs_digest;
	}
	w->snap = h;
	w->gen = gen;
	net_config_changed(w);
	diag_adopt(w, h); /* diag_services and diag_client (diag/diag.h) */
	inbound_adopt(w, h); /* smtp_service (relay/inbound.h) */
	outbound_adopt(w, h); /* delivery settings (relay/outbound.h) */
	/* the time first: whoever sees the generation (release) sees when */
	atomic_store_explicit(&w->shm->region->readers[w->reader].adopted_ns, shm_now_ns(),
			      memory_order_relaxed);
	atomic_store_explicit(&w->shm->region->readers[w->reader].adopted, gen,
			      memory_order_release);
	WCOUNT(w, snapshot_adopted);
	dp_event(w, EV_SNAPSHOT_ADOPTED, "generation=%" PRIu64, gen);
	return PG_OK;

refuse:
	/*
	 * Keep running on the private config compiled from the previous
	 * generation; remember this one so it is not re-validated every pass.
	 * The adopted generation in shared memory stays the old one, so
	 * `posternctl status` shows the worker lagging.
	 */
	RTE_LOG(ERR, USER1, "worker %u: snapshot generation %lu refused: %s\n", w->id,
		(unsigned long)gen, err);
	WCOUNT(w, snapshot_rejected);
	dp_event(w, EV_SNAPSHOT_REFUSED, "generation=%" PRIu64 EVRING_SEP "reason=%s", gen, err);
	w->snap = NULL;
	w->gen = gen;
	return PG_ERROR;
}
