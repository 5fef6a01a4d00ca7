// The end-to-end monitoring test runs the alerting rules on a clock 30 times faster; this
// checks that the copy is the same rules: only durations change, and all of them do.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { shortenRules, withoutDurations } from '../../scripts/monitoring/shorten-rules.js'
import { REPO } from '../helpers/data.js'

const text = readFileSync(path.join(REPO, 'deploy', 'prometheus', 'rules.yml'), 'utf8')
const short = shortenRules(text, 30)

t.test('the shortened rules are the rules with durations divided by 30', async (t) => {
  t.equal(withoutDurations(short), withoutDurations(text), 'nothing but durations differs')
  t.notOk(/\[\d+[mh]\]|for: \d+[mh]|interval: \d+[mh]/.test(short), 'no minutes or hours left')
  const rules = (parse(short) as { groups: Array<{ interval: string, rules: Array<{ alert?: string, expr: string, for?: string }> }> }).groups
  const drift = rules.flatMap((g) => g.rules).find((r) => r.alert === 'IsomaxRejectRateHigh')!
  t.equal(drift.for, '10s', 'for: 5m → 10s')
  t.equal(rules[0]!.interval, '1s', 'interval: 30s → 1s')
  t.match(short, /increase\(isomax_predictions_total\[20s\]\)/, '[10m] → [20s]')
  t.match(short, /\[120s\]/, '[1h] → [120s]')
})

t.test('durations in seconds scale too, never below one second', async (t) => {
  t.equal(shortenRules('expr: rate(x[90s])', 30), 'expr: rate(x[3s])')
  t.equal(shortenRules('expr: rate(x[10s])', 30), 'expr: rate(x[1s])', 'never below one second')
})
