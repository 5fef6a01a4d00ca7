// Bounds on the shape of a JSON document, checked on its raw bytes before JSON.parse. Under the
// 1 MiB cap, 520,000 nested arrays or an object of 90,000 keys cost 130–300 ms of main-thread
// parsing each (issue 20): every health probe waits behind them. One pass over the bytes,
// with no allocation, refuses such a document in about a millisecond per MiB; anything that is
// not valid JSON is left for JSON.parse to name.

export interface JsonShapeLimits {
  /** Most arrays and objects open at once. */
  maxDepth: number
  /** Most object members (keys) in the whole document. */
  maxKeys: number
  /** Most array elements in the whole document. */
  maxElements: number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const COMMA = 0x2c
const COLON = 0x3a

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** What makes `json` exceed `limits` ("nested more than 16 deep", ...), or null when it fits. */
export function jsonShapeProblem (json: Uint8Array, limits: JsonShapeLimits): string | null {
  // Whether the container open at each depth is an array: a comma there separates elements.
  const isArray = new Uint8Array(limits.maxDepth + 1)
  let depth = 0
  let keys = 0
  let elements = 0
  let inString = false
  let afterOpenArray = false
  for (let i = 0; i < json.length; i++) {
    const c = json[i] as number
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
      continue
    }
    if (isSpace(c)) continue
    if (afterOpenArray) {
      afterOpenArray = false
      if (c !== CLOSE_ARRAY && ++elements > limits.maxElements) return `more than ${limits.maxElements} array elements`
    }
    switch (c) {
      case QUOTE:
        inString = true
        break
      case OPEN_ARRAY:
      case OPEN_OBJECT:
        if (++depth > limits.maxDepth) return `nested more than ${limits.maxDepth} deep`
        isArray[depth] = c === OPEN_ARRAY ? 1 : 0
        afterOpenArray = c === OPEN_ARRAY
        break
      case CLOSE_ARRAY:
      case CLOSE_OBJECT:
        if (depth > 0) depth--
        break
      case COMMA:
        if (isArray[depth] === 1 && ++elements > limits.maxElements) return `more than ${limits.maxElements} array elements`
        break
      case COLON:
        if (++keys > limits.maxKeys) return `more than ${limits.maxKeys} object keys`
        break
    }
  }
  return null
}
