// What POST /classify answers for the bundled sample src/ui/public/samples/fashion-ankle-boot.png
// with the default model: the example the API docs show, instead of one Swagger UI would make
// up from the types (a class index of 2⁵³ − 1, the first score kind). Scores and probabilities
// rounded to 7 digits, timings as measured on one CPU; test/openapi.test.ts classifies the same
// file and fails when the model or its calibration no longer give these values.
export const CLASSIFY_EXAMPLE_SAMPLE = 'fashion-ankle-boot.png'

export const CLASSIFY_EXAMPLE = {
  model: 'fashion-mnist-isomaxplus-md',
  version: '1.0.0',
  label: 'Ankle boot',
  classIndex: 9,
  topK: [
    { label: 'Ankle boot', classIndex: 9, probability: 0.9995734 },
    { label: 'Sneaker', classIndex: 7, probability: 0.0002366709 },
    { label: 'Sandal', classIndex: 5, probability: 0.0001501641 }
  ],
  reject: false,
  rejectReasons: [],
  ood: {
    score: -72.19713,
    kind: 'mahalanobis',
    threshold: -176.9875,
    reject: false,
    pValue: 0.8548387,
    minDistance: 2.598369
  },
  confidence: { value: 0.9995734, threshold: 0.8282092 },
  batchSize: 1,
  timings: { decode: 1.148, queue: 0.086, inference: 0.969, total: 6.155 }
} as const
