/*
 * test_dsn.c - the DSN composer (dataplane/relay/dsn.c) on its own: exact
 * headers and delivery-status fields, failed/delayed/success reports, what
 * is returned (RET, complete or prefix), the boundary search, folding, and
 * on every report the invariants (CRLF only, lines <= 998, the size bound,
 * cap too small) plus a parse by Python's email package, an independent
 * MIME reader, that must see a multipart/report with the expected parts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/dsn.h"

#define NB(a) (sizeof(a) / sizeof((a)[0]))

#define T0 1739437500 /* Thu, 13 Feb 2025 09:05:00 +0000 */

static char out[1 << 17];
static char summary[1 << 16];

/*
 * Python's email (policy default) reads the report; the summary it prints
 * is compared line by line. The message/global* types are parsed by hand
 * where the library has no special case for them.
 */
static const char py_check[] =
    "import sys, email, email.policy\n"
    "from email import message_from_bytes, message_from_string\n"
    "pol = email.policy.default\n"
    "raw = open(sys.argv[1], \"rb\").read()\n"
    "m = message_from_string(raw.decode(\"utf-8\"), policy=pol)\n"
    "d = list(m.defects) + [x for k, v in m.items() for x in getattr(v, \"defects\", ())]\n"
    "o = [\"top %s %s\" % (m.get_content_type(), m.get_param(\"report-type\"))]\n"
    "o.append(\"date %s\" % m[\"Date\"].datetime.isoformat())\n"
    "f = m[\"From\"].addresses[0]\n"
    "o.append(\"from %s|%s\" % (f.display_name, f.addr_spec))\n"
    "o.append(\"to %s\" % m[\"To\"].addresses[0].addr_spec)\n"
    "o.append(\"subject %s\" % m[\"Subject\"])\n"
    "def blocks(p):\n"
    "    if not p.is_multipart():\n"
    "        return []\n"
    "    if p.get_content_type() == \"message/delivery-status\":\n"
    "        return p.get_payload()\n"
    "    first = p.get_payload(0)\n"
    "    rest = first.get_payload().replace(\"\\r\\n\", \"\\n\").split(\"\\n\\n\")\n"
    "    return [first] + [message_from_string(b + \"\\n\", policy=pol) for b in rest if "
    "b.strip()]\n"
    "for p in m.iter_parts():\n"
    "    ct = p.get_content_type()\n"
    "    d += p.defects\n"
    "    o.append(\"part %s\" % ct)\n"
    "    if ct.endswith(\"delivery-status\"):\n"
    "        bl = blocks(p)\n"
    "        o.append(\"msg %s|%s|%s\" % (bl[0][\"Reporting-MTA\"], "
    "bl[0][\"Original-Envelope-Id\"], bl[0][\"Arrival-Date\"]))\n"
    "        for b in bl[1:]:\n"
    "            o.append(\"rcpt %s|%s|%s|%s|%s\" % (b[\"Final-Recipient\"], "
    "b[\"Original-Recipient\"], b[\"Action\"], b[\"Status\"], b[\"Diagnostic-Code\"]))\n"
    "    elif ct in (\"message/rfc822\", \"message/global\"):\n"
    "        o.append(\"inner %s\" % p.get_payload(0)[\"Subject\"])\n"
    "    elif ct in (\"text/rfc822-headers\", \"message/global-headers\"):\n"
    "        h = p.get_payload(0) if p.is_multipart() else message_from_string(p.get_payload(), "
    "policy=pol)\n"
    "        o.append(\"headers %s\" % h[\"Subject\"])\n"
    "    elif ct == \"text/plain\":\n"
    "        o.append(\"text %s\" % p.get_content_charset())\n"
    "o.append(\"defects %s\" % (\" \".join(type(x).__name__ for x in d) or \"0\"))\n"
    "print(\"\\n\".join(o))\n";

/* Run py_check over msg; its output in summary. false: no python3. */
static bool py_parse(const char *msg, size_t len)
{
	static char cmd[sizeof(py_check) + 64];
	char path[] = "/tmp/test_dsn.XXXXXX";
	FILE *p;
	size_t n;
	int fd, rc;

	static int have_python = -1;

	if (have_python < 0)
		have_python = system("python3 -c 'import email.policy' >/dev/null 2>&1") == 0;
	if (!have_python)
		return false;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, msg, len), (ssize_t)len);
	close(fd);
	/* py_check has no single quote: the shell passes it as one word. */
	assert_null(strchr(py_check, '\''));
	snprintf(cmd, sizeof(cmd), "python3 -c '%s' %s", py_check, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(summary, 1, sizeof(summary) - 1, p);
	summary[n] = '\0';
	rc = pclose(p);
	unlink(path);
	if (rc != 0)
		fail_msg("python3 email failed (%d):\n%s", rc, summary);
	return true;
}

