/*
 * policy_lookup.c - the name-table lookups of common/policy_lookup.h. The
 * tables are open-addressing hash indexes over entry arrays in the
 * snapshot; keys are lowercased and hashed from the right, so one pass over
 * a name yields the hash of the name and of every ".parent" suffix, and a
 * lookup through all parents costs O(length of the name) plus one string
 * compare per hash hit. The snapshot has been through snap_validate (which
 * checks every bucket and key), so the probes can trust the indexes; they
 * still stop after one lap of the table.
 */
#include <arpa/inet.h>
#include <string.h>

#include "policy_lookup.h"
#include "result.h"

#define POLICY_MAX_LABELS 128 /* a 253-byte name has at most 127 labels */

/* One name table of the snapshot: entries start with a snap_name_key. */
struct policy_table {
	const uint8_t *entries;
	size_t stride;
	uint32_t nentries;
	const uint32_t *buckets;
	uint32_t nbuckets;
};

static const char *const policy_levels[] = {
    [SNAP_TLS_NONE] = "none",       [SNAP_TLS_MAY] = "may",
    [SNAP_TLS_ENCRYPT] = "encrypt", [SNAP_TLS_FINGERPRINT] = "fingerprint",
    [SNAP_TLS_VERIFY] = "verify",   [SNAP_TLS_SECURE] = "secure",
};

static const char *const policy_grades[] = {
    [SNAP_TLS_GRADE_DEFAULT] = "",  [SNAP_TLS_GRADE_EXPORT] = "export",
    [SNAP_TLS_GRADE_LOW] = "low",   [SNAP_TLS_GRADE_MEDIUM] = "medium",
    [SNAP_TLS_GRADE_HIGH] = "high", [SNAP_TLS_GRADE_NULL] = "null",
};

static const char *const policy_matches[] = {
    [POLICY_MATCH_DEFAULT] = "default",   [POLICY_MATCH_NEXTHOP] = "nexthop",
    [POLICY_MATCH_EXACT] = "exact",       [POLICY_MATCH_PARENT] = "parent",
    [POLICY_MATCH_WILDCARD] = "wildcard", [POLICY_MATCH_NETWORK] = "network",
};

const char *policy_level_name(unsigned level)
{
	return level <= SNAP_TLS_LEVEL_MAX ? policy_levels[level] : "?";
}

const char *policy_grade_name(unsigned grade)
{
	return grade <= SNAP_TLS_GRADE_MAX ? policy_grades[grade] : "?";
}

const char *policy_match_name(enum policy_match m)
{
	return (unsigned)m <= POLICY_MATCH_NETWORK ? policy_matches[m] : "?";
}

uint64_t policy_hash(const char *s, size_t len)
{
	uint64_t h = SNAP_NAME_HASH_OFFSET;

	while (len-- > 0) {
		h ^= (uint8_t)s[len];
		h *= SNAP_NAME_HASH_PRIME;
	}
	return h;
}

static bool policy_table(const struct snap_header *h, uint32_t kind, uint32_t index_kind,
                         size_t stride, struct policy_table *t)
{
	t->entries = snap_section(h, kind, &t->nentries);
	t->buckets = snap_section(h, index_kind, &t->nbuckets);
	t->stride = stride;
	return t->entries != NULL && t->buckets != NULL && t->nbuckets > 0;
}

static const struct snap_name_key *policy_probe(const struct snap_header *h,
                                                const struct policy_table *t, uint64_t hash,
                                                const char *key, size_t len)
{
	uint32_t mask = t->nbuckets - 1;

	for (uint32_t n = 0, i = (uint32_t)hash & mask; n < t->nbuckets; n++, i = (i + 1) & mask) {
		uint32_t b = t->buckets[i];
		const struct snap_name_key *k;

		if (b == 0)
			return NULL;
		if (b > t->nentries)
			return NULL; /* refused by snap_validate; never trusted */
		k = (const struct snap_name_key *)(t->entries + (size_t)(b - 1) * t->stride);
		if (k->hash == hash && k->name.len == len &&
		    memcmp(snap_string(h, k->name), key, len) == 0)
			return k;
	}
	return NULL;
}

/*
 * Lowercase `in` into out[SNAP_NAME_MAX + 1]; drop one trailing dot (the
 * absolute form of a DNS name). Length, or -1 if too long.
 */
static int policy_lower(const char *in, char *out)
{
	size_t n = strlen(in);

	if (n > 1 && in[n - 1] == '.')
		n--;
	if (n > SNAP_NAME_MAX)
		return PG_ERROR;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return (int)n;
}

