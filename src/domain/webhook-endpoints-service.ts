import type { WebhookEndpointsRepository } from './ports/webhook-endpoints-repository.js';
import { toIso, type Clock } from './clock.js';
import { AppError, invalidRequest, notFound } from './errors.js';
import { ID_PREFIX, newId } from './ids.js';
import {
  customHeaderProblems,
  endpointSettingsFromInput,
  MAX_WEBHOOK_ENDPOINTS_PER_ACCOUNT,
  newSigningSecret,
  parseSecretOverlap,
  type NewWebhookEndpointInput,
  type WebhookEndpoint,
  type WebhookEndpointFilter,
  type WebhookEndpointPatch,
  webhookUrlProblem,
} from './webhook-endpoints.js';

export interface WebhookEndpointsService {
  create(accountId: string, input: NewWebhookEndpointInput): Promise<WebhookEndpoint & { signing_secret: string }>;
  list(accountId: string, filter: WebhookEndpointFilter): Promise<WebhookEndpoint[]>;
  get(accountId: string, id: string): Promise<WebhookEndpoint>;
  update(accountId: string, id: string, patch: WebhookEndpointPatch): Promise<WebhookEndpoint>;
  delete(accountId: string, id: string): Promise<void>;
  /**
   * A new signing secret. With `overlap` (`24h`: see parseSecretOverlap) the replaced one keeps
   * signing until then, beside the new one; without it, it stops at once.
   */
  rotateSecret(accountId: string, id: string, overlap?: string): Promise<{ signing_secret: string; previous_secret_expires_at: string | null }>;
}

function checkHeaders(headers: Record<string, string> | undefined): void {
  if (headers === undefined) return;
  const problems = customHeaderProblems(headers);
  if (problems.length > 0) {
    throw new AppError('validation', `invalid custom header: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`, problems);
  }
}

function checkUrl(url: string | undefined): void {
  if (url === undefined) return;
  const problem = webhookUrlProblem(url);
  if (problem !== undefined) throw new AppError('validation', `invalid request body: url ${problem}`, [{ field: 'url', message: problem }]);
}

/** The overlap in ms, or a 400 naming `overlap`; undefined when none was asked for. */
function overlapMs(overlap: string | undefined): number | undefined {
  if (overlap === undefined) return undefined;
  const parsed = parseSecretOverlap(overlap);
  if (typeof parsed === 'string') throw invalidRequest('validation', 'invalid query string', [{ field: 'overlap', message: parsed }]);
  return parsed;
}

/** Webhook endpoint use cases; the HTTP layer calls these with validated input. */
export function createWebhookEndpointsService(deps: {
  endpoints: WebhookEndpointsRepository;
  clock: Clock;
  /** Called once an endpoint's deletion or disabling is committed: its attempts in flight stop. */
  onWithdrawn?: (endpointId: string) => void;
}): WebhookEndpointsService {
  const { endpoints, clock } = deps;
  // An overlap that has ended is no overlap: say so rather than a time in the past.
  const shown = (endpoint: WebhookEndpoint): WebhookEndpoint =>
    endpoint.previous_secret_expires_at !== null && Date.parse(endpoint.previous_secret_expires_at) <= clock.now()
      ? { ...endpoint, previous_secret_expires_at: null }
      : endpoint;

  return {
    async create(accountId, input) {
      checkUrl(input.url);
      checkHeaders(input.headers);
      const signingSecret = newSigningSecret();
      const created = await endpoints.insertWithinLimit(
        accountId,
        { ...endpointSettingsFromInput(input), id: newId(ID_PREFIX.webhookEndpoint), created_at: toIso(clock.now()) },
        signingSecret,
        MAX_WEBHOOK_ENDPOINTS_PER_ACCOUNT,
      );
      if (created === 'limit_exceeded') {
        throw new AppError(
          'limitExceeded',
          `webhook endpoint limit reached: an account can have at most ${MAX_WEBHOOK_ENDPOINTS_PER_ACCOUNT} webhook endpoints`,
        );
      }
      return { ...created, signing_secret: signingSecret };
    },

    list: async (accountId, filter) => (await endpoints.list(accountId, filter)).map(shown),

    async get(accountId, id) {
      const endpoint = await endpoints.get(accountId, id);
      if (!endpoint) throw notFound('webhook endpoint', id);
      return shown(endpoint);
    },

    async update(accountId, id, patch) {
      checkUrl(patch.url);
      checkHeaders(patch.headers);
      const normalized = patch.event_types ? { ...patch, event_types: [...new Set(patch.event_types)] } : patch;
      const endpoint = await endpoints.update(accountId, id, normalized, toIso(clock.now()));
      if (!endpoint) throw notFound('webhook endpoint', id);
      if (!endpoint.enabled) deps.onWithdrawn?.(id);
      return shown(endpoint);
    },

    async delete(accountId, id) {
      if (!(await endpoints.delete(accountId, id, toIso(clock.now())))) throw notFound('webhook endpoint', id);
      deps.onWithdrawn?.(id);
    },

    async rotateSecret(accountId, id, overlap) {
      // Checked before anything is written: a bad overlap changes nothing.
      const keepMs = overlapMs(overlap);
      const signingSecret = newSigningSecret();
      const now = clock.now();
      const previousSignsUntil = keepMs === undefined ? undefined : now + keepMs;
      if (!(await endpoints.replaceSecret(accountId, id, signingSecret, toIso(now), previousSignsUntil))) throw notFound('webhook endpoint', id);
      return { signing_secret: signingSecret, previous_secret_expires_at: previousSignsUntil === undefined ? null : toIso(previousSignsUntil) };
    },
  };
}
