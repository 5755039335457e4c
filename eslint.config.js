// @ts-check
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Node's globals for plain .js/.mjs files (TypeScript files get them from @types/node, and
// typescript-eslint turns no-undef off there). Listed here rather than pulling in `globals`.
const nodeGlobals = Object.fromEntries(
  [
    'process', 'console', 'Buffer', 'URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder',
    'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate',
    'clearImmediate', 'queueMicrotask', 'structuredClone', 'AbortController', 'AbortSignal',
    'fetch', 'performance',
  ].map((name) => [name, /** @type {const} */ ('readonly')]),
);

export default defineConfig(
  // .scratch/ is local, untracked experimentation.
  { ignores: ['dist/', 'node_modules/', 'src/generated/', 'coverage/', 'docs/api/', '.scratch/'] },
  js.configs.recommended,
  // Not the type-checked presets: linting stays fast and needs no tsconfig project service.
  tseslint.configs.recommended,
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
);
