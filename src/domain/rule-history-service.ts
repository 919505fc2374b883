import { invalidRequest, notFound } from './errors.js';
import type { AlertRulesRepository } from './ports/alert-rules-repository.js';
import type { RuleHistoryEntry, RuleHistoryRepository } from './ports/rule-history-repository.js';

/** Transitions per page unless the caller asks for another number. */
export const DEFAULT_HISTORY_PAGE = 50;
/** The most a page holds: a page is one indexed range read, kept short. */
export const MAX_HISTORY_PAGE = 200;

export interface RuleHistoryPage {
  /** Newest first. */
  data: RuleHistoryEntry[];
  /** Pass as `cursor` for the next (older) page; null when this page is the last. */
  next_cursor: string | null;
}

export interface RuleHistoryService {
  /** One page of a rule's transitions; 404 for a rule not in the account, 400 for a cursor not from a page. */
  page(accountId: string, ruleId: string, query: { limit?: number; cursor?: string }): Promise<RuleHistoryPage>;
}

/**
 * A cursor is the seq of the last row of a page, base64url-encoded: opaque to callers, so
 * it may change shape later. Rows are read by seq < cursor, so transitions written while a
 * client pages have higher seqs and only show on a new first page: pages neither repeat nor
 * skip a row. (A rule's transitions are written one at a time, by the one instance that owns
 * its shard, so a rule's seqs commit in order.)
 */
export function encodeCursor(seq: number): string {
  return Buffer.from(String(seq), 'utf8').toString('base64url');
}

/** The seq a cursor stands for, or undefined when it is not one this service made. */
export function decodeCursor(cursor: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{1,24}$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[1-9][0-9]{0,15}$/.test(text)) return undefined;
  const seq = Number(text);
  // Re-encoding must give the same text: no second spelling of one cursor is accepted.
  return Number.isSafeInteger(seq) && encodeCursor(seq) === cursor ? seq : undefined;
}

export function createRuleHistoryService(deps: { rules: Pick<AlertRulesRepository, 'get'>; history: RuleHistoryRepository }): RuleHistoryService {
  return {
    async page(accountId, ruleId, query) {
      const beforeSeq = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      if (query.cursor !== undefined && beforeSeq === undefined) {
        throw invalidRequest('validation', 'invalid query string', [{ field: 'cursor', message: 'is not a cursor returned as next_cursor' }]);
      }
      if (!(await deps.rules.get(accountId, ruleId))) throw notFound('alert rule', ruleId);
      const limit = query.limit ?? DEFAULT_HISTORY_PAGE;
      // One row more than asked says whether an older page exists, so the last page says null.
      const rows = await deps.history.page(accountId, ruleId, limit + 1, beforeSeq);
      const data = rows.slice(0, limit);
      return { data, next_cursor: rows.length > limit ? encodeCursor(data.at(-1)!.seq) : null };
    },
  };
}
