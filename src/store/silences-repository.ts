import type { Kysely, Selectable } from 'kysely';
import type { Metric } from '../domain/alert-rules.js';
import type { SilencesRepository, StoredSilence } from '../domain/ports/silences-repository.js';
import type { Silence } from '../domain/silences.js';
import { lockAccount } from './alert-rules-repository.js';
import type { Database, SilencesTable } from './schema.js';
import type { StoreAdapter } from './dialect/index.js';
import { CHANNELS, type Change } from '../domain/ports/notifications.js';

/**
 * The `silences` table (migration 0013). Times are ISO-8601 UTC with milliseconds, so they
 * compare as text; the (account_id, ends_at) index serves "the account's silences that have
 * not ended", which is all the evaluation and the limit ever read.
 */

function toSilence(row: Selectable<SilencesTable>): StoredSilence {
  return {
    // PostgreSQL returns bigint columns as strings.
    seq: Number(row.seq),
    id: row.id,
    account_id: row.account_id,
    rule_id: row.rule_id,
    project_id: row.project_id,
    metric: row.metric as Metric | null,
    starts_at: row.starts_at,
    ends_at: row.ends_at,
    comment: row.comment,
    created_at: row.created_at,
  };
}

const withoutSeq = ({ seq: _seq, ...silence }: StoredSilence): Silence => silence;

/**
 * The silence that holds back the event of a rule's transition at `atIso`, read in the
 * caller's transaction (the one that writes the event): the matching silence in effect then
 * that ends last, or undefined. What is committed when it runs decides, on every instance.
 */
export async function silenceHolding(
  trx: Kysely<Database>,
  accountId: string,
  rule: { id: string; project_id: string | null; metric: string },
  atIso: string,
): Promise<string | undefined> {
  const row = await trx
    .selectFrom('silences')
    .select('id')
    .where('account_id', '=', accountId)
    .where('ends_at', '>', atIso)
    .where('starts_at', '<=', atIso)
    .where((eb) => eb.or([eb('rule_id', 'is', null), eb('rule_id', '=', rule.id)]))
    // A project matcher never matches an account-wide rule (project_id null).
    .where((eb) => (rule.project_id === null ? eb('project_id', 'is', null) : eb.or([eb('project_id', 'is', null), eb('project_id', '=', rule.project_id)])))
    .where((eb) => eb.or([eb('metric', 'is', null), eb('metric', '=', rule.metric)]))
    .orderBy('ends_at', 'desc')
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst();
  return row?.id;
}

/** Deletes up to `limit` silences that ended before `beforeIso`; returns how many. */
export async function pruneSilencesBefore(db: Kysely<Database>, beforeIso: string, limit: number): Promise<number> {
  const result = await db
    .deleteFrom('silences')
    .where('seq', 'in', (eb) => eb.selectFrom('silences as s').select('s.seq').where('s.ends_at', '<', beforeIso).orderBy('s.ends_at').limit(limit))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export function createSilencesRepository(db: Kysely<Database>, adapter: Pick<StoreAdapter, 'notifyWithin'>): SilencesRepository {
  const byAccount = (accountId: string) => db.selectFrom('silences').selectAll().where('account_id', '=', accountId);
  // Other instances cache what silences an account has: they forget it when this commits.
  const changed = (trx: Kysely<Database>, accountId: string) =>
    adapter.notifyWithin(trx, CHANNELS.changes, JSON.stringify({ kind: 'silences', account_id: accountId } satisfies Change));

  return {
    insertWithinLimit(silence, limit, nowIso) {
      return db.transaction().execute(async (trx) => {
        // The count and the insert cannot interleave with another create of the account.
        await lockAccount(trx, silence.account_id);
        const { count } = await trx
          .selectFrom('silences')
          .select((eb) => eb.fn.countAll<number>().as('count'))
          .where('account_id', '=', silence.account_id)
          .where('ends_at', '>', nowIso)
          .executeTakeFirstOrThrow();
        if (Number(count) >= limit) return 'limit_exceeded' as const;
        const row = await trx.insertInto('silences').values(silence).returningAll().executeTakeFirstOrThrow();
        await changed(trx, silence.account_id);
        return withoutSeq(toSilence(row));
      });
    },

    async page(accountId, { limit, beforeSeq, active, atIso }) {
      let query = byAccount(accountId);
      if (beforeSeq !== undefined) query = query.where('seq', '<', beforeSeq);
      if (active === true) query = query.where('starts_at', '<=', atIso).where('ends_at', '>', atIso);
      if (active === false) query = query.where((eb) => eb.or([eb('starts_at', '>', atIso), eb('ends_at', '<=', atIso)]));
      const rows = await query.orderBy('seq', 'desc').limit(limit).execute();
      return rows.map(toSilence);
    },

    async get(accountId, id) {
      const row = await byAccount(accountId).where('id', '=', id).executeTakeFirst();
      return row && withoutSeq(toSilence(row));
    },

    end(accountId, id, nowIso) {
      return db.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('silences').selectAll().where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
        if (!row) return undefined;
        if (row.ends_at <= nowIso) return withoutSeq(toSilence(row));
        // Conditional on ends_at: of two ends at once, the earlier time is kept.
        const ended = await trx
          .updateTable('silences')
          .set({ ends_at: nowIso, starts_at: row.starts_at > nowIso ? nowIso : row.starts_at })
          .where('id', '=', id)
          .where('ends_at', '>', nowIso)
          .returningAll()
          .executeTakeFirst();
        if (ended) await changed(trx, accountId);
        const current = ended ?? (await trx.selectFrom('silences').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
        return withoutSeq(toSilence(current));
      });
    },

    async activeAt(accountId, atIso) {
      const rows = await byAccount(accountId).where('ends_at', '>', atIso).where('starts_at', '<=', atIso).orderBy('seq').execute();
      return rows.map((row) => withoutSeq(toSilence(row)));
    },

    async notEndedAt(accountId, atIso) {
      const rows = await byAccount(accountId).where('ends_at', '>', atIso).orderBy('seq').execute();
      return rows.map((row) => withoutSeq(toSilence(row)));
    },
  };
}
