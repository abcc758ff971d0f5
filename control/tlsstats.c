/*
 * tlsstats.c - deliveries per recipient domain and TLS outcome (see
 * tlsstats.h): a sorted array allocated once, looked up by binary search.
 * The record texts come from another process: domains are normalised and
 * bounded here, so the renderers can trust what the table holds.
 */
#include <stdlib.h>
#include <string.h>

#include "evring.h"
#include "result.h"
#include "tlsstats.h"

static const char *const tlsstats_names[] = {
#define TLSSTATS_OUTCOME_NAME(name, text) [TLSSTATS_##name] = text,
    TLSSTATS_OUTCOMES(TLSSTATS_OUTCOME_NAME)
#undef TLSSTATS_OUTCOME_NAME
};

const char *tlsstats_outcome_name(unsigned outcome)
{
	return outcome < TLSSTATS__COUNT ? tlsstats_names[outcome] : "unknown";
}

int tlsstats_outcome_parse(const char *name, size_t len)
{
	for (unsigned i = 0; i < TLSSTATS__COUNT; i++)
		if (strlen(tlsstats_names[i]) == len && memcmp(tlsstats_names[i], name, len) == 0)
			return (int)i;
	/* a dataplane from before "not_sent" wrote "none" for the same thing */
	if (len == 4 && memcmp(name, "none", 4) == 0)
		return TLSSTATS_NOT_SENT;
	return -1;
}

int tlsstats_init(struct tlsstats *s, uint32_t max_domains)
{
	memset(s, 0, sizeof(*s));
	s->max_domains = max_domains;
	/* every domain allowed, and "other" */
	s->rows = calloc((size_t)max_domains + 1, sizeof(*s->rows));
	return s->rows != NULL ? PG_OK : PG_ERROR;
}

void tlsstats_free(struct tlsstats *s)
{
	free(s->rows);
	memset(s, 0, sizeof(*s));
}

/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629 §4: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if there is none.
 */
static size_t tlsstats_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n > avail || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* domain[0..len) as the table keeps it; returns its length. */
static size_t tlsstats_normalise(const char *domain, size_t len, char *out)
{
	const unsigned char *in = (const unsigned char *)domain;
	size_t i = 0, o = 0;

	while (i < len && in[i] != '\0') {
		size_t n = in[i] >= 0x80 ? tlsstats_utf8_len(in + i, len - i) : 1;

		if (o + (n > 1 ? n : 1) > TLSSTATS_DOMAIN_MAX)
			break;
		if (n > 1) {
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
			continue;
		}
		if (in[i] > 0x20 && in[i] < 0x7f)
			out[o++] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
		else
			out[o++] = '?';
		i++;
	}
	out[o] = '\0';
	return o;
}

/* The row of domain, or where it goes (*found false). */
static uint32_t tlsstats_find(const struct tlsstats *s, const char *domain, bool *found)
{
	uint32_t lo = 0, hi = s->nrows;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->rows[mid].domain, domain);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* The row of domain, made if there is room; "other"'s row once the table is full. */
static struct tlsstats_row *tlsstats_row_for(struct tlsstats *s, const char *domain)
{
	bool found, other_row;
	uint32_t at = tlsstats_find(s, domain, &found);

	if (found)
		return &s->rows[at];
	/* "other" counts among the rows only once made */
	tlsstats_find(s, TLSSTATS_OTHER, &other_row);
	if (s->nrows - (other_row ? 1u : 0u) >= s->max_domains) {
		domain = TLSSTATS_OTHER;
		at = tlsstats_find(s, domain, &found);
		if (found)
			return &s->rows[at];
	}
	/* at most max_domains rows plus "other": the array has room */
	memmove(&s->rows[at + 1], &s->rows[at], (s->nrows - at) * sizeof(s->rows[0]));
	memset(&s->rows[at], 0, sizeof(s->rows[at]));
	strcpy(s->rows[at].domain, domain);
	s->nrows++;
	return &s->rows[at];
}

int tlsstats_add(struct tlsstats *s, const char *domain, size_t domlen, const char *outcome,
                 size_t outlen)
{
	char norm[TLSSTATS_DOMAIN_MAX + 1];
	int o = tlsstats_outcome_parse(outcome, outlen);

	if (o < 0 || tlsstats_normalise(domain, domlen, norm) == 0) {
		s->skipped++;
		return PG_DECLINED;
	}
	tlsstats_row_for(s, norm)->count[o]++;
	return PG_OK;
}

int tlsstats_add_event(struct tlsstats *s, const char *text)
{
	const char *to = NULL, *outcome = NULL, *at;
	size_t to_len = 0, outcome_len = 0;

	/* fields "key=value" separated by EVRING_SEP; the first of a key counts */
	while (*text != '\0') {
		size_t n = strcspn(text, EVRING_SEP);

		if (to == NULL && n >= 3 && memcmp(text, "to=", 3) == 0) {
			to = text + 3;
			to_len = n - 3;
		} else if (outcome == NULL && n >= 12 && memcmp(text, "tls_outcome=", 12) == 0) {
			outcome = text + 12;
			outcome_len = n - 12;
		}
		text += n + (text[n] != '\0');
	}
	if (to == NULL || outcome == NULL) {
		s->skipped++;
		return PG_DECLINED;
	}
	/* the domain follows the last '@' (a quoted local part may hold one) */
	at = NULL;
	for (size_t i = 0; i < to_len; i++)
		if (to[i] == '@')
			at = to + i;
	if (at == NULL) {
		s->skipped++;
		return PG_DECLINED;
	}
	return tlsstats_add(s, at + 1, to_len - (size_t)(at + 1 - to), outcome, outcome_len);
}
