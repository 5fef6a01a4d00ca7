// Monitoring, checked without Docker, Kubernetes or Grafana: the Prometheus scrape configs
// (promtool, and the Kubernetes relabelling run on the Deployments' pods), the PrometheusRule
// against rules.yml and its generator, the PodMonitor against the Deployments, the Compose
// monitoring profile, the Grafana provisioning, and the dashboard, whose every query names only
// metrics the service exports or rules.yml records and returns data when promtool evaluates it
// over series taken from the real app's /metrics after real requests.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { generatePrometheusRule, PROMETHEUS_RULE_COMMAND, PROMETHEUS_RULE_FILE, RULES_FILE } from '../../scripts/prometheus-rule.js'
import { loadConfig } from '../../src/config.js'
import { buildOver } from '../helpers/build.js'
import { REPO } from '../helpers/data.js'
import { fixturePng } from '../helpers/images.js'

// ---- what the checks read --------------------------------------------------------------------

interface RelabelConfig { source_labels?: string[], separator?: string, regex?: string, target_label?: string, replacement?: string, action?: string }
interface ScrapeConfig {
  job_name: string
  metrics_path?: string
  dns_sd_configs?: Array<{ names: string[], type?: string, port?: number }>
  kubernetes_sd_configs?: Array<{ role: string, namespaces?: { names: string[] } }>
  relabel_configs?: RelabelConfig[]
}
interface PrometheusConfig { global?: Record<string, string>, rule_files?: string[], scrape_configs: ScrapeConfig[] }
interface Rule { record?: string, alert?: string, expr: string }
interface RulesFile { groups: Array<{ name: string, rules: Rule[] }> }
interface Service {
  image?: string
  profiles?: string[]
  command?: string[]
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  depends_on?: string[]
  networks?: Record<string, { aliases?: string[] } | null>
}
interface Container { name: string, ports: Array<{ name?: string, containerPort: number }> }
interface Deployment {
  kind: string
  metadata: { name: string }
  spec: { template: { metadata: { labels: Record<string, string>, annotations?: Record<string, string> }, spec: { containers: Container[] } } }
}
interface Target { refId: string, expr: string, format?: string, instant?: boolean, datasource?: { type?: string, uid?: string } }
interface Panel { id: number, type: string, title: string, description?: string, datasource?: { type?: string, uid?: string }, gridPos: { x: number, y: number, w: number, h: number }, targets?: Target[] }
interface Variable { name: string, type: string, query?: string | { query: string }, definition?: string, includeAll?: boolean, multi?: boolean, allValue?: string, current?: { value?: string | string[] } }
interface Dashboard { uid: string, title: string, description?: string, schemaVersion: number, templating: { list: Variable[] }, panels: Panel[] }

const read = (...p: string[]): string => readFileSync(path.join(REPO, ...p), 'utf8')
const JOB = 'isomax-serve'
// Grafana's variable syntax: the dashboard's data source variable, not a JS template.
// eslint-disable-next-line no-template-curly-in-string
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' }
const CORE_PANELS = ['Request rate by route and status', 'Classification latency p50 / p95 / p99', 'Reject rate vs calibrated, per model', 'Queue depth per model']
// Series Prometheus makes itself for every target, not the service.
const PROMETHEUS_SERIES = new Set(['up'])

const composeConfig = parse(read('deploy', 'prometheus', 'prometheus.yml')) as PrometheusConfig
const k8sConfig = parse(read('deploy', 'prometheus', 'prometheus-k8s.yml')) as PrometheusConfig
const rules = parse(read('deploy', 'prometheus', 'rules.yml')) as RulesFile
const recorded = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => r.record ?? [])))
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>, volumes?: Record<string, unknown> }
const deployments = readdirSync(path.join(REPO, 'deploy', 'k8s')).filter((f) => /^deployment.*\.yaml$/.test(f))
  .flatMap((f) => parseAllDocuments(read('deploy', 'k8s', f)).map((d) => d.toJS() as Deployment)).filter((d) => d.kind === 'Deployment')
