/*
 * files.c - the bounded whole-file reader shared by the configuration
 * parsers (see files.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

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

int files_pem_blocks(const char *text, size_t len,
                     int (*fn)(const struct pem_block *b, void *owner), void *arg, char *why,
                     size_t whylen)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	unsigned nblocks = 0;
	int rc = PG_OK;

	if (bio == NULL) {
		snprintf(why, whylen, "out of memory");
		return PG_ERROR;
	}
	ERR_clear_error();
	while (rc == PG_OK) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long dlen = 0;
		struct pem_block b;

		if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
			unsigned long e = ERR_peek_last_error();
			const char *reason = ERR_reason_error_string(e);

			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				if (nblocks == 0)
					rc = PG_DECLINED;
			} else {
				snprintf(why, whylen, "PEM block %u is malformed: %s", nblocks + 1,
				         reason != NULL ? reason : "unknown error");
				rc = PG_ERROR;
			}
			ERR_clear_error();
			break;
		}
		b.name = name;
		b.header = header != NULL ? header : "";
		b.data = data;
		b.len = dlen;
		b.index = ++nblocks;
		rc = fn(&b, arg);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_clear_free(data, (size_t)dlen);
	}
	BIO_free(bio);
	return rc;
}
