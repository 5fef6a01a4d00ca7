// The decode budget on its own: byte and concurrency bounds, first come first served, a
// bounded wait, and every release given back exactly once.
import t from 'tap'
import { DecodeBudget, decodedBytes } from '../../src/preprocess/decode-budget.js'

t.test('decoded size from the header: width × height × channels × bytes per sample', async (t) => {
  t.equal(decodedBytes({ width: 28, height: 28, channels: 1, depth: 'uchar' }), 784)
  t.equal(decodedBytes({ width: 8000, height: 5000, channels: 4, depth: 'ushort' }), 320_000_000, 'the 40 MP 16-bit RGBA bomb: 320 MB')
  t.equal(decodedBytes({ width: 100, height: 100, channels: 3, depth: 'float' }), 120_000)
})

t.test('within budget: granted at once; past it: waits, in arrival order', async (t) => {
  const budget = new DecodeBudget(100, 10)
  const a = await budget.acquire(60, 1000)
  const order: string[] = []
  const b = budget.acquire(50, 1000).then((release) => { order.push('b'); return release })
  const c = budget.acquire(10, 1000).then((release) => { order.push('c'); return release })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(order, [], 'c fits but waits behind b: no starvation of large decodes')
  t.equal(budget.queued, 2)
  a()
  const [rb, rc] = await Promise.all([b, c])
  t.same(order, ['b', 'c'])
  t.equal(budget.inUse, 60)
  rb(); rc(); rc()
  t.equal(budget.inUse, 0, 'a second release of the same grant changes nothing')
  t.equal(budget.active, 0)
})

t.test('the concurrency bound holds whatever the sizes', async (t) => {
  const budget = new DecodeBudget(1000, 2)
  const r1 = await budget.acquire(1, 1000)
  const r2 = await budget.acquire(1, 1000)
  let third = false
  const p = budget.acquire(1, 1000).then((r) => { third = true; return r })
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(third)
  r1()
  ;(await p)()
  t.ok(third)
  r2()
  t.equal(budget.active, 0)
})

t.test('a wait past waitMs is a 503 DEADLINE_EXCEEDED, and it does not block those behind it', async (t) => {
  const budget = new DecodeBudget(100, 10)
  const held = await budget.acquire(90, 1000)
  const big = budget.acquire(50, 30)
  const small = budget.acquire(5, 5000)
  await t.rejects(big, { code: 'ISOMAX_DEADLINE_EXCEEDED', statusCode: 503 })
  ;(await small)()
  held()
  t.equal(budget.inUse, 0)
  await t.rejects(budget.acquire(101, 10), RangeError, "an image bigger than the whole budget is the caller's to refuse")
})
