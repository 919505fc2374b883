import type { AccountsRepository, ApiKeysRepository } from '../store/accounts-repository.js';
import { displayPrefix, hashApiKey, isPlausibleApiKey, newApiKey, type ApiKeyRecord } from './api-keys.js';
import { toIso, type Clock } from './clock.js';

export interface ApiKeysService {
  /** Creates a key for the account (created if needed); the key itself is returned only here. */
  create(accountName: string): Promise<{ record: ApiKeyRecord; key: string }>;
  /** Makes sure a given key exists for the account; reports what it found. */
  ensure(accountName: string, key: string): Promise<'created' | 'exists' | 'revoked'>;
  list(): Promise<ApiKeyRecord[]>;
  revoke(id: string): Promise<boolean>;
  /** The account of a live key, or undefined. */
  authenticate(key: string): Promise<string | undefined>;
}

export function createApiKeysService(deps: { accounts: AccountsRepository; apiKeys: ApiKeysRepository; clock: Clock }): ApiKeysService {
  const { accounts, apiKeys, clock } = deps;

  return {
    async create(accountName) {
      const now = toIso(clock.now());
      const account = await accounts.ensure(accountName, now);
      const key = newApiKey();
      const record = await apiKeys.insert(account.id, hashApiKey(key), displayPrefix(key), now);
      return { record, key };
    },

    async ensure(accountName, key) {
      const existing = await apiKeys.findByHash(hashApiKey(key));
      if (existing) return existing.revoked_at === null ? 'exists' : 'revoked';
      const now = toIso(clock.now());
      const account = await accounts.ensure(accountName, now);
      await apiKeys.insert(account.id, hashApiKey(key), displayPrefix(key), now);
      return 'created';
    },

    list: () => apiKeys.list(),
    revoke: (id) => apiKeys.revoke(id, toIso(clock.now())),

    async authenticate(key) {
      if (!isPlausibleApiKey(key)) return undefined;
      return apiKeys.accountForKeyHash(hashApiKey(key));
    },
  };
}
