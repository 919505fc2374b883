import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exceedsJsonValueBudget } from '../src/http/json-budget.js';
import { endpointBody, ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

/**
 * The cost of a bad request does not grow with its size: a huge body is turned away in
 * bounded time with a small answer, and the server keeps answering others meanwhile.
 */

let server: TestServer;
const clock = testClock();

beforeEach(async () => {
  server = await startTestServer({ clock });
});
afterEach(async () => {
  await server.close();
});

const SMALL_ANSWER_BYTES = 64 * 1024;

/** Polls /healthz every 20 ms until stopped; reports how many answered and the slowest. */
function pollHealth(baseUrl: string): { stop(): Promise<{ answered: number; slowestMs: number }> } {
  let running = true;
  let answered = 0;
  let slowestMs = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const res = await fetch(`${baseUrl}/healthz`);
      await res.text();
      if (res.status === 200) answered += 1;
      slowestMs = Math.max(slowestMs, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { answered, slowestMs };
    },
  };
}

/** Sends a raw JSON body and times the whole exchange. */
async function post(path: string, body: string): Promise<{ status: number; text: string; json: any; ms: number }> {
  const started = performance.now();
  const res = await fetch(server.baseUrl + path, {
    method: 'POST',
    headers: { 'x-api-key': server.key, 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text), ms: performance.now() - started };
}

describe('a huge bad body', () => {
  it('of 2.7 million empty telemetry events (8 MB) is answered 400 within a second with a small body, and /healthz answers meanwhile', async () => {
    const body = `{"events":[${'{},'.repeat(2_700_000 - 1)}{}]}`;
    expect(body.length).toBeGreaterThan(8_000_000);
    const health = pollHealth(server.baseUrl);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const res = await post('/v1/telemetry/events', body);
    const { answered, slowestMs } = await health.stop();

    expect(res.status, res.text.slice(0, 500)).toBe(400);
    expect(res.ms).toBeLessThan(1000);
    expect(res.text.length).toBeLessThan(SMALL_ANSWER_BYTES);
    expect(res.json.message).toMatch(/JSON values/);
    expect(answered).toBeGreaterThan(0);
    expect(slowestMs).toBeLessThan(500);
  });

  it('of 1 MiB of bad event_types (520,000 of them) for a webhook endpoint is answered 400 within a second with a small body', async () => {
    const eventTypes = `[${'0,'.repeat(520_000 - 1)}0]`;
    const body = JSON.stringify(endpointBody({ event_types: [] })).replace('"event_types":[]', `"event_types":${eventTypes}`);
    expect(body.length).toBeGreaterThan(1_000_000);
    expect(body.length).toBeLessThan(1024 * 1024);
    const health = pollHealth(server.baseUrl);
    const res = await post('/v1/webhook-endpoints', body);
    const { slowestMs } = await health.stop();

    expect(res.status, res.text.slice(0, 500)).toBe(400);
    expect(res.ms).toBeLessThan(1000);
    expect(res.text.length).toBeLessThan(SMALL_ANSWER_BYTES);
    expect(slowestMs).toBeLessThan(500);
  });

  it('with an array over its maxItems is rejected for that alone, with one error, before its items are looked at', async () => {
    // 20,000 items are within the JSON value budget, so it is the array check that answers.
    const res = await post('/v1/telemetry/events', `{"events":[${'0,'.repeat(19_999)}0]}`);
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([{ field: 'events', message: 'must NOT have more than 10000 items' }]);
    expect(res.ms).toBeLessThan(1000);

    const endpoint = await post('/v1/webhook-endpoints', JSON.stringify(endpointBody({ event_types: Array(5000).fill('nope') })));
    expect(endpoint.status).toBe(400);
    expect(endpoint.json.errors).toEqual([{ field: 'event_types', message: 'must NOT have more than 16 items' }]);
  });
});

describe('the answer to a request with many problems', () => {
  it('lists at most 100 of them, names the first five in the message and counts the rest', async () => {
    const body: Record<string, unknown> = ruleBody();
    for (let i = 0; i < 3000; i++) body[`unknown_${i}`] = i;
    const res = await post('/v1/alert-rules', JSON.stringify(body));
    expect(res.status).toBe(400);
    expect(res.json.errors).toHaveLength(100);
    expect(res.json.errors[0]).toEqual({ field: 'unknown_0', message: 'is not a known field' });
    expect(res.json.message).toBe(
      'invalid request body: unknown_0 is not a known field; unknown_1 is not a known field; unknown_2 is not a known field; ' +
        'unknown_3 is not a known field; unknown_4 is not a known field; and 2995 more (the first 100 are listed in errors)',
    );
  });

  it('cuts a field name a client made huge, in errors and in the message', async () => {
    const res = await post('/v1/alert-rules', JSON.stringify({ ...ruleBody(), ['k'.repeat(500_000)]: 1 }));
    expect(res.status).toBe(400);
    expect(res.text.length).toBeLessThan(2000);
    expect(res.json.errors[0].field.length).toBeLessThanOrEqual(200);
    expect(res.json.errors[0].field).toMatch(/^k+…$/);
  });

  it('keeps the telemetry list of bad items at 100 and the message short when every one of 10,000 items is bad twice', async () => {
    const events = Array.from({ length: 10_000 }, () => ({ type: 'turn', latency_ms: 'slow', colour: 'blue' }));
    const res = await post('/v1/telemetry/events', JSON.stringify({ events }));
    expect(res.status).toBe(400);
    expect(res.json.errors).toHaveLength(100);
    expect(res.json.message.length).toBeLessThan(1000);
    expect(res.json.message).toMatch(/and 19995 more \(the first 100 are listed in errors\)$/);
    expect(res.ms).toBeLessThan(1000);
  });
});

describe('the limits themselves', () => {
  it('accept a full batch of 10,000 events whose strings are full of commas and brackets', async () => {
    const projectId = 'p,[{'.repeat(60);
    const events = Array.from({ length: 10_000 }, (_, i) => ({ type: 'turn', project_id: projectId, latency_ms: i, timestamp: new Date(clock.now()).toISOString() }));
    const res = await post('/v1/telemetry/events', JSON.stringify({ events }));
    expect(res.status, res.text.slice(0, 500)).toBe(202);
    expect(res.json).toEqual({ accepted: 10_000 });
  });

  it('accept 16 event types with repeats, and refuse 17', async () => {
    const sixteen = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 'alerts.triggered' : 'alerts.resolved'));
    const created = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ event_types: sixteen }) });
    expect(created.status).toBe(201);
    expect(created.body.event_types).toEqual(['alerts.triggered', 'alerts.resolved']);
    const refused = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ event_types: [...sixteen, 'alerts.resolved'] }) });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([{ field: 'event_types', message: 'must NOT have more than 16 items' }]);
    const patched = await server.request('PATCH', `/v1/webhook-endpoints/${created.body.id}`, { body: { event_types: [...sixteen, 'alerts.resolved'] } });
    expect(patched.status).toBe(400);
  });

  it('refuse a body of another operation with more JSON values than it could hold, before parsing it', async () => {
    const res = await post('/v1/alert-rules', JSON.stringify(ruleBody({ name: Array(20_000).fill(0) })));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ message: 'request body holds more than 10,000 JSON values, more than this operation accepts' });
  });
});

describe('exceedsJsonValueBudget', () => {
  it.each<[string, string, number, boolean]>([
    ['values within the budget', '[1,2,3]', 3, false],
    ['one value over', '[1,2,3,4]', 3, true],
    ['objects and arrays counted by their openers', '{"a":[{},{}]}', 3, true],
    ['commas inside strings not counted', '["a,b,c,d,e", "{[{[{["]', 3, false],
    ['an escaped quote does not end a string', '["a\\",\\",\\",\\","]', 2, false],
    ['an escaped backslash before a quote does end it', '["a\\\\",1,2,3]', 3, true],
    ['an unterminated string', '["a,b,c,d,e', 1, false],
  ])('%s', (_what, text, max, expected) => {
    expect(exceedsJsonValueBudget(text, max)).toBe(expected);
  });
});
