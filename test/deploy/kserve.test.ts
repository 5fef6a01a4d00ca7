// deploy/kserve/: the ServingRuntime speaks v2 on the port the service listens on, probes its
// v2 health routes, sets only variables the service knows (and accepts their values), reads
// the manifest where KServe's storage initializer puts the model folder, runs as the image's
// non-root user, and gives start-up, readiness and the drain the room they need in both KServe
// modes; each InferenceService uses that runtime and one of its model formats. What a cluster
// would refuse (schemas, Knative's rules) is deploy/check/check_manifests.py's job
// (manifest-check.test.ts).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { loadConfig } from '../../src/config.js'
import { REPO } from '../helpers/data.js'

const read = (f: string): any => parse(readFileSync(path.join(REPO, 'deploy', 'kserve', f), 'utf8'))
const runtime = read('servingruntime.yaml')
const isvcs = [read('inferenceservice.yaml'), read('inferenceservice-pvc.yaml')]
const routes = Object.keys((JSON.parse(readFileSync(path.join(REPO, 'openapi', 'openapi.json'), 'utf8')) as { paths: Record<string, unknown> }).paths)
const container = runtime.spec.containers[0]
const env: Record<string, string> = Object.fromEntries(container.env.map((e: { name: string, value: string }) => [e.name, e.value]))

t.test('a v2 ServingRuntime whose container listens where the service does', async (t) => {
  t.equal(runtime.apiVersion, 'serving.kserve.io/v1alpha1')
  t.equal(runtime.kind, 'ServingRuntime')
  t.same(runtime.spec.protocolVersions, ['v2'])
  t.equal(container.name, 'kserve-container', 'the name KServe looks for')
  const config = loadConfig(env)
  t.equal(container.ports[0].containerPort, config.PORT)
  t.equal(config.HOST, '0.0.0.0')
  t.equal(runtime.spec.annotations['prometheus.kserve.io/port'], String(config.PORT))
  t.ok(routes.includes(runtime.spec.annotations['prometheus.kserve.io/path']), 'metrics path is a route')
})

t.test('every variable is one the service knows, with a value it accepts', async (t) => {
  const known = Object.keys(loadConfig({}))
  for (const name of Object.keys(env)) t.ok(known.includes(name), `${name} is a configuration variable`)
  t.doesNotThrow(() => loadConfig(env))
  t.equal(env.MODELS_MANIFEST, '/mnt/models/manifest.json', 'the storage initializer mounts storageUri at /mnt/models')
  t.equal(env.EXECUTION_PROVIDER, 'cpu', 'the CPU image')
})

t.test('the probes hit the v2 health routes on the container port', async (t) => {
  for (const [probe, route] of [['readinessProbe', '/v2/health/ready'], ['livenessProbe', '/v2/health/live'], ['startupProbe', '/v2/health/live']] as const) {
    t.equal(container[probe].httpGet.path, route)
    t.ok(routes.includes(route), `${route} is a route of the service`)
    t.equal(container[probe].httpGet.port, container.ports[0].containerPort)
  }
})

t.test('start-up, a busy second and the drain (no preStop hook: Knative refuses one)', async (t) => {
  const config = loadConfig(env)
  const { startupProbe: startup, readinessProbe: ready } = container
  // Spawn to ready measured at most 3.4 s (npm run startup-time; deploy/README.md).
  t.ok(startup.periodSeconds * startup.failureThreshold >= 10 * 3.4, 'start-up gets 10x the measured time or more')
  t.ok(ready.timeoutSeconds >= 2 && ready.failureThreshold >= 2, 'one slow second does not make the replica unready')
  t.equal(container.lifecycle, undefined)
  t.ok(config.DRAIN_DELAY_MS > 0, 'Standard mode: the process keeps serving while the endpoints drop it')
  t.ok(ready.periodSeconds * ready.failureThreshold * 1000 <= config.DRAIN_DELAY_MS, 'readiness sees the drain before the drain delay ends')
  t.ok(config.SHUTDOWN_TIMEOUT_MS / 1000 < 30, 'the shutdown ends inside the default 30 s grace period')
})

