import { Type, type Static, type TSchema } from 'typebox';
import { ALERT_STATES, MAX_PROJECT_ID_LENGTH, MAX_RULE_NAME_LENGTH, METRICS, OPERATORS, WINDOW_DURATIONS } from '../domain/alert-rules.js';
import { MAX_EVENTS_PER_BATCH, MAX_LATENCY_MS, TELEMETRY_EVENT_TYPES } from '../domain/telemetry.js';
import { DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE } from '../domain/rule-history-service.js';
import { DEFAULT_SILENCES_PAGE, MAX_SILENCE_AHEAD_DAYS, MAX_SILENCE_COMMENT_LENGTH, MAX_SILENCES_PAGE } from '../domain/silences.js';
import {
  MAX_CUSTOM_HEADERS,
  MAX_ENDPOINT_NAME_LENGTH,
  MAX_ENDPOINT_URL_LENGTH,
  MAX_EVENT_TYPES_LISTED,
  MAX_HEADER_VALUE_LENGTH,
  WEBHOOK_EVENT_TYPES,
} from '../domain/webhook-endpoints.js';
import { CUSTOM_HEADER_RULES, THRESHOLD_RULE, URL_RULE } from './deviations.js';

/**
 * The one source of truth for the wire format: these schemas validate requests, type the
 * handlers, serialize responses and generate /openapi.json. Shapes follow the published
 * contract exactly (nullable fields as type arrays, enums as typed strings).
 */
const StringEnum = <const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
const NullableString = (options: Record<string, unknown> = {}) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], ...options });
const NullableDateTime = (options: Record<string, unknown> = {}) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], format: 'date-time', ...options });
const NullableInteger = (options: Record<string, unknown> = {}) =>
  Type.Unsafe<number | null>({ type: ['integer', 'null'], ...options });
const StringMap = (options: Record<string, unknown> = {}) =>
  Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, ...options });
const DateTime = (options: Record<string, unknown> = {}) => Type.String({ format: 'date-time', ...options });

export const RULE_ID_PATTERN = '^ar_[A-Za-z0-9]+$';
export const ENDPOINT_ID_PATTERN = '^whe_[A-Za-z0-9]+$';

export const Metric = StringEnum(METRICS, { description: 'What the rule measures over its window.' });
export const ComparisonOperator = StringEnum(OPERATORS, { description: 'How the measured value is compared with the threshold.' });
export const AlertState = StringEnum(ALERT_STATES, { description: 'Where the rule stands after its last evaluation.' });
export const WindowDuration = StringEnum(WINDOW_DURATIONS, { description: 'Length of the sliding window the metric is computed over.' });
export const WebhookEventType = StringEnum(WEBHOOK_EVENT_TYPES, { description: 'Kind of event a webhook carries.' });

// Above 2^53 - 1 a JSON number no longer round-trips as an exact integer.
const Threshold = Type.Integer({
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description: `Value the metric is compared with (ours: ${THRESHOLD_RULE}).`,
});
// Length limits marked "ours" are deviations from the published document (README lists them).
const RuleName = Type.String({ maxLength: MAX_RULE_NAME_LENGTH, description: 'Human-readable name of the rule (ours: at most 255 characters).' });
const ProjectId = NullableString({
  maxLength: MAX_PROJECT_ID_LENGTH,
  description: 'Project the rule watches; null watches the whole account (ours: at most 255 characters).',
});

export const ErrorBody = Type.Object(
  {
    message: Type.String({ description: 'What went wrong, in words.' }),
    errors: Type.Optional(
      Type.Array(Type.Object({ field: Type.String(), message: Type.String() }), {
        description: 'One entry per invalid field, when the request failed validation.',
      }),
    ),
  },
  { description: 'Error response.' },
);

/**
 * A pending or keep-firing period (ours): a whole number of seconds, minutes or hours in the
 * style of window_duration; the service also checks it is at most 1 hour.
 */
const HoldDuration = (description: string) => Type.String({ pattern: '^(0|[1-9][0-9]{0,5})[smh]$', description });
const HOLD_DURATION_REQUEST = {
  pending:
    'Ours: absent from the published contract; optional. How long the condition must hold before the rule goes to `alert`; ' +
    'meanwhile it stays `ok` with `pending_since` set. "30s", "2m", "1h"; at most 1 hour. Default "0s": at once (the published behaviour).',
  keepFiring:
    'Ours: absent from the published contract; optional. How long the condition must be clear before the rule leaves `alert`; ' +
    '"30s", "2m", "1h"; at most 1 hour. Default "0s": at once (the published behaviour).',
};

