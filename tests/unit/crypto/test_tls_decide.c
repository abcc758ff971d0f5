/*
 * test_tls_decide.c - the outbound TLS decision (crypto/tls_decide.h) cell
 * by cell: the lab's policy matrix (tests/lab/test_tls.sh, 7 levels x 9
 * next-hop behaviours, the end-to-end proof) replayed as facts, with the
 * status and reason of every deferral and the outcome each record names;
 * then TLS unavailable here, a refused STARTTLS's text, and an exhaustive
 * walk over every combination of facts for the rule the product exists
 * for: above may, without mode=testing, mail never goes in plaintext.
 * Then a sender's floor (sender_tls_policy): the combining rule as a
 * table, the lab's cases of tests/lab/test_sender_tls.sh as facts, and the
 * same walk over every destination level, floor and mode=testing: under an
 * enforcing floor nothing goes in plaintext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "snap_format.h"
#include "tls_decide.h"

enum behaviour {
	B_NOTLS,
	B_R454,
	B_BROKEN,
	B_SELFSIGNED,
	B_WRONGNAME,
	B_EXPIRED,
	B_VALID,
	B_OTHERCA,
	B_MITM,
	B_COUNT
};
static const char *const bnames[B_COUNT] = {
    "notls", "r454", "broken", "selfsigned", "wrongname", "expired", "valid", "otherca", "mitm"};

struct level_row {
	const char *name;
	uint8_t level;
	bool testing;
	const char *want; /* T P D per behaviour, as test_tls.sh's EXPECT rows */
};
static const struct level_row rows[] = {
    {"none", SNAP_TLS_NONE, false, "PPPPPPPPP"},
    {"may", SNAP_TLS_MAY, false, "PPPTTTTTP"},
    {"encrypt", SNAP_TLS_ENCRYPT, false, "DDDTTTTTD"},
    {"fingerprint", SNAP_TLS_FINGERPRINT, false, "DDDDDDTDD"},
    {"verify", SNAP_TLS_VERIFY, false, "DDDDDDTDD"},
    {"secure", SNAP_TLS_SECURE, false, "DDDDDDTDD"},
    {"testing", SNAP_TLS_VERIFY, true, "PPPTTTTTP"},
};

/*
 * What tls_client_check says of each next hop's certificate at a level:
 * may and encrypt take any certificate; fingerprint is pinned to the valid
 * one; verify and secure need the lab CA's chain and the name mx.tls.test.
 */
static bool cert_ok(uint8_t level, enum behaviour b)
{
	if (level <= SNAP_TLS_ENCRYPT)
		return true;
	return b == B_VALID;
}

static const char *tls_level_name_for_test(uint8_t l)
{
	static const char *const names[] = {"none",        "may",    "encrypt",
	                                    "fingerprint", "verify", "secure"};

	return l <= SNAP_TLS_LEVEL_MAX ? names[l] : "?";
}

struct outcome {
	char cell;      /* T P D */
	char status[8]; /* of the deferral */
	char why[200];
	bool would_defer;   /* the decision that let the mail go */
	const char *record; /* tls_outcome of the record */
	unsigned connections;
};

/*
 * One message to a next hop with behaviour b under the combined policy c,
 * as delivery runs it (at most two connections): the certificate checked
 * against the evaluated level and, under mode=testing, the enforced one.
 */
