import type { Config } from '../config.js';
import { createApiKeysService } from '../domain/api-keys-service.js';
import { systemClock } from '../domain/clock.js';
import { openStore } from '../store/store.js';

type Out = (line: string) => void;

async function withKeys<T>(config: Config, run: (keys: ReturnType<typeof createApiKeysService>) => Promise<T>): Promise<T> {
  const store = await openStore({ location: config.database, secretKey: config.secretKey, migrations: config.autoMigrate ? 'apply' : 'verify' });
  try {
    return await run(createApiKeysService({ accounts: store.accounts, apiKeys: store.apiKeys, clock: systemClock }));
  } finally {
    await store.close();
  }
}

/** Creates a key; the key itself is printed alone on the last line, so scripts can `tail -n1`. */
export function createKey(config: Config, account: string, out: Out): Promise<void> {
  return withKeys(config, async (keys) => {
    const { record, key } = await keys.create(account);
    out(`Created API key ${record.id} for account "${record.account_name}". It is shown only now:`);
    out(key);
  });
}

export function listKeys(config: Config, out: Out): Promise<void> {
  return withKeys(config, async (keys) => {
    const records = await keys.list();
    if (records.length === 0) {
      out('No API keys. Create one with: alerts keys create --account <name>');
      return;
    }
    out(['ID', 'ACCOUNT', 'PREFIX', 'CREATED', 'STATUS'].join('\t'));
    for (const r of records) {
      out([r.id, r.account_name, `${r.prefix}…`, r.created_at, r.revoked_at ? `revoked ${r.revoked_at}` : 'active'].join('\t'));
    }
  });
}

/** Revokes a key; resolves false when there is no live key with that id. */
export function revokeKey(config: Config, id: string, out: Out): Promise<boolean> {
  return withKeys(config, async (keys) => {
    const revoked = await keys.revoke(id);
    if (revoked) out(`Revoked API key ${id}.`);
    return revoked;
  });
}

/**
 * `alerts migrate`: brings the schema to this version under the migration lock and seals
 * signing secrets stored in plain text, then exits. For operators who run the service with a
 * database user that may not change the schema (ALERTS_AUTO_MIGRATE=off).
 */
export async function migrateCommand(config: Config, out: Out): Promise<void> {
  const store = await openStore({ location: config.database, secretKey: config.secretKey, migrations: 'apply', sealSecrets: true });
  try {
    const { applied, version, sealedSecrets } = store.schema;
    out(
      applied.length === 0
        ? `Database ${store.location} (${store.adapter}) is up to date at ${version}.`
        : `Applied ${applied.length} migration(s) to ${store.location} (${store.adapter}): ${applied.join(', ')}. Now at ${version}.`,
    );
    if (sealedSecrets > 0) out(`Sealed ${sealedSecrets} signing secret(s) stored in plain text with ALERTS_SECRET_KEY.`);
  } finally {
    await store.close();
  }
}
