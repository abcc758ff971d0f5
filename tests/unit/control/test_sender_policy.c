/*
 * test_sender_policy.c - CONFIG_DIR/sender_tls_policy (control/
 * sender_policy.h): a table of bad lines with the exact "FILE:LINE:
 * message" each must give, good files (keys normalized, networks, /32,
 * continuation lines, comments, mode=testing), and the policy set|del
 * --sender rewrite (comments and other entries kept byte for byte, a
 * refused change returns the message and no text, a del of a missing key
 * is PG_DECLINED).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "result.h"
#include "sender_policy.h"

#define DIR "/cfg"
#define SFILE DIR "/sender_tls_policy"

static const struct bad_case {
	const char *text;
	const char *want; /* exact message */
} bad[] = {
    {"provider.example\n",
     SFILE ":1: missing floor after \"provider.example\" (encrypt, verify, secure)"},
    {"# floors\n\nprovider.example may\n",
     SFILE ":3: \"may\" is not a floor: a sender_tls_policy entry raises what the destinations"
           " decide, never lowers it (encrypt, verify, secure)"},
    {"provider.example none\n",
     SFILE ":1: \"none\" is not a floor: a sender_tls_policy entry raises what the destinations"
           " decide, never lowers it (encrypt, verify, secure)"},
    {"provider.example fingerprint\n",
     SFILE ":1: fingerprint pins the certificate of one destination: set it in tls_policy"
           " (floors: encrypt, verify, secure)"},
    {"provider.example dane\n", SFILE ":1: dane requires DNSSEC lookups, not supported yet"},
    {"provider.example strict\n", SFILE ":1: unknown floor \"strict\" (encrypt, verify, secure)"},
    {"provider.example encrypt\nPROVIDER.example verify\n",
     SFILE ":2: duplicate key \"PROVIDER.example\" (first at line 1)"},
    {"[198.18.0.7] encrypt\n[198.18.0.7/32] verify\n",
     SFILE ":2: duplicate key \"[198.18.0.7/32]\" (first at line 1)"},
    {"* encrypt\n",
     SFILE ":1: bad key \"*\": \"*\" is not a sender_tls_policy key: a floor for all mail is the"
           " client network [0.0.0.0/0], or tls_default_level"},
    {"ops@provider.example encrypt\n",
     SFILE ":1: bad key \"ops@provider.example\": keys are sender domains (domain, .domain) or"
           " client networks ([a.b.c.d/len]), not addresses"},
    {"provider..example encrypt\n", SFILE ":1: bad key \"provider..example\": empty label"},
    {"198.18.0.0/24 encrypt\n",
     SFILE ":1: bad key \"198.18.0.0/24\": a client network is written [a.b.c.d/len] or"
           " [2001:db8::/len]"},
    {"[198.18.0.0/24 encrypt\n", SFILE ":1: bad key \"[198.18.0.0/24\": missing ']'"},
    {"[198.18.0.0/24]:25 encrypt\n",
     SFILE ":1: bad key \"[198.18.0.0/24]:25\": nothing may follow ']' (a client network is"
           " [a.b.c.d/len] or [2001:db8::/len])"},
    {"[198.18.0.1/24] encrypt\n",
     SFILE ":1: bad key \"[198.18.0.1/24]\": host bits set in 198.18.0.1/24 (the network is"
           " [198.18.0.0/24])"},
    {"[198.18.0.0/33] encrypt\n",
     SFILE ":1: bad key \"[198.18.0.0/33]\": prefix length must be a number 0..32"},
    {"[198.18.0.0/] encrypt\n",
     SFILE ":1: bad key \"[198.18.0.0/]\": prefix length must be a number 0..32"},
    {"[198.18.0/24] encrypt\n",
     SFILE ":1: bad key \"[198.18.0/24]\": \"198.18.0\" is not an IPv4 address"},
    {"[mx.provider.example] encrypt\n",
     SFILE ":1: bad key \"[mx.provider.example]\": \"mx.provider.example\" is not an IPv4"
           " address"},
    {"[2001:db8::1/32] encrypt\n",
     SFILE ":1: bad key \"[2001:db8::1/32]\": host bits set in 2001:db8::1/32 (the network is"
           " [2001:db8::/32])"},
    {"[2001:db8::/129] encrypt\n",
     SFILE ":1: bad key \"[2001:db8::/129]\": prefix length must be a number 0..128"},
    {"[2001:db8::/] encrypt\n",
     SFILE ":1: bad key \"[2001:db8::/]\": prefix length must be a number 0..128"},
    {"[2001:db8:::1] encrypt\n",
     SFILE ":1: bad key \"[2001:db8:::1]\": \"2001:db8:::1\" is not an IPv6 address"},
    {"[2001:db8::]/32 encrypt\n",
     SFILE ":1: bad key \"[2001:db8::]/32\": the prefix length goes inside the brackets:"
           " [2001:db8::/32]"},
    {"provider.example encrypt match=hostname\n",
     SFILE ":1: attribute \"match\" is not a floor's: a floor keeps the destination's own"
           " attributes (set them in tls_policy); the only one here is mode=testing"},
    {"provider.example encrypt mode=enforce\n",
     SFILE ":1: bad mode=enforce: the only mode is \"testing\""},
    {"provider.example encrypt mode=testing,mode=testing\n",
     SFILE ":1: attribute \"mode\" is specified more than once"},
    {"provider.example encrypt testing\n",
     SFILE ":1: \"testing\": expected NAME=VALUE (mode=testing)"},
    {"provider.example encrypt # ours\n",
     SFILE ":1: \"#\": a comment must start its own line (Postfix tables have no trailing"
           " comments)"},
    {"  provider.example encrypt\n",
     SFILE ":1: continuation line (starts with whitespace) without a preceding entry"},
};

