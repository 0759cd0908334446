import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Identity } from './identity.js';
import { VerifiedCredentials } from './verified-credentials.js';

const identity = (expiresAt: Date | null = null): Identity => ({
  subject: 'ci-bot',
  kind: 'service',
  groups: ['bots'],
  rootSubject: 'ci-bot',
  chain: [],
  via: 'api_key',
  tokenId: 'k1',
  parentTokenId: null,
  parentSessionId: null,
  issuer: 'warden',
  scope: ['*'],
  expiresAt,
  roles: ['user'],
});

/** The key `cache` keeps `credential` under (the cache is on in these tests). */
const k = (cache: VerifiedCredentials, credential: string): string => {
  const key = cache.key(credential);
  assert.ok(key !== null);
  return key;
};

describe('verified credentials (the cache)', () => {
  it('serves an entry for its time to live, and never past the credential’s own expiry', () => {
    const cache = new VerifiedCredentials(1_000);
    const now = 1_000_000;
    cache.keep(k(cache, 'wdn_a'), identity(), cache.mark(), now);
    assert.equal(cache.get(k(cache, 'wdn_a'), now + 999)?.subject, 'ci-bot');
    assert.equal(cache.get(k(cache, 'wdn_a'), now + 1_000), undefined, 'expired with its time to live');
    assert.equal(cache.size, 0, 'an expired entry is dropped when asked for');

    cache.keep(k(cache, 'wdn_b'), identity(new Date(now + 300)), cache.mark(), now);
    assert.ok(cache.get(k(cache, 'wdn_b'), now + 299));
    assert.equal(
      cache.get(k(cache, 'wdn_b'), now + 300),
      undefined,
      'the credential expired before the entry would',
    );
    cache.keep(k(cache, 'wdn_c'), identity(new Date(now)), cache.mark(), now);
    assert.equal(cache.size, 0, 'an expired credential is not kept at all');
    assert.equal(cache.get(k(cache, 'wdn_other'), now), undefined);
  });

  it('keeps nothing verified before a revocation, even when the verification ends after it', () => {
    const cache = new VerifiedCredentials(60_000);
    cache.keep(k(cache, 'wdn_a'), identity(), cache.mark());
    const mark = cache.mark();
    // A verification reads the store, a revocation lands here meanwhile, then the verification ends.
    cache.forget();
    cache.keep(k(cache, 'wdn_b'), identity(), mark);
    assert.equal(cache.get(k(cache, 'wdn_a')), undefined, 'forget() drops what was kept');
    assert.equal(
      cache.get(k(cache, 'wdn_b')),
      undefined,
      'a verification begun before the revocation is not kept',
    );
    cache.keep(k(cache, 'wdn_b'), identity(), cache.mark());
    assert.ok(cache.get(k(cache, 'wdn_b')));
  });

  it('is bounded, does nothing when off, and shares a frozen identity', () => {
    const cache = new VerifiedCredentials(60_000, 3);
    for (const c of ['a', 'b', 'c', 'd']) cache.keep(k(cache, c), identity(), cache.mark());
    assert.equal(cache.size, 3);
    assert.equal(cache.get(k(cache, 'a')), undefined, 'the oldest entry made room');
    const kept = cache.get(k(cache, 'd'));
    assert.ok(kept && Object.isFrozen(kept) && Object.isFrozen(kept.groups));

    const off = new VerifiedCredentials(0);
    assert.equal(off.key('a'), null, 'nothing is hashed or kept while the cache is off');
    assert.equal(off.size, 0);
  });
});