/*
 * The invariants of every report, then its parse: returns the length.
 * want: the lines py_check must print, in order ("" = skip the parse).
 */
static size_t check_dsn(const struct dsn_msg *m, const char *want)
{
	size_t len, bound, line = 0;

	bound = dsn_size_bound(m);
	len = dsn_write(m, out, sizeof(out));
	assert_true(len > 0);
	assert_true(bound >= len);
	assert_true(bound - len <= 3 * 34); /* three CTE lines at most */
	/* CRLF only, every line <= 998 octets, and the last one ends. */
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\r') {
			assert_true(i + 1 < len && out[i + 1] == '\n');
			i++;
			line = 0;
			continue;
		}
		assert_true(out[i] != '\n');
		assert_true(++line <= DSN_LINE_MAX);
	}
	assert_int_equal(line, 0);
	/* Too small by one: nothing; exactly enough: all of it, the same. */
	{
		static char again[sizeof(out)];

		assert_int_equal(dsn_write(m, again, len - 1), 0);
		assert_int_equal(dsn_write(m, again, len), len);
		assert_memory_equal(again, out, len);
		assert_int_equal(dsn_write(m, NULL, 0), 0);
	}
	if (want != NULL && py_parse(out, len) && strcmp(summary, want) != 0)
		fail_msg("python3 email summary:\n%s\nwanted:\n%s", summary, want);
	return len;
}

static bool has(const char *hay, size_t hay_len, const char *s)
{
	return memmem(hay, hay_len, s, strlen(s)) != NULL;
}

/* The text between "from" (excluded) and the next "to" (excluded). */
static const char *between(const char *hay, size_t hay_len, const char *from, const char *to,
                           size_t *len)
{
	const char *a = memmem(hay, hay_len, from, strlen(from)), *b;

	assert_non_null(a);
	a += strlen(from);
	b = memmem(a, hay_len - (size_t)(a - hay), to, strlen(to));
	assert_non_null(b);
	*len = (size_t)(b - a);
	return a;
}

static void assert_between(const char *hay, size_t hay_len, const char *from, const char *to,
                           const char *want)
{
	size_t n;
	const char *s = between(hay, hay_len, from, to, &n);

	if (n != strlen(want) || memcmp(s, want, n) != 0)
		fail_msg("got:\n%.*s\nwanted:\n%s", (int)n, s, want);
}

static const char orig_msg[] = "Received: from client.example.org by mx.example.net\r\n"
                               "From: Alice <alice@example.org>\r\n"
                               "To: bob@example.com, carol@example.com\r\n"
                               "Subject: quarterly figures\r\n"
                               "\r\n"
                               "Hello,\r\n"
                               "the figures.\r\n";
#define ORIG_HDRS_LEN (sizeof(orig_msg) - 1 - sizeof("\r\nHello,\r\nthe figures.\r\n") + 1)

static const struct dsn_rcpt two_failed[] = {
    {.rcpt = "bob@example.com",
     .orcpt = "rfc822;bob@example.com",
     .action = DSN_FAILED,
     .status = "5.1.1",
     .remote_mta = "198.19.0.2",
     .diagnostic = "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown",
     .last_attempt = T0 + 3600},
    {.rcpt = "carol@example.com",
     .action = DSN_FAILED,
     .status = "5.4.7",
     .last_attempt = T0 + 7200},
};

static struct dsn_msg base_msg(void)
{
	return (struct dsn_msg){
	    .reporting_mta = "mx.example.net",
	    .sender = "alice@example.org",
	    .envid = "QQ314159",
	    .arrival = T0,
	    .now = T0 + 7200,
	    .message_id = "20250213110500.D1@mx.example.net",
	    .orig = (const uint8_t *)orig_msg,
	    .orig_len = sizeof(orig_msg) - 1,
	    .orig_complete = true,
	    .rcpts = two_failed,
	    .nrcpt = NB(two_failed),
	};
}

