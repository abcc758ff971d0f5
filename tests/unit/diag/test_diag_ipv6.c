/*
 * test_diag_ipv6.c - the diagnostic services and client over IPv6, on the
 * two-stack harness of tests/unit/tcp (tl_setup_v6): side 1's services
 * answer on both families at once, side 0's client runs echo, discard and
 * source to an IPv6 address with every byte checked, its report names the
 * address in brackets, and a configured client ("diag_client =
 * [2001:db8:18::2]:7 echo ...") runs from postern.conf through the ABI 2.3
 * snapshot section to diag_adopt.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "diag/diag.h"
#include "result.h"
#include "snap_build.h"
#include "snap_format.h"
#include "tcp_harness.h"

static int diag6_setup(void **state)
{
	int rc = tl_setup_v6(state);
	struct tl *t = *state;

	if (rc == 0 && diag_services_start(t->s[1].w) != PG_OK)
		rc = -1;
	return rc;
}

static int diag6_teardown(void **state)
{
	struct tl *t = *state;

	for (unsigned i = 0; i < 2; i++)
		diag_destroy(t->s[i].w);
	return tl_teardown(state);
}

struct run {
	bool done;
	struct diag_result r;
};

static void run_done(struct worker *w, const struct diag_result *r, void *arg)
{
	struct run *run = arg;

	(void)w;
	run->done = true;
	run->r = *r;
}

static bool run_finished(struct tl *t, void *arg)
{
	(void)t;
	return ((struct run *)arg)->done;
}

static struct diag_result run_to(struct tl *t, const struct pg_addr *dst, uint16_t port,
                                 enum diag_client_mode mode, uint64_t bytes)
{
	struct run run = {0};
	char line[256];

	assert_int_equal(diag_client_start_addr(t->s[0].w, dst, port, mode, bytes, run_done, &run),
	                 PG_OK);
	assert_true(tl_run(t, run_finished, &run, 3600 * TL_S));
	diag_result_format(&run.r, line, sizeof(line));
	printf("# %s\n", line);
	return run.r;
}

/* Every mode over IPv6, then IPv4 to the same services: both families at once. */
static void test_modes_both_families(void **state)
{
	struct tl *t = *state;
	struct pg_addr v4 = pg_addr_v4(TL_IP1);
	struct diag_result r;
	char line[256];

	t->link.loss_ppm = 5000;
	r = run_to(t, &tl_addr6[1], DIAG_PORT_ECHO, DIAG_CLIENT_ECHO, 4u << 20);
	assert_true(r.ok);
	assert_int_equal(r.received, 4u << 20);
	assert_true(pg_addr_eq(&r.dst, &tl_addr6[1]));
	assert_int_equal(r.dst_ip, 0);
	diag_result_format(&r, line, sizeof(line));
	assert_non_null(strstr(line, "echo [2001:db8:18::2]:7 4194304 bytes"));
	r = run_to(t, &tl_addr6[1], DIAG_PORT_SOURCE, DIAG_CLIENT_SOURCE, 3000001);
	assert_true(r.ok);
	assert_int_equal(r.received, 3000001);
	r = run_to(t, &tl_addr6[1], DIAG_PORT_DISCARD, DIAG_CLIENT_DISCARD, 2000000);
	assert_true(r.ok);
	assert_int_equal(CTR_VAL(t, 1, diag_discard_bytes), 2000000);
	r = run_to(t, &v4, DIAG_PORT_ECHO, DIAG_CLIENT_ECHO, 100000);
	assert_true(r.ok);
	assert_int_equal(r.dst_ip, TL_IP1);
	assert_int_equal(CTR_VAL(t, 1, diag_echo_conns), 2);
	assert_int_equal(CTR_VAL(t, 0, diag_client_ok), 4);
}

static void *build_snapshot(const char *extra)
{
	char text[1024], err[512];
	struct pg_conf *c = malloc(sizeof(*c));
	struct snap_header *h;
	void *blob;
	size_t len;

	assert_non_null(c);
	snprintf(text, sizeof(text),
	         "port0_device = net_ring0\nport0_address = 198.18.0.1/24, 2001:db8:18::1/64\n%s",
	         extra);
	if (conf_parse_text("/etc/postern", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("conf: %s", err);
	if (snap_build(c, &blob, &len, err, sizeof(err)) != PG_OK)
		fail_msg("snap_build: %s", err);
	free(c);
	h = blob;
	h->checksum = snap_checksum(blob, len);
	if (snap_validate(blob, len, err, sizeof(err)) != 0)
		fail_msg("snap_validate: %s", err);
	return blob;
}

static bool runs_done(struct tl *t, void *arg)
{
	uint64_t want = *(uint64_t *)arg;

	return CTR_VAL(t, 0, diag_client_runs) >= want && diag_client_active(t->s[0].w) == 0;
}

static void test_configured_client6(void **state)
{
	struct tl *t = *state;
	void *cli = build_snapshot("diag_client = [2001:db8:18::2]:7 echo 250000 2\n");
	void *none = build_snapshot("");
	uint64_t want = 2;

	diag_adopt(t->s[0].w, cli);
	assert_true(tl_run(t, runs_done, &want, 120 * TL_S));
	assert_int_equal(CTR_VAL(t, 0, diag_client_ok), 2);
	assert_int_equal(CTR_VAL(t, 1, diag_echo_bytes), 2 * 250000);
	diag_adopt(t->s[0].w, none);
	free(cli);
	free(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_modes_both_families, diag6_setup, diag6_teardown),
	    cmocka_unit_test_setup_teardown(test_configured_client6, diag6_setup, diag6_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("diag_ipv6", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
