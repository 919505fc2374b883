/**
 * `alerts demo`: drives a running service with simulated voice-agent telemetry and shows
 * alert rules reacting to it. It creates two rules scoped to a project of its own, streams
 * healthy traffic, starts an incident, ends it, and prints every state change it sees.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCliSettings, type CliSettings } from '../config.js';
import { VoiceAgentSimulator, batchesOf, type Incident } from '../simulator/voice-agent-simulator.js';
import { reachableHost, startListener, type Listener } from './listen.js';
import { defaultTlsDir, ensureThrowawayCert, serviceSettings } from './throwaway-cert.js';

export const DEMO_RULE_PREFIX = 'demo: ';

export type IncidentKind = 'latency' | 'errors' | 'both';

export interface DemoOptions {
  url: string;
  apiKey: string;
  allowRemote: boolean;
  durationS: number;
  seed: number;
  incident: IncidentKind;
  incidentAtS: number;
  incidentForS: number;
  /** Share of turns the latency incident slows down. */
  incidentRatio: number;
  /**
   * Receive the service's webhooks too: an HTTPS receiver on 127.0.0.1 with the throwaway
   * certificate in `tlsDir` (the one `alerts listen --tls` uses), registered as an endpoint.
   */
  webhooks: boolean;
  tlsDir: string;
}

export const DEMO_DEFAULTS = {
  durationS: 120,
  seed: 1,
  incident: 'latency' as IncidentKind,
  incidentAtS: 20,
  incidentForS: 20,
  incidentRatio: 0.2,
};

/** Rule thresholds: well above healthy traffic, well below the incident. */
const LATENCY_THRESHOLD_MS = 2000;
const API_ERRORS_THRESHOLD = 20;
const SLOW_TURN_MULTIPLIER = 5;
const ERROR_MULTIPLIER = 50;
const SEND_EVERY_MS = 1000;
const POLL_EVERY_MS = 500;
const STATUS_EVERY_MS = 5000;
/** Simulated time run before the demo starts, so calls are already in progress (not sent). */
const WARM_UP_MS = 45_000;

export interface DemoDeps {
  out: (line: string) => void;
  /** Aborting stops the demo early; its rules are still deleted. */
  signal?: AbortSignal;
  now?: () => number;
  fetch?: typeof fetch;
}

export class DemoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DemoError';
  }
}

