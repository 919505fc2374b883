import type { Kysely } from 'kysely';
import type { RecordOutcome, StoredScope, TelemetryRepository } from '../domain/ports/telemetry-repository.js';
import { CHANNELS } from '../domain/ports/notifications.js';
import { shardOf } from '../domain/shards.js';
import type { StoreAdapter } from './dialect/index.js';
import type { Database } from './schema.js';

export function createTelemetryRepository(db: Kysely<Database>, adapter: Pick<StoreAdapter, 'maxParameters' | 'notifyWithin' | 'notifications'>): TelemetryRepository {
  // Rows per multi-row statement: within the dialect's parameter limit (3 per scope row, 2
  // per key of a lookup), and small enough that one statement stays cheap to plan.
  const scopeRowsPerStatement = Math.min(300, Math.floor(adapter.maxParameters / 4));
  return {
    async record(batches) {
      if (batches.length === 0) return [];
      return db.transaction().execute(async (trx) => {
        // Keys first, one at a time in order: a key already stored (and not expired) makes its
        // batch a replay, stored no more. The insert is the check, so two batches with one
        // key cannot both pass it.
        const outcomes: (RecordOutcome | undefined)[] = batches.map(() => undefined);
        for (const [i, b] of batches.entries()) {
          const claim = b.idempotency;
          if (claim === undefined) continue;
          const taken = await trx
            .insertInto('telemetry_idempotency_keys')
            .values({ account_id: b.accountId, key: claim.key, body_sha256: claim.bodySha256, accepted: claim.accepted, created_at: b.receivedAt })
            .onConflict((oc) =>
              oc
                .columns(['account_id', 'key'])
                .doUpdateSet((eb) => ({
                  body_sha256: eb.ref('excluded.body_sha256'),
                  accepted: eb.ref('excluded.accepted'),
                  created_at: eb.ref('excluded.created_at'),
                }))
                .where('telemetry_idempotency_keys.created_at', '<', claim.expiredBefore),
            )
            .returning('key')
            .executeTakeFirst();
          if (taken) continue;
          const stored = await trx
            .selectFrom('telemetry_idempotency_keys')
            .select(['body_sha256', 'accepted', 'created_at'])
            .where('account_id', '=', b.accountId)
            .where('key', '=', claim.key)
            .executeTakeFirstOrThrow();
          outcomes[i] = { replayOf: { ...stored, created_at: Number(stored.created_at) } };
        }
        const stored = batches.filter((_, i) => outcomes[i] === undefined);
        if (stored.length === 0) return outcomes as RecordOutcome[];

        // Numbers first: each shard's counter row stays locked (UPDATE) until this transaction
        // commits, so a later transaction of the same shard gets higher numbers and commits
        // after this one. Shards in ascending order: two transactions never wait on each other
        // in opposite orders.
        const byShard = new Map<number, number[]>();
        stored.forEach((b, i) => {
          const shard = shardOf(b.accountId);
          const list = byShard.get(shard);
          if (list) list.push(i);
          else byShard.set(shard, [i]);
        });
        const numbers: { shard: number; shardSeq: number }[] = [];
        for (const shard of [...byShard.keys()].sort((a, b) => a - b)) {
          const members = byShard.get(shard)!;
          const { last_seq } = await trx
            .updateTable('shard_sequences')
            .set((eb) => ({ last_seq: eb('last_seq', '+', members.length) }))
            .where('shard', '=', shard)
            .returning('last_seq')
            .executeTakeFirstOrThrow();
          const first = Number(last_seq) - members.length + 1;
          members.forEach((index, k) => (numbers[index] = { shard, shardSeq: first + k }));
        }

        // Several requests' batches share one commit (one fsync) when they arrive together.
        const seen = new Map<string, { account_id: string; project_key: string; last_seen_at: number; shard: number }>();
        for (const b of stored) {
          for (const project_key of ['', ...b.projects]) {
            const key = `${b.accountId}\u0000${project_key}`;
            const last = seen.get(key);
            if (!last || last.last_seen_at < b.receivedAt) seen.set(key, { account_id: b.accountId, project_key, last_seen_at: b.receivedAt, shard: shardOf(b.accountId) });
          }
        }
        const rowsPerStatement = Math.floor(adapter.maxParameters / 5);
        for (let i = 0; i < stored.length; i += rowsPerStatement) {
          await trx
            .insertInto('telemetry_batches')
            .values(
              stored.slice(i, i + rowsPerStatement).map((b, k) => ({
                account_id: b.accountId,
                received_at: b.receivedAt,
                deltas: b.deltas,
                shard: numbers[i + k]!.shard,
                shard_seq: numbers[i + k]!.shardSeq,
              })),
            )
            .execute();
        }
        const scopes = [...seen.values()];
        for (let i = 0; i < scopes.length; i += scopeRowsPerStatement) {
          await trx
            .insertInto('telemetry_scopes')
            .values(scopes.slice(i, i + scopeRowsPerStatement))
            .onConflict((oc) =>
              oc.columns(['account_id', 'project_key']).doUpdateSet((eb) => ({ last_seen_at: eb.ref('excluded.last_seen_at') })),
            )
            .execute();
        }
        // Delivered at commit: the shards' owners read what was just committed.
        for (const shard of byShard.keys()) await adapter.notifyWithin(trx, CHANNELS.telemetry, `${shard}:${adapter.notifications.origin}`);
        let next = 0;
        return outcomes.map((outcome) => outcome ?? numbers[next++]!);
      });
    },
    async findIdempotencyKey(accountId, key, notBefore) {
      const row = await db
        .selectFrom('telemetry_idempotency_keys')
        .select(['body_sha256', 'accepted', 'created_at'])
        .where('account_id', '=', accountId)
        .where('key', '=', key)
        .where('created_at', '>=', notBefore)
        .executeTakeFirst();
      return row && { ...row, created_at: Number(row.created_at) };
    },
    async pruneIdempotencyKeys(createdBefore) {
      let deleted = 0;
      // About 5,000 at a time, oldest first: each delete is a short transaction that
      // ingestion does not wait long for.
      for (;;) {
        const fifthThousand = await db
          .selectFrom('telemetry_idempotency_keys')
          .select('created_at')
          .where('created_at', '<', createdBefore)
          .orderBy('created_at')
          .offset(4999)
          .limit(1)
          .executeTakeFirst();
        const before = fifthThousand === undefined ? createdBefore : Math.min(createdBefore, Number(fifthThousand.created_at) + 1);
        const result = await db.deleteFrom('telemetry_idempotency_keys').where('created_at', '<', before).executeTakeFirst();
        deleted += Number(result.numDeletedRows);
        if (fifthThousand === undefined || result.numDeletedRows === 0n) return deleted;
      }
    },
    shardBatchesSince: (shard, receivedAfter, afterSeq, limit) =>
      db
        .selectFrom('telemetry_batches')
        .select(['shard_seq', 'shard', 'account_id', 'received_at', 'deltas'])
        .where('shard', '=', shard)
        .where('shard_seq', '>', afterSeq)
        .where('received_at', '>', receivedAfter)
        .orderBy('shard_seq')
        .limit(limit)
        .execute(),
    accountBatchesSince: (accountId, receivedAfter, afterSeq, throughSeq, limit) =>
      db
        .selectFrom('telemetry_batches')
        .select(['shard_seq', 'shard', 'account_id', 'received_at', 'deltas'])
        .where('shard', '=', shardOf(accountId))
        .where('account_id', '=', accountId)
        .where('shard_seq', '>', afterSeq)
        .where('shard_seq', '<=', throughSeq)
        .where('received_at', '>', receivedAfter)
        .orderBy('shard_seq')
        .limit(limit)
        .execute(),
    accountsSeenSince: (shard, seenAfter) =>
      db
        .selectFrom('telemetry_scopes')
        .select(['account_id', 'project_key', 'last_seen_at'])
        .where('shard', '=', shard)
        .where('project_key', '=', '')
        .where('last_seen_at', '>', seenAfter)
        .execute(),
    async lastSequences() {
      const rows = await db.selectFrom('shard_sequences').select(['shard', 'last_seq']).execute();
      return new Map(rows.map((r) => [r.shard, Number(r.last_seq)]));
    },
    async lastSeen(scopes) {
      const found: StoredScope[] = [];
      // Each pair is a primary key lookup.
      for (let i = 0; i < scopes.length; i += scopeRowsPerStatement) {
        const chunk = scopes.slice(i, i + scopeRowsPerStatement);
        found.push(
          ...(await db
            .selectFrom('telemetry_scopes')
            .select(['account_id', 'project_key', 'last_seen_at'])
            .where((eb) => eb.or(chunk.map((s) => eb.and([eb('account_id', '=', s.account_id), eb('project_key', '=', s.project_key)]))))
            .execute()),
        );
      }
      return found;
    },
    async pruneBefore(receivedBefore) {
      // Only batches rolled up (telemetry-rollup.ts): the roll-up tables are the only copy of
      // a batch's telemetry once it is gone, so one not yet folded stays, however old.
      const result = await db
        .deleteFrom('telemetry_batches')
        .where('received_at', '<', receivedBefore)
        .where('shard_seq', '<=', (eb) =>
          eb.selectFrom('telemetry_rollup_progress as p').select('p.rolled_seq').whereRef('p.shard', '=', 'telemetry_batches.shard'),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