#define BOUNDARY0 "DSN=_20250213110500.D1.mx.example.net/00000000"

static void test_failed_two_rcpts(void **state)
{
	struct dsn_msg m = base_msg();
	size_t len;

	(void)state;
	len = check_dsn(&m, "top multipart/report delivery-status\n"
	                    "date 2025-02-13T11:05:00+00:00\n"
	                    "from Mail Delivery System|MAILER-DAEMON@mx.example.net\n"
	                    "to alice@example.org\n"
	                    "subject Undelivered Mail Returned to Sender\n"
	                    "part text/plain\n"
	                    "text us-ascii\n"
	                    "part message/delivery-status\n"
	                    "msg dns; mx.example.net|QQ314159|Thu, 13 Feb 2025 09:05:00 +0000\n"
	                    "rcpt rfc822; bob@example.com|rfc822; bob@example.com|failed|5.1.1|"
	                    "smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User "
	                    "unknown\n"
	                    "rcpt rfc822; carol@example.com|None|failed|5.4.7|None\n"
	                    "part message/rfc822\n"
	                    "inner quarterly figures\n"
	                    "defects 0\n");
	/* The headers, exactly and in order. */
	assert_true(len > 0);
	assert_between(out, len, "", "\r\n\r\n",
	               "Date: Thu, 13 Feb 2025 11:05:00 +0000\r\n"
	               "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
	               "To: <alice@example.org>\r\n"
	               "Subject: Undelivered Mail Returned to Sender\r\n"
	               "Message-ID: <20250213110500.D1@mx.example.net>\r\n"
	               "Auto-Submitted: auto-replied\r\n"
	               "MIME-Version: 1.0\r\n"
	               "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	               "\tboundary=\"" BOUNDARY0 "\"");
	/* The human-readable part names each recipient with its reason. */
	assert_between(out, len, "\r\n--" BOUNDARY0 "\r\n", "\r\n--" BOUNDARY0 "\r\n",
	               "Content-Description: Notification\r\n"
	               "Content-Type: text/plain; charset=us-ascii\r\n"
	               "\r\n"
	               "This is the mail system at host mx.example.net.\r\n"
	               "\r\n"
	               "Your message could not be delivered to one or more recipients.\r\n"
	               "The reasons are given below.\r\n"
	               "\r\n"
	               "For further assistance, please send mail to postmaster.\r\n"
	               "If you do so, please include this report.\r\n"
	               "\r\n"
	               "                   The mail system\r\n"
	               "\r\n"
	               "<bob@example.com>: host 198.19.0.2 said: 550 5.1.1 <bob@example.com>:\r\n"
	               "    Recipient address rejected: User unknown\r\n"
	               "\r\n"
	               "<carol@example.com>: undeliverable (5.4.7)\r\n");
	/* RFC 3464 §2.2, §2.3 fields, in the order of the ABNF. */
	assert_between(out, len, "Content-Type: message/delivery-status\r\n\r\n",
	               "\r\n--" BOUNDARY0 "\r\n",
	               "Original-Envelope-Id: QQ314159\r\n"
	               "Reporting-MTA: dns; mx.example.net\r\n"
	               "Arrival-Date: Thu, 13 Feb 2025 09:05:00 +0000\r\n"
	               "\r\n"
	               "Original-Recipient: rfc822; bob@example.com\r\n"
	               "Final-Recipient: rfc822; bob@example.com\r\n"
	               "Action: failed\r\n"
	               "Status: 5.1.1\r\n"
	               "Remote-MTA: dns; 198.19.0.2\r\n"
	               "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: Recipient address\r\n"
	               " rejected: User unknown\r\n"
	               "Last-Attempt-Date: Thu, 13 Feb 2025 10:05:00 +0000\r\n"
	               "\r\n"
	               "Final-Recipient: rfc822; carol@example.com\r\n"
	               "Action: failed\r\n"
	               "Status: 5.4.7\r\n"
	               "Last-Attempt-Date: Thu, 13 Feb 2025 11:05:00 +0000\r\n");
	/* RET=FULL (or none), complete, failed: the whole message, as is. */
	assert_between(out, len, "Content-Type: message/rfc822\r\n\r\n",
	               "\r\n--" BOUNDARY0 "--\r\n", orig_msg);
	assert_memory_equal(out + len - sizeof("\r\n--" BOUNDARY0 "--\r\n") + 1,
	                    "\r\n--" BOUNDARY0 "--\r\n", sizeof("\r\n--" BOUNDARY0 "--\r\n") - 1);
	assert_false(dsn_is_8bit(&m));
	assert_false(has(out, len, "Content-Transfer-Encoding"));
}