/*
 * name exactly, then every ".parent" suffix, nearest first (Postfix
 * smtp_tls_policy.c: strchr(site_name + 1, '.') in a loop). The suffix
 * hashes all come out of one right-to-left pass.
 */
static const struct snap_name_key *policy_walk(const struct snap_header *h,
                                               const struct policy_table *t, const char *name,
                                               size_t len, enum policy_match *m)
{
	uint64_t hashes[POLICY_MAX_LABELS];
	size_t dots[POLICY_MAX_LABELS];
	unsigned ndots = 0;
	uint64_t hash = SNAP_NAME_HASH_OFFSET;
	const struct snap_name_key *k;

	for (size_t i = len; i-- > 0;) {
		hash ^= (uint8_t)name[i];
		hash *= SNAP_NAME_HASH_PRIME;
		/* a dot at 0 would be the name itself, not a parent */
		if (name[i] == '.' && i > 0 && ndots < POLICY_MAX_LABELS) {
			hashes[ndots] = hash;
			dots[ndots++] = i;
		}
	}
	k = policy_probe(h, t, hash, name, len);
	if (k != NULL) {
		*m = POLICY_MATCH_EXACT;
		return k;
	}
	/* dots[] was filled right to left: the nearest parent is last */
	while (ndots-- > 0) {
		k = policy_probe(h, t, hashes[ndots], name + dots[ndots], len - dots[ndots]);
		if (k != NULL && k->kind == SNAP_NAME_PARENT) {
			*m = POLICY_MATCH_PARENT;
			return k;
		}
	}
	return NULL;
}

uint8_t policy_default_level(const struct snap_header *h)
{
	uint32_t n;
	const struct snap_relay *rl = snap_section(h, SNAP_SEC_RELAY, &n);

	return rl != NULL && n == 1 ? rl->tls_default_level : SNAP_TLS_MAY;
}

/* "[host]:25" is the same destination as "[host]" (default SMTP port). */
static size_t policy_strip_default_port(const char *key, size_t len)
{
	static const char suffix[] = "]:25";
	size_t n = sizeof(suffix) - 1;

	if (len > n && memcmp(key + len - n, suffix, n) == 0)
		return len - 3; /* keep the "]" */
	return len;
}

int policy_tls_lookup(const struct snap_header *h, const char *domain, const char *nexthop,
                      struct policy_result *r)
{
	char name[SNAP_NAME_MAX + 1];
	struct policy_table t;
	const struct snap_name_key *k = NULL;
	enum policy_match m = POLICY_MATCH_DEFAULT;
	int len, rc = PG_OK;

	memset(r, 0, sizeof(*r));
	r->level = policy_default_level(h);
	if (!policy_table(h, SNAP_SEC_TLS_POLICY, SNAP_SEC_TLS_POLICY_INDEX,
	                  sizeof(struct snap_tls_policy), &t))
		return PG_OK;
	if (nexthop != NULL && nexthop[0] != '\0') {
		len = policy_lower(nexthop, name);
		if (len < 0) {
			rc = PG_ERROR;
		} else if (name[0] == '[') {
			size_t n = policy_strip_default_port(name, (size_t)len);

			k = policy_probe(h, &t, policy_hash(name, n), name, n);
			m = POLICY_MATCH_NEXTHOP;
		} else if (strchr(name, ':') == NULL) {
			/* an MX-style next hop: its own domain walk */
			k = policy_walk(h, &t, name, (size_t)len, &m);
		}
		/* "host:port" without brackets: Postfix looks up that literal key,
		 * which Postern's table cannot hold; fall through to the domain */
		if (k != NULL)
			r->via_nexthop = true;
	}
	if (k == NULL && domain != NULL) {
		len = policy_lower(domain, name);
		if (len < 0)
			rc = PG_ERROR;
		else
			k = policy_walk(h, &t, name, (size_t)len, &m);
	}
	if (k == NULL)
		return rc;
	r->entry = (const struct snap_tls_policy *)k;
	r->match = m;
	r->level = r->entry->level;
	return PG_OK;
}

