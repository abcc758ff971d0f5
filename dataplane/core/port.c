/*
 * port.c - port bring-up. Each worker owns RX/TX queue `id` on every port,
 * so no queue is ever shared between cores. Offloads are used when the
 * device offers them (IPv4 header checksum today; TCP/UDP with the TCP
 * issue) and done in software otherwise: net_port records which.
 */
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>

#include "port.h"
#include "result.h"

int port_setup(uint16_t nports, uint32_t nworkers, const uint16_t *mtu,
	       struct rte_mempool **pools, struct adopt_hw *hw, char *err, size_t errlen)
{
	uint16_t avail = rte_eth_dev_count_avail();

	if (avail < nports) {
		snprintf(err, errlen,
			 "the configuration has %u port(s) but DPDK found %u device(s): check the "
			 "portN_device lines and the EAL options (--no-pci hides PCI devices)",
			 nports, avail);
		return PG_ERROR;
	}
	memset(hw, 0, sizeof(*hw));
	hw->nports = nports;
	for (uint16_t p = 0; p < nports; p++) {
		struct rte_eth_dev_info info;
		struct rte_eth_conf conf;
		struct net_port *np = &hw->ports[p];
		int rc;

		rc = rte_eth_dev_info_get(p, &info);
		if (rc != 0) {
			snprintf(err, errlen, "port %u: cannot read device info: %s", p,
				 rte_strerror(-rc));
			return PG_ERROR;
		}
		if (info.max_rx_queues < nworkers || info.max_tx_queues < nworkers) {
			snprintf(err, errlen,
				 "port %u (%s) offers %u RX / %u TX queues but workers = %u: lower "
				 "workers or give the device more queues (net_af_packet: qpairs=N; "
				 "net_tap: queues=N)",
				 p, info.driver_name, info.max_rx_queues, info.max_tx_queues,
				 nworkers);
			return PG_ERROR;
		}
		memset(&conf, 0, sizeof(conf));
		if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
			np->rx_ip_cksum_offload = true;
		}
		if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
			conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
			np->tx_ip_cksum_offload = true;
		}
		if (nworkers > 1 && info.flow_type_rss_offloads != 0) {
			/*
			 * RSS where the device has it. Steering still checks
			 * every packet: the device's hash need not be ours.
			 */
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf =
				info.flow_type_rss_offloads &
				(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
		}
		rc = rte_eth_dev_configure(p, (uint16_t)nworkers, (uint16_t)nworkers, &conf);
		if (rc != 0) {
			snprintf(err, errlen, "port %u (%s): configure failed: %s", p,
				 info.driver_name, rte_strerror(-rc));
			return PG_ERROR;
		}
		if (mtu[p] != 0 && rte_eth_dev_set_mtu(p, mtu[p]) != 0) {
			/* Virtual devices often refuse; the frame size limit is the peer's. */
			uint16_t cur = 0;

			rte_eth_dev_get_mtu(p, &cur);
			np->mtu = cur ? cur : mtu[p];
		} else {
			np->mtu = mtu[p];
		}
		uint16_t nrxd = PORT_RX_DESC, ntxd = PORT_TX_DESC;

		rte_eth_dev_adjust_nb_rx_tx_desc(p, &nrxd, &ntxd);
		for (uint32_t q = 0; q < nworkers; q++) {
			int sock = rte_eth_dev_socket_id(p);

			rc = rte_eth_rx_queue_setup(p, (uint16_t)q, nrxd, sock, NULL, pools[q]);
			if (rc == 0)
				rc = rte_eth_tx_queue_setup(p, (uint16_t)q, ntxd, sock, NULL);
			if (rc != 0) {
				snprintf(err, errlen, "port %u queue %u: setup failed: %s", p, q,
					 rte_strerror(-rc));
				return PG_ERROR;
			}
		}
		rc = rte_eth_dev_start(p);
		if (rc != 0) {
			snprintf(err, errlen, "port %u (%s): start failed: %s", p,
				 info.driver_name, rte_strerror(-rc));
			return PG_ERROR;
		}
		rte_eth_macaddr_get(p, &np->mac);
		np->dpdk_port = p;
	}
	return PG_OK;
}

void port_shutdown(uint16_t nports)
{
	for (uint16_t p = 0; p < nports; p++) {
		rte_eth_dev_stop(p);
		rte_eth_dev_close(p);
	}
}
