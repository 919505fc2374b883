import type { AccountsRepository, ApiKeysRepository } from './ports/accounts-repository.js';
import { displayPrefix, hashApiKey, isPlausibleApiKey, newApiKey, type ApiKeyRecord } from './api-keys.js';
import { toIso, type Clock } from './clock.js';
import { CHANNELS, type Change, type Notifications } from './ports/notifications.js';

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

const AUTH_CACHE_MAX_ENTRIES = 10_000;

export interface ApiKeysServiceDeps {
  accounts: AccountsRepository;
  apiKeys: ApiKeysRepository;
  clock: Clock;
  /** How long a successful key lookup is trusted without asking the database; 0 disables. */
  authCacheTtlMs?: number;
  /**
   * Revocations by other processes (the CLI, other servers) arrive here and clear the cache;
   * while notifications may be missed, the cache is not used.
   */
  notifications?: Notifications;
}

export function createApiKeysService(deps: ApiKeysServiceDeps): ApiKeysService {
  const { accounts, apiKeys, clock, authCacheTtlMs = 0, notifications } = deps;
  // Every request authenticates, so live keys are remembered briefly (by hash, never the
  // key). Revocation in this process clears the cache at once; a revocation by another
  // process (the CLI, another server) clears it when its notification arrives, and at the
  // latest within authCacheTtlMs. Unknown keys are never cached.
  const liveKeys = new Map<string, { accountId: string; expiresAt: number }>();
  notifications?.listen(CHANNELS.changes, (payload) => {
    if ((JSON.parse(payload) as Change).kind === 'api_keys') liveKeys.clear();
  });
  notifications?.onResync(() => liveKeys.clear());
  const cacheTrusted = () => notifications === undefined || notifications.live;

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

    async revoke(id) {
      const revoked = await apiKeys.revoke(id, toIso(clock.now()));
      liveKeys.clear();
      return revoked;
    },

    async authenticate(key) {
      if (!isPlausibleApiKey(key)) return undefined;
      const hash = hashApiKey(key);
      const now = clock.now();
      const cached = cacheTrusted() ? liveKeys.get(hash) : undefined;
      if (cached && cached.expiresAt > now) return cached.accountId;
      const accountId = await apiKeys.accountForKeyHash(hash);
      liveKeys.delete(hash);
      if (accountId !== undefined && authCacheTtlMs > 0 && cacheTrusted()) {
        if (liveKeys.size >= AUTH_CACHE_MAX_ENTRIES) liveKeys.delete(liveKeys.keys().next().value!);
        liveKeys.set(hash, { accountId, expiresAt: now + authCacheTtlMs });
      }
      return accountId;
    },
  };
}