static struct outcome deliver_combined(const struct tls_combined *c, enum behaviour b,
                                       bool local_tls)
{
	struct outcome o = {0};
	bool peer_broken = false;
	uint8_t level = c->level;
	bool testing = c->testing;

	for (unsigned conn = 1; conn <= 2; conn++) {
		struct tls_facts f = {0};
		struct tls_decision d;
		bool starttls =
		    tls_decide_starttls(level, testing, c->enforced, local_tls, peer_broken);

		o.connections = conn;
		f.level = level;
		f.testing = testing;
		f.enforced = testing ? c->enforced : SNAP_TLS_NONE;
		f.local_tls = local_tls;
		f.offered = b != B_NOTLS && b != B_MITM; /* the man in the middle strips it */
		f.host = "198.19.0.2";
		f.handshake = TLS_HS_NONE;
		if (starttls && f.offered) {
			if (b == B_R454) {
				f.starttls_code = 454;
				f.starttls_text = "4.7.0 TLS not available due to local problem";
			} else if (b == B_BROKEN) {
				f.handshake = TLS_HS_FAILED;
				f.handshake_why = "handshake: wrong version number";
			} else {
				f.handshake = TLS_HS_OK;
				f.cert_ok = cert_ok(level, b);
				f.cert_why = f.cert_ok ? NULL : "Server certificate not trusted";
				f.enforced_cert_ok = cert_ok(f.enforced, b);
				f.enforced_cert_why =
				    f.enforced_cert_ok ? NULL : "Server certificate not verified";
			}
		}
		tls_decide(&f, &d);
		if (d.action == TLS_RETRY_PLAIN) {
			assert_true(level == SNAP_TLS_MAY || testing);
			assert_true(!testing || c->enforced < SNAP_TLS_ENCRYPT);
			assert_int_equal(f.handshake, TLS_HS_FAILED);
			peer_broken = true; /* delivery remembers the peer */
			continue;
		}
		o.cell = d.action == TLS_SEND_TLS ? 'T' : d.action == TLS_SEND_PLAIN ? 'P' : 'D';
		snprintf(o.status, sizeof(o.status), "%s", d.status);
		snprintf(o.why, sizeof(o.why), "%s", d.why);
		o.would_defer = d.would_defer;
		o.record = tls_decide_outcome(
		    &d, d.action == TLS_SEND_TLS,
		    d.action != TLS_SEND_TLS                     ? TLS_VERDICT_NONE
		    : level >= SNAP_TLS_VERIFY && f.cert_ok      ? TLS_VERDICT_VERIFIED
		    : level == SNAP_TLS_FINGERPRINT && f.cert_ok ? TLS_VERDICT_FP_MATCHED
		                                                 : TLS_VERDICT_ANONYMOUS,
		    d.action != TLS_DEFER);
		return o;
	}
	fail_msg("%u/%s: still retrying after two connections", level, bnames[b]);
	return o;
}

/* One destination rule alone (no floor). */
static struct outcome deliver(uint8_t level, bool testing, enum behaviour b, bool local_tls)
{
	const struct tls_rule_level dest = {.level = level, .testing = testing};
	struct tls_combined c;

	tls_decide_combine(&dest, NULL, &c);
	return deliver_combined(&c, b, local_tls);
}

/* The lab's 63 cells, with the 4.7.x status of each deferral and the record's outcome. */
static void test_matrix(void **state)
{
	unsigned cells = 0;

	(void)state;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		for (unsigned b = 0; b < B_COUNT; b++) {
			struct outcome o = deliver(rows[r].level, rows[r].testing, b, true);
			char want = rows[r].want[b];

			if (o.cell != want)
				fail_msg("%s/%s: got %c, want %c (%s)", rows[r].name, bnames[b],
				         o.cell, want, o.why);
			if (want == 'D') {
				/* no TLS at all: 4.7.4; TLS that failed or fell short: 4.7.5 */
				const char *st =
				    b == B_NOTLS || b == B_R454 || b == B_MITM ? "4.7.4" : "4.7.5";

				if (strcmp(o.status, st) != 0 || strcmp(o.record, "deferred") != 0)
					fail_msg("%s/%s: status %s (want %s), outcome %s",
					         rows[r].name, bnames[b], o.status, st, o.record);
			}
			if (rows[r].testing) {
				/* mode=testing: every cell but the valid one would have deferred */
				if (o.would_defer != (b != B_VALID) ||
				    strcmp(o.record, b != B_VALID ? "would_defer" : "verified") !=
				        0)
					fail_msg("testing/%s: would_defer %d, outcome %s",
					         bnames[b], o.would_defer, o.record);
			} else if (want == 'P' && strcmp(o.record, "plaintext") != 0) {
				fail_msg("%s/%s: outcome %s, want plaintext", rows[r].name,
				         bnames[b], o.record);
			}
			/* may and testing against the broken handshake: plaintext on a second
			 * connection */
			if (b == B_BROKEN && (rows[r].level == SNAP_TLS_MAY || rows[r].testing))
				assert_int_equal(o.connections, 2);
			cells++;
		}
	}
	assert_int_equal(cells, 63);
}

