// ESLint: neostandard (the Fastify ecosystem's style) with TypeScript, over the service, its
// tools, tests and scripts. `npm run lint` in .ci/run.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**', 'training/**', '.ci/**', 'tmp/**'] }),
  {
    rules: {
      // `void promise` marks a deliberately unawaited promise (fire-and-forget, Fastify's
      // reply.send in a callback); as an expression it stays an error.
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    // The try-it page's browser modules: tsc (tsconfig.ui.json) checks every name against the
    // DOM's types, as it does for TypeScript, where typescript-eslint turns no-undef off too.
    files: ['src/ui/public/**/*.js'],
    rules: { 'no-undef': 'off' }
  }
]
