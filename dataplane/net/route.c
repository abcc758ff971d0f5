/*
 * route.c - IPv4 and IPv6 route lookup over the worker's net_config. The
 * tables are small and sorted longest prefix first by posternd
 * (control/conf.c, control/conf_ipv6.c; adopt.c refuses a table out of
 * order), so the first match is the longest-prefix match (RFC 1812
 * §5.2.4.3, and the same rule for IPv6).
 */
#include <assert.h>

#include "net.h"
#include "net_private.h"
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

int net_route6_lookup(const struct net_config *nc, const uint8_t dst[16],
                      const struct net_route6 **route)
{
	for (uint16_t i = 0; i < nc->nroutes6; i++) {
		const struct net_route6 *r = &nc->routes6[i];

		if (ip6_prefix_match(dst, r->prefix, r->prefix_len)) {
			assert(r->port < nc->nports);
			*route = r;
			return PG_OK;
		}
	}
	return PG_DECLINED;
}
