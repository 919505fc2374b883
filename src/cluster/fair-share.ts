import { SHARD_COUNT } from '../domain/shards.js';

/**
 * How many shards an instance should hold: SHARD_COUNT split evenly over the live instances,
 * the first `SHARD_COUNT % n` of them (sorted by id) holding one more. Every instance that
 * sees the same live set computes the same quotas, and they add up to SHARD_COUNT.
 */
export function quotaOf(instanceId: string, live: readonly string[]): number {
  const sorted = [...new Set([...live, instanceId])].sort();
  const n = sorted.length;
  const index = sorted.indexOf(instanceId);
  return Math.floor(SHARD_COUNT / n) + (index < SHARD_COUNT % n ? 1 : 0);
}
