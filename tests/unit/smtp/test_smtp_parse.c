/*
 * test_smtp_parse.c - the SMTP grammar checks of smtp_parse.c, table by
 * table: paths (RFC 5321 §4.1.2, RFC 6531), domains, address literals,
 * HELO names, UTF-8, xtext (RFC 3461), utf-8-addr-xtext (RFC 6533) and the
 * ESMTP parameter tokenizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp/smtp_parse.h"
#include "smtp/smtp_server.h"

#define NB(a) (sizeof(a) / sizeof((a)[0]))

struct path_case {
	const char *in;
	unsigned flags;
	enum smtp_path_result want;
	const char *out; /* mailbox on success */
	size_t consumed; /* 0 = strlen(in) */
	bool utf8;
};

#define U8 SMTP_PATH_ALLOW_UTF8
#define NUL SMTP_PATH_ALLOW_NULL
#define PM SMTP_PATH_ALLOW_POSTMASTER

static const struct path_case path_cases[] = {
    {"<a@example.org>", 0, SMTP_PATH_OK, "a@example.org", 0, false},
    {"<a@example.org> SIZE=1", 0, SMTP_PATH_OK, "a@example.org", 15, false},
    {"<>", NUL, SMTP_PATH_OK, "", 0, false},
    {"<>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<Postmaster>", PM, SMTP_PATH_OK, "Postmaster", 0, false},
    {"<POSTMASTER>", PM, SMTP_PATH_OK, "POSTMASTER", 0, false},
    {"<postmaster>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<user>", PM, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<@a.example:u@b.example>", 0, SMTP_PATH_OK, "u@b.example", 0, false},
    {"<@a.example,@[10.0.0.1]:u@b.example>", 0, SMTP_PATH_OK, "u@b.example", 0, false},
    {"<@a.example:>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<@a.example,u@b.example>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<\"a b\"@example.org>", 0, SMTP_PATH_OK, "\"a b\"@example.org", 0, false},
    {"<\"a\\\"b\"@example.org>", 0, SMTP_PATH_OK, "\"a\\\"b\"@example.org", 0, false},
    {"<\"a\x01\"@example.org>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<\"unterminated@example.org>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a.b.c@example.org>", 0, SMTP_PATH_OK, "a.b.c@example.org", 0, false},
    {"<a..b@example.org>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a@[192.0.2.1]>", 0, SMTP_PATH_OK, "a@[192.0.2.1]", 0, false},
    {"<a@[192.0.2]>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a@[IPv6:::1]>", 0, SMTP_PATH_OK, "a@[IPv6:::1]", 0, false},
    {"<a@[IPv6:1.2.3.4]>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a@[IPv6:::ffff:1.2.3.4]>", 0, SMTP_PATH_OK, "a@[IPv6:::ffff:1.2.3.4]", 0, false},
    {"<a@ex-ample.org>", 0, SMTP_PATH_OK, "a@ex-ample.org", 0, false},
    {"<a@example-.org>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a@ex_ample.org>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a@example.org.>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a@>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<@example.org>", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"a@example.org", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a@example.org", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"", 0, SMTP_PATH_SYNTAX, NULL, 0, false},
    /* RFC 6531: UTF-8 in local part and domain (U-labels). */
    {"<j\xc3\xb6rg@example.org>", 0, SMTP_PATH_UTF8, NULL, 0, false},
    {"<j\xc3\xb6rg@example.org>", U8, SMTP_PATH_OK, "j\xc3\xb6rg@example.org", 0, true},
    {"<a@b\xc3\xbc"
     "cher.example>",
     U8, SMTP_PATH_OK,
     "a@b\xc3\xbc"
     "cher.example",
     0, true},
    {"<\"\xc3\xa9\"@example.org>", U8, SMTP_PATH_OK, "\"\xc3\xa9\"@example.org", 0, true},
    {"<a\xc3@example.org>", U8, SMTP_PATH_SYNTAX, NULL, 0, false},
    {"<a\xed\xa0\x80@example.org>", U8, SMTP_PATH_SYNTAX, NULL, 0, false},     /* surrogate */
    {"<a\xf4\x90\x80\x80@example.org>", U8, SMTP_PATH_SYNTAX, NULL, 0, false}, /* > U+10FFFF */
};

static void test_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < NB(path_cases); i++) {
		const struct path_case *k = &path_cases[i];
		char out[SMTP_PATH_MAX + 1] = "unset";
		size_t used = 0;
		bool utf8 = false;
		enum smtp_path_result r =
		    smtp_parse_path(k->in, strlen(k->in), k->flags, out, sizeof(out), &used, &utf8);
		if (r != k->want)
			fail_msg("case %zu '%s': result %d, want %d", i, k->in, r, k->want);
		if (r != SMTP_PATH_OK)
			continue;
		if (strcmp(out, k->out) != 0)
			fail_msg("case %zu '%s': mailbox '%s'", i, k->in, out);
		assert_int_equal(used, k->consumed ? k->consumed : strlen(k->in));
		assert_int_equal(utf8, k->utf8);
	}
}

