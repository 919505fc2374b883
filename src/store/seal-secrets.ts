import type { Kysely } from 'kysely';
import type { StoreAdapter } from './dialect/index.js';
import type { Database } from './schema.js';
import { isPlainSealed, type SecretCipher } from './secret-cipher.js';

/**
 * Encrypts the signing secrets stored in plain text before a secret key was configured (the
 * current ones and the previous ones a rotation with overlap keeps); returns how many
 * endpoints had one sealed. A step of schema migration: the store runs it, in a transaction
 * holding the migration lock, at the server's start-up and in `alerts migrate` (a key may be
 * configured long after the schema migrations ran, so it cannot be a one-off migration).
 */
export async function sealPlainSecrets(db: Kysely<Database>, adapter: StoreAdapter, cipher: SecretCipher): Promise<number> {
  if (!cipher.encrypting) return 0;
  const plainOnes = async (from: Kysely<Database>) =>
    (await from.selectFrom('webhook_endpoints').select(['id', 'signing_secret', 'previous_signing_secret']).execute()).filter(
      (row) => isPlainSealed(row.signing_secret) || (row.previous_signing_secret !== null && isPlainSealed(row.previous_signing_secret)),
    );
  // Usually none: one read, no lock.
  if ((await plainOnes(db)).length === 0) return 0;
  const sealed = (value: string, id: string) => (isPlainSealed(value) ? cipher.seal(cipher.open(value, id), id) : value);
  // The scrubbing (SQLite: zeroed free space and a truncated WAL; PostgreSQL: VACUUM) cannot
  // run inside a transaction: it wraps the locked transaction that overwrites.
  return adapter.overwritingSecrets(db, () =>
    adapter.withMigrationLock(db, async (trx) => {
      const plain = await plainOnes(trx);
      for (const row of plain) {
        let update = trx
          .updateTable('webhook_endpoints')
          .set({
            signing_secret: sealed(row.signing_secret, row.id),
            previous_signing_secret: row.previous_signing_secret === null ? null : sealed(row.previous_signing_secret, row.id),
          })
          .where('id', '=', row.id)
          .where('signing_secret', '=', row.signing_secret);
        update =
          row.previous_signing_secret === null
            ? update.where('previous_signing_secret', 'is', null)
            : update.where('previous_signing_secret', '=', row.previous_signing_secret);
        await update.execute();
      }
      return plain.length;
    }),
  );
}
