/*
 * main.c - postern-dp, the DPDK primary process (DPDK examples shape:
 * EAL init, ports, launch one loop per worker lcore, wait).
 *
 *   postern-dp [EAL options] -- [--shm NAME] [--wait SECONDS]
 *
 * The devices, addresses, routes and worker count come from the control
 * snapshot that posternd publishes, not from the command line: the
 * dataplane attaches the shared memory first, waits (bounded) for the first
 * snapshot, and only then initialises the EAL with the devices it names.
 * The command line carries only host-specific EAL options (-l, -m, ...).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "adopt.h"
#include "diag/diag.h"
#include "dns/resolver.h"
#include "events.h"
#include "loop.h"
#include "port.h"
#include "result.h"
#include "shm.h"
#include "snap_format.h"
#include "timer.h"
#include "worker.h"
#include "net/tcp.h"
#include "net/tcp_isn.h"
#include "relay/inbound.h"
#include "relay/outbound.h"
#include "spool/spool.h"

#define DP_MAX_EAL_ARGS 128

struct dp_options {
	const char *shm_name;
	unsigned wait_s; /* for the shared memory and the first snapshot */
};

/* What the process was started with; a snapshot changing these needs a restart. */
struct dp_layout {
	uint32_t workers;
	uint16_t nports;
	char devices[SNAP_MAX_PORTS][256];
	uint16_t mtu[SNAP_MAX_PORTS];
	/* TCP settings: all live for new connections, but the stack's table
	 * size and SYN-cookie window scale come from the first (net/tcp.h) */
	struct tcp_config tcp;
	/* the spools are opened once, before the workers run (spool.h) */
	bool smtp;
	char spool_dir[SNAP_SMTP_SPOOL_DIR_MAX + 1];
};

/* smtp_service and spool_directory of a validated snapshot. */
static void dp_read_smtp(const struct snap_header *h, struct dp_layout *l)
{
	uint32_t n;
	const struct snap_smtp *t = snap_section(h, SNAP_SEC_SMTP, &n);

	l->smtp = t != NULL && n == 1 && (t->flags & SNAP_SMTP_F_SERVICE) != 0;
	l->spool_dir[0] = '\0';
	if (l->smtp)
		snprintf(l->spool_dir, sizeof(l->spool_dir), "%s", snap_string(h, t->spool_directory));
}

static struct shm_map *dp_shm_for_fail; /* only for dp_fail's message */

static void dp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void dp_fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "postern-dp: %s\n", msg);
	if (dp_shm_for_fail != NULL && dp_shm_for_fail->region != NULL) {
		struct shm_dataplane *d = &dp_shm_for_fail->region->dp;

		snprintf(d->message, sizeof(d->message), "%s", msg);
		atomic_store(&d->state, SHM_DP_FAILED);
		shm_release(dp_shm_for_fail, 0);
		atomic_store(&dp_shm_for_fail->region->readers[0].active, 0);
	}
	exit(1);
}

static void dp_usage(void)
{
	fprintf(stderr, "usage: postern-dp [EAL options] -- [--shm NAME] [--wait SECONDS]\n"
			"  --shm NAME     shared memory published by posternd (default %s)\n"
			"  --wait SECONDS how long to wait for posternd's first snapshot (default 30)\n",
		SHM_DEFAULT_NAME);
}

static void dp_parse_app_args(int argc, char **argv, struct dp_options *o)
{
	static const struct option longopts[] = {
		{"shm", required_argument, NULL, 's'},
		{"wait", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	o->shm_name = SHM_DEFAULT_NAME;
	o->wait_s = 30;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 's':
			o->shm_name = optarg;
			break;
		case 'w':
			o->wait_s = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || o->wait_s > 3600) {
				fprintf(stderr, "postern-dp: --wait: \"%s\" is not 0..3600\n", optarg);
				exit(2);
			}
			break;
		case 'h':
			dp_usage();
			exit(0);
		default:
			dp_usage();
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "postern-dp: unexpected argument \"%s\"\n", argv[optind]);
		dp_usage();
		exit(2);
	}
}

