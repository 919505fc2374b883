import { resolve } from 'node:path';
import envSchema from 'env-schema';
import { parseCidr } from './delivery/address-guard.js';
import { DEFAULT_RETRY_SCHEDULE, parseRetrySchedule } from './delivery/retry-schedule.js';
import { DEFAULT_ENDPOINT_DISABLE_AFTER, parseDisableAfter } from './domain/endpoint-health.js';
import { DEFAULT_EVENT_RETENTION, DEFAULT_HISTORY_RETENTION, DEFAULT_TELEMETRY_RETENTION, parseRetention } from './domain/retention.js';

/**
 * Where the data lives; `kind` says which storage implementation serves it. `display` names
 * it in messages and logs (a PostgreSQL password is replaced by `***`).
 */
export type DatabaseLocation =
  | { kind: 'sqlite'; path: string; display: string }
  | {
      kind: 'postgres';
      /** The connection string as given (libpq-style parameters, `sslmode` among them). */
      url: string;
      display: string;
      /** Connections this process keeps open at most (`ALERTS_DATABASE_POOL_SIZE`). */
      poolSize: number;
    };

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  readonly database: DatabaseLocation;
  readonly databaseUrl: string;
  readonly bootstrapApiKey: string | undefined;
  /** `ALERTS_METRICS_TOKEN`: when set, GET /metrics requires it as a bearer token. */
  readonly metricsToken: string | undefined;
  readonly secretKey: string | undefined;
  readonly shutdownTimeoutMs: number;
  readonly authCacheTtlMs: number;
  readonly evaluationIntervalMs: number;
  /** How long alert events, webhook deliveries and attempts are kept; null: for ever. */
  readonly eventRetentionMs: number | null;
  /** How long per-minute telemetry is kept (`ALERTS_TELEMETRY_RETENTION`, default 7 days); null: for ever. */
  readonly telemetryRetentionMs: number | null;
  /** How long rule state history is kept (`ALERTS_HISTORY_RETENTION`, default 30 days); null: for ever. */
  readonly historyRetentionMs: number | null;
  readonly delivery: DeliveryConfig;
  readonly http: HttpServerConfig;
  /** false: start-up refuses a database whose schema is behind instead of migrating it (`alerts migrate` does). */
  readonly autoMigrate: boolean;
  /**
   * How long a shard lease (and an instance's membership) lasts without renewal
   * (`ALERTS_LEASE_TTL`): a dead instance's shards move after this.
   */
  readonly leaseTtlMs: number;
}