/* The reasons, in Postfix's wording, as the delivery records and DSNs carry them. */
static void test_reasons(void **state)
{
	struct outcome o;

	(void)state;
	o = deliver(SNAP_TLS_ENCRYPT, false, B_NOTLS, true);
	assert_string_equal(o.why, "TLS is required, but was not offered by host 198.19.0.2");
	o = deliver(SNAP_TLS_ENCRYPT, false, B_R454, true);
	assert_string_equal(o.why, "TLS is required, but host 198.19.0.2 refused to start TLS: 454 "
	                           "4.7.0 TLS not available due to local problem");
	o = deliver(SNAP_TLS_SECURE, false, B_BROKEN, true);
	assert_string_equal(o.why, "Cannot start TLS: handshake: wrong version number");
	o = deliver(SNAP_TLS_VERIFY, false, B_EXPIRED, true);
	assert_string_equal(o.why, "Server certificate not trusted");
	/* no TLS context here: strict levels defer, may goes in plaintext */
	o = deliver(SNAP_TLS_FINGERPRINT, false, B_VALID, false);
	assert_int_equal(o.cell, 'D');
	assert_string_equal(o.status, "4.7.4");
	assert_string_equal(o.why, "TLS is required, but unavailable locally");
	o = deliver(SNAP_TLS_MAY, false, B_VALID, false);
	assert_int_equal(o.cell, 'P');
	/* encrypt in mode=testing without STARTTLS: goes, would have deferred 4.7.4 */
	o = deliver(SNAP_TLS_ENCRYPT, true, B_MITM, true);
	assert_int_equal(o.cell, 'P');
	assert_true(o.would_defer);
	assert_string_equal(o.status, "4.7.4");
}

/* tls_decide_starttls: who tries STARTTLS. */
static void test_starttls(void **state)
{
	(void)state;
	assert_false(tls_decide_starttls(SNAP_TLS_NONE, false, SNAP_TLS_NONE, true, false));
	assert_false(tls_decide_starttls(SNAP_TLS_VERIFY, false, SNAP_TLS_VERIFY, false,
	                                 false)); /* nothing to try with */
	assert_true(tls_decide_starttls(SNAP_TLS_MAY, false, SNAP_TLS_MAY, true, false));
	assert_false(tls_decide_starttls(SNAP_TLS_MAY, false, SNAP_TLS_MAY, true, true));
	assert_false(tls_decide_starttls(SNAP_TLS_SECURE, true, SNAP_TLS_MAY, true, true));
	/* a strict level keeps trying a broken peer: it defers rather than send plaintext */
	for (uint8_t l = SNAP_TLS_ENCRYPT; l <= SNAP_TLS_LEVEL_MAX; l++) {
		assert_true(tls_decide_starttls(l, false, l, true, true));
		/* so does mode=testing over an enforced strict level (a floor) */
		assert_true(tls_decide_starttls(SNAP_TLS_SECURE, true, l, true, true));
	}
}

/* The outcome names: only body bytes sent without TLS are "plaintext". */
static void test_outcomes(void **state)
{
	struct tls_decision d = {.action = TLS_SEND_PLAIN};

	(void)state;
	assert_string_equal(tls_decide_outcome(NULL, false, TLS_VERDICT_NONE, false), "not_sent");
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, false), "not_sent");
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, true), "plaintext");
	d.action = TLS_SEND_TLS;
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_ANONYMOUS, true), "encrypted");
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_VERIFIED, true), "verified");
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_FP_MATCHED, true),
	                    "fingerprint");
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_VERIFIED, false), "not_sent");
	d.would_defer = true;
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, true), "would_defer");
	d.action = TLS_DEFER;
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, false), "deferred");
}

/*
 * Every combination of facts: above may without mode=testing the mail goes
 * only over TLS that met the level, else it is deferred 4.7.x with a
 * reason; none and may never defer; testing never defers.
 */
