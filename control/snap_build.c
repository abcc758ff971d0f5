/*
 * snap_build.c - lay out a control snapshot from the configuration. posternd
 * is the only writer of this format; postern-dp reads it through
 * snap_section, snap_string and common/policy_lookup after snap_validate.
 * Sizes are computed first, then one zeroed allocation is filled, so padding
 * bytes are deterministic and the checksum is reproducible. Name tables get
 * an open-addressing index at most half full (snap_format.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy_lookup.h"
#include "result.h"
#include "snap_build.h"

enum {
	SB_STRINGS,
	SB_DATAPLANE,
	SB_PORTS,
	SB_ROUTES,
	SB_RELAY,
	SB_TLS,
	SB_TLS_INDEX,
	SB_TRANSPORT,
	SB_TRANSPORT_INDEX,
	SB_NEXTHOPS,
	SB_MYNETWORKS,
	SB_RELAY_DOMAINS,
	SB_RELAY_DOMAINS_INDEX,
	SB_TLS_CERTS,
	SB_TLS_CERT_NAMES,
	SB_TLS_CERT_CHAIN,
	SB_TLS_DER,
	SB_DIAG_CLIENT,
	SB_TCP,
	SB_SMTP,
	SB_INBOUND_TLS,
	SB_INBOUND_TLS_NETWORKS,
	SB_INBOUND_TLS_SENDERS,
	SB_INBOUND_TLS_SENDERS_INDEX,
	SB_TLS_TRUST,
	SB_TLS_TRUST_DER,
	SB_TLS_TICKET_KEYS,
	SB_PORTS6,
	SB_ROUTES6,
	SB_DIAG_CLIENT6,
	SB_SETTINGS,
	SB_SENDER_TLS,
	SB_SENDER_TLS_INDEX,
	SB_SENDER_TLS_NETWORKS,
	SB_INBOUND_TLS_RECIPIENTS,
	SB_INBOUND_TLS_RECIPIENTS_INDEX,
	SB_DNS,
	SB_MYNETWORKS6,
	SB_INBOUND_TLS_NETWORKS6,
	SB_SENDER_TLS_NETWORKS6,
	SB_DELIVERY, /* last: older readers' tests append to it */
	SB_NSECTIONS
};

static const uint32_t snap_build_kinds[SB_NSECTIONS] = {
    [SB_STRINGS] = SNAP_SEC_STRINGS,
    [SB_DATAPLANE] = SNAP_SEC_DATAPLANE,
    [SB_PORTS] = SNAP_SEC_PORTS,
    [SB_ROUTES] = SNAP_SEC_ROUTES,
    [SB_RELAY] = SNAP_SEC_RELAY,
    [SB_TLS] = SNAP_SEC_TLS_POLICY,
    [SB_TLS_INDEX] = SNAP_SEC_TLS_POLICY_INDEX,
    [SB_TRANSPORT] = SNAP_SEC_TRANSPORT,
    [SB_TRANSPORT_INDEX] = SNAP_SEC_TRANSPORT_INDEX,
    [SB_NEXTHOPS] = SNAP_SEC_NEXTHOPS,
    [SB_MYNETWORKS] = SNAP_SEC_MYNETWORKS,
    [SB_RELAY_DOMAINS] = SNAP_SEC_RELAY_DOMAINS,
    [SB_RELAY_DOMAINS_INDEX] = SNAP_SEC_RELAY_DOMAINS_INDEX,
    [SB_TLS_CERTS] = SNAP_SEC_TLS_CERTS,
    [SB_TLS_CERT_NAMES] = SNAP_SEC_TLS_CERT_NAMES,
    [SB_TLS_CERT_CHAIN] = SNAP_SEC_TLS_CERT_CHAIN,
    [SB_TLS_DER] = SNAP_SEC_TLS_DER,
    [SB_DIAG_CLIENT] = SNAP_SEC_DIAG_CLIENT,
    [SB_TCP] = SNAP_SEC_TCP,
    [SB_SMTP] = SNAP_SEC_SMTP,
    [SB_INBOUND_TLS] = SNAP_SEC_INBOUND_TLS,
    [SB_INBOUND_TLS_NETWORKS] = SNAP_SEC_INBOUND_TLS_NETWORKS,
    [SB_INBOUND_TLS_SENDERS] = SNAP_SEC_INBOUND_TLS_SENDERS,
    [SB_INBOUND_TLS_SENDERS_INDEX] = SNAP_SEC_INBOUND_TLS_SENDERS_INDEX,
    [SB_TLS_TRUST] = SNAP_SEC_TLS_TRUST,
    [SB_TLS_TRUST_DER] = SNAP_SEC_TLS_TRUST_DER,
    [SB_TLS_TICKET_KEYS] = SNAP_SEC_TLS_TICKET_KEYS,
    [SB_PORTS6] = SNAP_SEC_PORTS6,
    [SB_ROUTES6] = SNAP_SEC_ROUTES6,
    [SB_DIAG_CLIENT6] = SNAP_SEC_DIAG_CLIENT6,
    [SB_SETTINGS] = SNAP_SEC_SETTINGS,
    [SB_SENDER_TLS] = SNAP_SEC_SENDER_TLS,
    [SB_SENDER_TLS_INDEX] = SNAP_SEC_SENDER_TLS_INDEX,
    [SB_SENDER_TLS_NETWORKS] = SNAP_SEC_SENDER_TLS_NETWORKS,
    [SB_INBOUND_TLS_RECIPIENTS] = SNAP_SEC_INBOUND_TLS_RECIPIENTS,
    [SB_INBOUND_TLS_RECIPIENTS_INDEX] = SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX,
    [SB_DNS] = SNAP_SEC_DNS,
    [SB_MYNETWORKS6] = SNAP_SEC_MYNETWORKS6,
    [SB_INBOUND_TLS_NETWORKS6] = SNAP_SEC_INBOUND_TLS_NETWORKS6,
    [SB_SENDER_TLS_NETWORKS6] = SNAP_SEC_SENDER_TLS_NETWORKS6,
    [SB_DELIVERY] = SNAP_SEC_DELIVERY,
};

