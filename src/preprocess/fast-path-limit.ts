// The most bytes a main-thread fast path will look at. The fast paths run on the event loop,
// so their cost must stay below sharp's fixed ~1 ms per call for ANY input, not only for real
// images: without a bound, 10 MiB of Huffman tables around a valid 28×28 frame kept the event
// loop busy for 330–700 ms, 10 MiB of empty stored deflate blocks for 40–150 ms. Above the
// bound the bytes go to sharp, off the main thread, unscanned.
//
// The bound is 1 kB + 4 bytes per model pixel (4,160 bytes for 28×28), which covers every real
// image at the model's size with room to spare:
// - PNG: the largest the fast path takes is 8-bit truecolour stored uncompressed, (3w + 1)·h
//   bytes of rows plus 11 of zlib and deflate framing and 57 of signature, IHDR, IDAT, IEND
//   (and 21 for a pHYs): 2,469 bytes from sharp at 28×28 with compressionLevel 0.
// - JPEG: headers (JFIF, up to 4 quantisation and 4 Huffman tables, frame, scan) stay under
//   1 kB; the entropy-coded data of 8-bit samples measured at most 2.4 bytes per pixel (noise,
//   quality 100, 4:4:4, standard tables: 2,539 bytes at 28×28; Fashion-MNIST at quality 100:
//   at most 2,001). test/preprocess/fast-path-hostile.test.ts checks such images stay on the
//   fast path.
// At the bound the worst input costs the fast paths about a tenth of a sharp call
// (docs/performance.md), and bailing out is always safe: sharp decodes what we skip.
export const FAST_PATH_BASE_BYTES = 1024
export const FAST_PATH_BYTES_PER_PIXEL = 4

/** The largest encoded image (bytes) a fast path considers for a width × height model input. */
export function fastPathMaxBytes (width: number, height: number): number {
  return FAST_PATH_BASE_BYTES + FAST_PATH_BYTES_PER_PIXEL * width * height
}
