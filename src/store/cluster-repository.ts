import { sql, type Kysely } from 'kysely';
import type { ClusterRepository, Fence } from '../domain/ports/cluster-repository.js';
import { FencedError } from '../domain/ports/cluster-repository.js';
import { CHANNELS } from '../domain/ports/notifications.js';
import type { StoreAdapter } from './dialect/index.js';
import type { Database } from './schema.js';

/**
 * Checks, inside a write transaction, that the fence still holds; throws FencedError when it
 * does not (the transaction rolls back). On PostgreSQL the lease row is locked in share mode
 * until commit: a takeover (an UPDATE of that row) waits for this transaction, and once it
 * has taken the row this check fails. SQLite transactions hold the whole file from their start.
 */
export async function checkFence(trx: Kysely<Database>, adapter: Pick<StoreAdapter, 'now' | 'rowLocks'>, fence: Fence): Promise<void> {
  let query = trx
    .selectFrom('shard_leases')
    .select('shard')
    .where('shard', '=', fence.shard)
    .where('owner', '=', fence.owner)
    .where('epoch', '=', fence.epoch)
    .where('expires_at', '>', adapter.now);
  if (adapter.rowLocks) query = query.forShare();
  if ((await query.executeTakeFirst()) === undefined) throw new FencedError(fence);
}

export function createClusterRepository(db: Kysely<Database>, adapter: Pick<StoreAdapter, 'now' | 'rowLocks' | 'notifyWithin'>): ClusterRepository {
  const now = adapter.now;
  const expiry = (ttlMs: number) => sql<number>`${now} + ${ttlMs}`;

  return {
    async heartbeat(me, ttlMs) {
      await db
        .insertInto('cluster_instances')
        .values({ ...me, heartbeat_at: now, expires_at: expiry(ttlMs), stopping: 0 })
        .onConflict((oc) =>
          oc.column('instance_id').doUpdateSet({ address: me.address, heartbeat_at: now, expires_at: expiry(ttlMs) }),
        )
        .execute();
      const rows = await db
        .selectFrom('cluster_instances')
        .select(['instance_id', sql<number>`${now}`.as('now')])
        .where('expires_at', '>', now)
        .where('stopping', '=', 0)
        .orderBy('instance_id')
        .execute();
      const dbNow = rows[0]?.now ?? Number((await sql<{ now: number }>`select ${now} as now`.execute(db)).rows[0]!.now);
      return { now: Number(dbNow), live: rows.map((r) => r.instance_id) };
    },

    async renew(owner, held, ttlMs) {
      if (held.length === 0) return [];
      const renewed: number[] = [];
      // One statement per shard keeps each row's own epoch and applied sequence; a handful
      // of shards per instance, every few seconds.
      await db.transaction().execute(async (trx) => {
        for (const { shard, epoch, appliedSeq } of held) {
          const row = await trx
            .updateTable('shard_leases')
            .set({ expires_at: expiry(ttlMs), applied_seq: appliedSeq })
            .where('shard', '=', shard)
            .where('owner', '=', owner)
            .where('epoch', '=', epoch)
            .where('expires_at', '>', now)
            .returning('shard')
            .executeTakeFirst();
          if (row) renewed.push(row.shard);
        }
      });
      return renewed;
    },

    async acquire(owner, count, ttlMs) {
      if (count <= 0) return [];
      return db.transaction().execute(async (trx) => {
        let free = trx
          .selectFrom('shard_leases')
          .select('shard')
          .where((eb) => eb.or([eb('owner', 'is', null), eb('expires_at', '<=', now)]))
          .orderBy('shard')
          .limit(count);
        // Two instances taking shards at once take different ones.
        if (adapter.rowLocks) free = free.forUpdate().skipLocked();
        const shards = (await free.execute()).map((r) => r.shard);
        if (shards.length === 0) return [];
        const taken = await trx
          .updateTable('shard_leases')
          .set((eb) => ({ owner, epoch: eb('epoch', '+', 1), expires_at: expiry(ttlMs), acquired_at: now }))
          .where('shard', 'in', shards)
          .where((eb) => eb.or([eb('owner', 'is', null), eb('expires_at', '<=', now)]))
          .returning(['shard', 'epoch'])
          .execute();
        return taken.map((r) => ({ shard: r.shard, epoch: Number(r.epoch) })).sort((a, b) => a.shard - b.shard);
      });
    },

    async release(owner, shards) {
      if (shards.length === 0) return;
      await db.transaction().execute(async (trx) => {
        for (const { shard, epoch } of shards) {
          await trx
            .updateTable('shard_leases')
            .set({ owner: null, expires_at: 0 })
            .where('shard', '=', shard)
            .where('owner', '=', owner)
            .where('epoch', '=', epoch)
            .execute();
        }
        // The others take them at once instead of at their next round.
        await adapter.notifyWithin(trx, CHANNELS.shards, '');
      });
    },

    async markStopping(instanceId) {
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('cluster_instances').set({ stopping: 1 }).where('instance_id', '=', instanceId).execute();
        await adapter.notifyWithin(trx, CHANNELS.shards, '');
      });
    },

    async leave(instanceId) {
      await db.deleteFrom('cluster_instances').where('instance_id', '=', instanceId).execute();
    },

    instancesOn: (host) => db.selectFrom('cluster_instances').select(['instance_id', 'pid']).where('hostname', '=', host).execute(),

    async evict(instanceIds) {
      if (instanceIds.length === 0) return;
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('cluster_instances').where('instance_id', 'in', [...instanceIds]).execute();
        await trx.updateTable('shard_leases').set({ owner: null, expires_at: 0 }).where('owner', 'in', [...instanceIds]).execute();
        await adapter.notifyWithin(trx, CHANNELS.shards, '');
      });
    },

    async evictOthers(instanceId) {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('cluster_instances').where('instance_id', '!=', instanceId).execute();
        await trx.updateTable('shard_leases').set({ owner: null, expires_at: 0 }).where('owner', '!=', instanceId).execute();
      });
    },
  };
}
