/*
 * cert_report.c - posternd's answers to `posternctl cert list|show`, in
 * text and JSON. They load the published snapshot's certificates with the
 * dataplane's own code (crypto/tls_certs.c), so `cert show NAME` says what a
 * worker would choose for SNI NAME, and `cert list` proves the DER in the
 * snapshot decodes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "certs.h"
#include "result.h"
#include "tls_certs.h"

#define CERT_DAY_S 86400

static const char *const cert_match_names[] = {
    [TLS_MATCH_EXACT] = "exact",
    [TLS_MATCH_WILDCARD] = "wildcard",
    [TLS_MATCH_DEFAULT] = "default",
};

/* Whole days from now to t, rounded down (negative once expired). */
static int64_t cert_days_left(int64_t t, int64_t now)
{
	int64_t d = t - now;

	return d >= 0 ? d / CERT_DAY_S : -((-d + CERT_DAY_S - 1) / CERT_DAY_S);
}

static void cert_fmt_time(int64_t t, bool iso, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The default certificate of its key type: the first configured one. */
static bool cert_is_default(const struct tls_cert_set *set, const struct tls_cert *c)
{
	for (uint32_t i = 0; i < c->index; i++)
		if (set->certs[i].key_type == c->key_type)
			return false;
	return true;
}

static void cert_json(struct ctl_buf *b, const struct tls_cert_set *set, const struct tls_cert *c,
                      int64_t now)
{
	char label[32], fp[100], nb[32], na[32];

	certs_key_label(c->key_type, c->key_bits, label, sizeof(label));
	certs_fingerprint_hex(c->sha256, fp, sizeof(fp));
	cert_fmt_time(c->not_before, true, nb, sizeof(nb));
	cert_fmt_time(c->not_after, true, na, sizeof(na));
	ctl_buf_printf(b, "{\"index\":%" PRIu32 ",\"file\":", c->index);
	ctl_buf_json_str(b, c->file, SIZE_MAX);
	ctl_buf_printf(b,
	               ",\"line\":%u,\"key_type\":\"%s\",\"key_bits\":%" PRIu32
	               ",\"key\":\"%s\",\"names\":[",
	               c->line, certs_key_type_name(c->key_type), c->key_bits, label);
	for (uint32_t i = 0; i < c->nnames; i++) {
		ctl_buf_printf(b, "%s", i ? "," : "");
		ctl_buf_json_str(b, c->names[i], SIZE_MAX);
	}
	ctl_buf_printf(b,
	               "],\"not_before\":\"%s\",\"not_after\":\"%s\",\"not_after_unix\":%" PRId64
	               ",\"days_left\":%" PRId64 ",\"expired\":%s,\"sha256\":\"%s\","
	               "\"chain_length\":%d,\"default\":%s}",
	               nb, na, c->not_after, cert_days_left(c->not_after, now),
	               c->not_after <= now ? "true" : "false", fp, 1 + sk_X509_num(c->chain),
	               cert_is_default(set, c) ? "true" : "false");
}

static void cert_text(struct ctl_buf *b, const struct tls_cert_set *set, const struct tls_cert *c,
                      int64_t now, const char *note)
{
	char label[32], fp[100], na[32];
	int64_t days = cert_days_left(c->not_after, now);

	certs_key_label(c->key_type, c->key_bits, label, sizeof(label));
	certs_fingerprint_hex(c->sha256, fp, sizeof(fp));
	cert_fmt_time(c->not_after, false, na, sizeof(na));
	ctl_buf_printf(b, "%-11s %s%s%s\n", label, c->file,
	               cert_is_default(set, c) ? " (default)" : "", note);
	ctl_buf_printf(b, "  names:     ");
	for (uint32_t i = 0; i < c->nnames; i++)
		ctl_buf_printf(b, "%s%s", i ? " " : "", c->names[i]);
	ctl_buf_printf(b, "%s\n", c->nnames == 0 ? "(none: default only)" : "");
	if (c->not_after <= now)
		ctl_buf_printf(b, "  not after: %s (EXPIRED)\n", na);
	else
		ctl_buf_printf(b, "  not after: %s (%" PRId64 " day%s left)\n", na, days,
		               days == 1 ? "" : "s");
	ctl_buf_printf(b, "  sha256:    %s\n", fp);
}

/*
 * The other TLS material of the snapshot (ABI 1.8), counted: outbound
 * trust anchors of smtp_tls_CAfile and of tafile=, and the inbound
 * session-ticket keys with the current one's age.
 */
struct cert_tls_extra {
	uint32_t global, tafile; /* trust anchors */
	uint32_t nkeys;          /* session-ticket keys, 0 = tickets off */
	int64_t key_age;         /* of the current key, seconds */
};

static void cert_tls_extra(const struct snap_header *h, int64_t now, struct cert_tls_extra *x)
{
	uint32_t n, first;
	const struct snap_tls_ticket_key *k = snap_ticket_keys(h, &x->nkeys);

	snap_tls_trust(h, &n);
	x->global = snap_tls_trust_range(h, SNAP_TRUST_GLOBAL, &first);
	x->tafile = n - x->global;
	x->key_age = k != NULL ? now - k[0].created : 0;
}

static void cert_list(struct ctl_buf *b, const struct tls_cert_set *set,
                      const struct cert_tls_extra *x, int64_t now, bool json)
{
	if (json) {
		ctl_buf_printf(b,
		               "{\"generation\":%" PRIu64
		               ",\"trust_anchors\":{\"smtp_tls_CAfile\":%" PRIu32
		               ",\"tafile\":%" PRIu32 "},\"session_ticket_keys\":%" PRIu32
		               ",\"session_ticket_key_age_s\":",
		               set->generation, x->global, x->tafile, x->nkeys);
		if (x->nkeys > 0)
			ctl_buf_printf(b, "%" PRId64, x->key_age);
		else
			ctl_buf_printf(b, "null");
		ctl_buf_printf(b, ",\"certificates\":[");
		for (uint32_t i = 0; i < set->n; i++) {
			ctl_buf_printf(b, "%s", i ? "," : "");
			cert_json(b, set, &set->certs[i], now);
		}
		ctl_buf_printf(b, "]}\n");
		return;
	}
	if (set->n == 0) {
		ctl_buf_printf(b, "no certificates (tls_certificates is not set)\n");
	} else {
		ctl_buf_printf(b, "%" PRIu32 " certificate%s (generation %" PRIu64 ")\n", set->n,
		               set->n == 1 ? "" : "s", set->generation);
		for (uint32_t i = 0; i < set->n; i++)
			cert_text(b, set, &set->certs[i], now, "");
	}
	ctl_buf_printf(b, "trust anchors: %" PRIu32 " of smtp_tls_CAfile, %" PRIu32 " of tafile=\n",
	               x->global, x->tafile);
	if (x->nkeys == 0)
		ctl_buf_printf(b, "session tickets: off\n");
	else
		ctl_buf_printf(
		    b, "session tickets: %" PRIu32 " key%s, the current one %" PRId64 " s old\n",
		    x->nkeys, x->nkeys == 1 ? "" : "s", x->key_age);
}

/* The certificates of a choice in preference order, chosen one first. */
static int cert_ordered(const struct tls_cert_choice *ch, const struct tls_cert *out[TLS_KEY_TYPES])
{
	static const uint8_t pref[] = {SNAP_TLS_KEY_ECDSA, SNAP_TLS_KEY_ED25519, SNAP_TLS_KEY_RSA};
	int n = 0;

	for (size_t i = 0; i < sizeof(pref); i++)
		if (ch->by_type[pref[i] - 1] != NULL)
			out[n++] = ch->by_type[pref[i] - 1];
	return n;
}

static const char *cert_show(struct ctl_buf *b, const struct tls_cert_set *set, const char *arg,
                             int64_t now, bool json)
{
	const struct tls_cert *order[TLS_KEY_TYPES];
	struct tls_cert_choice ch;
	char name[TLS_SNI_MAX + 1];
	int n;

	if (tls_sni_normalize(arg, name, sizeof(name)) != 0) {
		ctl_buf_printf(b, "bad name \"%.100s\": not a host name as SNI carries it\n", arg);
		return "error";
	}
	if (tls_cert_select(set, name, TLS_ALLOW_ALL, &ch) != PG_OK) {
		ctl_buf_printf(b, "no certificates (tls_certificates is not set)\n");
		return "error";
	}
	n = cert_ordered(&ch, order);
	if (json) {
		ctl_buf_printf(b, "{\"name\":\"%s\",\"match\":\"%s\",\"matched\":", name,
		               cert_match_names[ch.how]);
		if (ch.matched != NULL)
			ctl_buf_json_str(b, ch.matched, SIZE_MAX);
		else
			ctl_buf_printf(b, "null");
		ctl_buf_printf(b, ",\"generation\":%" PRIu64 ",\"certificates\":[",
		               set->generation);
		for (int i = 0; i < n; i++) {
			ctl_buf_printf(b, "%s", i ? "," : "");
			cert_json(b, set, order[i], now);
		}
		ctl_buf_printf(b, "]}\n");
		return "ok";
	}
	ctl_buf_printf(b, "name:  %s\n", name);
	if (ch.how == TLS_MATCH_EXACT)
		ctl_buf_printf(b, "match: exact (a certificate names %s)\n", name);
	else if (ch.how == TLS_MATCH_WILDCARD)
		ctl_buf_printf(b, "match: wildcard (%s covers %s)\n", ch.matched, name);
	else
		ctl_buf_printf(b,
		               "match: default (no certificate names %s: the first configured"
		               " certificate of each key type)\n",
		               name);
	for (int i = 0; i < n; i++) {
		char note[96];

		note[0] = '\0';
		if (n > 1 && i == 0)
			snprintf(note, sizeof(note), ": for clients that verify %s",
			         certs_key_type_name(order[i]->key_type));
		else if (n > 1)
			snprintf(note, sizeof(note), ": for clients that verify %s, not the above",
			         certs_key_type_name(order[i]->key_type));
		cert_text(b, set, order[i], now, note);
	}
	return "ok";
}

const char *ctl_cert_command(struct ctl_buf *b, const struct snap_header *h, uint64_t gen,
                             int64_t now, int argc, char **argv)
{
	struct tls_cert_set set;
	const char *pos[2], *verdict = "ok";
	char err[512];
	bool json = false;
	int npos = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strncmp(argv[i], "--", 2) == 0) {
			ctl_buf_printf(b, "unknown option \"%.40s\"\n", argv[i]);
			return "error";
		} else if (npos == 2) {
			npos++;
			break;
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (!((npos == 1 && strcmp(pos[0], "list") == 0) ||
	      (npos == 2 && strcmp(pos[0], "show") == 0))) {
		ctl_buf_printf(b, "usage: cert list | show NAME\n");
		return "error";
	}
	if (h == NULL || tls_certs_load(h, &set, err, sizeof(err)) != PG_OK) {
		ctl_buf_printf(b, "the live snapshot's certificates do not load: %s\n",
		               h == NULL ? "no snapshot" : err);
		return "error";
	}
	set.generation = gen;
	if (npos == 1) {
		struct cert_tls_extra x;

		cert_tls_extra(h, now, &x);
		cert_list(b, &set, &x, now, json);
	} else {
		verdict = cert_show(b, &set, pos[1], now, json);
	}
	tls_certs_free(&set);
	return verdict;
}