/* The strings section being filled: offset 0 holds "" (a zero snap_str). */
struct snap_strings {
	char *base;
	size_t used, cap;
	bool overflow;
};

static size_t snap_align8(size_t v)
{
	return (v + 7) & ~(size_t)7;
}

static struct snap_str snap_add_n(struct snap_strings *s, const char *str, size_t n)
{
	struct snap_str r = {0, 0};

	if (n == 0)
		return r;
	if (s->used + n + 1 > s->cap || n > UINT32_MAX || s->used > UINT32_MAX) {
		s->overflow = true;
		return r;
	}
	memcpy(s->base + s->used, str, n);
	s->base[s->used + n] = '\0';
	r.off = (uint32_t)s->used;
	r.len = (uint32_t)n;
	s->used += n + 1;
	return r;
}

static struct snap_str snap_add(struct snap_strings *s, const char *str)
{
	return snap_add_n(s, str, strlen(str));
}

static size_t snap_strings_size(const struct pg_conf *c, const struct pg_policy *pol,
                                const struct pg_transport *tr, const struct pg_certs *certs,
                                const struct pg_sender_policy *snd)
{
	size_t n = 1;

	for (size_t i = 0; snd != NULL && i < snd->n; i++)
		n += strlen(snd->entries[i].key) + strlen(snd->entries[i].text) + 2;

	for (size_t i = 0; certs != NULL && i < certs->n; i++) {
		n += strlen(certs->entries[i].file) + 1;
		for (uint32_t j = 0; j < certs->entries[i].nnames; j++)
			n += strlen(certs->entries[i].names[j]) + 1;
	}

	for (uint32_t i = 0; i < c->nports; i++)
		n += strlen(c->ports[i].device) + 1;
	for (size_t i = 0; pol != NULL && i < pol->n; i++) {
		const struct policy_entry *e = &pol->entries[i];

		n += strlen(e->key) + strlen(e->match) + strlen(e->exclude) +
		     strlen(e->servername) + strlen(e->tafile) + strlen(e->text) + 6;
	}
	for (size_t i = 0; tr != NULL && i < tr->n; i++) {
		const struct transport_entry *e = &tr->entries[i];

		n += strlen(e->key) + strlen(e->text) + 2;
		for (uint32_t j = 0; j < e->nnexthops; j++)
			n += strlen(e->nexthops[j].host) + strlen(e->nexthops[j].dest) + 2;
	}
	n += strlen(c->relay_domains) + c->nrelay_domains + 1;
	n += strlen(c->smtp.myhostname) + strlen(c->smtp.spool_directory) + 2;
	n += strlen(c->smtpd_tls.senders) + c->smtpd_tls.nsenders + 1;
	n += strlen(c->smtpd_tls.recipients) + c->smtpd_tls.nrecipients + 1;
	n += strlen(c->dns.trust_anchor_file) + strlen(c->dns.root_hints_file) +
	     strlen(c->dns.unbound_conf) + 3;
	return n;
}

/* Buckets for n keys: a power of two, at least 2n, so probes stay short. */
static uint32_t snap_nbuckets(size_t n)
{
	uint32_t b = 1;

	while (b < 2 * n)
		b <<= 1;
	return b;
}

static void snap_index(uint32_t *buckets, uint32_t nb, const uint8_t *entries, size_t stride,
                       uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct snap_name_key *k =
		    (const struct snap_name_key *)(entries + (size_t)i * stride);
		uint32_t j = (uint32_t)k->hash & (nb - 1);

		while (buckets[j] != 0)
			j = (j + 1) & (nb - 1);
		buckets[j] = i + 1;
	}
}

static struct snap_name_key snap_key(struct snap_strings *s, const char *name, uint32_t kind,
                                     unsigned line)
{
	struct snap_name_key k = {.kind = kind, .line = line};

	k.name = snap_add(s, name);
	k.hash = policy_hash(name, strlen(name));
	return k;
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
	if (c->diag_services)
		dp->flags |= SNAP_DP_F_DIAG;
	dp->default_gateway = c->default_gateway;
}

/* ABI 2.3: each port's IPv6 address (prefix 0 = none) and the IPv6 routes. */
static void snap_fill_ipv6(const struct pg_conf *c, struct snap_port6 *ports,
                           struct snap_route6 *routes)
{
	for (uint32_t i = 0; i < c->nports; i++) {
		memcpy(ports[i].addr, c->ports[i].addr6, 16);
		ports[i].prefix_len = c->ports[i].prefix6_len;
	}
	for (uint32_t i = 0; i < c->nroutes6; i++) {
		memcpy(routes[i].prefix, c->routes6[i].prefix, 16);
		memcpy(routes[i].gateway, c->routes6[i].gateway, 16);
		routes[i].prefix_len = c->routes6[i].prefix_len;
		routes[i].port = c->routes6[i].port;
	}
}

