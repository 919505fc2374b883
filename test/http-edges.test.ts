import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRaw, rawExchange, type RawOutcome } from './helpers/raw-http.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * What the HTTP layer itself rejects (header fields too large, a bad Content-Length,
 * malformed HTTP, an unmet Expect, a request during shutdown) is answered like everything
 * else: JSON `{"message"}`, our security headers and an x-request-id.
 */

let server: TestServer | undefined;
let port: number;

beforeEach(async () => {
  server = await startTestServer();
  port = Number(new URL(server.baseUrl).port);
});
afterEach(async () => {
  await server?.close();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Checks our answer shape on a raw answer and returns its message. */
function expectOurShape(outcome: RawOutcome, status: number): string {
  expect(outcome.status, outcome.text.slice(0, 300)).toBe(status);
  expect(outcome.headers['content-type']).toMatch(/^application\/json/);
  expect(outcome.headers['x-content-type-options']).toBe('nosniff');
  expect(outcome.headers['x-frame-options']).toBe('DENY');
  expect(outcome.headers['content-security-policy']).toMatch(/default-src 'none'/);
  expect(outcome.headers['cache-control']).toBe('no-store');
  expect(outcome.headers['x-request-id']).toMatch(UUID);
  const body = JSON.parse(outcome.body) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(['message']);
  expect(typeof body.message).toBe('string');
  return body.message as string;
}

describe('requests the HTTP parser rejects', () => {
  it('answers header fields that are too large with 431 in our shape', async () => {
    const outcome = await rawExchange(port, `GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(expectOurShape(outcome, 431)).toMatch(/header/);
    expect(outcome.closed).toBe(true);
  });

  it.each([
    ['a Content-Length that is not a number', 'content-length: abc\r\n'],
    ['two different Content-Lengths', 'content-length: 2\r\ncontent-length: 3\r\n'],
    ['a Content-Length beside chunked Transfer-Encoding', 'content-length: 2\r\ntransfer-encoding: chunked\r\n'],
  ])('answers %s with 400 in our shape', async (_what, fields) => {
    const outcome = await rawExchange(port, `POST /v1/alert-rules HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n${fields}\r\n{}`);
    expect(expectOurShape(outcome, 400)).toMatch(/Content-Length|Transfer-Encoding/);
  });

  it('answers a malformed request line with 400 in our shape', async () => {
    const outcome = await rawExchange(port, 'THIS IS NOT HTTP\r\n\r\n');
    expect(expectOurShape(outcome, 400)).toBe('malformed HTTP request');
  });

  it('answers the bytes after a too-short Content-Length, which are not a request, with 400 in our shape', async () => {
    const body = '{"name": "x"}';
    const outcome = await rawExchange(
      port,
      `POST /v1/alert-rules HTTP/1.1\r\nhost: localhost\r\nx-api-key: ${server!.key}\r\ncontent-type: application/json\r\n` +
        `content-length: 5\r\n\r\n${body}`,
    );
    // The rest of the body is read as the next request, which is not HTTP. Whether the
    // answer to the first one (the 5 bytes are malformed JSON) gets out first depends on how
    // the bytes arrive; every answer that does is in our shape, and the last names the problem.
    const answers = outcome.text.split(/(?=HTTP\/1\.1 )/);
    expect(answers.length).toBeGreaterThanOrEqual(1);
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/);
      expect(answer).toMatch(/\r\nx-content-type-options: nosniff\r\n/);
      expect(answer).toMatch(/\r\n\r\n\{"message":"[^"]+"\}$/);
    }
    expect(answers[answers.length - 1]).toMatch(/\{"message":"malformed HTTP request"\}$/);
    expect(outcome.closed).toBe(true);
  });

  it('answers an Expect header other than 100-continue with 417 in our shape', async () => {
    const outcome = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nhost: localhost\r\nexpect: the-unexpected\r\nconnection: close\r\n\r\n');
    expect(expectOurShape(outcome, 417)).toMatch(/Expect/);
  });
});

describe('a request that arrives during shutdown', () => {
  it('is answered 503 in our shape, and the connection is closed', async () => {
    const c = await openRaw(port);
    c.write('GET /v1/alert-rules HTTP/1.1\r\nhost: localhost\r\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = server!.close();
    server = undefined;
    await new Promise((resolve) => setTimeout(resolve, 100));
    c.write('x-api-key: whatever-key-of-sixteen-characters\r\n\r\n');
    const outcome = await c.outcome(3000);
    await closing;
    expect(expectOurShape(outcome, 503)).toMatch(/shutting down/);
    expect(outcome.headers.connection).toBe('close');
  });

  it('does not wait for a connection that has not sent a byte: the server closes at once, and closes it', async () => {
    const c = await openRaw(port);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await server!.close();
    server = undefined;
    expect(performance.now() - started).toBeLessThan(1000);
    const outcome = await c.outcome(1000);
    expect(outcome.closed).toBe(true);
    expect(outcome.text).toBe('');
  });
});
