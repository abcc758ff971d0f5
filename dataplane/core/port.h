/*
 * port.h - NIC port bring-up: queues per worker, offloads the device
 * offers, mbuf pools per worker.
 */
#ifndef PG_PORT_H
#define PG_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_mempool.h>

#include "adopt.h"

#define PORT_RX_DESC 1024
#define PORT_TX_DESC 1024
#define PORT_POOL_MBUFS 8191 /* per worker: RX rings of every port + frames it builds */
#define PORT_POOL_CACHE 256

/*
 * Configure and start the configured ports with one RX and one TX queue per
 * worker; queue i is worker i's and takes its mbufs from pools[i].
 * devices[p] is port p's device as configured (PCI address or vdev spec):
 * it is resolved to its DPDK port id by name, never assumed to equal p.
 * Fills hw (DPDK id, MAC, MTU, offloads per port). PG_OK or PG_ERROR.
 */
int port_setup(uint16_t nports, uint32_t nworkers, const char (*devices)[256],
	       const uint16_t *mtu, struct rte_mempool **pools, struct adopt_hw *hw, char *err,
	       size_t errlen);
void port_shutdown(const struct adopt_hw *hw);

/* The DPDK device name of a configured device ("net_tap0,iface=x" -> "net_tap0"). */
void port_device_name(const char *device, char *name, size_t len);
bool port_device_is_pci(const char *device);

#endif