static void test_never_plaintext(void **state)
{
	unsigned n = 0;

	(void)state;
	for (uint8_t level = SNAP_TLS_NONE; level <= SNAP_TLS_LEVEL_MAX; level++)
		for (int testing = 0; testing < 2; testing++)
			for (int local = 0; local < 2; local++)
				for (int offered = 0; offered < 2; offered++)
					for (int code = 0; code < 2; code++)
						for (int hs = TLS_HS_NONE; hs <= TLS_HS_FAILED;
						     hs++)
							for (int ok = 0; ok < 2; ok++) {
								struct tls_facts f = {
								    .level = level,
								    .testing = testing,
								    .local_tls = local,
								    .offered = offered,
								    .starttls_code = code ? 454 : 0,
								    .handshake = hs,
								    .cert_ok = ok,
								    .host = "h"};
								struct tls_decision d;
								bool strict =
								    level >= SNAP_TLS_ENCRYPT;

								tls_decide(&f, &d);
								n++;
								if (strict && !testing) {
									if (d.action ==
									    TLS_SEND_TLS)
										assert_true(
										    hs ==
										        TLS_HS_OK &&
										    ok);
									else
										assert_int_equal(
										    d.action,
										    TLS_DEFER);
									if (d.action == TLS_DEFER)
										assert_true(
										    d.why[0] !=
										        '\0' &&
										    strncmp(
										        d.status,
										        "4.7.",
										        4) == 0);
									assert_false(d.would_defer);
								} else {
									assert_int_not_equal(
									    d.action, TLS_DEFER);
								}
								if (d.action == TLS_SEND_TLS)
									assert_int_equal(hs,
									                 TLS_HS_OK);
								if (hs == TLS_HS_FAILED)
									assert_true(
									    d.action ==
									        TLS_RETRY_PLAIN ||
									    d.action == TLS_DEFER);
							}
	assert_int_equal(n, 6u * 2 * 2 * 2 * 2 * 3 * 2);
}

/* ---- a sender's floor ---- */

#define NOFLOOR 0xff /* no sender_tls_policy entry applies */

/* Which levels meet which floor (none and may are not floors). */
static void test_meets(void **state)
{
	/* rows: floor encrypt, verify, secure; columns none..secure */
	static const struct {
		uint8_t floor;
		const char *want; /* 1 meets, 0 does not, per level none..secure */
	} meets[] = {
	    {SNAP_TLS_ENCRYPT, "001111"},
	    {SNAP_TLS_VERIFY, "000111"},
	    {SNAP_TLS_SECURE, "000101"},
	};

	(void)state;
	for (size_t r = 0; r < sizeof(meets) / sizeof(meets[0]); r++)
		for (uint8_t l = SNAP_TLS_NONE; l <= SNAP_TLS_LEVEL_MAX; l++)
			if (tls_level_meets(l, meets[r].floor) != (meets[r].want[l] == '1'))
				fail_msg("level %u against floor %u: %d", l, meets[r].floor,
				         tls_level_meets(l, meets[r].floor));
	/* an unknown floor is met by nothing */
	assert_false(tls_level_meets(SNAP_TLS_SECURE, SNAP_TLS_LEVEL_MAX + 1));
	assert_string_equal(tls_rule_name(TLS_RULE_DESTINATION), "destination");
	assert_string_equal(tls_rule_name(TLS_RULE_SENDER), "sender");
}