/** `ALERTS_LEASE_TTL`: `500ms`, `10s`, `1m`; between 1 second and 5 minutes. */
export function parseLeaseTtl(text: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration such as "10s", "1500ms" or "1m"`);
  const ms = Number(match[1]) * (match[2] === 'ms' ? 1 : match[2] === 's' ? 1000 : 60_000);
  if (ms < 1000 || ms > 300_000) throw new Error(`"${text}" is outside 1s to 5m`);
  return ms;
}

/** Limits of the HTTP server on slow or numerous clients. */
export interface HttpServerConfig {
  /** A request's headers and whole body must arrive within this (the headers within 10 s at most). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Connections open at once; further ones are closed as soon as they are accepted. */
  readonly maxConnections: number;
}

export interface DeliveryConfig {
  /**
   * false: deliveries are recorded but not sent (tests, or sending paused). Not a role: the
   * process still evaluates rules and is the one server of its database.
   */
  readonly workerEnabled: boolean;
  readonly retrySchedule: readonly number[];
  readonly allowedCidrs: readonly string[];
  readonly concurrency: number;
  readonly perEndpointConcurrency: number;
  readonly perAccountConcurrency: number;
  /**
   * `ALERTS_ENDPOINT_DISABLE_AFTER`: an endpoint whose attempts have all failed for this long
   * (ms) is disabled by the service; null: never.
   */
  readonly disableEndpointAfterMs: number | null;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface RawEnv {
  ALERTS_DATABASE_POOL_SIZE: number;
  ALERTS_AUTO_MIGRATE: 'on' | 'off';
  ALERTS_LEASE_TTL: string;
  HOST: string;
  PORT: number;
  LOG_LEVEL: string;
  DATABASE_URL: string;
  ALERTS_BOOTSTRAP_API_KEY?: string;
  ALERTS_METRICS_TOKEN?: string;
  ALERTS_SECRET_KEY?: string;
  ALERTS_SHUTDOWN_TIMEOUT_MS: number;
  ALERTS_AUTH_CACHE_TTL_MS: number;
  ALERTS_EVALUATION_INTERVAL_MS: number;
  ALERTS_EVENT_RETENTION: string;
  ALERTS_TELEMETRY_RETENTION: string;
  ALERTS_HISTORY_RETENTION: string;
  ALERTS_REQUEST_TIMEOUT_MS: number;
  ALERTS_KEEP_ALIVE_TIMEOUT_MS: number;
  ALERTS_MAX_CONNECTIONS: number;
  ALERTS_DELIVERY_WORKER: 'on' | 'off';
  ALERTS_RETRY_SCHEDULE: string;
  ALERTS_WEBHOOK_ALLOWED_CIDRS: string;
  ALERTS_DELIVERY_CONCURRENCY: number;
  ALERTS_DELIVERY_ENDPOINT_CONCURRENCY: number;
  ALERTS_DELIVERY_ACCOUNT_CONCURRENCY: number;
  ALERTS_ENDPOINT_DISABLE_AFTER: string;
}

const ENV_SCHEMA = {
  type: 'object',
  properties: {
    HOST: { type: 'string', default: '0.0.0.0' },
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    DATABASE_URL: { type: 'string', minLength: 1, default: './data/alerts.db' },
    ALERTS_BOOTSTRAP_API_KEY: { type: 'string', minLength: 32, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' },
    ALERTS_METRICS_TOKEN: { type: 'string', minLength: 16, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' },
    ALERTS_SECRET_KEY: { type: 'string', minLength: 32 },
    ALERTS_SHUTDOWN_TIMEOUT_MS: { type: 'integer', minimum: 0, default: 10_000 },
    ALERTS_AUTH_CACHE_TTL_MS: { type: 'integer', minimum: 0, maximum: 300_000, default: 5_000 },
    ALERTS_EVALUATION_INTERVAL_MS: { type: 'integer', minimum: 0, maximum: 60_000, default: 1_000 },
    ALERTS_EVENT_RETENTION: { type: 'string', default: DEFAULT_EVENT_RETENTION },
    ALERTS_TELEMETRY_RETENTION: { type: 'string', default: DEFAULT_TELEMETRY_RETENTION },
    ALERTS_HISTORY_RETENTION: { type: 'string', default: DEFAULT_HISTORY_RETENTION },
    ALERTS_REQUEST_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 3_600_000, default: 30_000 },
    ALERTS_KEEP_ALIVE_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 3_600_000, default: 72_000 },
    ALERTS_MAX_CONNECTIONS: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1_000 },
    ALERTS_DELIVERY_WORKER: { type: 'string', enum: ['on', 'off'], default: 'on' },
    ALERTS_RETRY_SCHEDULE: { type: 'string', default: DEFAULT_RETRY_SCHEDULE },
    ALERTS_WEBHOOK_ALLOWED_CIDRS: { type: 'string', default: '' },
    ALERTS_DELIVERY_CONCURRENCY: { type: 'integer', minimum: 1, maximum: 1024, default: 64 },
    ALERTS_DELIVERY_ENDPOINT_CONCURRENCY: { type: 'integer', minimum: 1, maximum: 256, default: 8 },
    ALERTS_DELIVERY_ACCOUNT_CONCURRENCY: { type: 'integer', minimum: 1, maximum: 1024, default: 16 },
    ALERTS_ENDPOINT_DISABLE_AFTER: { type: 'string', default: DEFAULT_ENDPOINT_DISABLE_AFTER },
    ALERTS_DATABASE_POOL_SIZE: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
    ALERTS_AUTO_MIGRATE: { type: 'string', enum: ['on', 'off'], default: 'on' },
    ALERTS_LEASE_TTL: { type: 'string', default: '10s' },
  },
} as const;

/** The URL with its password (if any) replaced by `***`, for messages and logs. */
function redactPassword(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@');
}

/**
 * Where `DATABASE_URL` points. Accepts `postgres://` or `postgresql://` URLs, a file path,
 * `sqlite:<path>`, `sqlite://<path>` or `file:<path>`; relative paths are taken from `cwd`.
 */
export function parseDatabaseUrl(url: string, cwd: string, poolSize = 10): DatabaseLocation {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`DATABASE_URL: "${redactPassword(url)}" is not a valid PostgreSQL URL (postgres://user:password@host:5432/database)`);
    }
    // A host-less URL means a local socket to libpq, which pg does not read the same way.
    if (parsed.hostname === '') throw new ConfigError('DATABASE_URL: the PostgreSQL URL names no host (postgres://user@host:5432/database)');
    if (parsed.pathname.length <= 1) throw new ConfigError('DATABASE_URL: the PostgreSQL URL names no database (postgres://user@host:5432/database)');
    return { kind: 'postgres', url, display: redactPassword(url), poolSize };
  }
  const match = /^(sqlite|file):(\/\/)?(.*)$/i.exec(url);
  let path = url;
  if (match) path = match[3] ?? '';
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new ConfigError(`DATABASE_URL: unsupported scheme in "${url.split(':')[0]}:"; use a postgres:// URL, a SQLite file path or a sqlite: URL`);
  }
  if (path === '') throw new ConfigError('DATABASE_URL: the SQLite file path is empty');
  if (path === ':memory:') return { kind: 'sqlite', path, display: path };
  const absolute = resolve(cwd, path);
  return { kind: 'sqlite', path: absolute, display: absolute };
}

