/* A binary min-heap of embedded nodes (see dheap.h). */
#include "dheap.h"

#include "xalloc.h"

#include <stdlib.h>

static void put(struct dheap *h, size_t i, struct dheap_node *node)
{
	h->nodes[i] = node;
	node->at = i + 1;
}

static void sift_up(struct dheap *h, size_t i)
{
	struct dheap_node *node = h->nodes[i];

	while (i > 0) {
		size_t up = (i - 1) / 2;

		if (h->nodes[up]->key <= node->key)
			break;
		put(h, i, h->nodes[up]);
		i = up;
	}
	put(h, i, node);
}

static void sift_down(struct dheap *h, size_t i)
{
	struct dheap_node *node = h->nodes[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->nodes[c + 1]->key < h->nodes[c]->key)
			c++;
		if (node->key <= h->nodes[c]->key)
			break;
		put(h, i, h->nodes[c]);
		i = c;
	}
	put(h, i, node);
}

void dheap_push(struct dheap *h, struct dheap_node *node, uint64_t key)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->nodes = xrealloc(h->nodes, h->cap * sizeof *h->nodes);
	}
	node->key = key;
	put(h, h->n++, node);
	sift_up(h, h->n - 1);
}

void dheap_rekey(struct dheap *h, struct dheap_node *node, uint64_t key)
{
	uint64_t old = node->key;

	node->key = key;
	if (key < old)
		sift_up(h, node->at - 1);
	else
		sift_down(h, node->at - 1);
}

void dheap_remove(struct dheap *h, struct dheap_node *node)
{
	size_t i = node->at - 1;
	struct dheap_node *last;

	if (node->at == 0)
		return;
	node->at = 0;
	last = h->nodes[--h->n];
	if (last == node)
		return;
	put(h, i, last);
	sift_up(h, i);
	sift_down(h, last->at - 1);
}

void dheap_free(struct dheap *h)
{
	free(h->nodes);
	h->nodes = NULL;
	h->n = h->cap = 0;
}