static void snap_fill_tcp(const struct pg_conf_tcp *c, struct snap_tcp *t)
{
	t->max_conns = c->max_connections;
	t->syn_backlog = c->syn_backlog;
	t->max_buf_bytes = c->buffer_memory_max;
	t->sndbuf = (uint32_t)c->send_buffer; /* <= SNAP_TCP_BUF_MAX (conf.c) */
	t->rcvbuf = (uint32_t)c->receive_buffer;
	t->keepalive_idle_ns = c->keepalive_idle_ns;
	t->keepalive_intvl_ns = c->keepalive_intvl_ns;
	t->keepalive_probes = c->keepalive_probes;
	t->max_retries = c->max_retries;
	t->cc = c->cc;
	t->watermark_pct = (uint8_t)c->backpressure_watermark;
	t->flags = c->syncookies ? SNAP_TCP_F_SYNCOOKIES : 0;
}

static void snap_fill_dns(const struct pg_conf_dns *c, struct snap_strings *s, struct snap_dns *t)
{
	t->nresolvers = c->nresolvers;
	memcpy(t->resolvers, c->resolvers, sizeof(t->resolvers));
	t->trust_anchor_file = snap_add(s, c->trust_anchor_file);
	t->root_hints_file = snap_add(s, c->root_hints_file);
	t->unbound_conf = snap_add(s, c->unbound_conf);
}

static void snap_fill_smtp(const struct pg_conf_smtp *c, struct snap_strings *s,
                           struct snap_smtp *t)
{
	t->flags = (c->service ? SNAP_SMTP_F_SERVICE : 0) |
	           (c->bare_normalize ? SNAP_SMTP_F_BARE_NORMALIZE : 0);
	t->listen_port = (uint16_t)c->listen_port; /* 1..65535 (conf.c) */
	t->myhostname = snap_add(s, c->myhostname);
	t->spool_directory = snap_add(s, c->spool_directory);
}

/* The retry schedule (the other delivery keys are settings). */
static void snap_fill_delivery(const struct pg_conf_delivery *c, struct snap_delivery *t)
{
	t->nschedule = c->nschedule;
	for (uint32_t i = 0; i < c->nschedule; i++)
		t->schedule_s[i] =
		    (uint32_t)(c->schedule_ns[i] / 1000000000u); /* whole s (conf.c) */
}

/* Every declared-once key, in id order (conf.c checked each range). */
static void snap_fill_settings(const struct pg_conf *c, struct snap_setting *st)
{
	for (uint32_t id = 0; id < SET__COUNT; id++) {
		st[id].id = id;
		st[id].value = c->settings[id];
	}
}

static void snap_fill_tls(const struct pg_policy *pol, struct snap_strings *s,
                          struct snap_tls_policy *out)
{
	for (size_t i = 0; pol != NULL && i < pol->n; i++) {
		const struct policy_entry *e = &pol->entries[i];
		struct snap_tls_policy *t = &out[i];

		t->key = snap_key(s, e->key, e->kind, e->line);
		t->level = e->level;
		t->ciphers = e->ciphers;
		t->protocols = e->protocols;
		t->flags = e->flags;
		t->match = snap_add(s, e->match);
		t->exclude = snap_add(s, e->exclude);
		t->servername = snap_add(s, e->servername);
		t->tafile = snap_add(s, e->tafile);
		t->text = snap_add(s, e->text);
	}
}

static void snap_fill_transport(const struct pg_transport *tr, struct snap_strings *s,
                                struct snap_transport *out, struct snap_nexthop *nhs)
{
	uint32_t next = 0;

	for (size_t i = 0; tr != NULL && i < tr->n; i++) {
		const struct transport_entry *e = &tr->entries[i];
		struct snap_transport *t = &out[i];

		t->key = snap_key(s, e->key, e->kind, e->line);
		t->nexthop_first = next;
		t->nexthop_count = e->nnexthops;
		t->text = snap_add(s, e->text);
		for (uint32_t j = 0; j < e->nnexthops; j++, next++) {
			const struct transport_nexthop *n = &e->nexthops[j];

			nhs[next].host = snap_add(s, n->host);
			nhs[next].dest = snap_add(s, n->dest);
			nhs[next].port = n->port;
			nhs[next].flags = n->flags;
			nhs[next].addr = n->addr;
		}
	}
}

/* A normalized domain list of postern.conf ("a.com .b.com") as name keys. */
static void snap_fill_domain_list(const char *d, uint32_t count, unsigned line,
                                  struct snap_strings *s, struct snap_name_key *out)
{
	for (uint32_t i = 0; i < count && *d != '\0'; i++) {
		size_t n = strcspn(d, " ");
		char name[SNAP_NAME_MAX + 1];

		snprintf(name, sizeof(name), "%.*s", (int)n, d);
		out[i] =
		    snap_key(s, name, name[0] == '.' ? SNAP_NAME_PARENT : SNAP_NAME_DOMAIN, line);
		d += n + (d[n] == ' ');
	}
}

static void snap_fill_relay_domains(const struct pg_conf *c, struct snap_strings *s,
                                    struct snap_name_key *out)
{
	snap_fill_domain_list(c->relay_domains, c->nrelay_domains, 0, s, out);
}

/* How many of a network list are IPv6 (they go to the ABI 2.3 sections). */
static uint32_t snap_count_v6(const struct pg_conf_cidr *n, uint32_t count)
{
	uint32_t v6 = 0;

	for (uint32_t i = 0; i < count; i++)
		v6 += n[i].v6;
	return v6;
}

/* A network list into its IPv4 (1.x) and IPv6 (2.1) sections, in file order. */
static void snap_fill_cidrs(const struct pg_conf_cidr *in, uint32_t count, struct snap_cidr *v4,
                            struct snap_cidr6 *v6)
{
	for (uint32_t i = 0; i < count; i++) {
		if (in[i].v6) {
			memcpy(v6->prefix, in[i].addr6, 16);
			(v6++)->len = in[i].len;
		} else {
			v4->prefix = in[i].prefix;
			(v4++)->len = in[i].len;
		}
	}
}

