# syntax=docker/dockerfile:1
# The Celeriac operator image: `celeriac operator` on distroless Node.js 20, as a non-root user,
# with no shell and nothing written outside /tmp (runs with a read-only root filesystem).
#
#   docker build -t ghcr.io/celeriac/operator:0.1.0 .
#
# Untested build: CI has no Docker engine; test/charts/dockerfiles.test.ts checks this file statically.
ARG NODE_VERSION=20.20

# 1. Compile TypeScript with every dependency.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script compiles, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build && rm -rf dist/test dist/bench dist/scripts

# 2. Production dependencies only (no TypeScript, no eslint, no test tools).
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run tsc, which --omit=dev leaves out.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. Runtime: distroless (no shell, no package manager), non-root numeric user 65532.
FROM gcr.io/distroless/nodejs20-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
# the dashboard's page (celeriac dashboard serves it from <package>/dashboard/static)
COPY --from=build /src/dashboard/static ./dashboard/static
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/celeriac.js"]
CMD ["operator"]
