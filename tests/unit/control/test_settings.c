/*
 * test_settings.c - the declared-once keys (common/settings.h): each
 * one's default, as written, parses to its default value; the default
 * lies in its range; both ends of the range are accepted by postern.conf
 * and one past either end is refused naming the line; and the README's
 * configuration table documents every key (argv[1]: the README).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "result.h"
#include "settings.h"

#define BASE "port0_device = net_af_packet0,iface=dp0\nport0_address = 198.18.0.1/24\n"

static const char *readme_path;

/* A value as postern.conf would write it, in the key's own unit. */
static void value_text(enum setting_id id, uint64_t v, char *out, size_t len)
{
	switch (setting_defs[id].type) {
	case SETTING_TIME_MS:
		snprintf(out, len, "%llums", (unsigned long long)(v / SETTING_MS));
		break;
	case SETTING_LIFETIME:
		snprintf(out, len, "%llus", (unsigned long long)(v / SETTING_S));
		break;
	case SETTING_BOOL:
		snprintf(out, len, "%s", v ? "yes" : "no");
		break;
	default:
		snprintf(out, len, "%llu", (unsigned long long)v);
		break;
	}
}

static int parse_one(enum setting_id id, const char *value, struct pg_conf *c, char *err,
                     size_t errlen)
{
	char text[512];

	snprintf(text, sizeof(text), BASE "%s = %s\n", setting_defs[id].name, value);
	return conf_parse_text("/test", text, strlen(text), c, err, errlen);
}

static void test_defaults(void **state)
{
	struct pg_conf *c = malloc(sizeof(*c));
	char err[512];

	(void)state;
	assert_non_null(c);
	assert_int_equal(conf_parse_text("/test", BASE, strlen(BASE), c, err, sizeof(err)), PG_OK);
	for (int id = 0; id < SET__COUNT; id++) {
		const struct setting_def *d = &setting_defs[id];

		if (c->settings[id] != d->default_value)
			fail_msg("%s: the default \"%s\" parses to %llu, the table says %llu",
			         d->name, d->default_text, (unsigned long long)c->settings[id],
			         (unsigned long long)d->default_value);
		if (d->default_value < d->min || d->default_value > d->max)
			fail_msg("%s: default outside %llu..%llu", d->name,
			         (unsigned long long)d->min, (unsigned long long)d->max);
		assert_int_equal(setting_find(d->name), id);
		assert_true(d->doc != NULL && d->doc[0] != '\0');
	}
	assert_int_equal(setting_find("no_such_key"), -1);
	free(c);
}

static void test_ranges(void **state)
{
	struct pg_conf *c = malloc(sizeof(*c));
	char err[512], v[64], want[256];

	(void)state;
	assert_non_null(c);
	for (int id = 0; id < SET__COUNT; id++) {
		const struct setting_def *d = &setting_defs[id];
		uint64_t step = d->type == SETTING_TIME_MS    ? SETTING_MS
		                : d->type == SETTING_LIFETIME ? SETTING_S
		                                              : 1;

		value_text(id, d->min, v, sizeof(v));
		if (parse_one(id, v, c, err, sizeof(err)) != PG_OK || c->settings[id] != d->min)
			fail_msg("%s = %s (min): %s", d->name, v, err);
		value_text(id, d->max, v, sizeof(v));
		if (parse_one(id, v, c, err, sizeof(err)) != PG_OK || c->settings[id] != d->max)
			fail_msg("%s = %s (max): %s", d->name, v, err);
		if (d->type == SETTING_BOOL)
			continue;
		value_text(id, d->max + step, v, sizeof(v));
		snprintf(want, sizeof(want), "/test/postern.conf:3: bad value for %s", d->name);
		if (parse_one(id, v, c, err, sizeof(err)) != PG_ERROR || strstr(err, want) != err)
			fail_msg("%s = %s (over max) not refused as expected: %s", d->name, v, err);
		if (d->min >= step) {
			value_text(id, d->min - step, v, sizeof(v));
			if (parse_one(id, v, c, err, sizeof(err)) != PG_ERROR ||
			    strstr(err, want) != err)
				fail_msg("%s = %s (under min) not refused: %s", d->name, v, err);
		}
	}
	free(c);
}

/* Every key is in the README's configuration table, as "| `name` |". */
static void test_documented(void **state)
{
	FILE *f = fopen(readme_path, "r");
	char *text;
	long n;

	(void)state;
	if (f == NULL)
		fail_msg("cannot read %s", readme_path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = malloc((size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	for (int id = 0; id < SET__COUNT; id++) {
		char row[128];

		snprintf(row, sizeof(row), "| `%s` | %s |", setting_defs[id].name,
		         setting_defs[id].default_text);
		if (strstr(text, row) == NULL)
			fail_msg("README.md has no row \"%s\"", row);
	}
	free(text);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_documented),
	};

	readme_path = argc > 1 ? argv[1] : "README.md";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