static void test_delayed(void **state)
{
	static const struct dsn_rcpt r[] = {{
	    .rcpt = "bob@example.com",
	    .action = DSN_DELAYED,
	    .status = "4.4.1",
	    .remote_mta = "198.19.0.2",
	    .diagnostic = "421 4.4.1 Connection timed out",
	    .last_attempt = T0 + 3600,
	    .will_retry_until = T0 + 5 * 86400,
	}};
	struct dsn_msg m = base_msg();
	size_t len;

	(void)state;
	m.envid = NULL;
	m.rcpts = r;
	m.nrcpt = NB(r);
	len = check_dsn(&m, "top multipart/report delivery-status\n"
	                    "date 2025-02-13T11:05:00+00:00\n"
	                    "from Mail Delivery System|MAILER-DAEMON@mx.example.net\n"
	                    "to alice@example.org\n"
	                    "subject Delayed Mail (still being retried)\n"
	                    "part text/plain\n"
	                    "text us-ascii\n"
	                    "part message/delivery-status\n"
	                    "msg dns; mx.example.net|None|Thu, 13 Feb 2025 09:05:00 +0000\n"
	                    "rcpt rfc822; bob@example.com|None|delayed|4.4.1|"
	                    "smtp; 421 4.4.1 Connection timed out\n"
	                    "part text/rfc822-headers\n"
	                    "headers quarterly figures\n"
	                    "defects 0\n");
	assert_between(out, len, "Content-Type: message/delivery-status\r\n\r\n",
	               "\r\n--" BOUNDARY0 "\r\n",
	               "Reporting-MTA: dns; mx.example.net\r\n"
	               "Arrival-Date: Thu, 13 Feb 2025 09:05:00 +0000\r\n"
	               "\r\n"
	               "Final-Recipient: rfc822; bob@example.com\r\n"
	               "Action: delayed\r\n"
	               "Status: 4.4.1\r\n"
	               "Remote-MTA: dns; 198.19.0.2\r\n"
	               "Diagnostic-Code: smtp; 421 4.4.1 Connection timed out\r\n"
	               "Last-Attempt-Date: Thu, 13 Feb 2025 10:05:00 +0000\r\n"
	               "Will-Retry-Until: Tue, 18 Feb 2025 09:05:00 +0000\r\n");
	/* RFC 3461 §4.3: no failure reported, only the headers go back. */
	assert_true(has(out, len,
	                "\r\n--" BOUNDARY0 "\r\n"
	                "Content-Description: Undelivered Message Headers\r\n"
	                "Content-Type: text/rfc822-headers\r\n\r\n"));
	assert_between(out, len, "Content-Type: text/rfc822-headers\r\n\r\n",
	               "\r\n--" BOUNDARY0 "--\r\n",
	               "Received: from client.example.org by mx.example.net\r\n"
	               "From: Alice <alice@example.org>\r\n"
	               "To: bob@example.com, carol@example.com\r\n"
	               "Subject: quarterly figures\r\n");
	assert_true(strstr(summary, "Delayed") != NULL || summary[0] == '\0');
}

