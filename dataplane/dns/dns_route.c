/*
 * dns_route.c - MX ordering, next hops from MX hosts' addresses, the loop
 * check and the route -> SMTP action mapping (dns_route.h). Postfix's
 * smtp_addr.c is the model: the same order, limits and words.
 */
#include <stdio.h>
#include <string.h>

#include "dns_route.h"

const char *dns_sec_name(unsigned sec)
{
	static const char *const n[] = {"insecure", "secure", "bogus"};

	return sec < sizeof(n) / sizeof(n[0]) ? n[sec] : "?";
}

const char *dns_kind_name(unsigned kind)
{
	static const char *const n[] = {"data",    "nodata", "nxdomain", "servfail",
	                                "timeout", "bogus",  "error"};

	return kind < sizeof(n) / sizeof(n[0]) ? n[kind] : "?";
}

bool dns_mx_is_null(const struct dns_mx *mx, size_t n)
{
	return n == 1 && mx[0].pref == 0 && mx[0].host[0] == '\0';
}

size_t dns_mx_order(struct dns_mx *mx, size_t n, dns_rand_fn rnd, void *ctx)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (mx[i].host[0] != '\0')
			mx[k++] = mx[i];
	n = k;
	/* insertion sort: stable, n is small (DNS_MX_MAX) */
	for (size_t i = 1; i < n; i++) {
		struct dns_mx t = mx[i];
		size_t j = i;

		while (j > 0 && mx[j - 1].pref > t.pref) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = t;
	}
	for (size_t lo = 0; lo < n;) {
		size_t hi = lo + 1;

		while (hi < n && mx[hi].pref == mx[lo].pref)
			hi++;
		for (size_t i = hi - 1; i > lo; i--) {
			size_t j = lo + rnd(ctx, (uint32_t)(i - lo + 1));
			struct dns_mx t = mx[i];

			mx[i] = mx[j];
			mx[j] = t;
		}
		lo = hi;
	}
	return n;
}

static void dns_reason_add(struct dns_route *r, const char *fmt, const char *host, const char *what)
{
	size_t used = strlen(r->reason);

	if (used + 1 >= sizeof(r->reason))
		return;
	snprintf(r->reason + used, sizeof(r->reason) - used, fmt, used > 0 ? "; " : "", host, what);
}

void dns_route_build(struct dns_route *r, const struct dns_mx *mx, size_t n,
                     const struct dns_host_answer *ans, uint8_t mx_sec, uint32_t limit)
{
	bool temp = false;

	if (limit == 0 || limit > DNS_ROUTE_MAX)
		limit = DNS_ROUTE_MAX;
	r->nhops = 0;
	r->mx_sec = mx_sec;
	r->reason[0] = '\0';
	for (size_t i = 0; i < n && r->nhops < limit; i++) {
		const struct dns_host_answer *a = &ans[i];

		if (a->kind != DNS_K_DATA || a->naddr == 0) {
			bool t = a->kind == DNS_K_SERVFAIL || a->kind == DNS_K_TIMEOUT ||
			         a->kind == DNS_K_BOGUS || a->kind == DNS_K_ERROR;

			temp |= t;
			dns_reason_add(r, "%sname service error for name=%s type=A: %s", mx[i].host,
			               a->why != NULL && a->why[0] != '\0' ? a->why
			               : t ? "host not found, try again"
			                   : "host not found");
			continue;
		}
		if (a->sec ==
		    DNS_SEC_BOGUS) { /* never used: the resolver reports these as K_BOGUS */
			temp = true;
			continue;
		}
		for (uint32_t k = 0; k < a->naddr && r->nhops < limit; k++) {
			struct dns_hop *h = &r->hops[r->nhops++];

			h->addr = a->addr[k];
			h->pref = mx[i].pref;
			h->sec = a->sec == DNS_SEC_SECURE && mx_sec == DNS_SEC_SECURE
			             ? DNS_SEC_SECURE
			             : DNS_SEC_INSECURE;
			h->pad = 0;
			snprintf(h->host, sizeof(h->host), "%s", mx[i].host);
		}
	}
	r->kind = r->nhops > 0 ? DNS_R_OK : temp ? DNS_R_TEMP : DNS_R_NOHOST;
}

void dns_route_self(struct dns_route *r, const uint32_t *own, size_t nown)
{
	uint32_t cut = r->nhops;

	if (r->kind != DNS_R_OK)
		return;
	for (uint32_t i = 0; i < r->nhops && cut == r->nhops; i++)
		for (size_t k = 0; k < nown; k++)
			if (r->hops[i].addr == own[k]) {
				/* everything at this preference or worse goes (Postfix
				 * smtp_truncate_self) */
				cut = i;
				while (cut > 0 && r->hops[cut - 1].pref == r->hops[i].pref)
					cut--;
				break;
			}
	if (cut == r->nhops)
		return;
	r->nhops = cut;
	if (cut == 0)
		r->kind = DNS_R_LOOP;
}

void dns_route_action(const struct dns_route *r, const char *domain, struct dns_action *a)
{
	memset(a, 0, sizeof(*a));
	switch (r->kind) {
	case DNS_R_OK:
		return;
	case DNS_R_NULLMX:
		a->code = 550;
		snprintf(a->status, sizeof(a->status), "5.1.10");
		snprintf(a->text, sizeof(a->text),
		         "Domain %s does not accept mail (nullMX, RFC 7505)", domain);
		return;
	case DNS_R_NXDOMAIN:
		a->code = 550;
		snprintf(a->status, sizeof(a->status), "5.1.2");
		snprintf(a->text, sizeof(a->text),
		         "Host or domain name not found. Name service error for name=%s: "
		         "NXDOMAIN (%s)",
		         domain, r->reason[0] != '\0' ? r->reason : "no such domain");
		return;
	case DNS_R_NOHOST:
		a->code = 550;
		snprintf(a->status, sizeof(a->status), "5.4.4");
		snprintf(a->text, sizeof(a->text), "No address for the mail exchangers of %s: %s",
		         domain, r->reason[0] != '\0' ? r->reason : "no A record");
		return;
	case DNS_R_LOOP:
		a->code = 550;
		snprintf(a->status, sizeof(a->status), "5.4.6");
		snprintf(a->text, sizeof(a->text), "mail for %s loops back to myself", domain);
		return;
	case DNS_R_TEMP:
	default:
		a->code = 450;
		snprintf(a->status, sizeof(a->status), "4.4.3");
		snprintf(a->text, sizeof(a->text),
		         "Host or domain name not found. Name service error for name=%s: %s",
		         domain, r->reason[0] != '\0' ? r->reason : "try again");
		return;
	}
}