const dashboard = JSON.parse(read('deploy', 'grafana', 'dashboards', 'isomax-serve.json')) as Dashboard
const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((target) => ({ panel: p, target })))
const routes = Object.keys((JSON.parse(read('openapi', 'openapi.json')) as { paths: Record<string, unknown> }).paths)
  .map((r) => r.replace(/\{(\w+)\}/g, ':$1')) // Fastify's templates, as in the `route` label

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])

/** The metric names a PromQL expression reads (not functions, labels, keywords or numbers). */
function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, ' ')
  const names = [...bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)]
    .filter((m) => m[2] === undefined && !PROMQL_WORDS.has(m[1]!.toLowerCase()))
    .map((m) => m[1]!)
  return [...new Set(names)]
}

/** The dashboard's Grafana variables, replaced as an end-to-end run against Prometheus does. */
const forPrometheus = (expr: string): string => expr.replaceAll('$model', '.*').replaceAll('$__rate_interval', '1m')

/** Prometheus' relabelling (keep, drop, replace), enough for the configs here. */
function relabel (labels: Record<string, string>, configs: RelabelConfig[]): Record<string, string> | null {
  const out = { ...labels }
  for (const c of configs) {
    const value = (c.source_labels ?? []).map((l) => out[l] ?? '').join(c.separator ?? ';')
    const re = new RegExp(`^(?:${c.regex ?? '(.*)'})$`)
    const action = c.action ?? 'replace'
    if (action === 'keep' && !re.test(value)) return null
    if (action === 'drop' && re.test(value)) return null
    if (action === 'replace' && re.test(value)) {
      const result = value.replace(re, c.replacement ?? '$1')
      if (result === '') delete out[c.target_label!]
      else out[c.target_label!] = result
    }
    if (!['keep', 'drop', 'replace'].includes(action)) throw new Error(`relabel action ${action} is not simulated here`)
  }
  return out
}

const sanitize = (name: string): string => name.replace(/[^a-zA-Z0-9_]/g, '_')

/** The target labels Prometheus' Kubernetes pod discovery gives one container port of a pod. */
function podTarget (d: Deployment, ip: string, phase: string): Record<string, string> {
  const { labels, annotations = {} } = d.spec.template.metadata
  const port = d.spec.template.spec.containers[0]!.ports[0]!
  return {
    job: JOB,
    __address__: ip.includes(':') ? `[${ip}]:${port.containerPort}` : `${ip}:${port.containerPort}`,
    __metrics_path__: '/metrics',
    __scheme__: 'http',
    __meta_kubernetes_namespace: 'default',
    __meta_kubernetes_pod_name: `${d.metadata.name}-abc12`,
    __meta_kubernetes_pod_ip: ip,
    __meta_kubernetes_pod_phase: phase,
    __meta_kubernetes_pod_container_name: d.spec.template.spec.containers[0]!.name,
    __meta_kubernetes_pod_container_port_name: port.name ?? '',
    __meta_kubernetes_pod_container_port_number: String(port.containerPort),
    ...Object.fromEntries(Object.entries(labels).map(([k, v]) => [`__meta_kubernetes_pod_label_${sanitize(k)}`, v])),
    ...Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`__meta_kubernetes_pod_annotation_${sanitize(k)}`, v]))
  }
}

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).error === undefined
const noPromtool = promtool ? false : 'promtool is not installed (apt-get install prometheus)'
const runPromtool = (args: string[], cwd?: string): { ok: boolean, output: string } => {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd })
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() }
}

function tmpDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-monitoring-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function volumes (s: Service): Array<{ source: string, target: string, mode: string }> {
  return (s.volumes ?? []).map((v) => {
    const [source, target, mode] = v.split(':')
    return { source: source!, target: target!, mode: mode ?? 'rw' }
  })
}

/** `${VAR:-default}` → default (what Compose uses when VAR is unset). */
const composeDefault = (s: string): string => s.replace(/\$\{\w+:-([^}]*)\}/g, '$1')

const flag = (s: Service, name: string): string | undefined =>
  s.command?.find((c) => c.startsWith(`--${name}=`))?.slice(name.length + 3)

// ---- scrape configs ------------------------------------------------------------------------