export const AlertRule = Type.Object(
  {
    id: Type.String({ pattern: RULE_ID_PATTERN, description: 'Alert rule ID.' }),
    name: RuleName,
    project_id: Type.Optional(ProjectId),
    metric: Metric,
    operator: ComparisonOperator,
    threshold_value: Threshold,
    window_duration: WindowDuration,
    enabled: Type.Boolean({ default: true, description: 'Disabled rules are not evaluated.' }),
    current_state: AlertState,
    since: Type.Optional(NullableDateTime({ description: 'When the current state began.' })),
    last_evaluated_at: Type.Optional(NullableDateTime({ description: 'When the rule was last evaluated; null if never.' })),
    current_value: Type.Optional(NullableInteger({ description: 'Metric value at the last evaluation.' })),
    created_at: DateTime(),
    updated_at: DateTime(),
    // Extensions (ours; test/openapi.test.ts DOCUMENTED_EXTENSIONS): optional in the schema,
    // as the published AlertRule lacks them, and always sent.
    silenced: Type.Optional(
      Type.Boolean({ description: 'Ours: whether a silence (/v1/silences) matches the rule now; its events are then sent to no endpoint. Always present.' }),
    ),
    silenced_until: Type.Optional(
      NullableDateTime({ description: 'Ours: when the last of the silences that match the rule now ends; null when none does. Always present.' }),
    ),
    pending_duration: Type.Optional(HoldDuration('Ours: how long the condition must hold before the rule goes to `alert` ("0s": at once, the published behaviour). Always present.')),
    keep_firing_duration: Type.Optional(HoldDuration('Ours: how long the condition must be clear before the rule leaves `alert` ("0s": at once). Always present.')),
    pending_since: Type.Optional(
      NullableDateTime({ description: 'Ours: since when the condition holds while the rule waits out its pending_duration (its state stays `ok` meanwhile); null otherwise. Always present.' }),
    ),
    keep_firing_since: Type.Optional(
      NullableDateTime({ description: 'Ours: since when the condition is clear while the rule is kept in `alert` for its keep_firing_duration; null otherwise. Always present.' }),
    ),
  },
  { description: 'An alert rule and its current evaluation state.' },
);

export const CreateAlertRuleBody = Type.Object(
  {
    name: RuleName,
    project_id: Type.Optional(ProjectId),
    metric: Metric,
    operator: ComparisonOperator,
    threshold_value: Threshold,
    window_duration: WindowDuration,
    enabled: Type.Optional(Type.Boolean({ default: true })),
    pending_duration: Type.Optional(HoldDuration(HOLD_DURATION_REQUEST.pending)),
    keep_firing_duration: Type.Optional(HoldDuration(HOLD_DURATION_REQUEST.keepFiring)),
  },
  { additionalProperties: false },
);
export type CreateAlertRuleBody = Static<typeof CreateAlertRuleBody>;

export const UpdateAlertRuleBody = Type.Object(
  {
    name: Type.Optional(RuleName),
    project_id: Type.Optional(ProjectId),
    metric: Type.Optional(Metric),
    operator: Type.Optional(ComparisonOperator),
    threshold_value: Type.Optional(Threshold),
    window_duration: Type.Optional(WindowDuration),
    enabled: Type.Optional(Type.Boolean()),
    pending_duration: Type.Optional(HoldDuration(HOLD_DURATION_REQUEST.pending)),
    keep_firing_duration: Type.Optional(HoldDuration(HOLD_DURATION_REQUEST.keepFiring)),
  },
  { additionalProperties: false, description: 'Only the fields given change.' },
);

export const AlertRuleList = Type.Object({ data: Type.Array(AlertRule) });

export const AlertRuleQuery = Type.Object({
  enabled: Type.Optional(Type.Boolean()),
  metric: Type.Optional(Metric),
  project_id: Type.Optional(Type.String()),
  state: Type.Optional(AlertState),
});

export const RuleIdParams = Type.Object({
  rule_id: Type.String({ pattern: RULE_ID_PATTERN, description: 'Alert rule ID, such as ar_0Kx4mNpQ8rWvYb2dFgHjLs.' }),
});

