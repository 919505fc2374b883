import { sql, type Kysely } from 'kysely';
import { SHARD_COUNT } from '../domain/shards.js';
import { databaseClock } from './dialect/index.js';
import type { Database } from './schema.js';
import type { Store } from './store.js';

/**
 * What `alerts cluster status` shows: the servers sharing the database, the shards each one
 * owns, and how far behind each shard's owner is. Read from cluster_instances, shard_leases
 * and shard_sequences (migration 0010); every time is the database's clock, epoch ms, the one
 * the leases are compared with.
 */

/** Dead instances whose row expired longer ago than this are left out of the snapshot. */
export const DEAD_INSTANCE_VISIBLE_MS = 60 * 60 * 1000;

/**
 * `live`: its heartbeat row has not expired. `stopping`: alive, but shutting down (it takes
 * no shards and gives its own up). `dead`: its row expired (it stopped renewing).
 */
export type InstanceState = 'live' | 'stopping' | 'dead';

export interface InstanceStatus {
  instance_id: string;
  pid: number;
  hostname: string;
  address: string | null;
  started_at: string;
  /** now - heartbeat_at (0 when the heartbeat landed after the clock was read). */
  heartbeat_age_ms: number;
  /** expires_at - now: negative once the row has expired. */
  expires_in_ms: number;
  state: InstanceState;
  /** The shards whose lease it holds and has not expired, ascending. */
  shards: number[];
  /** Total lag of those shards. */
  lag: number;
}

/**
 * `owned`: a lease that has not expired. `expired`: the owner named stopped renewing it.
 * `unowned`: no owner (never taken, or given up).
 */
export type ShardState = 'owned' | 'expired' | 'unowned';

export interface ShardStatus {
  shard: number;
  state: ShardState;
  /** The instance the lease names (also when it expired). */
  owner: string | null;
  /** Fencing token: grows on every change of owner. */
  epoch: number;
  /** now - acquired_at; null when the shard was never acquired. */
  lease_age_ms: number | null;
  /** expires_at - now, negative once expired; null when there is no owner. */
  expires_in_ms: number | null;
  /** The last telemetry sequence number committed in the shard. */
  last_seq: number;
  /** The highest one its owner reported as applied. */
  applied_seq: number;
  /** last_seq - applied_seq: batches committed and not yet applied. */
  lag: number;
}

export interface ClusterStatus {
  database: Store['adapter'];
  location: string;
  /** The database's clock when read, epoch ms, and as ISO text. */
  now: number;
  now_iso: string;
  shard_count: number;
  /** Live, stopping, then dead instances; by start time within each group. */
  instances: InstanceStatus[];
  /** Dead instances left out (expired more than DEAD_INSTANCE_VISIBLE_MS ago). */
  hidden_dead_instances: number;
  /** Every shard, ascending. */
  shards: ShardStatus[];
  /** Shards without a live owner: unowned or with an expired lease, ascending. */
  unowned_shards: { shard: number; state: Exclude<ShardState, 'owned'>; owner: string | null; lag: number }[];
  /** Shards with a valid lease whose owner has no row in cluster_instances (or a hidden one). */
  shards_of_unlisted_owners: number[];
  summary: {
    live_instances: number;
    stopping_instances: number;
    dead_instances: number;
    owned_shards: number;
    total_lag: number;
  };
}

interface Rows {
  now: number;
  instances: { instance_id: string; pid: number; hostname: string; address: string | null; started_at: string; heartbeat_at: number; expires_at: number; stopping: number }[];
  hidden: number;
  leases: { shard: number; owner: string | null; epoch: number; expires_at: number; acquired_at: number; applied_seq: number; last_seq: number | null }[];
}

async function readRows(db: Kysely<Database>, dialect: Store['adapter']): Promise<Rows> {
  const nowRow = await sql<{ now: number | string }>`select ${databaseClock(dialect)} as now`.execute(db);
  const now = Number(nowRow.rows[0]!.now);
  const visibleAfter = now - DEAD_INSTANCE_VISIBLE_MS;
  const instances = await db
    .selectFrom('cluster_instances')
    .select(['instance_id', 'pid', 'hostname', 'address', 'started_at', 'heartbeat_at', 'expires_at', 'stopping'])
    .where('expires_at', '>', visibleAfter)
    .orderBy('started_at')
    .orderBy('instance_id')
    .execute();
  const hidden = await db
    .selectFrom('cluster_instances')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('expires_at', '<=', visibleAfter)
    .executeTakeFirstOrThrow();
  const leases = await db
    .selectFrom('shard_leases')
    .leftJoin('shard_sequences', 'shard_sequences.shard', 'shard_leases.shard')
    .select([
      'shard_leases.shard',
      'shard_leases.owner',
      'shard_leases.epoch',
      'shard_leases.expires_at',
      'shard_leases.acquired_at',
      'shard_leases.applied_seq',
      'shard_sequences.last_seq',
    ])
    .orderBy('shard_leases.shard')
    .execute();
  return { now, instances, hidden: Number(hidden.count), leases };
}

