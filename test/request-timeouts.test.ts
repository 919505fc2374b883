import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { openRaw, type RawConnection } from './helpers/raw-http.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Slow or numerous clients cannot hold the server: a request must arrive whole within the
 * request timeout, idle connections are closed, and connections beyond the limit are refused.
 */

let server: TestServer | undefined;
const open: RawConnection[] = [];

afterEach(async () => {
  for (const connection of open.splice(0)) connection.destroy();
  await server?.close();
  server = undefined;
});

function portOf(s: TestServer): number {
  return Number(new URL(s.baseUrl).port);
}

async function connection(s: TestServer): Promise<RawConnection> {
  const c = await openRaw(portOf(s));
  open.push(c);
  return c;
}

/** Writes `data` one byte every `everyMs` until the connection closes. */
function trickle(c: RawConnection, data: string, everyMs: number): void {
  let at = 0;
  const timer = setInterval(() => {
    if (c.socket.destroyed || at >= data.length) return clearInterval(timer);
    c.write(data[at]!);
    at += 1;
  }, everyMs);
  c.socket.once('close', () => clearInterval(timer));
}

const declaredBody = (key: string) =>
  `POST /v1/telemetry/events HTTP/1.1\r\nhost: localhost\r\nx-api-key: ${key}\r\ncontent-type: application/json\r\ncontent-length: 8000000\r\n\r\n`;

describe('a request body trickling in', () => {
  it('is cut off with 408 (or a closed connection) once the request timeout has passed, for each of 20 connections at once', async () => {
    server = await startTestServer({ env: { ALERTS_REQUEST_TIMEOUT_MS: '600' } });
    const connections = await Promise.all(Array.from({ length: 20 }, () => connection(server!)));
    for (const c of connections) {
      c.write(declaredBody(server.key));
      trickle(c, '{"events":[' + '{"type":"call"},'.repeat(1000), 50);
    }
    // Others are served meanwhile.
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);

    const outcomes = await Promise.all(connections.map((c) => c.outcome(5000)));
    for (const outcome of outcomes) {
      expect(outcome.closed).toBe(true);
      expect(outcome.ms).toBeGreaterThanOrEqual(500);
      expect(outcome.ms).toBeLessThan(2500);
      if (outcome.status !== undefined) {
        expect(outcome.status).toBe(408);
        expect(JSON.parse(outcome.body)).toEqual({ message: 'the request was not received in time' });
        expect(outcome.headers['x-content-type-options']).toBe('nosniff');
      }
    }
    expect(outcomes.filter((o) => o.status === 408).length).toBeGreaterThan(0);
  });

  it('headers trickling in are cut off within the request timeout too', async () => {
    server = await startTestServer({ env: { ALERTS_REQUEST_TIMEOUT_MS: '500' } });
    const c = await connection(server);
    trickle(c, 'GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ' + 'a'.repeat(1000), 50);
    const outcome = await c.outcome(5000);
    expect(outcome.closed).toBe(true);
    expect(outcome.ms).toBeLessThan(2500);
    if (outcome.status !== undefined) expect(outcome.status).toBe(408);
  });

  it('is not cut off when it arrives within the timeout, however slowly', async () => {
    server = await startTestServer({ env: { ALERTS_REQUEST_TIMEOUT_MS: '1500' } });
    const c = await connection(server);
    const body = JSON.stringify({ events: [{ type: 'call' }] });
    c.write(
      `POST /v1/telemetry/events HTTP/1.1\r\nhost: localhost\r\nx-api-key: ${server.key}\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\nconnection: close\r\n\r\n`,
    );
    trickle(c, body, 20);
    const outcome = await c.outcome(5000);
    expect(outcome.status, outcome.text).toBe(202);
  });
});

describe('idle and surplus connections', () => {
  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    server = await startTestServer({ env: { ALERTS_KEEP_ALIVE_TIMEOUT_MS: '300' } });
    const c = await connection(server);
    c.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n');
    const outcome = await c.outcome(3000);
    expect(outcome.status).toBe(200);
    expect(outcome.closed).toBe(true);
    expect(outcome.ms).toBeLessThan(2000);
  });

  it('beyond the connection limit a new connection is closed at once (and logged), and is accepted again once one is free', async () => {
    const lines: string[] = [];
    server = await startTestServer({ env: { ALERTS_MAX_CONNECTIONS: '4' }, logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
    const held = await Promise.all(Array.from({ length: 4 }, () => connection(server!)));
    // Each held connection is really established: it answers a request and stays open.
    for (const c of held) c.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n');
    await Promise.all(held.map((c) => c.outcome(200)));

    const surplus = await connection(server);
    surplus.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n');
    const refused = await surplus.outcome(3000);
    expect(refused.closed).toBe(true);
    expect(refused.status).toBeUndefined();
    expect(lines.some((line) => line.includes('connections refused: ALERTS_MAX_CONNECTIONS reached'))).toBe(true);

    held[0]!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const again = await connection(server);
    again.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    expect((await again.outcome(3000)).status).toBe(200);
  });
});
