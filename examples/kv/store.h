/*
 * One shard's keyspace: string keys to string values, touched only by the
 * shard's own loop (no locks anywhere).
 *
 * Layout:
 *   - An open-addressing table (linear probing, power-of-two size, at most
 *     3/4 full) of 16-byte slots {hash, entry pointer}. The full 64-bit hash
 *     in the slot makes a probe compare 8 bytes before it touches the entry,
 *     and lets the table grow without rehashing keys. Deletion shifts the
 *     following entries back (no tombstones), so probe runs stay short.
 *   - One allocation per key: a small header, the key bytes, then the value
 *     bytes. Overwriting a value reallocates that one block.
 *   - Keys with a time to live are also listed in a dense array (`vol`); an
 *     entry knows its index there, so adding and removing a TTL is O(1), and
 *     the active expiry samples random indices of it, as Redis samples its
 *     expires dictionary.
 *   - `mem` counts what the store holds: each entry as malloc_usable_size
 *     (what malloc really gave), the arrays by their size; it returns
 *     exactly to its baseline when the keys go.
 *   - Every lookup that finds a key stamps it with the store's access clock
 *     (a counter, not time): kv_store_evict() samples a few keys and drops
 *     the least recently used of them, Redis's approximated LRU.
 *
 * Expiry times are absolute milliseconds on the monotonic clock (so a wall
 * clock step changes no TTL). Expired keys are removed lazily, by the
 * lookup that finds them, and actively, by kv_store_expire_cycle().
 *
 * Known limit: the table grows in one step (a rehash of all slots, O(n)), a
 * pause of a few milliseconds per million keys on that shard only.
 */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv_entry {
	int64_t expire; /* absolute monotonic ms; 0: none */
	uint32_t vidx;	/* index in the store's vol array, if expire */
	uint32_t klen;
	uint32_t vlen;
	uint32_t atime; /* the store's access clock at the last lookup */
	char data[]; /* key bytes, then value bytes */
};

static inline const char *kv_key(const struct kv_entry *e)
{
	return e->data;
}

static inline char *kv_val(struct kv_entry *e)
{
	return e->data + e->klen;
}

struct kv_slot {
	uint64_t hash;
	struct kv_entry *e; /* NULL: empty */
};

struct kv_store_stats {
	uint64_t expired;     /* keys removed because their time was up */
	uint64_t evicted;     /* keys removed to stay within a memory limit */
	uint64_t hits, misses; /* reads that found / did not find their key */
};

struct kv_store {
	struct kv_slot *slots;
	size_t mask;  /* slots - 1 */
	size_t count; /* keys */
	struct kv_entry **vol; /* keys with a TTL */
	size_t nvol, capvol;
	size_t mem; /* bytes malloc gave for entries and arrays */
	uint32_t clock; /* access clock: one tick per lookup that finds a key */
	uint64_t rng;
	struct kv_store_stats st;
};

/* The process-wide keyed hash (seeded once, at random, by kv_hash_seed). */
void kv_hash_seed(uint64_t seed);
uint64_t kv_hash(const void *key, size_t len);

int kv_store_init(struct kv_store *s);
void kv_store_free(struct kv_store *s);
/* Drop every key (FLUSHALL); the table shrinks back. */
void kv_store_clear(struct kv_store *s);

/*
 * Find @key (with hash @h). A key whose time is up at @now is deleted and
 * not found. Returns the entry or NULL; *slot (if not NULL) gets its slot.
 */
struct kv_entry *kv_store_find(struct kv_store *s, const char *key, size_t klen, uint64_t h,
			       int64_t now, size_t *slot);

/*
 * Hints for a batch of lookups: kv_store_prefetch_slot() for every key
 * first, then kv_store_prefetch_entry(), then the finds. The cache misses
 * of a batch (the key's slot, then its entry) then overlap instead of
 * coming one after the other.
 */
static inline void kv_store_prefetch_slot(const struct kv_store *s, uint64_t h)
{
	__builtin_prefetch(&s->slots[h & s->mask]);
}

static inline void kv_store_prefetch_entry(const struct kv_store *s, uint64_t h)
{
	const struct kv_slot *sl = &s->slots[h & s->mask];

	if (sl->e)
		__builtin_prefetch(sl->e);
}

/*
 * Set @key to @val. @slot is where kv_store_find found it, or SIZE_MAX for a
 * key known to be absent. The TTL of an existing key is kept (the caller
 * clears or changes it). Returns the entry, or NULL when out of memory
 * (then the store is unchanged).
 */
struct kv_entry *kv_store_put(struct kv_store *s, const char *key, size_t klen, uint64_t h,
			      const char *val, size_t vlen, size_t slot);

/* Delete the entry in @slot. */
void kv_store_del_slot(struct kv_store *s, size_t slot);

/* Set (when > 0) or clear (0) the expiry of @e. Returns false when out of
 * memory (then nothing changed). */
bool kv_store_set_expire(struct kv_store *s, struct kv_entry *e, int64_t when);

/*
 * Active expiry, bounded: sample up to 20 keys with a TTL, delete those
 * whose time is up, and repeat while more than a quarter of a sample had
 * expired, at most @rounds times. Returns true when it stopped at the round
 * limit (many keys are expiring: worth another cycle soon).
 */
bool kv_store_expire_cycle(struct kv_store *s, int64_t now, unsigned rounds);

/*
 * Approximated LRU: while mem > @limit and keys are left, sample @samples
 * keys and delete the one whose last lookup is the oldest. Returns the keys
 * deleted. The table itself is not shrunk, so mem may stay above a limit
 * smaller than an empty table.
 */
size_t kv_store_evict(struct kv_store *s, size_t limit, unsigned samples);

/* Walk the whole store and check its invariants (every key reachable from
 * its home slot, counts, the TTL list, mem). For tests: true if sound. */
bool kv_store_check(const struct kv_store *s);

#endif
