/*
 * diag.h - the dataplane's diagnostic TCP services and client, the
 * endpoints the Linux interop tests talk to (issue 3, "Diagnostic
 * services"). They are ordinary applications on the tcp.h event API, one
 * instance per worker: echo (port 7, RFC 862), discard (port 9, RFC 863)
 * and a pattern source (port 19), switched on by `diag_services = yes`;
 * and a client that connects out and checks what comes back byte for
 * byte, started by `diag_client = HOST:PORT MODE BYTES [COUNT]`.
 *
 * ---- The pattern ----
 *
 * Every byte the source sends and the client sends or expects is the byte
 * at its stream offset i (from 0) of one fixed sequence:
 *
 *   mix(k)     = splitmix64 finalizer of z = (k + 1) * 0x9e3779b97f4a7c15
 *                (mod 2^64): z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
 *                z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31
 *   pattern(i) = (byte (i mod 8) of mix((i mod 65536) / 8), little-endian)
 *                + floor(i / 65536)                            (mod 256)
 *
 * That is: a 64 KiB block T of pseudo-random bytes (T = mix(0) .. mix(8191)
 * as little-endian 64-bit words), and block number j of the stream is T
 * with j added to every byte. Within a block no shift of the data maps it
 * onto itself, and block j differs from block j+1 everywhere, so lost,
 * duplicated or misplaced segments show as a mismatch at their offset.
 * Python regenerates it quickly:
 *
 *   M = (1 << 64) - 1
 *   def mix(k):
 *       z = ((k + 1) * 0x9e3779b97f4a7c15) & M
 *       z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
 *       z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
 *       return z ^ (z >> 31)
 *   T = b"".join(mix(k).to_bytes(8, "little") for k in range(8192))
 *   def block(j): return T.translate(bytes((b + j) & 255 for b in range(256)))
 *   def pattern(n): # the first n bytes
 *       return b"".join(block(j) for j in range((n + 65535) // 65536))[:n]
 *
 * The first 16 bytes are  af cd 1d 7b 39 a8 20 e2 f4 65 b9 a1 6a 9e 78 6e;
 * sha256 of the first 1000000 bytes is
 *   00d93eed5730552170c35b96f5b7f1843e2e358698ecf796a54427b49039c94c
 * and of the first 104857600 (100 MiB)
 *   bbcd5310047f78ce68699812ac8fe781c3ca6df253f76f4d8d219acce8abc35c
 * (the first two are checked by tests/unit/diag/test_diag.c).
 *
 * ---- The source protocol (port 19) ----
 *
 * The client sends a decimal byte count, 0 .. 2^40, then LF ("104857600\n";
 * "\r\n" is accepted too); the server answers with exactly that many bytes
 * of the pattern from offset 0, then FIN. Anything the client sends after
 * the request is read and dropped. A bad request - a non-digit, no digits,
 * more than 2^40, no LF within the first 32 bytes, or FIN before the LF -
 * is answered with RST and counted (diag_bad_request).
 *
 * ---- Echo and discard ----
 *
 * Echo sends back everything it reads. It reads only as fast as the send
 * buffer takes the data (tcp_send PG_AGAIN parks it until `writable`), so
 * a peer that does not read its echoes sees our receive window close: flow
 * control by construction, no unbounded buffering. Both close (FIN) after
 * the peer's FIN once everything read has been echoed or dropped.
 */
#ifndef PG_DIAG_H
#define PG_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct worker;
struct snap_header;

#define DIAG_PORT_ECHO 7
#define DIAG_PORT_DISCARD 9
#define DIAG_PORT_SOURCE 19
#define DIAG_SOURCE_MAX (UINT64_C(1) << 40)          /* largest source request, bytes */
#define DIAG_SOURCE_REQ_MAX 32                       /* the LF must come within this many bytes */
#define DIAG_CLIENT_COUNT_MAX 100000                 /* runs per diag_client setting */
#define DIAG_CLIENT_STALL_NS (60ull * 1000000000ull) /* no progress for this long: fail */

/* ---- the pattern ---- */

