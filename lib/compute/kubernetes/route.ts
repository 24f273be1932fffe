/**
 * The session's TLSRoute as its Gateway judged it. A gateway controller that refuses the route
 * (a listener that admits no route from session namespaces, a missing Service) says so in the
 * route's status; the session then fails naming that reason instead of leaving proxies to time
 * out on a host that leads nowhere. No status yet is no verdict: controllers write it when they can.
 */
import type { GatewayRef } from './config';
import { GATEWAY_API_GROUP, type TlsRoute } from './objects';

interface RouteCondition {
  type: string;
  status: string;
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
  const ours = (route.status?.parents ?? []).filter(
    ({ parentRef: ref }) =>
      (ref.group ?? GATEWAY_API_GROUP) === GATEWAY_API_GROUP &&
      (ref.kind ?? 'Gateway') === 'Gateway' &&
      ref.name === gateway.name &&
      (ref.namespace ?? route.metadata?.namespace) === gateway.namespace,
  );
  for (const parent of ours) {
    const refused = (parent.conditions ?? []).find((c) => ['Accepted', 'ResolvedRefs'].includes(c.type) && c.status === 'False');
    if (refused) {
      const by = parent.controllerName ? ` (${parent.controllerName})` : '';
      return `Gateway ${gateway.namespace}/${gateway.name}${by} does not take the route: ${refused.type}=False, ${refused.reason ?? 'no reason'}: ${refused.message ?? ''}`.trim();
    }
  }
  return null;
}
