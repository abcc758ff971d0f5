/*
 * kserver.c - the Linux-kernel reference server for tools/bench: echo on
 * PORT and discard on PORT+1 (the protocols of Postern's diag services),
 * one epoll loop, non-blocking sockets, so the comparison measures the
 * TCP stacks rather than a slow server. Exits after SECONDS.
 *
 *   pg-kserver ADDRESS PORT SECONDS      (ADDRESS IPv4 or IPv6)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KS_EVENTS 256
#define KS_BUF (256 * 1024)

/* ADDRESS is IPv4 or IPv6. */
static int ks_listen(const char *addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	bool v6 = inet_pton(AF_INET6, addr, &sa6.sin6_addr) == 1;
	int one = 1, fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0 || (!v6 && inet_pton(AF_INET, addr, &sa.sin_addr) != 1))
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((v6 ? bind(fd, (struct sockaddr *)&sa6, sizeof(sa6))
	        : bind(fd, (struct sockaddr *)&sa, sizeof(sa))) != 0 ||
	    listen(fd, 4096) != 0)
		return -1;
	return fd;
}

int main(int argc, char **argv)
{
	static char buf[KS_BUF];
	struct epoll_event ev, evs[KS_EVENTS];
	int lfd[2], ep;
	time_t end;

	if (argc != 4) {
		fprintf(stderr, "usage: pg-kserver ADDRESS PORT SECONDS\n");
		return 2;
	}
	end = time(NULL) + atoi(argv[3]);
	ep = epoll_create1(0);
	for (int i = 0; i < 2; i++) {
		lfd[i] = ks_listen(argv[1], atoi(argv[2]) + i);
		if (lfd[i] < 0) {
			perror("pg-kserver: listen");
			return 1;
		}
		ev.events = EPOLLIN;
		ev.data.u64 = (uint64_t)lfd[i] << 1 | 1; /* listener bit */
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd[i], &ev);
	}
	while (time(NULL) < end) {
		int n = epoll_wait(ep, evs, KS_EVENTS, 500);

		for (int i = 0; i < n; i++) {
			int fd = (int)(evs[i].data.u64 >> 2);
			int kind = (int)(evs[i].data.u64 >> 1 & 1); /* 0 echo, 1 discard */

			if (evs[i].data.u64 & 1) {
				int lf = (int)(evs[i].data.u64 >> 1), c;

				while ((c = accept4(lf, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					ev.events = EPOLLIN;
					ev.data.u64 = (uint64_t)c << 2 | (uint64_t)(lf == lfd[1]) << 1;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			for (;;) {
				ssize_t r = read(fd, buf, sizeof(buf));

				if (r > 0) {
					/* Echo blocks on a full send buffer: simple, and the
					 * bench's echo is 32 bytes a connection. */
					for (ssize_t off = 0; kind == 0 && off < r;) {
						ssize_t w = write(fd, buf + off, (size_t)(r - off));

						if (w > 0)
							off += w;
						else if (w < 0 && errno != EAGAIN)
							break;
					}
					continue;
				}
				if (r == 0 || errno != EAGAIN)
					close(fd);
				break;
			}
		}
	}
	return 0;
}
