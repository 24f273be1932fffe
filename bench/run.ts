/** `npm run bench`: runs every benchmark, prints a table each and writes bench/results/<name>.json. */
import { benchControlPlane } from './control-plane';

benchControlPlane().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
