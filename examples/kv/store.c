/*
 * One shard's keyspace (see store.h for the layout).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define MIN_SLOTS 16u
#define SAMPLE 20u

/* ------------------------------------------------------------- hashing */

static uint64_t hash_seed = 0x9e3779b97f4a7c15ull;

void kv_hash_seed(uint64_t seed)
{
	hash_seed = seed | 1;
}

/* 64x64 -> 128 multiply, folded: the mixing step of the hash. */
static inline uint64_t fold(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/*
 * A keyed multiply-fold hash: 16 bytes per step, the tail read as up to two
 * overlapping words. Keyed with a random seed so that a client cannot
 * choose keys that collide (linear probing would suffer).
 */
uint64_t kv_hash(const void *key, size_t len)
{
	const uint64_t k1 = 0xa0761d6478bd642full, k2 = 0xe7037ed1a0b428dbull;
	const unsigned char *p = key;
	uint64_t h = hash_seed ^ fold(len ^ k1, k2);
	uint64_t a = 0, b = 0;

	while (len > 16) {
		h = fold(load64(p) ^ k1, load64(p + 8) ^ h);
		p += 16;
		len -= 16;
	}
	if (len >= 8) {
		a = load64(p);
		b = load64(p + len - 8);
	} else if (len >= 4) {
		uint32_t x, y;

		memcpy(&x, p, 4);
		memcpy(&y, p + len - 4, 4);
		a = x;
		b = y;
	} else if (len > 0) {
		a = (uint64_t)p[0] << 16 | (uint64_t)p[len / 2] << 8 | p[len - 1];
	}
	return fold(a ^ k2 ^ h, b ^ k1 ^ (h >> 32)) ^ h;
}

/* -------------------------------------------------------------- table */

static size_t entry_size(size_t klen, size_t vlen)
{
	return sizeof(struct kv_entry) + klen + vlen;
}

/* What an entry really costs: malloc rounds small blocks up, by as much as
 * a short key and value take. (The arrays are counted by the size asked
 * for: their rounding is negligible, and an empty store's mem is then the
 * same every time.) */
static size_t usable(const void *p)
{
	return malloc_usable_size((void *)p);
}

static size_t arrays_mem(const struct kv_store *s)
{
	return (s->mask + 1) * sizeof(*s->slots) + s->capvol * sizeof(*s->vol);
}

int kv_store_init(struct kv_store *s)
{
	memset(s, 0, sizeof(*s));
	s->slots = calloc(MIN_SLOTS, sizeof(*s->slots));
	if (!s->slots)
		return -1;
	s->mask = MIN_SLOTS - 1;
	s->mem = arrays_mem(s);
	s->rng = (uint64_t)(uintptr_t)s ^ 0x2545f4914f6cdd1dull;
	return 0;
}

static void free_entries(struct kv_store *s)
{
	for (size_t i = 0; i <= s->mask; i++)
		free(s->slots[i].e);
}

void kv_store_free(struct kv_store *s)
{
	if (!s->slots)
		return;
	free_entries(s);
	free(s->slots);
	free(s->vol);
	memset(s, 0, sizeof(*s));
}

void kv_store_clear(struct kv_store *s)
{
	struct kv_slot *fresh = calloc(MIN_SLOTS, sizeof(*fresh));

	free_entries(s);
	if (fresh) {
		free(s->slots);
		s->slots = fresh;
		s->mask = MIN_SLOTS - 1;
	} else {
		memset(s->slots, 0, (s->mask + 1) * sizeof(*s->slots));
	}
	free(s->vol);
	s->vol = NULL;
	s->nvol = s->capvol = 0;
	s->count = 0;
	s->mem = arrays_mem(s);
}

/* Double the table: reinsert every slot by its stored hash. */
static bool grow(struct kv_store *s)
{
	size_t n = (s->mask + 1) * 2, mask = n - 1;
	struct kv_slot *t = calloc(n, sizeof(*t));

	if (!t)
		return false;
	for (size_t i = 0; i <= s->mask; i++) {
		size_t j;

		if (!s->slots[i].e)
			continue;
		for (j = s->slots[i].hash & mask; t[j].e; j = (j + 1) & mask)
			;
		t[j] = s->slots[i];
	}
	s->mem += (n - (s->mask + 1)) * sizeof(*t);
	free(s->slots);
	s->slots = t;
	s->mask = mask;
	return true;
}

/* ------------------------------------------------------------- expiry */

static void vol_remove(struct kv_store *s, struct kv_entry *e)
{
	struct kv_entry *last = s->vol[--s->nvol];

	s->vol[e->vidx] = last;
	last->vidx = e->vidx;
}

bool kv_store_set_expire(struct kv_store *s, struct kv_entry *e, int64_t when)
{
	if (!when) {
		if (e->expire)
			vol_remove(s, e);
		e->expire = 0;
		return true;
	}
	if (!e->expire) {
		if (s->nvol == s->capvol) {
			size_t cap = s->capvol ? s->capvol * 2 : 64;
			struct kv_entry **v = realloc(s->vol, cap * sizeof(*v));

			if (!v)
				return false;
			s->mem += (cap - s->capvol) * sizeof(*v);
			s->vol = v;
			s->capvol = cap;
		}
		e->vidx = (uint32_t)s->nvol;
		s->vol[s->nvol++] = e;
	}
	e->expire = when;
	return true;
}

/* ------------------------------------------------------------ lookups */

static size_t probe(const struct kv_store *s, const char *key, size_t klen, uint64_t h)
{
	size_t i = h & s->mask;

	for (;; i = (i + 1) & s->mask) {
		const struct kv_slot *sl = &s->slots[i];

		if (!sl->e)
			return SIZE_MAX;
		if (sl->hash == h && sl->e->klen == klen && !memcmp(sl->e->data, key, klen))
			return i;
	}
}

void kv_store_del_slot(struct kv_store *s, size_t i)
{
	struct kv_entry *e = s->slots[i].e;
	size_t j = i;

	if (e->expire)
		vol_remove(s, e);
	s->mem -= usable(e);
	free(e);
	s->count--;
	/* Backward shift: pull later members of the probe run into the hole
	 * unless that would move one before its home slot. */
	for (;;) {
		size_t home;

		j = (j + 1) & s->mask;
		if (!s->slots[j].e)
			break;
		home = s->slots[j].hash & s->mask;
		if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i].e = NULL;
	s->slots[i].hash = 0;
}

struct kv_entry *kv_store_find(struct kv_store *s, const char *key, size_t klen, uint64_t h,
			       int64_t now, size_t *slot)
{
	size_t i = probe(s, key, klen, h);
	struct kv_entry *e;

	if (i == SIZE_MAX)
		return NULL;
	e = s->slots[i].e;
	if (e->expire && e->expire <= now) {
		kv_store_del_slot(s, i);
		s->st.expired++;
		return NULL;
	}
	e->atime = ++s->clock;
	if (slot)
		*slot = i;
	return e;
}

struct kv_entry *kv_store_put(struct kv_store *s, const char *key, size_t klen, uint64_t h,
			      const char *val, size_t vlen, size_t slot)
{
	struct kv_entry *e;

	if (slot != SIZE_MAX) {
		struct kv_entry *old = s->slots[slot].e;

		if (old->vlen != vlen) {
			size_t before = usable(old);

			e = realloc(old, entry_size(klen, vlen));
			if (!e)
				return NULL;
			s->mem = s->mem - before + usable(e);
			if (e != old) {
				s->slots[slot].e = e;
				if (e->expire)
					s->vol[e->vidx] = e;
			}
			e->vlen = (uint32_t)vlen;
		} else {
			e = old;
		}
		memcpy(kv_val(e), val, vlen);
		return e;
	}
	if ((s->count + 1) * 4 > (s->mask + 1) * 3 && !grow(s))
		return NULL;
	e = malloc(entry_size(klen, vlen));
	if (!e)
		return NULL;
	e->expire = 0;
	e->vidx = 0;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->atime = ++s->clock;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, vlen);
	for (slot = h & s->mask; s->slots[slot].e; slot = (slot + 1) & s->mask)
		;
	s->slots[slot].hash = h;
	s->slots[slot].e = e;
	s->count++;
	s->mem += usable(e);
	return e;
}

