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

/*
 * The symmetric Toeplitz key of net/steer.c (0x6d5a repeated): with it a
 * flow and its reply hash alike, so NIC RSS agrees with software steering.
 */
static uint8_t port_rss_key[40] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

bool port_device_is_pci(const char *device)
{
	unsigned dom, bus, dev, fn;
	char tail;

	return sscanf(device, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) == 4 ||
	       sscanf(device, "%x:%x.%x%c", &bus, &dev, &fn, &tail) == 3;
}

void port_device_name(const char *device, char *name, size_t len)
{
	unsigned dom, bus, dev, fn;
	size_t n = strcspn(device, ",");

	if (sscanf(device, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4 ||
	    (dom = 0, sscanf(device, "%x:%x.%x", &bus, &dev, &fn) == 3)) {
		/* DPDK names PCI ports by their full address. */
		snprintf(name, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
		return;
	}
	snprintf(name, len, "%.*s", (int)n, device);
}

/*
 * Program the RETA so queue = hash % nworkers, the owner steering computes.
 * Only possible when nworkers is a power of two (the RETA index is the low
 * bits of the hash); otherwise the NIC spreads flows its own way and the
 * steering rings carry the difference, as on devices with no RSS at all.
 */
static void port_program_reta(uint16_t pid, const struct rte_eth_dev_info *info,
			      uint32_t nworkers)
{
	struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];

	if (info->reta_size == 0 || info->reta_size > RTE_ETH_RSS_RETA_SIZE_512 ||
	    (nworkers & (nworkers - 1)) != 0)
		return;
	memset(reta, 0, sizeof(reta));
	for (uint16_t i = 0; i < info->reta_size; i++) {
		reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
		reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] =
			(uint16_t)(i % nworkers);
	}
	rte_eth_dev_rss_reta_update(pid, reta, info->reta_size);
}

int port_setup(uint16_t nports, uint32_t nworkers, const char (*devices)[256],
	       const uint16_t *mtu, struct rte_mempool **pools, struct adopt_hw *hw, char *err,
	       size_t errlen)
{
	memset(hw, 0, sizeof(*hw));
	for (uint16_t p = 0; p < nports; p++) {
		struct rte_eth_dev_info info;
		struct rte_eth_conf conf;
		struct net_port *np = &hw->ports[p];
		char name[RTE_ETH_NAME_MAX_LEN];
		uint16_t pid;
		int rc;

		port_device_name(devices[p], name, sizeof(name));
		if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
			snprintf(err, errlen,
				 "port %u: DPDK has no device \"%s\" (from port%u_device = %s): is "
				 "the driver available and the device bound to it?",
				 p, name, p, devices[p]);
			return PG_ERROR;
		}
		np->dpdk_port = pid;
		hw->nports = (uint16_t)(p + 1); /* port_shutdown stops what was set up */

		rc = rte_eth_dev_info_get(pid, &info);
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
			if (info.hash_key_size == sizeof(port_rss_key)) {
				conf.rx_adv_conf.rss_conf.rss_key = port_rss_key;
				conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(port_rss_key);
			}
			conf.rx_adv_conf.rss_conf.rss_hf =
				info.flow_type_rss_offloads &
				(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
		}
		rc = rte_eth_dev_configure(pid, (uint16_t)nworkers, (uint16_t)nworkers, &conf);
		if (rc != 0) {
			snprintf(err, errlen, "port %u (%s): configure failed: %s", p,
				 info.driver_name, rte_strerror(-rc));
			return PG_ERROR;
		}
		if (mtu[p] != 0 && rte_eth_dev_set_mtu(pid, mtu[p]) != 0) {
			/* Virtual devices often refuse; the frame size limit is the peer's. */
			uint16_t cur = 0;

			rte_eth_dev_get_mtu(pid, &cur);
			np->mtu = cur ? cur : mtu[p];
		} else {
			np->mtu = mtu[p];
		}
		uint16_t nrxd = PORT_RX_DESC, ntxd = PORT_TX_DESC;

		rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrxd, &ntxd);
		for (uint32_t q = 0; q < nworkers; q++) {
			int sock = rte_eth_dev_socket_id(pid);

			rc = rte_eth_rx_queue_setup(pid, (uint16_t)q, nrxd, sock, NULL, pools[q]);
			if (rc == 0)
				rc = rte_eth_tx_queue_setup(pid, (uint16_t)q, ntxd, sock, NULL);
			if (rc != 0) {
				snprintf(err, errlen, "port %u queue %u: setup failed: %s", p, q,
					 rte_strerror(-rc));
				return PG_ERROR;
			}
		}
		rc = rte_eth_dev_start(pid);
		if (rc != 0) {
			snprintf(err, errlen, "port %u (%s): start failed: %s", p,
				 info.driver_name, rte_strerror(-rc));
			return PG_ERROR;
		}
		rte_eth_macaddr_get(pid, &np->mac);
		/*
		 * IPv6 Neighbor Discovery arrives on multicast groups - all
		 * nodes, the solicited-node group of each address (RFC 4861
		 * §7.2.1) - that follow the configuration: the NIC passes all
		 * multicast and eth.c keeps each port's groups. A device that
		 * cannot filter (virtual ones) delivers everything anyway.
		 */
		(void)rte_eth_allmulticast_enable(pid);
		if (conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS)
			port_program_reta(pid, &info, nworkers);
	}
	return PG_OK;
}

void port_shutdown(const struct adopt_hw *hw)
{
	for (uint16_t p = 0; p < hw->nports; p++) {
		rte_eth_dev_stop(hw->ports[p].dpdk_port);
		rte_eth_dev_close(hw->ports[p].dpdk_port);
	}
}
