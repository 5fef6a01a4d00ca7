// deploy/k8s/: the probes hit real routes on the real port, the grace period covers preStop
// and the shutdown timeout, the GPU variant asks for a GPU, and the Service, the
// HorizontalPodAutoscaler and the PodDisruptionBudget point at the Deployments' pods.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { loadConfig, type Config } from '../../src/config.js'
import { build } from '../helpers/build.js'
import { REPO } from '../helpers/data.js'

interface Probe { httpGet?: { path: string, port: string | number }, periodSeconds?: number, timeoutSeconds?: number, failureThreshold?: number }
interface Container {
  name: string
  image: string
  ports: Array<{ name?: string, containerPort: number }>
  env?: Array<{ name: string, value?: string }>
  resources?: { requests?: Record<string, string | number>, limits?: Record<string, string | number> }
  startupProbe?: Probe
  livenessProbe?: Probe
  readinessProbe?: Probe
  lifecycle?: { preStop?: { exec?: { command: string[] }, sleep?: { seconds: number } } }
}
interface PodSpec { terminationGracePeriodSeconds?: number, securityContext?: { runAsNonRoot?: boolean }, containers: Container[] }
interface Labels { matchLabels: Record<string, string> }
interface Resource {
  apiVersion: string
  kind: string
  metadata: { name: string, labels?: Record<string, string> }
  spec: Record<string, unknown>
}
interface Deployment extends Resource { spec: { replicas: number, selector: Labels, template: { metadata: { labels: Record<string, string> }, spec: PodSpec } } }

const DIR = path.join(REPO, 'deploy', 'k8s')
const resources: Array<Resource & { file: string }> = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map((doc) => {
    t.same(doc.errors, [], `${file} parses`)
    return { ...(doc.toJS() as Resource), file }
  }))
const deployments = resources.filter((r): r is Deployment & { file: string } => r.kind === 'Deployment')
const one = <T extends Resource>(kind: string): T => {
  const found = resources.filter((r) => r.kind === kind)
  t.equal(found.length, 1, `one ${kind}`)
  return found[0] as unknown as T
}

const defaults = loadConfig({})
const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v)
const envOf = (c: Container): Record<string, string> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']))
const portOf = (c: Container, port: string | number): number | undefined =>
  typeof port === 'number' ? port : c.ports.find((p) => p.name === port)?.containerPort
const preStopSeconds = (c: Container): number => {
  const stop = c.lifecycle?.preStop
  if (stop?.sleep !== undefined) return stop.sleep.seconds
  const cmd = stop?.exec?.command ?? []
  return cmd[0] === 'sleep' ? Number(cmd[1]) : 0
}