/* The combining rule, as the README's table states it. */
static const struct combine_row {
	uint8_t dest;
	bool dest_testing;
	uint8_t floor; /* NOFLOOR: none */
	bool floor_testing;
	uint8_t level; /* evaluated */
	bool testing;
	uint8_t enforced;
	enum tls_rule level_by, decided_by;
} combine_rows[] = {
#define D TLS_RULE_DESTINATION
#define S TLS_RULE_SENDER
    /* no floor: the destination alone */
    {SNAP_TLS_MAY, 0, NOFLOOR, 0, SNAP_TLS_MAY, 0, SNAP_TLS_MAY, D, D},
    {SNAP_TLS_VERIFY, 1, NOFLOOR, 0, SNAP_TLS_VERIFY, 1, SNAP_TLS_MAY, D, D},
    /* an enforcing floor: a weaker destination is raised to it */
    {SNAP_TLS_NONE, 0, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_ENCRYPT, S, S},
    {SNAP_TLS_MAY, 0, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_ENCRYPT, S, S},
    {SNAP_TLS_MAY, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, S, S},
    {SNAP_TLS_ENCRYPT, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, S, S},
    {SNAP_TLS_VERIFY, 0, SNAP_TLS_SECURE, 0, SNAP_TLS_SECURE, 0, SNAP_TLS_SECURE, S, S},
    /* ... and a destination at least as strict stands */
    {SNAP_TLS_ENCRYPT, 0, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_ENCRYPT, D, D},
    {SNAP_TLS_VERIFY, 0, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, D, D},
    {SNAP_TLS_SECURE, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_SECURE, 0, SNAP_TLS_SECURE, D, D},
    {SNAP_TLS_FINGERPRINT, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_FINGERPRINT, 0, SNAP_TLS_FINGERPRINT, D,
     D},
    {SNAP_TLS_FINGERPRINT, 0, SNAP_TLS_SECURE, 0, SNAP_TLS_FINGERPRINT, 0, SNAP_TLS_FINGERPRINT, D,
     D},
    /* a destination in mode=testing enforces nothing: the floor holds, the entry is evaluated */
    {SNAP_TLS_VERIFY, 1, SNAP_TLS_ENCRYPT, 0, SNAP_TLS_VERIFY, 1, SNAP_TLS_ENCRYPT, D, S},
    {SNAP_TLS_VERIFY, 1, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, D, S},
    {SNAP_TLS_ENCRYPT, 1, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, S, S},
    /* a floor in mode=testing is evaluated; the destination's level holds */
    {SNAP_TLS_NONE, 0, SNAP_TLS_ENCRYPT, 1, SNAP_TLS_ENCRYPT, 1, SNAP_TLS_NONE, S, D},
    {SNAP_TLS_MAY, 0, SNAP_TLS_ENCRYPT, 1, SNAP_TLS_ENCRYPT, 1, SNAP_TLS_MAY, S, D},
    {SNAP_TLS_ENCRYPT, 0, SNAP_TLS_VERIFY, 1, SNAP_TLS_VERIFY, 1, SNAP_TLS_ENCRYPT, S, D},
    {SNAP_TLS_VERIFY, 0, SNAP_TLS_SECURE, 1, SNAP_TLS_SECURE, 1, SNAP_TLS_VERIFY, S, D},
    {SNAP_TLS_VERIFY, 0, SNAP_TLS_ENCRYPT, 1, SNAP_TLS_VERIFY, 0, SNAP_TLS_VERIFY, D, D},
    {SNAP_TLS_SECURE, 1, SNAP_TLS_VERIFY, 1, SNAP_TLS_SECURE, 1, SNAP_TLS_MAY, D, D},
#undef D
#undef S
};

static void combine(uint8_t dest, bool dest_testing, uint8_t floor, bool floor_testing,
                    struct tls_combined *c)
{
	const struct tls_rule_level d = {.level = dest, .testing = dest_testing};
	const struct tls_rule_level f = {.level = floor, .testing = floor_testing};

	tls_decide_combine(&d, floor == NOFLOOR ? NULL : &f, c);
}

static void test_combine(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(combine_rows) / sizeof(combine_rows[0]); i++) {
		const struct combine_row *r = &combine_rows[i];
		struct tls_combined c;

		combine(r->dest, r->dest_testing, r->floor, r->floor_testing, &c);
		if (c.level != r->level || c.testing != r->testing || c.enforced != r->enforced ||
		    c.level_by != r->level_by || c.decided_by != r->decided_by)
			fail_msg(
			    "row %zu (%s%s / %s%s): level %s testing %d enforced %s by %s,"
			    " decided by %s",
			    i, tls_level_name_for_test(r->dest), r->dest_testing ? "/testing" : "",
			    r->floor == NOFLOOR ? "-" : tls_level_name_for_test(r->floor),
			    r->floor_testing ? "/testing" : "", tls_level_name_for_test(c.level),
			    c.testing, tls_level_name_for_test(c.enforced),
			    tls_rule_name(c.level_by), tls_rule_name(c.decided_by));
	}
}

/*
 * The lab's cases (tests/lab/test_sender_tls.sh) as facts: a destination
 * rule and a sender floor against each next-hop behaviour. want as in
 * rows[]; would: 'W' where the record says would_defer.
 */