/* xorshift64*: cheap randomness for sampling. */
static uint64_t next_rand(struct kv_store *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dull;
}

bool kv_store_expire_cycle(struct kv_store *s, int64_t now, unsigned rounds)
{
	while (rounds--) {
		unsigned sampled = 0, expired = 0;

		while (sampled < SAMPLE && s->nvol) {
			struct kv_entry *e = s->vol[next_rand(s) % s->nvol];

			sampled++;
			if (e->expire > now)
				continue;
			/* Find its slot to delete it (it is there: only
			 * this loop changes the store). */
			kv_store_del_slot(s, probe(s, e->data, e->klen,
						   kv_hash(e->data, e->klen)));
			expired++;
		}
		s->st.expired += expired;
		if (expired * 4 <= sampled)
			return false;
	}
	return true;
}

/* A random occupied slot: a random index, then the next key after it (at
 * most PROBE slots on; SIZE_MAX if that run is empty). The table is at
 * least 3/8 full once it has grown, so the run is short. */
#define PROBE 64u

static size_t random_slot(struct kv_store *s)
{
	size_t i = next_rand(s) & s->mask;

	for (unsigned k = 0; k < PROBE && k <= s->mask; k++, i = (i + 1) & s->mask)
		if (s->slots[i].e)
			return i;
	return SIZE_MAX;
}

size_t kv_store_evict(struct kv_store *s, size_t limit, unsigned samples)
{
	size_t evicted = 0;

	while (s->mem > limit && s->count) {
		size_t best = SIZE_MAX;
		uint32_t best_age = 0;

		for (unsigned k = 0; k < samples; k++) {
			size_t i = random_slot(s);
			uint32_t age;

			if (i == SIZE_MAX)
				continue;
			/* Unsigned: the clock may wrap; an age is at most 2^32
			 * lookups, beyond which recency is not told apart. */
			age = s->clock - s->slots[i].e->atime;
			if (best == SIZE_MAX || age > best_age) {
				best = i;
				best_age = age;
			}
		}
		if (best == SIZE_MAX)
			continue; /* an empty stretch; sample again */
		kv_store_del_slot(s, best);
		evicted++;
	}
	s->st.evicted += evicted;
	return evicted;
}

bool kv_store_check(const struct kv_store *s)
{
	size_t count = 0, vol = 0, mem = arrays_mem(s);

	for (size_t i = 0; i <= s->mask; i++) {
		const struct kv_entry *e = s->slots[i].e;
		size_t j;

		if (!e)
			continue;
		count++;
		mem += usable(e);
		if (s->slots[i].hash != kv_hash(e->data, e->klen))
			return false;
		/* Reachable: no empty slot between its home and here. */
		for (j = s->slots[i].hash & s->mask; j != i; j = (j + 1) & s->mask)
			if (!s->slots[j].e)
				return false;
		if (e->expire) {
			vol++;
			if (e->vidx >= s->nvol || s->vol[e->vidx] != e)
				return false;
		}
	}
	return count == s->count && vol == s->nvol && mem == s->mem && s->nvol <= s->capvol &&
	       (s->count + 1) * 4 <= (s->mask + 1) * 3 + 4;
}
