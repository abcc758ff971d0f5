/*
 * files.h - reading a configuration file whole (postern.conf, tls_policy,
 * transport, PEM files): one bounded reader, so every file is refused the
 * same way when it is missing, unreadable or too large.
 */
#ifndef PG_FILES_H
#define PG_FILES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Read PATH into a malloc'd, NUL-terminated buffer of at most MAX bytes.
 * PG_OK with *text (caller frees) and *len; PG_DECLINED if the file does not
 * exist and missing_ok; PG_ERROR with the reason, without the path, in why
 * ("cannot open: ...", "cannot read: ...", "larger than N bytes",
 * "out of memory"): callers prefix it in their own message format.
 */
int files_read(const char *path, size_t max, bool missing_ok, char **text, size_t *len, char *why,
	       size_t whylen);

/*
 * The parsers' error format: "FILE:LINE: message", or "FILE: message" when
 * LINE is 0 (the whole file). Always returns PG_ERROR.
 */
int files_verror(char *err, size_t errlen, const char *file, unsigned line, const char *fmt,
		 va_list ap);

/* One block of a PEM file (files_pem_blocks). */
struct pem_block {
	const char *name;           /* "CERTIFICATE", "PRIVATE KEY", ... */
	const char *header;         /* the block's headers ("Proc-Type: ..."), maybe "" */
	const unsigned char *data; /* the DER */
	long len;
	unsigned index; /* 1 for the first block */
};

/*
 * Each PEM block of text, in file order, to fn: it returns PG_OK to go on,
 * anything else stops the walk and is returned. The DER is cleared when
 * freed (private keys). PG_OK after the last block; PG_DECLINED if there
 * is no block at all (the caller says what it expected); PG_ERROR with
 * "PEM block N is malformed: REASON" (or "out of memory") in why.
 */
int files_pem_blocks(const char *text, size_t len,
                     int (*fn)(const struct pem_block *b, void *owner), void *arg, char *why,
                     size_t whylen);

#endif
