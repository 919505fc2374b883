import { afterEach } from 'vitest';
import { startHttpsReceiver, type HttpsReceiver } from './https-receiver.js';

export interface Cleanups {
  /** Runs `close` after the test, after everything deferred later (reverse order). */
  defer(close: () => Promise<void> | void): void;
  /** A real HTTPS receiver on loopback, closed after the test. */
  receiver(options?: Parameters<typeof startHttpsReceiver>[0]): Promise<HttpsReceiver>;
}

/** What a test file's tests start and must stop: call once, at the top level of the file. */
export function useCleanups(): Cleanups {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const defer = (close: () => Promise<void> | void) => void cleanups.push(close);
  return {
    defer,
    async receiver(options) {
      const r = await startHttpsReceiver(options);
      defer(() => r.close());
      return r;
    },
  };
}

/** The value of one sample of a Prometheus text page (`name{labels}` as prom-client writes it), or undefined. */
export function metricSample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
