import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDatabaseUrl } from '../src/config.js';
import { onPostgres } from './helpers/database.js';

const CWD = '/srv/alerts';
const SECRET = 's'.repeat(32);

describe('loadConfig', () => {
  it('applies the documented defaults to an empty environment, resolving ./data/alerts.db from cwd', () => {
    const config = loadConfig({}, CWD);
    expect(config).toEqual({
      host: '0.0.0.0',
      port: 8080,
      logLevel: 'info',
      databaseUrl: './data/alerts.db',
      database: { kind: 'sqlite', path: join(CWD, 'data', 'alerts.db'), display: join(CWD, 'data', 'alerts.db') },
      autoMigrate: true,
      leaseTtlMs: 10_000,
      bootstrapApiKey: undefined,
      secretKey: undefined,
      shutdownTimeoutMs: 10_000,
      authCacheTtlMs: 5_000,
      evaluationIntervalMs: 1_000,
      eventRetentionMs: 30 * 86_400_000,
      telemetryRetentionMs: 7 * 86_400_000,
      historyRetentionMs: 30 * 86_400_000,
      http: { requestTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000, maxConnections: 1000 },
      delivery: {
        workerEnabled: true,
        retrySchedule: [0, 60_000, 300_000, 900_000, 3_600_000, 14_400_000],
        allowedCidrs: [],
        concurrency: 64,
        perEndpointConcurrency: 8,
        perAccountConcurrency: 16,
        disableEndpointAfterMs: 5 * 86_400_000,
      },
    });
  });

  it('reads every setting from the given environment, converting numbers', () => {
    const bootstrap = 'b'.repeat(40);
    const config = loadConfig(
      {
        HOST: '127.0.0.1',
        PORT: '3000',
        LOG_LEVEL: 'warn',
        DATABASE_URL: 'sqlite:/var/lib/alerts/alerts.db',
        ALERTS_BOOTSTRAP_API_KEY: bootstrap,
        ALERTS_SECRET_KEY: SECRET,
        ALERTS_SHUTDOWN_TIMEOUT_MS: '2500',
        ALERTS_AUTH_CACHE_TTL_MS: '0',
        ALERTS_EVALUATION_INTERVAL_MS: '250',
        ALERTS_EVENT_RETENTION: '7d',
        ALERTS_TELEMETRY_RETENTION: '2d',
        ALERTS_HISTORY_RETENTION: 'off',
        ALERTS_REQUEST_TIMEOUT_MS: '5000',
        ALERTS_KEEP_ALIVE_TIMEOUT_MS: '4000',
        ALERTS_MAX_CONNECTIONS: '200',
        ALERTS_DELIVERY_ACCOUNT_CONCURRENCY: '4',
        ALERTS_LEASE_TTL: '2500ms',
        ALERTS_ENDPOINT_DISABLE_AFTER: '0',
      },
      CWD,
    );
    expect(config).toEqual({
      host: '127.0.0.1',
      port: 3000,
      logLevel: 'warn',
      databaseUrl: 'sqlite:/var/lib/alerts/alerts.db',
      database: { kind: 'sqlite', path: '/var/lib/alerts/alerts.db', display: '/var/lib/alerts/alerts.db' },
      autoMigrate: true,
      leaseTtlMs: 2500,
      bootstrapApiKey: bootstrap,
      secretKey: SECRET,
      shutdownTimeoutMs: 2500,
      authCacheTtlMs: 0,
      evaluationIntervalMs: 250,
      eventRetentionMs: 7 * 86_400_000,
      telemetryRetentionMs: 2 * 86_400_000,
      historyRetentionMs: null,
      http: { requestTimeoutMs: 5000, keepAliveTimeoutMs: 4000, maxConnections: 200 },
      delivery: {
        workerEnabled: true,
        retrySchedule: [0, 60_000, 300_000, 900_000, 3_600_000, 14_400_000],
        allowedCidrs: [],
        concurrency: 64,
        perEndpointConcurrency: 8,
        perAccountConcurrency: 4,
        disableEndpointAfterMs: null,
      },
    });
  });

  it('accepts PORT 0 (any free port) and 65535', () => {
    expect(loadConfig({ PORT: '0' }, CWD).port).toBe(0);
    expect(loadConfig({ PORT: '65535' }, CWD).port).toBe(65535);
  });

  it('accepts ALERTS_EVALUATION_INTERVAL_MS from 0 (no timer) to 60000', () => {
    expect(loadConfig({ ALERTS_EVALUATION_INTERVAL_MS: '0' }, CWD).evaluationIntervalMs).toBe(0);
    expect(loadConfig({ ALERTS_EVALUATION_INTERVAL_MS: '60000' }, CWD).evaluationIntervalMs).toBe(60_000);
  });

  it('ignores variables it does not know', () => {
    const config = loadConfig({ UNRELATED: 'x', NODE_ENV: 'production' }, CWD);
    expect(config).not.toHaveProperty('UNRELATED');
    expect(config.port).toBe(8080);
  });

  it('returns a frozen config', () => {
    const config = loadConfig({}, CWD);
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(8080);
  });

  it('does not modify the environment object it was given', () => {
    const env = { PORT: '3000' };
    loadConfig(env, CWD);
    expect(env).toEqual({ PORT: '3000' });
  });

  it.each([
    ['PORT', 'http'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['LOG_LEVEL', 'verbose'],
    ['ALERTS_SHUTDOWN_TIMEOUT_MS', '-5'],
    ['ALERTS_SHUTDOWN_TIMEOUT_MS', 'soon'],
    ['ALERTS_AUTH_CACHE_TTL_MS', '-1'],
    ['ALERTS_AUTH_CACHE_TTL_MS', '300001'],
    ['ALERTS_EVALUATION_INTERVAL_MS', '-1'],
    ['ALERTS_EVALUATION_INTERVAL_MS', '60001'],
    ['ALERTS_EVALUATION_INTERVAL_MS', '1.5'],
    ['ALERTS_EVALUATION_INTERVAL_MS', 'often'],
    ['ALERTS_REQUEST_TIMEOUT_MS', '99'],
    ['ALERTS_REQUEST_TIMEOUT_MS', 'soon'],
    ['ALERTS_KEEP_ALIVE_TIMEOUT_MS', '0'],
    ['ALERTS_MAX_CONNECTIONS', '0'],
    ['ALERTS_MAX_CONNECTIONS', '1.5'],
    ['DATABASE_URL', ''],
    ['ALERTS_RETRY_SCHEDULE', ''],
    ['ALERTS_RETRY_SCHEDULE', '0,5x'],
    ['ALERTS_RETRY_SCHEDULE', '0,-1m'],
    ['ALERTS_RETRY_SCHEDULE', '0,8d'],
    ['ALERTS_RETRY_SCHEDULE', '0,200h'],
    ['ALERTS_WEBHOOK_ALLOWED_CIDRS', '127.0.0.1/33'],
    ['ALERTS_WEBHOOK_ALLOWED_CIDRS', 'localhost'],
    ['ALERTS_WEBHOOK_ALLOWED_CIDRS', '::1/129'],
    ['ALERTS_WEBHOOK_ALLOWED_CIDRS', '127.0.0.1/32,10.0.0.0/x'],
    ['ALERTS_DELIVERY_WORKER', 'yes'],
    ['ALERTS_DELIVERY_CONCURRENCY', '0'],
    ['ALERTS_DELIVERY_ENDPOINT_CONCURRENCY', '257'],
    ['ALERTS_DELIVERY_ACCOUNT_CONCURRENCY', '0'],
    ['ALERTS_DATABASE_POOL_SIZE', '0'],
    ['ALERTS_DATABASE_POOL_SIZE', '1001'],
    ['ALERTS_DATABASE_POOL_SIZE', 'many'],
    ['ALERTS_AUTO_MIGRATE', 'yes'],
    ['ALERTS_ENDPOINT_DISABLE_AFTER', 'soon'],
    ['ALERTS_ENDPOINT_DISABLE_AFTER', '-1d'],
    ['ALERTS_ENDPOINT_DISABLE_AFTER', '30s'],
    ['ALERTS_ENDPOINT_DISABLE_AFTER', '3651d'],
  ])('rejects %s=%j with a ConfigError naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value }, CWD)).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value }, CWD)).toThrow(name);
  });

  it('reads a retry schedule in ms, s, m and h (a bare number is ms) and allowed CIDRs of both families', () => {
    const config = loadConfig(
      { ALERTS_RETRY_SCHEDULE: ' 0, 250ms ,1.5s,2m,1h,300', ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32, ::1/128 ,10.1.2.3' },
      CWD,
    );
    expect(config.delivery.retrySchedule).toEqual([0, 250, 1500, 120_000, 3_600_000, 300]);
    expect(config.delivery.allowedCidrs).toEqual(['127.0.0.1/32', '::1/128', '10.1.2.3']);
  });

  it('rejects an ALERTS_SECRET_KEY shorter than 32 characters, without echoing it', () => {
    const short = 'short-secret-key-31-characters!';
    expect(short).toHaveLength(31);
    let error: unknown;
    try {
      loadConfig({ ALERTS_SECRET_KEY: short }, CWD);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('ALERTS_SECRET_KEY');
    expect((error as Error).message).not.toContain(short);
    expect(loadConfig({ ALERTS_SECRET_KEY: short + 'x' }, CWD).secretKey).toBe(short + 'x');
  });

  it('rejects a bootstrap API key shorter than 32 characters or with spaces', () => {
    expect(() => loadConfig({ ALERTS_BOOTSTRAP_API_KEY: 'k'.repeat(31) }, CWD)).toThrow(ConfigError);
    expect(() => loadConfig({ ALERTS_BOOTSTRAP_API_KEY: 'k'.repeat(20) + ' ' + 'k'.repeat(20) }, CWD)).toThrow(ConfigError);
    expect(loadConfig({ ALERTS_BOOTSTRAP_API_KEY: 'k'.repeat(32) }, CWD).bootstrapApiKey).toBe('k'.repeat(32));
  });

  it('reads a postgres:// DATABASE_URL with ALERTS_DATABASE_POOL_SIZE, redacting the password in database.display', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://alerts:s3cret@db.internal:5432/alerts', ALERTS_DATABASE_POOL_SIZE: '25' }, CWD);
    expect(config.databaseUrl).toBe('postgres://alerts:s3cret@db.internal:5432/alerts');
    expect(config.database).toEqual({
      kind: 'postgres',
      url: 'postgres://alerts:s3cret@db.internal:5432/alerts',
      display: 'postgres://alerts:***@db.internal:5432/alerts',
      poolSize: 25,
    });
  });

  it('keeps 10 PostgreSQL connections at most unless ALERTS_DATABASE_POOL_SIZE says otherwise, from 1 to 1000', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://db.internal/alerts' }, CWD).database).toMatchObject({ kind: 'postgres', poolSize: 10 });
    expect(loadConfig({ DATABASE_URL: 'postgres://db.internal/alerts', ALERTS_DATABASE_POOL_SIZE: '1' }, CWD).database).toMatchObject({ poolSize: 1 });
    expect(loadConfig({ DATABASE_URL: 'postgres://db.internal/alerts', ALERTS_DATABASE_POOL_SIZE: '1000' }, CWD).database).toMatchObject({ poolSize: 1000 });
  });

  it('holds shard leases for ALERTS_LEASE_TTL (default 10 s), 1 s to 5 min, and names the variable otherwise', () => {
    expect(loadConfig({ ALERTS_LEASE_TTL: '2s' }, CWD).leaseTtlMs).toBe(2000);
    expect(loadConfig({ ALERTS_LEASE_TTL: '1500ms' }, CWD).leaseTtlMs).toBe(1500);
    expect(loadConfig({ ALERTS_LEASE_TTL: '5m' }, CWD).leaseTtlMs).toBe(300_000);
    for (const bad of ['999ms', '6m', '10', 'soon', '']) {
      expect(() => loadConfig({ ALERTS_LEASE_TTL: bad }, CWD)).toThrow(/ALERTS_LEASE_TTL/);
    }
  });

  it('migrates at start-up unless ALERTS_AUTO_MIGRATE is off', () => {
    expect(loadConfig({}, CWD).autoMigrate).toBe(true);
    expect(loadConfig({ ALERTS_AUTO_MIGRATE: 'on' }, CWD).autoMigrate).toBe(true);
    expect(loadConfig({ ALERTS_AUTO_MIGRATE: 'off' }, CWD).autoMigrate).toBe(false);
  });
});

