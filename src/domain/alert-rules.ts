import { parseShortDuration } from './durations.js';
import type { FieldError } from './errors.js';
export const METRICS = [
  'turn_latency_p50',
  'turn_latency_p95',
  'api_errors',
  'function_errors',
  'call_crashes',
  'call_volume',
] as const;
export type Metric = (typeof METRICS)[number];

export const OPERATORS = ['>', '<', '>=', '<='] as const;
export type Operator = (typeof OPERATORS)[number];

export const ALERT_STATES = ['ok', 'alert', 'no_data', 'unknown'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

export const WINDOW_DURATIONS = ['5m', '10m', '60m'] as const;
export type WindowDuration = (typeof WINDOW_DURATIONS)[number];

export const WINDOW_MS: Record<WindowDuration, number> = {
  '5m': 5 * 60_000,
  '10m': 10 * 60_000,
  '60m': 60 * 60_000,
};

/** Alert rules an account may hold; the published contract answers 409 beyond it. */
export const MAX_ALERT_RULES_PER_ACCOUNT = 10;
/**
 * Longest rule name and project id (ours: the published document sets none; see README).
 * The same as the published limit on endpoint names, and as telemetry's project_id.
 */
export const MAX_RULE_NAME_LENGTH = 255;
export const MAX_PROJECT_ID_LENGTH = 255;

/**
 * Longest pending and keep-firing period (ours): `pending_duration` and `keep_firing_duration`
 * are short durations ("30s", "2m", "1h"; src/domain/durations.ts) of at most this.
 */
export const MAX_HOLD_DURATION_MS = 60 * 60_000;
/** Both periods when not given: the published behaviour (the state is the condition's, at once). */
export const NO_HOLD = '0s';

/** What a user chooses about a rule: the fields of create and PATCH. */
export interface AlertRuleSettings {
  name: string;
  project_id: string | null;
  metric: Metric;
  operator: Operator;
  threshold_value: number;
  window_duration: WindowDuration;
  enabled: boolean;
  /** Ours: how long the condition must hold before the rule goes to `alert`. */
  pending_duration: string;
  /** Ours: how long the condition must be clear before the rule leaves `alert`. */
  keep_firing_duration: string;
}

export interface AlertRule extends AlertRuleSettings {
  id: string;
  account_id: string;
  current_state: AlertState;
  since: string | null;
  last_evaluated_at: string | null;
  current_value: number | null;
  /** Ours: since when the condition holds while the rule waits out its pending period; else null. */
  pending_since: string | null;
  /** Ours: since when the condition is clear while the rule is kept in `alert`; else null. */
  keep_firing_since: string | null;
  created_at: string;
  updated_at: string;
}

export interface NewAlertRuleInput {
  name: string;
  project_id?: string | null | undefined;
  metric: Metric;
  operator: Operator;
  threshold_value: number;
  window_duration: WindowDuration;
  enabled?: boolean | undefined;
  pending_duration?: string | undefined;
  keep_firing_duration?: string | undefined;
}

export type AlertRulePatch = Partial<AlertRuleSettings>;

export interface AlertRuleFilter {
  enabled?: boolean | undefined;
  metric?: Metric | undefined;
  project_id?: string | undefined;
  state?: AlertState | undefined;
}

/** Applies the documented defaults to a create request. */
export function settingsFromInput(input: NewAlertRuleInput): AlertRuleSettings {
  return {
    name: input.name,
    project_id: input.project_id ?? null,
    metric: input.metric,
    operator: input.operator,
    threshold_value: input.threshold_value,
    window_duration: input.window_duration,
    enabled: input.enabled ?? true,
    pending_duration: input.pending_duration ?? NO_HOLD,
    keep_firing_duration: input.keep_firing_duration ?? NO_HOLD,
  };
}

/**
 * The problems of a rule's pending and keep-firing periods, as given in a create or PATCH
 * body (the schema checks their shape; this checks the longest allowed).
 */
export function holdDurationProblems(input: { pending_duration?: string | undefined; keep_firing_duration?: string | undefined }): FieldError[] {
  const problems: FieldError[] = [];
  for (const field of ['pending_duration', 'keep_firing_duration'] as const) {
    const text = input[field];
    if (text === undefined) continue;
    const ms = parseShortDuration(text);
    if (Number.isNaN(ms)) problems.push({ field, message: 'must be a whole number of seconds, minutes or hours, such as "0s", "30s" or "2m"' });
    else if (ms > MAX_HOLD_DURATION_MS) problems.push({ field, message: 'must be at most 1 hour' });
  }
  return problems;
}

/** A rule's periods in milliseconds (stored values are valid; absent is none). */
export function holdDurationsOf(rule: { pending_duration?: string | undefined; keep_firing_duration?: string | undefined }): { pendingMs: number; keepFiringMs: number } {
  const ms = (text: string | undefined) => (text === undefined ? 0 : parseShortDuration(text) || 0);
  return { pendingMs: ms(rule.pending_duration), keepFiringMs: ms(rule.keep_firing_duration) };
}
