// Memory for sharp decodes, shared by every request: at most `concurrency` decodes run at once
// and their decoded sizes (from the image header: width × height × channels × bytes per
// sample) add up to at most `capacity` bytes. A 311 KB interlaced 16-bit RGBA PNG of 40 MP
// decodes to ~310 MB, so without this a handful of such uploads in parallel would exceed a
// 1 GiB container. Decodes past the budget wait their turn, first come first served (a large
// decode is not starved by small ones), for at most `waitMs`.
import { DeadlineExceededError } from '../errors.js'

interface Waiter {
  bytes: number
  grant: () => void
}

export class DecodeBudget {
  private used = 0
  private running = 0
  private readonly waiting: Waiter[] = []

  constructor (readonly capacity: number, readonly concurrency: number) {}

  get inUse (): number {
    return this.used
  }

  get active (): number {
    return this.running
  }

  get queued (): number {
    return this.waiting.length
  }

  /**
   * Wait until `bytes` fit (bytes ≤ capacity: the caller refuses bigger images first), then
   * hold them until the returned release function is called. Rejects with a 503 after `waitMs`.
   */
  async acquire (bytes: number, waitMs: number): Promise<() => void> {
    if (bytes > this.capacity) throw new RangeError(`a decode of ${bytes} bytes can never fit a budget of ${this.capacity}`)
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, grant: resolve }
      if (this.waiting.length === 0 && this.fits(bytes)) {
        this.take(bytes)
        resolve()
        return
      }
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(new DeadlineExceededError(`the image waited ${waitMs} ms for decoding memory (DECODE_MEMORY_BYTES); retry shortly`))
        this.grantWaiting() // the head may have been the one that did not fit
      }, waitMs)
      waiter.grant = () => { clearTimeout(timer); resolve() }
      this.waiting.push(waiter)
    })
    let released = false
    return () => {
      if (released) return
      released = true
      this.used -= bytes
      this.running--
      this.grantWaiting()
    }
  }

  private fits (bytes: number): boolean {
    return this.running < this.concurrency && this.used + bytes <= this.capacity
  }

  private take (bytes: number): void {
    this.used += bytes
    this.running++
  }

  private grantWaiting (): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!
      this.take(next.bytes)
      next.grant()
    }
  }
}

const MiB = 1024 * 1024

/**
 * What a decode of that size costs in memory, measured here with sharp 0.35 on 40 MP images
 * (peak RSS growth of one decode + resize to 28×28): interlaced PNG 8/16-bit RGBA 1.05×, WebP
 * lossless 1.01×, WebP lossy 1.29× (YUV planes besides the RGBA buffer), progressive JPEG
 * 1.04× (16-bit coefficients, 3 of 4 bytes per pixel); baseline JPEG and non-interlaced PNG
 * stream and stay far below. 1.3× plus a constant for libvips' own buffers bounds them all.
 */
export function decodeMemory (decoded: number): number {
  return Math.ceil(decoded * 1.3) + 8 * MiB
}

const BYTES_PER_SAMPLE: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 }

/** Bytes an image occupies fully decoded, from what sharp reads of its header. */
export function decodedBytes (meta: { width?: number | undefined, height?: number | undefined, channels?: number | undefined, depth?: string | undefined }): number {
  const perSample = BYTES_PER_SAMPLE[meta.depth ?? 'uchar'] ?? 8
  return (meta.width ?? 0) * (meta.height ?? 0) * (meta.channels ?? 4) * perSample
}