describe('parseDatabaseUrl', () => {
  const sqliteFile = (path: string) => ({ kind: 'sqlite', path, display: path });
  // SQLite path parsing is pure and the same whichever database the suite runs on: it runs
  // once, on the SQLite run, and is skipped on the PostgreSQL run (TEST_DATABASE_URL).
  const sqliteOnly = it.skipIf(onPostgres);

  sqliteOnly('takes a plain path, relative to cwd or absolute', () => {
    expect(parseDatabaseUrl('alerts.db', CWD)).toEqual(sqliteFile(join(CWD, 'alerts.db')));
    expect(parseDatabaseUrl('./data/alerts.db', CWD)).toEqual(sqliteFile(join(CWD, 'data/alerts.db')));
    expect(parseDatabaseUrl('../other/alerts.db', CWD)).toEqual(sqliteFile(resolve(CWD, '../other/alerts.db')));
    expect(parseDatabaseUrl('/var/lib/alerts.db', CWD)).toEqual(sqliteFile('/var/lib/alerts.db'));
  });

  sqliteOnly.each([
    ['sqlite:/var/lib/alerts.db', '/var/lib/alerts.db'],
    ['sqlite:///var/lib/alerts.db', '/var/lib/alerts.db'],
    ['sqlite:./alerts.db', join(CWD, 'alerts.db')],
    ['sqlite:alerts.db', join(CWD, 'alerts.db')],
    ['sqlite://alerts.db', join(CWD, 'alerts.db')],
    ['SQLITE:/var/lib/alerts.db', '/var/lib/alerts.db'],
    ['file:/var/lib/alerts.db', '/var/lib/alerts.db'],
    ['file:///var/lib/alerts.db', '/var/lib/alerts.db'],
    ['file:data/alerts.db', join(CWD, 'data/alerts.db')],
  ])('reads %s as the SQLite file %s', (url, path) => {
    expect(parseDatabaseUrl(url, CWD)).toEqual(sqliteFile(path));
  });

  sqliteOnly.each([':memory:', 'sqlite::memory:', 'sqlite://:memory:', 'file::memory:'])('keeps %s as an in-memory database', (url) => {
    expect(parseDatabaseUrl(url, CWD)).toEqual(sqliteFile(':memory:'));
  });

  it.each([
    ['postgres://u:p@127.0.0.1:5432/alerts', 'postgres://u:***@127.0.0.1:5432/alerts'],
    ['postgresql://127.0.0.1/alerts', 'postgresql://127.0.0.1/alerts'],
    ['POSTGRES://alerts@127.0.0.1/alerts?sslmode=require', 'POSTGRES://alerts@127.0.0.1/alerts?sslmode=require'],
    ['postgresql://alerts:p%40ss@db.internal/alerts', 'postgresql://alerts:***@db.internal/alerts'],
  ])('reads %s as a PostgreSQL database, displayed as %s', (url, display) => {
    expect(parseDatabaseUrl(url, CWD)).toEqual({ kind: 'postgres', url, display, poolSize: 10 });
  });

  it('takes the PostgreSQL pool size it is given', () => {
    expect(parseDatabaseUrl('postgres://127.0.0.1/alerts', CWD, 3)).toMatchObject({ kind: 'postgres', poolSize: 3 });
  });

  it.each([
    ['postgres:///alerts', /names no host/],
    ['postgres://u:secret@/alerts', /is not a valid PostgreSQL URL/],
    ['postgres://u:secret@127.0.0.1', /names no database/],
    ['postgresql://127.0.0.1:5432/', /names no database/],
    ['postgres://u:secret@127.0.0.1:notaport/alerts', /is not a valid PostgreSQL URL/],
  ])('rejects %s with a ConfigError that does not echo the password', (url, message) => {
    let error: unknown;
    try {
      parseDatabaseUrl(url, CWD);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^DATABASE_URL: /);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('secret');
  });

  it.each(['mysql://127.0.0.1/alerts', 'http://127.0.0.1/alerts.db', 'redis://u:secret@127.0.0.1'])(
    'rejects the unknown scheme of %s, naming the scheme but not the rest of the URL',
    (url) => {
      const scheme = url.split(':')[0]!;
      expect(() => parseDatabaseUrl(url, CWD)).toThrow(ConfigError);
      expect(() => parseDatabaseUrl(url, CWD)).toThrow(`"${scheme}:"`);
      expect(() => parseDatabaseUrl(url, CWD)).not.toThrow('127.0.0.1');
    },
  );

  sqliteOnly.each(['sqlite:', 'sqlite://', 'file:'])('rejects %j: the path is empty', (url) => {
    expect(() => parseDatabaseUrl(url, CWD)).toThrow(ConfigError);
    expect(() => parseDatabaseUrl(url, CWD)).toThrow(/path is empty/);
  });
});
