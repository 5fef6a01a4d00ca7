// Writes deploy/k8s/monitoring/prometheusrule.yaml: a Prometheus Operator PrometheusRule that
// wraps exactly the groups of deploy/prometheus/rules.yml, comments included (npm run
// prometheus-rule). rules.yml stays the one source: promtool checks and tests it, the Compose and
// plain Kubernetes Prometheus load it as it is, and test/deploy/monitoring.test.ts fails when the
// committed PrometheusRule differs from what this script writes.
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Document, isMap, isScalar, isSeq, parseDocument } from 'yaml'
import { repoRoot } from '../src/tools/datasets/repo-root.js'

export const RULES_FILE = path.join(repoRoot(), 'deploy', 'prometheus', 'rules.yml')
export const PROMETHEUS_RULE_FILE = path.join(repoRoot(), 'deploy', 'k8s', 'monitoring', 'prometheusrule.yaml')
export const PROMETHEUS_RULE_COMMAND = 'node --import @tapjs/typescript/import scripts/prometheus-rule.ts'

const HEADER = [
  'Generated from deploy/prometheus/rules.yml by scripts/prometheus-rule.ts: do not edit.',
  'After a change to rules.yml, run (npm run prometheus-rule):',
  `  ${PROMETHEUS_RULE_COMMAND}`,
  '',
  'The Prometheus Operator loads these groups into every Prometheus whose ruleSelector matches',
  'the labels below: kube-prometheus-stack\'s default wants the Helm release\'s label (e.g.',
  '`release: kube-prometheus-stack`); add it in the generator, or set',
  'ruleSelectorNilUsesHelmValues=false. Apply in the namespace the operator watches for rules:',
  '  kubectl apply -f deploy/k8s/monitoring/'
]

export function generatePrometheusRule (rules: string = readFileSync(RULES_FILE, 'utf8')): string {
  const source = parseDocument(rules)
  if (source.errors.length > 0) throw new Error(`${RULES_FILE}: ${source.errors.map((e) => e.message).join('; ')}`)
  const groups = source.get('groups', true)
  if (!isSeq(groups)) throw new Error(`${RULES_FILE} has no list of groups`)
  const doc = new Document({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'isomax-serve',
      labels: { 'app.kubernetes.io/name': 'isomax-serve' }
    },
    spec: { groups: null }
  })
  // The node itself, not its JS value: the comments and block scalars (`expr: |`) come along.
  doc.setIn(['spec', 'groups'], groups)
  // rules.yml's own header (what the drift alerts test, and why) follows ours. The parser hangs
  // it on the document, the top map or its first key, depending on the blank lines around it.
  const top = isMap(source.contents) ? source.contents : undefined
  const firstKey = top?.items[0]?.key
  const theirs = [source.commentBefore, top?.commentBefore, isScalar(firstKey) ? firstKey.commentBefore : undefined]
    .filter((c): c is string => typeof c === 'string' && c.trim() !== '').join('\n')
  const header = [...HEADER, ...(theirs === '' ? [] : ['', 'From rules.yml:', ...theirs.split('\n').map((line) => line.replace(/^ /, ''))])]
  // ' ' prints as a bare '#': one comment block, no blank lines in it.
  doc.commentBefore = header.map((line) => ' ' + line).join('\n')
  return doc.toString({ lineWidth: 0 })
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  writeFileSync(PROMETHEUS_RULE_FILE, generatePrometheusRule())
  process.stdout.write(`wrote ${PROMETHEUS_RULE_FILE}\n`)
}
