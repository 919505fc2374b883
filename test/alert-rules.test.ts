import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

let server: TestServer;
const START = Date.parse('2026-03-15T10:30:00.000Z');
const clock = testClock(START);

beforeEach(async () => {
  clock.set(START);
  server = await startTestServer({ clock });
});
afterEach(async () => {
  await server.close();
});

describe('alert rules', () => {
  it('creates a rule with the documented defaults and an ar_ id of 22 base62 characters, evaluated at once', async () => {
    const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody() });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^ar_[A-Za-z0-9]{22}$/);
    expect(res.body).toMatchObject({
      name: 'High turn latency (p95)',
      project_id: 'proj_abc123',
      metric: 'turn_latency_p95',
      operator: '>=',
      threshold_value: 1500,
      window_duration: '5m',
      enabled: true,
      // Evaluated on creation: no telemetry at all, so there is nothing to evaluate.
      current_state: 'no_data',
      since: '2026-03-15T10:30:00.000Z',
      last_evaluated_at: '2026-03-15T10:30:00.000Z',
      current_value: null,
      created_at: '2026-03-15T10:30:00.000Z',
      updated_at: '2026-03-15T10:30:00.000Z',
    });
  });

  it('stores a rule without project_id as account-wide (null) and honours enabled: false', async () => {
    const body = ruleBody({ enabled: false });
    delete body.project_id;
    const res = await server.request('POST', '/v1/alert-rules', { body });
    expect(res.status).toBe(201);
    expect(res.body.project_id).toBeNull();
    expect(res.body.enabled).toBe(false);
  });

  it('gets a rule by id and answers 404 for a well-formed id that does not exist', async () => {
    const created = (await server.request('POST', '/v1/alert-rules', { body: ruleBody() })).body;
    const got = await server.request('GET', `/v1/alert-rules/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created);
    const missing = await server.request('GET', '/v1/alert-rules/ar_0000000000000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.message).toContain('ar_0000000000000000000000');
  });

  it('lists rules oldest first and filters by enabled, metric, project_id and state', async () => {
    const create = async (body: Record<string, unknown>) => {
      const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody(body) });
      expect(res.status, res.text).toBe(201);
      return res.body as { id: string; current_state: string };
    };
    // p95 of proj_abc123 >= 1500: the turns below are fast, so ok.
    const a = await create({ name: 'a' });
    // Disabled, so never evaluated: unknown.
    const b = await create({ name: 'b', metric: 'api_errors', project_id: 'other', enabled: false });
    // Calls of proj_abc123 > 0: fires once the call below arrives.
    const c = await create({ name: 'c', metric: 'call_volume', operator: '>', threshold_value: 0 });
    // Latency of a project that never sent a turn: no_data.
    const d = await create({ name: 'd', metric: 'turn_latency_p50', project_id: 'proj_quiet' });
    const sent = await server.request('POST', '/v1/telemetry/events', {
      body: {
        events: [
          { type: 'turn', project_id: 'proj_abc123', latency_ms: 200 },
          { type: 'call', project_id: 'proj_abc123' },
        ],
      },
    });
    expect(sent.status, sent.text).toBe(202);
    const names = async (query: string) =>
      (await server.request('GET', `/v1/alert-rules${query}`)).body.data.map((r: { name: string }) => r.name);

    expect(await names('')).toEqual(['a', 'b', 'c', 'd']);
    expect(await names('?enabled=true')).toEqual(['a', 'c', 'd']);
    expect(await names('?enabled=false')).toEqual(['b']);
    expect(await names('?metric=api_errors')).toEqual(['b']);
    expect(await names('?project_id=proj_abc123')).toEqual(['a', 'c']);
    expect(await names('?state=ok')).toEqual(['a']);
    expect(await names('?state=alert')).toEqual(['c']);
    expect(await names('?state=no_data')).toEqual(['d']);
    expect(await names('?state=unknown')).toEqual(['b']);
    expect(await names('?state=alert&project_id=proj_abc123&metric=call_volume&enabled=true')).toEqual(['c']);
    expect(await names('?state=alert&project_id=other')).toEqual([]);
    expect(await names('?metric=api_errors&enabled=true')).toEqual([]);
    expect(new Set([a.id, b.id, c.id, d.id]).size).toBe(4);
  });

  it('patches only the given fields and moves updated_at', async () => {
    const created = (await server.request('POST', '/v1/alert-rules', { body: ruleBody() })).body;
    clock.advance(60_000);
    const res = await server.request('PATCH', `/v1/alert-rules/${created.id}`, { body: { threshold_value: 2000, enabled: false } });
    expect(res.status).toBe(200);
    // A disabled rule is no longer evaluated: its state becomes unknown from now on.
    expect(res.body).toEqual({
      ...created,
      threshold_value: 2000,
      enabled: false,
      current_state: 'unknown',
      since: '2026-03-15T10:31:00.000Z',
      current_value: null,
      updated_at: '2026-03-15T10:31:00.000Z',
    });
    const cleared = await server.request('PATCH', `/v1/alert-rules/${created.id}`, { body: { project_id: null } });
    expect(cleared.body.project_id).toBeNull();
    const empty = await server.request('PATCH', `/v1/alert-rules/${created.id}`, { body: {} });
    expect(empty.status).toBe(200);
    expect(empty.body.threshold_value).toBe(2000);
  });

  it('deletes a rule with 204, after which it is 404 and gone from the list', async () => {
    const created = (await server.request('POST', '/v1/alert-rules', { body: ruleBody() })).body;
    const res = await server.request('DELETE', `/v1/alert-rules/${created.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect((await server.request('GET', `/v1/alert-rules/${created.id}`)).status).toBe(404);
    expect((await server.request('DELETE', `/v1/alert-rules/${created.id}`)).status).toBe(404);
    expect((await server.request('PATCH', `/v1/alert-rules/${created.id}`, { body: { name: 'x' } })).status).toBe(404);
    expect((await server.request('GET', '/v1/alert-rules')).body.data).toEqual([]);
  });

  it('accepts every metric, operator and window the contract lists', async () => {
    const combos = [
      ['turn_latency_p50', '>', '5m'],
      ['turn_latency_p95', '<', '10m'],
      ['api_errors', '>=', '60m'],
      ['function_errors', '<=', '5m'],
      ['call_crashes', '>', '10m'],
      ['call_volume', '<', '60m'],
    ];
    for (const [metric, operator, window_duration] of combos) {
      const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody({ metric, operator, window_duration, threshold_value: 0 }) });
      expect(res.status).toBe(201);
    }
  });
});
