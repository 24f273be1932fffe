// `npm run lint` (part of `npm test`): typescript-eslint's recommended rules over the sources.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const node = {
  require: 'readonly',
  module: 'writable',
  process: 'readonly',
  console: 'readonly',
  __dirname: 'readonly',
  URL: 'readonly',
  URLSearchParams: 'readonly',
};

export default tseslint.config(
  { ignores: ['dist/**', 'gen/**', 'node_modules/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: node },
    rules: {
      // `_name`: deliberately unused (a rest sibling left out, a callback's unused parameter).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // Validators and escapers match control characters on purpose: they are what they refuse.
      'no-control-regex': 'off',
      // Errors rethrown from a catch carry their cause's message in their own text. A `cause` would
      // make the failure chain Temporal records end at the raw error, which the workflow reports.
      'preserve-caught-error': 'off',
    },
  },
  // CommonJS entry points (the CLI's bin, jest's sequencer).
  { files: ['**/*.js'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  // Tests reach into manifests and API objects whose shapes they check.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
