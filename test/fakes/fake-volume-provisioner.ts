/**
 * A fake of the Filestore CSI driver's external provisioner, which cannot run without GCP. It does
 * the provisioner's part only; the real scheduler and kube-controller-manager do the rest:
 *
 * - a PVC of the fake StorageClass (WaitForFirstConsumer) that the scheduler has picked a node for
 *   (annotation volume.kubernetes.io/selected-node) gets a PV: driver filestore.csi.storage.gke.io,
 *   a fake volumeHandle, claimRef to the PVC; the PV controller then binds them;
 * - a Released PV whose policy is Delete is deleted, and a deleted PV (it carries the provisioner's
 *   finalizer, as with HonorPVReclaimPolicy) has its "share" deleted if its policy is Delete, then
 *   the finalizer removed.
 *
 * It polls rather than watches: a fake that is simple to trust beats one that is fast.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CoreV1Api,
  StorageV1Api,
  type KubeConfig,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1PersistentVolumeSpec,
} from '@kubernetes/client-node';

export const FAKE_CSI_DRIVER = 'filestore.csi.storage.gke.io';
export const FAKE_STORAGE_CLASS = 'fake-filestore-rwx';
const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
const PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
const FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';
const POLL_MS = 100;

export interface FakeVolumeProvisioner {
  /** volumeHandles of the shares it made, and of those it deleted, in order. */
  readonly created: string[];
  readonly deleted: string[];
  /** While true, a local volume's directory is not made: the kubelet cannot mount it. */
  skipLocalDirectories: boolean;
  stop(): Promise<void>;
}

/**
 * A real node's volumes: a claim whose selected node is `node` gets a `local` volume in a new directory under
 * `dir` (the kubelet really mounts it, and applies the pod's fsGroup), removed with its volume.
 */
export interface LocalVolumes {
  node: string;
  dir: string;
}

/** The PV made for a claim is named after its uid, as the external-provisioner names it. */
const volumeNameOf = (claim: V1PersistentVolumeClaim) => `pvc-${claim.metadata!.uid}`;

/** Creates the fake StorageClass (if missing) and provisions for it until stop(). */
export async function startFakeVolumeProvisioner(kubeConfig: KubeConfig, local?: LocalVolumes): Promise<FakeVolumeProvisioner> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const storage = kubeConfig.makeApiClient(StorageV1Api);
  await storage
    .createStorageClass({
      body: {
        metadata: { name: FAKE_STORAGE_CLASS },
        provisioner: FAKE_CSI_DRIVER,
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Delete',
      },
    })
    .catch((err: { code?: number }) => {
      if (err.code !== 409) throw err;
    });

  const created: string[] = [];
  const deleted: string[] = [];
  let running = true;
  let loop: Promise<void> = Promise.resolve();
  const provisioner: FakeVolumeProvisioner = {
    created,
    deleted,
    skipLocalDirectories: false,
    async stop() {
      running = false;
      await loop;
    },
  };

  async function provision(claim: V1PersistentVolumeClaim): Promise<void> {
    const name = volumeNameOf(claim);
    const onNode = local && claim.metadata!.annotations![SELECTED_NODE] === local.node ? local : undefined;
    const volumeHandle = onNode ? path.join(onNode.dir, name) : `modeInstance/fake-zone/fake-${claim.metadata!.uid}/vol1`;
    if (onNode && !provisioner.skipLocalDirectories) fs.mkdirSync(volumeHandle, { recursive: true });
    const source: Pick<V1PersistentVolumeSpec, 'csi' | 'local' | 'nodeAffinity'> = onNode
      ? {
          local: { path: volumeHandle },
          nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [onNode.node] }] }] } },
        }
      : { csi: { driver: FAKE_CSI_DRIVER, volumeHandle, volumeAttributes: { ip: '10.9.0.2', volume: 'vol1' } } };
    const body: V1PersistentVolume = {
      metadata: { name, annotations: { [PROVISIONED_BY]: FAKE_CSI_DRIVER }, finalizers: [FINALIZER] },
      spec: {
        capacity: { storage: claim.spec!.resources!.requests!.storage },
        accessModes: claim.spec!.accessModes,
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: FAKE_STORAGE_CLASS,
        volumeMode: 'Filesystem',
        ...source,
        claimRef: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          namespace: claim.metadata!.namespace,
          name: claim.metadata!.name,
          uid: claim.metadata!.uid,
        },
      },
    };
    try {
      await core.createPersistentVolume({ body });
      created.push(volumeHandle);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }

  async function reclaim(pv: V1PersistentVolume): Promise<void> {
    const name = pv.metadata!.name!;
    const deleteShare = pv.spec?.persistentVolumeReclaimPolicy === 'Delete';
    if (pv.metadata?.deletionTimestamp && pv.metadata.finalizers?.includes(FINALIZER)) {
      const localPath = pv.spec?.local?.path;
      if (deleteShare && local && localPath && path.dirname(localPath) === local.dir) fs.rmSync(localPath, { recursive: true, force: true });
      if (deleteShare) deleted.push(pv.spec?.local?.path ?? pv.spec!.csi!.volumeHandle);
      const finalizers = pv.metadata.finalizers.filter((f) => f !== FINALIZER);
      const patch = [
        { op: 'test', path: '/metadata/resourceVersion', value: pv.metadata.resourceVersion },
        { op: 'replace', path: '/metadata/finalizers', value: finalizers },
      ];
      await core.patchPersistentVolume({ name, body: patch });
    } else if (deleteShare && pv.status?.phase === 'Released' && !pv.metadata?.deletionTimestamp) {
      await core.deletePersistentVolume({ name });
    }
  }

  async function reconcile(): Promise<void> {
    const [claims, volumes] = await Promise.all([core.listPersistentVolumeClaimForAllNamespaces(), core.listPersistentVolume()]);
    // A claim whose PV is made but not yet bound by the PV controller is not provisioned again (as a real
    // provisioner remembers): under a burst, binding lags by seconds, and each poll would post a conflict.
    const made = new Set(volumes.items.map((pv) => pv.metadata?.name));
    const waiting = claims.items.filter(
      (c) => c.spec?.storageClassName === FAKE_STORAGE_CLASS && !c.spec.volumeName && c.metadata?.annotations?.[SELECTED_NODE] && !made.has(volumeNameOf(c)),
    );
    const ours = volumes.items.filter((pv) => pv.metadata?.annotations?.[PROVISIONED_BY] === FAKE_CSI_DRIVER);
    await Promise.all([...waiting.map(provision), ...ours.map(reclaim)]);
  }

  loop = (async () => {
    while (running) {
      // A conflict or a vanished object is the next round's business.
      await reconcile().catch((err) => {
        if (![404, 409, 422].includes((err as { code?: number }).code ?? 0)) console.warn(`fake volume provisioner: ${err}`);
      });
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();

  return provisioner;
}
