import type { Config } from '../config.js';
import { createLogger, stdoutDestination } from '../logger.js';
import { createService, type Service } from '../service.js';
import { VERSION } from '../version.js';

/**
 * Runs the service until SIGTERM/SIGINT, then drains in-flight requests and exits. The
 * shutdown timeout is a hard limit: whatever still runs then (a hung receiver, a log reader
 * that went away) does not keep the process alive.
 */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel, stdoutDestination());
  // Set once created; the lease can be lost (and stop called) while it is still starting.
  const running: { service?: Service } = {};
  let stopping = false;

  const stop = (reason: NodeJS.Signals | 'lease lost', exitCode: number) => {
    if (stopping) return;
    stopping = true;
    // Armed before anything else can go wrong, and unref'd: it only ever shortens the run.
    setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    logger.info({ reason }, 'shutting down: finishing in-flight requests');
    (running.service?.close() ?? Promise.resolve()).then(
      () => {
        logger.info('shut down cleanly');
        process.exit(exitCode);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };

  const service = await createService({ config, logger, onLeaseLost: () => stop('lease lost', 1) });
  running.service = service;
  await service.app.listen({ host: config.host, port: config.port });
  const address = service.app.server.address();
  if (typeof address === 'object' && address) service.coordinator.setAddress(`http://${config.host}:${address.port}`);
  logger.info(
    { version: VERSION, pid: process.pid, database: config.database.display, port: typeof address === 'object' && address ? address.port : config.port },
    `alerts ${VERSION} started`,
  );
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
}
