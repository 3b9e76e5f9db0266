# One image for every role; docker-compose.yml picks the command. Node runs directly (not through npm,
# which does not reliably forward SIGTERM), so a stop reaches the process and its graceful shutdown runs.
FROM node:20-bookworm
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci
COPY . .
ENV NODE_ENV=production
EXPOSE 4000
CMD ["node", "--single-threaded-gc", "--import", "tsx", "src/server.ts", "--role=gateway"]
