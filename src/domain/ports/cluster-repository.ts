/** A running server as it registers itself (cluster_instances). */
export interface InstanceRecord {
  instance_id: string;
  pid: number;
  hostname: string;
  /** Where its API listens, for operators; null until it listens. */
  address: string | null;
  started_at: string;
}

/** A shard this instance holds, and the fencing epoch it was taken under. */
export interface HeldShard {
  shard: number;
  epoch: number;
}

/**
 * The right to make a shard's writes: every transition, its event and its deliveries are
 * written in a transaction that first checks (and, on PostgreSQL, locks in share mode) the
 * lease row, so a takeover waits for the write or the write sees the takeover.
 */
export interface Fence {
  owner: string;
  shard: number;
  epoch: number;
}

/** A write refused because its fence no longer holds: the shard has another owner or its lease ran out. */
export class FencedError extends Error {
  constructor(readonly fence: Fence) {
    super(`shard ${fence.shard} is no longer held under epoch ${fence.epoch} by this instance`);
    this.name = 'FencedError';
  }
}

export interface ClusterRepository {
  /**
   * Registers or renews this instance until `ttlMs` from now (database time); returns the
   * live instances that take shards (not stopping), sorted by id, and the database time.
   */
  heartbeat(me: InstanceRecord, ttlMs: number): Promise<{ now: number; live: string[] }>;
  /**
   * Renews the given leases (each only while held under its epoch and not yet expired) and
   * records how far each shard's telemetry is applied; returns the shards renewed. A shard
   * missing from the answer is lost: stop writing for it.
   */
  renew(owner: string, held: readonly (HeldShard & { appliedSeq: number })[], ttlMs: number): Promise<number[]>;
  /** Takes up to `count` shards that have no live lease, each with its epoch incremented. */
  acquire(owner: string, count: number, ttlMs: number): Promise<HeldShard[]>;
  /** Gives leases up at once (only those still held under their epoch). */
  release(owner: string, shards: readonly HeldShard[]): Promise<void>;
  /** Shutting down: take no more shards (others see it at once). */
  markStopping(instanceId: string): Promise<void>;
  /** Gone: its row is deleted. */
  leave(instanceId: string): Promise<void>;
  /**
   * The single-server mode (SQLite): this process holds the database's server lease, so every
   * other instance row is a dead predecessor: deleted, their leases freed.
   */
  evictOthers(instanceId: string): Promise<void>;
  /** Instances registered from the host that have not left (live or not): pids to check. */
  instancesOn(hostname: string): Promise<{ instance_id: string; pid: number }[]>;
  /** Instances known to be dead (their process is gone): rows deleted, leases freed at once. */
  evict(instanceIds: readonly string[]): Promise<void>;
}
