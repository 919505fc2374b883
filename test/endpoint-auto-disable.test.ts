import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { closedPort } from './helpers/https-receiver.js';
import { metricSample, useCleanups } from './helpers/cleanups.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, createErrorRule, listDeliveries, resolveAlerts, sendApiError, triggerAlert } from './helpers/webhook-fixtures.js';

/**
 * An endpoint whose attempts have all failed for ALERTS_ENDPOINT_DISABLE_AFTER (default 5
 * days), counted from its first failed attempt after its last success, is disabled by the
 * service: it says why and since when, a warning is logged and counted, its unfinished
 * deliveries are cancelled, and those of events while it stays disabled are recorded as
 * cancelled, never sent. Enabling it again starts afresh. The worker does not run by itself:
 * the test moves the injected clock and drains.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const { defer, receiver } = useCleanups();

async function server(clock: ReturnType<typeof testClock>, env: Record<string, string> = {}) {
  const lines: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
  const s = await startTestServer({ clock, logger, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ...env } });
  defer(() => s.close());
  return Object.assign(s, { logs: () => lines.map((line) => JSON.parse(line) as Record<string, any>) });
}


const drain = (s: TestServer) => s.service.deliveryWorker.drain();
const iso = (ms: number) => new Date(ms).toISOString();
const getEndpoint = async (s: TestServer, id: string) => (await s.request('GET', `/v1/webhook-endpoints/${id}`)).body;

async function metric(s: TestServer, name: string): Promise<number | undefined> {
  return metricSample(await (await fetch(`${s.baseUrl}/metrics`)).text(), name);
}

async function failingSince(s: TestServer, id: string): Promise<number | null> {
  const row = await s.service.store.db.selectFrom('webhook_endpoints').select('failing_since').where('id', '=', id).executeTakeFirstOrThrow();
  return row.failing_since === null ? null : Number(row.failing_since);
}

const NOT_DISABLED = { enabled: true, disabled_reason: null, disabled_at: null };

describe('an endpoint whose deliveries all fail', () => {
  it('stays enabled just under ALERTS_ENDPOINT_DISABLE_AFTER (default 5 days) and is disabled past it, saying why in its answers, the log and /metrics', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    r.setDefault({ status: 500, body: 'down' });
    const endpoint = await createEndpoint(s, { url: r.url });
    expect(endpoint.body).toMatchObject(NOT_DISABLED);
    await triggerAlert(s);
    await drain(s); // attempt 1 at START: failing since then
    expect(await failingSince(s, endpoint.id)).toBe(START);

    clock.set(START + 5 * DAY - SECOND);
    await drain(s); // attempt 2, 1 s short of 5 days of failures
    expect(r.requests).toHaveLength(2);
    expect(await getEndpoint(s, endpoint.id)).toMatchObject(NOT_DISABLED);
    expect(await metric(s, 'alerts_endpoints_disabled_total')).toBe(0);

    clock.advance(5 * MINUTE);
    await drain(s); // attempt 3, past 5 days: disabled
    expect(r.requests).toHaveLength(3);
    const disabledAt = START + 5 * DAY - SECOND + 5 * MINUTE;
    const reason = `every delivery failed for 5 days (since ${iso(START)}; last error: HTTP 500)`;
    const got = await getEndpoint(s, endpoint.id);
    expect(got).toMatchObject({ enabled: false, disabled_reason: reason, disabled_at: iso(disabledAt), updated_at: iso(disabledAt) });
    expect((await s.request('GET', '/v1/webhook-endpoints?enabled=false')).body.data).toEqual([got]);
    expect(await metric(s, 'alerts_endpoints_disabled_total')).toBe(1);
    const warnings = s.logs().filter((l) => l.level === 40 && /webhook endpoint disabled/.test(l.msg));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ endpoint_id: endpoint.id, failing_since: iso(START), reason, msg: `webhook endpoint disabled: ${reason}` });

    // Its delivery, still pending a retry, is cancelled, naming why; nothing more is sent.
    const [delivery] = await listDeliveries(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'cancelled', attempt_count: 3, next_attempt_at: null, last_error: `not sent: the service disabled the endpoint: ${reason}` });
    clock.advance(DAY);
    await drain(s);
    expect(r.requests).toHaveLength(3);
  });

  it('counts from the first failure after the last success: one success in between starts the clock again', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    r.setDefault({ status: 503 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s); // fails at START
    expect(await failingSince(s, endpoint.id)).toBe(START);

    clock.set(START + 3 * DAY);
    r.enqueue({ status: 200 });
    await drain(s); // the retry succeeds: not failing any more
    expect(await failingSince(s, endpoint.id)).toBeNull();

    clock.advance(5 * MINUTE);
    await triggerAlert(s); // another rule fires: its first attempt fails
    await drain(s);
    const since = START + 3 * DAY + 5 * MINUTE;
    expect(await failingSince(s, endpoint.id)).toBe(since);

    clock.set(START + 5 * DAY + HOUR); // 5 days after the first failure, but not after the success
    await drain(s);
    expect(r.requests).toHaveLength(4);
    expect(await getEndpoint(s, endpoint.id)).toMatchObject(NOT_DISABLED);

    clock.set(since + 5 * DAY);
    await drain(s);
    expect(r.requests).toHaveLength(5);
    expect(await getEndpoint(s, endpoint.id)).toMatchObject({
      enabled: false,
      disabled_reason: `every delivery failed for 5 days (since ${iso(since)}; last error: HTTP 503)`,
      disabled_at: iso(since + 5 * DAY),
    });
  });

  it('is disabled when nothing listens (connect_refused), on a shorter ALERTS_ENDPOINT_DISABLE_AFTER', async () => {
    const clock = testClock(START);
    const s = await server(clock, { ALERTS_ENDPOINT_DISABLE_AFTER: '90m' });
    const endpoint = await createEndpoint(s, { url: `https://127.0.0.1:${await closedPort()}/hook` });
    await triggerAlert(s);
    await drain(s);
    for (const step of [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR]) {
      clock.advance(step);
      await drain(s);
    }
    // 81 minutes of failures: still enabled. The last retry, 4 h later, is past 90 minutes.
    expect(await getEndpoint(s, endpoint.id)).toMatchObject(NOT_DISABLED);
    clock.advance(4 * HOUR);
    await drain(s);
    const got = await getEndpoint(s, endpoint.id);
    expect(got.enabled).toBe(false);
    expect(got.disabled_reason).toMatch(new RegExp(`^every delivery failed for 90 minutes \\(since ${iso(START).replace(/\./g, '\\.')}; last error: connect_refused: `));
  });

  it('with ALERTS_ENDPOINT_DISABLE_AFTER=0, is never disabled', async () => {
    const clock = testClock(START);
    const s = await server(clock, { ALERTS_ENDPOINT_DISABLE_AFTER: '0' });
    const r = await receiver();
    r.setDefault({ status: 500 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    clock.advance(30 * DAY);
    await drain(s);
    expect(r.requests).toHaveLength(2);
    expect(await getEndpoint(s, endpoint.id)).toMatchObject(NOT_DISABLED);
    expect((await listDeliveries(s, endpoint.id))[0]).toMatchObject({ status: 'pending', attempt_count: 2 });
    expect(await metric(s, 'alerts_endpoints_disabled_total')).toBe(0);
  });
});

describe('a disabled endpoint', () => {
  /** An endpoint the service disabled (ALERTS_ENDPOINT_DISABLE_AFTER=1h), and its receiver. */
  async function disabledEndpoint() {
    const clock = testClock(START);
    const s = await server(clock, { ALERTS_ENDPOINT_DISABLE_AFTER: '1h' });
    const r = await receiver();
    r.setDefault({ status: 500 });
    const endpoint = await createEndpoint(s, { url: r.url });
    const rule = await triggerAlert(s);
    await drain(s);
    clock.set(START + HOUR);
    await drain(s);
    expect((await getEndpoint(s, endpoint.id)).enabled).toBe(false);
    expect(r.requests).toHaveLength(2);
    return { clock, s, r, endpoint, rule };
  }

  it('records the deliveries of events while it is disabled as cancelled, naming why, and never sends them, not even once enabled again', async () => {
    const { clock, s, r, endpoint } = await disabledEndpoint();
    const reason = (await getEndpoint(s, endpoint.id)).disabled_reason as string;
    await resolveAlerts(s, clock); // alerts.resolved while disabled
    const deliveries = await listDeliveries(s, endpoint.id);
    expect(deliveries.map((d) => [d.event_type, d.status])).toEqual([
      ['alerts.resolved', 'cancelled'],
      ['alerts.triggered', 'cancelled'],
    ]);
    expect(deliveries[0]).toMatchObject({ attempt_count: 0, next_attempt_at: null, last_error: `not sent: the service disabled the endpoint: ${reason}`, attempts: [] });
    expect(await listDeliveries(s, endpoint.id, '?status=cancelled')).toHaveLength(2);
    // Not retried by hand either: only delivered and failed deliveries are.
    const retried = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/${deliveries[0].id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body.status).toBe('cancelled');

    r.setDefault({ status: 200 });
    expect((await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: true } })).status).toBe(200);
    clock.advance(DAY);
    await drain(s);
    expect(r.requests).toHaveLength(2);
    expect((await listDeliveries(s, endpoint.id)).map((d) => d.status)).toEqual(['cancelled', 'cancelled']);
  });

  it('is enabled again by PATCH enabled: true, which clears why, when and the failures so far; deliveries flow again', async () => {
    const { clock, s, r, endpoint } = await disabledEndpoint();
    clock.advance(MINUTE);
    const patched = await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: true } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ ...NOT_DISABLED, updated_at: iso(START + HOUR + MINUTE) });
    expect(await getEndpoint(s, endpoint.id)).toMatchObject(NOT_DISABLED);
    expect(await failingSince(s, endpoint.id)).toBeNull();

    // A failure now is the first of a new count: not disabled at once.
    await resolveAlerts(s, clock);
    await drain(s);
    expect(r.requests).toHaveLength(3);
    expect(await getEndpoint(s, endpoint.id)).toMatchObject(NOT_DISABLED);

    r.setDefault({ status: 200 });
    clock.advance(MINUTE);
    await drain(s);
    expect(r.requests).toHaveLength(4);
    expect((await listDeliveries(s, endpoint.id))[0]).toMatchObject({ event_type: 'alerts.resolved', status: 'delivered' });
    expect(await failingSince(s, endpoint.id)).toBeNull();
  });

  it('other changes and PATCH enabled: false keep why it was disabled', async () => {
    const { s, endpoint } = await disabledEndpoint();
    const before = await getEndpoint(s, endpoint.id);
    const renamed = await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { name: 'renamed', enabled: false } });
    expect(renamed.body).toMatchObject({ name: 'renamed', enabled: false, disabled_reason: before.disabled_reason, disabled_at: before.disabled_at });
  });

  it('disabled through the API keeps today’s behaviour: no deliveries for new events, pending ones wait and are sent once enabled', async () => {
    const clock = testClock(START);
    const s = await server(clock, { ALERTS_ENDPOINT_DISABLE_AFTER: '1h' });
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    expect((await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: false } })).body).toMatchObject({
      enabled: false,
      disabled_reason: null,
      disabled_at: null,
    });
    await resolveAlerts(s, clock);
    clock.advance(DAY);
    await drain(s);
    expect(r.requests).toHaveLength(0);
    expect((await listDeliveries(s, endpoint.id)).map((d) => [d.event_type, d.status])).toEqual([['alerts.triggered', 'pending']]);
    await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: true } });
    await drain(s);
    expect(r.requests).toHaveLength(1);
  });
});

