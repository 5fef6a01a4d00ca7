// deploy/prometheus/rules.yml: promtool accepts it, its unit tests pass (series that must fire
// each alert and series that must not, deploy/prometheus/tests/), and every alert carries a
// summary, a description and a runbook link to a section that exists.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { REPO } from '../helpers/data.js'

const DIR = path.join(REPO, 'deploy', 'prometheus')
const rules = parse(readFileSync(path.join(DIR, 'rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string, record?: string, annotations?: Record<string, string> }> }> }
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined)

t.test('promtool check rules', async (t) => {
  const r = spawnSync('promtool', ['check', 'rules', path.join(DIR, 'rules.yml')], { encoding: 'utf8' })
  t.equal(r.error, undefined, 'promtool is installed (Debian package prometheus)')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /SUCCESS: \d+ rules found/)
})

t.test('promtool test rules: every alert fires on its series and stays silent on the others', async (t) => {
  const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: path.join(DIR, 'tests'), encoding: 'utf8' })
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /SUCCESS/)
  const tests = readFileSync(path.join(DIR, 'tests', 'alerts.test.yml'), 'utf8')
  for (const a of alerts) {
    const cases = parse(tests).tests.filter((c: { alert_rule_test?: Array<{ alertname: string }> }) => c.alert_rule_test?.some((x) => x.alertname === a.alert))
    const fires = cases.some((c: { alert_rule_test: Array<{ alertname: string, exp_alerts: unknown[] }> }) => c.alert_rule_test.some((x) => x.alertname === a.alert && x.exp_alerts.length > 0))
    const silent = cases.some((c: { alert_rule_test: Array<{ alertname: string, exp_alerts: unknown[] }> }) => c.alert_rule_test.some((x) => x.alertname === a.alert && x.exp_alerts.length === 0))
    t.ok(fires && silent, `${a.alert}: a case that must fire and one that must not`)
  }
})

t.test('every alert: summary, description, and a runbook section that exists', async (t) => {
  const runbook = readFileSync(path.join(REPO, 'docs', 'runbook.md'), 'utf8')
  const anchors = new Set([...runbook.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')))
  t.ok(alerts.length >= 7, `${alerts.length} alerts`)
  for (const a of alerts) {
    t.ok((a.annotations?.summary ?? '') !== '', `${a.alert}: summary`)
    t.ok((a.annotations?.description ?? '').length > 40, `${a.alert}: description`)
    const m = /^docs\/runbook\.md#(.+)$/.exec(a.annotations?.runbook_url ?? '')
    t.ok(m !== null && anchors.has(m[1]!), `${a.alert}: runbook_url points at a section of docs/runbook.md`)
  }
})