static void dp_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Attach the shared memory, waiting (bounded) for posternd to create it. */
static void dp_attach(const struct dp_options *o, struct shm_map *shm, uint64_t deadline)
{
	char err[256] = "";

	for (;;) {
		int rc = shm_attach(o->shm_name, shm, err, sizeof(err));

		if (rc == PG_OK)
			return;
		if (rc == PG_ERROR)
			dp_fail("%s", err);
		if (shm_now_ns() >= deadline)
			dp_fail("no shared memory \"%s\" after %u s: is posternd running with "
				"shm_name = %s?",
				o->shm_name, o->wait_s, o->shm_name);
		dp_sleep_ms(50);
	}
}

/*
 * Become the one dataplane of this region: compare-and-swap our pid in
 * place of none or a dead one, before touching any reader record. Then
 * clear every reader record: a crashed predecessor's announcements would
 * otherwise count again under our live pid and pin slots forever.
 */
static void dp_claim(const struct dp_options *o, struct shm_map *shm)
{
	struct shm_region *r = shm->region;
	int32_t self = (int32_t)getpid();

	for (;;) {
		int32_t cur = atomic_load(&r->dp.pid);

		if (cur != 0 && cur != self && shm_pid_alive(cur))
			dp_fail("another postern-dp (pid %d) is attached to \"%s\"", cur,
				o->shm_name);
		if (atomic_compare_exchange_strong(&r->dp.pid, &cur, self))
			break;
	}
	for (unsigned i = 0; i < SHM_MAX_READERS; i++) {
		atomic_store(&r->readers[i].active, 0);
		atomic_store(&r->readers[i].announced, 0);
		atomic_store(&r->readers[i].adopted, 0);
		atomic_store(&r->readers[i].adopted_ns, 0);
		atomic_store(&r->readers[i].heartbeat_ns, 0);
	}
	r->dp.nworkers = 0;
}

/* Wait (bounded) for a published snapshot; reader 0 holds it on return. */
static const struct snap_header *dp_wait_snapshot(const struct dp_options *o,
						  struct shm_map *shm, uint64_t deadline,
						  uint64_t *gen)
{
	char err[256] = "";

	atomic_store(&shm->region->readers[0].active, 1);
	for (;;) {
		const struct snap_header *h = shm_acquire(shm, 0, gen);

		if (h != NULL) {
			if (snap_validate(h, RTE_MIN(h->size, shm->region->slot_capacity), err,
					  sizeof(err)) != 0)
				dp_fail("snapshot generation %lu is invalid: %s", (unsigned long)*gen,
					err);
			return h;
		}
		if (shm_now_ns() >= deadline)
			dp_fail("nothing published in shared memory \"%s\" after %u s: is "
				"posternd running?",
				o->shm_name, o->wait_s);
		dp_sleep_ms(50);
	}
}

static void dp_read_layout(const struct snap_header *h, struct dp_layout *l)
{
	const struct snap_dataplane *dp;
	const struct snap_port *sp;
	uint32_t n, nsp;

	memset(l, 0, sizeof(*l));
	dp = snap_section(h, SNAP_SEC_DATAPLANE, &n);
	sp = snap_section(h, SNAP_SEC_PORTS, &nsp);
	if (dp == NULL || sp == NULL || nsp == 0)
		dp_fail("snapshot has no dataplane settings or no ports");
	if (dp->workers == 0 || dp->workers > SNAP_MAX_WORKERS || nsp > SNAP_MAX_PORTS)
		dp_fail("snapshot asks for %u workers and %u ports", dp->workers, nsp);
	l->workers = dp->workers;
	l->nports = (uint16_t)nsp;
	for (uint16_t i = 0; i < nsp; i++) {
		snprintf(l->devices[i], sizeof(l->devices[i]), "%s", snap_string(h, sp[i].device));
		l->mtu[i] = sp[i].mtu;
	}
	tcp_config_default(&l->tcp);
	adopt_compile_tcp(h, &l->tcp);
	dp_read_smtp(h, l);
}

/*
 * EAL argv = our EAL options + one -a/--vdev per configured device. With
 * no PCI device configured, --no-pci: otherwise every PCI NIC bound to a
 * DPDK driver would be probed and taken as well.
 */
