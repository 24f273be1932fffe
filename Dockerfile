# syntax=docker/dockerfile:1
# One image for every RBS process; the entry point is chosen by the command:
#   node dist/services/orchestrator/main.js | node dist/services/worker/main.js | node dist/services/agent/main.js …
#
#   docker build -t rbs .                        # control plane: orchestrator and worker (the default target)
#   docker build --target agent -t rbs-agent .   # the same plus Bazel, for session agents
#
# The agent drives a real Bazel server, so its target adds Debian's bazel-bootstrap (Bazel 4.2.3 with OpenJDK
# 17, offline-capable); the control plane does not carry the JDK. Both run as a numeric non-root user, so Pod
# Security `restricted` admits them. Bazel needs a passwd entry for its user, hence a real account; its ids are
# build arguments so that docker-compose.yml can build with the laptop user's ids and keep bind-mounted state
# theirs. tini is PID 1: it forwards SIGTERM and reaps the Bazel server the agent starts (it daemonizes).

ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG UID=10001
ARG GID=10001

FROM ${NODE_IMAGE} AS base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates rsync tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

FROM base AS build
# better-sqlite3 compiles from source where no prebuilt binary fits the platform.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# .dockerignore lets in only the sources the services are built from.
COPY . .
RUN npm run build && npm prune --omit=dev

# What every RBS process runs, gathered into one tree so that each image takes it in one layer, last: the layers
# below it (the user, the agent's Bazel) are built once and reused while the sources change.
FROM scratch AS app
COPY --from=build /app/package.json /app/
COPY --from=build /app/node_modules /app/node_modules/
COPY --from=build /app/dist /app/dist/
# Loaded at run time: the .proto files by lib/grpc/protos.ts, versions.env by the rbs CLI.
COPY --from=build /app/proto /app/proto/
COPY --from=build /app/scripts/versions.env /app/scripts/

FROM base AS account
ARG UID
ARG GID
RUN groupadd --non-unique --gid "${GID}" rbs \
 && useradd --non-unique --uid "${UID}" --gid "${GID}" --home-dir /var/lib/rbs --create-home --shell /usr/sbin/nologin rbs
ENV NODE_ENV=production RBS_HOME=/var/lib/rbs
USER ${UID}:${GID}
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/cli/main.js", "help"]

FROM account AS agent
ARG UID
ARG GID
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bazel-bootstrap \
 && rm -rf /var/lib/apt/lists/*
USER ${UID}:${GID}
COPY --from=app /app ./

# Last, so a plain `docker build` makes the control-plane image. COPY makes root's files whatever the USER.
FROM account AS control-plane
COPY --from=app /app ./