static void test_success(void **state)
{
	static const struct dsn_rcpt r[] = {
	    {.rcpt = "bob@example.com",
	     .action = DSN_DELIVERED,
	     .status = "2.0.0",
	     .remote_mta = "198.19.0.2",
	     .diagnostic = "250 2.0.0 Ok: queued as 4Xk2"},
	    {.rcpt = "carol@example.com", .action = DSN_RELAYED, .will_retry_until = T0},
	};
	struct dsn_msg m = base_msg();
	size_t len;

	(void)state;
	m.rcpts = r;
	m.nrcpt = NB(r);
	len = check_dsn(&m, "top multipart/report delivery-status\n"
	                    "date 2025-02-13T11:05:00+00:00\n"
	                    "from Mail Delivery System|MAILER-DAEMON@mx.example.net\n"
	                    "to alice@example.org\n"
	                    "subject Successful Mail Delivery Report\n"
	                    "part text/plain\n"
	                    "text us-ascii\n"
	                    "part message/delivery-status\n"
	                    "msg dns; mx.example.net|QQ314159|Thu, 13 Feb 2025 09:05:00 +0000\n"
	                    "rcpt rfc822; bob@example.com|None|delivered|2.0.0|"
	                    "smtp; 250 2.0.0 Ok: queued as 4Xk2\n"
	                    "rcpt rfc822; carol@example.com|None|relayed|2.0.0|None\n"
	                    "part text/rfc822-headers\n"
	                    "headers quarterly figures\n"
	                    "defects 0\n");
	assert_true(has(out, len, "\r\n<bob@example.com>: delivery via 198.19.0.2: 250 2.0.0"));
	assert_true(has(out, len, "\r\n<carol@example.com>: relayed\r\n"));
	assert_true(has(out, len, "Content-Description: Message Headers\r\n"));
	/* Will-Retry-Until only for "delayed" (RFC 3464 §2.3.8). */
	assert_false(has(out, len, "Will-Retry-Until"));
}

/* What goes back, and how, as RET, completeness and the bytes vary. */
static void test_returned(void **state)
{
	static const struct {
		const char *orig;
		bool complete, ret_hdrs;
		const char *ctype; /* NULL: no third part */
		const char *content;
	} c[] = {
	    {orig_msg, true, true, "text/rfc822-headers",
	     "Received: from client.example.org by mx.example.net\r\n"
	     "From: Alice <alice@example.org>\r\n"
	     "To: bob@example.com, carol@example.com\r\n"
	     "Subject: quarterly figures\r\n"},
	    {orig_msg, true, false, "message/rfc822", orig_msg},
	    /* A prefix cut in the body: its headers, even with RET=FULL. */
	    {"Subject: s\r\nX: y\r\n\r\nbody li", false, false, "text/rfc822-headers",
	     "Subject: s\r\nX: y\r\n"},
	    /* A prefix cut in the headers: its complete lines. */
	    {"Subject: s\r\nX-Long: abc\r\n def\r\nX-Cut: ha", false, false, "text/rfc822-headers",
	     "Subject: s\r\nX-Long: abc\r\n def\r\n"},
	    /* Complete without a final CRLF: one is added (and to a lone CR). */
	    {"Subject: s\r\n\r\nlast line", true, false, "message/rfc822",
	     "Subject: s\r\n\r\nlast line\r\n"},
	    {"Subject: s\r\n\r\nlast line\r", true, false, "message/rfc822",
	     "Subject: s\r\n\r\nlast line\r\n"},
	    /* A complete message of headers only, RET=HDRS. */
	    {"Subject: s\r\nX: y", true, true, "text/rfc822-headers", "Subject: s\r\nX: y\r\n"},
	    /* Nothing to return: no third part. */
	    {"Subject: no CRLF yet", false, true, NULL, NULL},
	    {"\r\nbody without headers\r\n", true, true, NULL, NULL},
	    {"", true, false, NULL, NULL},
	};

	(void)state;
	for (size_t i = 0; i < NB(c); i++) {
		struct dsn_msg m = base_msg();
		char want[256];
		size_t len;

		m.orig = (const uint8_t *)c[i].orig;
		m.orig_len = strlen(c[i].orig);
		m.orig_complete = c[i].complete;
		m.ret_hdrs = c[i].ret_hdrs;
		len = check_dsn(&m, NULL);
		if (c[i].ctype == NULL) {
			assert_false(has(out, len, "Content-Description: Undelivered Message"));
			/* the delivery-status part is the last */
			assert_true(has(out, len,
			                "Last-Attempt-Date: Thu, 13 Feb 2025 11:05:00 +0000\r\n"
			                "\r\n--" BOUNDARY0 "--\r\n"));
			continue;
		}
		snprintf(want, sizeof(want), "Content-Type: %s\r\n\r\n", c[i].ctype);
		assert_between(out, len, want, "\r\n--" BOUNDARY0 "--\r\n", c[i].content);
	}
}

