/**
 * A read-through cache. Every write of this process runs through `writing`, which drops its
 * keys before and after the write whatever its outcome; writes of other processes arrive as
 * `invalidate` (from their notifications, sent when their transaction commits). While
 * `trusted()` says no (the notification connection is down, so another process's write could
 * go unnoticed) reads go to the database and nothing is kept. A generation counter stops a
 * read that raced with any write or invalidation from caching what it read before it.
 */
export interface WriteInvalidatedCache<V> {
  read(key: string, load: () => Promise<V | undefined>): Promise<V | undefined>;
  writing<T>(keys: string | readonly string[], write: () => Promise<T>): Promise<T>;
  /** Another process changed these keys (or, without keys, anything). */
  invalidate(keys?: readonly string[]): void;
}

export function createWriteInvalidatedCache<V>(trusted: () => boolean = () => true): WriteInvalidatedCache<V> {
  const entries = new Map<string, V>();
  let generation = 0;
  const forget = (keys: readonly string[] | undefined) => {
    if (keys === undefined) entries.clear();
    else for (const key of keys) entries.delete(key);
    generation += 1;
  };

  return {
    async read(key, load) {
      if (!trusted()) {
        forget(undefined);
        return load();
      }
      const hit = entries.get(key);
      if (hit !== undefined) return hit;
      const seen = generation;
      const value = await load();
      if (value !== undefined && seen === generation && trusted()) entries.set(key, value);
      return value;
    },
    async writing(keys, write) {
      const list = typeof keys === 'string' ? [keys] : keys;
      forget(list);
      try {
        return await write();
      } finally {
        forget(list);
      }
    },
    invalidate: forget,
  };
}
