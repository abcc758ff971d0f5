/*
 * result.h - the one set of result codes used across Postern (nginx style).
 * AGAIN always means "not yet, call me again" whatever the cause: a full
 * ring, a TLS WANT_*, an async crypto job, a spool commit in flight.
 */
#ifndef PG_RESULT_H
#define PG_RESULT_H

enum pg_result {
	PG_OK = 0,
	PG_AGAIN = -1,
	PG_ERROR = -2,
	PG_DONE = -3,
	PG_DECLINED = -4,
};

static inline const char *pg_result_name(int r)
{
	switch (r) {
	case PG_OK: return "OK";
	case PG_AGAIN: return "AGAIN";
	case PG_ERROR: return "ERROR";
	case PG_DONE: return "DONE";
	case PG_DECLINED: return "DECLINED";
	}
	return "?";
}

#endif
