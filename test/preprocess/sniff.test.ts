import t from 'tap'
import sharp from 'sharp'
import { sniffImage } from '../../src/preprocess/sniff.js'

const pixel = sharp({ create: { width: 2, height: 2, channels: 3, background: '#808080' } })

t.test('PNG, JPEG and WebP are supported', async (t) => {
  t.same(sniffImage(await pixel.clone().png().toBuffer()), { kind: 'supported', format: 'png' })
  t.same(sniffImage(await pixel.clone().jpeg().toBuffer()), { kind: 'supported', format: 'jpeg' })
  t.same(sniffImage(await pixel.clone().webp().toBuffer()), { kind: 'supported', format: 'webp' })
})

t.test('formats sharp could open are named and refused', async (t) => {
  t.same(sniffImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')), { kind: 'unsupported', format: 'SVG' })
  t.same(sniffImage(Buffer.from('<?xml version="1.0"?>\n<svg/>')), { kind: 'unsupported', format: 'SVG' })
  t.same(sniffImage(Buffer.from('%PDF-1.7\n')), { kind: 'unsupported', format: 'PDF' })
  t.same(sniffImage(await pixel.clone().gif().toBuffer()), { kind: 'unsupported', format: 'GIF' })
  t.same(sniffImage(await pixel.clone().tiff().toBuffer()), { kind: 'unsupported', format: 'TIFF' })
})

t.test('anything else is unknown', async (t) => {
  t.same(sniffImage(Buffer.from('hello, this is text')), { kind: 'unknown' })
  t.same(sniffImage(Buffer.alloc(0)), { kind: 'unknown' })
  t.same(sniffImage(Buffer.from([0x89, 0x50])), { kind: 'unknown' }, 'a PNG signature cut short')
})
