import type { Clock } from './clock.js';
import { AppError, type FieldError } from './errors.js';
import { eventProblems, parseTelemetryBatch, type TelemetryEvent, type TelemetryEventInput } from './telemetry.js';

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
   */
  rejectInvalid(body: unknown, schemaErrors: readonly FieldError[]): AppError;
}

/** Errors listed in one response; a batch of 10,000 bad items gets a count of the rest. */
const MAX_LISTED_ERRORS = 100;

/** The item a field belongs to (`events[17].latency_ms` -> 17); -1 for the batch itself. */
function itemIndex(field: string): number {
  const match = /^events\[(\d+)\]/.exec(field);
  return match ? Number(match[1]) : -1;
}

function rejection(errors: readonly FieldError[]): AppError {
  const listed = errors.slice(0, MAX_LISTED_ERRORS);
  const describe = (e: FieldError) => (e.field === '(body)' ? e.message : `${e.field} ${e.message}`);
  const inList = listed.length > 5 ? `; ${listed.length - 5} more in errors` : '';
  const beyond = errors.length > listed.length ? `; ${errors.length - listed.length} more not listed` : '';
  return new AppError('validation', `invalid telemetry batch, nothing was stored: ${listed.slice(0, 5).map(describe).join('; ')}${inList}${beyond}`, listed);
}

export function createTelemetryService(deps: { ingestor: TelemetryIngestor; clock: Clock }): TelemetryService {
  return {
    async ingest(accountId, inputs) {
      const parsed = parseTelemetryBatch(inputs, deps.clock.now());
      if ('errors' in parsed) throw rejection(parsed.errors);
      await deps.ingestor.ingest(accountId, parsed.events);
      return parsed.events.length;
    },

    rejectInvalid(body, schemaErrors) {
      const now = deps.clock.now();
      const items =
        typeof body === 'object' && body !== null && Array.isArray((body as { events?: unknown }).events)
          ? ((body as { events: unknown[] }).events)
          : [];
      // A field the schema already rejected is named once, with the schema's reason.
      const named = new Set(schemaErrors.map((e) => e.field));
      const others = items.flatMap((item, i) => eventProblems(item, i, now)).filter((e) => !named.has(e.field));
      // Batch-level problems first, then item by item (the sort is stable).
      const errors = [...schemaErrors, ...others].sort((a, b) => itemIndex(a.field) - itemIndex(b.field));
      return rejection(errors);
    },
  };
}
