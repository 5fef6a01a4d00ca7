// The image holds the service only: no service module may import the tools (src/tools/:
// calibrate, evaluate, bench, data sets), and the service build leaves them out.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { REPO } from '../helpers/data.js'

const SRC = path.join(REPO, 'src')
const TOOLS = path.join(SRC, 'tools')

function serviceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return p === TOOLS ? [] : serviceFiles(p)
    return e.name.endsWith('.ts') ? [p] : []
  })
}

t.test('no service module imports from src/tools', async (t) => {
  const files = serviceFiles(SRC)
  t.ok(files.length > 30, `${files.length} service modules scanned`)
  const offenders: string[] = []
  for (const file of files) {
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]!)
      if (target.startsWith(TOOLS + path.sep)) offenders.push(`${path.relative(REPO, file)} → ${m[1]}`)
    }
  }
  t.same(offenders, [])
})

t.test('the service build (npm run build, the image) excludes src/tools; .dockerignore too', async (t) => {
  const text = readFileSync(path.join(REPO, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')
  const build = JSON.parse(text) as { include: string[], exclude?: string[] }
  t.same(build.include, ['src/**/*.ts'])
  t.ok(build.exclude?.includes('src/tools/**'))
  const ignore = readFileSync(path.join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim())
  t.ok(ignore.includes('src/tools'))
})