/* RFC 2046 §5.1.1: the boundary never occurs in what the report carries. */
static void test_boundary_collision(void **state)
{
	static char orig[512];
	struct dsn_msg m = base_msg();
	size_t len;

	(void)state;
	snprintf(orig, sizeof(orig),
	         "Subject: a bounce quoted\r\n\r\n--" BOUNDARY0 "\r\nfake part\r\n");
	m.orig = (const uint8_t *)orig;
	m.orig_len = strlen(orig);
	len = check_dsn(&m, NULL);
	assert_true(has(out, len, "boundary=\"DSN=_20250213110500.D1.mx.example.net/00000001\""));
	/* Both the first candidates taken: the third. */
	snprintf(orig, sizeof(orig),
	         "Subject: two\r\n\r\n" BOUNDARY0
	         "\r\nDSN=_20250213110500.D1.mx.example.net/00000001\r\n");
	m.orig_len = strlen(orig);
	len = check_dsn(&m, "top multipart/report delivery-status\n"
	                    "date 2025-02-13T11:05:00+00:00\n"
	                    "from Mail Delivery System|MAILER-DAEMON@mx.example.net\n"
	                    "to alice@example.org\n"
	                    "subject Undelivered Mail Returned to Sender\n"
	                    "part text/plain\n"
	                    "text us-ascii\n"
	                    "part message/delivery-status\n"
	                    "msg dns; mx.example.net|QQ314159|Thu, 13 Feb 2025 09:05:00 +0000\n"
	                    "rcpt rfc822; bob@example.com|rfc822; bob@example.com|failed|5.1.1|"
	                    "smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User "
	                    "unknown\n"
	                    "rcpt rfc822; carol@example.com|None|failed|5.4.7|None\n"
	                    "part message/rfc822\n"
	                    "inner two\n"
	                    "defects 0\n");
	assert_true(has(out, len, "boundary=\"DSN=_20250213110500.D1.mx.example.net/00000002\""));
	/* The returned message is intact, the old candidates inside it. */
	assert_true(has(out, len, orig));
	/* A boundary-hostile Message-ID: only bchars remain. */
	m.message_id = "a b?c<d>@\"e\"";
	len = check_dsn(&m, NULL);
	assert_true(has(out, len, "boundary=\"DSN=_a.b.c.d...e./00000000\""));
}

/* RFC 5322 §2.1.1, §2.2.3: long values folded, unfolding gives them back. */
static void test_long_diagnostic(void **state)
{
	static char diag[4096], word[2100], multi[2400], cut[2400], want[1 << 14];
	struct dsn_rcpt r[2] = {two_failed[0], two_failed[1]};
	struct dsn_msg m = base_msg();
	size_t n = 0, len;

	(void)state;
	n += (size_t)snprintf(diag, sizeof(diag), "550 5.7.1");
	while (n < 3000)
		n += (size_t)snprintf(diag + n, sizeof(diag) - n, " word%zu", n);
	memset(word, 'x', sizeof(word) - 1);
	r[0].diagnostic = diag;
	/* A multi-line reply: its CRLFs and a word too long for a line. */
	snprintf(multi, sizeof(multi), "550-5.1.1 first line\r\n550-5.1.1 %s\r\n550 5.1.1 last\r\n",
	         word);
	r[1].diagnostic = multi;
	m.rcpts = r;
	len = check_dsn(&m, NULL);
	/*
	 * The long word is folded onto its own line (" x...") and cut there
	 * at 998 octets with CRLF SP, twice: unfolded, two spaces more.
	 */
	memset(cut, 'x', 997 + 1 + 997 + 1 + 105);
	cut[997] = cut[997 + 1 + 997] = ' ';
	cut[997 + 1 + 997 + 1 + 105] = '\0';
	assert_int_equal(strlen(word), 997 + 997 + 105);
	assert_true(has(out, len, "\r\n xxxxxxxx"));
	snprintf(want, sizeof(want),
	         "top multipart/report delivery-status\n"
	         "date 2025-02-13T11:05:00+00:00\n"
	         "from Mail Delivery System|MAILER-DAEMON@mx.example.net\n"
	         "to alice@example.org\n"
	         "subject Undelivered Mail Returned to Sender\n"
	         "part text/plain\n"
	         "text us-ascii\n"
	         "part message/delivery-status\n"
	         "msg dns; mx.example.net|QQ314159|Thu, 13 Feb 2025 09:05:00 +0000\n"
	         "rcpt rfc822; bob@example.com|rfc822; bob@example.com|failed|5.1.1|smtp; %s\n"
	         "rcpt rfc822; carol@example.com|None|failed|5.4.7|smtp; 550-5.1.1 first line "
	         "550-5.1.1 %s 550 5.1.1 last\n"
	         "part message/rfc822\n"
	         "inner quarterly figures\n"
	         "defects 0\n",
	         diag, cut);
	if (py_parse(out, len) && strcmp(summary, want) != 0)
		fail_msg("python3 email summary:\n%s\nwanted:\n%s", summary, want);
}

