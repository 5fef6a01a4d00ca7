// The Dockerfile, linted statically (no Docker engine here): the build and the two runtime
// stages exist, CPU is the default, both run as a non-root user, listen on 0.0.0.0 at
// config.ts's PORT, check a real health route, start the compiled server, and the GPU stage
// really fetches ONNX Runtime's CUDA provider.
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { REPO } from '../helpers/data.js'

interface Instruction { op: string, args: string }
interface Stage { name: string, from: string, body: Instruction[] }

function parseDockerfile (text: string): { args: Record<string, string>, stages: Stage[] } {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/)
    const instr = { op: op!.toUpperCase(), args: rest.join(' ') }
    if (instr.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instr.args)
      stages.push({ from: m![1]!, name: m![2] ?? String(stages.length), body: [] })
    } else if (stages.length === 0 && instr.op === 'ARG') {
      const [k, v] = instr.args.split('=')
      args[k!] = v ?? ''
    } else {
      stages.at(-1)?.body.push(instr)
    }
  }
  return { args, stages }
}

const { args, stages } = parseDockerfile(readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'))
const stage = (name: string): Stage => stages.find((s) => s.name === name)!
const all = (s: Stage, op: string): string[] => s.body.filter((i) => i.op === op).map((i) => i.args)
const env = (s: Stage): Record<string, string> => Object.fromEntries(all(s, 'ENV').flatMap((a) => [...a.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])))
const image = (from: string): string => from.replace(/^\$\{(\w+)\}$/, (_, k: string) => args[k] ?? '')
const routes = Object.keys((JSON.parse(readFileSync(path.join(REPO, 'openapi', 'openapi.json'), 'utf8')) as { paths: Record<string, unknown> }).paths)
const defaults = loadConfig({})

t.test('stages: build, runtime-cpu (the default, last) and runtime-gpu', async (t) => {
  for (const name of ['build', 'deps-cpu', 'deps-gpu', 'runtime-cpu', 'runtime-gpu']) t.ok(stages.some((s) => s.name === name), `stage ${name}`)
  t.equal(stages.at(-1)?.name, 'runtime-cpu', 'docker build without --target gives the CPU image')
  t.match(image(stage('runtime-cpu').from), /^node:20-bookworm-slim$/)
  t.match(image(stage('runtime-gpu').from), /^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/, 'CUDA 12 with cuDNN (9 for CUDA 12.4 and later tags)')
  const build = stage('build')
  t.ok(all(build, 'RUN').some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev')), 'the build stage installs dev dependencies')
  t.ok(all(build, 'RUN').some((r) => r.includes('npm run build')), 'and compiles TypeScript')
})

for (const [name, provider, deps] of [['runtime-cpu', 'cpu', 'deps-cpu'], ['runtime-gpu', 'cuda', 'deps-gpu']] as const) {
  t.test(`${name}: non-root, 0.0.0.0:${defaults.PORT}, health check, compiled server, models`, async (t) => {
    const s = stage(name)
    const user = all(s, 'USER').at(-1) ?? 'root'
    t.notMatch(user, /^(root|0)(:|$)/, `USER ${user} is not root`)
    t.match(user, /^\d+(:\d+)?$/, 'numeric, so Kubernetes runAsNonRoot can verify it')
    const e = env(s)
    t.equal(e.HOST, '0.0.0.0')
    t.equal(Number(e.PORT ?? defaults.PORT), defaults.PORT)
    t.equal(e.EXECUTION_PROVIDER, provider)
    t.equal(Number(e.GRPC_PORT ?? defaults.GRPC_PORT), defaults.GRPC_PORT)
    t.same(all(s, 'EXPOSE'), [`${defaults.PORT} ${String(defaults.GRPC_PORT)}`], 'HTTP and gRPC')
    const health = all(s, 'HEALTHCHECK').join(' ')
    const probed = /\/health\/\w+/.exec(health)?.[0]
    t.equal(probed, '/health/live', 'HEALTHCHECK polls liveness')
    t.ok(routes.includes(probed!), `${probed} is a route of the service (openapi/openapi.json)`)
    t.match(health, /process\.env\.PORT \|\| 8080/, 'on the configured port')
    t.same(JSON.parse(all(s, 'CMD').at(-1)!), ['node', 'dist/src/server.js'])
    t.ok(existsSync(path.join(REPO, 'src', 'server.ts')), 'dist/src/server.js is compiled from src/server.ts')
    t.ok(all(s, 'COPY').includes(`--from=${deps} /app/node_modules ./node_modules`), `production node_modules from ${deps}`)
    t.ok(all(stage(deps), 'RUN').some((r) => r.includes('npm ci --omit=dev')), `${deps} installs without dev dependencies`)
    t.ok(all(s, 'COPY').includes('models ./models'), 'models copied in (a mount on /app/models overrides them)')
    // src/ui/public-dir.ts looks for the page at <package root>/src/ui/public: /app has package.json.
    t.ok(all(s, 'COPY').includes('package.json ./'), 'package.json marks /app as the package root')
    t.ok(all(s, 'COPY').includes('src/ui/public ./src/ui/public'), 'the try-it page\'s files, which are not compiled')
    t.ok(all(s, 'COPY').includes('src/protocols/oip-grpc/proto ./src/protocols/oip-grpc/proto'), 'the gRPC service\'s .proto files, loaded at start')
    t.equal(all(s, 'WORKDIR').at(-1), '/app', 'MODELS_MANIFEST=models/manifest.json resolves to /app/models')
  })
}

t.test('only the GPU dependencies fetch the CUDA provider', async (t) => {
  const s = stage('deps-gpu')
  t.equal(env(s).ONNXRUNTIME_NODE_INSTALL, 'cuda12')
  const run = all(s, 'RUN').join(' ')
  t.match(run, /node node_modules\/onnxruntime-node\/script\/install/, 'the install script runs whatever npm\'s script policy')
  t.match(run, /test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so/, 'and the build fails without the provider')
  for (const other of ['build', 'deps-cpu']) {
    t.ok(all(stage(other), 'RUN').every((r) => !r.includes('npm ci') || r.includes('--ignore-scripts')), `${other} runs no install script (npm 10 would fetch the provider)`)
  }
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }
  t.equal(pkg.allowScripts?.['onnxruntime-node'], false, 'package.json denies the script to npm 11 elsewhere (no .npmrc setting, which npm 11 no longer knows)')
})

t.test('the image builds the service only: tsconfig.build.json, and src/tools is not in the context', async (t) => {
  const build = stage('build')
  t.ok(all(build, 'COPY').some((c) => /\btsconfig\.build\.json\b/.test(c)), 'the service build config is copied')
  t.ok(all(build, 'RUN').includes('npm run build'))
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.match(pkg.scripts.build, /tsconfig\.build\.json/, 'npm run build compiles tsconfig.build.json, which excludes src/tools (test/tools/separation.test.ts)')
})

t.test('.dockerignore keeps the build context small and the build inputs in', async (t) => {
  const ignored = readFileSync(path.join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  for (const p of ['node_modules', 'dist', '.git', 'training']) t.ok(ignored.includes(p), `ignores ${p}`)
  for (const p of ['src', 'models', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
    t.notOk(ignored.includes(p), `keeps ${p}`)
  }
  const copied = stages.flatMap((s) => all(s, 'COPY').filter((a) => !a.startsWith('--from')).flatMap((a) => a.split(/\s+/).slice(0, -1)))
  for (const p of copied) t.ok(existsSync(path.join(REPO, p)), `COPY source ${p} exists`)
})