t.test('both scrape configs pass promtool check config, with rules.yml found', { skip: noPromtool }, async (t) => {
  const compose = runPromtool(['check', 'config', 'deploy/prometheus/prometheus.yml'], REPO)
  t.ok(compose.ok, compose.output)
  t.match(compose.output, /1 rule files found/)

  const k8s = runPromtool(['check', 'config', 'deploy/prometheus/prometheus-k8s.yml'], REPO)
  if (!k8s.ok && /field kubernetes_sd_configs not found/.test(k8s.output)) {
    // Debian's promtool is built without Kubernetes discovery. Check everything else — the
    // relabelling regexes, the rule file — on a copy that finds its targets statically; the
    // next test checks the discovery block and runs the relabelling on the Deployments' pods.
    t.comment('this promtool has no Kubernetes discovery: checking prometheus-k8s.yml with static_configs in its place')
    const dir = tmpDir(t)
    const copy = structuredClone(k8sConfig) as PrometheusConfig & { scrape_configs: Array<ScrapeConfig & { static_configs?: unknown }> }
    for (const s of copy.scrape_configs) {
      if (s.kubernetes_sd_configs !== undefined) {
        delete s.kubernetes_sd_configs
        s.static_configs = [{ targets: ['10.0.0.1:8080'] }]
      }
    }
    writeFileSync(path.join(dir, 'prometheus.yml'), stringify(copy))
    for (const f of k8sConfig.rule_files ?? []) copyFileSync(path.join(REPO, 'deploy', 'prometheus', f), path.join(dir, f))
    const r = runPromtool(['check', 'config', 'prometheus.yml'], dir)
    t.ok(r.ok, r.output)
    t.match(r.output, /1 rule files found/)
  } else {
    t.ok(k8s.ok, k8s.output)
    t.match(k8s.output, /1 rule files found/)
  }
})

t.test('both load rules.yml, by a path that holds in the repository and next to the config', async (t) => {
  for (const [name, config] of [['prometheus.yml', composeConfig], ['prometheus-k8s.yml', k8sConfig]] as const) {
    t.same(config.rule_files, ['rules.yml'], `${name}: rules.yml, relative to the config file`)
    t.equal(config.global?.scrape_interval, '15s', `${name}: scrape_interval`)
    t.equal(config.global?.evaluation_interval, '30s', `${name}: evaluation_interval`)
    t.same(config.scrape_configs.map((s) => s.job_name), [JOB], `${name}: one job, ${JOB}`)
  }
  const jobs = [...read('deploy', 'prometheus', 'rules.yml').matchAll(/\bjob="([^"]+)"/g)].map((m) => m[1])
  t.ok(jobs.length > 0, 'the alerts name the job')
  for (const job of jobs) t.equal(job, JOB, 'the job the alerts use is the one scraped')
})

t.test('Compose: DNS discovery of the replicas by the service name, on the service port', async (t) => {
  const job = composeConfig.scrape_configs[0]!
  const isomax = compose.services.isomax!
  const port = loadConfig(isomax.environment ?? {}).PORT
  t.equal(job.metrics_path ?? '/metrics', '/metrics')
  t.ok(routes.includes('/metrics'), '/metrics is a route of the service')
  t.equal(job.dns_sd_configs?.length, 1)
  const sd = job.dns_sd_configs![0]!
  t.equal(sd.type, 'A', 'A records: Docker answers the service name with every replica')
  t.equal(sd.port, port, 'the port the replicas listen on')
  for (const name of sd.names) {
    t.ok(name in compose.services, `${name} is a Compose service`)
    t.ok(compose.services['isomax-gpu']?.networks?.default?.aliases?.includes(name), `the GPU replicas answer to ${name} too`)
  }
})