/* ENVID and ORCPT arrive as xtext (RFC 3461 §4) and are reported decoded. */
static void test_xtext(void **state)
{
	static const struct {
		const char *orcpt, *want;
	} c[] = {
	    {"rfc822;a+2Bb@example.com", "Original-Recipient: rfc822; a+b@example.com\r\n"},
	    {"RFC822;x+3Dy@example.com", "Original-Recipient: RFC822; x=y@example.com\r\n"},
	    /* decoding to a control or 8-bit: kept encoded */
	    {"rfc822;a+0Db@example.com", "Original-Recipient: rfc822; a+0Db@example.com\r\n"},
	    {"rfc822;a+C3+A9@example.com", "Original-Recipient: rfc822; a+C3+A9@example.com\r\n"},
	    {"rfc822;bad+4@example.com", "Original-Recipient: rfc822; bad+4@example.com\r\n"},
	    /* utf-8 type outside SMTPUTF8: as received */
	    {"utf-8;j\\x{E9}r\\x{F4}me@example.com",
	     "Original-Recipient: utf-8; j\\x{E9}r\\x{F4}me@example.com\r\n"},
	    /* no address type: not an ORCPT */
	    {"bob@example.com", NULL},
	};

	(void)state;
	for (size_t i = 0; i < NB(c); i++) {
		struct dsn_rcpt r = two_failed[0];
		struct dsn_msg m = base_msg();
		size_t len;

		r.orcpt = c[i].orcpt;
		m.rcpts = &r;
		m.nrcpt = 1;
		m.envid = "id+2B1+3D2";
		len = check_dsn(&m, NULL);
		assert_true(has(out, len, "Original-Envelope-Id: id+1=2\r\n"));
		if (c[i].want == NULL)
			assert_false(has(out, len, "Original-Recipient"));
		else if (!has(out, len, c[i].want))
			fail_msg("case %zu: no '%s'", i, c[i].want);
	}
}

/* RFC 6533: an SMTPUTF8 original gets a global DSN. */
static void test_utf8(void **state)
{
	static const char orig[] = "Subject: caf\xc3\xa9\r\n"
	                           "To: j\xc3\xa9r\xc3\xb4me@exampl\xc3\xa9.fr\r\n"
	                           "\r\n"
	                           "\xc3\xa9t\xc3\xa9\r\n";
	static const struct dsn_rcpt r[] = {{
	    .rcpt = "j\xc3\xa9r\xc3\xb4me@exampl\xc3\xa9.fr",
	    .orcpt = "utf-8;j\\x{E9}r\\x{F4}me@exampl\\x{E9}.fr",
	    .action = DSN_FAILED,
	    .status = "5.1.1",
	    .diagnostic = "550 5.1.1 unknown \xc3\xa9 \xff user",
	}};
	struct dsn_msg m = base_msg();
	size_t len;

	(void)state;
	m.utf8 = true;
	m.sender = "al\xc3\xaf"
	           "ce@example.org";
	m.rcpts = r;
	m.nrcpt = NB(r);
	m.orig = (const uint8_t *)orig;
	m.orig_len = sizeof(orig) - 1;
	m.ret_hdrs = true;
	assert_true(dsn_is_8bit(&m));
	len = check_dsn(&m, "top multipart/report global-delivery-status\n"
	                    "date 2025-02-13T11:05:00+00:00\n"
	                    "from Mail Delivery System|MAILER-DAEMON@mx.example.net\n"
	                    "to al\xc3\xaf"
	                    "ce@example.org\n"
	                    "subject Undelivered Mail Returned to Sender\n"
	                    "part text/plain\n"
	                    "text utf-8\n"
	                    "part message/global-delivery-status\n"
	                    "msg dns; mx.example.net|QQ314159|Thu, 13 Feb 2025 09:05:00 +0000\n"
	                    "rcpt utf-8; j\xc3\xa9r\xc3\xb4me@exampl\xc3\xa9.fr|"
	                    "utf-8; j\xc3\xa9r\xc3\xb4me@exampl\xc3\xa9.fr|failed|5.1.1|"
	                    "smtp; 550 5.1.1 unknown \xc3\xa9 ? user\n"
	                    "part message/global-headers\n"
	                    "headers caf\xc3\xa9\n"
	                    /* RFC 6532 allows it; the library flags it anyway */
	                    "defects NonASCIILocalPartDefect\n");
	assert_true(has(out, len, "\r\nContent-Transfer-Encoding: 8bit\r\n\r\nThis is"));
	assert_true(has(out, len,
	                "Content-Type: message/global-headers\r\n"
	                "Content-Transfer-Encoding: 8bit\r\n\r\n"));

	/* Outside SMTPUTF8 the report is ASCII but for the original, 8bit. */
	m.utf8 = false;
	m.sender = "alice@example.org";
	m.ret_hdrs = false;
	assert_true(dsn_is_8bit(&m));
	len = check_dsn(&m, NULL);
	assert_true(has(out, len, "Final-Recipient: rfc822; j??r??me@exampl??.fr\r\n"));
	assert_true(has(out, len,
	                "Content-Type: message/rfc822\r\n"
	                "Content-Transfer-Encoding: 8bit\r\n\r\n"));
	{
		const char *part3 = memmem(out, len, "Content-Type: message/rfc822", 28);

		assert_non_null(part3);
		for (const char *p = out; p < part3; p++)
			assert_true((uint8_t)*p < 0x80);
	}
}

