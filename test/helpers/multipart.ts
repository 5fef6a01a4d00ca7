// A multipart/form-data body built by hand, so tests control every byte that is sent.
export interface Part { field: string, filename?: string, contentType?: string, data: Buffer | string }

export function multipart (parts: Part[], boundary = '----isomax-test-boundary'): { payload: Buffer, headers: Record<string, string> } {
  const chunks: Buffer[] = []
  for (const p of parts) {
    const disposition = `form-data; name="${p.field}"` + (p.filename !== undefined ? `; filename="${p.filename}"` : '')
    const head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n` +
      (p.contentType !== undefined ? `Content-Type: ${p.contentType}\r\n` : '') + '\r\n'
    chunks.push(Buffer.from(head), Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data), Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}
