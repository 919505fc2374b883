import type { Account, ApiKeyRecord } from '../api-keys.js';

export interface AccountsRepository {
  /** The account of that name, created if it does not exist yet. */
  ensure(name: string, nowIso: string): Promise<Account>;
}

export interface ApiKeysRepository {
  insert(accountId: string, keyHash: string, prefix: string, nowIso: string): Promise<ApiKeyRecord>;
  /** The account a live (not revoked) key belongs to. */
  accountForKeyHash(keyHash: string): Promise<string | undefined>;
  findByHash(keyHash: string): Promise<ApiKeyRecord | undefined>;
  list(): Promise<ApiKeyRecord[]>;
  /** Marks a key revoked; false when no live key has that id. */
  revoke(id: string, nowIso: string): Promise<boolean>;
}