describe('several workers', () => {
  it('disable an endpoint once: the write holds only while it is enabled and failing since that very time', async () => {
    const clock = testClock(START);
    const s = await server(clock, { ALERTS_ENDPOINT_DISABLE_AFTER: '1h' });
    const r = await receiver();
    r.setDefault({ status: 500 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await createErrorRule(s);
    await sendApiError(s);
    await drain(s);
    expect(await failingSince(s, endpoint.id)).toBe(START);
    const deliveries = s.service.store.deliveries;

    // Another worker saw an older failing_since (a success and a new failure came since): refused.
    expect(await deliveries.disableFailingEndpoint(endpoint.id, START - DAY, 'stale', iso(START))).toBe(false);
    // Two workers that saw the same failing_since: one disables it, the other changes nothing.
    const both = await Promise.all([
      deliveries.disableFailingEndpoint(endpoint.id, START, 'first', iso(START + HOUR)),
      deliveries.disableFailingEndpoint(endpoint.id, START, 'second', iso(START + HOUR)),
    ]);
    expect(both.filter(Boolean)).toHaveLength(1);
    const got = await getEndpoint(s, endpoint.id);
    expect(got).toMatchObject({ enabled: false, disabled_at: iso(START + HOUR) });
    expect(['first', 'second']).toContain(got.disabled_reason);
    // Once enabled again (failing_since cleared), a worker that still holds the old time disables nothing.
    await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: true } });
    expect(await deliveries.disableFailingEndpoint(endpoint.id, START, 'late', iso(START + 2 * HOUR))).toBe(false);
    expect(await getEndpoint(s, endpoint.id)).toMatchObject(NOT_DISABLED);
  });
});

