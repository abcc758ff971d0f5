/*
 * port.h - NIC port bring-up: queues per worker, offloads the device
 * offers, mbuf pools per worker.
 */
#ifndef PG_PORT_H
#define PG_PORT_H

#include <stdint.h>

#include <rte_mempool.h>

#include "adopt.h"

#define PORT_RX_DESC 1024
#define PORT_TX_DESC 1024
#define PORT_POOL_MBUFS 8191 /* per worker: RX rings of every port + frames it builds */
#define PORT_POOL_CACHE 256

/*
 * Configure and start ports 0..nports-1 with one RX and one TX queue per
 * worker; queue i is worker i's and takes its mbufs from pools[i]. Fills
 * hw (DPDK id, MAC, offloads per port). PG_OK or PG_ERROR with a message.
 */
int port_setup(uint16_t nports, uint32_t nworkers, const uint16_t *mtu,
	       struct rte_mempool **pools, struct adopt_hw *hw, char *err, size_t errlen);
void port_shutdown(uint16_t nports);

#endif
