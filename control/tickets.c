/*
 * tickets.c - rotation of the session-ticket keys (tickets.h). posternd
 * calls tickets_update on a copy of its keys before every snapshot it
 * builds and once a second, and keeps the copy only once it is published,
 * so the workers and posternd never disagree about the current key.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "result.h"
#include "tickets.h"

int tickets_random(uint8_t *buf, size_t len, void *owner)
{
	(void)owner;
	return len <= (size_t)INT32_MAX && RAND_priv_bytes(buf, (int)len) == 1 ? 0 : -1;
}

void tickets_clear(struct tickets *t)
{
	OPENSSL_cleanse(t, sizeof(*t));
}

/* A new key: its name neither all zero nor that of prev (snap_validate). */
static int tickets_draw(struct snap_tls_ticket_key *k, const struct snap_tls_ticket_key *prev,
                        int64_t now, tickets_random_fn rng, void *arg)
{
	static const uint8_t zero[sizeof(k->name)];

	/* a repeat is a 2^-128 event, or a broken random source: retry a little */
	for (int tries = 0; tries < 4; tries++) {
		if (rng(k->name, sizeof(k->name), arg) != 0 ||
		    rng(k->hmac_key, sizeof(k->hmac_key), arg) != 0 ||
		    rng(k->aes_key, sizeof(k->aes_key), arg) != 0)
			break;
		if (memcmp(k->name, zero, sizeof(zero)) != 0 &&
		    (prev == NULL || memcmp(k->name, prev->name, sizeof(k->name)) != 0)) {
			k->created = now;
			return PG_OK;
		}
	}
	OPENSSL_cleanse(k, sizeof(*k));
	return PG_ERROR;
}

int tickets_update(struct tickets *t, int64_t now, uint64_t timeout_s, tickets_random_fn rng,
                   void *arg)
{
	struct snap_tls_ticket_key fresh;

	if (timeout_s == 0) {
		if (t->n == 0)
			return PG_DECLINED;
		tickets_clear(t);
		return PG_OK;
	}
	if (t->n > 0 && now >= t->keys[0].created &&
	    (uint64_t)(now - t->keys[0].created) < timeout_s)
		return PG_DECLINED;
	if (tickets_draw(&fresh, t->n > 0 ? &t->keys[0] : NULL, now, rng, arg) != PG_OK)
		return PG_ERROR;
	if (t->n > 0) {
		t->keys[1] = t->keys[0];
		t->n = SNAP_TICKET_KEYS_MAX;
	} else {
		t->n = 1;
	}
	t->keys[0] = fresh;
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	return PG_OK;
}
