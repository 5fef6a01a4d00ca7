import { gzipSync } from 'node:zlib'
import t from 'tap'
import { IdxError, parseIdx } from '../../../src/tools/datasets/idx.js'

const idx = (dims: number[], data: number[]): Buffer => {
  const head = Buffer.alloc(4 + 4 * dims.length)
  head.set([0, 0, 8, dims.length])
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i))
  return Buffer.concat([head, Buffer.from(data)])
}

t.test('parses plain and gzipped IDX', async (t) => {
  const raw = idx([2, 2], [1, 2, 3, 4])
  t.same(parseIdx(raw).dims, [2, 2])
  t.same([...parseIdx(gzipSync(raw)).data], [1, 2, 3, 4])
})

t.test('a bad magic number or a short file is a clear error', async (t) => {
  t.throws(() => parseIdx(Buffer.from([0, 0, 9, 1, 0, 0, 0, 1, 5]), 'x.idx'), { name: 'IdxError', message: /x\.idx: .*bad magic number 0x00000901/ })
  t.throws(() => parseIdx(idx([3], [1, 2]), 'y.idx'), IdxError)
})
