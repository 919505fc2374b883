/**
 * A read-through cache for data that only this process writes (the single-process SQLite
 * mode). Every write runs through `writing`, which drops its keys before and after the write
 * whatever its outcome; a generation counter stops a read that raced with any write from
 * caching what it read before that write.
 */
export interface WriteInvalidatedCache<V> {
  read(key: string, load: () => Promise<V | undefined>): Promise<V | undefined>;
  writing<T>(keys: string | readonly string[], write: () => Promise<T>): Promise<T>;
}

export function createWriteInvalidatedCache<V>(): WriteInvalidatedCache<V> {
  const entries = new Map<string, V>();
  let generation = 0;
  const forget = (keys: readonly string[]) => {
    for (const key of keys) entries.delete(key);
    generation += 1;
  };

  return {
    async read(key, load) {
      const hit = entries.get(key);
      if (hit !== undefined) return hit;
      const seen = generation;
      const value = await load();
      if (value !== undefined && seen === generation) entries.set(key, value);
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
  };
}
