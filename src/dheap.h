/* dheap.h: a binary min-heap of nodes embedded in their owners, keyed by
 * a time. Each node knows its place, so it can leave or change its key
 * in O(log n). The bus keeps its subscribers' deadlines and its channels'
 * oldest messages in two of them, so that a tick pops what is due
 * instead of walking everything. Not thread-safe: the owner locks. */
#ifndef ANYPUSH_DHEAP_H
#define ANYPUSH_DHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dheap_node {
	uint64_t key;
	size_t at; /* place in the heap + 1; 0: not in it */
};

struct dheap {
	struct dheap_node **nodes;
	size_t n, cap;
};

static inline bool dheap_has(const struct dheap_node *node)
{
	return node->at != 0;
}

/* The node with the smallest key, or NULL when empty. */
static inline struct dheap_node *dheap_min(const struct dheap *h)
{
	return h->n ? h->nodes[0] : NULL;
}

/* Put a node that is not in the heap, with this key. */
void dheap_push(struct dheap *h, struct dheap_node *node, uint64_t key);
/* Give a node in the heap a new key, earlier or later. */
void dheap_rekey(struct dheap *h, struct dheap_node *node, uint64_t key);
/* Take a node out; nothing when it is not in the heap. */
void dheap_remove(struct dheap *h, struct dheap_node *node);
void dheap_free(struct dheap *h);

#endif
