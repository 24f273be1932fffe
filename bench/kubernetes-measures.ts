/**
 * What the Kubernetes benchmark measures besides time: the requests the apiserver served (its own
 * /metrics) and the CPU each process of the system used (/proc), both as differences of two readings.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { statFields } from '../lib/proc-stat';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Row } from './stats';

/** Requests the apiserver has served, by verb and by verb and resource, and those of two callers. */
export interface ApiRequests {
  byVerb: Record<string, number>;
  /** E.g. 'PUT resourcequotas/status': who does what. */
  byRequest: Record<string, number>;
  /**
   * The fake volume provisioner's own overhead: it polls (a LIST of all claims and one of all PVs)
   * where a real one watches, and creates a claim's PV again (409) until the PV controller binds it.
   */
  fakeProvisioner: number;
  /**
   * The worker (or the ceiling's client, with its identity) is the only ServiceAccount calling, so the only caller
   * in APF's `service-accounts` flow schema: controllers, kwok and the fake provisioner are in others.
   */
  worker: number;
}

export async function apiRequests(admin: KubeConfig): Promise<ApiRequests> {
  const result: ApiRequests = { byVerb: {}, byRequest: {}, fakeProvisioner: 0, worker: 0 };
  const add = (counts: Record<string, number>, key: string, n: number) => (counts[key] = (counts[key] ?? 0) + n);
  for (const line of (await scrapeMetrics(admin)).split('\n')) {
    const [, metric, labels, value] = /^(\w+)\{(.*)\} (\S+)$/.exec(line) ?? [];
    const label = (name: string) => new RegExp(`(?:^|,)${name}="([^"]*)"`).exec(labels)?.[1];
    if (metric === 'apiserver_request_total') {
      const [verb, resource, subresource, n] = [label('verb')!, label('resource'), label('subresource'), Number(value)];
      add(result.byVerb, verb, n);
      add(result.byRequest, `${verb} ${resource}${subresource ? `/${subresource}` : ''}`, n);
      if (verb === 'LIST' && resource === 'persistentvolumeclaims' && label('scope') === 'cluster') result.fakeProvisioner += 2 * n; // and one of PVs
      if (verb === 'POST' && resource === 'persistentvolumes' && label('code') === '409') result.fakeProvisioner += n;
    } else if (metric === 'apiserver_flowcontrol_dispatched_requests_total' && label('flow_schema') === 'service-accounts') {
      result.worker += Number(value);
    }
  }
  return result;
}

async function scrapeMetrics(admin: KubeConfig): Promise<string> {
  const options: https.RequestOptions = {};
  await admin.applyToHTTPSOptions(options);
  return new Promise<string>((resolve, reject) => {
    const request = https.get(new URL('/metrics', admin.getCurrentCluster()!.server), options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: ${res.statusCode}: ${body.slice(0, 200)}`))));
    });
    request.on('error', reject);
  });
}

/** The requests between two readings, per session, busiest first. */
export function requestsPerSession(before: ApiRequests, after: ApiRequests, sessions: number): ApiRequests {
  const per = (a: number, b = 0) => (a - b) / sessions;
  const perKey = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(a)
        .map(([key, n]): [string, number] => [key, per(n, b[key])])
        .filter(([, n]) => n !== 0)
        .sort((x, y) => y[1] - x[1]),
    );
  return {
    byVerb: perKey(after.byVerb, before.byVerb),
    byRequest: perKey(after.byRequest, before.byRequest),
    fakeProvisioner: per(after.fakeProvisioner, before.fakeProvisioner),
    worker: per(after.worker, before.worker),
  };
}

/** A phase's requests per session: all, by verb if asked, and the worker's. */
export function requestRows(phase: string, requests: ApiRequests, byVerb: boolean): Row[] {
  const total = Object.values(requests.byVerb).reduce((a, b) => a + b, 0);
  const verbs = byVerb ? Object.entries(requests.byVerb).map(([verb, n]): Row => ({ metric: `  ${verb}`, value: n, unit: 'requests' })) : [];
  return [
    { metric: `API requests per session ${phase} (all clients)`, value: total, unit: 'requests' },
    ...verbs,
    { metric: "  of which the fake provisioner's overhead", value: requests.fakeProvisioner, unit: 'requests' },
    { metric: `API requests per session ${phase} by the worker`, value: requests.worker, unit: 'requests' },
  ];
}

export interface CpuUse {
  /** CPU seconds, all processes together and each, the busiest first. */
  total: number;
  byProcess: Record<string, number>;
}

/**
 * Starts counting the CPU of the processes whose command line names `marker` (the control plane's
 * state directory), of `named` ones, and of this one; the function returned reads the count so far.
 */
export function startCpuMeter(marker: string, named: Map<string, number>): () => CpuUse {
  const processes = new Map(named);
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const argv = readProc(pid, 'cmdline')?.split('\0') ?? [];
    if (argv.some((arg) => arg.includes(marker))) processes.set(path.basename(argv[0]), Number(pid));
  }
  processes.set('bench (clients)', process.pid);
  const before = cpuSeconds(processes);
  return () => {
    const used = Object.entries(cpuSeconds(processes)).map(([name, s]): [string, number] => [name, s - before[name]]);
    used.sort((a, b) => b[1] - a[1]);
    return { total: used.reduce((sum, [, s]) => sum + s, 0), byProcess: Object.fromEntries(used) };
  };
}

/**
 * Confines each process, all its threads and those it starts later, to the given CPUs: the first half
 * of this machine's for the control plane, the rest for the others, as a cluster's apiserver and
 * etcd run on machines of their own. Returns the two sets, as taskset names them.
 */
export function splitCores(controlPlane: number[], others: number[]): { controlPlane: string; others: string } {
  const cpus = os.cpus().length;
  if (cpus < 2) throw new Error(`splitting the cores needs at least 2 CPUs, not ${cpus}`);
  const half = Math.floor(cpus / 2);
  const sets = { controlPlane: `0-${half - 1}`, others: `${half}-${cpus - 1}` };
  const pin = (pids: number[], set: string) => pids.forEach((pid) => execFileSync('taskset', ['-a', '-p', '-c', set, String(pid)], { stdio: 'ignore' }));
  pin(controlPlane, sets.controlPlane);
  pin(others, sets.others);
  return sets;
}

/** User + system CPU seconds of each process so far (utime and stime of /proc/<pid>/stat, in USER_HZ = 100). */
function cpuSeconds(processes: Map<string, number>): Record<string, number> {
  return Object.fromEntries(
    [...processes].map(([name, pid]) => {
      const stat = readProc(pid, 'stat') ?? '';
      const fields = statFields(stat);
      return [name, (Number(fields[11]) + Number(fields[12])) / 100];
    }),
  );
}

function readProc(pid: number | string, file: string): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null; // gone meanwhile
  }
}
