import { formatVolumeHandle, parseVolumeHandle } from '../../lib/filestore/volume-handle';
import { InvalidInputError } from '../../lib/validate';

describe('parseVolumeHandle', () => {
  it.each([
    [
      // The CSI driver's own examples (controller_test.go), and a GKE-provisioned PV's handle.
      'modeInstance/us-central1-c/test-csi/vol1',
      { mode: 'instance', location: 'us-central1-c', instance: 'test-csi', share: 'vol1' },
    ],
    ['modeInstance/us-central1/myinstance/myshare', { mode: 'instance', location: 'us-central1', instance: 'myinstance', share: 'myshare' }],
    [
      'modeInstance/europe-west4-a/pvc-6f0f4d4e-8d1b-4a3c-9a57-0a1b2c3d4e5f/vol1',
      { mode: 'instance', location: 'europe-west4-a', instance: 'pvc-6f0f4d4e-8d1b-4a3c-9a57-0a1b2c3d4e5f', share: 'vol1' },
    ],
    [
      'modeMultishare/test-prefix/test-project/us-central1/fs-0a1b2c3d/pvc_6f0f4d4e_8d1b_4a3c_9a57_0a1b2c3d4e5f',
      {
        mode: 'multishare',
        instancePrefix: 'test-prefix',
        project: 'test-project',
        location: 'us-central1',
        instance: 'fs-0a1b2c3d',
        share: 'pvc_6f0f4d4e_8d1b_4a3c_9a57_0a1b2c3d4e5f',
      },
    ],
    [
      'modeMultishare/enterprise_rwx/123456789012/northamerica-northeast1/fs-x1/share_1',
      {
        mode: 'multishare',
        instancePrefix: 'enterprise_rwx',
        project: '123456789012',
        location: 'northamerica-northeast1',
        instance: 'fs-x1',
        share: 'share_1',
      },
    ],
  ])('reads %s and writes it back', (handle, parsed) => {
    expect(parseVolumeHandle(handle)).toEqual(parsed);
    expect(formatVolumeHandle(parseVolumeHandle(handle))).toBe(handle);
  });

  it.each([
    ['', /must start with 'modeInstance\/' or 'modeMultishare\/'/],
    ['us-central1-c/inst/vol1', /must start with/],
    ['modeinstance/us-central1-c/inst/vol1', /must start with/],
    ['modeInstance/us-central1-c/inst', /must have 3 parts .* got 2/],
    ['modeInstance/us-central1-c/inst/vol1/extra', /must have 3 parts .* got 4/],
    ['modeInstance//inst/vol1', /invalid location ""/],
    ['modeInstance/us-central1-c/inst/', /invalid share ""/],
    ['modeInstance/US-CENTRAL1-C/inst/vol1', /invalid location/],
    ['modeInstance/us-central1-c/Inst/vol1', /invalid instance "Inst"/],
    ['modeInstance/us-central1-c/inst-/vol1', /invalid instance/],
    ['modeInstance/us-central1-c/1inst/vol1', /invalid instance/],
    [`modeInstance/us-central1-c/${'a'.repeat(64)}/vol1`, /invalid instance/],
    ['modeInstance/us-central1-c/inst/vol-1', /invalid share "vol-1"/],
    ['modeInstance/us-central1-c/inst/_vol', /invalid share/],
    ['modeInstance/us-central1-c/../vol1', /invalid instance/],
    ['modeMultishare/prefix/project-x/us-central1/fs-1', /must have 5 parts .* got 4/],
    ['modeMultishare//project-x/us-central1/fs-1/share', /invalid instancePrefix ""/],
    ['modeMultishare/Prefix/project-x/us-central1/fs-1/share', /invalid instancePrefix/],
    ['modeMultishare/prefix/Project/us-central1/fs-1/share', /invalid project/],
    ['modeMultishare/prefix/p/us-central1/fs-1/share', /invalid project "p"/],
  ])('rejects %j', (handle, message) => {
    expect(() => parseVolumeHandle(handle)).toThrow(InvalidInputError);
    expect(() => parseVolumeHandle(handle)).toThrow(message);
  });

  it('names the field at fault for callers that report bad input', () => {
    try {
      parseVolumeHandle('modeInstance/x');
      throw new Error('expected a failure');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidInputError);
      expect((err as InvalidInputError).field).toBe('volumeHandle');
    }
  });
});

describe('formatVolumeHandle', () => {
  it('refuses to write a handle it could not read back', () => {
    expect(() => formatVolumeHandle({ mode: 'instance', location: 'us-central1-c', instance: 'a/b', share: 'vol1' })).toThrow(InvalidInputError);
  });
});
