// Hands the protocols the data plane (src/serving/data-plane.ts), its predictions observed by
// the metrics. Registered once; every protocol's routes call app.dataPlane.serve().
import fp from 'fastify-plugin'
import { DataPlane, type DataPlaneOptions } from '../serving/data-plane.js'
import { observeClassified } from './metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    dataPlane: DataPlane
  }
}

export default fp<DataPlaneOptions>(async function dataPlanePlugin (app, opts) {
  const { metrics } = app
  app.decorate('dataPlane', new DataPlane(app.engine, opts, {
    onPrediction: (model, { queueMs, ood }) => { observeClassified(metrics, model, queueMs, ood) }
  }))
}, { name: 'data-plane', dependencies: ['engine', 'metrics'] })
