import type { SilencesRepository } from '../domain/ports/silences-repository.js';
import type { Silence } from '../domain/silences.js';
import { CHANNELS, type Change, type Notifications } from '../domain/ports/notifications.js';
import { createWriteInvalidatedCache } from './write-invalidated-cache.js';

interface Cached {
  /** When the list was read: it holds every silence of the account not ended by then. */
  readAt: string;
  silences: readonly Silence[];
}

/**
 * Every rule answer says whether a silence matches the rule now (activeAt), so the account's
 * silences are kept in memory once read, as its rules are (cached-alert-rules-repository.ts):
 * created or ended through this process or another (notified when they commit), they are
 * forgotten. What starts or ends with time needs no notice: the cached list holds every silence
 * not ended when it was read, and each answer picks those in effect at its own moment. The event
 * path does not use this: it reads the silences in the transaction that writes the event.
 */
export function createCachedSilencesRepository(inner: SilencesRepository, notifications: Notifications): SilencesRepository {
  const cache = createWriteInvalidatedCache<Cached>(() => notifications.live);
  notifications.listen(CHANNELS.changes, (payload) => {
    const change = JSON.parse(payload) as Change;
    if (change.kind === 'silences') cache.invalidate([change.account_id]);
  });
  notifications.onResync(() => cache.invalidate());

  return {
    ...inner,
    insertWithinLimit: (silence, limit, nowIso) => cache.writing(silence.account_id, () => inner.insertWithinLimit(silence, limit, nowIso)),
    end: (accountId, id, nowIso) => cache.writing(accountId, () => inner.end(accountId, id, nowIso)),
    async activeAt(accountId, atIso) {
      const cached = await cache.read(accountId, async () => ({ readAt: atIso, silences: Object.freeze(await inner.notEndedAt(accountId, atIso)) }));
      // Asked about an earlier moment than the list covers (a clock set back): from the database.
      if (cached === undefined || atIso < cached.readAt) return inner.activeAt(accountId, atIso);
      return cached.silences.filter((s) => s.starts_at <= atIso && atIso < s.ends_at);
    },
  };
}
