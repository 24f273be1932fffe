/**
 * Exactly the API access KubernetesBackend uses, as RBAC rules: the helm chart's ClusterRole for
 * the worker is checked against this list, and the backend's tests run with nothing more.
 *
 * Server-side apply is a `patch` that needs `create` too when the object does not exist yet.
 * Secrets: the worker writes one per session and reads only that one (by name), never the rest.
 */
import type { V1PolicyRule } from '@kubernetes/client-node';
import { AGENT, GATEWAY_API_GROUP, OPTIONAL_AGENT_POLICIES } from './objects';

export const BACKEND_RULES: V1PolicyRule[] = [
  // ensureNamespace reads and applies; deleteNamespace deletes and watches it go; cleanup lists.
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  // The namespace's fixed contents and the workspace claim, applied.
  {
    apiGroups: [''],
    resources: ['serviceaccounts', 'services', 'resourcequotas', 'limitranges', 'persistentvolumeclaims'],
    verbs: ['create', 'patch'],
  },
  // applyAgentPolicies lists them to find optional ones no longer configured.
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['list', 'create', 'patch'] },
  // Only the optional ones, once no longer configured: never default-deny, agent-ingress or agent-egress (though create and patch above reach every policy).
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], resourceNames: Object.values(OPTIONAL_AGENT_POLICIES), verbs: ['delete'] },
  // retain() reads which PV the claim is bound to.
  { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  { apiGroups: [''], resources: ['secrets'], resourceNames: [AGENT.tlsSecret], verbs: ['get', 'patch'] },
  // The agent: applied, read, watched until ready, listed by cleanup, deleted on suspend and watched going.
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  // Why an agent pod was never Ready (a volume that did not mount, a probe that never passed): its last warning.
  { apiGroups: [''], resources: ['events'], verbs: ['list'] },
  // Whether an agent's node still exists (agentProblem, deletePod): a deleted node's pods are gone.
  { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
  // Volumes: found by label, re-bound and retained (patch), deleted when they expire.
  { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get', 'list', 'patch', 'delete'] },
];

/** With a gateway (RBS_KUBE_GATEWAY), also: each session's TLSRoute, applied, and read for its status. */
export const GATEWAY_RULES: V1PolicyRule[] = [{ apiGroups: [GATEWAY_API_GROUP], resources: ['tlsroutes'], verbs: ['get', 'create', 'patch'] }];
