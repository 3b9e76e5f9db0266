// `npm run -s keys -- create --scope admin|server|public [--description …]`: creates an API key and prints its
// secret alone on stdout (logs go to stderr), e.g. `KEY=$(npm run -s keys -- create --scope admin)`.
// `list` prints the keys as JSON lines; `revoke <id>` revokes one. Running gateways pick changes up at once.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { createDb } from '../db/client.ts';
import { createLogger } from '../logger.ts';
import { PubSub } from '../realtime/pubsub.ts';
import { connectRedis, createRedis } from '../redis.ts';
import { ApiKeyScope, KeyStore } from '../services/api-keys.ts';

const usage = 'usage: keys create --scope admin|server|public [--description TEXT] | keys list | keys revoke ID';
const config = loadConfig();
const logger = createLogger(config.LOG_LEVEL, 'keys', 2);
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { scope: { type: 'string' }, description: { type: 'string' } },
});
const [command, id] = positionals;
const scope = Object.values(ApiKeyScope).find((s) => s === values.scope?.toUpperCase());
if (!(command === 'list' || (command === 'create' && scope) || (command === 'revoke' && id))) {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}

const db = createDb(config.DATABASE_URL, {
  poolSize: 1,
  connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
  onError: (error) => logger.warn({ err: error.message }, 'postgres connection error'),
});
const publisher = createRedis(config.REDIS_URL, 'command');
await connectRedis(publisher, config.REDIS_URL);
// Publishing only: the subscriber connection is never connected.
const pubsub = new PubSub({
  publisher,
  subscriber: createRedis(config.REDIS_URL, 'subscriber'),
  prefix: config.REDIS_PREFIX,
});
const keys = new KeyStore({ db, pubsub, logger });
let exitCode = 0;
try {
  if (command === 'create' && scope) {
    const created = await keys.create(scope, values.description ?? null);
    logger.info({ id: created.id, scope }, 'API key created; its secret is printed once, on stdout');
    process.stdout.write(`${created.secret}\n`);
  } else if (command === 'revoke' && id) {
    const revoked = await keys.revoke(id);
    if (!revoked) {
      logger.error({ id }, 'no active key has this id');
      exitCode = 1;
    }
  } else {
    for (const key of await keys.list()) process.stdout.write(`${JSON.stringify(key)}\n`);
  }
} finally {
  await db.$disconnect();
  publisher.disconnect();
}
process.exit(exitCode);
