/*
 * tickets.h - the inbound TLS session-ticket keys (RFC 5077; RFC 8446
 * §4.6.1) that posternd draws, keeps in memory only and puts in every
 * snapshot it publishes (SNAP_SEC_TLS_TICKET_KEYS, snap_format.h), so a
 * session resumes on whichever worker the client reaches. When a key is
 * replaced is a pure function of the keys, the time and
 * smtpd_tls_session_cache_timeout: tested without a clock.
 */
#ifndef PG_TICKETS_H
#define PG_TICKETS_H

#include <stddef.h>
#include <stdint.h>

#include "snap_format.h"

struct tickets {
	uint32_t n;                                            /* 0..SNAP_TICKET_KEYS_MAX */
	struct snap_tls_ticket_key keys[SNAP_TICKET_KEYS_MAX]; /* [0] current, [1] previous */
};

/* Fill buf with len secret random bytes: 0, or -1 on failure. */
typedef int (*tickets_random_fn)(uint8_t *buf, size_t len, void *owner);

/*
 * Bring the keys up to date at now (unix seconds) for timeout_s
 * (smtpd_tls_session_cache_timeout in seconds):
 *   - timeout 0: no keys (session tickets off);
 *   - no key yet: draw the current one;
 *   - the current key is timeout_s old or more, or was made after now
 *     (the clock stepped back: its age is unknown): draw a new current
 *     key; the old current one becomes the previous one (it still
 *     decrypts), the previous one before it is dropped;
 *   - else nothing changes, however often it is called (reloads and
 *     policy changes keep the keys).
 * A ticket thus stays usable for 1 to 2 timeouts. New keys get fresh
 * random names, never all zero nor equal to the previous one's.
 * PG_OK when the keys changed (a snapshot must carry them), PG_DECLINED
 * when they did not, PG_ERROR if random failed (t is then unchanged).
 */
int tickets_update(struct tickets *t, int64_t now, uint64_t timeout_s, tickets_random_fn rng,
                   void *arg);

/* tickets_random_fn over OpenSSL's private DRBG (RAND_priv_bytes). */
int tickets_random(uint8_t *buf, size_t len, void *owner);

/* Forget the keys (OPENSSL_cleanse). */
void tickets_clear(struct tickets *t);

#endif
