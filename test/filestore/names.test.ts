import { protectionId, regionOf } from '../../lib/filestore/names';

describe('protectionId', () => {
  const VALID_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

  it('is readable, stable and a valid backup or snapshot id', () => {
    const id = protectionId('modeInstance/us-central1-a/pvc-1/vol1', 'pvc-1');
    expect(id).toMatch(/^rbs-pvc-1-[0-9a-f]{10}$/);
    expect(id).toMatch(VALID_ID);
    expect(protectionId('modeInstance/us-central1-a/pvc-1/vol1', 'pvc-1')).toBe(id);
  });

  it('stays within 63 characters and keeps volumes apart when it truncates the instance id', () => {
    const longest = 'p'.repeat(63);
    expect(protectionId(`modeInstance/us-central1-a/${longest}/vol1`, longest)).toMatch(/^rbs-p{48}-[0-9a-f]{10}$/);
    // A cut that ends in '-' is trimmed: ids must not have '--' before the hash.
    const hyphens = `i${'-'.repeat(47)}${'x'.repeat(15)}`;
    const a = protectionId(`modeInstance/us-central1-a/${hyphens}/vol1`, hyphens);
    const b = protectionId(`modeInstance/us-central1-b/${hyphens}/vol1`, hyphens);
    expect(a).toMatch(/^rbs-i-[0-9a-f]{10}$/);
    expect(a).toMatch(VALID_ID);
    expect(a).not.toBe(b);
  });
});

describe('regionOf', () => {
  it.each([
    ['us-central1-c', 'us-central1'],
    ['us-central1', 'us-central1'],
    ['northamerica-northeast1-a', 'northamerica-northeast1'],
  ])('%s is in %s', (location, region) => expect(regionOf(location)).toBe(region));

  it('rejects what is not a location', () => expect(() => regionOf('projects/p')).toThrow('not a Filestore location'));
});
