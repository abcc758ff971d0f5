/*
 * settings.c - the table of declared-once keys (settings.h) and their
 * values in a snapshot.
 */
#include <string.h>

#include "settings.h"
#include "snap_format.h"

const struct setting_def setting_defs[SET__COUNT] = {
#define SETTING_DEF(n, t, text, def, lo, hi, d) [SET_##n] = {#n, t, text, def, lo, hi, d},
    PG_SETTINGS(SETTING_DEF)
#undef SETTING_DEF
};

int setting_find(const char *name)
{
	for (int i = 0; i < SET__COUNT; i++)
		if (strcmp(setting_defs[i].name, name) == 0)
			return i;
	return -1;
}

uint64_t setting_u64(const struct snap_header *h, enum setting_id id)
{
	uint32_t n = 0, lo = 0, hi;
	const struct snap_setting *st = h != NULL ? snap_section(h, SNAP_SEC_SETTINGS, &n) : NULL;

	/* snap_validate: ids strictly increasing, known values in range */
	for (hi = n; st != NULL && lo < hi;) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (st[mid].id == (uint32_t)id)
			return st[mid].value;
		if (st[mid].id < (uint32_t)id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return setting_defs[id].default_value;
}
