// The gateway: GraphQL over HTTP and WebSocket. With --role=gateway it serves only. By default (`npm start`:
// development, the demo, a single machine) it also runs the feature worker in this process and the trainer
// as a child process, so that training never runs on the event loop that serves.
import { buildApp } from './app.ts';
import { startChildRole } from './child-role.ts';
import { prepareDatabase } from './db/prepare.ts';
import { createLogger } from './logger.ts';
import { handleProcessSignals, loadConfigOrExit } from './process.ts';

const gatewayOnly = process.argv.includes('--role=gateway');
const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'gateway');

await prepareDatabase(config.DATABASE_URL, logger);
const app = await buildApp(config, { logger, workers: !gatewayOnly });
const trainer = gatewayOnly ? undefined : startChildRole('trainer.ts', logger);
handleProcessSignals(logger, async () => {
  await Promise.all([app.stop(), trainer?.stop()]);
});
const { url } = await app.start(config.PORT);
logger.info({ graphiql: `${url}/graphql`, workers: !gatewayOnly }, 'gateway listening');
// Behind a listening gateway: /health answers at once, /ready says what is still warming.
if (config.DEMO_DATA) {
  app.warmUp.loadDemoData().catch((error) => logger.error({ err: error }, 'loading the demo data failed'));
}