/* RFC 5322 §3.3 dates in UTC. */
static void test_dates(void **state)
{
	static const struct {
		int64_t t;
		const char *want;
	} c[] = {
	    {0, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"},
	    {-5, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"},
	    {951782400, "Date: Tue, 29 Feb 2000 00:00:00 +0000\r\n"},
	    {4102444800, "Date: Fri, 1 Jan 2100 00:00:00 +0000\r\n"},
	    {T0 + 7200 + 59, "Date: Thu, 13 Feb 2025 11:05:59 +0000\r\n"},
	    {253402300799, "Date: Fri, 31 Dec 9999 23:59:59 +0000\r\n"},
	    {INT64_MAX, "Date: Fri, 31 Dec 9999 23:59:59 +0000\r\n"},
	};

	(void)state;
	for (size_t i = 0; i < NB(c); i++) {
		struct dsn_msg m = base_msg();
		size_t len;

		m.now = c[i].t;
		len = check_dsn(&m, NULL);
		if (len < strlen(c[i].want) || memcmp(out, c[i].want, strlen(c[i].want)) != 0)
			fail_msg("%lld: %.40s", (long long)c[i].t, out);
	}
}

/* Controls anywhere in the caller's strings never break a line. */
static void test_hostile_values(void **state)
{
	static const struct dsn_rcpt r[] = {{
	    .rcpt = "bob\r\n@example.com",
	    .orcpt = "rfc822;bob\n",
	    .action = (enum dsn_action)42,
	    .remote_mta = "198.19.0.2\r\nX-Injected: 1",
	    .diagnostic = "\r\n\t \r\n",
	}};
	struct dsn_msg m = base_msg();
	size_t len;

	(void)state;
	m.rcpts = r;
	m.nrcpt = NB(r);
	m.envid = "\r\n";
	m.sender = "alice@example.org\r\nBcc: eve@example.net";
	m.reporting_mta = "mx\rexample";
	len = check_dsn(&m, NULL);
	assert_false(has(out, len, "\r\nX-Injected"));
	assert_false(has(out, len, "\r\nBcc"));
	assert_true(has(out, len, "\r\nAction: failed\r\nStatus: 5.0.0\r\n"));
	/* An empty diagnostic after cleaning: a field with nothing after "smtp; ". */
	assert_true(has(out, len, "To: <alice@example.org Bcc: eve@example.net>\r\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failed_two_rcpts),
	    cmocka_unit_test(test_delayed),
	    cmocka_unit_test(test_success),
	    cmocka_unit_test(test_returned),
	    cmocka_unit_test(test_boundary_collision),
	    cmocka_unit_test(test_long_diagnostic),
	    cmocka_unit_test(test_xtext),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_hostile_values),
	};

	return cmocka_run_group_tests_name("relay_dsn", tests, NULL, NULL);
}
