/**
 * Accounts are spread over a fixed number of shards; each shard has one owner at a time (see
 * src/cluster/). The number and the hash are part of the stored data (rows carry their
 * shard), so neither may change without a migration that rewrites them.
 */
export const SHARD_COUNT = 64;

/** FNV-1a (32 bits) of the account id's UTF-8 bytes, modulo SHARD_COUNT. */
export function shardOf(accountId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(accountId, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % SHARD_COUNT;
}

/** 0 … SHARD_COUNT-1. */
export const ALL_SHARDS: readonly number[] = Array.from({ length: SHARD_COUNT }, (_, i) => i);
