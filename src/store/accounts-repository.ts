import type { Kysely } from 'kysely';
import { newId, ID_PREFIX } from '../domain/ids.js';
import type { AccountsRepository, ApiKeysRepository } from '../domain/ports/accounts-repository.js';
import { CHANNELS, type Change } from '../domain/ports/notifications.js';
import type { StoreAdapter } from './dialect/index.js';
import type { Database } from './schema.js';

export function createAccountsRepository(db: Kysely<Database>): AccountsRepository {
  return {
    async ensure(name, nowIso) {
      await db
        .insertInto('accounts')
        .values({ id: newId(ID_PREFIX.account), name, created_at: nowIso })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      return db.selectFrom('accounts').select(['id', 'name']).where('name', '=', name).executeTakeFirstOrThrow();
    },
  };
}

export function createApiKeysRepository(db: Kysely<Database>, adapter: Pick<StoreAdapter, 'notifyWithin'>): ApiKeysRepository {
  const selectKeys = () =>
    db
      .selectFrom('api_keys')
      .innerJoin('accounts', 'accounts.id', 'api_keys.account_id')
      .select([
        'api_keys.id',
        'api_keys.account_id',
        'accounts.name as account_name',
        'api_keys.prefix',
        'api_keys.created_at',
        'api_keys.revoked_at',
      ]);

  return {
    async insert(accountId, keyHash, prefix, nowIso) {
      const id = newId(ID_PREFIX.apiKey);
      await db
        .insertInto('api_keys')
        .values({ id, account_id: accountId, key_hash: keyHash, prefix, created_at: nowIso, revoked_at: null })
        .execute();
      return selectKeys().where('api_keys.id', '=', id).executeTakeFirstOrThrow();
    },
    async accountForKeyHash(keyHash) {
      const row = await db
        .selectFrom('api_keys')
        .select('account_id')
        .where('key_hash', '=', keyHash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return row?.account_id;
    },
    findByHash: (keyHash) => selectKeys().where('api_keys.key_hash', '=', keyHash).executeTakeFirst(),
    list: () => selectKeys().orderBy('api_keys.created_at').orderBy('api_keys.id').execute(),
    revoke(id, nowIso) {
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('api_keys')
          .set({ revoked_at: nowIso })
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        if (result.numUpdatedRows === 0n) return false;
        // Every server's authentication cache forgets its keys when this commits.
        await adapter.notifyWithin(trx, CHANNELS.changes, JSON.stringify({ kind: 'api_keys' } satisfies Change));
        return true;
      });
    },
  };
}
