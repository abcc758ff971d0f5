/*
 * files.c - the bounded whole-file reader shared by the configuration
 * parsers (see files.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "result.h"

int files_read(const char *path, size_t max, bool missing_ok, char **text, size_t *len, char *why,
	       size_t whylen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		if (errno == ENOENT && missing_ok)
			return PG_DECLINED;
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return PG_ERROR;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(why, whylen, "out of memory");
		return PG_ERROR;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		int e = errno;

		fclose(f);
		free(buf);
		snprintf(why, whylen, "cannot read: %s", strerror(e));
		return PG_ERROR;
	}
	fclose(f);
	if (n > max) {
		free(buf);
		snprintf(why, whylen, "larger than %zu bytes", max);
		return PG_ERROR;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return PG_OK;
}

int files_verror(char *err, size_t errlen, const char *file, unsigned line, const char *fmt,
		 va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%u: %s", file, line, msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	return PG_ERROR;
}