t.test('Kubernetes: pod discovery keeps the annotated isomax-serve pods, on the annotated port and path', async (t) => {
  const job = k8sConfig.scrape_configs[0]!
  t.same(job.kubernetes_sd_configs?.map((c) => c.role), ['pod'])
  const relabels = job.relabel_configs ?? []
  t.ok(deployments.length >= 2, 'the CPU and GPU Deployments')
  for (const d of deployments) {
    const { annotations = {} } = d.spec.template.metadata
    const http = d.spec.template.spec.containers[0]!.ports.find((p) => p.name === 'http')!
    t.equal(annotations['prometheus.io/scrape'], 'true', `${d.metadata.name} asks to be scraped`)
    t.equal(annotations['prometheus.io/port'], String(http.containerPort), `${d.metadata.name}: the annotated port is the http port`)
    t.ok(routes.includes(annotations['prometheus.io/path'] ?? ''), `${d.metadata.name}: the annotated path is a route`)

    const v4 = relabel(podTarget(d, '10.1.2.3', 'Running'), relabels)
    t.match(v4, { job: JOB, __address__: `10.1.2.3:${annotations['prometheus.io/port']}`, __metrics_path__: annotations['prometheus.io/path'] }, `${d.metadata.name}: a running pod is scraped`)
    t.equal(v4?.pod, `${d.metadata.name}-abc12`, 'with its pod name as a label')
    t.equal(v4?.component, d.spec.template.metadata.labels['app.kubernetes.io/component'])
    const v6 = relabel(podTarget(d, 'fd00::7', 'Running'), relabels)
    t.equal(v6?.__address__, `[fd00::7]:${annotations['prometheus.io/port']}`, 'IPv6 pod addresses get brackets')
    for (const phase of ['Pending', 'Succeeded', 'Failed']) {
      t.equal(relabel(podTarget(d, '10.1.2.3', phase), relabels), null, `a ${phase} pod is not scraped`)
    }
    const other = structuredClone(d)
    other.spec.template.metadata.labels['app.kubernetes.io/name'] = 'someone-else'
    t.equal(relabel(podTarget(other, '10.1.2.4', 'Running'), relabels), null, 'another application\'s annotated pod stays out of the job')
    const unannotated = structuredClone(d)
    unannotated.spec.template.metadata.annotations = {}
    t.equal(relabel(podTarget(unannotated, '10.1.2.5', 'Running'), relabels), null, 'a pod without the annotation is not scraped')
  }
})

// ---- Prometheus Operator -------------------------------------------------------------------