/* RFC 5321 §4.5.3.1: local part 64, domain 255, path 256 octets. */
static void test_path_limits(void **state)
{
	char in[600], out[SMTP_PATH_MAX + 1];
	size_t used;
	bool utf8;

	(void)state;
	snprintf(in, sizeof(in), "<%.*s@example.org>", 64,
	         "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll");
	assert_int_equal(smtp_parse_path(in, strlen(in), 0, out, sizeof(out), &used, &utf8),
	                 SMTP_PATH_OK);
	snprintf(in, sizeof(in), "<%.*s@example.org>", 65,
	         "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll");
	assert_int_equal(smtp_parse_path(in, strlen(in), 0, out, sizeof(out), &used, &utf8),
	                 SMTP_PATH_TOOLONG);
	/* 254 octets of mailbox: 4 labels of 63 and "a@" -> path 256 with <>. */
	{
		char dom[300] = "";
		for (int l = 0; l < 4; l++) {
			char label[64];
			memset(label, 'd', 63);
			label[63] = '\0';
			strcat(dom, label);
			if (l < 3)
				strcat(dom, ".");
		}
		dom[252] = '\0'; /* 252 octets */
		snprintf(in, sizeof(in), "<a@%s>", dom);
		assert_int_equal(smtp_parse_path(in, strlen(in), 0, out, sizeof(out), &used, &utf8),
		                 SMTP_PATH_OK);
		snprintf(in, sizeof(in), "<ab@%s>", dom);
		assert_int_equal(smtp_parse_path(in, strlen(in), 0, out, sizeof(out), &used, &utf8),
		                 SMTP_PATH_TOOLONG);
	}
}

static void test_domains_and_literals(void **state)
{
	static const struct {
		const char *s;
		bool domain, literal, helo;
	} c[] = {
	    {"example.org", true, false, true},
	    {"a", true, false, true},
	    {"1.2.3.4", true, false, true}, /* all-digit labels are Let-dig */
	    {"-a.example", false, false, false},
	    {"a-.example", false, false, false},
	    {"my_host.example", false, false, true}, /* Postfix tolerates '_' in HELO */
	    {"example.org.", false, false, true},
	    {"a..b", false, false, false},
	    {"", false, false, false},
	    {"[1.2.3.4]", false, true, true},
	    {"[001.002.003.004]", false, true, true},
	    {"[1.2.3.256]", false, false, false},
	    {"[1.2.3.4.5]", false, false, false},
	    {"[IPv6:2001:db8::1]", false, true, true},
	    {"[ipv6:2001:db8::1]", false, true, true},
	    {"[IPv6:2001:db8::g]", false, false, false},
	    {"[x-tag:abc]", false, true, true},
	    {"[tag:]", false, false, false},
	    {"[:abc]", false, false, false},
	    {"[tag:a\\b]", false, false, false},
	    {"[]", false, false, false},
	};
	char label[80];

	(void)state;
	for (size_t i = 0; i < NB(c); i++) {
		size_t n = strlen(c[i].s);
		if (smtp_valid_domain(c[i].s, n, false) != c[i].domain ||
		    smtp_valid_address_literal(c[i].s, n) != c[i].literal ||
		    smtp_valid_helo(c[i].s, n) != c[i].helo)
			fail_msg("'%s': domain %d literal %d helo %d", c[i].s,
			         smtp_valid_domain(c[i].s, n, false),
			         smtp_valid_address_literal(c[i].s, n), smtp_valid_helo(c[i].s, n));
	}
	memset(label, 'a', 64);
	assert_false(smtp_valid_domain(label, 64, false)); /* a 64-octet label */
	assert_true(smtp_valid_domain(label, 63, false));
	assert_true(smtp_valid_domain("b\xc3\xbc"
	                              "cher.example",
	                              14, true));
	assert_false(smtp_valid_domain("b\xc3\xbc"
	                               "cher.example",
	                               14, false));
}

