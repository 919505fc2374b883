import { createHash } from 'node:crypto';
import type { IdempotencyClaim, IdempotencyRecord } from './ports/telemetry-repository.js';
import type { Clock } from './clock.js';
import { AppError, invalidRequest, type FieldError } from './errors.js';
import { eventProblems, MAX_EVENTS_PER_BATCH, parseTelemetryBatch, type TelemetryEvent, type TelemetryEventInput } from './telemetry.js';

/** What ingestion needs of the engine: record durably (unless the key was taken), then evaluate. */
export interface TelemetryIngestor {
  ingest(accountId: string, events: readonly TelemetryEvent[], idempotency?: IdempotencyClaim): Promise<{ replayOf?: IdempotencyRecord }>;
}

/** Where the idempotency keys of earlier batches are looked up. */
export interface IdempotencyKeys {
  findIdempotencyKey(accountId: string, key: string, notBefore: number): Promise<IdempotencyRecord | undefined>;
}

/** How long a batch's Idempotency-Key is remembered. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
/** 1 to 255 printable ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x20-\\x7e]{1,255}$';
const IDEMPOTENCY_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);

export interface IngestResult {
  /** Events in the batch (for a replay: in the batch first sent with the key). */
  accepted: number;
  /** True when the batch repeats an earlier one with the same Idempotency-Key: nothing was counted. */
  replayed: boolean;
}

export interface TelemetryService {
  /**
   * Validates the whole batch, records it durably and returns how many events it held.
   * With an idempotency key: a repeat of a batch sent with the same key in the last 24 hours
   * is answered as the first was, and not counted again; another body with that key is a 409.
   */
  ingest(accountId: string, inputs: readonly TelemetryEventInput[], idempotencyKey?: string): Promise<IngestResult>;
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

/** The 400 of an Idempotency-Key that is not 1 to 255 printable ASCII characters. */
export function invalidIdempotencyKey(): AppError {
  return invalidRequest('validation', 'invalid Idempotency-Key header', [{ field: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' }]);
}

/** The answer to a batch whose key was already used: the first answer, or 409 for another body. */
function replay(stored: IdempotencyRecord, bodySha256: string): IngestResult {
  if (stored.body_sha256 !== bodySha256) {
    throw new AppError(
      'conflict',
      `this Idempotency-Key was used at ${new Date(stored.created_at).toISOString()} for a different batch; use a new key for a new batch`,
    );
  }
  return { accepted: stored.accepted, replayed: true };
}

export function createTelemetryService(deps: { ingestor: TelemetryIngestor; clock: Clock; idempotencyKeys: IdempotencyKeys }): TelemetryService {
  return {
    async ingest(accountId, inputs, idempotencyKey) {
      let claim: IdempotencyClaim | undefined;
      if (idempotencyKey !== undefined) {
        if (!IDEMPOTENCY_KEY.test(idempotencyKey)) throw invalidIdempotencyKey();
        const bodySha256 = createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
        const notBefore = deps.clock.now() - IDEMPOTENCY_KEY_TTL_MS;
        // A repeat is answered before its events are checked again: an event that was
        // recent enough then may be too old now, and the batch was accepted.
        const stored = await deps.idempotencyKeys.findIdempotencyKey(accountId, idempotencyKey, notBefore);
        if (stored !== undefined) return replay(stored, bodySha256);
        claim = { key: idempotencyKey, bodySha256, accepted: inputs.length, expiredBefore: notBefore };
      }
      const parsed = parseTelemetryBatch(inputs, deps.clock.now());
      if ('errors' in parsed) throw rejection(parsed.errors);
      const { replayOf } = await deps.ingestor.ingest(accountId, parsed.events, claim);
      // The same key sent twice at once: the first stored wins, the other is its repeat.
      if (replayOf !== undefined) return replay(replayOf, claim!.bodySha256);
      return { accepted: parsed.events.length, replayed: false };
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
