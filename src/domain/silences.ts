import type { AlertRule, Metric } from './alert-rules.js';

/**
 * Silences (ours): while one matches a rule, the rule changes state and records its history
 * as usual, its events are written to the outbox, but they get no webhook deliveries. The
 * decision is taken in the transaction that writes the event (see AlertRulesRepository
 * .saveEvaluation), from the silences committed by then, so every instance agrees.
 */

/**
 * Silences an account may hold that have not ended (in effect now or starting later); the
 * 101st is a 409, as rules' limit of 10. Ended ones do not count: they are kept for listing
 * only, and pruned after ALERTS_HISTORY_RETENTION.
 */
export const MAX_SILENCES_PER_ACCOUNT = 100;
/** How far ahead `ends_at` may be: a silence is for maintenance and incidents, not for muting a rule for good (disable it). */
export const MAX_SILENCE_AHEAD_MS = 90 * 86_400_000;
export const MAX_SILENCE_AHEAD_DAYS = MAX_SILENCE_AHEAD_MS / 86_400_000;
export const MAX_SILENCE_COMMENT_LENGTH = 500;
/** Silences per page unless asked otherwise, and at most. */
export const DEFAULT_SILENCES_PAGE = 100;
export const MAX_SILENCES_PAGE = 200;

/** What a silence applies to: each matcher given must match; null matches anything. */
export interface SilenceMatchers {
  rule_id: string | null;
  project_id: string | null;
  metric: Metric | null;
}

export interface Silence extends SilenceMatchers {
  id: string;
  account_id: string;
  /** ISO-8601 UTC with milliseconds; the silence applies from starts_at (included) to ends_at (excluded). */
  starts_at: string;
  ends_at: string;
  comment: string;
  created_at: string;
}

/** A silence as the API shows it: whether it is in effect at the time of the answer. */
export interface SilenceView extends Silence {
  active: boolean;
}

export interface NewSilenceInput {
  rule_id?: string | undefined;
  project_id?: string | undefined;
  metric?: Metric | undefined;
  starts_at?: string | undefined;
  ends_at: string;
  comment: string;
}

/** Whether the silence's matchers all hold for the rule (a project matcher never matches an account-wide rule). */
export function silenceMatches(silence: SilenceMatchers, rule: Pick<AlertRule, 'id' | 'project_id' | 'metric'>): boolean {
  return (
    (silence.rule_id === null || silence.rule_id === rule.id) &&
    (silence.project_id === null || silence.project_id === rule.project_id) &&
    (silence.metric === null || silence.metric === rule.metric)
  );
}

/** In effect at `atIso` (same ISO format, so strings compare as times): starts_at <= at < ends_at. */
export function silenceActiveAt(silence: Pick<Silence, 'starts_at' | 'ends_at'>, atIso: string): boolean {
  return silence.starts_at <= atIso && atIso < silence.ends_at;
}

/** What a rule's answers say of its silences now (ours): whether one matches, and until when the last of them lasts. */
export interface RuleSilencing {
  silenced: boolean;
  /** The latest ends_at of the silences in effect that match; null when none does. */
  silenced_until: string | null;
}

export function silencingOf(rule: Pick<AlertRule, 'id' | 'project_id' | 'metric'>, activeSilences: readonly Silence[]): RuleSilencing {
  let until: string | null = null;
  for (const silence of activeSilences) {
    if (silenceMatches(silence, rule) && (until === null || silence.ends_at > until)) until = silence.ends_at;
  }
  return { silenced: until !== null, silenced_until: until };
}