/** The URL, if its host is a loopback address (or remote hosts are explicitly allowed). */
export function checkDemoUrl(url: string, allowRemote: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DemoError(`--url: not a valid URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DemoError('--url must be an http:// or https:// URL');
  if (!allowRemote && !isLoopbackHost(parsed.hostname)) {
    throw new DemoError(
      `--url host "${parsed.hostname}" is not a loopback address: the demo sends simulated telemetry and creates rules, ` +
        'so by default it only talks to a service on this machine (127.0.0.1, ::1, localhost). Pass --allow-remote to override.',
    );
  }
  return parsed;
}

/** The URL of the service `npm start` runs with this environment (HOST, PORT): a wildcard HOST means this machine. */
export function demoServiceUrl(settings: Pick<CliSettings, 'serviceHost' | 'servicePort'>): string {
  return `http://${reachableHost(settings.serviceHost)}:${settings.servicePort}`;
}

/** The API key to use: --api-key, else ALERTS_API_KEY, else ALERTS_BOOTSTRAP_API_KEY; or how to get one. */
export function demoApiKey(flag: string | undefined, settings: Pick<CliSettings, 'apiKey'>): string {
  const key = flag?.trim() || settings.apiKey;
  if (key) return key;
  throw new DemoError(
    'no API key. The demo uses ALERTS_API_KEY, else ALERTS_BOOTSTRAP_API_KEY (the key a service started with it accepts), ' +
      'else --api-key. To make one (same DATABASE_URL as the service):\n' +
      '  ALERTS_API_KEY=$(npx alerts keys create --account demo | tail -n1) npm run demo',
  );
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return v4 !== null && v4[1] === '127' && v4.slice(1).every((part) => Number(part) <= 255);
}

interface RuleView {
  id: string;
  name: string;
  metric: string;
  operator: string;
  threshold_value: number;
  current_state: string;
  current_value: number | null;
  since: string | null;
}

interface EndpointView {
  id: string;
  name: string;
  signing_secret: string;
}

interface TestResult {
  delivered: boolean;
  status_code: number | null;
  error_class: string | null;
  error: string | null;
}

interface Response<T> {
  status: number;
  body: T;
}

const fmt = (n: number) => n.toLocaleString('en-US');

export async function runDemo(options: DemoOptions, deps: DemoDeps): Promise<void> {
  const { out, signal } = deps;
  const now = deps.now ?? Date.now;
  const doFetch = deps.fetch ?? fetch;
  const base = checkDemoUrl(options.url, options.allowRemote).href.replace(/\/+$/, '');
  if (!(options.durationS > 0)) throw new DemoError('--duration must be a positive number of seconds');
  if (!(options.incidentRatio > 0 && options.incidentRatio <= 1)) throw new DemoError('--incident-ratio must be in (0, 1]');

  async function api<T>(method: string, path: string, body?: unknown): Promise<Response<T>> {
    let res: globalThis.Response;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: { 'x-api-key': options.apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      const cause = (error as Error & { cause?: { message?: string } }).cause?.message;
      throw new DemoError(`cannot reach the service at ${base} (${cause ?? (error as Error).message}); is it running (npm start)?`);
    }
    const text = await res.text();
    if (res.status === 401) {
      throw new DemoError('the service rejected the API key (401); create one with: alerts keys create --account demo');
    }
    const parsed = text === '' ? undefined : (JSON.parse(text) as T);
    return { status: res.status, body: parsed as T };
  }

  const expect = <T>(res: Response<T>, status: number, what: string): T => {
    if (res.status !== status) {
      const message = (res.body as { message?: string } | undefined)?.message ?? '';
      throw new DemoError(`${what} failed: HTTP ${res.status} ${message}`);
    }
    return res.body;
  };

  const startedAt = now();
  const stamp = () => `[${((now() - startedAt) / 1000).toFixed(1).padStart(5)}s]`;
  const say = (line: string) => out(`${stamp()} ${line}`);
  const project = `demo-${startedAt.toString(36)}`;

  out(`alerts demo: ${base}, ${options.durationS} s, seed ${options.seed}, telemetry for project "${project}" (new each run)`);

  // Rules of earlier runs (interrupted by kill -9, say) are found by their name prefix.
  const existing = expect(await api<{ data: RuleView[] }>('GET', '/v1/alert-rules'), 200, 'listing rules').data;
  const leftovers = existing.filter((r) => r.name.startsWith(DEMO_RULE_PREFIX));
  for (const rule of leftovers) await api('DELETE', `/v1/alert-rules/${rule.id}`);
  if (leftovers.length > 0) out(`Deleted ${leftovers.length} demo rule(s) left from an earlier run.`);
  if (options.webhooks) {
    const endpoints = expect(await api<{ data: EndpointView[] }>('GET', '/v1/webhook-endpoints'), 200, 'listing webhook endpoints').data;
    const stale = endpoints.filter((e) => e.name.startsWith(DEMO_RULE_PREFIX));
    for (const endpoint of stale) await api('DELETE', `/v1/webhook-endpoints/${endpoint.id}`);
    if (stale.length > 0) out(`Deleted ${stale.length} demo webhook endpoint(s) left from an earlier run.`);
  }

  /** The demo's own receiver and endpoint, while webhooks are shown. */
  let receiver: { listener: Listener; endpointId?: string } | undefined;
  let verified = 0;
  const setUpWebhooks = async () => {
    let cert;
    try {
      cert = ensureThrowawayCert(options.tlsDir);
    } catch (error) {
      out(`Webhooks: not shown (${(error as Error).message}).`);
      return;
    }
    const secrets: string[] = [];
    const listener = await startListener(
      { port: 0, host: '127.0.0.1', secrets, tls: { cert: cert.cert, key: cert.key }, toleranceSeconds: 300, printBody: false },
      (line) => {
        if (/^\S+ verified /.test(line)) verified++;
        say(`webhook  ${line.replace(/^\S+ /, '')}`);
      },
    );
    receiver = { listener };
    const url = `https://127.0.0.1:${new URL(listener.url).port}/`;
    const created = await api<EndpointView>('POST', '/v1/webhook-endpoints', {
      name: `${DEMO_RULE_PREFIX}webhook receiver (${project})`,
      url,
      event_types: ['alerts.triggered', 'alerts.resolved'],
      timeout_ms: 5000,
    });
    if (created.status === 409) {
      out('Webhooks: not shown: the account already has 10 webhook endpoints (delete one to see them).');
      return;
    }
    const endpoint = expect(created, 201, 'creating a webhook endpoint');
    receiver.endpointId = endpoint.id;
    secrets.push(endpoint.signing_secret);
    out(`Webhooks: receiving on ${url} (endpoint ${endpoint.id}), verifying each signature; asking the service for a test webhook ...`);
    const test = expect(await api<TestResult>('POST', `/v1/webhook-endpoints/${endpoint.id}/test`), 200, 'sending a test webhook');
    if (test.delivered) {
      out('Webhooks: the signed test webhook arrived and verified; alerts.triggered and alerts.resolved are shown as they arrive.');
      return;
    }
    const why = test.error_class === null ? `HTTP ${test.status_code}` : `${test.error_class}: ${test.error ?? ''}`;
    const settings = serviceSettings(cert.certPath, '127.0.0.1');
    out(`Webhooks: the service could not deliver the test webhook (${why}).`);
    out('To see signed webhooks arrive too, start the service with the two settings this receiver needs');
    out('(trust its throwaway certificate; allow 127.0.0.1), then run the demo again:');
    out(`  ${settings} npm start`);
    out('Carrying on with state changes only.');
    await api('DELETE', `/v1/webhook-endpoints/${endpoint.id}`);
    receiver.endpointId = undefined;
  };

  const ruleSpecs = [
    {
      name: `${DEMO_RULE_PREFIX}p95 turn latency (${project})`,
      metric: 'turn_latency_p95',
      operator: '>',
      threshold_value: LATENCY_THRESHOLD_MS,
      unit: ' ms',
    },
    {
      name: `${DEMO_RULE_PREFIX}API errors (${project})`,
      metric: 'api_errors',
      operator: '>',
      threshold_value: API_ERRORS_THRESHOLD,
      unit: '',
    },
  ];
  const rules = new Map<string, RuleView & { unit: string }>();
  try {
    for (const { unit, ...spec } of ruleSpecs) {
      const res = await api<RuleView>('POST', '/v1/alert-rules', { ...spec, project_id: project, window_duration: '5m' });
      if (res.status === 409) throw new DemoError('the account already has 10 alert rules; delete one or use a key of another account');
      const rule = expect(res, 201, 'creating a rule');
      rules.set(rule.id, { ...rule, unit });
      out(`Created ${rule.id} "${rule.name}": ${rule.metric} ${rule.operator} ${rule.threshold_value}${unit} over 5m, state ${rule.current_state}`);
    }
    if (options.webhooks) await setUpWebhooks();

    const sim = new VoiceAgentSimulator({ seed: options.seed, projects: [{ id: project, callsPerSecond: 3 }] }, startedAt - WARM_UP_MS);
    sim.advanceTo(startedAt); // calls already in progress when the demo starts; not sent

    const incident: Incident = {
      ...(options.incident !== 'errors' ? { slowShare: options.incidentRatio, latencyMultiplier: SLOW_TURN_MULTIPLIER } : {}),
      ...(options.incident !== 'latency' ? { errorMultiplier: ERROR_MULTIPLIER } : {}),
    };
    const incidentStart = options.incidentAtS * 1000;
    const incidentEnd = incidentStart + options.incidentForS * 1000;
    out('');
    out('What happens:');
    out(`  0 s   healthy traffic: ~3 calls/s, ~20 turns/s; turn latency log-normal around 700 ms (p95 ~1.2 s), ~0.4% of turns hit an API error.`);
    if (options.incident !== 'errors') {
      out(
        `  ${options.incidentAtS} s  latency incident: ${Math.round(options.incidentRatio * 100)}% of turns become ${SLOW_TURN_MULTIPLIER}x slower. ` +
          `The p95 over 5 minutes crosses ${LATENCY_THRESHOLD_MS} ms once slow turns are over ~5% of the turns in the window: a few seconds,`,
      );
      out(`        because this project's window holds only the demo's own traffic.`);
    }
    if (options.incident !== 'latency') {
      out(`  ${options.incidentAtS} s  error incident: API errors (and function errors, crashes) ${ERROR_MULTIPLIER}x as frequent; the 5-minute count passes ${API_ERRORS_THRESHOLD} within seconds.`);
    }
    out(`  ${options.incidentAtS + options.incidentForS} s  the incident ends.`);
    if (options.incident !== 'errors') {
      out(`        The p95 resolves once healthy turns dilute the slow ones below 5% of the window (about a minute later with the defaults),`);
      out(`        or at the latest when the slow turns are older than 5 minutes.`);
    }
    if (options.incident !== 'latency') {
      out(`        The error count falls back only as the errors leave the 5-minute window: about 5 minutes later.`);
    }
    out(`  ${options.durationS} s  the demo deletes its rules and exits (Ctrl-C does the same earlier).`);
    out('Rules are evaluated as each batch is accepted; state changes below are seen by polling GET /v1/alert-rules every 500 ms.');
    out('Near the threshold a value can cross back and forth for a moment: every crossing is a state change, and is shown.');
    out('');

    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort);
    if (signal?.aborted) stop.abort();
    const until = (ms: number) =>
      sleep(Math.max(0, ms - (now() - startedAt)), undefined, { signal: stop.signal }).then(
        () => true,
        () => false,
      );

    let sent = 0;
    let lastError = '';
    const reportError = (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      if (message !== lastError) say(`! ${message}`);
      lastError = message;
      if (error instanceof DemoError && /401/.test(message)) stop.abort();
    };

    const sendLoop = async () => {
      let phase: 'before' | 'during' | 'after' = 'before';
      for (let tick = 1; await until(tick * SEND_EVERY_MS); tick++) {
        const elapsed = now() - startedAt;
        if (phase === 'before' && elapsed >= incidentStart) {
          phase = 'during';
          sim.startIncident(incident);
          say(`>>> incident starts (${describe(options)})`);
        } else if (phase === 'during' && elapsed >= incidentEnd) {
          phase = 'after';
          sim.endIncident();
          say('<<< incident ends: traffic is healthy again');
        }
        const events = sim.advanceTo(now());
        try {
          for (const batch of batchesOf(events, 10_000)) {
            expect(await api('POST', '/v1/telemetry/events', { events: batch }), 202, 'sending telemetry');
            sent += batch.length;
          }
          lastError = '';
        } catch (error) {
          reportError(error);
        }
        if (elapsed >= options.durationS * 1000) stop.abort();
      }
    };

    const pollLoop = async () => {
      let nextStatus = STATUS_EVERY_MS;
      for (let tick = 1; await until(tick * POLL_EVERY_MS); tick++) {
        try {
          const list = expect(await api<{ data: RuleView[] }>('GET', '/v1/alert-rules'), 200, 'listing rules').data;
          for (const fresh of list) {
            const known = rules.get(fresh.id);
            if (!known) continue;
            if (fresh.current_state !== known.current_state) {
              const marker = fresh.current_state === 'alert' ? 'FIRING  ' : known.current_state === 'alert' ? 'RESOLVED' : 'state   ';
              say(
                `${marker} ${known.name}: ${known.current_state} -> ${fresh.current_state}, value ` +
                  `${fresh.current_value === null ? 'none' : fmt(fresh.current_value) + known.unit} ` +
                  `(${known.operator} ${fmt(known.threshold_value)}${known.unit}; since ${fresh.since ?? '-'})`,
              );
            }
            rules.set(fresh.id, { ...fresh, unit: known.unit });
          }
          lastError = '';
        } catch (error) {
          reportError(error);
        }
        if (tick * POLL_EVERY_MS >= nextStatus) {
          nextStatus += STATUS_EVERY_MS;
          const values = [...rules.values()]
            .map((r) => `${r.metric} ${r.current_value === null ? 'none' : fmt(r.current_value) + r.unit} [${r.current_state}]`)
            .join(', ');
          say(`sent ${fmt(sent)} events; 5-minute values: ${values}`);
        }
      }
    };

    await Promise.all([sendLoop(), pollLoop()]);
    signal?.removeEventListener('abort', onAbort);
    const s = sim.stats;
    out('');
    out(
      `Sent ${fmt(sent)} events: ${fmt(s.calls)} calls, ${fmt(s.turns)} turns, ${fmt(s.apiErrors)} API errors, ` +
        `${fmt(s.functionErrors)} function errors, ${fmt(s.crashes)} crashes (including the warm-up, which was not sent).`,
    );
    if (receiver?.endpointId !== undefined) out(`Received ${fmt(verified)} signed webhook(s) that verified (including the test webhook).`);
  } finally {
    if (receiver) {
      if (receiver.endpointId !== undefined) await api('DELETE', `/v1/webhook-endpoints/${receiver.endpointId}`).catch(() => undefined);
      await receiver.listener.close();
    }
    let deleted = 0;
    for (const id of rules.keys()) {
      try {
        const res = await api('DELETE', `/v1/alert-rules/${id}`);
        if (res.status === 204 || res.status === 404) deleted++;
      } catch {
        // reported below
      }
    }
    if (rules.size > 0) {
      out(
        deleted === rules.size
          ? `Deleted the demo's ${deleted} rules.`
          : `Could not delete ${rules.size - deleted} demo rule(s); the next run deletes them (name prefix "${DEMO_RULE_PREFIX}").`,
      );
    }
  }
}

