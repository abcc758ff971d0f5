/*
 * net.c - the net layer's housekeeping entry points: timers, announcements
 * and adoption of a new configuration. Protocol work lives in eth.c,
 * arp.c, ipv4.c, icmp.c, ipv6.c, nd.c, icmp6.c; this file only fans out
 * to them. (IPv6 announces itself when DAD completes, from nd_timers.)
 */
#include "core/worker.h"
#include "net.h"
#include "net_private.h"

void net_timers(struct worker *w)
{
	arp_timers(w);
	nd_timers(w);
}

void net_announce(struct worker *w)
{
	arp_announce(w);
}

void net_config_changed(struct worker *w)
{
	arp_config_changed(w);
	nd_config_changed(w);
}
