#!/usr/bin/env node
// The `rbs` command (npx rbs …). The TypeScript sources are compiled to dist/ by `npm run build`.
require('../dist/cli/main.js');
