# syntax=docker/dockerfile:1
# isomax-serve images. Two runtime targets from one build:
#   docker build -t isomax-serve:cpu .                             # runtime-cpu (the last stage, default)
#   docker build --target runtime-gpu -t isomax-serve:gpu .        # NVIDIA CUDA 12 + cuDNN 9
# Both listen on 0.0.0.0:8080 as the unprivileged user 1000, serve the models copied from
# models/ (mount another folder on /app/models to override them) and drain on SIGTERM
# (DRAIN_DELAY_MS, SHUTDOWN_TIMEOUT_MS; see deploy/README.md).

ARG NODE_IMAGE=node:20-bookworm-slim
# ONNX Runtime 1.30's CUDA provider is built for CUDA 12.x and cuDNN 9.x.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

# ---- build: compile the TypeScript service (dev dependencies included) -------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# --ignore-scripts: onnxruntime-node's install script only fetches the CUDA provider, which the
# build does not need (npm 10, in this image, would run it; package.json's allowScripts denies it to
# npm 11). sharp's libvips and ONNX Runtime's CPU library ship inside their npm packages.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- production dependencies, CPU --------------------------------------------------------------
# sharp's libvips and ONNX Runtime's CPU library ship inside their npm packages: no install
# script has anything to do.
FROM ${NODE_IMAGE} AS deps-cpu
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- production dependencies, GPU: onnxruntime-node's install script fetches the CUDA provider ---
FROM ${NODE_IMAGE} AS deps-gpu
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
COPY package.json package-lock.json ./
# The install script is run by hand, not left to npm: npm >= 11 skips dependency install
# scripts that package.json's allowScripts does not list. The check fails the build when the
# provider did not arrive (no network to api.nuget.org, for one).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && node node_modules/onnxruntime-node/script/install \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && npm cache clean --force

# ---- runtime, GPU --------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS node
FROM ${CUDA_IMAGE} AS runtime-gpu
# Node 20 itself: one static-enough binary (glibc >= 2.28); npm is not needed at runtime.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin node
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    GRPC_PORT=8081 \
    EXECUTION_PROVIDER=cuda \
    MODELS_MANIFEST=models/manifest.json
COPY package.json ./
COPY --from=deps-gpu /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# The try-it page's files, served as they are (UI_ENABLED); dist/src/ui finds them here.
COPY src/ui/public ./src/ui/public
# The gRPC service's .proto files, loaded at start (dist/src/protocols/oip-grpc finds them here).
COPY src/protocols/oip-grpc/proto ./src/protocols/oip-grpc/proto
COPY models ./models
# Files stay root-owned and read-only to the service.
USER 1000:1000
# HTTP (PORT) and the Open Inference Protocol over gRPC (GRPC_PORT, h2c).
EXPOSE 8080 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --start-interval=2s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/server.js"]

# ---- runtime, CPU (default target) ---------------------------------------------------------------
# DEFAULT_MODEL: on CPU, /classify serves the INT8 variant of the manifest's default (same answers
# within 0.3 pt and 0.002 AUROC, about half the CPU per request: docs/performance.md, INT8). The
# GPU image keeps the manifest's float32 default: INT8 was not measured on a GPU.
FROM ${NODE_IMAGE} AS runtime-cpu
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    GRPC_PORT=8081 \
    EXECUTION_PROVIDER=cpu \
    MODELS_MANIFEST=models/manifest.json \
    DEFAULT_MODEL=fashion-mnist-isomaxplus-md-int8
COPY package.json ./
COPY --from=deps-cpu /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# The try-it page's files, served as they are (UI_ENABLED); dist/src/ui finds them here.
COPY src/ui/public ./src/ui/public
# The gRPC service's .proto files, loaded at start (dist/src/protocols/oip-grpc finds them here).
COPY src/protocols/oip-grpc/proto ./src/protocols/oip-grpc/proto
COPY models ./models
# The image's `node` user (uid 1000), by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# HTTP (PORT) and the Open Inference Protocol over gRPC (GRPC_PORT, h2c).
EXPOSE 8080 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --start-interval=2s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/server.js"]
