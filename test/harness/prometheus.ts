/**
 * Reading a Prometheus endpoint as Prometheus would: promlint (scripts/promlint, what `promtool check
 * metrics` runs) judges the exposition, and samples are looked up by name and labels.
 */
import { spawnSync } from 'node:child_process';
import { promlintBinary } from '../../lib/local/tools';

export async function scrape(address: string): Promise<string> {
  const response = await fetch(`http://${address}/metrics`);
  if (response.status !== 200) throw new Error(`GET http://${address}/metrics: ${response.status} ${await response.text()}`);
  return response.text();
}

/** promlint's verdict: its problems, one per line, or why the exposition does not parse. */
export function lint(exposition: string): { parses: boolean; problems: string[] } {
  const result = spawnSync(promlintBinary(), { input: exposition, encoding: 'utf8' });
  if (result.status === 2) return { parses: false, problems: [result.stderr.trim()] };
  if (result.status !== 0 && result.status !== 1) throw new Error(`promlint failed (${result.status ?? result.signal}): ${result.stderr}`);
  return { parses: true, problems: result.stdout.split('\n').filter(Boolean) };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const unescape = (value: string) => value.replace(/\\(n|\\|")/g, (_, c: string) => (c === 'n' ? '\n' : c));

export function samples(exposition: string): Sample[] {
  return exposition.split('\n').flatMap((line) => {
    const match = SAMPLE.exec(line);
    if (!match || line.startsWith('#')) return [];
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(LABEL)].map(([, name, value]) => [name, unescape(value)]));
    return [{ name: match[1], labels, value: Number(match[3]) }];
  });
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function valueOf(exposition: string, name: string, labels: Record<string, string> = {}): number {
  return samples(exposition)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