static void test_bad_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pg_sender_policy p;
		char err[1024] = "";

		if (sender_policy_parse_text(DIR, bad[i].text, strlen(bad[i].text), &p, err,
		                             sizeof(err)) != PG_ERROR)
			fail_msg("accepted: %s", bad[i].text);
		if (strcmp(err, bad[i].want) != 0)
			fail_msg("%s\n  want: %s\n  got:  %s", bad[i].text, bad[i].want, err);
		assert_int_equal(p.n, 0);
		assert_null(p.entries);
	}
}

static void test_good_file(void **state)
{
	static const char text[] = "# the provider's own mail: never unencrypted\n"
	                           "Provider.EXAMPLE\tencrypt\n"
	                           ".provider.example  VERIFY\n"
	                           "\n"
	                           "[198.18.0.0/24] encrypt\n"
	                           "    mode=Testing\n"
	                           "[198.18.0.7] secure\n"
	                           "[0.0.0.0/0] encrypt, mode=testing\n"
	                           "customer.test secure\r\n"
	                           "[2001:DB8:18::/48] encrypt\n"
	                           "[2001:db8:0::100] verify\n";
	struct pg_sender_policy p;
	char err[512];

	(void)state;
	if (sender_policy_parse_text(DIR, text, strlen(text), &p, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_string_equal(p.path, SFILE);
	assert_int_equal(p.n, 8);
	assert_string_equal(p.entries[0].key, "provider.example");
	assert_int_equal(p.entries[0].kind, SNAP_NAME_DOMAIN);
	assert_int_equal(p.entries[0].level, SNAP_TLS_ENCRYPT);
	assert_int_equal(p.entries[0].flags, 0);
	assert_int_equal(p.entries[0].line, 2);
	assert_string_equal(p.entries[0].text, "Provider.EXAMPLE\tencrypt");
	assert_string_equal(p.entries[1].key, ".provider.example");
	assert_int_equal(p.entries[1].kind, SNAP_NAME_PARENT);
	assert_int_equal(p.entries[1].level, SNAP_TLS_VERIFY);
	assert_string_equal(p.entries[2].key, "[198.18.0.0/24]");
	assert_int_equal(p.entries[2].kind, SNAP_NAME_NETWORK);
	assert_int_equal(p.entries[2].prefix.v4, inet_addr("198.18.0.0"));
	assert_int_equal(p.entries[2].prefix_len, 24);
	assert_int_equal(p.entries[2].flags, SNAP_TLS_F_TESTING);
	assert_int_equal(p.entries[2].line, 5);
	assert_string_equal(p.entries[2].text, "[198.18.0.0/24] encrypt mode=Testing");
	assert_string_equal(p.entries[3].key, "[198.18.0.7/32]");
	assert_int_equal(p.entries[3].prefix_len, 32);
	assert_int_equal(p.entries[3].level, SNAP_TLS_SECURE);
	assert_string_equal(p.entries[4].key, "[0.0.0.0/0]");
	assert_int_equal(p.entries[4].prefix_len, 0);
	assert_int_equal(p.entries[4].flags, SNAP_TLS_F_TESTING);
	assert_string_equal(p.entries[5].key, "customer.test");
	assert_non_null(sender_policy_find(&p, "[198.18.0.7/32]"));
	assert_string_equal(p.entries[6].key, "[2001:db8:18::/48]");
	assert_int_equal(p.entries[6].kind, SNAP_NAME_NETWORK6);
	assert_int_equal(p.entries[6].prefix_len, 48);
	assert_true(pg_addr_is_v6(&p.entries[6].prefix));
	assert_int_equal(p.entries[6].prefix.v6[5], 0x18);
	assert_string_equal(p.entries[7].key, "[2001:db8::100/128]");
	assert_int_equal(p.entries[7].prefix_len, 128);
	assert_null(sender_policy_find(&p, "[198.18.0.7]"));
	sender_policy_free(&p);
	/* an empty file (or none at all): no floors */
	assert_int_equal(sender_policy_parse_text(DIR, "", 0, &p, err, sizeof(err)), PG_OK);
	assert_int_equal(p.n, 0);
	sender_policy_free(&p);
	assert_int_equal(sender_policy_load("/nonexistent-dir-of-test", &p, err, sizeof(err)),
	                 PG_OK);
	assert_int_equal(p.n, 0);
	sender_policy_free(&p);
}

/* policy set|del --sender: the rewrite keeps everything else as it was. */
static void test_edit(void **state)
{
	static const char old[] = "# floors\n"
	                          "provider.example encrypt\n"
	                          "  mode=testing\n"
	                          "# hosted customers who asked\n"
	                          "customer.test verify\n";
	char err[512], *out = NULL;
	size_t len;

	(void)state;
	/* replace (the continuation goes with its entry) */
	assert_int_equal(sender_policy_edit(DIR, old, strlen(old), "Provider.Example", "verify",
	                                    &out, &len, err, sizeof(err)),
	                 PG_OK);
	assert_string_equal(out, "# floors\n"
	                         "Provider.Example verify\n"
	                         "# hosted customers who asked\n"
	                         "customer.test verify\n");
	assert_int_equal(len, strlen(out));
	free(out);
	/* add, a network */
	assert_int_equal(sender_policy_edit(DIR, old, strlen(old), "[198.18.0.0/24]",
	                                    "encrypt mode=testing", &out, &len, err, sizeof(err)),
	                 PG_OK);
	assert_string_equal(out + strlen(old), "[198.18.0.0/24] encrypt mode=testing\n");
	assert_memory_equal(out, old, strlen(old));
	free(out);
	/* del */
	assert_int_equal(sender_policy_edit(DIR, old, strlen(old), "customer.test", NULL, &out,
	                                    &len, err, sizeof(err)),
	                 PG_OK);
	assert_string_equal(out, "# floors\n"
	                         "provider.example encrypt\n"
	                         "  mode=testing\n"
	                         "# hosted customers who asked\n");
	free(out);
	/* a /32 is the same key however it is written */
	{
		static const char one[] = "[198.18.0.7] encrypt\n";

		assert_int_equal(sender_policy_edit(DIR, one, strlen(one), "[198.18.0.7/32]", NULL,
		                                    &out, &len, err, sizeof(err)),
		                 PG_OK);
		assert_string_equal(out, "");
		free(out);
	}
	/* refused: nothing is returned, the message says why */
	out = NULL;
	assert_int_equal(sender_policy_edit(DIR, old, strlen(old), "customer.test", "may", &out,
	                                    &len, err, sizeof(err)),
	                 PG_ERROR);
	assert_null(out);
	assert_string_equal(err,
	                    SFILE ":5: \"may\" is not a floor: a sender_tls_policy entry raises"
	                          " what the destinations decide, never lowers it (encrypt,"
	                          " verify, secure)");
	assert_int_equal(sender_policy_edit(DIR, old, strlen(old), "[10.0.0.1/8]", "encrypt", &out,
	                                    &len, err, sizeof(err)),
	                 PG_ERROR);
	assert_string_equal(err, "bad key \"[10.0.0.1/8]\": host bits set in 10.0.0.1/8 (the"
	                         " network is [10.0.0.0/8])");
	assert_int_equal(sender_policy_edit(DIR, old, strlen(old), "x.test", "encrypt\nx.test may",
	                                    &out, &len, err, sizeof(err)),
	                 PG_ERROR);
	assert_string_equal(err, "the policy must be one line");
	assert_int_equal(sender_policy_edit(DIR, old, strlen(old), "absent.test", NULL, &out, &len,
	                                    err, sizeof(err)),
	                 PG_DECLINED);
	assert_string_equal(err, SFILE ": no entry for \"absent.test\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_lines),
	    cmocka_unit_test(test_good_file),
	    cmocka_unit_test(test_edit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
