export interface StoredBatch {
  /** The batch's number within its shard: dense and in commit order (see shard_sequences). */
  shard_seq: number;
  shard: number;
  account_id: string;
  received_at: number;
  deltas: string;
}

export interface StoredScope {
  account_id: string;
  /** The project id, or '' for the account as a whole. */
  project_key: string;
  last_seen_at: number;
}

export interface BatchRecord {
  accountId: string;
  receivedAt: number;
  deltas: string;
  projects: readonly string[];
  /** The sender's Idempotency-Key: stored with the batch, in the same transaction. */
  idempotency?: IdempotencyClaim;
}

export interface IdempotencyClaim {
  key: string;
  /** Hex SHA-256 of the batch as received. */
  bodySha256: string;
  /** Events in the batch: the answer to its replays. */
  accepted: number;
  /** A stored key created before this (epoch ms) has expired: it is taken anew. */
  expiredBefore: number;
}

/** An idempotency key as stored: the batch that first came with it. */
export interface IdempotencyRecord {
  body_sha256: string;
  accepted: number;
  created_at: number;
}

/** A batch was stored (its sequence number), or its key was already taken by an earlier batch. */
export type RecordOutcome = { shard: number; shardSeq: number } | { replayOf: IdempotencyRecord };

export interface TelemetryRepository {
  /**
   * Stores batches' deltas and marks their scopes as seen, all in one transaction; returns
   * the shard and shard sequence number given to each batch, in the order of `batches`. The
   * transaction holds its shards' counter rows from the numbering to the commit, so within a
   * shard the numbers are dense and commit in order; it notifies each shard's owner. A batch with an
   * idempotency key whose (account, key) is already stored and not expired is not stored:
   * its outcome is the stored key (the primary key decides, so of two batches with the same
   * key, in one transaction or not, only the first is stored).
   */
  record(batches: readonly BatchRecord[]): Promise<RecordOutcome[]>;
  /** The account's stored idempotency key, unless created before `notBefore`. */
  findIdempotencyKey(accountId: string, key: string, notBefore: number): Promise<IdempotencyRecord | undefined>;
  /** Deletes idempotency keys created before the time, in small batches; returns how many. */
  pruneIdempotencyKeys(createdBefore: number): Promise<number>;
  /** One shard's batches received after the time, in shard order, `limit` at a time after `afterSeq`. */
  shardBatchesSince(shard: number, receivedAfter: number, afterSeq: number, limit: number): Promise<StoredBatch[]>;
  /** One account's batches received after the time with afterSeq < shard_seq <= throughSeq, in order, `limit` at a time. */
  accountBatchesSince(accountId: string, receivedAfter: number, afterSeq: number, throughSeq: number, limit: number): Promise<StoredBatch[]>;
  /** The account-wide scopes (project_key '') of the shard seen after the time. */
  accountsSeenSince(shard: number, seenAfter: number): Promise<StoredScope[]>;
  /** The last sequence number committed in each shard (a shard without telemetry: 0). */
  lastSequences(): Promise<Map<number, number>>;
  /** The rows of the given scopes that exist: when each was last seen. */
  lastSeen(scopes: readonly Pick<StoredScope, 'account_id' | 'project_key'>[]): Promise<StoredScope[]>;
  /**
   * Deletes batches received before the time that are rolled up (shard_seq at most their
   * shard's rolled_seq: see TelemetryRollupRepository); returns how many.
   */
  pruneBefore(receivedBefore: number): Promise<number>;
}
