import type { Clock } from './clock.js';
import { AppError } from './errors.js';
import { parseTelemetryBatch, type TelemetryEvent, type TelemetryEventInput } from './telemetry.js';

/** What ingestion needs of the engine: record durably, then evaluate. */
export interface TelemetryIngestor {
  ingest(accountId: string, events: readonly TelemetryEvent[]): Promise<void>;
}

export interface TelemetryService {
  /** Validates the whole batch, records it durably and returns how many events it held. */
  ingest(accountId: string, inputs: readonly TelemetryEventInput[]): Promise<number>;
}

/** Errors listed in one response; a batch of 10,000 bad items gets a count of the rest. */
const MAX_LISTED_ERRORS = 100;

export function createTelemetryService(deps: { ingestor: TelemetryIngestor; clock: Clock }): TelemetryService {
  return {
    async ingest(accountId, inputs) {
      const parsed = parseTelemetryBatch(inputs, deps.clock.now());
      if ('errors' in parsed) {
        const { errors } = parsed;
        const listed = errors.slice(0, MAX_LISTED_ERRORS);
        const more = errors.length > listed.length ? ` (and ${errors.length - listed.length} more)` : '';
        throw new AppError(
          'validation',
          `invalid telemetry batch, nothing was stored: ${listed
            .slice(0, 5)
            .map((e) => `${e.field} ${e.message}`)
            .join('; ')}${errors.length > 5 ? `; ${errors.length - 5} more problem(s) in errors` : ''}${more}`,
          listed,
        );
      }
      await deps.ingestor.ingest(accountId, parsed.events);
      return parsed.events.length;
    },
  };
}
