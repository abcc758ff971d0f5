/*
 * timer.h - the per-worker hierarchical timing wheel (Varghese & Lauck,
 * "Hashed and Hierarchical Timing Wheels", 1987; the layout of the classic
 * Linux wheel). Four levels of 256 slots; a tick of about a millisecond
 * covers 2^32 ticks (49 days at 1 ms). Arm and cancel are O(1) on
 * intrusive list nodes; timer_advance() fires what is due, tick by tick,
 * cascading the upper levels down as their slots come round.
 *
 * One wheel belongs to one worker and is touched by that worker only.
 */
#ifndef PG_TIMER_H
#define PG_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_LEVELS 4
#define TIMER_SLOT_BITS 8
#define TIMER_SLOTS (1u << TIMER_SLOT_BITS)
#define TIMER_TICK_NS_DEFAULT (1000 * 1000ull) /* 1 ms */

struct timer;
/* Called when the timer fires; `owner` is the wheel's owner (the worker). */
typedef void (*timer_fn)(struct timer *t, void *owner);

/*
 * Embed in the object the timer belongs to and recover it with
 * container_of. A timer is armed iff it is on a list (next != NULL).
 */
struct timer {
	struct timer *next, *prev;
	uint64_t expires; /* tick */
	timer_fn fn;
};

/* A slot is a circular list through a sentinel (FIFO within a tick). */
struct timer_wheel {
	uint64_t tick_ns;
	uint64_t tick;   /* next tick to process */
	uint64_t narmed; /* timers on the wheel */
	void *owner;
	struct timer slot[TIMER_LEVELS][TIMER_SLOTS];
};

/* Set up a wheel whose time starts at now_ns. */
void timer_wheel_init(struct timer_wheel *tw, uint64_t tick_ns, uint64_t now_ns, void *owner);

static inline void timer_init(struct timer *t, timer_fn fn)
{
	t->next = t->prev = 0;
	t->expires = 0;
	t->fn = fn;
}

static inline bool timer_armed(const struct timer *t)
{
	return t->next != 0;
}

/*
 * Arm (or re-arm) t to fire at the first tick at or after expires_ns. A
 * time in the past fires on the next tick processed. Times beyond the
 * wheel's range are clamped to its end.
 */
void timer_arm(struct timer_wheel *tw, struct timer *t, uint64_t expires_ns);
/* Disarm t; harmless if it is not armed. */
void timer_cancel(struct timer_wheel *tw, struct timer *t);
/*
 * Fire every timer due at or before now_ns, in tick order (arming order
 * within a tick). Callbacks may arm and cancel any timer, themselves
 * included. Returns the number fired. Cheap when nothing is armed.
 */
unsigned timer_advance(struct timer_wheel *tw, uint64_t now_ns);

#endif