function describe(options: DemoOptions): string {
  const parts: string[] = [];
  if (options.incident !== 'errors') parts.push(`${Math.round(options.incidentRatio * 100)}% of turns ${SLOW_TURN_MULTIPLIER}x slower`);
  if (options.incident !== 'latency') parts.push(`API errors, function errors and crashes ${ERROR_MULTIPLIER}x as frequent`);
  return parts.join(', ');
}

/** The command line's options: what is not given comes from the environment (src/config.ts) and defaults. */
export type DemoCommandOptions = Omit<DemoOptions, 'url' | 'apiKey' | 'tlsDir'> & { url?: string | undefined; apiKey?: string | undefined; tlsDir?: string | undefined };

/** Runs the demo until its duration ends or SIGINT/SIGTERM, deleting its rules either way. */
export async function demoCommand(
  given: DemoCommandOptions,
  out: (line: string) => void,
  settings: () => CliSettings = loadCliSettings,
): Promise<void> {
  const env = settings();
  const options: DemoOptions = {
    ...given,
    url: given.url ?? demoServiceUrl(env),
    apiKey: demoApiKey(given.apiKey, env),
    tlsDir: given.tlsDir ?? defaultTlsDir(),
  };
  const controller = new AbortController();
  const onSignal = () => {
    if (!controller.signal.aborted) out('Stopping: deleting the demo rules ...');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runDemo(options, { out, signal: controller.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