static const struct floor_case {
	const char *name;
	uint8_t dest;
	bool dest_testing;
	uint8_t floor;
	bool floor_testing;
	const char *want;  /* T P D per behaviour */
	const char *would; /* W: would_defer, - : not */
	enum tls_rule decided_by;
} floor_cases[] = {
    /* a may destination behaves as encrypt for a strict sender */
    {"may+encrypt", SNAP_TLS_MAY, 0, SNAP_TLS_ENCRYPT, 0, "DDDTTTTTD", "---------",
     TLS_RULE_SENDER},
    {"none+encrypt", SNAP_TLS_NONE, 0, SNAP_TLS_ENCRYPT, 0, "DDDTTTTTD", "---------",
     TLS_RULE_SENDER},
    /* a verify floor against a self-signed next hop: deferred 4.7.5 */
    {"may+verify", SNAP_TLS_MAY, 0, SNAP_TLS_VERIFY, 0, "DDDDDDTDD", "---------", TLS_RULE_SENDER},
    /* a destination verify stricter than the sender's encrypt wins */
    {"verify+encrypt", SNAP_TLS_VERIFY, 0, SNAP_TLS_ENCRYPT, 0, "DDDDDDTDD", "---------",
     TLS_RULE_DESTINATION},
    /* mode=testing floor: delivered as may, would_defer recorded */
    {"may+encrypt/testing", SNAP_TLS_MAY, 0, SNAP_TLS_ENCRYPT, 1, "PPPTTTTTP", "WWW-----W",
     TLS_RULE_DESTINATION},
    /* a testing floor stricter than an enforcing destination: the destination holds */
    {"encrypt+verify/testing", SNAP_TLS_ENCRYPT, 0, SNAP_TLS_VERIFY, 1, "DDDTTTTTD", "---WWW-W-",
     TLS_RULE_DESTINATION},
    /* a destination in mode=testing under an enforcing floor: the floor holds */
    {"verify/testing+encrypt", SNAP_TLS_VERIFY, 1, SNAP_TLS_ENCRYPT, 0, "DDDTTTTTD", "---WWW-W-",
     TLS_RULE_SENDER},
};

static void test_floor_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(floor_cases) / sizeof(floor_cases[0]); i++) {
		const struct floor_case *fc = &floor_cases[i];
		struct tls_combined c;

		combine(fc->dest, fc->dest_testing, fc->floor, fc->floor_testing, &c);
		assert_int_equal(c.decided_by, fc->decided_by);
		for (unsigned b = 0; b < B_COUNT; b++) {
			struct outcome o = deliver_combined(&c, b, true);

			if (o.cell != fc->want[b] || o.would_defer != (fc->would[b] == 'W'))
				fail_msg("%s/%s: got %c%s, want %c%s (%s)", fc->name, bnames[b],
				         o.cell, o.would_defer ? " would_defer" : "", fc->want[b],
				         fc->would[b] == 'W' ? " would_defer" : "", o.why);
			if (o.cell == 'D') {
				const char *st =
				    b == B_NOTLS || b == B_R454 || b == B_MITM ? "4.7.4" : "4.7.5";

				if (strcmp(o.status, st) != 0 || strcmp(o.record, "deferred") != 0)
					fail_msg("%s/%s: status %s (want %s), outcome %s", fc->name,
					         bnames[b], o.status, st, o.record);
			}
			if (o.would_defer && strcmp(o.record, "would_defer") != 0)
				fail_msg("%s/%s: outcome %s", fc->name, bnames[b], o.record);
		}
	}
	/* the reason names what was missing, in the destination levels' words */
	{
		struct tls_combined c;
		struct outcome o;

		combine(SNAP_TLS_MAY, 0, SNAP_TLS_VERIFY, 0, &c);
		o = deliver_combined(&c, B_SELFSIGNED, true);
		assert_string_equal(o.status, "4.7.5");
		assert_string_equal(o.why, "Server certificate not trusted");
		combine(SNAP_TLS_MAY, 0, SNAP_TLS_ENCRYPT, 0, &c);
		o = deliver_combined(&c, B_MITM, true);
		assert_string_equal(o.why,
		                    "TLS is required, but was not offered by host 198.19.0.2");
		/* testing verify over enforced encrypt: the enforced reason when it fails */
		combine(SNAP_TLS_ENCRYPT, 0, SNAP_TLS_VERIFY, 1, &c);
		o = deliver_combined(&c, B_BROKEN, true);
		assert_string_equal(o.why, "Cannot start TLS: handshake: wrong version number");
		assert_int_equal(o.connections, 1); /* no plaintext retry */
		o = deliver_combined(&c, B_EXPIRED, true);
		assert_true(o.would_defer);
		assert_string_equal(o.record, "would_defer");
	}
}