/* ABI 1.6 inbound TLS requirements: settings, networks, sender names. */
static void snap_fill_inbound_tls(const struct pg_conf_smtpd_tls *c, struct snap_strings *s,
                                  struct snap_inbound_tls *t, struct snap_cidr *nets,
                                  struct snap_cidr6 *nets6, struct snap_name_key *senders)
{
	t->level = c->level;
	t->protocols = c->protocols;
	t->mandatory_protocols = c->mandatory_protocols;
	t->level_line = c->level_line;
	t->networks_line = c->networks_line;
	t->senders_line = c->senders_line;
	t->protocols_line = c->protocols_line;
	t->mandatory_line = c->mandatory_line;
	snap_fill_cidrs(c->networks, c->nnetworks, nets, nets6);
	snap_fill_domain_list(c->senders, c->nsenders, c->senders_line, s, senders);
}

/* ABI 2.1 sender floors, in file order. */
static void snap_fill_sender_tls(const struct pg_sender_policy *snd, struct snap_strings *s,
                                 struct snap_sender_tls *out)
{
	for (size_t i = 0; snd != NULL && i < snd->n; i++) {
		const struct sender_entry *e = &snd->entries[i];
		struct snap_sender_tls *t = &out[i];

		t->key = snap_key(s, e->key, e->kind, e->line);
		t->level = e->level;
		t->flags = e->flags;
		t->prefix = e->kind == SNAP_NAME_NETWORK ? e->prefix.v4 : 0;
		t->prefix_len = e->prefix_len;
		t->text = snap_add(s, e->text);
	}
}

/* The network entries' indexes, longest prefix first, ties in entry order. */
static void snap_fill_sender_networks(const struct pg_sender_policy *snd, uint32_t *out)
{
	uint32_t k = 0;

	for (int len = 32; snd != NULL && len >= 0; len--)
		for (size_t i = 0; i < snd->n; i++)
			if (snd->entries[i].kind == SNAP_NAME_NETWORK &&
			    snd->entries[i].prefix_len == len)
				out[k++] = (uint32_t)i;
}

/* ABI 2.3: the IPv6 network entries and their prefixes, longest first, ties in entry order. */
static void snap_fill_sender_networks6(const struct pg_sender_policy *snd,
                                       struct snap_sender_net6 *out)
{
	uint32_t k = 0;

	for (int len = 128; snd != NULL && len >= 0; len--)
		for (size_t i = 0; i < snd->n; i++)
			if (snd->entries[i].kind == SNAP_NAME_NETWORK6 &&
			    snd->entries[i].prefix_len == len) {
				out[k].entry = (uint32_t)i;
				memcpy(out[k].prefix, snd->entries[i].prefix.v6, 16);
				k++;
			}
}

/* Counts and sizes of the certificate sections; false past 32-bit offsets. */
static bool snap_certs_size(const struct pg_certs *certs, size_t *nnames, size_t *nchain,
                            size_t *der)
{
	*nnames = *nchain = *der = 0;
	for (size_t i = 0; certs != NULL && i < certs->n; i++) {
		const struct cert_entry *e = &certs->entries[i];

		*nnames += e->nnames;
		*nchain += e->nchain;
		*der += e->key_len;
		for (uint32_t j = 0; j < e->nchain; j++)
			*der += e->chain_len[j];
	}
	return *der < UINT32_MAX && *nnames < UINT32_MAX / 2 && *nchain < UINT32_MAX / 2 &&
	       (certs == NULL || certs->n < UINT32_MAX / 2);
}

static struct snap_bytes snap_add_der(uint8_t *der, size_t *used, const uint8_t *p, size_t n)
{
	struct snap_bytes b = {.off = (uint32_t)*used, .len = (uint32_t)n};

	memcpy(der + *used, p, n);
	*used += n;
	return b;
}

static void snap_fill_certs(const struct pg_certs *certs, struct snap_strings *s,
                            struct snap_tls_cert *out, struct snap_str *names,
                            struct snap_bytes *chain, uint8_t *der)
{
	uint32_t nn = 0, nc = 0;
	size_t used = 0;

	for (size_t i = 0; certs != NULL && i < certs->n; i++) {
		const struct cert_entry *e = &certs->entries[i];
		struct snap_tls_cert *t = &out[i];

		t->key_type = e->key_type;
		t->key_bits = e->key_bits;
		t->key = snap_add_der(der, &used, e->key_der, e->key_len);
		t->chain_first = nc;
		t->chain_count = e->nchain;
		for (uint32_t j = 0; j < e->nchain; j++)
			chain[nc++] = snap_add_der(der, &used, e->chain_der[j], e->chain_len[j]);
		t->name_first = nn;
		t->name_count = e->nnames;
		for (uint32_t j = 0; j < e->nnames; j++)
			names[nn++] = snap_add(s, e->names[j]);
		t->not_before = e->not_before;
		t->not_after = e->not_after;
		memcpy(t->sha256, e->sha256, sizeof(t->sha256));
		t->file = snap_add(s, e->file);
		t->line = e->line;
	}
}

/*
 * ABI 1.8 trust anchors: how many entries and DER bytes. A bundle's DER is
 * counted once however many tls_policy entries name its file; false past
 * 32-bit offsets.
 */
