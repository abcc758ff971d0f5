/*
 * gen_main.c - postern-gen: options, EAL and port bring-up, the poll loop,
 * the results.
 *
 *   postern-gen [EAL options] -- client|sink [options]
 *
 * The device is whatever the EAL options create (--vdev net_memif0,...
 * or net_af_packet0,iface=...); postern-gen drives the first port with
 * one worker on the main lcore. See usage() for the options.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "gen.h"
#include "port.h"
#include "result.h"
#include "timer.h"
#include "worker.h"
#include "net/tcp.h"
#include "net/tcp_isn.h"

#define GEN_POOL_MBUFS 16383
#define GEN_TIMER_NS (10 * 1000 * 1000ull)

static volatile sig_atomic_t gen_stop_signal;

static void gen_on_signal(int sig)
{
	(void)sig;
	gen_stop_signal = 1;
}

static void usage(FILE *f)
{
	fputs("usage: postern-gen [EAL options] -- client|sink [options]\n"
	      "common:\n"
	      "  --addr A.B.C.D/LEN     our address on the port (required)\n"
	      "  --gateway A.B.C.D      default route\n"
	      "  --duration S           client: stop starting messages after S s; sink: exit\n"
	      "  --json FILE|-          results as JSON (- = stdout)\n"
	      "  --progress / --no-progress   live line on stderr [when it is a terminal]\n"
	      "  --seed N               random draws (sizes, sink failures) [1]\n"
	      "  --idle-sleep US        sleep when idle, microseconds [20]\n"
	      "  --idle-polls N         empty passes before sleeping [100]\n"
	      "client:\n"
	      "  --server A.B.C.D[:PORT]      [port 25]\n"
	      "  --messages N           messages to start (0 = until --duration)\n"
	      "  --sessions N           concurrent connections [1]\n"
	      "  --per-conn N           messages per connection [1]; 0 = sessions without mail\n"
	      "                         (EHLO, STARTTLS, EHLO, QUIT), --messages counts sessions\n"
	      "  --rcpts N              recipients per message [1]\n"
	      "  --size SPEC            message octets: 4096, 4k, or 1k:70,10k:25,100k:5 "
	      "(size:weight) [4k]\n"
	      "  --rate R               open loop at R messages/s [0 = closed loop]\n"
	      "  --no-pipelining        one command at a time even if PIPELINING is offered\n"
	      "  --starttls             STARTTLS (a server without it is an error)\n"
	      "  --resume               offer the last TLS session on new connections\n"
	      "  --tls-max 1.2|1.3      highest TLS version [1.3]\n"
	      "  --sigalgs LIST         TLS signature algorithms (OpenSSL list), e.g. "
	      "RSA-PSS+SHA256 for an RSA certificate\n"
	      "  --sni NAME             server name indication\n"
	      "  --from ADDR            sender [gen@postern-gen.test]\n"
	      "  --to-domain D          recipients rN@D [sink.test]\n"
	      "  --helo NAME            [postern-gen.test]\n"
	      "  --drain S              after the last start, wait S s for the rest [30]\n"
	      "sink:\n"
	      "  --listen PORT          [25]\n"
	      "  --tempfail PCT         answer PCT %% of messages 451 4.3.2 [0]\n"
	      "  --permfail PCT         answer PCT %% of messages 554 5.7.1 [0]\n"
	      "  --fail-at rcpt|data    refuse recipients instead of messages [data]\n"
	      "  --delay MS             hold every end-of-data reply MS ms [0]\n"
	      "  --greet-delay MS       hold the greeting MS ms [0]\n"
	      "  --cert FILE            PEM key and chain: offer STARTTLS with it\n"
	      "  --hostname NAME        [sink.postern-gen.test]\n",
	      f);
}

static int parse_addr(const char *s, uint32_t *addr, uint8_t *prefix, uint16_t *port)
{
	char buf[64], *sep;
	struct in_addr a;

	snprintf(buf, sizeof(buf), "%s", s);
	if (prefix != NULL) {
		sep = strchr(buf, '/');
		if (sep == NULL)
			return -1;
		*sep++ = '\0';
		char *end;
		long v = strtol(sep, &end, 10);
		if (*end != '\0' || v < 1 || v > 32)
			return -1;
		*prefix = (uint8_t)v;
	}
	if (port != NULL && (sep = strchr(buf, ':')) != NULL) {
		char *end;
		long v;

		*sep++ = '\0';
		v = strtol(sep, &end, 10);
		if (*end != '\0' || v < 1 || v > 65535)
			return -1;
		*port = (uint16_t)v;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*addr = a.s_addr;
	return 0;
}

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	double d = strtod(s, &end);

	if (end == s || d < 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		d *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		d *= 1024 * 1024, end++;
	if (*end != '\0' && *end != ':')
		return -1;
	if (d > 1024.0 * 1024 * 1024)
		return -1;
	*v = (uint64_t)d;
	return (int)(end - s);
}

static int parse_sizes(const char *spec, struct gen_opts *o)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	o->nsizes = 0;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		int n;

		if (o->nsizes == GEN_SIZES_MAX)
			return -1;
		n = parse_size(t, &o->size[o->nsizes]);
		if (n < 0)
			return -1;
		o->size_w[o->nsizes] = 1;
		if (t[n] == ':') {
			char *end;

			o->size_w[o->nsizes] = strtod(t + n + 1, &end);
			if (*end != '\0' || !(o->size_w[o->nsizes] > 0))
				return -1;
		}
		o->nsizes++;
	}
	return o->nsizes > 0 ? 0 : -1;
}

static double num(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
		fprintf(stderr, "postern-gen: --%s %s: expected a number from %g to %g\n", opt, s, lo,
		        hi);
		exit(2);
	}
	return v;
}

static void parse_opts(int argc, char **argv, struct gen_opts *o)
{
	enum {
		O_ADDR = 256, O_GATEWAY, O_DURATION, O_JSON, O_PROGRESS, O_NOPROGRESS, O_SEED,
		O_IDLE, O_SERVER, O_MESSAGES, O_SESSIONS, O_PERCONN, O_RCPTS, O_SIZE, O_RATE,
		O_NOPIPE, O_STARTTLS, O_RESUME, O_TLSMAX, O_SIGALGS, O_SNI, O_FROM, O_TODOMAIN,
		O_HELO, O_DRAIN, O_LISTEN, O_TEMPFAIL, O_PERMFAIL, O_FAILAT, O_DELAY, O_GDELAY,
		O_CERT, O_HOSTNAME, O_HELP, O_IDLEPOLLS,
	};
	static const struct option lo[] = {
	    {"addr", 1, 0, O_ADDR},         {"gateway", 1, 0, O_GATEWAY},
	    {"duration", 1, 0, O_DURATION}, {"json", 1, 0, O_JSON},
	    {"progress", 0, 0, O_PROGRESS}, {"no-progress", 0, 0, O_NOPROGRESS},
	    {"seed", 1, 0, O_SEED},         {"idle-sleep", 1, 0, O_IDLE},
	    {"server", 1, 0, O_SERVER},     {"messages", 1, 0, O_MESSAGES},
	    {"sessions", 1, 0, O_SESSIONS}, {"per-conn", 1, 0, O_PERCONN},
	    {"rcpts", 1, 0, O_RCPTS},       {"size", 1, 0, O_SIZE},
	    {"rate", 1, 0, O_RATE},         {"no-pipelining", 0, 0, O_NOPIPE},
	    {"starttls", 0, 0, O_STARTTLS}, {"resume", 0, 0, O_RESUME},
	    {"tls-max", 1, 0, O_TLSMAX},    {"sigalgs", 1, 0, O_SIGALGS},
	    {"sni", 1, 0, O_SNI},           {"from", 1, 0, O_FROM},
	    {"to-domain", 1, 0, O_TODOMAIN}, {"helo", 1, 0, O_HELO},
	    {"drain", 1, 0, O_DRAIN},       {"listen", 1, 0, O_LISTEN},
	    {"tempfail", 1, 0, O_TEMPFAIL}, {"permfail", 1, 0, O_PERMFAIL},
	    {"fail-at", 1, 0, O_FAILAT},    {"delay", 1, 0, O_DELAY},
	    {"greet-delay", 1, 0, O_GDELAY}, {"cert", 1, 0, O_CERT},
	    {"hostname", 1, 0, O_HOSTNAME}, {"help", 0, 0, O_HELP},
	    {"idle-polls", 1, 0, O_IDLEPOLLS},
	    {0, 0, 0, 0},
	};
	int c;
	bool have_addr = false, have_server = false;

	if (argc < 2) {
		usage(stderr);
		exit(2);
	}
	if (strcmp(argv[1], "client") == 0) {
		o->mode = GEN_CLIENT;
	} else if (strcmp(argv[1], "sink") == 0) {
		o->mode = GEN_SINK;
	} else {
		if (strcmp(argv[1], "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		fprintf(stderr, "postern-gen: the mode is client or sink, not \"%s\"\n", argv[1]);
		exit(2);
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_ADDR:
			if (parse_addr(optarg, &o->addr, &o->prefix, NULL) != 0) {
				fprintf(stderr, "postern-gen: --addr %s: expected A.B.C.D/LEN\n", optarg);
				exit(2);
			}
			have_addr = true;
			break;
		case O_GATEWAY:
			if (parse_addr(optarg, &o->gateway, NULL, NULL) != 0) {
				fprintf(stderr, "postern-gen: --gateway %s: expected A.B.C.D\n", optarg);
				exit(2);
			}
			break;
		case O_DURATION: o->duration_s = num("duration", optarg, 0.001, 86400); break;
		case O_JSON: o->json = optarg; break;
		case O_PROGRESS: o->progress = 1; break;
		case O_NOPROGRESS: o->progress = 0; break;
		case O_SEED: o->seed = (uint64_t)num("seed", optarg, 0, 1e18); break;
		case O_IDLE: o->idle_sleep_us = num("idle-sleep", optarg, 0, 100000); break;
		case O_IDLEPOLLS: o->idle_polls = (uint32_t)num("idle-polls", optarg, 0, 1e9); break;
		case O_SERVER:
			if (parse_addr(optarg, &o->server, NULL, &o->server_port) != 0) {
				fprintf(stderr, "postern-gen: --server %s: expected A.B.C.D[:PORT]\n",
				        optarg);
				exit(2);
			}
			have_server = true;
			break;
		case O_MESSAGES: o->messages = (uint64_t)num("messages", optarg, 0, 1e12); break;
		case O_SESSIONS: o->sessions = (uint32_t)num("sessions", optarg, 1, 60000); break;
		case O_PERCONN: o->per_conn = (uint32_t)num("per-conn", optarg, 0, 1e9); break;
		case O_RCPTS: o->rcpts = (uint32_t)num("rcpts", optarg, 1, GEN_RCPTS_MAX); break;
		case O_SIZE:
			if (parse_sizes(optarg, o) != 0) {
				fprintf(stderr,
				        "postern-gen: --size %s: expected SIZE[k|m][:WEIGHT],... (at most "
				        "%d, each up to 1g)\n",
				        optarg, GEN_SIZES_MAX);
				exit(2);
			}
			break;
		case O_RATE: o->rate = num("rate", optarg, 0, 1e7); break;
		case O_NOPIPE: o->pipelining = false; break;
		case O_STARTTLS: o->starttls = true; break;
		case O_RESUME: o->resume = true; break;
		case O_TLSMAX:
			if (strcmp(optarg, "1.2") == 0)
				o->tls_max = TLS1_2_VERSION;
			else if (strcmp(optarg, "1.3") == 0)
				o->tls_max = TLS1_3_VERSION;
			else {
				fprintf(stderr, "postern-gen: --tls-max %s: expected 1.2 or 1.3\n", optarg);
				exit(2);
			}
			break;
		case O_SIGALGS: o->sigalgs = optarg; break;
		case O_SNI: o->sni = optarg; break;
		case O_FROM: o->from = optarg; break;
		case O_TODOMAIN: o->to_domain = optarg; break;
		case O_HELO: o->helo = optarg; break;
		case O_DRAIN: o->drain_s = num("drain", optarg, 0.1, 3600); break;
		case O_LISTEN: o->listen_port = (uint16_t)num("listen", optarg, 1, 65535); break;
		case O_TEMPFAIL: o->tempfail_pct = num("tempfail", optarg, 0, 100); break;
		case O_PERMFAIL: o->permfail_pct = num("permfail", optarg, 0, 100); break;
		case O_FAILAT:
			if (strcmp(optarg, "rcpt") == 0)
				o->fail_at_rcpt = true;
			else if (strcmp(optarg, "data") == 0)
				o->fail_at_rcpt = false;
			else {
				fprintf(stderr, "postern-gen: --fail-at %s: expected rcpt or data\n",
				        optarg);
				exit(2);
			}
			break;
		case O_DELAY: o->delay_ms = (uint32_t)num("delay", optarg, 0, 600000); break;
		case O_GDELAY: o->greet_delay_ms = (uint32_t)num("greet-delay", optarg, 0, 600000); break;
		case O_CERT: o->cert = optarg; break;
		case O_HOSTNAME: o->hostname = optarg; break;
		case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "postern-gen: unexpected argument \"%s\"\n", argv[optind]);
		exit(2);
	}
	if (!have_addr) {
		fprintf(stderr, "postern-gen: --addr A.B.C.D/LEN is required\n");
		exit(2);
	}
	if (o->mode == GEN_CLIENT) {
		if (!have_server) {
			fprintf(stderr, "postern-gen: client mode needs --server A.B.C.D[:PORT]\n");
			exit(2);
		}
		if (o->messages == 0 && o->duration_s == 0) {
			fprintf(stderr, "postern-gen: give --messages N or --duration S (or both): "
			                "every run ends by itself\n");
			exit(2);
		}
		if (o->per_conn == 0 && o->rate > 0) {
			fprintf(stderr, "postern-gen: --per-conn 0 (sessions without mail) is closed "
			                "loop only\n");
			exit(2);
		}
		if (o->resume && !o->starttls) {
			fprintf(stderr, "postern-gen: --resume needs --starttls\n");
			exit(2);
		}
	} else if (o->tempfail_pct + o->permfail_pct > 100) {
		fprintf(stderr, "postern-gen: --tempfail + --permfail exceed 100 %%\n");
		exit(2);
	}
}

/* ---- TLS contexts ---- */

