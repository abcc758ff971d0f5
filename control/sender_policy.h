/*
 * sender_policy.h - CONFIG_DIR/sender_tls_policy, the sender TLS floors
 * (issue 23): "mail from this sender domain, or submitted by this client
 * network, is never sent below this level", whatever the destination's own
 * tls_policy entry or tls_default_level says (crypto/tls_decide.h
 * tls_decide_combine). Postfix table syntax, as tls_policy:
 *
 *     # KEY                 FLOOR     [mode=testing]
 *     provider.example      encrypt
 *     .provider.example     verify
 *     [198.18.0.0/24]       encrypt   mode=testing
 *
 * posternd reads, validates and rewrites it (`posternctl policy set|del
 * --sender`); every error names the file and line.
 */
#ifndef PG_SENDER_POLICY_H
#define PG_SENDER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "conf.h"
#include "policy.h"
#include "snap_format.h"

#define SENDER_POLICY_FILE_NAME "sender_tls_policy"
#define SENDER_POLICY_FILE_MAX (16u << 20)

struct sender_entry {
	char key[SNAP_NAME_MAX + 1]; /* "d.com", ".d.com", "[198.18.0.0/24]", "[2001:db8::/32]" */
	uint32_t kind;               /* SNAP_NAME_DOMAIN, _PARENT, _NETWORK or _NETWORK6 */
	unsigned line;
	uint8_t level;      /* SNAP_TLS_ENCRYPT, _VERIFY or _SECURE */
	uint32_t flags;     /* SNAP_TLS_F_TESTING */
	struct pg_addr prefix; /* NETWORK(6): host bits zero; family 0 otherwise */
	uint8_t prefix_len;    /* NETWORK: 0..32, NETWORK6: 0..128 */
	char *text;         /* the logical line, continuations joined by one space */
};

struct pg_sender_policy {
	char path[CONF_PATH_MAX + 32]; /* DIR/sender_tls_policy */
	size_t n, cap;
	struct sender_entry *entries; /* file order */
};

/*
 * Read DIR/sender_tls_policy into *out (an absent file is an empty table:
 * no floors). PG_OK, or PG_ERROR with "FILE:LINE: message" in err; *out is
 * sender_policy_free-able either way.
 */
int sender_policy_load(const char *dir, struct pg_sender_policy *out, char *err, size_t errlen);

/* Parse text as if it were DIR/sender_tls_policy (tests, policy set --sender). */
int sender_policy_parse_text(const char *dir, const char *text, size_t len,
                             struct pg_sender_policy *out, char *err, size_t errlen);

void sender_policy_free(struct pg_sender_policy *p);

/* The entry whose key is exactly `key` (normalized), or NULL. */
const struct sender_entry *sender_policy_find(const struct pg_sender_policy *p, const char *key);

/*
 * Normalize a key: a sender domain ("Provider.EXAMPLE" -> "provider.example"),
 * its sub-domains (".provider.example"), or a client network
 * ("[198.18.0.7/24]" is refused: host bits; "[198.18.0.7]" ->
 * "[198.18.0.7/32]"). *kind, and for a network *prefix (network order) and
 * *len. 0, or -1 with the reason in why.
 */
int sender_policy_parse_key(const char *in, char *out, size_t outlen, uint32_t *kind,
                            struct pg_addr *prefix, uint8_t *len, char *why, size_t whylen);

/*
 * policy set|del --sender: the new text of the file with KEY's entry
 * replaced by "KEY ARGS" (args "LEVEL [mode=testing]") or, with args NULL,
 * removed; as policy_edit (comments and other entries kept byte for byte,
 * the result validated in full). PG_OK with *out (malloc'd), PG_DECLINED
 * for a del of a key without an entry, PG_ERROR with the message.
 */
int sender_policy_edit(const char *dir, const char *old, size_t oldlen, const char *key,
                       const char *args, char **out, size_t *outlen, char *err, size_t errlen);

#endif
