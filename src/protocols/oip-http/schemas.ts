// The Open Inference Protocol's error body, for the route schemas of protocols/oip-http.
import { z } from 'zod'

export const OipErrorSchema = z.object({
  error: z.string().describe('What was wrong, for a human')
}).meta({ id: 'OipError' })