export const ActiveAlert = Type.Object(
  {
    alert_rule_id: Type.String({ pattern: RULE_ID_PATTERN }),
    name: Type.String(),
    project_id: Type.Optional(NullableString()),
    metric: Metric,
    operator: ComparisonOperator,
    threshold_value: Type.Integer(),
    window_duration: WindowDuration,
    since: DateTime({ description: 'When the rule started firing.' }),
    last_evaluated_at: Type.Optional(NullableDateTime()),
    current_value: Type.Optional(NullableInteger()),
  },
  { description: 'A rule that is firing now.' },
);
export const ActiveAlertList = Type.Object({ data: Type.Array(ActiveAlert) });
export const ActiveAlertQuery = Type.Object({
  project_id: Type.Optional(Type.String()),
  metric: Type.Optional(Metric),
});

const EndpointName = Type.String({ minLength: 1, maxLength: MAX_ENDPOINT_NAME_LENGTH, description: 'Human-readable name of the endpoint.' });
const EndpointUrl = Type.String({
  format: 'uri',
  pattern: '^https://',
  maxLength: MAX_ENDPOINT_URL_LENGTH,
  description: `Where webhooks are sent; HTTPS only (ours: ${URL_RULE}).`,
});
const CustomHeaders = (options: Record<string, unknown> = {}) =>
  StringMap({
    maxProperties: MAX_CUSTOM_HEADERS,
    additionalProperties: { type: 'string', maxLength: MAX_HEADER_VALUE_LENGTH },
    ...options,
    description:
      `${(options.description as string | undefined) ?? 'Extra headers sent with every webhook.'} Ours: ${CUSTOM_HEADER_RULES}. ` +
      'A User-Agent replaces ours; Content-Type and the X-PolyAI-* headers are reserved, and so are the Standard Webhooks ' +
      'webhook-id, webhook-timestamp and webhook-signature: accepted, never sent (ours always win).',
  });
const EventTypes = Type.Array(WebhookEventType, {
  minItems: 1,
  maxItems: MAX_EVENT_TYPES_LISTED,
  description: `Event types the endpoint receives (ours: at most ${MAX_EVENT_TYPES_LISTED} entries; repeats are dropped).`,
});
const Timeout = Type.Integer({ minimum: 1000, maximum: 30000, description: 'Deadline of one delivery attempt, in ms.' });

const PreviousSecretExpiresAt = NullableDateTime({
  description:
    'Ours: until when the secret replaced by the last rotation with `?overlap=` still signs (Standard Webhooks signatures carry ' +
    'both); null when no previous secret signs.',
});

export const WebhookEndpoint = Type.Object(
  {
    id: Type.String({ pattern: ENDPOINT_ID_PATTERN, description: 'Webhook endpoint ID.' }),
    name: EndpointName,
    url: Type.String({ format: 'uri', maxLength: MAX_ENDPOINT_URL_LENGTH }),
    enabled: Type.Boolean({ default: true }),
    event_types: Type.Array(WebhookEventType, { maxItems: MAX_EVENT_TYPES_LISTED }),
    headers: Type.Optional(CustomHeaders({ default: {} })),
    timeout_ms: Type.Integer({ minimum: 1000, maximum: 30000, default: 5000 }),
    created_at: DateTime(),
    updated_at: DateTime(),
    previous_secret_expires_at: Type.Optional(PreviousSecretExpiresAt),
    disabled_reason: Type.Optional(
      NullableString({
        description:
          'Ours: why the service disabled the endpoint itself (every delivery attempt failed for ALERTS_ENDPOINT_DISABLE_AFTER); ' +
          'null unless it did. Enabling it (PATCH enabled: true) clears it.',
      }),
    ),
    disabled_at: Type.Optional(NullableDateTime({ description: 'Ours: when the service disabled the endpoint itself; null unless it did.' })),
  },
  { description: 'A registered webhook receiver. The signing secret is never part of it.' },
);

export const WebhookEndpointCreated = Type.Intersect([
  WebhookEndpoint,
  Type.Object({
    signing_secret: Type.String({ description: 'Shown in this response only; keep it to verify signatures.' }),
  }),
]);