/*
 * Every destination level and mode, every floor and mode, every fact:
 * whatever an enforcing rule requires is never sent without it - no
 * plaintext under an enforcing floor or strict destination, and a
 * certificate the enforced level rejects defers.
 */
static void test_floor_never_plaintext(void **state)
{
	static const uint8_t floors[] = {NOFLOOR, SNAP_TLS_ENCRYPT, SNAP_TLS_VERIFY,
	                                 SNAP_TLS_SECURE};
	unsigned n = 0;

	(void)state;
	for (uint8_t dl = SNAP_TLS_NONE; dl <= SNAP_TLS_LEVEL_MAX; dl++)
		for (int dt = 0; dt < (dl >= SNAP_TLS_ENCRYPT ? 2 : 1); dt++)
			for (size_t fi = 0; fi < sizeof(floors); fi++)
				for (int ft = 0; ft < (floors[fi] == NOFLOOR ? 1 : 2); ft++) {
					struct tls_combined c;
					bool dest_strict = dl >= SNAP_TLS_ENCRYPT && !dt;
					bool floor_strict = floors[fi] != NOFLOOR && !ft;

					combine(dl, dt, floors[fi], ft, &c);
					/* never weaker than an enforcing rule */
					if (dest_strict)
						assert_true(tls_level_meets(c.enforced, dl));
					if (floor_strict)
						assert_true(
						    tls_level_meets(c.enforced, floors[fi]));
					if (floors[fi] != NOFLOOR)
						assert_true(tls_level_meets(c.level, floors[fi]));
					assert_int_equal(c.testing, c.level != c.enforced);
					for (int local = 0; local < 2; local++)
						for (int offered = 0; offered < 2; offered++)
							for (int hs = TLS_HS_NONE;
							     hs <= TLS_HS_FAILED; hs++)
								for (int ok = 0; ok < 2; ok++)
									for (int eok = 0; eok < 2;
									     eok++) {
										struct tls_facts f = {
										    .level =
										        c.level,
										    .testing =
										        c.testing,
										    .enforced =
										        c.testing
										            ? c.enforced
										            : SNAP_TLS_NONE,
										    .local_tls =
										        local,
										    .offered =
										        offered,
										    .handshake = hs,
										    .cert_ok = ok,
										    .enforced_cert_ok =
										        eok,
										    .host = "h"};
										struct tls_decision
										    d;
										bool strict =
										    dest_strict ||
										    floor_strict;
										/* the certificate
										 * verdict of what
										 * is enforced */
										bool enf_ok =
										    c.testing ? eok
										              : ok;

										tls_decide(&f, &d);
										n++;
										if (strict) {
											if (d.action ==
											    TLS_SEND_TLS)
												assert_true(
												    hs ==
												        TLS_HS_OK &&
												    (c.enforced <
												         SNAP_TLS_FINGERPRINT ||
												     enf_ok));
											else
												assert_int_equal(
												    d.action,
												    TLS_DEFER);
											if (d.action ==
											    TLS_DEFER)
												assert_true(
												    d.why[0] !=
												        '\0' &&
												    strncmp(
												        d.status,
												        "4.7.",
												        4) ==
												        0);
										} else {
											assert_int_not_equal(
											    d.action,
											    TLS_DEFER);
										}
										if (d.action ==
										    TLS_SEND_TLS)
											assert_int_equal(
											    hs,
											    TLS_HS_OK);
									}
				}
	assert_true(n > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matrix),
	    cmocka_unit_test(test_reasons),
	    cmocka_unit_test(test_starttls),
	    cmocka_unit_test(test_outcomes),
	    cmocka_unit_test(test_never_plaintext),
	    cmocka_unit_test(test_meets),
	    cmocka_unit_test(test_combine),
	    cmocka_unit_test(test_floor_cases),
	    cmocka_unit_test(test_floor_never_plaintext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