static int dp_build_eal_argv(int argc, char **argv, const struct dp_layout *l, char **out)
{
	bool any_pci = false, has_no_pci = false;
	int n = 0;

	for (int i = 0; i < argc && n < DP_MAX_EAL_ARGS - 4; i++) {
		has_no_pci |= strcmp(argv[i], "--no-pci") == 0;
		out[n++] = argv[i];
	}
	for (uint16_t p = 0; p < l->nports && n < DP_MAX_EAL_ARGS - 4; p++) {
		bool pci = port_device_is_pci(l->devices[p]);

		any_pci |= pci;
		out[n++] = pci ? "-a" : "--vdev";
		out[n++] = (char *)l->devices[p];
	}
	if (!any_pci && !has_no_pci)
		out[n++] = "--no-pci";
	out[n] = NULL;
	return n;
}

static void dp_on_signal(int sig)
{
	(void)sig;
	loop_request_stop();
}

/* A newer snapshot that changes the process layout is noted, not applied. */
static void dp_check_layout(struct shm_map *shm, const struct dp_layout *started, uint64_t *seen)
{
	const struct snap_header *h;
	struct dp_layout now;
	uint64_t gen = *seen;
	uint32_t n, nsp;
	const struct snap_dataplane *dp;
	const struct snap_port *sp;
	char why[256];

	if (shm_published_gen(shm) == *seen)
		return;
	h = shm_acquire(shm, 0, &gen);
	if (h == NULL)
		return;
	*seen = gen;
	char err[256];

	if (snap_validate(h, RTE_MIN(h->size, shm->region->slot_capacity), err, sizeof(err)) != 0) {
		shm_release(shm, 0);
		return;
	}
	dns_adopt(h); /* the resolver's section and settings are live */
	dp = snap_section(h, SNAP_SEC_DATAPLANE, &n);
	sp = snap_section(h, SNAP_SEC_PORTS, &nsp);
	memset(&now, 0, sizeof(now));
	if (dp != NULL && sp != NULL) {
		now.workers = dp->workers;
		now.nports = (uint16_t)RTE_MIN(nsp, (uint32_t)SNAP_MAX_PORTS);
		for (uint16_t i = 0; i < now.nports; i++) {
			snprintf(now.devices[i], sizeof(now.devices[i]), "%s",
				 snap_string(h, sp[i].device));
			now.mtu[i] = sp[i].mtu;
		}
	}
	tcp_config_default(&now.tcp);
	adopt_compile_tcp(h, &now.tcp);
	dp_read_smtp(h, &now);
	shm_release(shm, 0);
	if (now.smtp && (!started->smtp || strcmp(now.spool_dir, started->spool_dir) != 0)) {
		/* the service without a spool stays off; a running one keeps its spool */
		RTE_LOG(WARNING, USER1,
			"generation %lu: smtp_service with spool_directory %s takes effect when "
			"postern-dp restarts\n",
			(unsigned long)gen, now.spool_dir);
		dp_event_main(shm, EV_RESTART_NEEDED,
			      "generation=%lu" EVRING_SEP "reason=smtp_service or spool_directory "
			      "changed",
			      (unsigned long)gen);
	}
	if (now.workers != started->workers || now.nports != started->nports)
		goto restart;
	for (uint16_t i = 0; i < now.nports; i++)
		if (strcmp(now.devices[i], started->devices[i]) != 0 ||
		    now.mtu[i] != started->mtu[i])
			goto restart;
	if (tcp_config_restart_only(&started->tcp, &now.tcp, why, sizeof(why))) {
		RTE_LOG(WARNING, USER1, "generation %lu: TCP settings adopted, but %s\n",
			(unsigned long)gen, why);
		dp_event_main(shm, EV_RESTART_NEEDED, "generation=%lu" EVRING_SEP "reason=TCP: %s",
			      (unsigned long)gen, why);
	}
	return;
restart:
	RTE_LOG(WARNING, USER1,
		"generation %lu changes workers, port devices or MTUs: addresses and routes "
		"are adopted now, the new layout takes effect when postern-dp restarts\n",
		(unsigned long)gen);
	dp_event_main(shm, EV_RESTART_NEEDED,
		      "generation=%lu" EVRING_SEP "reason=workers, port devices or MTUs changed",
		      (unsigned long)gen);
}

