/**
 * GET /metrics (Prometheus text format, prom-client): after known traffic through the real
 * API, on a real HTTPS receiver, each figure is exactly what happened; the bearer token.
 */
import { describe, expect, it } from 'vitest';
import { metricSample as sample, useCleanups } from './helpers/cleanups.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, createErrorRule, eventually, PROJECT, resolveAlerts } from './helpers/webhook-fixtures.js';

const START = Date.parse('2026-03-15T10:30:00.000Z');
const TOKEN = 'metrics-token-0123456789abcdef';

const { defer, receiver } = useCleanups();

async function server(env: Record<string, string> = {}, clock = testClock(START)): Promise<TestServer> {
  const s = await startTestServer({ clock, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ALERTS_DELIVERY_WORKER: 'on', ...env } });
  defer(() => s.close());
  return s;
}


async function scrape(s: TestServer, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  const response = await fetch(`${s.baseUrl}/metrics`, { headers });
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}


const send = (s: TestServer, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${s.baseUrl}/v1/telemetry/events`, { method: 'POST', headers: { 'x-api-key': s.key, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('GET /metrics', () => {
  it('counts exactly the telemetry, transitions, detections and webhook attempts that happened, and reports the queue, rules and shards', async () => {
    const clock = testClock(START);
    const s = await server({}, clock);
    const r = await receiver();
    await createEndpoint(s, { url: r.url });
    const rule = await createErrorRule(s);
    // unknown -> no_data at creation (no telemetry yet), then no_data -> ok.
    expect((await send(s, { events: [{ type: 'call', project_id: PROJECT }, { type: 'call', project_id: PROJECT }] })).status).toBe(202);
    // The api_error fires the rule: ok -> alert, one event, one delivery.
    expect((await send(s, { events: [{ type: 'api_error', project_id: PROJECT }, { type: 'turn', latency_ms: 900 }, { type: 'call' }] }, { 'idempotency-key': 'k1' })).status).toBe(202);
    // The same batch again: replayed, its events not counted again.
    expect((await send(s, { events: [{ type: 'api_error', project_id: PROJECT }, { type: 'turn', latency_ms: 900 }, { type: 'call' }] }, { 'idempotency-key': 'k1' })).status).toBe(202);
    // Invalid, unauthenticated, not JSON: rejected, nothing counted as events.
    expect((await send(s, { events: [{ type: 'nope' }] })).status).toBe(400);
    expect((await fetch(`${s.baseUrl}/v1/telemetry/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"events":[]}' })).status).toBe(401);
    expect((await send(s, 'not json at all')).status).toBe(400);
    await eventually(() => Promise.resolve(r.requests.length), (n) => n === 1);
    await resolveAlerts(s, clock); // alert -> ok: alerts.resolved delivered too
    await s.request('PATCH', `/v1/alert-rules/${rule.id}`, { body: { enabled: false } }); // ok -> unknown
    await eventually(() => Promise.resolve(r.requests.length), (n) => n === 2);
    await eventually(() => scrape(s), (m) => sample(m.text, 'alerts_webhook_queue_depth') === 0);

    const m = await scrape(s);
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(m.text, 'alerts_telemetry_events_total')).toBe(5);
    expect(sample(m.text, 'alerts_telemetry_batches_total{outcome="accepted"}')).toBe(2);
    expect(sample(m.text, 'alerts_telemetry_batches_total{outcome="replayed"}')).toBe(1);
    expect(sample(m.text, 'alerts_telemetry_batches_total{outcome="rejected"}')).toBe(3);
    expect(sample(m.text, 'alerts_telemetry_batches_total{outcome="failed"}')).toBeUndefined();
    expect(sample(m.text, 'alerts_rule_transitions_total{from="unknown",to="no_data"}')).toBe(1);
    expect(sample(m.text, 'alerts_rule_transitions_total{from="no_data",to="ok"}')).toBe(1);
    expect(sample(m.text, 'alerts_rule_transitions_total{from="ok",to="alert"}')).toBe(1);
    expect(sample(m.text, 'alerts_rule_transitions_total{from="alert",to="ok"}')).toBe(1);
    expect(sample(m.text, 'alerts_rule_transitions_total{from="ok",to="unknown"}')).toBe(1);
    // Detection is measured on the service's clock, which the test holds still: 0 s, once.
    expect(sample(m.text, 'alerts_detection_seconds_count')).toBe(1);
    expect(sample(m.text, 'alerts_detection_seconds_bucket{le="0.001"}')).toBe(1);
    expect(sample(m.text, 'alerts_webhook_attempts_total{outcome="delivered"}')).toBe(2);
    expect(sample(m.text, 'alerts_webhook_attempt_seconds_count{outcome="delivered"}')).toBe(2);
    expect(sample(m.text, 'alerts_webhook_queue_depth')).toBe(0);
    expect(sample(m.text, 'alerts_webhook_oldest_pending_seconds')).toBe(0);
    // The rule is disabled now: no enabled rule is evaluated.
    for (const state of ['ok', 'alert', 'no_data', 'unknown']) expect(sample(m.text, `alerts_rules{state="${state}"}`)).toBe(0);
    expect(sample(m.text, 'alerts_shards_owned')).toBe(64);
    expect(sample(m.text, 'alerts_shard_apply_lag_batches')).toBe(0);
    expect(sample(m.text, 'alerts_evaluation_pass_seconds_count')).toBeGreaterThanOrEqual(1);
    // prom-client's process defaults.
    expect(m.text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(m.text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });

  it('reports rules by state, a waiting delivery and the age of the oldest one', async () => {
    const clock = testClock(START);
    const s = await server({ ALERTS_DELIVERY_WORKER: 'off' }, clock);
    await createEndpoint(s, { url: 'https://127.0.0.1:9/hooks' });
    await createErrorRule(s);
    await createErrorRule(s, { name: 'quiet', project_id: 'proj_other' });
    expect((await send(s, { events: [{ type: 'api_error', project_id: PROJECT }] })).status).toBe(202);
    clock.advance(90_000);
    const m = await scrape(s);
    expect(sample(m.text, 'alerts_rules{state="alert"}')).toBe(1);
    expect(sample(m.text, 'alerts_rules{state="no_data"}')! + sample(m.text, 'alerts_rules{state="ok"}')!).toBe(1);
    expect(sample(m.text, 'alerts_webhook_queue_depth')).toBe(1);
    expect(sample(m.text, 'alerts_webhook_oldest_pending_seconds')).toBe(90);
  });

  it('asks for ALERTS_METRICS_TOKEN as a bearer token when it is set, and compares it in constant time', async () => {
    const s = await server({ ALERTS_METRICS_TOKEN: TOKEN });
    const missing = await scrape(s);
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.text).message).toMatch(/bearer token/);
    expect((await scrape(s, { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await scrape(s, { authorization: TOKEN })).status).toBe(401);
    expect((await scrape(s, { 'x-api-key': s.key })).status).toBe(401);
    const ok = await scrape(s, { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('alerts_telemetry_events_total 0');
  });

  it('is open without a token, and refuses to start with a token too short to be a secret', async () => {
    const s = await server();
    expect((await scrape(s)).status).toBe(200);
    await expect(startTestServer({ env: { ALERTS_METRICS_TOKEN: 'short' } })).rejects.toThrow(/ALERTS_METRICS_TOKEN/);
  });
});