uint8_t diag_pattern_byte(uint64_t off);
/* buf[k] = pattern(off + k) for k < len. */
void diag_pattern_fill(uint64_t off, uint8_t *buf, size_t len);
/* Index of the first k with buf[k] != pattern(off + k), or len if none. */
size_t diag_pattern_check(uint64_t off, const uint8_t *buf, size_t len);

/* ---- the services ---- */

/*
 * Listen on ports 7, 9 and 19 of every address, IPv4 and IPv6, of this worker (every
 * worker listens; a connection belongs to the worker its tuple hashes to).
 * PG_OK (also when already listening) or PG_ERROR (no TCP on this worker,
 * listener table full, no memory). diag_services_stop() stops listening;
 * connections in progress finish on their own.
 */
int diag_services_start(struct worker *w);
void diag_services_stop(struct worker *w);
bool diag_services_running(const struct worker *w);
/* Connections the services of this worker hold (all three kinds). */
uint32_t diag_service_conns(const struct worker *w);

/* ---- the client ---- */

enum diag_client_mode {
	DIAG_CLIENT_ECHO = 1,    /* send N pattern bytes + FIN, expect them back */
	DIAG_CLIENT_DISCARD = 2, /* send N pattern bytes + FIN, expect nothing back */
	DIAG_CLIENT_SOURCE = 3,  /* send "N\n", expect N pattern bytes + FIN */
};

const char *diag_client_mode_name(enum diag_client_mode mode);

/* What one client run did. */
struct diag_result {
	enum diag_client_mode mode;
	struct pg_addr dst;    /* either family */
	uint32_t dst_ip;       /* network order; 0 when dst is IPv6 */
	uint16_t dst_port;     /* host order */
	uint64_t bytes;        /* requested */
	uint64_t sent;         /* payload bytes handed to TCP (request line included) */
	uint64_t received;     /* payload bytes received */
	bool ok;               /* everything expected arrived, verified, orderly close */
	bool mismatch;         /* a received byte differed from the pattern */
	uint64_t mismatch_off; /* its stream offset, with mismatch */
	uint64_t elapsed_ns;   /* from diag_client_start to the end */
	char error[96];        /* why it failed; "" when ok */
};

/* Called once when a run ends (from a TCP callback or a timer). */
typedef void (*diag_client_done_fn)(struct worker *w, const struct diag_result *r, void *arg);

/*
 * Start one run: connect to dst_ip:dst_port (network / host order) and
 * run `mode` with `bytes` (1 .. DIAG_SOURCE_MAX). PG_OK: `done` is called
 * later, exactly once (unless the worker's diag state is destroyed first).
 * PG_DECLINED: no route; PG_AGAIN: no local port or connection cap;
 * PG_ERROR: bad arguments, no TCP or no memory. `done` is not called
 * when the start fails.
 */
int diag_client_start_addr(struct worker *w, const struct pg_addr *dst, uint16_t dst_port,
                           enum diag_client_mode mode, uint64_t bytes, diag_client_done_fn done,
                           void *arg);
/* The same to an IPv4 address (network order). */
int diag_client_start(struct worker *w, uint32_t dst_ip, uint16_t dst_port,
                      enum diag_client_mode mode, uint64_t bytes, diag_client_done_fn done,
                      void *arg);
/* Client runs in progress on this worker. */
uint32_t diag_client_active(const struct worker *w);

/* One line for logs: "echo 198.19.0.2:5001 ...: ..., verified ok, 1.234 s". */
void diag_result_format(const struct diag_result *r, char *buf, size_t len);

/* ---- configuration ---- */

/* diag_client as adopted (snap_diag_client, or snap_diag_client6 for IPv6). */
struct diag_client_cfg {
	struct pg_addr addr;
	uint16_t port;
	uint8_t mode;
	uint64_t bytes;
	uint32_t count; /* 0 = none */
};

/*
 * At adoption of a validated snapshot (core/adopt.c): start or stop the
 * services as SNAP_DP_F_DIAG says; on worker 0, start the diag_client runs
 * when the setting differs from the one it last ran (a change cancels
 * runs still going). Each result is counted (diag_client_*) and logged.
 */
void diag_adopt(struct worker *w, const struct snap_header *h);

/*
 * Abort everything (RST) and free the worker's diag state: before
 * tcp_stack_destroy(). No callback runs.
 */
void diag_destroy(struct worker *w);

#endif
