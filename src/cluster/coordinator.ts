import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ClusterRepository, Fence, HeldShard, InstanceRecord } from '../domain/ports/cluster-repository.js';
import { CHANNELS, type Notifications } from '../domain/ports/notifications.js';
import { SHARD_COUNT } from '../domain/shards.js';
import { processAlive } from '../server-lease.js';
import { quotaOf } from './fair-share.js';

/**
 * Membership and shard ownership, with PostgreSQL as the only shared component.
 *
 * Every instance heartbeats a row of its own and renews the leases of the shards it holds,
 * three times per TTL. Each round it computes its fair share from the live instances (the
 * same answer everywhere: see fair-share.ts), gives up its surplus and takes free or expired
 * shards up to its share. Taking a shard increments its epoch, the fencing token that every
 * transition write checks in its own transaction (cluster-repository.ts, checkFence): an
 * instance that stalled past its lease can no longer write for the shard, whatever it still
 * believes.
 *
 * Invariants: the listener hears `lost` before a lease is released (it stops writing first),
 * and `gained` after the lease is committed (its loads see every write of the previous owner,
 * since that owner's writes either committed before the takeover or were fenced).
 */
export interface ShardListener {
  /** Shards taken: load their state, then own them. Not awaited by the rounds. */
  gained(shards: readonly HeldShard[]): void;
  /** Shards lost or given up: stop writing for them now; resolves once their writes ended. */
  lost(shards: readonly number[]): Promise<void>;
  /** How far the shard's telemetry is applied here (reported with each renewal). */
  appliedThrough(shard: number): number;
}

export interface Coordinator {
  readonly instanceId: string;
  /** Joins and takes a first share of shards (their loads run on in the background). */
  start(): Promise<void>;
  /**
   * SIGTERM: takes no more shards and gives every shard up at once (the others take them
   * now, not after the TTL). Keeps heartbeating, so that its deliveries in flight are not
   * reaped while they finish, until `leave`. Never throws.
   */
  stop(): Promise<void>;
  /** Deletes its row: it is gone. Never throws. */
  leave(): Promise<void>;
  /** The fence for writes of a shard held here, or undefined. */
  fenceFor(shard: number): Fence | undefined;
  /** A write for the shard was refused by its fence: it is not ours any more. */
  fenced(shard: number): void;
  /** Shards held here, in order. */
  held(): number[];
  /** How many shards this instance held and should hold at its last round (GET /readyz). */
  share(): { held: number; quota: number | undefined };
  /** Where the API listens, reported in the instance's row. */
  setAddress(address: string): void;
  /** Runs a round now (tests, and after a notification that shards moved). */
  rebalance(): Promise<void>;
}

export interface CoordinatorDeps {
  repository: ClusterRepository;
  notifications: Notifications;
  logger: Logger;
  listener: ShardListener;
  ttlMs: number;
  /**
   * The single-server mode (SQLite): this process holds the database's server lease, so
   * every other instance row is a dead predecessor, evicted at start; it takes every shard.
   */
  exclusive: boolean;
  /** Whether a process of this host is alive; replaced in tests. */
  processAlive?: (pid: number) => boolean;
}

