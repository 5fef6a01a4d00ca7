// The binary tensor framing on its own: lengths are checked before anything is sliced, so a
// lying header can neither read past the body nor make the server allocate what it claims.
import t from 'tap'
import { splitBody, takeBinary } from '../../src/protocols/oip-http/binary-body.js'
import { readBytesElements, writeBytesElements } from '../../src/protocols/oip/bytes-elements.js'

t.test('splitBody: the header length must be a whole number within the body', async (t) => {
  const body = Buffer.from('{"a":1}BINARY')
  t.same(splitBody(body, '7').header.toString(), '{"a":1}')
  t.same(splitBody(body, '7').binary.toString(), 'BINARY')
  t.same(splitBody(body, undefined).header.toString(), body.toString())
  for (const bad of ['-1', '1e3', 'x', '', '0x10', '9'.repeat(13)]) t.throws(() => splitBody(body, bad), { code: 'ISOMAX_BAD_REQUEST' }, bad)
  t.throws(() => splitBody(body, '14'), { message: /is 14, but the body has only 13 bytes/ })
  t.throws(() => splitBody(body, '999999999999'), { code: 'ISOMAX_BAD_REQUEST' }, 'a huge declared length is refused, not allocated')
})

t.test('takeBinary: sizes must add up to exactly what follows the header', async (t) => {
  const bin = Buffer.from('aaabb')
  const [a, none, b] = takeBinary(bin, [3, undefined, 2])
  t.equal(a!.toString(), 'aaa')
  t.equal(none, undefined)
  t.equal(b!.toString(), 'bb')
  t.throws(() => takeBinary(bin, [3, 3]), { message: /binary_data_size is 3, but only 2 bytes/ })
  t.throws(() => takeBinary(bin, [3]), { message: /add up to 3 bytes, but 5 bytes/ })
  t.throws(() => takeBinary(bin, [-1]), { message: /whole number/ })
  t.throws(() => takeBinary(bin, [2 ** 60]), { code: 'ISOMAX_BAD_REQUEST' })
})

t.test('BYTES elements: round trip; a length past the data or short data is a 400', async (t) => {
  const elements = [Buffer.from('one'), Buffer.alloc(0), Buffer.from('three')]
  const data = writeBytesElements(elements)
  t.same(readBytesElements(data, 3, 'x').map((b) => b.toString()), ['one', '', 'three'])
  t.throws(() => readBytesElements(data, 4, 'x'), { message: /element 3 has no length prefix/ })
  t.throws(() => readBytesElements(data, 2, 'x'), { message: /bytes left after the 2 elements/ })
  const lying = Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3])
  t.throws(() => readBytesElements(lying, 1, 'x'), { message: /declares 2147483647 bytes, but only 3 are left/ })
})
