// What the load generator sends: the service's own API (POST /classify, the image as the body)
// or the Open Inference Protocol as Triton's clients send it (POST /v2/models/<model>/infer:
// a JSON header, then the image as one BYTES element in binary; binary outputs).
export interface Traffic {
  protocol: 'classify' | 'v2'
  path: string
  requests: Array<{ body: Buffer, headers: Record<string, string> }>
}

export function classifyTraffic (bodies: Buffer[], contentType: string): Traffic {
  return { protocol: 'classify', path: '/classify', requests: bodies.map((body) => ({ body, headers: { 'content-type': contentType } })) }
}

export function v2Traffic (bodies: Buffer[], model: string): Traffic {
  return {
    protocol: 'v2',
    path: `/v2/models/${encodeURIComponent(model)}/infer`,
    requests: bodies.map((image) => {
      const element = Buffer.alloc(4)
      element.writeUInt32LE(image.length)
      const header = Buffer.from(JSON.stringify({
        inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 4 + image.length } }],
        // What tritonclient asks for when no outputs are named.
        parameters: { binary_data_output: true }
      }))
      return { body: Buffer.concat([header, element, image]), headers: { 'inference-header-content-length': String(header.length) } }
    })
  }
}
