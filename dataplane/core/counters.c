/*
 * counters.c - name and description tables of the per-worker counters.
 */
#include "counters.h"

const char *const pg_counter_names[CTR__COUNT] = {
#define PG_COUNTER_NAME(name, doc) #name,
	PG_COUNTERS(PG_COUNTER_NAME)
#undef PG_COUNTER_NAME
};

const char *const pg_counter_docs[CTR__COUNT] = {
#define PG_COUNTER_DOC(name, doc) doc,
	PG_COUNTERS(PG_COUNTER_DOC)
#undef PG_COUNTER_DOC
};
