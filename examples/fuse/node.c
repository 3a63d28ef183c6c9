/*
 * The id tables (inodes and handles) and the inode table's index by
 * (device, inode number): one entry per source inode the kernel knows, so
 * that two names of one file (hard links) are one FUSE inode, as the kernel
 * expects.
 *
 * Ids index a two-level array. A chunk, once published (release store), is
 * never moved or freed before the table is, so table_get needs no lock: an
 * acquire load of the chunk, then of the slot, pairs with the release
 * stores of table_put. Freed ids are reused (a stack of free ids); the
 * generation number in every entry answer tells the kernel apart two inodes
 * that had the same id, as the protocol asks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/stat.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fuse.h"

void *table_get(struct table *t, uint64_t id)
{
	_Atomic(void *) *c;

	if (id >= (uint64_t)TABLE_CHUNKS * TABLE_CHUNK)
		return NULL;
	c = atomic_load_explicit(&t->chunks[id >> TABLE_CHUNK_BITS], memory_order_acquire);
	if (!c)
		return NULL;
	return atomic_load_explicit(&c[id & (TABLE_CHUNK - 1)], memory_order_acquire);
}

uint64_t table_put(struct table *t, void *p)
{
	_Atomic(void *) *c;
	uint64_t id;

	if (t->nfree) {
		id = t->free[--t->nfree];
	} else {
		if (t->next >= (uint64_t)TABLE_CHUNKS * TABLE_CHUNK)
			return 0;
		id = t->next;
	}
	c = atomic_load_explicit(&t->chunks[id >> TABLE_CHUNK_BITS], memory_order_relaxed);
	if (!c) {
		c = calloc(TABLE_CHUNK, sizeof(*c));
		if (!c) {
			if (id != t->next)
				t->nfree++; /* give the id back */
			return 0;
		}
		atomic_store_explicit(&t->chunks[id >> TABLE_CHUNK_BITS], c, memory_order_release);
	}
	if (id == t->next)
		t->next++;
	atomic_store_explicit(&c[id & (TABLE_CHUNK - 1)], p, memory_order_release);
	t->count++;
	return id;
}

void table_del(struct table *t, uint64_t id)
{
	_Atomic(void *) *c = t->chunks[id >> TABLE_CHUNK_BITS];

	atomic_store_explicit(&c[id & (TABLE_CHUNK - 1)], NULL, memory_order_relaxed);
	t->count--;
	if (t->nfree == t->free_cap) {
		size_t cap = t->free_cap ? 2 * t->free_cap : 256;
		uint32_t *f = realloc(t->free, cap * sizeof(*f));

		if (!f)
			return; /* the id is not reused: harmless */
		t->free = f;
		t->free_cap = cap;
	}
	t->free[t->nfree++] = (uint32_t)id;
}

