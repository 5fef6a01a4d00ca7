// Interactive API docs at /docs: Swagger UI (@fastify/swagger-ui, its files self-hosted from
// the package) over the OpenAPI document the routes generate, served live at /docs/json — the
// same document as openapi/openapi.json, /v2 routes included. Registered only when
// API_DOCS_ENABLED. Hidden from the document itself.
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { securityHeaders } from './security-headers.js'

// Swagger UI's own files and this origin only. The logo is a data: URL; the online validator
// badge stays off (validatorUrl null is the plugin's default), so nothing leaves the page.
// Swagger UI sets one inline style attribute; it is allowed by its hash, nothing else inline
// (test/ui/browser.test.ts fails on any violation, so a new Swagger UI that sets another one
// shows here with its hash).
const SWAGGER_UI_INLINE_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
export const API_DOCS_CSP = `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-hashes' ${SWAGGER_UI_INLINE_STYLE}; img-src 'self' data:; ` +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

export default async function apiDocs (app: FastifyInstance): Promise<void> {
  securityHeaders(app, API_DOCS_CSP)
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { deepLinking: true, docExpansion: 'list', tryItOutEnabled: false },
    theme: { title: 'isomax-serve API' }
  })
}