export const CreateWebhookEndpointBody = Type.Object(
  {
    name: EndpointName,
    url: EndpointUrl,
    event_types: EventTypes,
    headers: Type.Optional(CustomHeaders()),
    timeout_ms: Type.Optional({ ...Timeout, default: 5000 } as typeof Timeout),
    enabled: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);

export const UpdateWebhookEndpointBody = Type.Object(
  {
    name: Type.Optional(EndpointName),
    url: Type.Optional(EndpointUrl),
    event_types: Type.Optional(EventTypes),
    headers: Type.Optional(CustomHeaders({ description: 'Replaces the whole map.' })),
    timeout_ms: Type.Optional(Timeout),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, description: 'Only the fields given change.' },
);

export const WebhookEndpointList = Type.Object({ data: Type.Array(WebhookEndpoint) });
export const WebhookEndpointQuery = Type.Object({
  enabled: Type.Optional(Type.Boolean()),
  event_type: Type.Optional(WebhookEventType),
});
export const EndpointIdParams = Type.Object({
  endpoint_id: Type.String({ pattern: ENDPOINT_ID_PATTERN, description: 'Webhook endpoint ID, such as whe_9ZtRcXw3nByK5pVqMaEfJs.' }),
});
export const RotatedSecret = Type.Object({
  signing_secret: Type.String({ description: 'The new secret; the previous one no longer signs anything, unless `overlap` was given.' }),
  previous_secret_expires_at: Type.Optional(PreviousSecretExpiresAt),
});
export const RotateSecretQuery = Type.Object({
  overlap: Type.Optional(
    Type.String({
      maxLength: 16,
      description:
        'Ours: the replaced secret keeps signing for this long beside the new one (`30s`, `15m`, `24h`, `7d`; more than 0, at most ' +
        '7 days): Standard Webhooks signatures carry both, X-PolyAI-Signature the new one only. Rotating again meanwhile ' +
        'replaces the previous secret with the one being replaced. Without it the replaced secret stops at once.',
      examples: ['24h'],
    }),
  ),
});

/** Error responses by status, for route schemas. */
export function errorResponses<const S extends readonly number[]>(...statuses: S): Record<S[number], TSchema> {
  const descriptions: Record<number, string> = {
    400: 'The body or query string failed validation.',
    401: 'The API key is missing, unknown or revoked.',
    404: 'No such resource in this account.',
    409: 'The account already has the maximum number of these resources.',
    413: 'The body is larger than the limit.',
    415: 'The body is not JSON.',
    422: 'A path ID is malformed.',
    429: 'The account already has the most live streams open at once.',
    500: 'Unexpected server error.',
    // Listed for compatibility with the published contract, whose evaluator is a separate
    // backend; ours is built in, so this status is not expected in practice.
    502: 'The monitoring backend could not be updated.',
  };
  return Object.fromEntries(
    statuses.map((status) => [status, { ...ErrorBody, description: descriptions[status] ?? 'Error.' }]),
  ) as unknown as Record<S[number], TSchema>;
}

export const TelemetryEvent = Type.Object(
  {
    type: StringEnum(TELEMETRY_EVENT_TYPES, {
      description: 'call → call_volume, call_crash → call_crashes, turn → latency metrics, api_error → api_errors, function_error → function_errors.',
    }),
    project_id: Type.Optional(
      NullableString({ minLength: 1, maxLength: MAX_PROJECT_ID_LENGTH, description: 'Project of the event; omitted or null for none.' }),
    ),
    // RFC 3339 is checked (once, while converting) by the telemetry domain, not by a format
    // keyword: it is the hottest check of ingestion.
    timestamp: Type.Optional(
      Type.String({
        description: 'When it happened, an RFC 3339 date-time; default: time of receipt. At most 5 minutes ahead, less than 60 minutes old.',
        examples: ['2026-03-15T10:30:00.000Z'],
      }),
    ),
    latency_ms: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_LATENCY_MS, description: 'Turn latency in ms; required on turns, not allowed otherwise.' }),
    ),
  },
  { additionalProperties: false },
);

export const TelemetryBatch = Type.Object(
  {
    events: Type.Array(TelemetryEvent, { minItems: 1, maxItems: MAX_EVENTS_PER_BATCH }),
  },
  { additionalProperties: false },
);

export const TelemetryAccepted = Type.Object({
  accepted: Type.Integer({ description: 'Events recorded.' }),
});

export const DeliveryIdParams = Type.Object({
  endpoint_id: EndpointIdParams.properties.endpoint_id,
  delivery_id: Type.String({ pattern: '^dlv_[A-Za-z0-9]+$', description: 'Delivery ID, such as dlv_3kTqz8Xw2bLmN5pVr7YcHd.' }),
});