t.test('the pods get the labels: KServe copies spec.labels, not metadata.labels', async (t) => {
  t.same(runtime.spec.labels, runtime.metadata.labels)
  t.not(runtime.spec.labels['app.kubernetes.io/name'], 'isomax-serve', 'not selected by deploy/k8s\'s Service, PDB and PodMonitor')
})

t.test('the image and user match the Dockerfile\'s CPU image; memory the sized default', async (t) => {
  t.equal(container.image, 'isomax-serve:cpu')
  const dockerfile = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8')
  t.match(dockerfile, /USER 1000:1000/)
  t.equal(container.securityContext.runAsUser, 1000)
  t.equal(container.securityContext.runAsNonRoot, true)
  t.equal(container.resources.limits.memory, '1Gi')
})

t.test('each InferenceService runs on this runtime, with one of its formats, over v2', async (t) => {
  for (const isvc of isvcs) {
    t.equal(isvc.apiVersion, 'serving.kserve.io/v1beta1')
    t.equal(isvc.kind, 'InferenceService')
    const model = isvc.spec.predictor.model
    t.equal(model.runtime, runtime.metadata.name)
    t.equal(model.protocolVersion, 'v2')
    t.ok(runtime.spec.supportedModelFormats.some((f: { name: string, version: string }) => f.name === model.modelFormat.name && f.version === model.modelFormat.version))
  }
  t.match(isvcs[0].spec.predictor.model.storageUri, /^s3:\/\//)
  t.match(isvcs[1].spec.predictor.model.storageUri, /^pvc:\/\/[a-z0-9-]+\//)
})

t.test('the S3 InferenceService\'s service account lists the Secret with the keys KServe reads', async (t) => {
  const [secret, account] = parseAllDocuments(readFileSync(path.join(REPO, 'deploy', 'kserve', 's3-credentials.yaml'), 'utf8')).map((d) => d.toJS())
  t.equal(account.kind, 'ServiceAccount')
  t.equal(isvcs[0].spec.predictor.serviceAccountName, account.metadata.name)
  t.same(account.secrets, [{ name: secret.metadata.name }])
  t.same(Object.keys(secret.stringData).sort(), ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
  t.ok(secret.metadata.annotations['serving.kserve.io/s3-endpoint'], 'the endpoint annotation')
})

t.test('the gRPC runtime: one h2c port where the service listens for gRPC, gRPC probes on it, and an InferenceService on it', async (t) => {
  const grpcRuntime = read('servingruntime-grpc.yaml')
  const isvc = read('inferenceservice-grpc.yaml')
  const c = grpcRuntime.spec.containers[0]
  const grpcEnv: Record<string, string> = Object.fromEntries(c.env.map((e: { name: string, value: string }) => [e.name, e.value]))
  const config = loadConfig(grpcEnv)
  t.same(grpcRuntime.spec.protocolVersions, ['grpc-v2'])
  t.same(c.ports, [{ name: 'h2c', containerPort: config.GRPC_PORT, protocol: 'TCP' }], 'KServe\'s gRPC convention: the one port, named h2c')
  t.equal(config.GRPC_PORT, 8081)
  t.same(c.readinessProbe.grpc, { port: config.GRPC_PORT }, 'readiness: grpc.health.v1 (SERVING = ready)')
  for (const probe of ['startupProbe', 'livenessProbe']) t.same(c[probe].tcpSocket, { port: config.GRPC_PORT }, `${probe}: the gRPC port accepts connections`)
  // Everything else as the HTTP runtime's.
  const rest = (x: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(x).filter(([k]) => k !== 'GRPC_PORT'))
  t.same(rest(grpcEnv), env)
  t.same(c.resources, container.resources)
  t.same(c.securityContext, container.securityContext)
  t.equal(c.image, container.image)
  t.same(grpcRuntime.spec.supportedModelFormats.map((f: any) => f.name), runtime.spec.supportedModelFormats.map((f: any) => f.name))
  t.equal(isvc.spec.predictor.model.runtime, grpcRuntime.metadata.name)
  t.equal(isvc.spec.predictor.model.protocolVersion, 'grpc-v2')
})
