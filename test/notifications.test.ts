/**
 * Wake-ups between processes (LISTEN/NOTIFY on PostgreSQL): sent when the writing
 * transaction commits (not for a write that changed nothing), received by every process on the same
 * schema and by none on another schema of the same database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS } from '../src/domain/ports/notifications.js';
import { openStore, type Store } from '../src/store/store.js';
import { dropDatabaseFor, freshDatabaseUrl, locationOf, onPostgres } from './helpers/database.js';
import { sleep } from './helpers/webhook-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A store (as a process has one) on the database at `url`, listening. */
async function listeningStore(url: string): Promise<Store> {
  const store = await openStore({ location: locationOf(url) });
  await store.notifications.start();
  cleanups.push(() => store.close());
  return store;
}

describe.skipIf(!onPostgres)('notifications between processes', () => {
  it('reach every process of the schema when the write commits, none of another schema, and none for a write that changed nothing', async () => {
    const base = mkdtempSync(join(tmpdir(), 'alerts-notify-'));
    cleanups.push(async () => {
      rmSync(base, { recursive: true, force: true });
      await dropDatabaseFor(join(base, 'a'));
      await dropDatabaseFor(join(base, 'b'));
    });
    const schemaA = await freshDatabaseUrl(join(base, 'a'));
    const schemaB = await freshDatabaseUrl(join(base, 'b'));
    const writer = await listeningStore(schemaA);
    const sameSchema = await listeningStore(schemaA);
    const otherSchema = await listeningStore(schemaB);
    const heard = { same: [] as string[], other: [] as string[] };
    sameSchema.notifications.listen(CHANNELS.changes, (payload) => heard.same.push(payload));
    otherSchema.notifications.listen(CHANNELS.changes, (payload) => heard.other.push(payload));
    await sleep(100);

    const account = await writer.accounts.ensure('acme', new Date().toISOString());
    const key = await writer.apiKeys.insert(account.id, 'h'.repeat(64), 'alk_test', new Date().toISOString());
    expect(await writer.apiKeys.revoke(key.id, new Date().toISOString())).toBe(true);
    // A revocation that changes nothing (already revoked) notifies nobody.
    expect(await writer.apiKeys.revoke(key.id, new Date().toISOString())).toBe(false);
    await sleep(300);
    expect(heard.same).toEqual([JSON.stringify({ kind: 'api_keys' })]);
    expect(heard.other).toEqual([]);
  });
});
