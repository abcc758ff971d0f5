/*
 * inbound_report.c - posternd's answer to `posternctl policy inbound
 * CLIENT_IP [SENDER_DOMAIN]`: the verdict of policy_inbound_required on the
 * published snapshot (common/policy_lookup.h), and each of the three checks
 * behind it with the postern.conf line it comes from, in text or JSON.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "policy_lookup.h"
#include "report.h"

#define INBOUND_FILE_MAX (CONF_PATH_MAX + sizeof(CONF_FILE_NAME) + 1)

/* Where the SMTP layer answers POLICY_INBOUND_REPLY, by reason. */
static const char *ctl_inbound_reply_scope(enum policy_inbound_reason r)
{
	switch (r) {
	case POLICY_INBOUND_LISTENER:
	case POLICY_INBOUND_NETWORK:
		return "every command but EHLO, HELO, STARTTLS, NOOP and QUIT in plaintext";
	case POLICY_INBOUND_SENDER:
		return "MAIL FROM in plaintext";
	case INBOUND_TLS_NOT_REQUIRED:
		break;
	}
	return "";
}

static void ctl_inbound_cidr_text(const struct snap_cidr *c, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr a = {.s_addr = c->prefix};

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u", ip, c->len);
}

/* An IPv6 network as Postfix writes it in main.cf: "[2001:db8::]/32". */
static void ctl_inbound_cidr6_text(const struct snap_cidr6 *c, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET6, c->prefix, ip, sizeof(ip));
	snprintf(buf, len, "[%s]/%u", ip, c->len);
}

/* "FILE:LINE: KEY" or "KEY (default)". */
static void ctl_inbound_where(char *buf, size_t len, const char *file, uint32_t line,
                              const char *key)
{
	if (line != 0)
		snprintf(buf, len, "%s:%" PRIu32 ": %s", file, line, key);
	else
		snprintf(buf, len, "%s (default)", key);
}

static void ctl_inbound_json_line(struct ctl_buf *b, uint32_t line)
{
	if (line != 0)
		ctl_buf_printf(b, "%" PRIu32, line);
	else
		ctl_buf_printf(b, "null");
}

static void ctl_inbound_json(struct ctl_buf *b, const struct snap_header *h, const char *file,
                             const char *client, const char *sender,
                             const struct policy_inbound_verdict *v, const char *cidr,
                             const struct snap_name_key *snd, enum policy_match m)
{
	const struct snap_inbound_tls *t = v->settings;
	char proto[64], mproto[64];

	ctl_protocols_text(v->protocols, proto, sizeof(proto));
	ctl_protocols_text(v->mandatory_protocols, mproto, sizeof(mproto));
	ctl_buf_printf(b, "{\"client\":\"%s\",\"sender\":", client);
	if (sender != NULL)
		ctl_buf_json_str(b, sender, SIZE_MAX);
	else
		ctl_buf_printf(b, "null");
	ctl_buf_printf(b,
	               ",\"required\":%s,\"reason\":\"%s\",\"level\":\"%s\",\"protocols\":\"%s\","
	               "\"mandatory_protocols\":\"%s\",\"reply\":",
	               v->required ? "true" : "false", policy_inbound_reason_name(v->reason),
	               policy_level_name(v->level), proto, mproto);
	if (v->required)
		ctl_buf_printf(b, "\"%s\"", POLICY_INBOUND_REPLY);
	else
		ctl_buf_printf(b, "null");
	ctl_buf_printf(b, ",\"file\":");
	ctl_buf_json_str(b, file, SIZE_MAX);
	ctl_buf_printf(b, ",\"settings\":%s,\"checks\":{\"listener\":{\"required\":%s,\"line\":",
	               t != NULL ? "true" : "false",
	               v->level == SNAP_TLS_ENCRYPT ? "true" : "false");
	ctl_inbound_json_line(b, t != NULL ? t->level_line : 0);
	ctl_buf_printf(b, "},\"network\":{\"required\":%s,\"entry\":", cidr ? "true" : "false");
	if (cidr != NULL) {
		ctl_buf_printf(b, "\"%s\"", cidr);
	} else {
		ctl_buf_printf(b, "null");
	}
	ctl_buf_printf(b, ",\"line\":");
	ctl_inbound_json_line(b, t != NULL ? t->networks_line : 0);
	ctl_buf_printf(b, "},\"sender\":{\"required\":%s,\"entry\":", snd ? "true" : "false");
	if (snd != NULL)
		ctl_buf_json_str(b, snap_string(h, snd->name), SIZE_MAX);
	else
		ctl_buf_printf(b, "null");
	ctl_buf_printf(b, ",\"match\":\"%s\",\"line\":", policy_match_name(m));
	ctl_inbound_json_line(b, t != NULL ? t->senders_line : 0);
	ctl_buf_printf(b, "}}}\n");
}

