/*
 * counters.h - every per-worker counter of the dataplane, as one X-macro
 * list: the enum, the name table published in shared memory, and the docs
 * come from the same place. Every drop has its own named counter.
 * A worker increments its own array only (no atomics on the fast path);
 * worker_publish_counters() copies it to shared memory now and then.
 */
#ifndef PG_COUNTERS_H
#define PG_COUNTERS_H

#define PG_COUNTERS(X)                                                         \
	X(loops, "poll loop passes")                                           \
	X(idle_sleeps, "back-off sleeps while idle")                           \
	X(rx_packets, "frames received from the NIC")                          \
	X(rx_bytes, "bytes received from the NIC")                             \
	X(tx_packets, "frames handed to the NIC")                              \
	X(tx_bytes, "bytes handed to the NIC")                                 \
	X(tx_drop_full, "frames dropped: NIC TX queue full")                   \
	X(tx_drop_nombuf, "frames not built: mbuf pool empty")                 \
	X(steer_fwd, "frames forwarded to their owning worker")                \
	X(steer_rx, "frames received from another worker")                     \
	X(steer_drop_full, "frames dropped: owner's steering ring full")       \
	X(arp_bcast_fwd, "ARP frames copied to the other workers")             \
	X(eth_drop_short, "frames dropped: shorter than an Ethernet header")   \
	X(eth_drop_not_for_us, "frames dropped: destination MAC not ours")     \
	X(eth_drop_type, "frames dropped: unsupported EtherType")              \
	X(eth_drop_port, "frames dropped: port index not configured")          \
	X(eth_drop_multicast, "frames dropped: multicast destination MAC")     \
	X(eth_drop_own_src, "frames dropped: our own source MAC (looped)")     \
	X(eth_drop_vlan, "frames dropped: VLAN-tagged")                        \
	X(arp_drop_malformed, "ARP dropped: short or not Ethernet/IPv4")       \
	X(arp_drop_not_for_us, "ARP requests for addresses not ours")          \
	X(arp_drop_bad_sender, "ARP dropped: broadcast/zero/our own sender")   \
	X(arp_drop_op, "ARP dropped: unknown operation")                       \
	X(arp_conflict, "ARP: another host claims our address")                \
	X(arp_request_rx, "ARP requests for our addresses")                    \
	X(arp_reply_rx, "ARP replies received")                                \
	X(arp_reply_tx, "ARP replies sent")                                    \
	X(arp_request_tx, "ARP requests sent (resolution and retries)")        \
	X(arp_gratuitous_tx, "gratuitous ARP announcements sent")              \
	X(arp_learned, "neighbour entries created or refreshed")               \
	X(arp_expired, "neighbour entries expired")                            \
	X(arp_cache_full, "neighbour entries not created: cache full")         \
	X(arp_pending_queued, "packets parked awaiting ARP resolution")        \
	X(arp_pending_drop_full, "packets dropped: ARP pending queue full")    \
	X(arp_unresolved_drop, "packets dropped: neighbour did not answer")    \
	X(arp_flush_drop, "packets dropped: parked when config changed")       \
	X(ipv4_rx, "IPv4 packets received")                                   \
	X(ipv4_drop_short, "IPv4 dropped: truncated header")                   \
	X(ipv4_drop_version, "IPv4 dropped: version not 4")                    \
	X(ipv4_drop_hdrlen, "IPv4 dropped: bad header length")                 \
	X(ipv4_drop_totlen, "IPv4 dropped: bad total length")                  \
	X(ipv4_drop_cksum, "IPv4 dropped: bad header checksum")                \
	X(ipv4_drop_ttl, "IPv4 dropped: TTL zero")                             \
	X(ipv4_drop_fragment, "IPv4 dropped: fragment (no reassembly)")        \
	X(ipv4_drop_bad_src, "IPv4 dropped: multicast/broadcast/own source")   \
	X(ipv4_drop_not_for_us, "IPv4 dropped: destination not ours")          \
	X(ipv4_drop_link_bcast, "IPv4 dropped: unicast IP in link broadcast")  \
	X(ipv4_drop_proto, "IPv4 dropped: protocol not handled")               \
	X(icmp_drop_short, "ICMP dropped: truncated")                          \
	X(icmp_drop_cksum, "ICMP dropped: bad checksum")                       \
	X(icmp_drop_type, "ICMP dropped: type not handled")                    \
	X(icmp_echo_rx, "ICMP echo requests received")                         \
	X(icmp_echo_reply_tx, "ICMP echo replies sent")                        \
	X(route_drop_noroute, "packets dropped: no route to destination")      \
	X(ipv4_out_drop_mtu, "packets dropped: larger than the port MTU")      \
	X(ipv4_out_drop_headroom, "packets dropped: no headroom for Ethernet") \
	X(snapshot_adopted, "control snapshots adopted")                       \
	X(snapshot_rejected, "control snapshots refused (invalid)")

enum pg_counter {
#define PG_COUNTER_ENUM(name, doc) CTR_##name,
	PG_COUNTERS(PG_COUNTER_ENUM)
#undef PG_COUNTER_ENUM
	CTR__COUNT
};

extern const char *const pg_counter_names[CTR__COUNT];
extern const char *const pg_counter_docs[CTR__COUNT];

#endif
