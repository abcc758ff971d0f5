/*
 * outbound_tls.c - the TLS side of delivery (outbound_private.h): the
 * policy of a delivery to a domain through a next hop (tls_policy entry,
 * else tls_default_level) combined with the sender's floor
 * (sender_tls_policy, looked up at every attempt), its trust anchors for
 * this generation, the memory of peers whose handshake failed at may, and
 * the evidence each delivery record carries. What the policy decides for a
 * session, and how the two rules combine, is crypto/tls_decide.c's: pure
 * functions, unit-tested cell by cell.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/worker.h"
#include "outbound_private.h"
#include "policy_lookup.h"
#include "result.h"

/* The trust anchors of a policy entry (or SNAP_TRUST_GLOBAL) as a store. */
static X509_STORE *ob_store_range(const struct snap_header *h, uint32_t policy, bool partial)
{
	uint32_t first = 0, count = 0, n = snap_tls_trust_range(h, policy, &first);
	const struct snap_tls_trust *t = snap_tls_trust(h, &count);
	X509_STORE *st;

	if (n == 0 || t == NULL || (st = X509_STORE_new()) == NULL)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *der = snap_trust_der(h, &t[first + i]);

		if (der == NULL || tls_store_add_der(st, der, t[first + i].der.len) != PG_OK) {
			X509_STORE_free(st);
			return NULL; /* verify/secure then fail: "not trusted" */
		}
	}
	if (partial)
		X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	return st;
}

static void ob_tls_stores_free(struct outbound *ob)
{
	X509_STORE_free(ob->ca_store); /* sessions and destinations hold their own references */
	ob->ca_store = NULL;
	for (uint32_t i = 0; ob->ta_stores != NULL && i < ob->npolicy; i++)
		X509_STORE_free(ob->ta_stores[i]);
	worker_free(ob->w, ob->ta_stores);
	ob->ta_stores = NULL;
	ob->npolicy = 0;
}

/* This generation's trust: smtp_tls_CAfile now, tafile= stores when used. */
void ob_tls_adopt(struct outbound *ob, const struct snap_header *h)
{
	struct worker *w = ob->w;
	uint32_t np = 0;

	ob_tls_stores_free(ob);
	ob->ca_store = ob_store_range(h, SNAP_TRUST_GLOBAL, false);
	(void)snap_section(h, SNAP_SEC_TLS_POLICY, &np);
	if (np > 0) {
		ob->ta_stores = worker_alloc(w, np * sizeof(*ob->ta_stores));
		if (ob->ta_stores != NULL)
			ob->npolicy = np;
	}
}

void ob_tls_destroy(struct outbound *ob)
{
	ob_tls_stores_free(ob);
	SSL_CTX_free(ob->tls_ctx);
	ob->tls_ctx = NULL;
}

static uint64_t ob_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t ob_polkey_one(const struct tls_client_policy *p)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = ob_fnv(h, &p->level, 1);
	h = ob_fnv(h, &p->grade, 1);
	h = ob_fnv(h, &p->protocols, sizeof(p->protocols));
	h = ob_fnv(h, &p->flags, sizeof(p->flags));
	h = ob_fnv(h, p->match, strlen(p->match) + 1);
	h = ob_fnv(h, p->exclude, strlen(p->exclude) + 1);
	h = ob_fnv(h, p->servername, strlen(p->servername) + 1);
	return ob_fnv(h, p->source, strlen(p->source) + 1);
}

/* The connection cache's key: the policy evaluated and the one enforced. */
uint64_t ob_polkey(const struct tls_client_policy *p, const struct tls_client_policy *enf)
{
	uint64_t h = ob_polkey_one(p);

	return ob_fnv(h, &(uint64_t){ob_polkey_one(enf)}, sizeof(uint64_t));
}

bool ob_tls_testing(const struct tls_client_policy *p)
{
	return (p->flags & SNAP_TLS_F_TESTING) != 0;
}

/*
 * The destination's own TLS policy for a delivery to `domain` through next
 * hop nh (policy_tls_lookup: the next hop's entry, then the domain's, then
 * tls_default_level). p->store is borrowed from ob.
 */
static void ob_dest_policy(struct outbound *ob, const char *domain, const struct ob_nh *nh,
                           struct tls_client_policy *p)
{
	const struct snap_header *h = ob->w->snap;
	struct policy_result pr;