static int gen_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct gen *g = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	if (g->resume_sess != NULL)
		SSL_SESSION_free(g->resume_sess);
	g->resume_sess = sess; /* ours now (returning 1) */
	if (g->ntickets == GEN_TICKETS) {
		SSL_SESSION_free(g->tickets[0]);
		memmove(g->tickets, g->tickets + 1, (GEN_TICKETS - 1) * sizeof(g->tickets[0]));
		g->ntickets--;
	}
	SSL_SESSION_up_ref(sess);
	g->tickets[g->ntickets++] = sess;
	return 1;
}

static const char *gen_ssl_err(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

static int gen_tls_setup(struct gen *g)
{
	const struct gen_opts *o = &g->o;
	SSL_CTX *ctx;

	if (o->mode == GEN_CLIENT) {
		if (!o->starttls)
			return 0;
		ctx = SSL_CTX_new(TLS_client_method());
		if (ctx == NULL)
			goto fail;
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_set_max_proto_version(ctx, o->tls_max);
		/* a generator measures, it does not judge: no verification cost */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		if (o->sigalgs != NULL && SSL_CTX_set1_sigalgs_list(ctx, o->sigalgs) != 1) {
			fprintf(stderr, "postern-gen: --sigalgs %s: %s\n", o->sigalgs, gen_ssl_err());
			SSL_CTX_free(ctx);
			return -1;
		}
		SSL_CTX_set_app_data(ctx, g);
		if (o->resume) {
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
			                                        SSL_SESS_CACHE_NO_INTERNAL_STORE);
			SSL_CTX_sess_set_new_cb(ctx, gen_new_session);
		} else {
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
			SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		}
		g->ssl_ctx = ctx;
		return 0;
	}
	if (o->cert == NULL)
		return 0;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr, "postern-gen: --cert %s: %s\n", o->cert, gen_ssl_err());
		SSL_CTX_free(ctx);
		return -1;
	}
	g->ssl_ctx = ctx;
	return 0;
