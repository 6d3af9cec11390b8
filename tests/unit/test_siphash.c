/* SipHash-1-3 against an independent implementation: CPython 3.11 hashes
 * bytes with SipHash-1-3, and with PYTHONHASHSEED=0 its key is all zero;
 * with PYTHONHASHSEED=1 it is the first 16 bytes of CPython's LCG
 * (x = x * 214013 + 2531011, byte = x >> 16) seeded with 1. The vectors
 * are hash(bytes(range(n))) from that interpreter. */
#include "unit.h"

#include "siphash.h"

#include <stdint.h>
#include <string.h>

struct vector {
	size_t len;
	uint64_t zero_key, seed1_key;
};

static const struct siphash_key zero = { 0, 0 };
static const struct siphash_key seed1 = { 0xaed66ce184be2329ULL,
					  0xebe9bbf1f1499052ULL };

/* lengths around the 8-byte word boundary, and a long one */
static const struct vector vectors[] = {
	{ 1, 0x68a914128e01e473ULL, 0xecd3e5afcecda4b9ULL },
	{ 7, 0x2f098ab0c751325aULL, 0xfd15e78052a69ddfULL },
	{ 8, 0xead411e67ebe2eeaULL, 0xc0b5739e7e28dd01ULL },
	{ 15, 0xf30eb725bb91c9eaULL, 0xfa87985f39e97a53ULL },
	{ 16, 0x8972188433a5c5b7ULL, 0x12e9d283f9f37002ULL },
	{ 63, 0x385d3e39e5f37359ULL, 0x542052345bc68274ULL },
};

START_TEST(test_vectors)
{
	const struct vector *v = &vectors[_i];
	unsigned char in[64];

	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)i;
	ck_assert_uint_eq(siphash13(&zero, in, v->len), v->zero_key);
	ck_assert_uint_eq(siphash13(&seed1, in, v->len), v->seed1_key);
}
END_TEST

START_TEST(test_text)
{
	/* python3: hash(b"siphash") with PYTHONHASHSEED=0 */
	ck_assert_uint_eq(siphash13(&zero, LIT("siphash")),
			  0x8264ceeccb16bcbeULL);
}
END_TEST

START_TEST(test_random_keys_differ)
{
	struct siphash_key a, b;

	siphash_key_random(&a);
	siphash_key_random(&b);
	ck_assert(a.k0 != b.k0 || a.k1 != b.k1);
	ck_assert_uint_ne(siphash13(&a, LIT("news")),
			  siphash13(&b, LIT("news")));
}
END_TEST

static Suite *siphash_suite(void)
{
	Suite *s = suite_create("siphash");
	TCase *tc = tcase_create("siphash13");

	tcase_add_loop_test(tc, test_vectors, 0, (int)NELEM(vectors));
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_random_keys_differ);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(siphash_suite)