/** Reads and validates the environment once; the result is frozen and passed down. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Config {
  let raw: RawEnv;
  try {
    raw = envSchema<RawEnv>({ schema: structuredClone(ENV_SCHEMA), data: { ...env }, env: false, dotenv: false });
  } catch (error) {
    throw new ConfigError(`invalid environment: ${(error as Error).message}`);
  }
  let retrySchedule: number[];
  try {
    retrySchedule = parseRetrySchedule(raw.ALERTS_RETRY_SCHEDULE);
  } catch (error) {
    throw new ConfigError(`ALERTS_RETRY_SCHEDULE: ${(error as Error).message}`);
  }
  const retention = (name: 'ALERTS_EVENT_RETENTION' | 'ALERTS_TELEMETRY_RETENTION' | 'ALERTS_HISTORY_RETENTION'): number | null => {
    try {
      return parseRetention(raw[name]);
    } catch (error) {
      throw new ConfigError(`${name}: ${(error as Error).message}`);
    }
  };
  const eventRetentionMs = retention('ALERTS_EVENT_RETENTION');
  const telemetryRetentionMs = retention('ALERTS_TELEMETRY_RETENTION');
  const historyRetentionMs = retention('ALERTS_HISTORY_RETENTION');
  const allowedCidrs = raw.ALERTS_WEBHOOK_ALLOWED_CIDRS.split(',').map((c) => c.trim()).filter((c) => c !== '');
  for (const cidr of allowedCidrs) {
    try {
      parseCidr(cidr);
    } catch (error) {
      throw new ConfigError(`ALERTS_WEBHOOK_ALLOWED_CIDRS: ${(error as Error).message}`);
    }
  }
  let disableEndpointAfterMs: number | null;
  try {
    disableEndpointAfterMs = parseDisableAfter(raw.ALERTS_ENDPOINT_DISABLE_AFTER);
  } catch (error) {
    throw new ConfigError(`ALERTS_ENDPOINT_DISABLE_AFTER: ${(error as Error).message}`);
  }
  let leaseTtlMs: number;
  try {
    leaseTtlMs = parseLeaseTtl(raw.ALERTS_LEASE_TTL);
  } catch (error) {
    throw new ConfigError(`ALERTS_LEASE_TTL: ${(error as Error).message}`);
  }
  return Object.freeze({
    host: raw.HOST,
    leaseTtlMs,
    port: raw.PORT,
    logLevel: raw.LOG_LEVEL,
    databaseUrl: raw.DATABASE_URL,
    database: parseDatabaseUrl(raw.DATABASE_URL, cwd, raw.ALERTS_DATABASE_POOL_SIZE),
    autoMigrate: raw.ALERTS_AUTO_MIGRATE === 'on',
    bootstrapApiKey: raw.ALERTS_BOOTSTRAP_API_KEY,
    metricsToken: raw.ALERTS_METRICS_TOKEN,
    secretKey: raw.ALERTS_SECRET_KEY,
    shutdownTimeoutMs: raw.ALERTS_SHUTDOWN_TIMEOUT_MS,
    authCacheTtlMs: raw.ALERTS_AUTH_CACHE_TTL_MS,
    evaluationIntervalMs: raw.ALERTS_EVALUATION_INTERVAL_MS,
    eventRetentionMs,
    telemetryRetentionMs,
    historyRetentionMs,
    http: Object.freeze({
      requestTimeoutMs: raw.ALERTS_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: raw.ALERTS_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: raw.ALERTS_MAX_CONNECTIONS,
    }),
    delivery: Object.freeze({
      workerEnabled: raw.ALERTS_DELIVERY_WORKER === 'on',
      retrySchedule: Object.freeze(retrySchedule),
      allowedCidrs: Object.freeze(allowedCidrs),
      concurrency: raw.ALERTS_DELIVERY_CONCURRENCY,
      perEndpointConcurrency: raw.ALERTS_DELIVERY_ENDPOINT_CONCURRENCY,
      perAccountConcurrency: raw.ALERTS_DELIVERY_ACCOUNT_CONCURRENCY,
      disableEndpointAfterMs,
    }),
  });
}

/** What the CLI's client commands (`alerts demo`, `alerts listen`) take from the environment. */
export interface CliSettings {
  /** `ALERTS_API_KEY`, else `ALERTS_BOOTSTRAP_API_KEY` (the key a service started with it accepts). */
  readonly apiKey: string | undefined;
  readonly apiKeySource: 'ALERTS_API_KEY' | 'ALERTS_BOOTSTRAP_API_KEY' | undefined;
  /** Where `alerts serve` (`npm start`) listens with this environment: `HOST` and `PORT`, with its defaults. */
  readonly serviceHost: string;
  readonly servicePort: number;
  /** `ALERTS_WEBHOOK_SECRET`, comma-separated: the signing secrets `alerts listen` accepts. */
  readonly webhookSecrets: readonly string[];
}

/** Reads the CLI client settings; a malformed `PORT` is a ConfigError, as it is for the service. */
export function loadCliSettings(env: NodeJS.ProcessEnv = process.env): CliSettings {
  const nonEmpty = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value.trim());
  const apiKey = nonEmpty(env.ALERTS_API_KEY);
  const bootstrap = nonEmpty(env.ALERTS_BOOTSTRAP_API_KEY);
  const portText = nonEmpty(env.PORT);
  const port = portText === undefined ? ENV_SCHEMA.properties.PORT.default : Number(portText);
  if (!/^\d+$/.test(portText ?? '0') || port > 65535) throw new ConfigError(`invalid environment: PORT must be an integer from 0 to 65535, not "${portText}"`);
  return Object.freeze({
    apiKey: apiKey ?? bootstrap,
    apiKeySource: apiKey !== undefined ? 'ALERTS_API_KEY' : bootstrap !== undefined ? 'ALERTS_BOOTSTRAP_API_KEY' : undefined,
    serviceHost: nonEmpty(env.HOST) ?? ENV_SCHEMA.properties.HOST.default,
    servicePort: port,
    webhookSecrets: Object.freeze((env.ALERTS_WEBHOOK_SECRET ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')),
  });
}
