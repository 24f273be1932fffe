/**
 * Which faults a chaos run injects, and when: every fault point at every phase of a command, in an
 * order drawn from a seed. The first cases of any order cover every point once before any point
 * repeats, so a bounded run still touches them all. Printed as `point@phase`, a case list is
 * replayed with the same seed.
 */

/** Where a fault strikes. */
export const FAULT_POINTS = [
  'agent-kill', // SIGKILL of the session's agent
  'agent-freeze', // SIGSTOP of the agent until the command has ended
  'bazel-kill', // SIGKILL of the session's Bazel server
  'bazel-freeze', // SIGSTOP of the Bazel server until the command has ended
  'proxy-kill', // SIGKILL of the laptop's proxy
  'proxy-freeze', // SIGSTOP of the proxy for a few seconds (the client waits for it, as for a local server)
  'interrupt', // Ctrl-C in the client
  'agent-partition', // the network between proxy and agent goes silent until the command has ended
  'orchestrator-partition', // the same between proxy and orchestrator (between commands, with a new proxy that must get through)
] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

/** When it strikes: between commands, or during a command's sync, remote run, or output fetch. */
export const PHASES = ['idle', 'sync', 'run', 'fetch'] as const;
export type Phase = (typeof PHASES)[number];

export interface ChaosCase {
  point: FaultPoint;
  phase: Phase;
}

export const caseName = (c: ChaosCase) => `${c.point}@${c.phase}`;

/** A small, fast, seeded generator (mulberry32): the same seed, the same draws. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every meaningful case (a Ctrl-C needs a command to interrupt). */
export function allCases(): ChaosCase[] {
  return FAULT_POINTS.flatMap((point) => PHASES.filter((phase) => !(point === 'interrupt' && phase === 'idle')).map((phase) => ({ point, phase })));
}

/** `count` cases from `seed`; past the end of allCases() the order starts over, drawn afresh. */
export function chooseCases(seed: number, count: number): ChaosCase[] {
  const random = seededRandom(seed);
  const chosen: ChaosCase[] = [];
  while (chosen.length < count) {
    const shuffled = allCases()
      .map((c) => ({ c, key: random() }))
      .sort((a, b) => a.key - b.key)
      .map(({ c }) => c);
    // The k-th case of each point comes in the k-th round: every point before any repeats.
    const seen = new Map<FaultPoint, number>();
    const ranked = shuffled.map((c) => {
      const rank = seen.get(c.point) ?? 0;
      seen.set(c.point, rank + 1);
      return { c, rank };
    });
    chosen.push(...ranked.sort((a, b) => a.rank - b.rank).map(({ c }) => c));
  }
  return chosen.slice(0, count);
}