	memset(p, 0, sizeof(*p));
	p->level = SNAP_TLS_MAY;
	snprintf(p->source, sizeof(p->source), "default");
	if (h == NULL || policy_tls_lookup(h, domain, nh->dest, &pr) != PG_OK) {
		if (h != NULL)
			p->level = policy_default_level(h);
		snprintf(p->source, sizeof(p->source), "default (tls_default_level = %s)",
		         policy_level_name(p->level));
		return;
	}
	p->level = pr.level;
	if (pr.entry == NULL) {
		snprintf(p->source, sizeof(p->source), "default (tls_default_level = %s)",
		         policy_level_name(p->level));
	} else {
		const struct snap_tls_policy *e = pr.entry;
		uint32_t n = 0;
		const struct snap_tls_policy *base = snap_section(h, SNAP_SEC_TLS_POLICY, &n);
		uint32_t idx = (uint32_t)(e - base);

		p->grade = e->ciphers;
		p->protocols = e->protocols;
		p->flags = e->flags;
		snprintf(p->match, sizeof(p->match), "%s", snap_string(h, e->match));
		snprintf(p->exclude, sizeof(p->exclude), "%s", snap_string(h, e->exclude));
		snprintf(p->servername, sizeof(p->servername), "%s", snap_string(h, e->servername));
		snprintf(p->source, sizeof(p->source), "%s", snap_string(h, e->text));
		for (char *c = p->source; *c != '\0'; c++)
			if (*c == '\t')
				*c = ' '; /* the entry as written, one line, for the records */
		if (snap_string(h, e->tafile)[0] != '\0' && idx < ob->npolicy) {
			if (ob->ta_stores[idx] == NULL)
				ob->ta_stores[idx] = ob_store_range(h, idx, true);
			p->store = ob->ta_stores[idx];
			return;
		}
	}
	if (p->level == SNAP_TLS_VERIFY || p->level == SNAP_TLS_SECURE)
		p->store = ob->ca_store;
}

/*
 * The destination's policy at another level (a floor raised it, or the
 * level a mode=testing policy still enforces): the destination's
 * attributes stay - they say what the destination speaks (protocols=,
 * ciphers=, exclude=, servername=) and how it is authenticated (tafile=,
 * and match= between verify and secure); a name check the destination
 * never asked for gets the level's default match and smtp_tls_CAfile.
 */
static void ob_policy_at(struct outbound *ob, const struct tls_client_policy *dest, uint8_t level,
                         bool testing, struct tls_client_policy *out)
{
	bool names = level == SNAP_TLS_VERIFY || level == SNAP_TLS_SECURE;

	*out = *dest;
	out->level = level;
	out->flags = testing ? dest->flags | SNAP_TLS_F_TESTING : dest->flags & ~SNAP_TLS_F_TESTING;
	if (level == dest->level)
		return;
	if (!names || (dest->level != SNAP_TLS_VERIFY && dest->level != SNAP_TLS_SECURE))
		out->match[0] = '\0';
	if (names && out->store == NULL)
		out->store = ob->ca_store;
}

/*
 * The TLS policy of a delivery to `domain` through next hop nh for mail
 * under the sender floor `floor` (NULL or absent: none): the destination's
 * own policy and the floor combined (tls_decide_combine) into *c, the
 * policy evaluated into *p and, with mode=testing, the level still enforced
 * into *enf (= *p otherwise). Stores are borrowed from ob.
 */
void ob_policy(struct outbound *ob, const char *domain, const struct ob_nh *nh,
               const struct ob_floor *floor, struct tls_client_policy *p,
               struct tls_client_policy *enf, struct tls_combined *c)
{
	struct tls_client_policy dest;
	struct tls_rule_level dl;

	ob_dest_policy(ob, domain, nh, &dest);
	dl.level = dest.level;
	dl.testing = ob_tls_testing(&dest);
	tls_decide_combine(&dl, floor != NULL && floor->present ? &floor->rule : NULL, c);
	ob_policy_at(ob, &dest, c->level, c->testing, p);
	if (!c->testing) {
		*enf = *p;
		return;
	}
	ob_policy_at(ob, &dest, c->enforced, false, enf);
	/* the chain is verified during the handshake, against the store it was given */
	if (p->store == NULL)
		p->store = enf->store;
}

/*
 * The sender's floor of this attempt (sender_tls_policy) from the live
 * snapshot: the sender domain (a bounce's: the original sender's, which
 * the bounce quotes) and the submitting client's network.
 */
void ob_floor_lookup(struct outbound *ob, struct ob_msg *om)
{
	const struct snap_header *h = ob->w->snap;
	const char *sender = om->env.sender != NULL ? om->env.sender : "";
	const char *at = strrchr(sender, '@');
	const char *domain = at != NULL ? at + 1 : sender[0] == '\0' ? om->origin : NULL;
	struct sender_tls_result r;

	memset(&om->floor, 0, sizeof(om->floor));
	if (h == NULL)
		return;
	sender_tls_lookup_addr(h, domain, om->has_client ? &om->client : NULL, &r);
	if (r.entry == NULL)
		return;
	om->floor.present = true;
	om->floor.rule.level = r.entry->level;
	om->floor.rule.testing = (r.entry->flags & SNAP_TLS_F_TESTING) != 0;
	/* the entry as written, on one line, blanks squeezed to one space: for the records */
	{
		const char *t = snap_string(h, r.entry->text);
		size_t o = 0;

		for (; *t != '\0' && o + 1 < sizeof(om->floor.text); t++) {
			bool blank = *t == ' ' || *t == '\t';

			if (blank && (o == 0 || om->floor.text[o - 1] == ' '))
				continue;
			om->floor.text[o++] = blank ? ' ' : *t;
		}
		while (o > 0 && om->floor.text[o - 1] == ' ')
			o--;
		om->floor.text[o] = '\0';
	}
}

