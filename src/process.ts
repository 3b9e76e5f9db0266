import { existsSync } from 'node:fs';
import { type Config, loadConfig } from './config.ts';
import type { Logger } from './logger.ts';

/**
 * Logs fatal errors and exits (the supervisor restarts the process); on SIGTERM/SIGINT runs `stop` once and
 * exits when it is done.
 */
export function handleProcessSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception');
    process.exit(1);
  });
}

/**
 * The validated configuration, or exit 1 with the list of what is wrong (no stack trace: it is for people).
 * A `.env` file (in the working directory unless `envFile` says otherwise) is read first; variables already
 * set in the environment win.
 */
export function loadConfigOrExit(envFile = '.env'): Config {
  try {
    if (existsSync(envFile)) process.loadEnvFile(envFile);
    return loadConfig();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}
