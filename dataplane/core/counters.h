/*
 * counters.h - every per-worker counter of the dataplane, as one X-macro
 * list: the enum, the name table published in shared memory, and the docs
 * come from the same place. Every drop has its own named counter.
 * A worker increments its own array only (no atomics on the fast path);
 * worker_publish_counters() copies it to shared memory now and then.
 */
#ifndef PG_COUNTERS_H
#define PG_COUNTERS_H

#define PG_COUNTERS(X)                                                                             \
	X(loops, "poll loop passes")                                                               \
	X(idle_sleeps, "back-off sleeps while idle")                                               \
	X(busy_ns, "nanoseconds in poll passes that did work (busyness)")                          \
	X(rx_packets, "frames received from the NIC")                                              \
	X(rx_bytes, "bytes received from the NIC")                                                 \
	X(tx_packets, "frames handed to the NIC")                                                  \
	X(tx_bytes, "bytes handed to the NIC")                                                     \
	X(tx_drop_full, "frames dropped: NIC TX queue full")                                       \
	X(tx_drop_nombuf, "frames not built: mbuf pool empty")                                     \
	X(steer_fwd, "frames forwarded to their owning worker")                                    \
	X(steer_rx, "frames received from another worker")                                         \
	X(steer_drop_full, "frames dropped: owner's steering ring full")                           \
	X(arp_bcast_fwd, "ARP frames copied to the other workers")                                 \
	X(eth_drop_short, "frames dropped: shorter than an Ethernet header")                       \
	X(eth_drop_not_for_us, "frames dropped: destination MAC not ours")                         \
	X(eth_drop_type, "frames dropped: unsupported EtherType")                                  \
	X(eth_drop_port, "frames dropped: port index not configured")                              \
	X(eth_drop_multicast, "frames dropped: multicast destination MAC")                         \
	X(eth_drop_own_src, "frames dropped: our own source MAC (looped)")                         \
	X(eth_drop_vlan, "frames dropped: VLAN-tagged")                                            \
	X(arp_drop_malformed, "ARP dropped: short or not Ethernet/IPv4")                           \
	X(arp_drop_not_for_us, "ARP requests for addresses not ours")                              \
	X(arp_drop_bad_sender, "ARP dropped: broadcast/zero/our own sender")                       \
	X(arp_drop_op, "ARP dropped: unknown operation")                                           \
	X(arp_conflict, "ARP: another host claims our address")                                    \
	X(arp_request_rx, "ARP requests for our addresses")                                        \
	X(arp_reply_rx, "ARP replies received")                                                    \
	X(arp_reply_tx, "ARP replies sent")                                                        \
	X(arp_request_tx, "ARP requests sent (resolution and retries)")                            \
	X(arp_gratuitous_tx, "gratuitous ARP announcements sent")                                  \
	X(arp_learned, "neighbour entries created or refreshed")                                   \
	X(arp_expired, "neighbour entries expired")                                                \
	X(arp_cache_full, "neighbour entries not created: cache full")                             \
	X(arp_pending_queued, "packets parked awaiting ARP resolution")                            \
	X(arp_pending_drop_full, "packets dropped: ARP pending queue full")                        \
	X(arp_unresolved_drop, "packets dropped: neighbour did not answer")                        \
	X(arp_flush_drop, "packets dropped: parked when config changed")                           \
	X(ipv4_rx, "IPv4 packets received")                                                        \
	X(ipv4_drop_short, "IPv4 dropped: truncated header")                                       \
	X(ipv4_drop_version, "IPv4 dropped: version not 4")                                        \
	X(ipv4_drop_hdrlen, "IPv4 dropped: bad header length")                                     \
	X(ipv4_drop_totlen, "IPv4 dropped: bad total length")                                      \
	X(ipv4_drop_cksum, "IPv4 dropped: bad header checksum")                                    \
	X(ipv4_drop_ttl, "IPv4 dropped: TTL zero")                                                 \
	X(ipv4_drop_fragment, "IPv4 dropped: fragment (no reassembly)")                            \
	X(ipv4_drop_bad_src, "IPv4 dropped: multicast/broadcast/own source")                       \
	X(ipv4_drop_not_for_us, "IPv4 dropped: destination not ours")                              \
	X(ipv4_drop_link_bcast, "IPv4 dropped: unicast IP in link broadcast")                      \
	X(ipv4_drop_proto, "IPv4 dropped: protocol not handled")                                   \
	X(icmp_drop_short, "ICMP dropped: truncated")                                              \
	X(icmp_drop_cksum, "ICMP dropped: bad checksum")                                           \
	X(icmp_drop_type, "ICMP dropped: type not handled")                                        \
	X(icmp_echo_rx, "ICMP echo requests received")                                             \
	X(icmp_echo_reply_tx, "ICMP echo replies sent")                                            \
	X(route_drop_noroute, "packets dropped: no route to destination")                          \
	X(ipv4_out_drop_mtu, "packets dropped: larger than the port MTU")                          \
	X(ipv4_out_drop_headroom, "packets dropped: no headroom for Ethernet")                     \
	X(ipv6_rx, "IPv6 packets received")                                                        \
	X(ipv6_drop_short, "IPv6 dropped: truncated header")                                       \
	X(ipv6_drop_version, "IPv6 dropped: version not 6")                                        \
	X(ipv6_drop_len, "IPv6 dropped: bad payload length or jumbogram")                          \
	X(ipv6_drop_bad_src, "IPv6 dropped: multicast/loopback/own source")                        \
	X(ipv6_drop_not_for_us, "IPv6 dropped: destination not ours")                              \
	X(ipv6_drop_link_bcast, "IPv6 dropped: Ethernet broadcast frame")                          \
	X(ipv6_drop_tentative, "IPv6 dropped: to an address not (yet) valid")                      \
	X(ipv6_drop_exthdr, "IPv6 dropped: bad or too long header chain")                          \
	X(ipv6_drop_option, "IPv6 dropped: option says discard, bad padding")                      \
	X(ipv6_drop_routing, "IPv6 dropped: routing header, segments left")                        \
	X(ipv6_drop_fragment, "IPv6 dropped: fragment (no reassembly)")                            \
	X(ipv6_drop_no_next, "IPv6 dropped: no next header (59)")                                  \
	X(ipv6_drop_proto, "IPv6 dropped: upper-layer protocol not handled")                       \
	X(ipv6_drop_scope, "IPv6 dropped: TCP with a link-local address")                          \
	X(ipv6_out_drop_mtu, "IPv6 packets dropped: larger than the port MTU")                     \
	X(ipv6_out_drop_headroom, "IPv6 packets dropped: no headroom")                             \
	X(ipv6_out_drop_nosrc, "IPv6 packets dropped: no usable source")                           \
	X(route6_drop_noroute, "IPv6 packets dropped: no route")                                   \
	X(icmp6_drop_short, "ICMPv6 dropped: truncated")                                           \
	X(icmp6_drop_cksum, "ICMPv6 dropped: bad checksum")                                        \
	X(icmp6_drop_type, "ICMPv6 dropped: type not handled")                                     \
	X(icmp6_drop_mcast_echo, "ICMPv6 echo requests to multicast ignored")                      \
	X(icmp6_echo_rx, "ICMPv6 echo requests received")                                          \
	X(icmp6_echo_reply_tx, "ICMPv6 echo replies sent")                                         \
	X(icmp6_error_rx, "ICMPv6 error messages received")                                        \
	X(icmp6_error_tx, "ICMPv6 error messages sent (RFC 4443)")                                 \
	X(icmp6_error_suppressed, "ICMPv6 errors not sent: RFC 4443 2.4(e)")                       \
	X(icmp6_error_limited, "ICMPv6 errors not sent: rate limit")                               \
	X(nd_drop_invalid, "ND dropped: fails RFC 4861 7.1 validation")                            \
	X(nd_drop_not_for_us, "ND solicitations for targets not ours")                             \
	X(nd_ignored, "ND/MLD messages for routers ignored (RS, RA, ...)")                         \
	X(nd_bcast_fwd, "ND frames copied to the other workers")                                   \
	X(nd_ns_rx, "ND neighbour solicitations received")                                         \
	X(nd_na_rx, "ND neighbour advertisements received")                                        \
	X(nd_ns_tx, "ND neighbour solicitations sent (NUD, DAD)")                                  \
	X(nd_na_tx, "ND neighbour advertisements sent")                                            \
	X(nd_learned, "ND neighbour entries created or updated")                                   \
	X(nd_expired, "ND neighbour entries removed (unreachable, unused)")                        \
	X(nd_cache_full, "ND neighbour entries not created: cache full")                           \
	X(nd_pending_queued, "packets parked awaiting ND resolution")                              \
	X(nd_pending_drop_full, "packets dropped: ND pending queue full")                          \
	X(nd_unresolved_drop, "packets dropped: IPv6 neighbour silent")                            \
	X(nd_flush_drop, "packets dropped: parked for ND at config change")                        \
	X(nd_dad_ok, "IPv6 addresses that passed DAD (RFC 4862)")                                  \
	X(nd_dad_duplicate, "IPv6 addresses found duplicate by DAD")                               \
	X(nd_conflict, "ND: another node advertises our address")                                  \
	X(mld_report_tx, "MLD reports sent (solicited-node groups)")                               \
	X(mld_query_rx, "MLD queries received")                                                    \
	X(mld_drop_invalid, "MLD queries dropped: not link-local, bad length")                     \
	X(tcp_rx, "TCP segments received")                                                         \
	X(tcp_drop_short, "TCP dropped: truncated header or zero port")                            \
	X(tcp_drop_cksum, "TCP dropped: bad checksum")                                             \
	X(tcp_rx_noconn, "TCP segments for no connection (RST sent)")                              \
	X(tcp_syn_rx, "TCP SYNs received by a listener")                                           \
	X(tcp_drop_backlog, "TCP SYNs dropped: listener backlog full")                             \
	X(tcp_drop_maxconn, "TCP connections refused: per-worker cap")                             \
	X(tcp_drop_paws, "TCP dropped: PAWS, old timestamp (RFC 7323)")                            \
	X(tcp_drop_oow, "TCP dropped: outside the receive window")                                 \
	X(tcp_drop_rst_oow, "TCP RSTs dropped: outside the window")                                \
	X(tcp_drop_bad_ack, "TCP dropped: unacceptable ACK in handshake")                          \
	X(tcp_drop_ack_unsent, "TCP dropped: ACK for data never sent")                             \
	X(tcp_drop_ack_old, "TCP dropped: ACK too old (RFC 5961 5.2)")                             \
	X(tcp_drop_ooo_full, "TCP data dropped: out-of-order ranges full")                         \
	X(tcp_rx_syn_challenged, "TCP SYNs on a live connection (RFC 5961)")                       \
	X(tcp_challenge_ack_tx, "TCP challenge ACKs sent (RFC 5961)")                              \
	X(tcp_challenge_ack_limited, "TCP challenge ACKs suppressed by rate")                      \
	X(tcp_rx_dup, "TCP duplicate segments received")                                           \
	X(tcp_rx_ooo, "TCP out-of-order segments received")                                        \
	X(tcp_rx_dupacks, "TCP duplicate ACKs received")                                           \
	X(tcp_rx_window_probe, "TCP zero-window probes received")                                  \
	X(tcp_rst_rx, "TCP valid RSTs received")                                                   \
	X(tcp_rst_tx, "TCP RSTs sent")                                                             \
	X(tcp_tx_segs, "TCP segments sent")                                                        \
	X(tcp_retransmits, "TCP segments retransmitted")                                           \
	X(tcp_rto, "TCP retransmission timeouts")                                                  \
	X(tcp_fast_retransmits, "TCP fast retransmits (3 dupacks)")                                \
	X(tcp_partial_acks, "TCP partial ACKs in recovery (RFC 6582)")                             \
	X(tcp_persist_probes, "TCP zero-window probes sent")                                       \
	X(tcp_delack_tx, "TCP delayed ACKs sent by the timer")                                     \
	X(tcp_conn_alloc, "TCP connections allocated")                                             \
	X(tcp_conn_free, "TCP connections freed")                                                  \
	X(tcp_conn_passive, "TCP connections accepted (passive open)")                             \
	X(tcp_conn_active, "TCP connections established (active open)")                            \
	X(tcp_conn_closed, "TCP connections closed in order (LAST_ACK)")                           \
	X(tcp_conn_reset, "TCP connections reset by the peer")                                     \
	X(tcp_conn_refused, "TCP active opens refused (RST to SYN)")                               \
	X(tcp_conn_timeout, "TCP connections timed out")                                           \
	X(tcp_conn_aborted, "TCP connections aborted by the upper layer")                          \
	X(tcp_close_unread_rst, "TCP resets: closed with unread data")                             \
	X(tcp_orphan_data_rst, "TCP resets: data for a closed handle")                             \
	X(tcp_time_wait_reuse, "TCP TIME_WAIT tuples reused")                                      \
	X(tcp_port_exhausted, "TCP connects failed: no local port")                                \
	X(tcp_syncookie_tx, "TCP SYN cookies sent (backlog full, RFC 4987)")                       \
	X(tcp_syncookie_ok, "TCP SYN cookies accepted (connection made)")                          \
	X(tcp_syncookie_bad, "TCP SYN cookies refused (forged or expired)")                        \
	X(tcp_rx_sack_blocks, "TCP SACK blocks received and used")                                 \
	X(tcp_rx_sack_bad, "TCP SACK blocks ignored: D-SACK or out of range")                      \
	X(tcp_sack_recovery, "TCP SACK loss recovery episodes (RFC 6675)")                         \
	X(tcp_sack_rtx, "TCP segments resent into SACK holes")                                     \
	X(tcp_sack_lost_rxt, "TCP lost retransmissions detected by SACK")                          \
	X(tcp_limited_transmit, "TCP segments sent by limited transmit")                           \
	X(tcp_refuse_mem, "TCP connections refused: buffer memory watermark")                      \
	X(tcp_refuse_mbuf, "TCP connections refused: mbuf watermark")                              \
	X(tcp_keepalive_tx, "TCP keepalive probes sent")                                           \
	X(tcp_keepalive_timeout, "TCP connections dropped: keepalive")                             \
	X(tcp_pmtu_update, "TCP MSS lowered by ICMP frag-needed or PTB")                           \
	X(tcp_pmtu_ignored, "ICMP frag-needed/PTB ignored: no match or seq")                       \
	X(diag_echo_conns, "diag: echo connections accepted (port 7)")                             \
	X(diag_echo_bytes, "diag: bytes echoed")                                                   \
	X(diag_discard_conns, "diag: discard connections accepted (port 9)")                       \
	X(diag_discard_bytes, "diag: bytes discarded")                                             \
	X(diag_source_conns, "diag: source connections accepted (port 19)")                        \
	X(diag_source_bytes, "diag: pattern bytes sent by the source")                             \
	X(diag_bad_request, "diag: source requests refused with RST")                              \
	X(diag_client_runs, "diag client: runs finished")                                          \
	X(diag_client_ok, "diag client: runs verified ok")                                         \
	X(diag_client_fail, "diag client: runs failed")                                            \
	X(diag_client_bytes, "diag client: payload bytes sent and received")                       \
	X(snapshot_adopted, "control snapshots adopted")                                           \
	X(snapshot_rejected, "control snapshots refused (invalid)")                                \
	X(smtp_sessions, "SMTP sessions accepted (greeted 220)")                                   \
	X(smtp_sessions_refused, "SMTP sessions refused: 421 at greeting")                         \
	X(smtp_sessions_ipv6, "SMTP sessions accepted over IPv6 (of smtp_sessions)")               \
	X(smtp_messages_accepted, "SMTP messages on disk and answered 250")                        \
	X(smtp_recipients_accepted, "SMTP recipients accepted (RCPT 250)")                         \
	X(smtp_relay_denied, "SMTP recipients refused: 554 5.7.1 relay")                           \
	X(smtp_spool_errors, "SMTP messages refused: spool error (451/452)")                       \
	X(smtp_loops_refused, "SMTP messages refused: 554 5.4.6 too many hops")                    \
	X(smtp_timeouts, "SMTP sessions closed by a timeout (421 4.4.2)")                          \
	X(smtp_tls_handshakes, "inbound STARTTLS handshakes completed")                            \
	X(smtp_tls_resumed, "inbound handshakes that resumed a session (ticket)")                  \
	X(smtp_tls_failures, "inbound STARTTLS handshakes that failed")                            \
	X(smtp_tls_required, "inbound MAIL refused 530 5.7.0: TLS required")                       \
	X(smtp_tls_required_rcpt, "inbound RCPT refused 530 5.7.0: TLS required (recipient)")      \
	X(spool_commits, "spool: messages committed (spool_stats)")                                \
	X(spool_fsyncs, "spool: data fdatasyncs (spool_stats)")                                    \
	X(spool_queued, "spool: messages in the queue now (not a total)")                          \
	X(delivery_attempts, "delivery: transactions started (one per job)")                       \
	X(delivery_connections, "delivery: connections opened to next hops")                       \
	X(delivery_connections_ipv6, "delivery: of those, to IPv6 next hops")                      \
	X(delivery_connection_reuses, "delivery: transactions on a reused connection")             \
	X(delivery_connect_failures, "delivery: connections refused, timed out, no route")         \
	X(delivery_failovers, "delivery: jobs moved on to the next next hop")                      \
	X(delivery_timeouts, "delivery: SMTP client timeouts (RFC 5321 4.5.3.2)")                  \
	X(delivery_tls_handshakes, "delivery: STARTTLS handshakes completed")                      \
	X(delivery_tls_failures, "delivery: STARTTLS handshakes that failed")                      \
	X(delivery_tls_policy_deferred, "delivery: attempts deferred by TLS policy (4.7.x)")       \
	X(delivery_tls_would_defer, "delivery: mode=testing attempts that would have deferred")    \
	X(delivery_tls_floor_raised, "delivery: jobs queued at a level a sender floor raised")     \
	X(delivery_tls_plaintext_fallbacks, "delivery: level may: retried in plaintext")           \
	X(delivery_rcpts_delivered, "delivery: recipients accepted by the next hop")               \
	X(delivery_rcpts_deferred, "delivery: recipient attempts deferred (4xx)")                  \
	X(delivery_rcpts_bounced, "delivery: recipients bounced (5xx or expired)")                 \
	X(delivery_active, "delivery: messages in delivery now (not a total)")                     \
	X(dsn_sent, "delivery: bounces (DSNs) written to the spool")                               \
	X(dsn_discarded, "delivery: bounces not sent: the null sender")                            \
	X(queue_deleted, "queue: messages deleted by the operator")                                \
	X(dns_routes, "dns: route lookups (MX or [host]) a worker asked for")                      \
	X(dns_routes_cached, "dns: route lookups answered wholly from the cache")                  \
	X(dns_queries, "dns: queries libunbound was asked (cache misses)")                         \
	X(dns_cache_hits, "dns: answers taken from the shared cache")                              \
	X(dns_merged, "dns: lookups joined to the same query in flight")                           \
	X(dns_nxdomain, "dns: route lookups that found no such domain (5.1.2)")                    \
	X(dns_nullmx, "dns: route lookups that found a null MX (5.1.10)")                          \
	X(dns_servfail, "dns: route lookups failed: SERVFAIL or resolver error (4.4.3)")           \
	X(dns_timeouts, "dns: route lookups failed: dns_timeout (4.4.3)")                          \
	X(dns_bogus, "dns: route lookups failed: DNSSEC bogus (4.4.3)")                            \
	X(dns_loops, "dns: route lookups whose best MX is Postern (5.4.6)")                        \
	X(dns_busy, "dns: route lookups not submitted: the resolver's ring was full")              \
	X(dns_latency_ns, "dns: nanoseconds from submission to answer, summed")

enum pg_counter {
#define PG_COUNTER_ENUM(name, doc) CTR_##name,
	PG_COUNTERS(PG_COUNTER_ENUM)
#undef PG_COUNTER_ENUM
	    CTR__COUNT
};

extern const char *const pg_counter_names[CTR__COUNT];
extern const char *const pg_counter_docs[CTR__COUNT];

#endif
