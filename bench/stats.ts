/** Small helpers every benchmark shares: percentiles, a printed table, a JSON file. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export interface Row {
  metric: string;
  value: number;
  unit: string;
  aim?: string;
}

export function report(name: string, rows: Row[], details: Record<string, unknown> = {}): string {
  const table = [['metric', 'value', 'unit', 'aim'], ...rows.map((r) => [r.metric, r.value.toFixed(2), r.unit, r.aim ?? ''])];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  console.log(`\n${name}`);
  for (const row of table) console.log(`  ${row.map((c, i) => (i === 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')}`);
  const file = path.resolve(__dirname, '..', '..', 'bench', 'results', `${name}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ name, at: new Date().toISOString(), rows, details }, null, 2));
  console.log(`  → ${path.relative(process.cwd(), file)}`);
  return file;
}
