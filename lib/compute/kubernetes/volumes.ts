/**
 * The (user, workspace) volume outlives namespaces as a retained PersistentVolume that each new
 * session's claim re-binds (docs/kubernetes-backend.md has the decision and its trade-offs):
 *
 * - first session: the claim, named after the volume, asks the StorageClass for a volume; it stays
 *   Pending until the agent pod is scheduled (WaitForFirstConsumer), then the CSI driver provisions
 *   and binds it. Once the agent is ready, retain() labels that PV with the volume name and sets
 *   Retain, so deleting the namespace releases the PV but keeps it (and its data).
 * - later sessions: ensure() finds the PV by label, points its claimRef at the new namespace's claim
 *   (dropping the old claim's uid), and creates the claim with `volumeName`: the PV controller binds
 *   the two at once.
 * - expiry: remove() backs up (if wired), sets Delete and deletes the PV; the CSI driver deletes the share.
 */
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { KubeApi } from './api';
import { MERGE_PATCH, apply } from './apply';
import type { KubernetesBackendConfig } from './config';
import { LABEL, releaseLabels, selector, workspaceClaim } from './objects';
import { parseQuantity } from './quantity';
import { deleteIfPresent, hasStatus, kubeRequest, readOrNull, waitUntilGone } from './requests';

/**
 * What the backend asks of the storage behind the volumes (lib/filestore's WorkspaceStorage fits):
 * optional, without it volumes are provisioned and deleted as the StorageClass does.
 */
export interface WorkspaceStorageHooks {
  /** Before the first claim of a new volume of `gib`: throws if the storage cannot hold it. */
  checkCapacity(gib: number): Promise<unknown>;
  /** Before a volume is deleted for good: backs up its share (a CSI volume handle) and waits for it. */
  backupBeforeDelete(volumeHandle: string): Promise<unknown>;
}

/** Under the teardown activity's one-minute limit: a slower deletion is picked up by its retry. */
const DELETE_WAIT_MS = 45_000;
const CONFLICT_ATTEMPTS = 3;
const GIB = 2 ** 30;

export class WorkspaceVolumes {
  constructor(
    private readonly api: KubeApi,
    private readonly config: KubernetesBackendConfig,
    private readonly storage?: WorkspaceStorageHooks,
  ) {}