static bool snap_trust_size(const struct trust_bundle *cafile, const struct pg_policy *pol,
                            size_t *ntrust, size_t *der)
{
	*ntrust = cafile != NULL ? cafile->n : 0;
	*der = 0;
	for (uint32_t j = 0; cafile != NULL && j < cafile->n; j++)
		*der += cafile->len[j];
	for (size_t i = 0; pol != NULL && i < pol->ntafiles; i++)
		for (uint32_t j = 0; j < pol->tafiles[i].n; j++)
			*der += pol->tafiles[i].len[j];
	for (size_t i = 0; pol != NULL && i < pol->n; i++) {
		uint32_t b = pol->entries[i].tafile_bundle;

		if (b != 0 && b <= pol->ntafiles)
			*ntrust += pol->tafiles[b - 1].n;
	}
	return *der < UINT32_MAX && *ntrust < UINT32_MAX / 2;
}

/*
 * The GLOBAL anchors first, then each entry's in file order (the order
 * snap_validate requires); *bytes maps every certificate of every bundle
 * to its place in TLS_TRUST_DER. PG_OK or PG_ERROR (out of memory).
 */
static int snap_fill_trust(const struct trust_bundle *cafile, const struct pg_policy *pol,
                           struct snap_tls_trust *out, uint8_t *der)
{
	size_t used = 0, nflat = 0, nb = pol != NULL ? pol->ntafiles : 0;
	struct snap_bytes *flat;
	size_t *first;
	uint32_t k = 0;

	for (size_t i = 0; i < nb; i++)
		nflat += pol->tafiles[i].n;
	flat = calloc(nflat + 1, sizeof(*flat));
	first = calloc(nb + 1, sizeof(*first));
	if (flat == NULL || first == NULL) {
		free(flat);
		free(first);
		return PG_ERROR;
	}
	for (uint32_t j = 0; cafile != NULL && j < cafile->n; j++) {
		out[k].policy = SNAP_TRUST_GLOBAL;
		out[k++].der = snap_add_der(der, &used, cafile->der[j], cafile->len[j]);
	}
	for (size_t i = 0, f = 0; i < nb; i++) {
		first[i] = f;
		for (uint32_t j = 0; j < pol->tafiles[i].n; j++)
			flat[f++] = snap_add_der(der, &used, pol->tafiles[i].der[j],
			                         pol->tafiles[i].len[j]);
	}
	for (size_t i = 0; pol != NULL && i < pol->n; i++) {
		uint32_t b = pol->entries[i].tafile_bundle;

		if (b == 0 || b > nb)
			continue;
		for (uint32_t j = 0; j < pol->tafiles[b - 1].n; j++) {
			out[k].policy = (uint32_t)i;
			out[k++].der = flat[first[b - 1] + j];
		}
	}
	free(flat);
	free(first);
	return PG_OK;
}

int snap_build_all(const struct pg_conf *c, const struct pg_policy *pol,
                   const struct pg_transport *tr, void **blob_out, size_t *len_out, char *err,
                   size_t errlen)
{
	return snap_build_full(c, pol, tr, NULL, blob_out, len_out, err, errlen);
}

int snap_build_full(const struct pg_conf *c, const struct pg_policy *pol,
                    const struct pg_transport *tr, const struct pg_certs *certs, void **blob_out,
                    size_t *len_out, char *err, size_t errlen)
{
	const struct snap_build_input in = {
	    .conf = c, .policy = pol, .transport = tr, .certs = certs};

	return snap_build_from(&in, blob_out, len_out, err, errlen);
}