int main(int argc, char **argv)
{
	struct dp_options opt;
	struct dp_layout layout;
	struct shm_map shm;
	struct adopt_hw hw;
	char *eal_argv[DP_MAX_EAL_ARGS];
	struct rte_mempool *pools[SNAP_MAX_WORKERS];
	struct rte_ring *rings[SNAP_MAX_WORKERS];
	struct worker *workers[SNAP_MAX_WORKERS];
	struct loop_args largs[SNAP_MAX_WORKERS];
	const struct snap_header *h;
	unsigned lcore, wi;
	int eal_argc, sep, rc;
	char err[512];
	uint64_t t0 = shm_now_ns(), seen_gen = 0, deadline, dns_gen;
	uint32_t mbuf_data;
	struct shm_region *r;
	struct tcp_isn_key isn_key; /* RFC 6528 secret: made once, each worker copies it */

	/* Split "EAL options -- our options". */
	for (sep = 1; sep < argc && strcmp(argv[sep], "--") != 0; sep++)
		;
	if (sep < argc)
		dp_parse_app_args(argc - sep, argv + sep, &opt);
	else
		dp_parse_app_args(1, argv, &opt);

	memset(&shm, 0, sizeof(shm));
	deadline = t0 + (uint64_t)opt.wait_s * 1000000000ull;
	dp_attach(&opt, &shm, deadline);
	r = shm.region;
	dp_claim(&opt, &shm);
	/* Ours now: from here a failure is reported in the region. */
	dp_shm_for_fail = &shm;
	atomic_store(&r->dp.start_ns, t0);
	atomic_store(&r->dp.ready_ns, 0);
	r->dp.message[0] = '\0';
	atomic_store(&r->dp.state, SHM_DP_STARTING);
	h = dp_wait_snapshot(&opt, &shm, deadline, &seen_gen);
	dp_read_layout(h, &layout);
	shm_release(&shm, 0);

	eal_argc = dp_build_eal_argv(sep, argv, &layout, eal_argv);
	rc = rte_eal_init(eal_argc, eal_argv);
	if (rc < 0)
		dp_fail("EAL initialisation failed: %s", rte_strerror(rte_errno));

	if (rte_lcore_count() - 1 < layout.workers)
		dp_fail("workers = %u but the EAL gives %u worker lcore(s): pass more with -l/--lcores "
			"(the main lcore does housekeeping only)",
			layout.workers, rte_lcore_count() - 1);

	/*
	 * One mbuf holds a whole frame of the largest MTU (no RX scatter
	 * needed): 2 KB for standard frames, more for jumbo ports.
	 */
	mbuf_data = RTE_MBUF_DEFAULT_DATAROOM;
	for (uint16_t p = 0; p < layout.nports; p++)
		mbuf_data = RTE_MAX(mbuf_data, (uint32_t)layout.mtu[p] + RTE_ETHER_HDR_LEN +
							RTE_ETHER_CRC_LEN + 2 * RTE_VLAN_HLEN);
	for (wi = 0; wi < layout.workers; wi++) {
		char name[RTE_MEMPOOL_NAMESIZE];

		snprintf(name, sizeof(name), "pg_pool_w%u", wi);
		pools[wi] = rte_pktmbuf_pool_create(name, PORT_POOL_MBUFS, PORT_POOL_CACHE, 0,
						    (uint16_t)(RTE_PKTMBUF_HEADROOM + mbuf_data),
						    SOCKET_ID_ANY);
		if (pools[wi] == NULL)
			dp_fail("cannot create mbuf pool for worker %u: %s (raise -m)", wi,
				rte_strerror(rte_errno));
		snprintf(name, sizeof(name), "pg_steer_w%u", wi);
		rings[wi] = rte_ring_create(name, WORKER_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
		if (rings[wi] == NULL)
			dp_fail("cannot create steering ring for worker %u: %s", wi,
				rte_strerror(rte_errno));
	}
	/* the resolver of MX routing, on this (the main) lcore: dataplane/dns/README.md */
	if (dns_init(layout.workers, err, sizeof(err)) != PG_OK)
		dp_fail("%s", err);
	dns_gen = seen_gen;
	h = shm_acquire(&shm, 0, &dns_gen);
	if (h != NULL) {
		if (snap_validate(h, RTE_MIN(h->size, shm.region->slot_capacity), err,
		                  sizeof(err)) == 0)
			dns_adopt(h);
		shm_release(&shm, 0);
	}
	if (port_setup(layout.nports, layout.workers, layout.devices, layout.mtu, pools, &hw, err,
		       sizeof(err)) != PG_OK) {
		port_shutdown(&hw);
		dp_fail("%s", err);
	}
	if (rte_eth_dev_count_avail() > layout.nports)
		RTE_LOG(WARNING, USER1, "%u DPDK port(s) found, %u configured: the others stay unused\n",
			rte_eth_dev_count_avail(), layout.nports);

	/* Counter names first, so posternd can label whatever it reads. */
	for (unsigned i = 0; i < CTR__COUNT && i < SHM_MAX_COUNTERS; i++) {
		snprintf(r->dp.counter_names[i], SHM_COUNTER_NAME, "%s", pg_counter_names[i]);
		snprintf(r->dp.counter_docs[i], SHM_COUNTER_DOC, "%s", pg_counter_docs[i]);
	}
	r->dp.ncounters = CTR__COUNT;
	memset(r->dp.counters, 0, sizeof(r->dp.counters));
	r->dp.nworkers = layout.workers;

	signal(SIGINT, dp_on_signal);
	signal(SIGTERM, dp_on_signal);

	if (tcp_isn_key_init(&isn_key) != PG_OK)
		dp_fail("cannot read 16 random bytes for the TCP ISN key: %s", strerror(errno));

	wi = 0;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		struct worker *w;

		if (wi == layout.workers)
			break;
		w = rte_zmalloc_socket("worker", sizeof(*w), RTE_CACHE_LINE_SIZE,
				       (int)rte_lcore_to_socket_id(lcore));
		if (w == NULL)
			dp_fail("cannot allocate worker %u", wi);
		worker_init_detached(w, wi, layout.workers, pools[wi]);
		w->lcore = lcore;
		w->rings = rings;
		w->shm = &shm;
		w->reader = 1 + wi;
		w->arp = arp_table_create(w, 4096);
		if (w->arp == NULL)
			dp_fail("cannot allocate the neighbour table of worker %u", wi);
		w->nd = nd_table_create(w, 4096);
		if (w->nd == NULL)
			dp_fail("cannot allocate the IPv6 neighbour table of worker %u", wi);
		w->timers = worker_alloc(w, sizeof(*w->timers));
		if (w->timers == NULL)
			dp_fail("cannot allocate the timer wheel of worker %u", wi);
		timer_wheel_init(w->timers, TIMER_TICK_NS_DEFAULT, shm_now_ns(), w);
		/* the snapshot's TCP settings from the start (adoption re-applies them) */
		w->tcp = tcp_stack_create(w, &layout.tcp, &isn_key);
		if (w->tcp == NULL)
			dp_fail("cannot allocate the TCP state of worker %u", wi);
		if (layout.smtp) {
			/* blocking (replay): now, not in the loop; fdatasyncs on the main lcore's CPUs */
			rte_cpuset_t iowq = rte_lcore_cpuset(rte_get_main_lcore());

			if (inbound_spool_open(w, layout.spool_dir, &iowq, sizeof(iowq), err,
					       sizeof(err)) != PG_OK)
				dp_fail("worker %u: %s", wi, err);
		}
		r->readers[w->reader].lcore = lcore;
		atomic_store(&r->readers[w->reader].adopted, 0);
		atomic_store(&r->readers[w->reader].heartbeat_ns, 0);
		atomic_store(&r->readers[w->reader].active, 1);
		workers[wi] = w;
		largs[wi] = (struct loop_args){.w = w, .hw = &hw};
		wi++;
	}
	explicit_bzero(&isn_key, sizeof(isn_key)); /* the workers hold their copies */
	for (wi = 0; wi < layout.workers; wi++)
		rte_eal_remote_launch(loop_worker_main, &largs[wi], workers[wi]->lcore);

	/* Ready once every worker runs a snapshot (bounded). */
	for (unsigned waited = 0;; waited += 10) {
		unsigned ok = 0;

		for (wi = 0; wi < layout.workers; wi++)
			ok += atomic_load(&r->readers[1 + wi].adopted) != 0;
		if (ok == layout.workers)
			break;
		if (loop_stop_requested())
			break; /* stopped while starting: the normal shutdown below */
		if (waited >= 10000) {
			loop_request_stop();
			rte_eal_mp_wait_lcore();
			port_shutdown(&hw);
			dp_fail("only %u of %u workers adopted a snapshot within 10 s", ok,
				layout.workers);
		}
		dp_sleep_ms(10);
	}
	if (!loop_stop_requested()) {
		atomic_store(&r->dp.ready_ns, shm_now_ns());
		atomic_store(&r->dp.state, SHM_DP_READY);
		RTE_LOG(NOTICE, USER1,
			"ready: %u worker(s), %u port(s), generation %lu, start-up %.1f ms\n",
			layout.workers, layout.nports, (unsigned long)seen_gen,
			(double)(atomic_load(&r->dp.ready_ns) - t0) / 1e6);
		for (uint16_t p = 0; p < layout.nports; p++) {
			char mac[RTE_ETHER_ADDR_FMT_SIZE];

			rte_ether_format_addr(mac, sizeof(mac), &hw.ports[p].mac);
			RTE_LOG(NOTICE, USER1,
				"port %u: %s (dpdk port %u) mac %s mtu %u ip-cksum offload rx %s "
				"tx %s\n",
				p, layout.devices[p], hw.ports[p].dpdk_port, mac, hw.ports[p].mtu,
				hw.ports[p].rx_ip_cksum_offload ? "yes" : "no",
				hw.ports[p].tx_ip_cksum_offload ? "yes" : "no");
		}
		dp_event_main(&shm, EV_DATAPLANE_READY,
			      "workers=%u" EVRING_SEP "ports=%u" EVRING_SEP "generation=%lu" EVRING_SEP
			      "startup_ms=%lu",
			      layout.workers, layout.nports, (unsigned long)seen_gen,
			      (unsigned long)((atomic_load(&r->dp.ready_ns) - t0) / 1000000u));
		for (uint16_t p = 0; p < layout.nports; p++) {
			struct rte_eth_link link;

			if (rte_eth_link_get_nowait(hw.ports[p].dpdk_port, &link) != 0)
				continue;
			dp_event_main(&shm, EV_PORT_LINK,
				      "port=%u" EVRING_SEP "device=%s" EVRING_SEP "link=%s" EVRING_SEP
				      "speed_mbps=%u" EVRING_SEP "duplex=%s",
				      p, layout.devices[p], link.link_status ? "up" : "down",
				      link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0
										   : link.link_speed,
				      link.link_duplex ? "full" : "half");
		}
	}

	/* Main lcore: housekeeping, and the resolver's lookups in between. */
	while (!loop_stop_requested()) {
		dp_check_layout(&shm, &layout, &seen_gen);
		dns_run(100);
	}

	RTE_LOG(NOTICE, USER1, "stopping\n");
	atomic_store(&r->dp.state, SHM_DP_STOPPING);
	rte_eal_mp_wait_lcore();
	port_shutdown(&hw);
	for (wi = 0; wi < layout.workers; wi++) {
		struct worker *w = workers[wi];

		shm_release(&shm, w->reader);
		atomic_store(&r->readers[w->reader].active, 0);
		/* TCP first (its connections' timers are on the wheel); nothing is sent. */
		/* Applications first: they hold TCP handles and timers. */
		diag_destroy(w);
		outbound_destroy(w);
		inbound_destroy(w);
		tcp_stack_destroy(w, w->tcp);
		w->tcp = NULL;
		if (w->spool != NULL) {
			spool_close(w->spool); /* waits for I/O in flight */
			w->spool = NULL;
		}
		worker_free(w, w->timers);
		w->timers = NULL;
		adopt_release_certs(w);
		arp_table_destroy(w, w->arp);
		nd_table_destroy(w, w->nd);
		worker_free(w, w->net_owned);
		rte_free(w);
	}
	dns_destroy(); /* after the workers: ops they had in flight are freed here */
	for (wi = 0; wi < layout.workers; wi++) {
		rte_ring_free(rings[wi]);
		rte_mempool_free(pools[wi]);
	}
	shm_release(&shm, 0);
	atomic_store(&r->readers[0].active, 0);
	atomic_store(&r->dp.state, SHM_DP_ABSENT);
	atomic_store(&r->dp.pid, 0);
	shm_detach(&shm);
	rte_eal_cleanup();
	return 0;
}