int transport_lookup(const struct snap_header *h, const char *domain, struct transport_result *r)
{
	char name[SNAP_NAME_MAX + 1];
	struct policy_table t;
	const struct snap_name_key *k;
	const struct snap_nexthop *nh;
	enum policy_match m = POLICY_MATCH_DEFAULT;
	uint32_t nnh;
	int len;

	memset(r, 0, sizeof(*r));
	if (!policy_table(h, SNAP_SEC_TRANSPORT, SNAP_SEC_TRANSPORT_INDEX,
	                  sizeof(struct snap_transport), &t))
		return PG_OK;
	len = policy_lower(domain, name);
	if (len < 0)
		return PG_ERROR;
	k = policy_walk(h, &t, name, (size_t)len, &m);
	if (k == NULL) {
		k = policy_probe(h, &t, policy_hash("*", 1), "*", 1);
		m = POLICY_MATCH_WILDCARD;
	}
	if (k == NULL)
		return PG_OK;
	r->entry = (const struct snap_transport *)k;
	r->match = m;
	nh = snap_section(h, SNAP_SEC_NEXTHOPS, &nnh);
	/* ranges were checked by snap_validate */
	if (nh != NULL && r->entry->nexthop_count > 0 && r->entry->nexthop_first < nnh &&
	    r->entry->nexthop_count <= nnh - r->entry->nexthop_first) {
		r->nexthops = nh + r->entry->nexthop_first;
		r->nnexthops = r->entry->nexthop_count;
	}
	return PG_OK;
}

bool relay_domain_allowed(const struct snap_header *h, const char *domain)
{
	char name[SNAP_NAME_MAX + 1];
	struct policy_table t;
	enum policy_match m;
	int len;

	if (!policy_table(h, SNAP_SEC_RELAY_DOMAINS, SNAP_SEC_RELAY_DOMAINS_INDEX,
	                  sizeof(struct snap_name_key), &t))
		return false;
	len = policy_lower(domain, name);
	if (len <= 0 || name[0] == '.' || name[0] == '[')
		return false;
	return policy_walk(h, &t, name, (size_t)len, &m) != NULL;
}

