/** `npm run bench`: runs every benchmark, prints a table each and writes bench/results/<name>.json. */
import { benchBazelRun } from './bazel-run';
import { benchControlPlane } from './control-plane';
import { benchDataPath } from './data-path';
import { benchKubernetes } from './kubernetes';
import { benchOutputs } from './outputs';
import { benchRealNode } from './real-node';
import { benchSoak } from './soak';

async function main() {
  await benchControlPlane();
  await benchDataPath();
  await benchOutputs();
  await benchBazelRun();
  await benchKubernetes('split');
  await benchKubernetes('shared');
  await benchRealNode();
  await benchSoak();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