const Attempt = Type.Object({
  attempt: Type.Integer({ description: '1 for the first attempt.' }),
  started_at: DateTime(),
  duration_ms: Type.Integer(),
  status_code: NullableInteger({ description: 'HTTP status of the answer; null when there was none.' }),
  error_class: Type.Unsafe<string | null>({
    type: ['string', 'null'],
    enum: ['timeout', 'dns', 'connect_refused', 'tls', 'reset', 'blocked_address', 'network', null],
    description: 'Why there was no answer.',
  }),
  error: NullableString(),
  response_body: NullableString({ description: 'First 1 KiB of the answer body.' }),
});

export const DeliveryStatusSchema = StringEnum(['pending', 'in_flight', 'delivered', 'failed', 'cancelled'] as const, {
  description:
    'pending: an attempt is due at next_attempt_at; failed: all attempts used or a final answer; cancelled: endpoint deleted, ' +
    'or disabled by the service (never sent; last_error says why).',
});

export const Delivery = Type.Object({
  id: Type.String({ pattern: '^dlv_[A-Za-z0-9]+$' }),
  event_id: Type.String({ description: 'Sent as X-PolyAI-Event-ID on every attempt.' }),
  event_type: WebhookEventType,
  status: DeliveryStatusSchema,
  attempt_count: Type.Integer(),
  next_attempt_at: NullableDateTime(),
  last_error: NullableString(),
  created_at: DateTime(),
  updated_at: DateTime(),
  attempts: Type.Array(Attempt),
});

export const DeliveryList = Type.Object({ data: Type.Array(Delivery) });
export const DeliveryQuery = Type.Object({
  status: Type.Optional(DeliveryStatusSchema),
  event_type: Type.Optional(WebhookEventType),
});

export const TestDeliveryResult = Type.Object({
  delivered: Type.Boolean({ description: 'True when the endpoint answered 2xx within its timeout.' }),
  event_id: Type.String(),
  status_code: NullableInteger(),
  error_class: Attempt.properties.error_class,
  error: NullableString(),
  duration_ms: Type.Integer(),
  response_body: NullableString(),
});

export const WebhookAlertPayload = Type.Object({
  id: Type.String({ pattern: RULE_ID_PATTERN, description: 'The rule that fired or resolved.' }),
  name: Type.String(),
  project_id: Type.Optional(NullableString()),
  metric: Metric,
  operator: ComparisonOperator,
  threshold_value: Type.Integer(),
  window_duration: Type.Optional(WindowDuration),
  current_value: Type.Optional(NullableInteger()),
  previous_state: Type.Optional(
    Type.Unsafe<string | null>({ type: ['string', 'null'], enum: ['ok', 'alert', 'no_data', 'unknown', null] }),
  ),
  triggered_at: DateTime({ description: 'When the rule started firing.' }),
  resolved_at: Type.Optional(DateTime({ description: 'On alerts.resolved: when it stopped.' })),
});

export const WebhookEventBody = Type.Object(
  {
    id: Type.Optional(Type.String({ description: 'Event id, also in X-PolyAI-Event-ID.' })),
    event_type: WebhookEventType,
    created_at: Type.Optional(DateTime()),
    test: Type.Optional(Type.Boolean({ description: 'Present and true on events sent by POST .../test.' })),
    alert: WebhookAlertPayload,
  },
  {
    description:
      'Body of every webhook. Headers: X-PolyAI-Timestamp (Unix seconds), X-PolyAI-Signature (hex HMAC-SHA256 of ' +
      '"{timestamp}.{raw body}" keyed with the signing secret), X-PolyAI-Event-ID (stable across retries); and the ' +
      'Standard Webhooks webhook-id, webhook-timestamp and webhook-signature (ours).',
  },
);

// Rule state history (ours: GET /v1/alert-rules/{rule_id}/history).
/** The event a transition sends, or null: one schema for history and previews. */
const NullableEventType = (description: string) =>
  Type.Unsafe<(typeof WEBHOOK_EVENT_TYPES)[number] | null>({ type: ['string', 'null'], enum: [...WEBHOOK_EVENT_TYPES, null], description });
export const RuleHistoryQuery = Type.Object({
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_HISTORY_PAGE, default: DEFAULT_HISTORY_PAGE, description: `Transitions per page, 1 to ${MAX_HISTORY_PAGE}.` }),
  ),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 64, description: 'The `next_cursor` of the previous page; omitted for the newest page.' }),
  ),
});

