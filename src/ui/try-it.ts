// The try-it page at /: the files of src/ui/public as they are (no build step), and uPlot's
// browser build from node_modules for the calibration histogram. Registered only when
// UI_ENABLED; otherwise / is a 404 like any unknown route. Hidden from the OpenAPI document.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { PUBLIC_DIR } from './public-dir.js'
import { securityHeaders } from './security-headers.js'

// Nothing but this origin: scripts, styles and fonts (system fonts only) are all ours, images
// are ours or made in the page (the user's own file as a blob:, the model's input as data:),
// and the only requests go to this API.
export const TRY_IT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// uPlot's browser build and its stylesheet, served from the installed package.
const UPLOT_FILES = ['uPlot.iife.min.js', 'uPlot.min.css']

export const UPLOT_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist')

export interface TryItOptions {
  /** Folder of the page's files (default src/ui/public); tests point it elsewhere. */
  root?: string
}

export default async function tryItPage (app: FastifyInstance, opts: TryItOptions): Promise<void> {
  const root = opts.root ?? PUBLIC_DIR
  // Fail at start, not on the first visit, when an image or a build left the folder out.
  if (!existsSync(path.join(root, 'index.html'))) throw new Error(`UI_ENABLED: ${root}/index.html is missing (set UI_ENABLED=false to serve the API only)`)
  securityHeaders(app, TRY_IT_CSP)

  // wildcard: false makes one route per file found at start, so only those files can ever be
  // served (no request path is resolved against the disk) and any other path reaches the API's
  // JSON 404. The names are not fingerprinted, so browsers revalidate (ETag) on every load.
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    dotfiles: 'ignore',
    globIgnore: ['**/*.md'],
    cacheControl: false,
    setHeaders: (reply) => { void reply.header('cache-control', 'no-cache') }
  })
  for (const file of UPLOT_FILES) {
    app.get(`/vendor/uplot/${file}`, { schema: { hide: true } }, async (_req, reply) => await reply.sendFile(file, UPLOT_DIR))
  }
}