fail:
	fprintf(stderr, "postern-gen: TLS context: %s\n", gen_ssl_err());
	return -1;
}

/* ---- the port and the worker ---- */

static uint32_t mask_of(uint8_t len)
{
	return len == 0 ? 0 : htonl(~0u << (32 - len));
}

static struct worker *gen_worker(struct gen *g, struct adopt_hw *hw)
{
	const struct gen_opts *o = &g->o;
	struct rte_mempool *pool;
	struct worker *w;
	struct net_config *nc;
	struct tcp_config tcfg;
	struct tcp_isn_key key;
	char dev[1][256];
	uint16_t mtu[1] = {o->mtu};
	char err[512];

	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "postern-gen: no DPDK port: give one with the EAL option --vdev "
		                "(net_memif0,... or net_af_packet0,iface=...)\n");
		return NULL;
	}
	if (rte_eth_dev_get_name_by_port(0, dev[0]) != 0) {
		fprintf(stderr, "postern-gen: cannot name port 0\n");
		return NULL;
	}
	pool = rte_pktmbuf_pool_create("gen_pool", GEN_POOL_MBUFS, PORT_POOL_CACHE, 0,
	                               RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (pool == NULL) {
		fprintf(stderr, "postern-gen: mbuf pool: %s (raise -m)\n", rte_strerror(rte_errno));
		return NULL;
	}
	if (port_setup(1, 1, (const char(*)[256])dev, mtu, &pool, hw, err, sizeof(err)) != PG_OK) {
		fprintf(stderr, "postern-gen: %s\n", err);
		return NULL;
	}
	w = rte_zmalloc("gen_worker", sizeof(*w), RTE_CACHE_LINE_SIZE);
	nc = rte_zmalloc("gen_net", sizeof(*nc), RTE_CACHE_LINE_SIZE);
	if (w == NULL || nc == NULL)
		return NULL;
	worker_init_detached(w, 0, 1, pool);
	w->lcore = rte_lcore_id();
	nc->nports = 1;
	nc->ports[0] = hw->ports[0];
	nc->ports[0].addr = o->addr;
	nc->ports[0].prefix_len = o->prefix;
	nc->ports[0].netmask = mask_of(o->prefix);
	if (nc->ports[0].mtu == 0)
		nc->ports[0].mtu = o->mtu;
	nc->routes[0].prefix = o->addr & mask_of(o->prefix);
	nc->routes[0].prefix_len = o->prefix;
	nc->routes[0].netmask = mask_of(o->prefix);
	nc->nroutes = 1;
	if (o->gateway != 0) {
		nc->routes[1].gateway = o->gateway;
		nc->nroutes = 2;
	}
	nc->arp_retry_ns = 200 * 1000 * 1000ull;
	nc->arp_cache_ns = 3600ull * 1000 * 1000 * 1000;
	nc->arp_max_retries = 10;
	nc->arp_pending_max = 4096;
	nc->gratuitous_arp = true;
	w->net = nc;
	w->arp = arp_table_create(w, 4096);
	w->timers = worker_alloc(w, sizeof(*w->timers));
	if (w->arp == NULL || w->timers == NULL)
		return NULL;
	w->now_ns = 0;
	if (tcp_isn_key_init(&key) != PG_OK)
		return NULL;
	tcp_config_default(&tcfg);
	tcfg.max_conns = 131072;
	tcfg.syn_backlog = 4096;
	tcfg.sndbuf = 128 * 1024;
	tcfg.rcvbuf = 128 * 1024;
	tcfg.max_mbufs = GEN_POOL_MBUFS - 2 * PORT_RX_DESC;
	w->tcp = tcp_stack_create(w, &tcfg, &key);
	explicit_bzero(&key, sizeof(key));
	if (w->tcp == NULL)
		return NULL;
	return w;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One pass of the loop; returns the work done (0 = idle). The mode runs once start_ns is set. */
static unsigned gen_poll(struct gen *g)
{
	struct worker *w = g->w;
	struct rte_mbuf *pkts[WORKER_RX_BURST];
	uint16_t n;
	unsigned work;

	w->now_ns = now_ns();
	n = rte_eth_rx_burst(w->net->ports[0].dpdk_port, 0, pkts, WORKER_RX_BURST);
	WCOUNT_ADD(w, rx_packets, n);
	for (uint16_t i = 0; i < n; i++) {
		WCOUNT_ADD(w, rx_bytes, rte_pktmbuf_pkt_len(pkts[i]));
		pkts[i]->port = 0;
		net_input(w, pkts[i], 0, false);
	}
	work = n;
	g->n.tcp_bytes_in = w->ctr[CTR_rx_bytes];
	g->n.tcp_bytes_out = w->ctr[CTR_tx_bytes];
	g->n.tcp_retransmits = w->ctr[CTR_tcp_retransmits];
	g->n.tcp_rtos = w->ctr[CTR_tcp_rto];
	if (g->start_ns != 0) /* not during the warm-up: the network alone */
		work += g->o.mode == GEN_CLIENT ? gen_client_poll(g) : gen_sink_poll(g);
	timer_advance(w->timers, w->now_ns);
	if (w->now_ns >= w->next_timer_ns) {
		net_timers(w);
		w->next_timer_ns = w->now_ns + GEN_TIMER_NS;
	}
	worker_tx_flush(w);
	return work;
}

int main(int argc, char **argv)
{
	static struct gen gen; /* large (histograms): not on the stack */
	struct gen *g = &gen;
	struct adopt_hw hw;
	uint64_t last_progress = 0, t_end;
	int eal, sep, rc = 0;
	double el;
	FILE *jf = NULL;

	for (sep = 1; sep < argc && strcmp(argv[sep], "--") != 0; sep++)
		;
	if (sep == argc) {
		usage(stderr);
		return 2;
	}
	g->o = (struct gen_opts){
	    .progress = -1, .seed = 1, .idle_sleep_us = 20, .idle_polls = 100, .drain_s = 30, .server_port = 25,
	    .sessions = 1, .per_conn = 1, .rcpts = 1, .pipelining = true, .nsizes = 1,
	    .size = {4096}, .size_w = {1}, .from = "gen@postern-gen.test",
	    .to_domain = "sink.test", .helo = "postern-gen.test", .listen_port = 25,
	    .hostname = "sink.postern-gen.test", .mtu = 1500, .tls_max = TLS1_3_VERSION,
	};
	parse_opts(argc - sep, argv + sep, &g->o);
	g->rng = g->o.seed * 0x9e3779b97f4a7c15ull + 1;
	if (gen_tls_setup(g) != 0)
		return 2;

	eal = rte_eal_init(sep, argv);
	if (eal < 0) {
		fprintf(stderr, "postern-gen: EAL initialisation failed: %s\n",
		        rte_strerror(rte_errno));
		return 1;
	}
	g->w = gen_worker(g, &hw);
	if (g->w == NULL) {
		fprintf(stderr, "postern-gen: start-up failed\n");
		rte_eal_cleanup();
		return 1;
	}
	g->w->idle_sleep_ns = (uint64_t)(g->o.idle_sleep_us * 1000);
	g->w->idle_polls_max = g->o.idle_polls;
	signal(SIGINT, gen_on_signal);
	signal(SIGTERM, gen_on_signal);
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	/* memif and af_packet come up asynchronously: wait (bounded) for the link */
	for (int i = 0; i < 1000; i++) {
		struct rte_eth_link link;

		if (rte_eth_link_get_nowait(hw.ports[0].dpdk_port, &link) == 0 &&
		    link.link_status == RTE_ETH_LINK_UP)
			break;
		usleep(10000);
	}
	g->w->now_ns = now_ns();
	timer_wheel_init(g->w->timers, TIMER_TICK_NS_DEFAULT, g->w->now_ns, g->w);
	net_announce(g->w);
	worker_tx_flush(g->w);
	if (g->o.mode == GEN_CLIENT && gen_client_warmup(g, gen_poll) != PG_OK)
		fprintf(stderr, "postern-gen: warm-up connection to the server failed; going on\n");
	g->w->now_ns = now_ns();
	g->start_ns = g->w->now_ns;
	g->stop_ns = g->start_ns + (uint64_t)(g->o.duration_s * 1e9);
	if (g->o.mode == GEN_SINK) {
		if (gen_sink_start(g) != PG_OK) {
			fprintf(stderr, "postern-gen: cannot listen on port %u\n", g->o.listen_port);
			rc = 1;
			goto out;
		}
		fprintf(stderr, "postern-gen: sink listening on %s:%u%s\n",
		        inet_ntoa((struct in_addr){g->o.addr}), g->o.listen_port,
		        g->ssl_ctx ? " (STARTTLS)" : "");
	} else if (gen_client_start(g) != PG_OK) {
		fprintf(stderr, "postern-gen: out of memory\n");
		rc = 1;
		goto out;
	}
	if (g->o.progress < 0)
		g->o.progress = isatty(STDERR_FILENO);

	while (!g->done) {
		unsigned work = gen_poll(g);

		if (gen_stop_signal) {
			if (g->o.mode == GEN_SINK)
				break;
			g->stopping = true; /* a client drains what it started */
			gen_stop_signal = 0;
		}
		if (g->o.progress && g->w->now_ns - last_progress >= 1000000000ull) {
			last_progress = g->w->now_ns;
			gen_progress(g, stderr, (g->w->now_ns - g->start_ns) / 1e9);
		}
		if (work != 0) {
			g->w->idle_polls = 0;
			continue;
		}
		if (++g->w->idle_polls > g->w->idle_polls_max && g->w->idle_sleep_ns != 0) {
			struct timespec ts = {0, (long)g->w->idle_sleep_ns};

			nanosleep(&ts, NULL);
		}
	}
	t_end = now_ns();
	/* the last ACKs and FINs go out before the report */
	for (uint64_t until = t_end + 200 * 1000 * 1000ull; now_ns() < until;) {
		if (gen_poll(g) == 0) {
			struct timespec ts = {0, 200000};

			nanosleep(&ts, NULL);
		}
	}
	el = (t_end - g->start_ns) / 1e9;
	if (g->o.progress)
		fputc('\n', stderr);
	gen_report_text(g, g->o.json != NULL && strcmp(g->o.json, "-") == 0 ? stderr : stdout, el);
	if (g->o.json != NULL) {
		jf = strcmp(g->o.json, "-") == 0 ? stdout : fopen(g->o.json, "w");
		if (jf == NULL || gen_report_json(g, jf, el) != 0) {
			fprintf(stderr, "postern-gen: cannot write %s: %s\n", g->o.json, strerror(errno));
			rc = 1;
		}
		if (jf != NULL && jf != stdout)
			fclose(jf);
	}
	if (g->o.mode == GEN_CLIENT && g->n.msgs_started == 0 && g->n.conns_established == 0)
		rc = 1;
out:
	port_shutdown(&hw);
	rte_eal_cleanup();
	return rc;
}
