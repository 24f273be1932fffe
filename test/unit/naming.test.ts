import { isDns1123Label, placementFor, userSlug, workflowIdFor } from '../../lib/naming';
import { validateUserName } from '../../lib/validate';

describe('userSlug', () => {
  it.each([
    ['alice', 'alice'],
    ['Alice', 'alice'],
    ['ALICE-SMITH', 'alice-smith'],
    ['john.doe@example.com', 'john-doe-example-com'],
    ['Zoë', 'zo'],
    ['José Müller', 'jos-m-ller'],
    ['山田', 'u'],
    ['🦄', 'u'],
    ['山田 taro', 'taro'],
    ['\u212a', 'k'], // KELVIN SIGN lowercases to ASCII 'k'
    ['İstanbul', 'i-stanbul'],
    ['a--b', 'a-b'],
    ['a_-_b', 'a-b'],
    ['-alice-', 'alice'],
    ['--', 'u'],
    ['123abc', 'u123abc'],
    ['9', 'u9'],
    ['-9-', 'u9'],
    ['', 'u'],
    ['a'.repeat(200), 'a'.repeat(38)],
    [`${'a'.repeat(37)}_bbbb`, 'a'.repeat(37)], // truncation must not leave a trailing '-'
    [`1${'a'.repeat(100)}`, `u1${'a'.repeat(36)}`],
  ])('%j → %j', (user, slug) => {
    expect(userSlug(user)).toBe(slug);
  });
});

describe('isDns1123Label', () => {
  it.each(['a', '0', 'a-b', 'a'.repeat(63), 'abc-123'])('accepts %j', (s) => expect(isDns1123Label(s)).toBe(true));
  it.each(['', '-a', 'a-', 'A', 'a_b', 'a.b', 'a'.repeat(64), 'ë'])('rejects %j', (s) => expect(isDns1123Label(s)).toBe(false));
});

describe('placementFor', () => {
  it('is stable across releases, since volumes outlive sessions', () => {
    expect(placementFor('alice', '/home/alice/src')).toEqual({
      namespace: 'alice-rbs-280f7012050cb00528a9',
      volume: 'alice-vol-280f7012050cb00528a9',
    });
    expect(placementFor('山田', '/src')).toEqual({ namespace: 'u-rbs-08155ff6a83a21c41546', volume: 'u-vol-08155ff6a83a21c41546' });
  });

  it('tells apart users whose slugs coincide', () => {
    const names = ['alice', 'Alice', 'ALICE', 'alice.', '山田', '鈴木', '🦄', ''].map((user) => placementFor(user, '/src').namespace);
    expect(new Set(names).size).toBe(names.length);
  });

  it('gives valid labels of at most 63 characters for 200-character names', () => {
    const { namespace, volume } = placementFor('Ω'.repeat(10) + 'x'.repeat(190), '/w');
    expect(namespace).toMatch(/^x{38}-rbs-[0-9a-f]{20}$/);
    expect(isDns1123Label(namespace) && isDns1123Label(volume)).toBe(true);
  });

  it('gives valid, distinct names over generated hostile inputs', () => {
    let seed = 42;
    // mulberry32: a tiny seeded PRNG, so failures reproduce.
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    const alphabet = [...'aAzZ09-_. /\n\t\u0000\u007fë山🦄\u0308\u200d\u202e\u212aİß-', '--', '\ud800'];
    const pick = () => alphabet[Math.floor(random() * alphabet.length)];
    const text = (max: number) => Array.from({ length: Math.floor(random() * max) }, pick).join('');

    const pairs = new Map<string, [string, string]>();
    while (pairs.size < 5000) {
      let user: string;
      try {
        user = validateUserName(text(random() < 0.1 ? 200 : 20));
      } catch {
        continue; // placementFor is only given validated names
      }
      for (const variant of [user, user.toUpperCase(), user.toLowerCase()]) {
        const workspace = `/w/${Math.floor(random() * 3)}`;
        pairs.set(JSON.stringify([variant, workspace]), [variant, workspace]);
      }
    }

    const namespaces = new Set<string>();
    for (const [user, workspace] of pairs.values()) {
      const { namespace, volume } = placementFor(user, workspace);
      expect([namespace, isDns1123Label(namespace), isDns1123Label(volume)]).toEqual([namespace, true, true]);
      expect(volume).toBe(namespace.replace(/-rbs-(?=[0-9a-f]{20}$)/, '-vol-'));
      const slug = userSlug(user);
      expect([slug, /^[a-z]([a-z0-9]|-(?!-))*$/.test(slug) && !slug.endsWith('-') && slug.length <= 38]).toEqual([slug, true]);
      namespaces.add(namespace);
    }
    expect(namespaces.size).toBe(pairs.size);
  });
});

describe('workflow ids', () => {
  it('are the namespace with a prefix', () => {
    const { namespace } = placementFor('alice', '/src');
    expect(workflowIdFor(namespace)).toBe(`rbs-session-${namespace}`);
  });
});