static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} c[] = {
	    {"plain", true},
	    {"\xc3\xa9", true},
	    {"\xe2\x82\xac", true},
	    {"\xf0\x9f\x93\xa7", true},
	    {"\xc3", false},
	    {"\xc0\xaf", false},         /* overlong '/' */
	    {"\xe0\x80\xaf", false},     /* overlong */
	    {"\xed\xa0\x80", false},     /* surrogate */
	    {"\xf4\x90\x80\x80", false}, /* past U+10FFFF */
	    {"\x80", false},
	    {"\xff", false},
	};

	(void)state;
	for (size_t i = 0; i < NB(c); i++)
		if (smtp_utf8_valid((const uint8_t *)c[i].s, strlen(c[i].s)) != c[i].ok)
			fail_msg("utf8 case %zu", i);
}

static void test_xtext(void **state)
{
	(void)state;
	assert_true(smtp_valid_xtext("QQ314159", 8));
	assert_true(smtp_valid_xtext("a+2Bb", 5));
	assert_true(smtp_valid_xtext("", 0));
	assert_false(smtp_valid_xtext("a+2b", 4)); /* hex must be upper case */
	assert_false(smtp_valid_xtext("a+2", 3));
	assert_false(smtp_valid_xtext("a+", 2));
	assert_false(smtp_valid_xtext("a=b", 3));
	assert_false(smtp_valid_xtext("a b", 3));
	assert_false(smtp_valid_xtext("\xc3\xa9", 2));
	assert_true(smtp_valid_utf8_xtext("\xc3\xa9\\x{40}x", 9));
	assert_true(smtp_valid_utf8_xtext("a+40b", 5));
	assert_false(smtp_valid_utf8_xtext("\\x{4}", 5));
	assert_false(smtp_valid_utf8_xtext("\\x{1234567}", 11));
	assert_false(smtp_valid_utf8_xtext("\\x{40", 5));
	assert_false(smtp_valid_utf8_xtext("\xc3", 1));
}

static void test_params(void **state)
{
	const char *line = " SIZE=10  BODY=8BITMIME SMTPUTF8 X-1=v";
	const char *cur = line, *end = line + strlen(line), *k, *v;
	size_t kl, vl;

	(void)state;
	assert_int_equal(smtp_next_param(&cur, end, &k, &kl, &v, &vl, false), 1);
	assert_true(smtp_token_is(k, kl, "size") && vl == 2 && !memcmp(v, "10", 2));
	assert_int_equal(smtp_next_param(&cur, end, &k, &kl, &v, &vl, false), 1);
	assert_true(smtp_token_is(k, kl, "BODY") && smtp_token_is(v, vl, "8bitmime"));
	assert_int_equal(smtp_next_param(&cur, end, &k, &kl, &v, &vl, false), 1);
	assert_true(smtp_token_is(k, kl, "SMTPUTF8") && v == NULL && vl == 0);
	assert_int_equal(smtp_next_param(&cur, end, &k, &kl, &v, &vl, false), 1);
	assert_true(smtp_token_is(k, kl, "X-1"));
	assert_int_equal(smtp_next_param(&cur, end, &k, &kl, &v, &vl, false), 0);

	static const char *const bad[] = {"-X=1", "X=", "X=a=b", "X=\x01", "X\x80=1", "X=\xc3\xa9"};
	for (size_t i = 0; i < NB(bad); i++) {
		cur = bad[i];
		end = cur + strlen(cur);
		if (smtp_next_param(&cur, end, &k, &kl, &v, &vl, false) != -1)
			fail_msg("param '%s' accepted", bad[i]);
	}
	cur = "X=\xc3\xa9";
	end = cur + strlen(cur);
	assert_int_equal(smtp_next_param(&cur, end, &k, &kl, &v, &vl, true), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_path_limits),
	    cmocka_unit_test(test_domains_and_literals),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_xtext),
	    cmocka_unit_test(test_params),
	};

	return cmocka_run_group_tests_name("smtp_parse", tests, NULL, NULL);
}
