import type { Clock } from './clock.js';
import { invalidRequest, type AppError, type FieldError } from './errors.js';
import { eventProblems, MAX_EVENTS_PER_BATCH, parseTelemetryBatch, type TelemetryEvent, type TelemetryEventInput } from './telemetry.js';

/** What ingestion needs of the engine: record durably, then evaluate. */
export interface TelemetryIngestor {
  ingest(accountId: string, events: readonly TelemetryEvent[]): Promise<void>;
}

export interface TelemetryService {
  /** Validates the whole batch, records it durably and returns how many events it held. */
  ingest(accountId: string, inputs: readonly TelemetryEventInput[]): Promise<number>;
  /**
   * The rejection of a body that failed its schema: the schema's errors together with the
   * problems of every other item, so that each bad item is named, not only the first kind.
   * `schemaErrorCount` is how many schema problems there were, when only some are given.
   */
  rejectInvalid(body: unknown, schemaErrors: readonly FieldError[], schemaErrorCount?: number): AppError;
}

/** The item a field belongs to (`events[17].latency_ms` -> 17); -1 for the batch itself. */
function itemIndex(field: string): number {
  const match = /^events\[(\d+)\]/.exec(field);
  return match ? Number(match[1]) : -1;
}

function rejection(errors: readonly FieldError[], total = errors.length): AppError {
  return invalidRequest('validation', 'invalid telemetry batch, nothing was stored', errors, total);
}

export function createTelemetryService(deps: { ingestor: TelemetryIngestor; clock: Clock }): TelemetryService {
  return {
    async ingest(accountId, inputs) {
      const parsed = parseTelemetryBatch(inputs, deps.clock.now());
      if ('errors' in parsed) throw rejection(parsed.errors);
      await deps.ingestor.ingest(accountId, parsed.events);
      return parsed.events.length;
    },

    rejectInvalid(body, schemaErrors, schemaErrorCount = schemaErrors.length) {
      const now = deps.clock.now();
      const events = typeof body === 'object' && body !== null ? (body as { events?: unknown }).events : undefined;
      // An over-long batch is rejected for its length alone: its items are not looked at.
      const items = Array.isArray(events) && events.length <= MAX_EVENTS_PER_BATCH ? (events as unknown[]) : [];
      // A field the schema already rejected is named once, with the schema's reason.
      const named = new Set(schemaErrors.map((e) => e.field));
      const others = items.flatMap((item, i) => eventProblems(item, i, now)).filter((e) => !named.has(e.field));
      // Batch-level problems first, then item by item (the sort is stable).
      const errors = [...schemaErrors, ...others].sort((a, b) => itemIndex(a.field) - itemIndex(b.field));
      return rejection(errors, schemaErrorCount + others.length);
    },
  };
}
