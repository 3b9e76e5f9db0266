// `npm run db:migrate`: creates the database if missing and applies pending migrations (what the docker
// compose "migrate" service runs). Works without Prisma's schema engine.
import { loadConfig } from '../config.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { createLogger } from '../logger.ts';

const config = loadConfig();
await prepareDatabase(config.DATABASE_URL, createLogger(config.LOG_LEVEL, 'migrate'));
