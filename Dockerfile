# One image for every role; docker-compose.yml picks the command.
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
CMD ["npm", "run", "start:gateway"]
