/**
 * Pins the placement hashes to Ceph's published values: rjenkins object-name hashes as
 * reported by `ceph osd map` on a real cluster, crush_hash32_2, and stable_mod's split rule.
 */
import test from 'ava';
import { crushHash32_2, crushHash32_3, stableMod, stableModMask, strHashRjenkins } from '../src/common/hash.js';

test('strHashRjenkins matches ceph_str_hash_rjenkins vectors', (t) => {
  const vectors: [string, number][] = [
    ['foo', 0x7fc1f406], ['bar', 0xefe6384b], ['obj', 0xaabc5e21], ['e', 0xef61efce],
    ['ns1\x1ffoo', 0xf4569544], ['users.uid\x1ftestuser', 0xa13aa4c1], ['gc\x1fgc.0', 0x031bb659], ['object1', 0xbac5debc],
  ];
  for (const [s, want] of vectors) t.is(strHashRjenkins(s), want, JSON.stringify(s));
});

test('crushHash32_2 matches Ceph for pg 2.a', (t) => {
  t.is(crushHash32_2(10, 2), 1838530675);
});

test('crushHash32_3 is a fixed function (pinned vector)', (t) => {
  t.deepEqual([crushHash32_3(0, 0, 0), crushHash32_3(1, 2, 3), crushHash32_3(0xffffffff, 7, 1)], [2050749362, 1935332395, 3679881205]);
});

test('stableMod equals x mod 2^k at powers of two and splits one PG at a time', (t) => {
  t.is(stableModMask(12), 15);
  for (let x = 0; x < 4096; x++) t.is(stableMod(x, 8), x % 8);
  // Growing 8 → 9: only objects of PG 0 may move, and only to PG 8.
  for (let x = 0; x < 4096; x++) {
    const a = stableMod(x, 8);
    const b = stableMod(x, 9);
    if (a !== b) {
      t.is(a, 0);
      t.is(b, 8);
    }
  }
});