/**
 * A consistent snapshot of the cluster tables. On PostgreSQL the reads share one read-only
 * repeatable-read transaction; on SQLite (one writer, and a transaction there takes the
 * write lock) they are plain reads a moment apart.
 */
export async function readClusterStatus(store: Pick<Store, 'db' | 'adapter' | 'location'>): Promise<ClusterStatus> {
  const rows =
    store.adapter === 'postgres'
      ? await store.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute((trx) => readRows(trx, store.adapter))
      : await readRows(store.db, store.adapter);
  return buildStatus(store, rows);
}

function buildStatus(store: Pick<Store, 'adapter' | 'location'>, rows: Rows): ClusterStatus {
  const { now } = rows;
  const shards: ShardStatus[] = rows.leases.map((row) => {
    const expiresAt = Number(row.expires_at);
    const acquiredAt = Number(row.acquired_at);
    const appliedSeq = Number(row.applied_seq);
    const lastSeq = Number(row.last_seq ?? 0);
    const state: ShardState = row.owner === null ? 'unowned' : expiresAt > now ? 'owned' : 'expired';
    return {
      shard: Number(row.shard),
      state,
      owner: row.owner,
      epoch: Number(row.epoch),
      lease_age_ms: acquiredAt > 0 ? now - acquiredAt : null,
      expires_in_ms: row.owner === null ? null : expiresAt - now,
      last_seq: lastSeq,
      applied_seq: appliedSeq,
      lag: lastSeq - appliedSeq,
    };
  });

  const owned = new Map<string, ShardStatus[]>();
  for (const shard of shards) {
    if (shard.state !== 'owned') continue;
    const list = owned.get(shard.owner!) ?? [];
    list.push(shard);
    owned.set(shard.owner!, list);
  }

  const order: Record<InstanceState, number> = { live: 0, stopping: 1, dead: 2 };
  const instances: InstanceStatus[] = rows.instances
    .map((row) => {
      const expiresAt = Number(row.expires_at);
      const state: InstanceState = expiresAt <= now ? 'dead' : Number(row.stopping) !== 0 ? 'stopping' : 'live';
      const its = owned.get(row.instance_id) ?? [];
      return {
        instance_id: row.instance_id,
        pid: Number(row.pid),
        hostname: row.hostname,
        address: row.address,
        started_at: row.started_at,
        heartbeat_age_ms: Math.max(0, now - Number(row.heartbeat_at)),
        expires_in_ms: expiresAt - now,
        state,
        shards: its.map((s) => s.shard),
        lag: its.reduce((sum, s) => sum + s.lag, 0),
      };
    })
    // Stable: the start-time order of the query holds within each state.
    .sort((a, b) => order[a.state] - order[b.state]);

  const listed = new Set(instances.map((i) => i.instance_id));
  const count = (state: InstanceState) => instances.filter((i) => i.state === state).length;
  return {
    database: store.adapter,
    location: store.location,
    now,
    now_iso: new Date(now).toISOString(),
    shard_count: SHARD_COUNT,
    instances,
    hidden_dead_instances: rows.hidden,
    shards,
    unowned_shards: shards
      .filter((s): s is ShardStatus & { state: 'expired' | 'unowned' } => s.state !== 'owned')
      .map((s) => ({ shard: s.shard, state: s.state, owner: s.owner, lag: s.lag })),
    shards_of_unlisted_owners: shards.filter((s) => s.state === 'owned' && !listed.has(s.owner!)).map((s) => s.shard),
    summary: {
      live_instances: count('live'),
      stopping_instances: count('stopping'),
      dead_instances: count('dead'),
      owned_shards: shards.filter((s) => s.state === 'owned').length,
      total_lag: shards.reduce((sum, s) => sum + s.lag, 0),
    },
  };
}
