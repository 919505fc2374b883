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

/** What a user chooses about a rule: the fields of create and PATCH. */
export interface AlertRuleSettings {
  name: string;
  project_id: string | null;
  metric: Metric;
  operator: Operator;
  threshold_value: number;
  window_duration: WindowDuration;
  enabled: boolean;
}

export interface AlertRule extends AlertRuleSettings {
  id: string;
  account_id: string;
  current_state: AlertState;
  since: string | null;
  last_evaluated_at: string | null;
  current_value: number | null;
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
  };
}
