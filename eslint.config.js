import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** An import pattern matching relative imports of the named top-level folders of src/ (at any `../` depth). */
const layer = (folders, message) => ({ regex: `^(\\.\\./)+(${folders})(/|$)`, message });

export default tseslint.config(
  { ignores: ['dist/', '**/dist/', 'node_modules/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read the environment in src/config.ts only.' }],
    },
  },
  { files: ['src/config.ts', 'test/**', 'bench/**', 'vitest.config.ts'], rules: { 'no-restricted-properties': 'off' } },
  // Tests read response bodies loosely on purpose: the published schema check types them.
  { files: ['test/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  // Dependencies run one way: http/ → domain/ ← store/. The domain owns the ports (the
  // repository interfaces in src/domain/ports/ and the types they carry); the store implements
  // them; engine/ and delivery/ use them. Relative paths of any depth are matched.
  {
    files: ['src/domain/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [layer('store|delivery|engine|http|cli', 'src/domain/ imports nothing from store/, delivery/, engine/, http/ or cli/: the domain owns the ports; the store implements them (declare what is needed in src/domain/ports/)')] }],
    },
  },
  {
    files: ['src/store/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [layer('http|engine|delivery|cli', 'src/store/ depends on the domain, never on http/, engine/, delivery/ or cli/: the domain owns the ports; the store implements them')] }],
    },
  },
  {
    files: ['src/http/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [layer('store', 'src/http/ reaches the database only through domain services: the domain owns the ports; the store implements them')] }],
    },
  },
);
