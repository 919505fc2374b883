import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { createService } from '../service.js';

/** Runs the service until SIGTERM/SIGINT, then drains in-flight requests and exits. */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  const service = await createService({ config, logger });
  await service.app.listen({ host: config.host, port: config.port });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    service.close().then(
      () => {
        logger.info('shut down cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