/* Do two recipient domains get the same TLS policy at every next hop? */
bool ob_same_tls(const struct snap_header *h, const struct ob_job *j, const char *a, const char *b)
{
	if (strcasecmp(a, b) == 0)
		return true;
	for (uint32_t k = 0; k < j->nnh; k++) {
		struct policy_result ra, rb;

		if (policy_tls_lookup(h, a, j->nh[k].dest, &ra) != PG_OK ||
		    policy_tls_lookup(h, b, j->nh[k].dest, &rb) != PG_OK)
			return false;
		if (ra.entry != rb.entry || ra.level != rb.level)
			return false;
	}
	return true;
}

/* ---- peers whose handshake failed (level may, mode=testing) ---- */

bool ob_tls_broken(struct outbound *ob, const struct pg_addr *addr, uint16_t port)
{
	for (unsigned i = 0; i < OB_TLS_BROKEN_MAX; i++) {
		struct ob_broken *b = &ob->broken[i];

		if (pg_addr_eq(&b->addr, addr) && b->port == port && b->until_ns > ob->w->now_ns)
			return true;
	}
	return false;
}

void ob_tls_mark_broken(struct outbound *ob, const struct pg_addr *addr, uint16_t port)
{
	struct ob_broken *slot = &ob->broken[0];

	for (unsigned i = 0; i < OB_TLS_BROKEN_MAX; i++) {
		struct ob_broken *b = &ob->broken[i];

		if (pg_addr_eq(&b->addr, addr) && b->port == port) {
			slot = b;
			break;
		}
		if (b->until_ns < slot->until_ns)
			slot = b; /* the oldest (or an empty one) makes room */
	}
	slot->addr = *addr;
	slot->port = port;
	slot->until_ns = ob->w->now_ns + OB_TLS_BROKEN_NS;
}

/* ---- the evidence ---- */

/*
 * Did the message's bytes go to the server for this recipient? Only once
 * the body was being sent (BDAT starts only after a recipient was
 * accepted): an attempt that ended earlier - connection refused or lost,
 * greeting, EHLO, MAIL, RCPT or DATA refused - sent no mail, in clear or
 * otherwise, and must never be counted as a plaintext delivery.
 */
static bool ob_body_sent(const struct smtp_client_reply *r)
{
	return r != NULL && (r->phase == SMTP_PHASE_BODY || r->phase == SMTP_PHASE_EOD);
}

/*
 * What TLS did for a recipient whose attempt at d ended with r, for its
 * delivery record; s NULL when no session got as far as SMTP.
 */
void ob_tls_evidence(const struct ob_dest *d, const struct ob_sess *s, const struct ob_job *j,
                     const struct smtp_client_reply *r, struct ob_tls_ev *t)
{
	const struct tls_client_policy *p = &d->pol;
	bool on = s != NULL && conn_tls_on(&s->conn);
	const struct tls_decision *dec = s != NULL && s->decided ? &s->tls : NULL;

	memset(t, 0, sizeof(*t));
	snprintf(t->policy, sizeof(t->policy), "%.*s", (int)sizeof(t->policy) - 1, p->source);
	snprintf(t->decided_by, sizeof(t->decided_by), "%s",
	         tls_rule_name(j != NULL ? j->tls.decided_by : TLS_RULE_DESTINATION));
	if (ob_tls_testing(p) && d->enf.level >= SNAP_TLS_ENCRYPT)
		snprintf(t->level, sizeof(t->level), "%s/testing (enforced: %s)",
		         policy_level_name(p->level), policy_level_name(d->enf.level));
	else
		snprintf(t->level, sizeof(t->level), "%s%s", policy_level_name(p->level),
		         ob_tls_testing(p) ? "/testing" : "");
	if (on) {
		snprintf(t->tls, sizeof(t->tls), "%s", s->peer.protocol);
		snprintf(t->cipher, sizeof(t->cipher), "%.*s", (int)sizeof(t->cipher) - 1,
		         s->peer.cipher);
		snprintf(t->verdict, sizeof(t->verdict), "%s", tls_verdict_name(s->peer.verdict));
		snprintf(t->subject, sizeof(t->subject), "%.*s", (int)sizeof(t->subject) - 1,
		         s->peer.subject);
		snprintf(t->fingerprint, sizeof(t->fingerprint), "%s", s->peer.fingerprint);
	} else {
		snprintf(t->tls, sizeof(t->tls), "none");
	}
	snprintf(
	    t->outcome, sizeof(t->outcome), "%s",
	    tls_decide_outcome(dec, on, on ? s->peer.verdict : TLS_VERDICT_NONE, ob_body_sent(r)));
	if (dec != NULL && dec->why[0] != '\0')
		snprintf(t->note, sizeof(t->note), "%s%.*s",
		         dec->would_defer ? "would have deferred: " : "", (int)sizeof(t->note) - 24,
		         dec->why);
	else if (s != NULL && !s->cert_ok && s->cert_why[0] != '\0')
		snprintf(t->note, sizeof(t->note), "%.*s", (int)sizeof(t->note) - 1, s->cert_why);
}
