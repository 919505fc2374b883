import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Clock } from '../../src/domain/clock.js';
import type { LookupFunction } from '../../src/delivery/webhook-client.js';
import { createLogger } from '../../src/logger.js';
import { createService, type Service } from '../../src/service.js';
import { databaseUrlFor, dropDatabaseFor, tableRows } from './database.js';
import { validatePublishedResponse } from './published-spec.js';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface RequestOptions {
  key?: string | null;
  body?: unknown;
  /** Sent as is, instead of JSON-encoding `body`. */
  rawBody?: string | Buffer;
  contentType?: string | null;
  headers?: Record<string, string>;
}

export interface TestServer {
  baseUrl: string;
  dbPath: string;
  dir: string;
  service: Service;
  /** An API key of account "acme", created for the test. */
  key: string;
  newKey(account: string): Promise<string>;
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

/** A mutable clock for tests. */
export function testClock(start = Date.parse('2026-03-15T10:30:00.000Z')): Clock & { set(ms: number): void; advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    set: (ms) => {
      now = ms;
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

/**
 * Starts the real service on a loopback port with a fresh SQLite file in a temporary
 * directory. Every response that belongs to a published operation is checked against the
 * published OpenAPI document; a mismatch fails the test.
 */
export async function startTestServer(
  options: {
    env?: Record<string, string>;
    clock?: Clock;
    validate?: boolean;
    lookup?: LookupFunction;
    /** Use this directory (and its alerts.db) instead of a fresh one, and keep it on close: for restarts. */
    dir?: string;
    /** Where the service logs (default: nowhere). */
    logger?: Logger;
  } = {},
): Promise<TestServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'alerts-test-'));
  // The directory's SQLite file, or its own PostgreSQL schema (TEST_DATABASE_URL).
  const dbPath = await databaseUrlFor(dir);
  // No evaluation timer: tests move the clock and call service.engine.tick() themselves.
  const config = loadConfig({
    DATABASE_URL: dbPath,
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    ALERTS_EVALUATION_INTERVAL_MS: '0',
    // No delivery worker unless a test asks: webhook URLs in most tests are not real receivers.
    ALERTS_DELIVERY_WORKER: 'off',
    ...options.env,
  });
  const service = await createService({ config, logger: options.logger ?? createLogger('silent'), clock: options.clock, lookup: options.lookup });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  const address = service.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  const baseUrl = `http://127.0.0.1:${address.port}`;
  const newKey = async (account: string) => (await service.apiKeys.create(account)).key;
  const key = await newKey('acme');
  const validate = options.validate ?? true;

  async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    const apiKey = opts.key === undefined ? key : opts.key;
    if (apiKey !== null) headers['x-api-key'] = apiKey;
    let body: string | Buffer | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    const contentType = opts.contentType === undefined ? (body !== undefined ? 'application/json' : null) : opts.contentType;
    if (contentType !== null) headers['content-type'] = contentType;
    const response = await fetch(baseUrl + path, { method, headers, body });
    const text = await response.text();
    let parsed: unknown;
    if (text !== '') {
      expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
      parsed = JSON.parse(text);
    }
    if (validate) {
      const problems = validatePublishedResponse(method, path, response.status, parsed);
      expect(problems, `${method} ${path} -> ${response.status} ${text}`).toEqual([]);
    }
    expect(response.status, `${method} ${path} must never answer 5xx: ${text}`).toBeLessThan(500);
    return { status: response.status, body: parsed as T, text, headers: response.headers };
  }

  return {
    baseUrl,
    dbPath,
    dir,
    service,
    key,
    newKey,
    request,
    async close() {
      await service.close();
      if (options.dir === undefined) {
        rmSync(dir, { recursive: true, force: true });
        await dropDatabaseFor(dir);
      }
    },
  };
}

/** A valid create-rule body; override any field. */
export function ruleBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'High turn latency (p95)',
    project_id: 'proj_abc123',
    metric: 'turn_latency_p95',
    operator: '>=',
    threshold_value: 1500,
    window_duration: '5m',
    ...overrides,
  };
}

/** A valid create-endpoint body; override any field. */
export function endpointBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'Production alerts',
    url: 'https://hooks.example.com/polyai',
    event_types: ['alerts.triggered', 'alerts.resolved'],
    ...overrides,
  };
}

/** Every row of every table, to prove that a rejected request changed nothing. */
export async function snapshotDatabase(service: Service): Promise<Record<string, unknown[]>> {
  const snapshot = await tableRows(service.store.db);
  // The server's own leases and heartbeat are renewed on a timer, whatever the requests do.
  delete snapshot.server_lease;
  delete snapshot.cluster_instances;
  delete snapshot.shard_leases;
  // Roll-ups are derived from telemetry_batches (which stays in the snapshot) by a job on its
  // own timer: a batch stored before the snapshot may be rolled up between two snapshots.
  delete snapshot.telemetry_seconds;
  delete snapshot.telemetry_minutes;
  delete snapshot.telemetry_rollup_progress;
  return snapshot;
}

/**
 * A fresh server holding one alert rule and one webhook endpoint of account "acme", so that
 * a request that wrongly got through would show as a change. The clock moves on 1 s after
 * creating them, so that an update would also show in `updated_at`.
 */
export async function startSeededServer(clock: ReturnType<typeof testClock>): Promise<{ server: TestServer; ruleId: string; endpointId: string }> {
  const server = await startTestServer({ clock });
  const ruleId = (await server.request('POST', '/v1/alert-rules', { body: ruleBody() })).body.id as string;
  const endpointId = (await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody() })).body.id as string;
  clock.advance(1000);
  return { server, ruleId, endpointId };
}