int snap_build_from(const struct snap_build_input *in, void **blob_out, size_t *len_out, char *err,
                    size_t errlen)
{
	const struct pg_conf *c = in->conf;
	const struct pg_policy *pol = in->policy;
	const struct pg_transport *tr = in->transport;
	const struct pg_certs *certs = in->certs;
	uint32_t nkeys = in->tickets != NULL ? in->tickets->n : 0;
	size_t ntrust, ntrust_der;
	struct snap_section sec[SB_NSECTIONS];
	struct snap_strings strings = {0};
	struct snap_header *h;
	struct snap_port *ports;
	struct snap_route *routes;
	struct timespec now;
	size_t npol = pol != NULL ? pol->n : 0, ntr = tr != NULL ? tr->n : 0, nnh = 0, off, len;
	size_t ncerts = certs != NULL ? certs->n : 0, ncnames, ncchain, nder;
	size_t nsnd = in->senders != NULL ? in->senders->n : 0, nsnd_net = 0, nsnd_net6 = 0;
	uint8_t *base;

	if (c->nports > SNAP_MAX_PORTS || c->nroutes > SNAP_MAX_ROUTES ||
	    c->nroutes6 > SNAP_MAX_ROUTES || c->workers > SNAP_MAX_WORKERS ||
	    npol >= UINT32_MAX / 2 || ntr >= UINT32_MAX / 2 ||
	    !snap_certs_size(certs, &ncnames, &ncchain, &nder) ||
	    !snap_trust_size(in->cafile, pol, &ntrust, &ntrust_der) ||
	    nkeys > SNAP_TICKET_KEYS_MAX || nsnd >= UINT32_MAX / 2) {
		snprintf(err, errlen, "configuration exceeds snapshot limits");
		return PG_ERROR;
	}
	for (size_t i = 0; i < ntr; i++)
		nnh += tr->entries[i].nnexthops;
	for (size_t i = 0; i < nsnd; i++) {
		nsnd_net += in->senders->entries[i].kind == SNAP_NAME_NETWORK;
		nsnd_net6 += in->senders->entries[i].kind == SNAP_NAME_NETWORK6;
	}

	/* the directory: element counts and sizes, offsets assigned below */
	memset(sec, 0, sizeof(sec));
	strings.cap = snap_strings_size(c, pol, tr, certs, in->senders);
	sec[SB_STRINGS].count = (uint32_t)strings.cap;
	sec[SB_STRINGS].size = strings.cap;
	sec[SB_DATAPLANE].count = 1;
	sec[SB_DATAPLANE].size = sizeof(struct snap_dataplane);
	sec[SB_PORTS].count = c->nports;
	sec[SB_PORTS].size = c->nports * sizeof(struct snap_port);
	sec[SB_ROUTES].count = c->nroutes;
	sec[SB_ROUTES].size = c->nroutes * sizeof(struct snap_route);
	sec[SB_RELAY].count = 1;
	sec[SB_RELAY].size = sizeof(struct snap_relay);
	sec[SB_TLS].count = (uint32_t)npol;
	sec[SB_TLS].size = npol * sizeof(struct snap_tls_policy);
	sec[SB_TLS_INDEX].count = snap_nbuckets(npol);
	sec[SB_TRANSPORT].count = (uint32_t)ntr;
	sec[SB_TRANSPORT].size = ntr * sizeof(struct snap_transport);
	sec[SB_TRANSPORT_INDEX].count = snap_nbuckets(ntr);
	sec[SB_NEXTHOPS].count = (uint32_t)nnh;
	sec[SB_NEXTHOPS].size = nnh * sizeof(struct snap_nexthop);
	sec[SB_MYNETWORKS6].count = snap_count_v6(c->mynetworks, c->nmynetworks);
	sec[SB_MYNETWORKS6].size = sec[SB_MYNETWORKS6].count * sizeof(struct snap_cidr6);
	sec[SB_MYNETWORKS].count = c->nmynetworks - sec[SB_MYNETWORKS6].count;
	sec[SB_MYNETWORKS].size = sec[SB_MYNETWORKS].count * sizeof(struct snap_cidr);
	sec[SB_RELAY_DOMAINS].count = c->nrelay_domains;
	sec[SB_RELAY_DOMAINS].size = c->nrelay_domains * sizeof(struct snap_name_key);
	sec[SB_RELAY_DOMAINS_INDEX].count = snap_nbuckets(c->nrelay_domains);
	sec[SB_TLS_CERTS].count = (uint32_t)ncerts;
	sec[SB_TLS_CERTS].size = ncerts * sizeof(struct snap_tls_cert);
	sec[SB_TLS_CERT_NAMES].count = (uint32_t)ncnames;
	sec[SB_TLS_CERT_NAMES].size = ncnames * sizeof(struct snap_str);
	sec[SB_TLS_CERT_CHAIN].count = (uint32_t)ncchain;
	sec[SB_TLS_CERT_CHAIN].size = ncchain * sizeof(struct snap_bytes);
	sec[SB_TLS_DER].count = (uint32_t)nder;
	sec[SB_TLS_DER].size = nder;
	sec[SB_DIAG_CLIENT].count = c->diag_client.set && !c->diag_client.v6 ? 1 : 0;
	sec[SB_DIAG_CLIENT].size = sec[SB_DIAG_CLIENT].count * sizeof(struct snap_diag_client);
	sec[SB_TCP].count = 1;
	sec[SB_TCP].size = sizeof(struct snap_tcp);
	sec[SB_SMTP].count = 1;
	sec[SB_SMTP].size = sizeof(struct snap_smtp);
	sec[SB_INBOUND_TLS].count = 1;
	sec[SB_INBOUND_TLS].size = sizeof(struct snap_inbound_tls);
	sec[SB_INBOUND_TLS_NETWORKS6].count =
	    snap_count_v6(c->smtpd_tls.networks, c->smtpd_tls.nnetworks);
	sec[SB_INBOUND_TLS_NETWORKS6].size =
	    sec[SB_INBOUND_TLS_NETWORKS6].count * sizeof(struct snap_cidr6);
	sec[SB_INBOUND_TLS_NETWORKS].count =
	    c->smtpd_tls.nnetworks - sec[SB_INBOUND_TLS_NETWORKS6].count;
	sec[SB_INBOUND_TLS_NETWORKS].size =
	    sec[SB_INBOUND_TLS_NETWORKS].count * sizeof(struct snap_cidr);
	sec[SB_INBOUND_TLS_SENDERS].count = c->smtpd_tls.nsenders;
	sec[SB_INBOUND_TLS_SENDERS].size = c->smtpd_tls.nsenders * sizeof(struct snap_name_key);
	sec[SB_INBOUND_TLS_SENDERS_INDEX].count = snap_nbuckets(c->smtpd_tls.nsenders);
	sec[SB_INBOUND_TLS_SENDERS_INDEX].size =
	    (size_t)sec[SB_INBOUND_TLS_SENDERS_INDEX].count * sizeof(uint32_t);
	sec[SB_TLS_TRUST].count = (uint32_t)ntrust;
	sec[SB_TLS_TRUST].size = ntrust * sizeof(struct snap_tls_trust);
	sec[SB_TLS_TRUST_DER].count = (uint32_t)ntrust_der;
	sec[SB_TLS_TRUST_DER].size = ntrust_der;
	sec[SB_TLS_TICKET_KEYS].count = nkeys;
	sec[SB_TLS_TICKET_KEYS].size = nkeys * sizeof(struct snap_tls_ticket_key);
	sec[SB_PORTS6].count = c->nports;
	sec[SB_PORTS6].size = c->nports * sizeof(struct snap_port6);
	sec[SB_ROUTES6].count = c->nroutes6;
	sec[SB_ROUTES6].size = c->nroutes6 * sizeof(struct snap_route6);
	sec[SB_DIAG_CLIENT6].count = c->diag_client.set && c->diag_client.v6 ? 1 : 0;
	sec[SB_DIAG_CLIENT6].size = sec[SB_DIAG_CLIENT6].count * sizeof(struct snap_diag_client6);
	sec[SB_SETTINGS].count = SET__COUNT;
	sec[SB_SETTINGS].size = SET__COUNT * sizeof(struct snap_setting);
	sec[SB_SENDER_TLS].count = (uint32_t)nsnd;
	sec[SB_SENDER_TLS].size = nsnd * sizeof(struct snap_sender_tls);
	sec[SB_SENDER_TLS_INDEX].count = snap_nbuckets(nsnd);
	sec[SB_SENDER_TLS_INDEX].size = (size_t)sec[SB_SENDER_TLS_INDEX].count * sizeof(uint32_t);
	sec[SB_SENDER_TLS_NETWORKS].count = (uint32_t)nsnd_net;
	sec[SB_SENDER_TLS_NETWORKS].size = nsnd_net * sizeof(uint32_t);
	sec[SB_SENDER_TLS_NETWORKS6].count = (uint32_t)nsnd_net6;
	sec[SB_SENDER_TLS_NETWORKS6].size = nsnd_net6 * sizeof(struct snap_sender_net6);
	sec[SB_INBOUND_TLS_RECIPIENTS].count = c->smtpd_tls.nrecipients;
	sec[SB_INBOUND_TLS_RECIPIENTS].size =
	    c->smtpd_tls.nrecipients * sizeof(struct snap_name_key);
	sec[SB_INBOUND_TLS_RECIPIENTS_INDEX].count = snap_nbuckets(c->smtpd_tls.nrecipients);
	sec[SB_INBOUND_TLS_RECIPIENTS_INDEX].size =
	    (size_t)sec[SB_INBOUND_TLS_RECIPIENTS_INDEX].count * sizeof(uint32_t);
	sec[SB_DELIVERY].count = 1;
	sec[SB_DELIVERY].size = sizeof(struct snap_delivery);
	sec[SB_DNS].count = conf_dns_enabled(&c->dns) ? 1 : 0;
	sec[SB_DNS].size = sec[SB_DNS].count * sizeof(struct snap_dns);
	for (int i = SB_TLS_INDEX; i <= SB_RELAY_DOMAINS_INDEX; i++)
		if (i == SB_TLS_INDEX || i == SB_TRANSPORT_INDEX || i == SB_RELAY_DOMAINS_INDEX)
			sec[i].size = (size_t)sec[i].count * sizeof(uint32_t);
	off = snap_align8(sizeof(*h) + SB_NSECTIONS * sizeof(struct snap_section));
	for (int i = 0; i < SB_NSECTIONS; i++) {
		sec[i].kind = snap_build_kinds[i];
		sec[i].offset = off;
		off = snap_align8(off + sec[i].size);
	}
	len = off;

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
	h->nsections = SB_NSECTIONS;
	clock_gettime(CLOCK_REALTIME, &now);
	h->built_unix_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	memcpy(h->sections, sec, sizeof(sec));

	strings.base = (char *)base + sec[SB_STRINGS].offset;
	strings.used = 1; /* strings[0] = '\0' from calloc */
	snap_fill_dataplane(c, (struct snap_dataplane *)(base + sec[SB_DATAPLANE].offset));

	ports = (struct snap_port *)(base + sec[SB_PORTS].offset);
	for (uint32_t i = 0; i < c->nports; i++) {
		ports[i].device = snap_add(&strings, c->ports[i].device);
		ports[i].addr = c->ports[i].addr;
		ports[i].prefix_len = c->ports[i].prefix_len;
		ports[i].mtu = c->ports[i].mtu;
	}

	routes = (struct snap_route *)(base + sec[SB_ROUTES].offset);
	for (uint32_t i = 0; i < c->nroutes; i++) {
		routes[i].prefix = c->routes[i].prefix;
		routes[i].prefix_len = c->routes[i].prefix_len;
		routes[i].port = c->routes[i].port;
		routes[i].gateway = c->routes[i].gateway;
	}

	((struct snap_relay *)(base + sec[SB_RELAY].offset))->tls_default_level =
	    c->tls_default_level;
	snap_fill_tls(pol, &strings, (struct snap_tls_policy *)(base + sec[SB_TLS].offset));
	snap_fill_transport(tr, &strings,
	                    (struct snap_transport *)(base + sec[SB_TRANSPORT].offset),
	                    (struct snap_nexthop *)(base + sec[SB_NEXTHOPS].offset));
	snap_fill_cidrs(c->mynetworks, c->nmynetworks,
	                (struct snap_cidr *)(base + sec[SB_MYNETWORKS].offset),
	                (struct snap_cidr6 *)(base + sec[SB_MYNETWORKS6].offset));
	snap_fill_relay_domains(c, &strings,
	                        (struct snap_name_key *)(base + sec[SB_RELAY_DOMAINS].offset));
	snap_index((uint32_t *)(base + sec[SB_TLS_INDEX].offset), sec[SB_TLS_INDEX].count,
	           base + sec[SB_TLS].offset, sizeof(struct snap_tls_policy), sec[SB_TLS].count);
	snap_index((uint32_t *)(base + sec[SB_TRANSPORT_INDEX].offset),
	           sec[SB_TRANSPORT_INDEX].count, base + sec[SB_TRANSPORT].offset,
	           sizeof(struct snap_transport), sec[SB_TRANSPORT].count);
	snap_index((uint32_t *)(base + sec[SB_RELAY_DOMAINS_INDEX].offset),
	           sec[SB_RELAY_DOMAINS_INDEX].count, base + sec[SB_RELAY_DOMAINS].offset,
	           sizeof(struct snap_name_key), sec[SB_RELAY_DOMAINS].count);
	snap_fill_certs(certs, &strings, (struct snap_tls_cert *)(base + sec[SB_TLS_CERTS].offset),
	                (struct snap_str *)(base + sec[SB_TLS_CERT_NAMES].offset),
	                (struct snap_bytes *)(base + sec[SB_TLS_CERT_CHAIN].offset),
	                base + sec[SB_TLS_DER].offset);
	snap_fill_ipv6(c, (struct snap_port6 *)(base + sec[SB_PORTS6].offset),
	               (struct snap_route6 *)(base + sec[SB_ROUTES6].offset));
	if (c->diag_client.set && c->diag_client.v6) {
		struct snap_diag_client6 *dc =
		    (struct snap_diag_client6 *)(base + sec[SB_DIAG_CLIENT6].offset);

		memcpy(dc->addr, c->diag_client.addr6, 16);
		dc->port = c->diag_client.port;
		dc->mode = c->diag_client.mode;
		dc->bytes = c->diag_client.bytes;
		dc->count = c->diag_client.count;
	} else if (c->diag_client.set) {
		struct snap_diag_client *dc =
		    (struct snap_diag_client *)(base + sec[SB_DIAG_CLIENT].offset);

		dc->addr = c->diag_client.addr;
		dc->port = c->diag_client.port;
		dc->mode = c->diag_client.mode;
		dc->bytes = c->diag_client.bytes;
		dc->count = c->diag_client.count;
	}
	snap_fill_tcp(&c->tcp, (struct snap_tcp *)(base + sec[SB_TCP].offset));
	snap_fill_smtp(&c->smtp, &strings, (struct snap_smtp *)(base + sec[SB_SMTP].offset));
	snap_fill_inbound_tls(&c->smtpd_tls, &strings,
	                      (struct snap_inbound_tls *)(base + sec[SB_INBOUND_TLS].offset),
	                      (struct snap_cidr *)(base + sec[SB_INBOUND_TLS_NETWORKS].offset),
	                      (struct snap_cidr6 *)(base + sec[SB_INBOUND_TLS_NETWORKS6].offset),
	                      (struct snap_name_key *)(base + sec[SB_INBOUND_TLS_SENDERS].offset));
	snap_index((uint32_t *)(base + sec[SB_INBOUND_TLS_SENDERS_INDEX].offset),
	           sec[SB_INBOUND_TLS_SENDERS_INDEX].count,
	           base + sec[SB_INBOUND_TLS_SENDERS].offset, sizeof(struct snap_name_key),
	           sec[SB_INBOUND_TLS_SENDERS].count);
	snap_fill_domain_list(
	    c->smtpd_tls.recipients, c->smtpd_tls.nrecipients, c->smtpd_tls.recipients_line,
	    &strings, (struct snap_name_key *)(base + sec[SB_INBOUND_TLS_RECIPIENTS].offset));
	snap_index((uint32_t *)(base + sec[SB_INBOUND_TLS_RECIPIENTS_INDEX].offset),
	           sec[SB_INBOUND_TLS_RECIPIENTS_INDEX].count,
	           base + sec[SB_INBOUND_TLS_RECIPIENTS].offset, sizeof(struct snap_name_key),
	           sec[SB_INBOUND_TLS_RECIPIENTS].count);
	snap_fill_sender_tls(in->senders, &strings,
	                     (struct snap_sender_tls *)(base + sec[SB_SENDER_TLS].offset));
	snap_index((uint32_t *)(base + sec[SB_SENDER_TLS_INDEX].offset),
	           sec[SB_SENDER_TLS_INDEX].count, base + sec[SB_SENDER_TLS].offset,
	           sizeof(struct snap_sender_tls), sec[SB_SENDER_TLS].count);
	snap_fill_sender_networks(in->senders,
	                          (uint32_t *)(base + sec[SB_SENDER_TLS_NETWORKS].offset));
	snap_fill_sender_networks6(
	    in->senders, (struct snap_sender_net6 *)(base + sec[SB_SENDER_TLS_NETWORKS6].offset));
	snap_fill_delivery(&c->delivery, (struct snap_delivery *)(base + sec[SB_DELIVERY].offset));
	snap_fill_settings(c, (struct snap_setting *)(base + sec[SB_SETTINGS].offset));
	if (sec[SB_DNS].count == 1)
		snap_fill_dns(&c->dns, &strings, (struct snap_dns *)(base + sec[SB_DNS].offset));
	if (snap_fill_trust(in->cafile, pol,
	                    (struct snap_tls_trust *)(base + sec[SB_TLS_TRUST].offset),
	                    base + sec[SB_TLS_TRUST_DER].offset) != PG_OK) {
		free(base);
		snprintf(err, errlen, "out of memory building the trust anchors");
		return PG_ERROR;
	}
	if (nkeys > 0)
		memcpy(base + sec[SB_TLS_TICKET_KEYS].offset, in->tickets->keys,
		       nkeys * sizeof(struct snap_tls_ticket_key));
	if (strings.overflow) {
		/* snap_strings_size and the fill functions disagree: a bug */
		free(base);
		snprintf(err, errlen, "internal: snapshot strings overflow");
		return PG_ERROR;
	}

	*blob_out = base;
	*len_out = len;
	return PG_OK;
}

int snap_build(const struct pg_conf *c, void **blob_out, size_t *len_out, char *err, size_t errlen)
{
	return snap_build_all(c, NULL, NULL, blob_out, len_out, err, errlen);
}