export function createCoordinator(deps: CoordinatorDeps): Coordinator {
  const { repository, logger, listener, ttlMs } = deps;
  const me: InstanceRecord = {
    instance_id: randomUUID(),
    pid: process.pid,
    hostname: hostname(),
    address: null,
    started_at: new Date().toISOString(),
  };
  const held = new Map<number, HeldShard>();
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  let again = false;
  let stopping = false;
  /** The fair share computed at the last round; undefined before the first one. */
  let quota: number | undefined;

  /** Drops shards locally (listener first), returning them with their epochs. */
  async function drop(shards: readonly number[], why: string): Promise<HeldShard[]> {
    const dropped = shards.flatMap((shard) => {
      const lease = held.get(shard);
      held.delete(shard);
      return lease ? [lease] : [];
    });
    if (dropped.length === 0) return [];
    logger.info({ shards: dropped.map((d) => d.shard), reason: why }, 'shards given up');
    await listener.lost(dropped.map((d) => d.shard));
    return dropped;
  }

  async function once(): Promise<void> {
    const { live } = await repository.heartbeat(me, ttlMs);
    if (stopping) return;
    const leases = [...held.values()];
    const renewed = new Set(await repository.renew(me.instance_id, leases.map((l) => ({ ...l, appliedSeq: listener.appliedThrough(l.shard) })), ttlMs));
    const lost = leases.filter((l) => !renewed.has(l.shard)).map((l) => l.shard);
    if (lost.length > 0) {
      logger.warn({ shards: lost }, 'shard leases were lost (not renewed in time, or taken over); this instance no longer writes for them');
      await drop(lost, 'lease lost');
    }
    quota = deps.exclusive ? SHARD_COUNT : quotaOf(me.instance_id, live);
    if (held.size > quota) {
      // The highest shard numbers go first: the same choice every round, so no shard moves twice.
      const surplus = [...held.keys()].sort((a, b) => b - a).slice(0, held.size - quota);
      const given = await drop(surplus, 'fair share');
      await repository.release(me.instance_id, given);
    } else if (held.size < quota) {
      const taken = await repository.acquire(me.instance_id, quota - held.size, ttlMs);
      if (stopping) {
        await repository.release(me.instance_id, taken);
        return;
      }
      if (taken.length > 0) {
        for (const lease of taken) held.set(lease.shard, lease);
        logger.info({ shards: taken.map((t) => t.shard), epochs: taken.map((t) => t.epoch), live: live.length }, 'shards taken');
        listener.gained(taken);
      }
    }
  }

  function rebalance(): Promise<void> {
    if (round) {
      again = true;
      return round;
    }
    round = (async () => {
      do {
        again = false;
        try {
          await once();
        } catch (error) {
          logger.error({ err: error }, 'cluster round failed (heartbeat, renewal or rebalancing); retrying');
        }
      } while (again && !stopping);
    })().finally(() => {
      round = undefined;
    });
    return round;
  }

  return {
    instanceId: me.instance_id,

    async start() {
      if (deps.exclusive) await repository.evictOthers(me.instance_id);
      else {
        // A predecessor on this host that died without leaving (kill -9, then a restart):
        // its shards are free now, not after its leases expire. Only this host's processes
        // can be asked; our own pid is another PID namespace (a container), not asked either.
        const dead = (await repository.instancesOn(me.hostname)).filter((i) => i.pid !== process.pid && !(deps.processAlive ?? processAlive)(i.pid));
        if (dead.length > 0) {
          logger.warn({ instances: dead.map((d) => d.instance_id), pids: dead.map((d) => d.pid) }, 'instances of this host that died without leaving: their shards are taken over now');
          await repository.evict(dead.map((d) => d.instance_id));
        }
      }
      deps.notifications.listen(CHANNELS.shards, () => {
        if (!stopping) void rebalance();
      });
      await rebalance();
      // The others give their surplus up now rather than at their next round.
      await deps.notifications.notify(CHANNELS.shards, '');
      // Three renewals per TTL: one late or failed renewal does not lose the shards.
      timer = setInterval(() => void rebalance(), Math.max(100, Math.floor(ttlMs / 3)));
      timer.unref();
    },

    async stop() {
      if (stopping) return;
      stopping = true;
      await round;
      try {
        await repository.markStopping(me.instance_id);
        const given = await drop([...held.keys()], 'shutting down');
        await repository.release(me.instance_id, given);
      } catch (error) {
        logger.error({ err: error }, 'giving shards up at shutdown failed; they move once their leases expire');
      }
    },

    async leave() {
      stopping = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await round;
      await repository.leave(me.instance_id).catch((error: unknown) => logger.error({ err: error }, 'leaving the cluster failed; the row expires by itself'));
    },

    fenceFor(shard) {
      const lease = held.get(shard);
      return lease && { owner: me.instance_id, shard, epoch: lease.epoch };
    },

    fenced(shard) {
      if (!held.has(shard)) return;
      void drop([shard], 'fenced').then(() => rebalance());
    },

    held: () => [...held.keys()].sort((a, b) => a - b),

    share: () => ({ held: held.size, quota }),

    setAddress(address) {
      me.address = address;
    },

    rebalance,
  };
}