export const RuleTransition = Type.Object({
  event_id: NullableString({ description: 'The event the transition emitted (its X-PolyAI-Event-ID); null when it sent nothing.' }),
  event_type: NullableEventType('null for transitions that send nothing, such as ok → no_data or a rule disabled (→ unknown).'),
  from_state: AlertState,
  to_state: AlertState,
  value: NullableInteger({ description: 'The measured value that caused it; null without data or when disabled.' }),
  at: DateTime({ description: 'When the rule changed state (ISO 8601 UTC, milliseconds).' }),
  threshold_value: Type.Integer({ description: "The rule's threshold when it changed state (a later update does not rewrite it)." }),
  operator: ComparisonOperator,
  window_duration: WindowDuration,
  silence_id: NullableString({
    description: 'The silence that held the event back (written, sent to no endpoint); null when it was sent or there was none.',
  }),
});

export const RuleHistoryPage = Type.Object({
  data: Type.Array(RuleTransition, { description: 'Newest first.' }),
  next_cursor: NullableString({ description: 'Pass as `cursor` for the next, older page; null on the last page.' }),
});

// Rule series and previews (ours: GET /v1/alert-rules/{rule_id}/series, POST /v1/alert-rules/preview).
const SERIES_RANGE_DOC =
  'Points are at from + step, from + 2 step, … up to to (at most 1,440 of them). Each is the rule’s metric over its window ' +
  'ending at that moment, computed from stored telemetry exactly as the evaluator computes it (same window, scope, ' +
  'percentile method and missing-data rules), and the state it gives.';
const SeriesRangeFields = {
  from: Type.Optional(
    Type.String({
      description:
        'RFC 3339 date-time; excluded (the first point is one step later). Default: one hour before `to`. Not before the ' +
        'telemetry retention (ALERTS_TELEMETRY_RETENTION, 7 days by default); the first windows, which reach before `from`, ' +
        'count only the telemetry still kept.',
      examples: ['2026-03-15T09:30:00Z'],
    }),
  ),
  to: Type.Optional(
    Type.String({
      description: 'RFC 3339 date-time; the last point is at or before it. Default: now. Not in the future (up to 60 s ahead, for clock skew, is taken as now).',
      examples: ['2026-03-15T10:30:00Z'],
    }),
  ),
  step: Type.Optional(
    Type.String({ maxLength: 16, description: 'Time between points: a whole number of seconds, minutes or hours (`10s`, `1m`, `1h`); default `10s`.', examples: ['10s', '1m'] }),
  ),
};
export const SeriesQuery = Type.Object(SeriesRangeFields);

export const PreviewAlertRuleBody = Type.Object(
  { ...CreateAlertRuleBody.properties, ...SeriesRangeFields },
  { additionalProperties: false, description: 'The fields of a create request (validated the same way; `enabled` changes nothing here), plus the range.' },
);
export type PreviewAlertRuleBody = Static<typeof PreviewAlertRuleBody>;

const PointState = StringEnum(['ok', 'alert', 'no_data'] as const, { description: 'The state the value gives: no_data when the value is null.' });
const SeriesPoint = Type.Object({
  at: DateTime(),
  value: NullableInteger({
    description:
      'The metric over the window ending at `at`; null without data: no turns in the window for latency metrics, a scope ' +
      'silent for 24 hours for count metrics (seen when its telemetry was received while not yet rolled up, else at the ' +
      'second of its telemetry, or at the end of the minute for per-minute telemetry).',
  }),
  state: PointState,
});
const seriesFields = {
  project_id: NullableString({ description: 'The scope: a project, or null for the whole account.' }),
  metric: Metric,
  operator: ComparisonOperator,
  threshold_value: Type.Integer(),
  window_duration: WindowDuration,
  from: DateTime({ description: 'The range as used: defaults filled in, a `to` slightly ahead taken as now.' }),
  to: DateTime(),
  step: Type.String({ description: 'As given, or `10s`.' }),
  per_second_after: DateTime({
    description:
      'Telemetry after this is kept per second, older telemetry per minute. A point whose window reaches at or before it is ' +
      'computed from per-minute rows (each counted at its last second): exact when the point and the window are whole ' +
      'minutes (a 60 s step from a whole minute), else the window is rounded to the minutes it covers.',
  }),
  points: Type.Array(SeriesPoint),
};
export const RuleSeries = Type.Object(seriesFields, { description: `${SERIES_RANGE_DOC} Computed with the rule’s current settings.` });