describe('ALERTS_ENDPOINT_DISABLE_AFTER', () => {
  it('is 5 days unless set; takes s, m, h and d from 1 minute to 3650 days, or 0 for never', () => {
    expect(loadConfig({}).delivery.disableEndpointAfterMs).toBe(5 * DAY);
    expect(loadConfig({ ALERTS_ENDPOINT_DISABLE_AFTER: '0' }).delivery.disableEndpointAfterMs).toBeNull();
    expect(loadConfig({ ALERTS_ENDPOINT_DISABLE_AFTER: '36h' }).delivery.disableEndpointAfterMs).toBe(36 * HOUR);
    expect(loadConfig({ ALERTS_ENDPOINT_DISABLE_AFTER: '1m' }).delivery.disableEndpointAfterMs).toBe(MINUTE);
    expect(loadConfig({ ALERTS_ENDPOINT_DISABLE_AFTER: '600s' }).delivery.disableEndpointAfterMs).toBe(10 * MINUTE);
    expect(loadConfig({ ALERTS_ENDPOINT_DISABLE_AFTER: '3650d' }).delivery.disableEndpointAfterMs).toBe(3650 * DAY);
  });

  it.each([
    ['soon', /ALERTS_ENDPOINT_DISABLE_AFTER: "soon" is not a duration like 5d, 36h or 90m, or 0 \(never disable\)/],
    ['-1d', /is not a duration/],
    ['1.5d', /is not a duration/],
    ['5', /is not a duration/],
    ['off', /is not a duration/],
    ['30s', /ALERTS_ENDPOINT_DISABLE_AFTER: "30s" must be between 1m and 3650d, or 0 \(never disable\)/],
    ['3651d', /must be between 1m and 3650d/],
  ])('refuses %j with a message naming it', (value, message) => {
    expect(() => loadConfig({ ALERTS_ENDPOINT_DISABLE_AFTER: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ALERTS_ENDPOINT_DISABLE_AFTER: value })).toThrow(message);
  });
});
