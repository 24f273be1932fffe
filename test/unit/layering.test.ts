/** Layering points one way: lib/ never imports workflows/, activities/ or services/ (they import lib/). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../lib/local/tools';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(file) : file.endsWith('.ts') ? [file] : [];
  });
}

test('no module of lib/ imports from workflows/, activities/ or services/', () => {
  const lib = path.join(repoRoot(), 'lib');
  const above = ['workflows', 'activities', 'services'].map((d) => path.join(repoRoot(), d) + path.sep);
  const crossings = sources(lib).flatMap((file) =>
    [...fs.readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)]
      .map(([, specifier]) => path.resolve(path.dirname(file), specifier))
      .filter((target) => above.some((dir) => target.startsWith(dir)))
      .map((target) => `${path.relative(repoRoot(), file)} → ${path.relative(repoRoot(), target)}`),
  );
  expect(crossings).toEqual([]);
});
