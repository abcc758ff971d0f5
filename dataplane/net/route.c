/*
 * route.c - IPv4 route lookup over the worker's net_config. The table is
 * small and sorted longest prefix first by posternd (control/conf.c; adopt.c
 * refuses a table out of order), so the first match is the longest-prefix
 * match (RFC 1812 §5.2.4.3).
 */
#include <assert.h>

#include "net.h"
#include "result.h"

int net_route_lookup(const struct net_config *nc, uint32_t dst, const struct net_route **route)
{
	for (uint16_t i = 0; i < nc->nroutes; i++) {
		const struct net_route *r = &nc->routes[i];

		if ((dst & r->netmask) == r->prefix) {
			assert(r->port < nc->nports);
			*route = r;
			return PG_OK;
		}
	}
	return PG_DECLINED;
}