t.test('the PrometheusRule wraps exactly rules.yml\'s groups, and is what the generator writes', async (t) => {
  const committed = readFileSync(PROMETHEUS_RULE_FILE, 'utf8')
  const rule = parse(committed) as { apiVersion: string, kind: string, metadata: { name: string }, spec: { groups: unknown } }
  t.equal(rule.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(rule.kind, 'PrometheusRule')
  t.same(rule.spec.groups, parse(readFileSync(RULES_FILE, 'utf8')).groups, 'spec.groups deep-equals rules.yml\'s groups')
  t.match(committed, /^# Generated from deploy\/prometheus\/rules\.yml by scripts\/prometheus-rule\.ts/, 'it says it is generated')
  t.ok(committed === generatePrometheusRule(), `${path.relative(REPO, PROMETHEUS_RULE_FILE)} is stale: run \`${PROMETHEUS_RULE_COMMAND}\``)
  t.throws(() => generatePrometheusRule('groups: 3\n'), /no list of groups/, 'the generator refuses a rules file without groups')
})

t.test('the PodMonitor selects the Deployments\' pods, their http port and /metrics, as job isomax-serve', async (t) => {
  const docs = parseAllDocuments(read('deploy', 'k8s', 'monitoring', 'podmonitor.yaml')).map((d) => d.toJS())
  t.equal(docs.length, 1)
  const pm = docs[0] as { apiVersion: string, kind: string, spec: { jobLabel?: string, namespaceSelector?: unknown, selector: { matchLabels: Record<string, string> }, podMetricsEndpoints: Array<{ port: string, path?: string, interval?: string }> } }
  t.equal(pm.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(pm.kind, 'PodMonitor')
  t.ok(Object.keys(pm.spec.selector.matchLabels).length > 0, 'selects by label')
  t.equal(pm.spec.podMetricsEndpoints.length, 1)
  const ep = pm.spec.podMetricsEndpoints[0]!
  t.equal(ep.path, '/metrics')
  t.equal(ep.interval, composeConfig.global?.scrape_interval, 'scraped as often as in Compose')
  for (const d of deployments) {
    const { labels, annotations = {} } = d.spec.template.metadata
    t.ok(Object.entries(pm.spec.selector.matchLabels).every(([k, v]) => labels[k] === v), `selects ${d.metadata.name}'s pods`)
    const port = d.spec.template.spec.containers[0]!.ports.find((p) => p.name === ep.port)
    t.ok(port, `${d.metadata.name}'s container declares the port ${ep.port}`)
    t.equal(String(port?.containerPort), annotations['prometheus.io/port'], 'the same port the annotations name')
    t.equal(labels[pm.spec.jobLabel ?? ''], JOB, `jobLabel ${pm.spec.jobLabel} makes the job ${JOB}, as the alerts expect`)
  }
})

// ---- Compose monitoring profile ------------------------------------------------------------

t.test('Compose monitoring profile: pinned images, mounts that exist, loopback ports', async (t) => {
  const { prometheus, grafana } = compose.services
  t.ok(prometheus && grafana, 'services prometheus and grafana')
  for (const [name, s] of [['prometheus', prometheus!], ['grafana', grafana!]] as const) {
    t.same(s.profiles, ['monitoring'], `${name} runs only with --profile monitoring`)
    const [image, tag] = (s.image ?? '').split(':')
    t.match(image, name === 'prometheus' ? /^prom\/prometheus$/ : /^grafana\/grafana(-oss)?$/, `${name}: the official image`)
    t.match(tag, /^v?\d+\.\d+\.\d+$/, `${name}: a pinned version tag, not latest`)
    for (const v of volumes(s)) {
      if (v.source.startsWith('.')) {
        t.ok(existsSync(path.join(REPO, v.source)), `${name}: ${v.source} exists`)
        t.equal(v.mode, 'ro', `${name}: ${v.source} is mounted read-only`)
      } else {
        t.ok(compose.volumes !== undefined && v.source in compose.volumes, `${name}: ${v.source} is a named volume`)
      }
    }
    t.equal(s.ports?.length, 1, `${name} publishes one port`)
    t.match(composeDefault(s.ports![0]!), /^127\.0\.0\.1:\d+:\d+$/, `${name}: on 127.0.0.1 unless told otherwise`)
  }
  t.match(composeDefault(prometheus!.ports![0]!), /:9090$/)
  t.match(composeDefault(grafana!.ports![0]!), /:3000$/)
  for (const [name, s] of Object.entries(compose.services)) {
    if (!['prometheus', 'grafana'].includes(name)) t.notOk(s.profiles?.includes('monitoring'), `${name} is not part of the profile`)
  }
})

t.test('Compose Prometheus: its config and rules.yml mounted where it reads them', async (t) => {
  const prometheus = compose.services.prometheus!
  const configFile = flag(prometheus, 'config.file') ?? '/etc/prometheus/prometheus.yml'
  const mounts = volumes(prometheus)
  t.equal(mounts.find((v) => v.target === configFile)?.source, './deploy/prometheus/prometheus.yml', `prometheus.yml on ${configFile}`)
  for (const f of composeConfig.rule_files ?? []) {
    const target = path.posix.join(path.posix.dirname(configFile), f)
    t.equal(mounts.find((v) => v.target === target)?.source, './deploy/prometheus/rules.yml', `rules.yml on ${target}, where rule_files points`)
  }
  t.ok(mounts.some((v) => v.target === (flag(prometheus, 'storage.tsdb.path') ?? '/prometheus') && !v.source.startsWith('.')), 'the TSDB on a named volume')
})

t.test('Grafana: provisioned data source and dashboards, mounted where the provisioning reads them', async (t) => {
  const grafana = compose.services.grafana!
  const mounts = volumes(grafana)
  const mountedAt = (source: string): string | undefined => mounts.find((v) => v.source === source)?.target
  t.equal(mountedAt('./deploy/grafana/provisioning/datasources'), '/etc/grafana/provisioning/datasources')
  t.equal(mountedAt('./deploy/grafana/provisioning/dashboards'), '/etc/grafana/provisioning/dashboards')

  const ds = parse(read('deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yml')) as { apiVersion: number, datasources: Array<{ uid: string, type: string, url: string, jsonData?: { timeInterval?: string } }> }
  t.equal(ds.apiVersion, 1)
  t.equal(ds.datasources.length, 1)
  const source = ds.datasources[0]!
  t.equal(source.type, 'prometheus')
  t.equal(source.uid, 'prometheus')
  const url = new URL(source.url)
  t.ok(url.hostname in compose.services, `the data source's host ${url.hostname} is a Compose service`)
  t.equal(url.port, composeDefault(compose.services.prometheus!.ports![0]!).split(':').at(-1), 'on the port Prometheus listens on in its container')
  t.equal(source.jsonData?.timeInterval, composeConfig.global?.scrape_interval, 'Grafana knows the scrape interval ($__rate_interval)')
  const dsVariable = dashboard.templating.list.find((v) => v.type === 'datasource')
  t.equal(dsVariable?.current?.value, source.uid, 'the dashboard\'s data source variable defaults to it')

  const providers = parse(read('deploy', 'grafana', 'provisioning', 'dashboards', 'isomax.yml')) as { apiVersion: number, providers: Array<{ type: string, options: { path: string } }> }
  t.equal(providers.apiVersion, 1)
  t.equal(providers.providers.length, 1)
  t.equal(providers.providers[0]!.type, 'file')
  t.equal(mountedAt('./deploy/grafana/dashboards'), providers.providers[0]!.options.path, 'the provider reads the mounted dashboards folder')
  const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH
  if (home !== undefined) {
    t.equal(path.posix.dirname(home), providers.providers[0]!.options.path, 'the home dashboard is in that folder')
    t.ok(existsSync(path.join(REPO, 'deploy', 'grafana', 'dashboards', path.posix.basename(home))), `${path.posix.basename(home)} exists`)
  }
  t.match(grafana.environment?.GF_SECURITY_ADMIN_PASSWORD ?? '', /^\$\{GRAFANA_ADMIN_PASSWORD:-.+\}$/, 'the admin password from the environment, with a default')
  t.equal(grafana.environment?.GF_AUTH_ANONYMOUS_ORG_ROLE ?? 'Viewer', 'Viewer', 'anonymous users may only look')
})

// ---- dashboard -----------------------------------------------------------------------------

t.test('the dashboard: Grafana 10/11 schema, a data source and a model variable', async (t) => {
  t.equal(dashboard.uid, 'isomax-serve')
  t.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion} is Grafana 10 or 11's`)
  const dsVariable = dashboard.templating.list.find((v) => v.name === 'datasource')
  t.equal(dsVariable?.type, 'datasource')
  t.equal(dsVariable?.query, 'prometheus')
  const model = dashboard.templating.list.find((v) => v.name === 'model')
  t.ok(model, 'a model variable')
  const query = typeof model?.query === 'string' ? model.query : model?.query?.query
  t.equal(query, 'label_values(isomax_predictions_total, model)')
  t.equal(model?.definition, query)
  t.ok(model?.includeAll === true && model.multi === true, 'all models, or a choice of several')
  t.equal(model?.allValue, '.*', '"All" is a regex that matches every model')
  t.same(dashboard.templating.list.map((v) => v.name).sort(), ['datasource', 'model'], 'no other variables')
})

t.test('every panel: a title, a description, a place, and queries on the data source', async (t) => {
  t.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique')
  for (const p of dashboard.panels) {
    t.ok(p.title.length > 0 && (p.description ?? '').length > 40, `${p.title}: titled and described`)
    t.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0, `${p.title}: within the 24-column grid`)
    t.ok((p.targets ?? []).length > 0, `${p.title}: at least one query`)
    for (const target of p.targets ?? []) {
      for (const ds of [p.datasource, target.datasource]) t.same(ds, DATASOURCE, `${p.title} ${target.refId}: the dashboard's Prometheus data source`)
      t.ok(target.expr.trim().length > 0, `${p.title} ${target.refId}: an expression`)
    }
  }
})

t.test('the queries use no Grafana variable but $model and $__rate_interval, and $model only as a regex', async (t) => {
  for (const { panel, target } of targets) {
    const variables = [...target.expr.matchAll(/\$\{?(\w+)/g)].map((m) => m[1])
    for (const v of variables) t.ok(v === 'model' || v === '__rate_interval', `${panel.title} ${target.refId}: $${v}`)
    t.equal((target.expr.match(/\$model/g) ?? []).length, (target.expr.match(/model=~"\$model"/g) ?? []).length, `${panel.title} ${target.refId}: model=~"$model"`)
    t.notMatch(target.expr, /\[\s*\$__(interval|range)\b/, `${panel.title} ${target.refId}: rates over $__rate_interval`)
  }
})

t.test('the core panels exist and say so', async (t) => {
  const core = dashboard.panels.filter((p) => p.description?.startsWith('[core]') === true).map((p) => p.title)
  t.same(core, CORE_PANELS)
  // The list the end-to-end run (scripts/monitoring-e2e.ts) reads: "Core panels: A; B; C."
  const listed = /core panels:\s*([^.\n]+)/i.exec(dashboard.description ?? '')?.[1]?.split(';').map((s) => s.trim())
  t.same(listed, CORE_PANELS, 'the dashboard\'s description lists them after "Core panels:"')
})

const GRPC_INFER = '/inference.GRPCInferenceService/ModelInfer'

t.test('the latency panel reads the classification routes the service has', async (t) => {
  const latency = dashboard.panels.find((p) => p.title === CORE_PANELS[1])!
  t.same(latency.targets!.map((x) => x.expr.match(/histogram_quantile\(([\d.]+)/)?.[1]), ['0.5', '0.95', '0.99'])
  for (const target of latency.targets!) {
    t.match(target.expr, /http_request_duration_seconds_bucket/)
    const alternatives = target.expr.match(/route=~"([^"]+)"/)?.[1]?.split('|') ?? []
    t.ok(alternatives.length > 0, 'filters by route')
    // The gRPC calls are counted under their RPC's path (src/protocols/oip-grpc/rpc.ts).
    t.ok(alternatives.includes(GRPC_INFER), 'gRPC ModelInfer too')
    for (const r of alternatives) t.ok(routes.includes(r) || r === GRPC_INFER, `${r} is a route of the service`)
  }
})

// ---- against the real metrics ----------------------------------------------------------------

// The real app (over a function instead of ONNX Runtime): three classifications and one 503
// from a closing replica, then its /metrics as Prometheus would scrape it.
const { app } = await buildOver(t)
for (let i = 0; i < 3; i++) {
  await app.inject({ method: 'POST', url: '/classify', payload: fixturePng(i), headers: { 'content-type': 'image/png' } })
}
app.lifecycle.closing = true
await app.inject({ method: 'POST', url: '/classify', payload: fixturePng(0), headers: { 'content-type': 'image/png' } })
app.lifecycle.closing = false
const exposition = (await app.inject('/metrics')).body

/** Series names the exposition holds: counters and gauges as named, histograms with their suffixes. */
const exported = new Set([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
  type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name!, `${name}_sum`, `${name}_count`] : [name!]))

t.test('the metric-name reader finds metrics, not functions, labels or numbers', async (t) => {
  t.same(metricNames('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{route=~"/a|/b"}[5m])))'), ['http_request_duration_seconds_bucket'])
  t.same(metricNames('sum by (model) (a_total{x="y"}) / ignoring (le) group_left () b:c:d + 1e-9 * c offset 5m > bool 0 or vector(0)'), ['a_total', 'b:c:d', 'c'])
})

t.test('every metric the dashboard and the rules read is exported by the service or recorded by rules.yml', async (t) => {
  const declared = [...read('src', 'plugins', 'metrics.ts').matchAll(/new (?:Counter|Gauge|Histogram|Summary)\(\{\s*name: '([^']+)'/g)].map((m) => m[1]!)
  t.ok(declared.length >= 15, 'src/plugins/metrics.ts declares the isomax metrics')
  for (const name of declared) t.ok([name, `${name}_count`].some((n) => exported.has(n)), `${name} is in /metrics`)
  const known = (name: string): boolean => exported.has(name) || recorded.has(name) || PROMETHEUS_SERIES.has(name)
  for (const { panel, target } of targets) {
    const names = metricNames(target.expr)
    t.ok(names.length > 0, `${panel.title} ${target.refId} reads a metric`)
    for (const name of names) t.ok(known(name), `${panel.title} ${target.refId}: ${name}`)
  }
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      for (const name of metricNames(rule.expr)) t.ok(known(name), `rules.yml ${rule.record ?? rule.alert}: ${name}`)
    }
  }
  t.ok(exposition.includes('isomax_predictions_total{model="'), 'the model variable\'s metric carries a model label')
})

t.test('every query returns data when promtool evaluates it over the service\'s series', { skip: noPromtool }, async (t) => {
  // Each exposed sample becomes a 15-minute series scraped every 15 s from one replica: gauges
  // hold their value, counters and histogram series grow by it at each scrape. rules.yml's
  // recording rules run over them as in Prometheus.
  const types = new Map([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => [name!, type!]))
  const steps = 60
  const series: Array<{ series: string, values: string }> = [{ series: `up{job="${JOB}",instance="replica-a:8080"}`, values: `1x${steps}` }]
  for (const line of exposition.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/)
    if (m === null) continue
    const [, name, labels, raw] = m
    const value = Number(raw)
    if (!Number.isFinite(value)) continue
    const base = name!.replace(/_(bucket|sum|count)$/, '')
    const cumulative = types.get(name!) === 'counter' || ['histogram', 'summary'].includes(types.get(base) ?? '')
    const labelSet = [labels, `job="${JOB}"`, 'instance="replica-a:8080"'].filter((l) => l !== undefined && l !== '').join(',')
    // promtool's series notation takes no exponents.
    const num = (x: number): string => Number.isInteger(x) ? String(x) : x.toFixed(12).replace(/0+$/, '')
    const values = cumulative ? `0${value < 0 ? '-' : '+'}${num(Math.abs(value))}x${steps}` : `${num(value)}+0x${steps}`
    series.push({ series: `${name}{${labelSet}}`, values })
  }
  const wrapped = targets.map(({ panel, target }) => ({ panel, target, expr: `count(${forPrometheus(target.expr)}) > bool 0` }))
  const dir = tmpDir(t)
  writeFileSync(path.join(dir, 'dashboard.test.yml'), stringify({
    rule_files: [RULES_FILE],
    evaluation_interval: '30s',
    tests: [{
      interval: '15s',
      input_series: series,
      promql_expr_test: wrapped.map((w) => ({ expr: w.expr, eval_time: '14m', exp_samples: [{ labels: '{}', value: 1 }] }))
    }]
  }, { lineWidth: 0 }))
  const r = runPromtool(['test', 'rules', 'dashboard.test.yml'], dir)
  t.ok(r.ok, r.ok ? 'promtool test rules passed' : r.output.slice(0, 4000))
  for (const w of wrapped) {
    const core = CORE_PANELS.includes(w.panel.title) ? ' (core)' : ''
    t.notOk(r.output.includes(JSON.stringify(w.expr)), `${w.panel.title}${core} ${w.target.refId} returns data: ${w.target.expr}`)
  }
})

t.test('the files this test reads are the ones the README names', async (t) => {
  const readme = read('deploy', 'README.md')
  const monitoring = readme.slice(readme.indexOf('## Monitoring'))
  t.ok(readme.includes('## Monitoring'), 'deploy/README.md has a Monitoring section')
  for (const f of ['docker compose --profile monitoring up -d', 'deploy/prometheus/rules.yml', 'deploy/grafana/dashboards/isomax-serve.json',
    'deploy/k8s/monitoring/podmonitor.yaml', 'deploy/k8s/monitoring/prometheusrule.yaml', 'deploy/prometheus/prometheus-k8s.yml', 'docs/runbook.md']) {
    t.ok(monitoring.includes(f), `the Monitoring section names ${f}`)
  }
  for (const f of ['deploy/grafana/dashboards/isomax-serve.json', 'deploy/k8s/monitoring/podmonitor.yaml', 'deploy/k8s/monitoring/prometheusrule.yaml', 'deploy/prometheus/prometheus-k8s.yml']) {
    t.ok(statSync(path.join(REPO, f)).isFile(), `${f} exists`)
  }
})
