import type { AlertRuleView } from './alert-rules-service.js';
import type { AccountAttempt, DeliveriesRepository } from './ports/deliveries-repository.js';
import type { RuleHistoryEntry, RuleHistoryRepository } from './ports/rule-history-repository.js';

/**
 * GET /v1/stream: what changes in an account, as it happens, read from the database so that
 * any instance serves any account's stream and a stream resumes on another instance.
 *
 * - `rule`: a rule's current evaluation, for every rule when a stream (re)starts and then
 *   whenever its state, value or settings change (rules are compared each poll; an account
 *   has at most ten).
 * - `rule_removed`: a rule was deleted.
 * - `transition`: a row of a rule's history (alert_rule_history), in seq order.
 * - `attempt`: a webhook attempt recorded for one of the account's deliveries.
 * - `reset`: the Last-Event-ID given is not one of ours: the client reloads what it shows.
 *
 * Every event carries the stream's position, `<history seq>-<attempt seq>`, as its id; a
 * client that reconnects with it gets every transition and attempt after it, then the rules
 * as they are now (their values in between are gone, as they would be from the API).
 */
export type StreamEvent =
  | { event: 'rule'; data: RuleSnapshot }
  | { event: 'rule_removed'; data: { id: string } }
  | { event: 'transition'; data: RuleHistoryEntry & { rule_id: string } }
  | { event: 'attempt'; data: Omit<AccountAttempt, 'seq'> }
  | { event: 'reset'; data: { message: string } };

/** `silenced` (a silence matches the rule now) changes as silences start and end, and is sent then too. */
export type RuleSnapshot = Pick<AlertRuleView, 'id' | 'name' | 'enabled' | 'current_state' | 'current_value' | 'since' | 'last_evaluated_at' | 'silenced'>;

export interface StreamPosition {
  historySeq: number;
  attemptSeq: number;
}

export interface StreamService {
  /**
   * Starts a stream for the account: `send` is called with each event and the position it
   * leaves the stream at, until `close()` is called. Resolves once the first events were
   * sent; a failure to read the database then rejects (later ones are retried).
   */
  open(accountId: string, lastEventId: string | undefined, send: (event: StreamEvent, id: string) => void): Promise<{ close(): void }>;
}

export interface StreamServiceDeps {
  /** The rules of an account as the API shows them (with the engine's freshest evaluation). */
  listRules(accountId: string): Promise<AlertRuleView[]>;
  history: Pick<RuleHistoryRepository, 'after' | 'lastSeq'>;
  deliveries: Pick<DeliveriesRepository, 'attemptsAfter' | 'lastAttemptSeq'>;
  /** How often each stream looks for changes (ms). */
  pollMs: number;
  onError(error: unknown): void;
}

/** Rows read per poll; a longer backlog is read by the next polls, at once. */
const PAGE = 200;
/**
 * Attempts of several deliveries are recorded by several workers at once, so their seqs may
 * commit out of order: each poll looks this many seqs back and skips the ones it has sent.
 */
const ATTEMPT_LOOKBACK = 200;

export function formatPosition(p: StreamPosition): string {
  return `${p.historySeq}-${p.attemptSeq}`;
}

export function parsePosition(id: string): StreamPosition | undefined {
  const match = /^([0-9]{1,15})-([0-9]{1,15})$/.exec(id.trim());
  return match ? { historySeq: Number(match[1]), attemptSeq: Number(match[2]) } : undefined;
}

function snapshotOf(rule: AlertRuleView): RuleSnapshot {
  const { id, name, enabled, current_state, current_value, since, last_evaluated_at, silenced } = rule;
  return { id, name, enabled, current_state, current_value: current_value ?? null, since: since ?? null, last_evaluated_at: last_evaluated_at ?? null, silenced };
}

export function createStreamService(deps: StreamServiceDeps): StreamService {
  return {
    async open(accountId, lastEventId, send) {
      const latest = async (): Promise<StreamPosition> => ({ historySeq: await deps.history.lastSeq(), attemptSeq: await deps.deliveries.lastAttemptSeq() });
      let position = lastEventId === undefined ? undefined : parsePosition(lastEventId);
      const tip = await latest();
      // An id from elsewhere (another database, a forged one): start from now, say so.
      if (position === undefined || position.historySeq > tip.historySeq || position.attemptSeq > tip.attemptSeq) {
        position = tip;
        if (lastEventId !== undefined) send({ event: 'reset', data: { message: 'the stream cannot resume from that Last-Event-ID; reload' } }, formatPosition(position));
      }
      const start: StreamPosition = position;
      let at: StreamPosition = position;
      const sentAttempts = new Set<number>();
      const shown = new Map<string, string>();
      let closed = false;
      let timer: NodeJS.Timeout | undefined;

      const emit = (event: StreamEvent) => {
        if (!closed) send(event, formatPosition(at));
      };

      /** One look at the database; true when a page was full (more is waiting). */
      async function poll(): Promise<boolean> {
        const transitions = await deps.history.after(accountId, at.historySeq, PAGE);
        for (const t of transitions) {
          at = { ...at, historySeq: t.seq };
          emit({ event: 'transition', data: t });
        }
        const attempts = await deps.deliveries.attemptsAfter(accountId, Math.max(0, at.attemptSeq - ATTEMPT_LOOKBACK), PAGE + ATTEMPT_LOOKBACK);
        for (const { seq, ...attempt } of attempts) {
          // Up to where the stream started was sent before (resumed) or is the past (new).
          if (seq <= start.attemptSeq || sentAttempts.has(seq)) continue;
          sentAttempts.add(seq);
          if (seq > at.attemptSeq) at = { ...at, attemptSeq: seq };
          emit({ event: 'attempt', data: attempt });
        }
        for (const seq of sentAttempts) if (seq <= at.attemptSeq - ATTEMPT_LOOKBACK) sentAttempts.delete(seq);
        const rules = await deps.listRules(accountId);
        const present = new Set<string>();
        for (const rule of rules) {
          present.add(rule.id);
          const snapshot = snapshotOf(rule);
          const text = JSON.stringify(snapshot);
          if (shown.get(rule.id) === text) continue;
          shown.set(rule.id, text);
          emit({ event: 'rule', data: snapshot });
        }
        for (const id of [...shown.keys()]) {
          if (present.has(id)) continue;
          shown.delete(id);
          emit({ event: 'rule_removed', data: { id } });
        }
        return transitions.length === PAGE || attempts.length === PAGE + ATTEMPT_LOOKBACK;
      }

      const schedule = (ms: number) => {
        if (closed) return;
        timer = setTimeout(() => {
          poll().then(
            (more) => schedule(more ? 0 : deps.pollMs),
            (error: unknown) => {
              deps.onError(error);
              schedule(Math.max(deps.pollMs, 2_000));
            },
          );
        }, ms);
      };

      await poll();
      schedule(deps.pollMs);
      return {
        close() {
          closed = true;
          if (timer) clearTimeout(timer);
        },
      };
    },
  };
}