  /** Makes the namespace's claim for `volume`: re-bound to the volume's PV if it has one. */
  async ensure(namespace: string, volume: string, sessionId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const pv = await this.find(volume);
      if (!pv) {
        await this.storage?.checkCapacity(Math.ceil(parseQuantity(this.config.profile.volumeSize) / GIB));
        await apply(this.api, workspaceClaim(namespace, volume, sessionId, this.config));
        return;
      }
      try {
        await this.reserve(pv, namespace, volume);
      } catch (err) {
        // The PV changed since we read it (the PV controller released it, say): read it again.
        if (hasStatus(err, 409) && attempt < CONFLICT_ATTEMPTS) continue;
        throw err;
      }
      const bound = { persistentVolume: pv.metadata!.name!, capacity: pv.spec!.capacity!.storage };
      await apply(this.api, workspaceClaim(namespace, volume, sessionId, this.config, bound));
      return;
    }
  }

  /** Labels the PV the namespace's claim is bound to as `volume` and keeps it past the claim. */
  async retain(namespace: string, volume: string): Promise<void> {
    const claim = await this.readClaim(namespace, volume);
    const name = claim?.spec?.volumeName;
    if (!name || claim?.status?.phase !== 'Bound') {
      throw new Error(`claim ${namespace}/${volume} is not bound (${claim?.status?.phase ?? 'missing'}): its PV cannot be retained yet`);
    }
    await apply(this.api, this.persistentVolumePolicy(name, 'Retain', volume));
  }

  /** Throws unless the volume's PV exists and is bound to a claim. */
  async checkBound(volume: string): Promise<void> {
    const pv = await this.find(volume);
    if (pv?.status?.phase !== 'Bound') {
      throw new Error(`volume ${volume} is not bound to a session's claim (${pv ? `PV ${pv.metadata?.name} is ${pv.status?.phase}` : 'no PV'})`);
    }
  }

  /** Deletes the volume and its data; returns once its PV is gone. */
  async remove(volume: string): Promise<void> {
    const pv = await this.find(volume);
    if (!pv) return;
    const name = pv.metadata!.name!;
    if (!pv.metadata?.deletionTimestamp) {
      if (pv.status?.phase === 'Bound') {
        throw new Error(`volume ${volume} (PV ${name}) is still bound to ${claimOf(pv)}: delete its namespace first`);
      }
      if (this.storage) {
        const handle = pv.spec?.csi?.volumeHandle;
        if (!handle) throw new Error(`PV ${name} of volume ${volume} has no CSI volume handle: it cannot be backed up before deletion`);
        await this.storage.backupBeforeDelete(handle);
      }
      // Delete, so that the CSI driver deletes the share along with the PV.
      await apply(this.api, this.persistentVolumePolicy(name, 'Delete', volume));
      await deleteIfPresent(`delete PV ${name}`, () => this.api.core.deletePersistentVolume({ name }));
    }
    await waitUntilGone(`PV ${name} of volume ${volume}`, () => this.read(name), DELETE_WAIT_MS);
  }

  /** The capacity of the volume's PV in bytes; null before its first session's agent was ready (no PV yet). */
  async size(volume: string): Promise<number | null> {
    const capacity = (await this.find(volume))?.spec?.capacity?.storage;
    // A quantity may be fractional (1.1Gi): whole bytes, as the store keeps them.
    return capacity === undefined ? null : Math.round(parseQuantity(capacity));
  }

  /** The one node the volume can be mounted on (a local volume's node affinity); null if any node can, or it has no PV yet. */
  async node(volume: string): Promise<string | null> {
    const pv = await this.find(volume);
    return pv ? onlyNodeOf(pv) : null;
  }

  /**
   * The volume's PV, found by its labels; null before its first session's agent was ready. Another
   * release's volume of the same name (same user and workspace) is not this one.
   */
  private async find(volume: string): Promise<V1PersistentVolume | null> {
    const labelSelector = selector(this.labels(volume));
    const list = await kubeRequest(`list PVs of volume ${volume}`, () => this.api.core.listPersistentVolume({ labelSelector }));
    if (list.items.length > 1) {
      const names = list.items.map((pv) => pv.metadata?.name).join(', ');
      throw new Error(`volume ${volume} has ${list.items.length} PVs (${names}): one must go before sessions can use it`);
    }
    return list.items[0] ?? null;
  }

  /** What marks a PV as this release's volume `volume`. */
  private labels(volume: string): Record<string, string> {
    return { ...releaseLabels(this.config.release), [LABEL.volume]: volume };
  }

  private persistentVolumePolicy(name: string, policy: 'Retain' | 'Delete', volume: string): V1PersistentVolume {
    return {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, labels: this.labels(volume) },
      spec: { persistentVolumeReclaimPolicy: policy },
    };
  }

  private readClaim(namespace: string, volume: string): Promise<V1PersistentVolumeClaim | null> {
    return readOrNull(`read claim ${namespace}/${volume}`, () => this.api.core.readNamespacedPersistentVolumeClaim({ name: volume, namespace }));
  }

  private read(name: string): Promise<V1PersistentVolume | null> {
    return readOrNull(`read PV ${name}`, () => this.api.core.readPersistentVolume({ name }));
  }

  /**
   * Points the PV's claimRef at the namespace's claim, so that nothing else can bind it meanwhile.
   * The namespace name is the same for every session of the volume: a claimRef naming it may still
   * carry the uid of an earlier session's claim, and only a claim with that uid would bind.
   */
  private async reserve(pv: V1PersistentVolume, namespace: string, volume: string): Promise<void> {
    const name = pv.metadata!.name!;
    if (pv.metadata?.deletionTimestamp) throw new Error(`PV ${name} is being deleted: its volume expired`);
    const ref = pv.spec?.claimRef;
    if (ref?.namespace === namespace && ref.name === volume) {
      if (!ref.uid) return; // reserved for this namespace's claim already
      const claim = await this.readClaim(namespace, volume);
      if (claim?.metadata?.uid === ref.uid) return; // bound to it already: this step ran before
    }
    if (pv.status?.phase === 'Bound') {
      throw new Error(`PV ${name} is still bound to ${claimOf(pv)} (uid ${ref?.uid}), an earlier session's claim: waiting for its release`);
    }
    // A merge patch replaces the claimRef whole, which drops the old claim's uid and resourceVersion;
    // the PV's resourceVersion makes it fail (409) if the PV changed since it was read.
    const patch = {
      metadata: { resourceVersion: pv.metadata!.resourceVersion },
      spec: {
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name: volume, uid: null, resourceVersion: null },
      },
    };
    await kubeRequest(`re-bind PV ${name} to ${namespace}/${volume}`, () => this.api.core.patchPersistentVolume({ name, body: patch }, MERGE_PATCH));
  }
}

/** The node a PV's affinity names as its only one (`kubernetes.io/hostname In [node]`, as local volumes have), else null. */
export function onlyNodeOf(pv: V1PersistentVolume): string | null {
  const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? [];
  if (terms.length !== 1 || terms[0].matchFields?.length) return null;
  const hosts = (terms[0].matchExpressions ?? []).filter((e) => e.key === 'kubernetes.io/hostname');
  const [host] = hosts;
  return hosts.length === 1 && host.operator === 'In' && host.values?.length === 1 ? host.values[0] : null;
}

function claimOf(pv: V1PersistentVolume): string {
  return `${pv.spec?.claimRef?.namespace}/${pv.spec?.claimRef?.name}`;
}
