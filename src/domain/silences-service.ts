import { toIso, type Clock } from './clock.js';
import { AppError, invalidRequest, notFound, type FieldError } from './errors.js';
import { ID_PREFIX, newId } from './ids.js';
import type { AlertRulesRepository } from './ports/alert-rules-repository.js';
import type { SilencesRepository } from './ports/silences-repository.js';
import { decodeCursor, encodeCursor } from './rule-history-service.js';
import {
  DEFAULT_SILENCES_PAGE,
  MAX_SILENCE_AHEAD_DAYS,
  MAX_SILENCE_AHEAD_MS,
  MAX_SILENCES_PER_ACCOUNT,
  silenceActiveAt,
  type NewSilenceInput,
  type Silence,
  type SilenceView,
} from './silences.js';
import { parseRfc3339 } from './telemetry.js';

export interface SilencesPage {
  /** Newest first. */
  data: SilenceView[];
  /** Pass as `cursor` for the next (older) page; null when this page is the last. */
  next_cursor: string | null;
}

export interface SilencesService {
  create(accountId: string, input: NewSilenceInput): Promise<SilenceView>;
  page(accountId: string, query: { active?: boolean | undefined; limit?: number | undefined; cursor?: string | undefined }): Promise<SilencesPage>;
  get(accountId: string, id: string): Promise<SilenceView>;
  /** Ends the silence now (it stays listed, ended); 404 when the account has no such silence. */
  end(accountId: string, id: string): Promise<void>;
}

const RFC3339 = 'must be an RFC 3339 date-time, such as 2026-03-15T12:00:00Z';

/** Silence use cases (ours); the HTTP layer calls these with input its schema validated. */
export function createSilencesService(deps: { silences: SilencesRepository; rules: Pick<AlertRulesRepository, 'get'>; clock: Clock }): SilencesService {
  const { silences, rules, clock } = deps;
  const view = (silence: Silence, nowIso: string): SilenceView => ({ ...silence, active: silenceActiveAt(silence, nowIso) });

  return {
    async create(accountId, input) {
      const now = clock.now();
      const problems: FieldError[] = [];
      if (input.rule_id === undefined && input.project_id === undefined && input.metric === undefined) {
        problems.push({ field: '(body)', message: 'at least one of rule_id, project_id and metric is required (a silence of everything would be a mute switch)' });
      }
      const startsAt = input.starts_at === undefined ? now : parseRfc3339(input.starts_at);
      if (Number.isNaN(startsAt)) problems.push({ field: 'starts_at', message: RFC3339 });
      const endsAt = parseRfc3339(input.ends_at);
      if (Number.isNaN(endsAt)) problems.push({ field: 'ends_at', message: RFC3339 });
      else if (endsAt <= now) problems.push({ field: 'ends_at', message: `must be in the future (now is ${toIso(now)})` });
      else if (endsAt > now + MAX_SILENCE_AHEAD_MS) {
        problems.push({ field: 'ends_at', message: `must be at most ${MAX_SILENCE_AHEAD_DAYS} days from now (${toIso(now + MAX_SILENCE_AHEAD_MS)})` });
      } else if (!Number.isNaN(startsAt) && endsAt <= startsAt) problems.push({ field: 'ends_at', message: 'must be after starts_at' });
      // A rule of another account (or none) would silence nothing: say so rather than store it.
      if (input.rule_id !== undefined && !(await rules.get(accountId, input.rule_id))) {
        problems.push({ field: 'rule_id', message: `is not an alert rule of this account (${input.rule_id})` });
      }
      if (problems.length > 0) throw invalidRequest('validation', 'invalid request body', problems);

      const nowIso = toIso(now);
      const created = await silences.insertWithinLimit(
        {
          id: newId(ID_PREFIX.silence),
          account_id: accountId,
          rule_id: input.rule_id ?? null,
          project_id: input.project_id ?? null,
          metric: input.metric ?? null,
          starts_at: toIso(startsAt),
          ends_at: toIso(endsAt),
          comment: input.comment,
          created_at: nowIso,
        },
        MAX_SILENCES_PER_ACCOUNT,
        nowIso,
      );
      if (created === 'limit_exceeded') {
        throw new AppError(
          'limitExceeded',
          `silence limit reached: an account can have at most ${MAX_SILENCES_PER_ACCOUNT} silences that have not ended; end one (DELETE) first`,
        );
      }
      return view(created, nowIso);
    },

    async page(accountId, query) {
      const beforeSeq = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      if (query.cursor !== undefined && beforeSeq === undefined) {
        throw invalidRequest('validation', 'invalid query string', [{ field: 'cursor', message: 'is not a cursor returned as next_cursor' }]);
      }
      const limit = query.limit ?? DEFAULT_SILENCES_PAGE;
      const nowIso = toIso(clock.now());
      // One row more than asked says whether an older page exists, so the last page says null.
      const rows = await silences.page(accountId, { limit: limit + 1, beforeSeq, active: query.active, atIso: nowIso });
      const data = rows.slice(0, limit);
      return {
        data: data.map(({ seq: _seq, ...silence }) => view(silence, nowIso)),
        next_cursor: rows.length > limit ? encodeCursor(data.at(-1)!.seq) : null,
      };
    },

    async get(accountId, id) {
      const silence = await silences.get(accountId, id);
      if (!silence) throw notFound('silence', id);
      return view(silence, toIso(clock.now()));
    },

    async end(accountId, id) {
      if (!(await silences.end(accountId, id, toIso(clock.now())))) throw notFound('silence', id);
    },
  };
}
