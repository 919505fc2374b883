/**
 * The out-of-order commit trap. Sequence numbers of concurrent transactions commit out of
 * order: a transaction may take number n, another n+1, and n+1 commit first. A reader that
 * remembers only the highest number it has applied then skips n for ever. Here a shard's
 * numbers come from its counter row, which the storing transaction holds until it commits:
 * a second batch of the shard waits for the first to commit, takes the next number, and the
 * owner's applier, which only ever applies "applied + 1", gets every batch once, in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { shardOf } from '../src/domain/shards.js';
import { createShardApplier } from '../src/engine/shard-applier.js';
import type { CommittedBatch } from '../src/engine/scope-registry.js';
import { openStore, type Store } from '../src/store/store.js';
import { dropDatabaseFor, freshDatabaseUrl, locationOf, onPostgres } from './helpers/database.js';
import { sleep } from './helpers/webhook-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Two stores (two connection pools, as two processes have) on one fresh database. */
async function twoStores(): Promise<[Store, Store]> {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-commit-order-'));
  const url = onPostgres ? await freshDatabaseUrl(dir) : join(dir, 'alerts.db');
  const a = await openStore({ location: locationOf(url) });
  const b = await openStore({ location: locationOf(url) });
  cleanups.push(async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
    await dropDatabaseFor(dir);
  });
  return [a, b];
}

const NOW = Date.now();
const deltas = (n: number) => JSON.stringify([[null, Math.floor(NOW / 1000), 0, 0, 0, n, 0, []]]);

/** An applier that records what it applies, reading the shard from `store`. */
function recordingApplier(store: Store) {
  const applied: number[] = [];
  let through = 0;
  const applier = createShardApplier({
    telemetry: store.telemetry,
    logger: createLogger('silent'),
    now: () => Date.now(),
    apply: (batch: CommittedBatch) => {
      applied.push(batch.seq);
      through = batch.seq;
      return [];
    },
    evaluate: async () => undefined,
    appliedThrough: () => through,
  });
  return { applier, applied };
}

// Only PostgreSQL takes writers in several processes (SQLite: one server, whose writes are serialized).
describe.skipIf(!onPostgres)('telemetry batches committed out of order', () => {
  it('makes a second batch of the shard wait for the first to commit, then numbers it next', async () => {
    const [a, b] = await twoStores();
    const account = (await a.accounts.ensure('acme', new Date(NOW).toISOString())).id;
    const shard = shardOf(account);
    let commitFirst!: () => void;
    const gate = new Promise<void>((resolve) => (commitFirst = resolve));
    let firstNumber = 0;
    // The first batch's transaction takes its number, writes its row, and stays open.
    const first = a.db.transaction().execute(async (trx) => {
      const { last_seq } = await trx
        .updateTable('shard_sequences')
        .set((eb) => ({ last_seq: eb('last_seq', '+', 1) }))
        .where('shard', '=', shard)
        .returning('last_seq')
        .executeTakeFirstOrThrow();
      firstNumber = Number(last_seq);
      await trx.insertInto('telemetry_batches').values({ account_id: account, received_at: NOW, deltas: deltas(1), shard, shard_seq: firstNumber }).execute();
      await gate;
    });
    await sleep(100);

    // The second batch, through the real path of another process, waits.
    let secondDone = false;
    const second = b.telemetry.record([{ accountId: account, receivedAt: NOW, deltas: deltas(2), projects: [] }]).then((outcomes) => {
      secondDone = true;
      return outcomes;
    });
    await sleep(400);
    expect(secondDone).toBe(false);

    // A reader meanwhile sees nothing: neither batch is committed.
    const { applier, applied } = recordingApplier(b);
    await applier.take(shard, async () => 0);
    await applier.idle();
    expect(applied).toEqual([]);

    commitFirst();
    await first;
    const [outcome] = await second;
    expect(outcome).toEqual({ shard, shardSeq: firstNumber + 1 });

    applier.wake(shard);
    await sleep(50);
    await applier.idle();
    expect(applied).toEqual([firstNumber, firstNumber + 1]);

    // Woken again (a late or repeated notification): nothing is applied twice.
    applier.wakeAll();
    await sleep(50);
    await applier.idle();
    expect(applied).toEqual([firstNumber, firstNumber + 1]);
  });

  it('applies every batch of many concurrent writers in two processes exactly once, in number order', async () => {
    const [a, b] = await twoStores();
    const account = (await a.accounts.ensure('acme', new Date(NOW).toISOString())).id;
    const shard = shardOf(account);
    const { applier, applied } = recordingApplier(a);
    await applier.take(shard, async () => 0);
    // The owner is woken while writers of both processes commit.
    const waking = setInterval(() => applier.wake(shard), 2);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const store = i % 2 === 0 ? a : b;
      writes.push(store.telemetry.record([{ accountId: account, receivedAt: NOW, deltas: deltas(1), projects: [] }]));
    }
    await Promise.all(writes);
    clearInterval(waking);
    applier.wake(shard);
    await sleep(50);
    await applier.idle();
    expect(applied).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
});