void ctl_policy_inbound(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                        const struct pg_addr *client_ip, const char *sender, bool json)
{
	struct policy_inbound_verdict v;
	const struct snap_inbound_tls *t;
	const struct snap_name_key *snd;
	enum policy_match m = POLICY_MATCH_DEFAULT;
	char file[INBOUND_FILE_MAX], client[PG_ADDR_STRLEN], where[INBOUND_FILE_MAX + 64];
	char proto[64], cidr[64];
	bool net = false;

	snprintf(file, sizeof(file), "%s/%s", dir, CONF_FILE_NAME);
	pg_addr_fmt(client_ip, client, sizeof(client));
	policy_inbound_required_addr(h, client_ip, sender, &v);
	t = v.settings;
	/* every check on its own, so the answer shows what else would apply */
	if (t != NULL && t->level != SNAP_TLS_NONE && pg_addr_is_v4(client_ip)) {
		const struct snap_cidr *n4 = policy_inbound_network(h, client_ip->v4);

		if ((net = n4 != NULL))
			ctl_inbound_cidr_text(n4, cidr, sizeof(cidr));
	} else if (t != NULL && t->level != SNAP_TLS_NONE && pg_addr_is_v6(client_ip)) {
		const struct snap_cidr6 *n6 = policy_inbound_network6(h, client_ip->v6);

		if ((net = n6 != NULL))
			ctl_inbound_cidr6_text(n6, cidr, sizeof(cidr));
	}
	snd = t != NULL && t->level != SNAP_TLS_NONE ? policy_inbound_sender(h, sender, &m) : NULL;
	if (json) {
		ctl_inbound_json(b, h, file, client, sender, &v, net ? cidr : NULL, snd, m);
		return;
	}
	ctl_buf_printf(b, "client:     %s\n", client);
	ctl_buf_printf(b, "sender:     %s\n", sender != NULL ? sender : "(none: before MAIL FROM)");
	if (!v.required) {
		ctl_buf_printf(b, "required:   no%s\n",
		               v.level == SNAP_TLS_NONE ? " (STARTTLS is not offered)"
		                                        : " (STARTTLS offered, optional)");
	} else {
		ctl_buf_printf(b, "required:   yes, by the %s\n",
		               v.reason == POLICY_INBOUND_LISTENER  ? "listener level"
		               : v.reason == POLICY_INBOUND_NETWORK ? "client network"
		                                                    : "sender domain");
		ctl_buf_printf(b, "reply:      %s\n            (to %s)\n", POLICY_INBOUND_REPLY,
		               ctl_inbound_reply_scope(v.reason));
	}
	ctl_protocols_text(v.protocols, proto, sizeof(proto));
	ctl_buf_printf(b, "protocols:  %s (%s)\n", proto,
	               v.reason == POLICY_INBOUND_LISTENER || v.reason == POLICY_INBOUND_NETWORK
	                   ? "smtpd_tls_mandatory_protocols"
	                   : "smtpd_tls_protocols");
	if (t == NULL) {
		ctl_buf_printf(b, "note:       the live snapshot has no inbound TLS settings"
		                  " (ABI < 1.6): nothing is required\n");
		return;
	}
	ctl_buf_printf(b, "checks (the first that applies decides):\n");
	ctl_inbound_where(where, sizeof(where), file, t->level_line, "smtpd_tls_security_level");
	ctl_buf_printf(b, "  listener: %s -> %s\n            %s\n", policy_level_name(t->level),
	               t->level == SNAP_TLS_ENCRYPT ? "required" : "not required", where);
	ctl_inbound_where(where, sizeof(where), file, t->networks_line,
	                  "smtpd_tls_required_networks");
	if (net) {
		ctl_buf_printf(b, "  network:  %s contains %s -> required\n            %s\n", cidr,
		               client, where);
	} else {
		ctl_buf_printf(b,
		               "  network:  %s is in no listed network -> not required\n"
		               "            %s\n",
		               client, where);
	}
	ctl_inbound_where(where, sizeof(where), file, t->senders_line,
	                  "smtpd_tls_required_senders");
	if (snd != NULL)
		ctl_buf_printf(b, "  sender:   %s (%s) -> required\n            %s\n",
		               snap_string(h, snd->name), policy_match_name(m), where);
	else if (sender == NULL)
		ctl_buf_printf(b, "  sender:   not known before MAIL FROM\n            %s\n",
		               where);
	else
		ctl_buf_printf(b, "  sender:   %s is not listed -> not required\n            %s\n",
		               sender, where);
}