/* Whether a is inside the first len bits of p. */
static bool policy_in_prefix6(const uint8_t a[16], const uint8_t p[16], unsigned len)
{
	unsigned whole = len / 8, rest = len % 8;

	if (len > 128 || memcmp(a, p, whole) != 0)
		return false;
	return rest == 0 || ((a[whole] ^ p[whole]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool relay_client_allowed_addr(const struct snap_header *h, const struct pg_addr *addr)
{
	uint32_t n;
	const struct snap_cidr6 *c;

	if (pg_addr_is_v4(addr))
		return relay_client_allowed(h, addr->v4);
	if (!pg_addr_is_v6(addr))
		return false;
	c = snap_section(h, SNAP_SEC_MYNETWORKS6, &n);
	for (uint32_t i = 0; c != NULL && i < n; i++)
		if (policy_in_prefix6(addr->v6, c[i].prefix, c[i].len))
			return true;
	return false;
}

bool relay_client_allowed(const struct snap_header *h, uint32_t addr)
{
	uint32_t n;
	const struct snap_cidr *c = snap_section(h, SNAP_SEC_MYNETWORKS, &n);

	for (uint32_t i = 0; c != NULL && i < n; i++) {
		uint32_t mask = c[i].len == 0 ? 0 : 0xffffffffu << (32 - c[i].len);

		if ((ntohl(addr) & mask) == ntohl(c[i].prefix))
			return true;
	}
	return false;
}

/* ---- inbound TLS requirements (ABI 1.6) ---- */

static const char *const policy_inbound_reasons[] = {
    [INBOUND_TLS_NOT_REQUIRED] = "none",
    [POLICY_INBOUND_LISTENER] = "listener",
    [POLICY_INBOUND_NETWORK] = "network",
    [POLICY_INBOUND_SENDER] = "sender",
};

const char *policy_inbound_reason_name(enum policy_inbound_reason r)
{
	return (unsigned)r <= POLICY_INBOUND_SENDER ? policy_inbound_reasons[r] : "?";
}

const struct snap_cidr *policy_inbound_network(const struct snap_header *h, uint32_t client_ip)
{
	uint32_t n;
	const struct snap_cidr *c = snap_section(h, SNAP_SEC_INBOUND_TLS_NETWORKS, &n);
	const struct snap_cidr *best = NULL;

	for (uint32_t i = 0; c != NULL && i < n; i++) {
		uint32_t mask = c[i].len == 0 ? 0 : 0xffffffffu << (32 - c[i].len);

		if ((ntohl(client_ip) & mask) == ntohl(c[i].prefix) &&
		    (best == NULL || c[i].len > best->len))
			best = &c[i];
	}
	return best;
}

const struct snap_cidr6 *policy_inbound_network6(const struct snap_header *h,
                                                 const uint8_t client[16])
{
	uint32_t n;
	const struct snap_cidr6 *c = snap_section(h, SNAP_SEC_INBOUND_TLS_NETWORKS6, &n);
	const struct snap_cidr6 *best = NULL;

	for (uint32_t i = 0; c != NULL && i < n; i++)
		if (policy_in_prefix6(client, c[i].prefix, c[i].len) &&
		    (best == NULL || c[i].len > best->len))
			best = &c[i];
	return best;
}

/*
 * A domain in one of the inbound domain lists (smtpd_tls_required_senders,
 * smtpd_tls_required_recipients): exact or parent match, or NULL. An
 * address literal ([192.0.2.1]) or ".x" is no domain of a list.
 */
static const struct snap_name_key *policy_inbound_domain(const struct snap_header *h,
                                                         uint32_t table, uint32_t index,
                                                         const char *domain, enum policy_match *m)
{
	char name[SNAP_NAME_MAX + 1];
	struct policy_table t;
	enum policy_match dummy;
	int len;

	if (m == NULL)
		m = &dummy;
	*m = POLICY_MATCH_DEFAULT;
	if (domain == NULL || !policy_table(h, table, index, sizeof(struct snap_name_key), &t))
		return NULL;
	len = policy_lower(domain, name);
	if (len <= 0 || name[0] == '.' || name[0] == '[')
		return NULL;
	return policy_walk(h, &t, name, (size_t)len, m);
}

const struct snap_name_key *policy_inbound_sender(const struct snap_header *h,
                                                  const char *sender_domain, enum policy_match *m)
{
	return policy_inbound_domain(h, SNAP_SEC_INBOUND_TLS_SENDERS,
	                             SNAP_SEC_INBOUND_TLS_SENDERS_INDEX, sender_domain, m);
}

bool policy_inbound_required(const struct snap_header *h, uint32_t client_ip,
                             const char *sender_domain, struct policy_inbound_verdict *why)
{
	struct pg_addr a = pg_addr_v4(client_ip);

	return policy_inbound_required_addr(h, &a, sender_domain, why);
}

bool policy_inbound_required_addr(const struct snap_header *h, const struct pg_addr *client,
                                  const char *sender_domain, struct policy_inbound_verdict *why)
{
	struct policy_inbound_verdict v = {
	    .level = SNAP_TLS_MAY,
	    .protocols = SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3,
	    .mandatory_protocols = SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3,
	};
	uint32_t n;

	v.settings = snap_section(h, SNAP_SEC_INBOUND_TLS, &n);
	if (v.settings != NULL && n == 1) {
		v.level = v.settings->level;
		v.protocols = v.settings->protocols;
		v.mandatory_protocols = v.settings->mandatory_protocols;
		if (v.level == SNAP_TLS_ENCRYPT)
			v.reason = POLICY_INBOUND_LISTENER;
		else if (v.level != SNAP_TLS_NONE && pg_addr_is_v4(client) &&
		         (v.network = policy_inbound_network(h, client->v4)) != NULL)
			v.reason = POLICY_INBOUND_NETWORK;
		else if (v.level != SNAP_TLS_NONE && pg_addr_is_v6(client) &&
		         (v.network6 = policy_inbound_network6(h, client->v6)) != NULL)
			v.reason = POLICY_INBOUND_NETWORK;
		else if (v.level != SNAP_TLS_NONE &&
		         (v.sender = policy_inbound_sender(h, sender_domain, &v.sender_match)) !=
		             NULL)
			v.reason = POLICY_INBOUND_SENDER;
	} else {
		v.settings = NULL;
	}
	v.required = v.reason != INBOUND_TLS_NOT_REQUIRED;
	if (v.reason == POLICY_INBOUND_LISTENER || v.reason == POLICY_INBOUND_NETWORK)
		v.protocols = v.mandatory_protocols;
	if (why != NULL)
		*why = v;
	return v.required;
}

const struct snap_name_key *policy_inbound_recipient(const struct snap_header *h,
                                                     const char *rcpt_domain, enum policy_match *m)
{
	return policy_inbound_domain(h, SNAP_SEC_INBOUND_TLS_RECIPIENTS,
	                             SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX, rcpt_domain, m);
}

/* ---- sender TLS floors (ABI 2.1) ---- */

/* The longest network of SENDER_TLS_NETWORKS that holds client_ip, or NULL. */
static const struct snap_sender_tls *sender_tls_network(const struct snap_header *h,
                                                        uint32_t client_ip)
{
	uint32_t n, nnet;
	const struct snap_sender_tls *e = snap_section(h, SNAP_SEC_SENDER_TLS, &n);
	const uint32_t *nets = snap_section(h, SNAP_SEC_SENDER_TLS_NETWORKS, &nnet);

	for (uint32_t i = 0; e != NULL && nets != NULL && i < nnet; i++) {
		const struct snap_sender_tls *x;
		uint32_t mask;

		if (nets[i] >= n)
			return NULL; /* refused by snap_validate; never trusted */
		x = &e[nets[i]];
		mask = x->prefix_len == 0 ? 0 : 0xffffffffu << (32 - x->prefix_len);
		if ((ntohl(client_ip) & mask) == ntohl(x->prefix))
			return x; /* longest first: the first that holds it */
	}
	return NULL;
}

/*
 * Does floor a give more than floor b? An enforcing one over mode=testing,
 * then the stricter; a tie keeps b. Floors are encrypt, verify and secure
 * only (snap_validate), which tls_level_meets orders as their numbers do.
 */
static bool sender_tls_more(const struct snap_sender_tls *a, const struct snap_sender_tls *b)
{
	bool at = (a->flags & SNAP_TLS_F_TESTING) != 0, bt = (b->flags & SNAP_TLS_F_TESTING) != 0;

	if (at != bt)
		return bt;
	return a->level > b->level;
}

/* ABI 2.3: the longest IPv6 network floor that holds client, or NULL. */
static const struct snap_sender_tls *sender_tls_network6(const struct snap_header *h,
                                                         const uint8_t client[16])
{
	uint32_t n, nnet;
	const struct snap_sender_tls *e = snap_section(h, SNAP_SEC_SENDER_TLS, &n);
	const struct snap_sender_net6 *nets = snap_section(h, SNAP_SEC_SENDER_TLS_NETWORKS6, &nnet);

	for (uint32_t i = 0; e != NULL && nets != NULL && i < nnet; i++) {
		if (nets[i].entry >= n)
			return NULL; /* refused by snap_validate; never trusted */
		if (policy_in_prefix6(client, nets[i].prefix, e[nets[i].entry].prefix_len))
			return &e[nets[i].entry]; /* longest first: the first that holds it */
	}
	return NULL;
}

int sender_tls_lookup(const struct snap_header *h, const char *sender_domain, uint32_t client_ip,
                      bool has_client, struct sender_tls_result *r)
{
	struct pg_addr a = pg_addr_v4(client_ip);

	return sender_tls_lookup_addr(h, sender_domain, has_client ? &a : NULL, r);
}

int sender_tls_lookup_addr(const struct snap_header *h, const char *sender_domain,
                           const struct pg_addr *client, struct sender_tls_result *r)
{
	char name[SNAP_NAME_MAX + 1];
	struct policy_table t;
	int len = 0, rc = PG_OK;

	memset(r, 0, sizeof(*r));
	if (!policy_table(h, SNAP_SEC_SENDER_TLS, SNAP_SEC_SENDER_TLS_INDEX,
	                  sizeof(struct snap_sender_tls), &t))
		return PG_OK;
	if (sender_domain != NULL && sender_domain[0] != '\0') {
		len = policy_lower(sender_domain, name);
		if (len < 0)
			rc = PG_ERROR;
		/* an address literal ([192.0.2.1]) is no domain; nor is ".x" */
		else if (len > 0 && name[0] != '.' && name[0] != '[')
			r->domain_entry = (const struct snap_sender_tls *)policy_walk(
			    h, &t, name, (size_t)len, &r->domain_match);
	}
	if (r->domain_entry != NULL && (r->domain_entry->key.kind == SNAP_NAME_NETWORK ||
	                                r->domain_entry->key.kind == SNAP_NAME_NETWORK6))
		r->domain_entry = NULL; /* cannot be: a domain never looks like "[a/n]" */
	if (client != NULL && pg_addr_is_v4(client))
		r->network_entry = sender_tls_network(h, client->v4);
	else if (client != NULL && pg_addr_is_v6(client))
		r->network_entry = sender_tls_network6(h, client->v6);
	if (r->domain_entry != NULL &&
	    (r->network_entry == NULL || !sender_tls_more(r->network_entry, r->domain_entry))) {
		r->entry = r->domain_entry;
		r->match = r->domain_match;
	} else if (r->network_entry != NULL) {
		r->entry = r->network_entry;
		r->match = POLICY_MATCH_NETWORK;
	}
	return rc;
}
