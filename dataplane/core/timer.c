/*
 * timer.c - the hierarchical timing wheel of timer.h. Level L slot s holds
 * timers whose expiry differs from the current tick only in bits at or
 * above 8*L; when the level-0 index wraps to 0, the next level's current
 * slot is re-inserted (cascaded) relative to the new tick, which moves its
 * timers one level down or straight to level 0.
 */
#include <assert.h>
#include <string.h>

#include "timer.h"

#define TIMER_MASK (TIMER_SLOTS - 1)

static void timer_list_init(struct timer *head)
{
	head->next = head->prev = head;
}

static void timer_list_append(struct timer *head, struct timer *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

static void timer_unlink(struct timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

void timer_wheel_init(struct timer_wheel *tw, uint64_t tick_ns, uint64_t now_ns, void *owner)
{
	assert(tick_ns > 0);
	memset(tw, 0, sizeof(*tw));
	tw->tick_ns = tick_ns;
	tw->tick = now_ns / tick_ns;
	tw->owner = owner;
	for (unsigned l = 0; l < TIMER_LEVELS; l++)
		for (unsigned s = 0; s < TIMER_SLOTS; s++)
			timer_list_init(&tw->slot[l][s]);
}

/* Put t (expires already set) on the slot its distance from tw->tick selects. */
static void timer_place(struct timer_wheel *tw, struct timer *t)
{
	uint64_t exp = t->expires;
	uint64_t delta;
	unsigned level;

	if ((int64_t)(exp - tw->tick) < 0)
		exp = tw->tick; /* already due: next tick processed */
	delta = exp - tw->tick;
	for (level = 0; level < TIMER_LEVELS - 1; level++)
		if (delta < (1ull << (TIMER_SLOT_BITS * (level + 1))))
			break;
	if (level == TIMER_LEVELS - 1 &&
	    delta >= (1ull << (TIMER_SLOT_BITS * TIMER_LEVELS)) - 1) {
		/* Beyond the range: clamp to the last slot reachable. */
		exp = tw->tick + (1ull << (TIMER_SLOT_BITS * TIMER_LEVELS)) - 1;
		t->expires = exp;
	}
	timer_list_append(&tw->slot[level][(exp >> (TIMER_SLOT_BITS * level)) & TIMER_MASK], t);
}

void timer_arm(struct timer_wheel *tw, struct timer *t, uint64_t expires_ns)
{
	if (timer_armed(t))
		timer_unlink(t);
	else
		tw->narmed++;
	/* Round up: a timer never fires before its time. */
	t->expires = expires_ns / tw->tick_ns + (expires_ns % tw->tick_ns != 0);
	timer_place(tw, t);
}

void timer_cancel(struct timer_wheel *tw, struct timer *t)
{
	if (!timer_armed(t))
		return;
	timer_unlink(t);
	tw->narmed--;
}

/* Re-insert every timer of level/slot relative to the current tick. */
static void timer_cascade(struct timer_wheel *tw, unsigned level, unsigned slot)
{
	struct timer list, *t;

	timer_list_init(&list);
	if (tw->slot[level][slot].next == &tw->slot[level][slot])
		return;
	/* Move the whole slot to a local list, then place each timer again. */
	list.next = tw->slot[level][slot].next;
	list.prev = tw->slot[level][slot].prev;
	list.next->prev = &list;
	list.prev->next = &list;
	timer_list_init(&tw->slot[level][slot]);
	while ((t = list.next) != &list) {
		timer_unlink(t);
		timer_place(tw, t);
	}
}

unsigned timer_advance(struct timer_wheel *tw, uint64_t now_ns)
{
	uint64_t target = now_ns / tw->tick_ns;
	unsigned fired = 0;

	while ((int64_t)(target - tw->tick) >= 0) {
		uint64_t tick = tw->tick;
		unsigned idx = (unsigned)(tick & TIMER_MASK);
		struct timer list, *t;

		if (tw->narmed == 0) {
			tw->tick = target + 1; /* nothing to do: jump */
			break;
		}
		/* Level 0 wrapped: bring the next level's current slot down, and so on. */
		for (unsigned l = 1; idx == 0 && l < TIMER_LEVELS; l++) {
			idx = (unsigned)((tick >> (TIMER_SLOT_BITS * l)) & TIMER_MASK);
			timer_cascade(tw, l, idx);
		}
		idx = (unsigned)(tick & TIMER_MASK);
		/*
		 * The tick moves on before callbacks run, so a timer armed from a
		 * callback for "now" lands on the next tick, not on this slot.
		 */
		tw->tick = tick + 1;
		timer_list_init(&list);
		if (tw->slot[0][idx].next == &tw->slot[0][idx])
			continue;
		list.next = tw->slot[0][idx].next;
		list.prev = tw->slot[0][idx].prev;
		list.next->prev = &list;
		list.prev->next = &list;
		timer_list_init(&tw->slot[0][idx]);
		while ((t = list.next) != &list) {
			timer_unlink(t);
			tw->narmed--;
			fired++;
			t->fn(t, tw->owner);
		}
	}
	return fired;
}
