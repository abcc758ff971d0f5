/*
 * policy.h - the outbound TLS policy table, CONFIG_DIR/tls_policy, in
 * Postfix smtp_tls_policy_maps syntax (TLS_README "TLS policy table",
 * postconf(5)), as posternd reads, validates, explains and rewrites it.
 * Also the name checks shared by the transport table and postern.conf's
 * relay keys. Every error names the file and line.
 */
#ifndef PG_POLICY_H
#define PG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "snap_format.h"
#include "trust.h"

#define POLICY_FILE_NAME "tls_policy"
#define POLICY_FILE_MAX (16u << 20) /* a policy table of ~100k entries */
#define POLICY_WHY_MAX 512          /* room for a reason ("why") */

struct policy_entry {
	char key[SNAP_NAME_MAX + 1]; /* lowercased: "d.com", ".d.com", "[h]:587" */
	uint32_t kind;               /* enum snap_name_kind */
	unsigned line;
	uint8_t level;      /* enum snap_tls_level */
	uint8_t ciphers;    /* enum snap_tls_grade */
	uint16_t protocols; /* SNAP_TLS_P_* allowed, 0 = level default */
	uint32_t flags;     /* SNAP_TLS_F_* */
	char *match;        /* see struct snap_tls_policy; "" = none */
	char *exclude;
	char *servername;
	char *tafile;
	char *text; /* the logical line, continuations joined by one space */
	uint32_t tafile_bundle; /* 1 + index into pg_policy.tafiles; 0 = no tafile */
};

struct pg_policy {
	char path[CONF_PATH_MAX + 32]; /* DIR/tls_policy */
	size_t n, cap;
	struct policy_entry *entries; /* file order */
	/*
	 * The certificates of every tafile= (trust.h), each file read once
	 * however many entries name it, in order of first use.
	 */
	size_t ntafiles;
	struct trust_bundle *tafiles;
};

/*
 * Read DIR/tls_policy into *out (an absent file is an empty table).
 * Relative tafile= paths are taken relative to DIR; each file is read as a
 * PEM bundle of trust anchors (trust_read_pem: every certificate must
 * parse, at least one). PG_OK, or PG_ERROR with
 * "FILE:LINE: message" in err; *out is empty (policy_free-able) either way.
 */
int policy_load(const char *dir, struct pg_policy *out, char *err, size_t errlen);

/* Parse text as if it were DIR/tls_policy (tests, policy set). */
int policy_parse_text(const char *dir, const char *text, size_t len, struct pg_policy *out,
                      char *err, size_t errlen);

void policy_free(struct pg_policy *p);

/* The entry whose key is exactly `key` (normalized like the file's), or NULL. */
const struct policy_entry *policy_find(const struct pg_policy *p, const char *key);

/*
 * Normalize a tls_policy key: "Example.COM" -> "example.com", ".d.com",
 * "[H]:25" -> "[h]", "[h]:587". *kind receives enum snap_name_kind.
 * 0, or -1 with the reason in why.
 */
int policy_parse_key(const char *in, char *out, size_t outlen, uint32_t *kind, char *why,
                     size_t whylen);

/*
 * A DNS name as Postern accepts it (RFC 1035 §2.3.1 LDH labels, RFC 5321
 * §4.1.2 Domain; A-labels for IDN, RFC 5890), lowercased into out. With
 * allow_parent, a leading "." (".example.com") is kept. 0 or -1 + why.
 */
int policy_check_domain(const char *in, bool allow_parent, char *out, size_t outlen, char *why,
                        size_t whylen);

/* Parse a tls_default_level value: dane* and fingerprint refused. */
int policy_parse_default_level(const char *s, uint8_t *level, char *why, size_t whylen);

/*
 * A protocols list in Postfix syntax ("TLSv1.2:TLSv1.3", "!SSLv3,!TLSv1",
 * ">=TLSv1.2") into SNAP_TLS_P_* allowed; tokens are separated by any of
 * seps (":" in a tls_policy attribute, ": ,\t" in postern.conf). One parser
 * for tls_policy protocols= and postern.conf smtpd_tls_*protocols.
 * 0, or -1 with the reason in why (an empty result is refused).
 */
int policy_parse_protocols(const char *s, const char *seps, uint16_t *mask, char *why,
                           size_t whylen);

/*
 * policy set / policy del: the new text of the file, with KEY's entry
 * replaced by "KEY ARGS" (args = "LEVEL [ATTR=VALUE ...]") or, with args
 * NULL, removed. Comments, blank lines and every other entry are kept byte
 * for byte; a new entry is appended. The result is validated in full (as
 * DIR/tls_policy) before it is returned. PG_OK with *out (malloc'd), PG_DECLINED
 * for a del of a key that has no entry, PG_ERROR with the message.
 */
int policy_edit(const char *dir, const char *old, size_t oldlen, const char *key, const char *args,
                char **out, size_t *outlen, char *err, size_t errlen);

/*
 * Replace path atomically: write a temporary file in the same directory,
 * fsync it, rename it over path, fsync the directory. The file keeps the
 * mode of the one it replaces (0644 for a new one). PG_OK or PG_ERROR.
 */
int policy_write_file(const char *path, const char *text, size_t len, char *err, size_t errlen);

/*
 * The line discipline of a Postfix lookup-table source file (postmap(1)):
 * blank lines and lines whose first non-blank character is '#' are
 * ignored; a line that starts with whitespace continues the previous
 * logical line (joined with one space). fn gets each logical line
 * (modifiable) with the number of its first physical line; a non-PG_OK
 * return stops the walk and is returned. Reader errors go to err as
 * "FILE:LINE: message".
 */
typedef int (*policy_line_fn)(char *line, unsigned lineno, void *owner);

int policy_table_lines(const char *file, const char *text, size_t len, policy_line_fn fn, void *arg,
                       char *err, size_t errlen);

/* Read a whole file: PG_OK, PG_DECLINED if it does not exist, PG_ERROR. */
int policy_read_file(const char *path, size_t max, char **text, size_t *len, char *err,
                     size_t errlen);

#endif
