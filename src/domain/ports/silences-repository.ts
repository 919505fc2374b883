import type { Silence } from '../silences.js';

/** A silence as stored; `seq` grows with every silence created and orders the list. */
export interface StoredSilence extends Silence {
  seq: number;
}

export interface SilencesPageQuery {
  limit: number;
  /** Only silences with a lower seq (the next page after one already seen). */
  beforeSeq?: number | undefined;
  /** true: only those in effect at `atIso`; false: only those that are not; undefined: all. */
  active?: boolean | undefined;
  atIso: string;
}

export interface SilencesRepository {
  /**
   * Inserts the silence unless the account already has `limit` silences that have not ended
   * at `nowIso`; atomic under concurrency (the account row is locked for the count).
   */
  insertWithinLimit(silence: Silence, limit: number, nowIso: string): Promise<Silence | 'limit_exceeded'>;
  /** Up to `limit` silences of the account, newest first. */
  page(accountId: string, query: SilencesPageQuery): Promise<StoredSilence[]>;
  get(accountId: string, id: string): Promise<Silence | undefined>;
  /**
   * Ends the silence at `nowIso`: one that has not ended gets ends_at = now (and one that has
   * not started, starts_at = now too: it never applied); an ended one is left as it is.
   * Undefined when the account has no such silence.
   */
  end(accountId: string, id: string, nowIso: string): Promise<Silence | undefined>;
  /** The account's silences in effect at `atIso`. */
  activeAt(accountId: string, atIso: string): Promise<Silence[]>;
  /** The account's silences that have not ended at `atIso` (those that start later included), by seq. */
  notEndedAt(accountId: string, atIso: string): Promise<Silence[]>;
}
