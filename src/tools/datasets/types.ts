// What calibrate and evaluate read: a named, described stream of images with optional labels.
import type { RawImage } from '../../preprocess/preprocess.js'

export interface Sample {
  /** File name or "<set>#<index>", for warnings about unreadable images. */
  name: string
  /** Encoded bytes (PNG/JPEG/WebP, decoded exactly as the server decodes uploads) or raw pixels. */
  image: Uint8Array | RawImage
  /** Class name when the source knows it (IDX labels are mapped to names by the caller). */
  labelName?: string
  /** Class index when the source knows it directly (IDX labels). */
  labelIndex?: number
}

export interface Dataset {
  /** Human description for reports and the calibration record. */
  description: string
  size: number
  samples: () => AsyncIterable<Sample>
}

export class DatasetError extends Error {
  override name = 'DatasetError'
}
