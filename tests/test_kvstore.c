/*
 * The KV server's shard store (examples/kv/store.c) against a plain model:
 * random sets, overwrites (growing and shrinking values), deletes and
 * expiries on a few hundred keys, so that the table grows many times,
 * probe runs wrap around, and deletion shifts entries back; after every
 * step each key's presence, value and expiry must match the model, and the
 * list of keys with a TTL must be consistent. Then the active expiry.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util.h"

#define KEYS 600

struct model {
	bool present;
	int64_t expire;
	size_t vlen;
	char val[64];
};

static struct model m[KEYS];
static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t key_of(int i, char *k)
{
	return (size_t)sprintf(k, "key-%d", i);
}

static void check_all(struct kv_store *s, int64_t now)
{
	size_t count = 0, vol = 0;

	for (int i = 0; i < KEYS; i++) {
		char k[16];
		size_t kl = key_of(i, k);
		struct kv_entry *e;

		/* Looking every key up also drops the expired ones, so that
		 * the counts compare. */
		e = kv_store_find(s, k, kl, kv_hash(k, kl), now, NULL);
		if (!m[i].present) {
			assert_null(e);
			continue;
		}
		count++;
		vol += m[i].expire != 0;
		assert_non_null(e);
		assert_int_equal(e->vlen, m[i].vlen);
		assert_memory_equal(kv_val(e), m[i].val, m[i].vlen);
		assert_int_equal(e->expire, m[i].expire);
		if (e->expire)
			assert_ptr_equal(s->vol[e->vidx], e);
	}
	assert_int_equal(s->count, count);
	assert_int_equal(s->nvol, vol);
}

static void random_ops(void **state)
{
	struct kv_store s;
	int64_t now = 1000;

	(void)state;
	kv_hash_seed(12345);
	assert_int_equal(kv_store_init(&s), 0);
	for (int step = 0; step < 200000; step++) {
		int i = (int)(rnd() % KEYS);
		char k[16];
		size_t kl = key_of(i, k), slot = SIZE_MAX;
		uint64_t h = kv_hash(k, kl);
		struct kv_entry *e = kv_store_find(&s, k, kl, h, now, &slot);

		assert_int_equal(e != NULL, m[i].present);
		switch (rnd() % 8) {
		case 0:
		case 1:
		case 2: /* set, keeping any TTL */
			m[i].vlen = rnd() % sizeof(m[i].val);
			for (size_t j = 0; j < m[i].vlen; j++)
				m[i].val[j] = (char)rnd();
			e = kv_store_put(&s, k, kl, h, m[i].val, m[i].vlen, e ? slot : SIZE_MAX);
			assert_non_null(e);
			if (!m[i].present)
				m[i].expire = 0;
			m[i].present = true;
			break;
		case 3: /* delete */
			if (e)
				kv_store_del_slot(&s, slot);
			m[i].present = false;
			break;
		case 4: /* a TTL, sometimes already due */
			if (e) {
				m[i].expire = now + (int64_t)(rnd() % 50) - 5;
				assert_true(kv_store_set_expire(&s, e, m[i].expire));
				if (m[i].expire <= now)
					m[i].present = false; /* gone at the next lookup */
			}
			break;
		case 5: /* no TTL */
			if (e) {
				m[i].expire = 0;
				assert_true(kv_store_set_expire(&s, e, 0));
			}
			break;
		case 6: /* time passes: lookups drop what expired */
			now += (int64_t)(rnd() % 3);
			for (int j = 0; j < KEYS; j++)
				if (m[j].present && m[j].expire && m[j].expire <= now)
					m[j].present = false;
			break;
		default:
			break;
		}
		if (step % 997 == 0)
			check_all(&s, now);
	}
	check_all(&s, now);
	kv_store_clear(&s);
	assert_int_equal(s.count, 0);
	assert_int_equal(s.nvol, 0);
	kv_store_free(&s);
}

static void active_expiry(void **state)
{
	struct kv_store s;
	char k[16];
	int n = 5000;

	(void)state;
	assert_int_equal(kv_store_init(&s), 0);
	for (int i = 0; i < n; i++) {
		size_t kl = key_of(i, k);
		struct kv_entry *e = kv_store_put(&s, k, kl, kv_hash(k, kl), "v", 1, SIZE_MAX);

		assert_non_null(e);
		/* Every other key expires at 10. */
		assert_true(kv_store_set_expire(&s, e, i % 2 ? 10 : 1000));
	}
	/* Before their time nothing goes, and one cycle stops early. */
	assert_false(kv_store_expire_cycle(&s, 5, 16));
	assert_int_equal(s.count, (size_t)n);
	/* After: bounded cycles until a sample finds few expired. */
	while (kv_store_expire_cycle(&s, 10, 16))
		;
	assert_true(s.count < (size_t)n);
	assert_true(s.st.expired > 0);
	assert_int_equal(s.count + s.st.expired, (size_t)n);
	/* The survivors are intact. */
	for (int i = 0; i < n; i += 2) {
		size_t kl = key_of(i, k);

		assert_non_null(kv_store_find(&s, k, kl, kv_hash(k, kl), 10, NULL));
	}
	kv_store_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_ops),
		cmocka_unit_test(active_expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
