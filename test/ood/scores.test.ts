import t from 'tap'
import { argmax, energy, entropic, maxlogit, mds, msp, score, softmax } from '../../src/ood/scores.js'

const close = (t: { ok: (v: boolean, m: string) => void }, a: number, b: number, tol = 1e-9, msg = ''): void => { t.ok(Math.abs(a - b) <= tol, `${msg} ${a} ≈ ${b}`) }

t.test('softmax is stable for large logits and sums to 1', async (t) => {
  const p = softmax([1000, 1000, 999])
  close(t, p[0]! + p[1]! + p[2]!, 1)
  close(t, p[0]!, p[1]!)
  t.ok(p[0]! > p[2]!)
})

t.test('mds is −(minimum distance) for negative distances', async (t) => {
  const logits = [-1.2, -0.3, -2.5]
  t.equal(mds(logits), -0.3)
  t.equal(maxlogit(logits), -0.3)
  t.equal(argmax(logits), 1)
})

t.test('entropic score: 0 for a confident one-hot, −log C for uniform', async (t) => {
  close(t, entropic([0, 0, 0, 0]), -Math.log(4))
  close(t, entropic([100, 0, 0, 0]), 0, 1e-9)
  t.ok(entropic([5, 0, 0]) > entropic([1, 0, 0]), 'more peaked = higher (more in-distribution)')
})

t.test('msp and energy by hand', async (t) => {
  close(t, msp([Math.log(3), 0]), 0.75)
  close(t, energy([0, 0]), Math.log(2))
  close(t, score('msp', [Math.log(3), 0]), 0.75)
})

t.test('every score is higher for the more in-distribution-looking input', async (t) => {
  const confident = [-0.1, -1.9, -1.8]
  const unsure = [-1.2, -1.3, -1.25]
  for (const kind of ['mds', 'entropic', 'msp', 'maxlogit', 'energy'] as const) {
    t.ok(score(kind, confident) > score(kind, unsure), kind)
  }
})