t.test('the files hold a CPU and a GPU Deployment, a Service, an HPA and a PDB', async (t) => {
  t.same(deployments.map((d) => d.file).sort(), ['deployment-gpu.yaml', 'deployment.yaml'])
  t.same(resources.map((r) => r.kind).sort(), ['Deployment', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service'])
  const kustomization = parseAllDocuments(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] }
  for (const file of kustomization.resources) t.ok(resources.some((r) => r.file === file), `kustomization lists ${file}, which exists`)
})

for (const d of deployments) {
  t.test(`${d.file}: probes, ports, environment, drain timings`, async (t) => {
    t.same(d.spec.selector.matchLabels, Object.fromEntries(Object.entries(d.spec.template.metadata.labels).filter(([k]) => k in d.spec.selector.matchLabels)), 'the selector matches the pod labels')
    t.ok(selects(d.spec.selector.matchLabels, d.spec.template.metadata.labels))
    const pod = d.spec.template.spec
    t.equal(pod.securityContext?.runAsNonRoot, true, 'runs as non-root')
    t.equal(pod.containers.length, 1)
    const c = pod.containers[0]!
    const env = envOf(c)
    // The environment is valid for the service itself; what it leaves out takes config defaults.
    let config: Config = defaults
    t.doesNotThrow(() => { config = loadConfig(env) }, 'loadConfig accepts the container environment')
    t.equal(config.HOST, '0.0.0.0', 'listens on every interface')
    // The pages for people (/ and /docs) ride on the Service's http port with the API; their
    // switches are spelled out where an operator looks for them.
    t.ok(env.UI_ENABLED !== undefined && env.API_DOCS_ENABLED !== undefined, 'UI_ENABLED and API_DOCS_ENABLED are set explicitly')
    t.equal(config.UI_ENABLED, true, 'the try-it page is served')
    t.equal(config.API_DOCS_ENABLED, true, 'the API docs are served')

    const http = c.ports.find((p) => p.name === 'http')
    t.ok(http, 'a port named http')
    t.equal(http?.containerPort, config.PORT, 'containerPort is the port the service listens on')
    t.equal(config.PORT, defaults.PORT, 'and that is config.ts\'s PORT default (8080)')
    const grpc = c.ports.find((p) => p.name === 'grpc')
    t.equal(grpc?.containerPort, config.GRPC_PORT, 'a port named grpc, where the service listens for gRPC')
    t.equal(config.GRPC_PORT, defaults.GRPC_PORT, 'config.ts\'s GRPC_PORT default (8081)')

    t.equal(c.livenessProbe?.httpGet?.path, '/health/live')
    t.equal(c.startupProbe?.httpGet?.path, '/health/live')
    t.equal(c.readinessProbe?.httpGet?.path, '/health/ready')
    for (const probe of [c.livenessProbe, c.startupProbe, c.readinessProbe]) {
      t.equal(portOf(c, probe!.httpGet!.port), config.PORT, `probe ${probe!.httpGet!.path} goes to the service port`)
    }

    // Termination: preStop, then SIGTERM → readiness 503 → DRAIN_DELAY_MS → close; the process
    // exits by SHUTDOWN_TIMEOUT_MS after SIGTERM at the latest.
    const preStop = preStopSeconds(c)
    const grace = pod.terminationGracePeriodSeconds ?? 30
    t.ok(preStop > 0, `preStop sleeps (${preStop} s) while the endpoints update`)
    t.ok(config.DRAIN_DELAY_MS > 0, 'a drain delay is set')
    t.ok(config.DRAIN_DELAY_MS < config.SHUTDOWN_TIMEOUT_MS, 'the drain fits in the shutdown timeout')
    t.ok(grace > preStop + config.DRAIN_DELAY_MS / 1000, `grace ${grace} s > preStop ${preStop} s + drain ${config.DRAIN_DELAY_MS / 1000} s`)
    t.ok(grace > preStop + config.SHUTDOWN_TIMEOUT_MS / 1000, `grace ${grace} s > preStop ${preStop} s + shutdown timeout ${config.SHUTDOWN_TIMEOUT_MS / 1000} s: the kubelet never SIGKILLs a draining pod`)
    const ready = c.readinessProbe!
    t.ok((ready.periodSeconds ?? 10) * (ready.failureThreshold ?? 3) * 1000 <= config.DRAIN_DELAY_MS, 'readiness sees the 503 before the drain delay ends')
    t.ok((ready.timeoutSeconds ?? 1) >= 2 && (ready.failureThreshold ?? 3) >= 2, 'one slow second does not make the replica unready')
    // Spawn to ready measured at most 3.4 s (npm run startup-time; deploy/README.md).
    const startup = c.startupProbe!
    t.ok((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3) >= 10 * 3.4, 'start-up gets 10x the measured time or more')

    t.ok(c.resources?.requests?.cpu !== undefined && c.resources.requests.memory !== undefined, 'CPU and memory requests are set')
    t.ok(c.resources?.limits?.memory !== undefined, 'a memory limit is set')
  })
}

t.test('the GPU variant asks for a GPU and the CUDA provider; the CPU one for neither', async (t) => {
  const cpu = deployments.find((d) => d.file === 'deployment.yaml')!.spec.template.spec.containers[0]!
  const gpu = deployments.find((d) => d.file === 'deployment-gpu.yaml')!.spec.template.spec.containers[0]!
  t.ok(Number(gpu.resources?.limits?.['nvidia.com/gpu']) >= 1, 'limits nvidia.com/gpu')
  t.equal(gpu.resources?.requests?.['nvidia.com/gpu'], gpu.resources?.limits?.['nvidia.com/gpu'], 'requests equal limits for the extended resource')
  t.equal(loadConfig(envOf(gpu)).EXECUTION_PROVIDER, 'cuda')
  t.match(gpu.image, /gpu/)
  t.equal(cpu.resources?.limits?.['nvidia.com/gpu'], undefined)
  t.equal(cpu.resources?.requests?.['nvidia.com/gpu'], undefined)
  t.equal(loadConfig(envOf(cpu)).EXECUTION_PROVIDER, 'cpu')
})

t.test('Service, HPA and PDB select the Deployments\' pods and the http and grpc ports', async (t) => {
  const service = one<Resource & { spec: { selector: Record<string, string>, ports: Array<{ name: string, port: number, targetPort: string | number, appProtocol?: string }> } }>('Service')
  t.same(service.spec.ports.map((p) => p.name), ['http', 'grpc'])
  t.equal(service.spec.ports.find((p) => p.name === 'grpc')?.appProtocol, 'kubernetes.io/h2c', 'gRPC is HTTP/2 in clear text')
  for (const d of deployments) {
    t.ok(selects(service.spec.selector, d.spec.template.metadata.labels), `the Service selects ${d.metadata.name}'s pods`)
    const c = d.spec.template.spec.containers[0]!
    for (const p of service.spec.ports) {
      const want = p.name === 'grpc' ? defaults.GRPC_PORT : defaults.PORT
      t.equal(portOf(c, p.targetPort), want, `targetPort ${p.targetPort} is the container's ${String(want)}`)
    }
  }

  const hpa = one<Resource & { spec: { scaleTargetRef: { kind: string, name: string }, minReplicas: number, maxReplicas: number, metrics: Array<{ resource?: { name: string } }> } }>('HorizontalPodAutoscaler')
  const target = deployments.find((d) => d.metadata.name === hpa.spec.scaleTargetRef.name)
  t.equal(hpa.spec.scaleTargetRef.kind, 'Deployment')
  t.ok(target, 'the HPA scales a Deployment defined here')
  t.ok(hpa.spec.minReplicas >= 2 && hpa.spec.minReplicas <= hpa.spec.maxReplicas)
  t.ok(hpa.spec.minReplicas <= (target?.spec.replicas ?? 0), 'the Deployment starts at or above the HPA minimum')
  for (const m of hpa.spec.metrics) {
    const name = m.resource?.name
    if (name !== undefined) t.ok(target?.spec.template.spec.containers[0]!.resources?.requests?.[name] !== undefined, `a ${name} utilisation target needs a ${name} request`)
  }

  const pdb = one<Resource & { spec: { selector: Labels, maxUnavailable?: number, minAvailable?: number } }>('PodDisruptionBudget')
  for (const d of deployments) t.ok(selects(pdb.spec.selector.matchLabels, d.spec.template.metadata.labels), `the PDB covers ${d.metadata.name}'s pods`)
  const allowsOne = pdb.spec.maxUnavailable !== undefined ? pdb.spec.maxUnavailable >= 1 : (pdb.spec.minAvailable ?? Infinity) < hpa.spec.minReplicas
  t.ok(allowsOne, 'a node drain can always evict one pod')
})

t.test('the probe paths are the real routes: live answers 200, ready turns 503 when draining', async (t) => {
  const app = await build(t)
  const probes = new Set(deployments.flatMap((d) => {
    const c = d.spec.template.spec.containers[0]!
    return [c.livenessProbe, c.readinessProbe, c.startupProbe].map((p) => p!.httpGet!.path)
  }))
  t.same([...probes].sort(), ['/health/live', '/health/ready'])
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
  app.lifecycle.draining = true
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'readiness drops the pod from the endpoints during the drain')
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'liveness does not kill a draining pod')
  app.lifecycle.draining = false
})