const Transition = Type.Object({
  at: DateTime(),
  from_state: AlertState,
  to_state: PointState,
  value: NullableInteger(),
  event_type: NullableEventType('The webhook event the live evaluator sends for this transition; null when it sends none.'),
});
export const RulePreview = Type.Object(
  {
    ...seriesFields,
    transitions: Type.Array(Transition, {
      description: 'Every change of state, oldest first, starting from `unknown` (the state a new rule starts in) at the first point.',
    }),
    triggered_count: Type.Integer({ description: 'How many alerts.triggered events the rule would have sent.' }),
  },
  { description: `${SERIES_RANGE_DOC} The candidate rule starts in state unknown, as a new rule does, and is evaluated at each point.` },
);

// Silences (ours: /v1/silences).
export const SILENCE_ID_PATTERN = '^sil_[A-Za-z0-9]+$';
const SilenceTime = (description: string) =>
  // RFC 3339 is checked by the silences domain, which names the field (as for series ranges).
  Type.String({ maxLength: 64, description, examples: ['2026-03-15T12:00:00Z'] });

export const CreateSilenceBody = Type.Object(
  {
    rule_id: Type.Optional(
      Type.String({ pattern: RULE_ID_PATTERN, description: 'Matches this rule only; it must be a rule of the account (400 otherwise).' }),
    ),
    project_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_PROJECT_ID_LENGTH,
        description: 'Matches the rules of this project (never account-wide rules, whose project_id is null).',
      }),
    ),
    metric: Type.Optional({ ...Metric, description: 'Matches the rules of this metric.' } as typeof Metric),
    starts_at: Type.Optional(SilenceTime('RFC 3339 date-time from which the silence applies (included); default: now.')),
    ends_at: SilenceTime(
      `RFC 3339 date-time at which it stops applying (excluded): after starts_at and after now, at most ${MAX_SILENCE_AHEAD_DAYS} days from now.`,
    ),
    comment: Type.String({ minLength: 1, maxLength: MAX_SILENCE_COMMENT_LENGTH, description: `Why (1 to ${MAX_SILENCE_COMMENT_LENGTH} characters).` }),
  },
  {
    additionalProperties: false,
    description: 'At least one of rule_id, project_id and metric; a rule is silenced when every one given matches it.',
  },
);
export type CreateSilenceBody = Static<typeof CreateSilenceBody>;

export const Silence = Type.Object(
  {
    id: Type.String({ pattern: SILENCE_ID_PATTERN, description: 'Silence ID.' }),
    rule_id: NullableString({ description: 'null: any rule.' }),
    project_id: NullableString({ description: 'null: any project.' }),
    metric: Type.Unsafe<(typeof METRICS)[number] | null>({ type: ['string', 'null'], enum: [...METRICS, null], description: 'null: any metric.' }),
    starts_at: DateTime({ description: 'Applies from here (included).' }),
    ends_at: DateTime({ description: 'Until here (excluded); the time of deletion for one ended by DELETE.' }),
    comment: Type.String(),
    created_at: DateTime(),
    active: Type.Boolean({ description: 'Whether it applies now (starts_at <= now < ends_at).' }),
  },
  { description: 'A silence: while it applies, the rules it matches change state as usual, but their events are sent to no endpoint.' },
);

export const SilencePage = Type.Object({
  data: Type.Array(Silence, { description: 'Newest first.' }),
  next_cursor: NullableString({ description: 'Pass as `cursor` for the next, older page; null on the last page.' }),
});

export const SilenceQuery = Type.Object({
  active: Type.Optional(Type.Boolean({ description: 'true: only the silences that apply now; false: only those that do not (ended or not started).' })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_SILENCES_PAGE, default: DEFAULT_SILENCES_PAGE, description: `Silences per page, 1 to ${MAX_SILENCES_PAGE}.` }),
  ),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 64, description: 'The `next_cursor` of the previous page; omitted for the newest page.' }),
  ),
});

export const SilenceIdParams = Type.Object({
  silence_id: Type.String({ pattern: SILENCE_ID_PATTERN, description: 'Silence ID, such as sil_4fHq8ZtRcXw3nByK5pVqMa.' }),
});
