/*
 * adopt.h - a worker adopting a control snapshot: validate it, compile it
 * into the worker's private runtime config, record the generation.
 */
#ifndef PG_ADOPT_H
#define PG_ADOPT_H

#include <stdint.h>

#include "net/net.h"
#include "net/tcp.h"

struct worker;
struct snap_header;

/*
 * What the hardware side knows about each port (DPDK id, MAC, offloads),
 * set up once by port.c before the workers start. The snapshot supplies
 * addresses, MTU and routes; this supplies the rest.
 */
struct adopt_hw {
	uint16_t nports;
	struct net_port ports[NET_MAX_PORTS];
};

/*
 * Adopt the published generation if it differs from the one the worker
 * runs. PG_OK (adopted or nothing new), PG_AGAIN (nothing published yet),
 * PG_ERROR (snapshot refused: the worker keeps its old config).
 */
int adopt_snapshot(struct worker *w, const struct adopt_hw *hw);

/* Free the worker's certificate set (shutdown, tests). */
void adopt_release_certs(struct worker *w);

/*
 * Compile a validated snapshot into a net_config (pure function, used by
 * adopt_snapshot and the unit tests). Ports the hardware does not have are
 * skipped; routes via such ports too.
 */
int adopt_compile_net(const struct snap_header *h, const struct adopt_hw *hw,
		      struct net_config *nc, char *err, size_t errlen);

/*
 * The TCP settings of a validated snapshot over *cfg (pure function): the
 * operator's fields are replaced, the others (timer constants, ports,
 * options) kept. A snapshot from before ABI 1.4 has no TCP section and
 * gives tcp_config_default()'s values, as postern.conf's defaults do.
 */
void adopt_compile_tcp(const struct snap_header *h, struct tcp_config *cfg);

#endif