void table_free(struct table *t)
{
	for (unsigned i = 0; i < TABLE_CHUNKS; i++)
		free((void *)t->chunks[i]);
	free(t->free);
	memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------- inodes */

static size_t bucket(const struct nodes *n, uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ dev * 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull;

	return (size_t)(h >> 32) & (n->nbuckets - 1);
}

static void hash_insert(struct nodes *n, struct node *nd)
{
	size_t b = bucket(n, nd->dev, nd->ino);

	nd->hnext = n->hash[b];
	n->hash[b] = nd;
}

/* Double the buckets when there are more inodes than buckets. Without
 * memory, chains just get longer. */
static void hash_grow(struct nodes *n)
{
	struct node **old = n->hash;
	size_t nold = n->nbuckets;
	struct node **h = calloc(2 * nold, sizeof(*h));

	if (!h)
		return;
	n->hash = h;
	n->nbuckets = 2 * nold;
	for (size_t i = 0; i < nold; i++) {
		struct node *nd = old[i], *next;

		for (; nd; nd = next) {
			next = nd->hnext;
			hash_insert(n, nd);
		}
	}
	free(old);
}

static uint64_t st_dev(const struct statx *st)
{
	return makedev(st->stx_dev_major, st->stx_dev_minor);
}

static struct node *hash_find(struct nodes *n, uint64_t dev, uint64_t ino)
{
	struct node *nd = n->hash[bucket(n, dev, ino)];

	while (nd && (nd->ino != ino || nd->dev != dev))
		nd = nd->hnext;
	return nd;
}

int nodes_init(struct nodes *n, int rootfd, const struct statx *st)
{
	struct node *root = calloc(1, sizeof(*root));

	memset(n, 0, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
	n->nbuckets = 1024;
	n->hash = calloc(n->nbuckets, sizeof(*n->hash));
	if (!root || !n->hash)
		goto fail;
	n->ids.next = FUSE_ROOT_ID; /* ids 0 is never valid; the root is 1 */
	root->fd = rootfd;
	root->dev = st_dev(st);
	root->ino = st->stx_ino;
	root->nlookup = 1; /* the kernel never forgets the root; never freed */
	root->id = table_put(&n->ids, root);
	if (root->id != FUSE_ROOT_ID)
		goto fail;
	hash_insert(n, root);
	return 0;
fail:
	free(root);
	free(n->hash);
	n->hash = NULL;
	table_free(&n->ids);
	return -ENOMEM;
}

void nodes_free(struct nodes *n)
{
	for (size_t i = 0; n->hash && i < n->nbuckets; i++) {
		struct node *nd = n->hash[i], *next;

		for (; nd; nd = next) {
			next = nd->hnext;
			close(nd->fd);
			free(nd);
		}
	}
	free(n->hash);
	table_free(&n->ids);
	pthread_mutex_destroy(&n->lock);
}

struct node *node_get(struct nodes *n, uint64_t id)
{
	return table_get(&n->ids, id);
}

struct node *node_ref(struct nodes *n, const struct statx *st)
{
	struct node *nd;

	pthread_mutex_lock(&n->lock);
	nd = hash_find(n, st_dev(st), st->stx_ino);
	if (nd)
		nd->nlookup++;
	pthread_mutex_unlock(&n->lock);
	return nd;
}

struct node *node_add(struct nodes *n, int fd, const struct statx *st, bool *dup)
{
	struct node *nd, *fresh = calloc(1, sizeof(*fresh));

	pthread_mutex_lock(&n->lock);
	nd = hash_find(n, st_dev(st), st->stx_ino);
	*dup = nd != NULL;
	if (nd) {
		nd->nlookup++;
	} else if (fresh) {
		fresh->fd = fd;
		fresh->dev = st_dev(st);
		fresh->ino = st->stx_ino;
		fresh->nlookup = 1;
		fresh->gen = ++n->gen;
		fresh->id = table_put(&n->ids, fresh);
		if (fresh->id) {
			hash_insert(n, fresh);
			if (n->ids.count > n->nbuckets)
				hash_grow(n);
			nd = fresh;
			fresh = NULL;
		}
	}
	pthread_mutex_unlock(&n->lock);
	free(fresh);
	return nd;
}

int node_forget(struct nodes *n, uint64_t id, uint64_t count)
{
	struct node *nd, **pp;
	int fd = -1;

	pthread_mutex_lock(&n->lock);
	nd = table_get(&n->ids, id);
	if (!nd || id == FUSE_ROOT_ID) {
		pthread_mutex_unlock(&n->lock);
		return -1;
	}
	nd->nlookup -= count < nd->nlookup ? count : nd->nlookup;
	if (nd->nlookup == 0) {
		pp = &n->hash[bucket(n, nd->dev, nd->ino)];
		while (*pp != nd)
			pp = &(*pp)->hnext;
		*pp = nd->hnext;
		table_del(&n->ids, id);
		fd = nd->fd;
	}
	pthread_mutex_unlock(&n->lock);
	if (fd >= 0)
		free(nd);
	return fd;
}

uint64_t nodes_count(struct nodes *n)
{
	uint64_t c;

	pthread_mutex_lock(&n->lock);
	c = n->ids.count;
	pthread_mutex_unlock(&n->lock);
	return c;
}
