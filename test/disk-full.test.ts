import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { onPostgres } from './helpers/database.js';
import { ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

/**
 * With the disk full, writes fail cleanly with a 503 in our shape, the log names the real
 * cause, /healthz says so, and everything recovers once there is space again. The full disk
 * is SQLite's own: `max_page_count` pinned to the database's current size.
 */

let server: TestServer;
let lines: string[];
const clock = testClock();

async function pinDatabaseSize(): Promise<void> {
  const { rows } = await sql<{ page_count: number }>`pragma page_count`.execute(server.service.store.db);
  await sql.raw(`pragma max_page_count = ${rows[0]!.page_count}`).execute(server.service.store.db);
}

async function freeSpace(): Promise<void> {
  await sql.raw('pragma max_page_count = 1073741823').execute(server.service.store.db);
}

/** A batch that needs many new pages: 2,000 new project scopes. */
function bigBatch(round: number): string {
  const events = Array.from({ length: 2000 }, (_, i) => ({ type: 'call', project_id: `proj_${round}_${i}_${'x'.repeat(100)}` }));
  return JSON.stringify({ events });
}

async function call(method: string, path: string, body?: string) {
  const res = await fetch(server.baseUrl + path, {
    method,
    headers: { 'x-api-key': server.key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as any) };
}

const logs = () => lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message?: string } });

// The full disk is made with SQLite's `max_page_count`; PostgreSQL has nothing alike that one
// test could set for its own schema without touching the other tests' (its disk-full and
// I/O errors are classified in src/store/dialect/postgres/errors.ts).
describe.skipIf(onPostgres)('a full disk', () => {
  beforeEach(async () => {
    lines = [];
    server = await startTestServer({ clock, logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
  });
  afterEach(async () => {
    await server.close();
  });

  it('fails writes with 503 in our shape and logs the real cause, not the failed rollback', async () => {
    await pinDatabaseSize();
    const res = await call('POST', '/v1/telemetry/events', bigBatch(1));
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ message: 'the service cannot store data right now; try again later' });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');

    const errors = logs().filter((line) => line.level >= 50);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((line) => line.err?.message?.includes('database or disk is full'))).toBe(true);
    expect(lines.join('')).not.toMatch(/cannot rollback/);
  });

  it('turns /healthz to 503 naming the cause while writes fail, keeps reads working, and recovers once there is space', async () => {
    expect((await call('POST', '/v1/alert-rules', JSON.stringify(ruleBody()))).status).toBe(201);
    await pinDatabaseSize();
    expect((await call('POST', '/v1/telemetry/events', bigBatch(2))).status).toBe(503);

    const health = await call('GET', '/healthz');
    expect(health.status).toBe(503);
    expect(health.body.status).toBe('unavailable');
    expect(health.body.message).toMatch(/^writes are failing since .*: database or disk is full$/);
    expect((await call('GET', '/v1/alert-rules')).status).toBe(200);

    await freeSpace();
    // The health check tries a write of its own (at most once a second): no client write is needed.
    const deadline = Date.now() + 5000;
    let recovered = await call('GET', '/healthz');
    while (recovered.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      recovered = await call('GET', '/healthz');
    }
    expect(recovered.status).toBe(200);
    expect(recovered.body).toEqual({ status: 'ok' });
    expect((await call('POST', '/v1/telemetry/events', bigBatch(3))).status).toBe(202);
  });

  it('is forgotten as soon as a client write succeeds', async () => {
    await pinDatabaseSize();
    expect((await call('POST', '/v1/telemetry/events', bigBatch(4))).status).toBe(503);
    await freeSpace();
    expect((await call('POST', '/v1/alert-rules', JSON.stringify(ruleBody()))).status).toBe(201);
    expect((await call('GET', '/healthz')).status).toBe(200);
  });
});
