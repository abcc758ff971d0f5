/*
 * list.h - the one doubly linked list of the tree, intrusive, in the shape
 * of the Linux kernel's list_head: a node embedded in each element, and a
 * head that is a node of its own, so the list is circular and no pointer
 * inside it is ever NULL. Insert and unlink are O(1) and need no head;
 * pg_list_foreach_safe survives unlinking (or freeing) the element it is
 * on. A node that is on no list points at itself (pg_list_init, and again
 * after pg_list_del), so pg_list_linked tells.
 */
#ifndef PG_LIST_H
#define PG_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct pg_list {
	struct pg_list *next, *prev;
};

#define PG_LIST_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline void pg_list_init(struct pg_list *n)
{
	n->next = n->prev = n;
}

static inline bool pg_list_empty(const struct pg_list *head)
{
	return head->next == head;
}

/* Is the node on a list? (It must have been pg_list_init'ed once.) */
static inline bool pg_list_linked(const struct pg_list *n)
{
	return n->next != n;
}

static inline void pg_list_insert(struct pg_list *n, struct pg_list *prev, struct pg_list *next)
{
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
}

/* At the front, and at the back. */
static inline void pg_list_add(struct pg_list *head, struct pg_list *n)
{
	pg_list_insert(n, head, head->next);
}

static inline void pg_list_add_tail(struct pg_list *head, struct pg_list *n)
{
	pg_list_insert(n, head->prev, head);
}

/* Unlink n from whatever list it is on; it is then on none. */
static inline void pg_list_del(struct pg_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	pg_list_init(n);
}

/* Move every node of from to the empty list to; from is then empty. */
static inline void pg_list_splice_init(struct pg_list *from, struct pg_list *to)
{
	pg_list_init(to);
	if (pg_list_empty(from))
		return;
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	pg_list_init(from);
}

/* The first element, or NULL. */
#define PG_LIST_FIRST(head, type, member)                                                          \
	(pg_list_empty(head) ? (type *)NULL : PG_LIST_ENTRY((head)->next, type, member))

/* Every node of head; pos may be unlinked (or its element freed) in the body. */
#define pg_list_foreach_safe(pos, tmp, head)                                                       \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
