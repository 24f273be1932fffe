/**
 * The session's TLSRoute as its Gateway judged it. A gateway that does not accept the route (no
 * listener for its host, or none that admits session namespaces) says so in the route's status,
 * for good: the session then fails naming that reason instead of leaving proxies to time out on a
 * host that leads nowhere. Only a verdict on the route as it is now counts (observedGeneration);
 * unresolved references are left alone, since they may be a controller's view from before the
 * Service existed. No status yet is no verdict: controllers write it when they can.
 */
import type { GatewayRef } from './config';
import { GATEWAY_API_GROUP, type TlsRoute } from './objects';

interface RouteCondition {
  type: string;
  status: string;
  observedGeneration?: number;
  reason?: string;
  message?: string;
}

/** TLSRoute status: one entry per parent (Gateway) and controller. */
export interface RouteStatus {
  parents?: Array<{
    parentRef: { group?: string; kind?: string; namespace?: string; name: string };
    controllerName?: string;
    conditions?: RouteCondition[];
  }>;
}

/** Why `gateway` refuses the route, or null while it has not refused it. */
export function routeRefusal(route: TlsRoute & { status?: RouteStatus }, gateway: GatewayRef): string | null {
  const generation = route.metadata?.generation;
  const ours = (route.status?.parents ?? []).filter(
    ({ parentRef: ref }) =>
      (ref.group ?? GATEWAY_API_GROUP) === GATEWAY_API_GROUP &&
      (ref.kind ?? 'Gateway') === 'Gateway' &&
      ref.name === gateway.name &&
      (ref.namespace ?? route.metadata?.namespace) === gateway.namespace,
  );
  for (const parent of ours) {
    const refused = (parent.conditions ?? []).find(
      (c) =>
        c.type === 'Accepted' &&
        c.status === 'False' &&
        (generation === undefined || c.observedGeneration === undefined || c.observedGeneration === generation),
    );
    if (refused) {
      const by = parent.controllerName ? ` (${parent.controllerName})` : '';
      return `Gateway ${gateway.namespace}/${gateway.name}${by} does not take the route: ${refused.type}=False, ${refused.reason ?? 'no reason'}: ${refused.message ?? ''}`.trim();
    }
  }
  return null;
}
