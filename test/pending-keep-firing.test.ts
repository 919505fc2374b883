/**
 * Pending and keep-firing periods (ours): the state machine on its own, with every run of
 * conditions a rule can see; the API, the live engine, history and preview in the same file
 * below (added with the fields).
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertState } from '../src/domain/alert-rules.js';
import { hold, type HoldState } from '../src/engine/hold.js';
import { ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

const START: HoldState = { state: 'unknown', pendingSince: null, clearSince: null };
const SECOND = 1000;

/** Runs conditions one per second from t = 0; returns the states. */
function run(conditions: AlertState[], pendingMs: number, keepFiringMs: number): AlertState[] {
  let at = START;
  return conditions.map((condition, i) => {
    at = hold(at, condition, i * SECOND, { pendingMs, keepFiringMs });
    return at.state;
  });
}

const condition = fc.constantFrom<AlertState>('ok', 'alert', 'no_data');

describe('the pending and keep-firing state machine', () => {
  it('with both periods 0 is the condition itself, at once: the published behaviour', () => {
    fc.assert(
      fc.property(fc.array(condition, { maxLength: 200 }), (conditions) => {
        expect(run(conditions, 0, 0)).toEqual(conditions);
      }),
    );
  });

  it('goes to alert only once the condition has held for the pending period, staying ok meanwhile', () => {
    const states = run(['ok', 'alert', 'alert', 'alert', 'alert', 'ok'], 3 * SECOND, 0);
    expect(states).toEqual(['ok', 'ok', 'ok', 'ok', 'alert', 'ok']);
    // From a new rule (unknown) or no data, pending shows ok: the data is there.
    expect(run(['alert', 'alert'], 5 * SECOND, 0)).toEqual(['ok', 'ok']);
    expect(run(['no_data', 'alert', 'no_data', 'alert'], 5 * SECOND, 0)).toEqual(['no_data', 'ok', 'no_data', 'ok']);
  });

  it('starts the pending period again whenever the condition breaks, so a hovering value never fires', () => {
    const hovering = Array.from({ length: 600 }, (_, i) => (Math.floor(i / 6) % 2 === 0 ? 'alert' : 'ok') as AlertState);
    const free = run(hovering, 0, 0);
    const flaps = free.filter((s, i) => i > 0 && s !== free[i - 1]).length;
    expect(flaps).toBeGreaterThanOrEqual(99);
    expect(run(hovering, 60 * SECOND, 0).filter((s) => s === 'alert')).toEqual([]);
  });

  it('leaves alert only once the condition has been clear for the keep-firing period, whatever clears it', () => {
    // Clear from 1 s: kept until 4 s. Clear again from 6 s (no data counts as clear): kept until 9 s.
    const conditions: AlertState[] = ['alert', 'ok', 'ok', 'ok', 'ok', 'alert', 'ok', 'no_data', 'ok', 'ok'];
    expect(run(conditions, 0, 3 * SECOND)).toEqual(['alert', 'alert', 'alert', 'alert', 'ok', 'alert', 'alert', 'alert', 'alert', 'ok']);
  });

  it('never fires before the condition held for the pending period nor resolves before it was clear for the keep-firing period', () => {
    fc.assert(
      fc.property(fc.array(condition, { maxLength: 300 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 }), (conditions, p, k) => {
        const states = run(conditions, p * SECOND, k * SECOND);
        for (let i = 0; i < states.length; i++) {
          const entered = states[i] === 'alert' && (i === 0 || states[i - 1] !== 'alert');
          if (entered) for (let j = Math.max(0, i - p); j <= i; j++) expect(conditions[j]).toBe('alert');
          if (entered && i < p) throw new Error(`fired at ${i} s before ${p} s of condition`);
          const left = i > 0 && states[i - 1] === 'alert' && states[i] !== 'alert';
          if (left) {
            expect(states[i]).toBe(conditions[i]);
            for (let j = Math.max(0, i - k); j <= i; j++) expect(conditions[j]).not.toBe('alert');
          }
          // In alert while the condition is clear only within the keep-firing period; never alert otherwise.
          if (states[i] === 'alert' && conditions[i] !== 'alert') expect(k).toBeGreaterThan(0);
          if (states[i] !== 'alert' && states[i] !== conditions[i]) expect([conditions[i], states[i]]).toEqual(['alert', 'ok']);
        }
      }),
    );
  });
});

// ---- through the API, on the live engine (injected clock) ------------------------------------

const T0 = Date.parse('2026-03-15T10:30:00.000Z');
const MINUTE = 60 * SECOND;
const iso = (ms: number) => new Date(ms).toISOString();

describe('pending and keep-firing periods of a rule', () => {
  const clock = testClock(T0);
  let server: TestServer;
  beforeEach(async () => {
    clock.set(T0);
    server = await startTestServer({ clock });
  });
  afterEach(async () => {
    await server.close();
  });

  const create = async (overrides: Record<string, unknown>) => {
    const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody(overrides) });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };
  const get = async (id: string) => (await server.request('GET', `/v1/alert-rules/${id}`)).body;
  const send = async (events: Record<string, unknown>[]) => {
    const res = await server.request('POST', '/v1/telemetry/events', { body: { events } });
    expect(res.status, res.text).toBe(202);
  };
  const at = async (ms: number) => {
    clock.set(ms);
    await server.service.engine.tick();
  };
  const events = async (ruleId: string) =>
    (await server.service.store.db.selectFrom('alert_events').select(['event_type']).where('rule_id', '=', ruleId).orderBy('created_at').execute()).map((e) => e.event_type);
  const errorsRule = { name: 'errors', project_id: null, metric: 'api_errors', operator: '>=', threshold_value: 1, window_duration: '5m' };

  it('are optional on create and PATCH ("0s" when absent), answered with where the rule is in them, and a bad one is a 400 naming it that changes nothing', async () => {
    const plain = await create(errorsRule);
    expect(plain).toMatchObject({ pending_duration: '0s', keep_firing_duration: '0s', pending_since: null, keep_firing_since: null });
    const held = await create({ ...errorsRule, pending_duration: '1m', keep_firing_duration: '30s' });
    expect(held).toMatchObject({ pending_duration: '1m', keep_firing_duration: '30s' });
    expect(await get(held.id)).toMatchObject({ pending_duration: '1m', keep_firing_duration: '30s' });
    const patched = await server.request('PATCH', `/v1/alert-rules/${held.id}`, { body: { keep_firing_duration: '1h' } });
    expect(patched.body).toMatchObject({ pending_duration: '1m', keep_firing_duration: '1h' });
    for (const [field, value, message] of [
      ['pending_duration', '61m', 'pending_duration must be at most 1 hour'],
      ['keep_firing_duration', '3601s', 'keep_firing_duration must be at most 1 hour'],
      ['pending_duration', '2h', 'pending_duration must be at most 1 hour'],
      ['pending_duration', '1d', 'pending_duration'],
      ['keep_firing_duration', '-1s', 'keep_firing_duration'],
      ['pending_duration', 30, 'pending_duration'],
      ['pending_duration', '1.5m', 'pending_duration'],
    ] as const) {
      const before = await get(held.id);
      const res = await server.request('PATCH', `/v1/alert-rules/${held.id}`, { body: { [field]: value } });
      expect(res.status, `${field}=${value}`).toBe(400);
      expect(res.body.message).toContain(message);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(await get(held.id)).toEqual(before);
      const refused = await server.request('POST', '/v1/alert-rules', { body: ruleBody({ ...errorsRule, [field]: value }) });
      expect(refused.status).toBe(400);
    }
    expect((await server.request('GET', '/v1/alert-rules')).body.data).toHaveLength(2);
  });

  it('with pending_duration, stays ok (pending_since set) until the condition has held that long, then fires once; a break starts it again', async () => {
    const rule = await create({ ...errorsRule, pending_duration: '1m' });
    await send([{ type: 'api_error' }]);
    expect(await get(rule.id)).toMatchObject({ current_state: 'ok', pending_since: iso(T0) });
    await at(T0 + 59 * SECOND);
    expect(await get(rule.id)).toMatchObject({ current_state: 'ok', pending_since: iso(T0) });
    expect(await events(rule.id)).toEqual([]);
    await at(T0 + 60 * SECOND);
    expect(await get(rule.id)).toMatchObject({ current_state: 'alert', pending_since: null, since: iso(T0 + 60 * SECOND) });
    expect(await events(rule.id)).toEqual(['alerts.triggered']);
    // The window empties (5 minutes after the error): ok at once (no keep-firing period).
    await at(T0 + 5 * MINUTE + SECOND);
    expect((await get(rule.id)).current_state).toBe('ok');
    expect(await events(rule.id)).toEqual(['alerts.triggered', 'alerts.resolved']);
    // History: the pending period is a state of `ok`; the transitions are the real ones.
    const history = (await server.request('GET', `/v1/alert-rules/${rule.id}/history`)).body.data.map((h: any) => `${h.from_state}->${h.to_state}@${h.at}`);
    expect(history).toEqual([`alert->ok@${iso(T0 + 5 * MINUTE + SECOND)}`, `ok->alert@${iso(T0 + MINUTE)}`, `no_data->ok@${iso(T0)}`, `unknown->no_data@${iso(T0)}`]);
  });

  it('with keep_firing_duration, stays in alert (keep_firing_since set) until the condition has been clear that long', async () => {
    const rule = await create({ ...errorsRule, keep_firing_duration: '2m' });
    await send([{ type: 'api_error' }]);
    expect((await get(rule.id)).current_state).toBe('alert');
    const clearAt = T0 + 5 * MINUTE + SECOND;
    await at(clearAt);
    expect(await get(rule.id)).toMatchObject({ current_state: 'alert', keep_firing_since: iso(clearAt) });
    await at(clearAt + 2 * MINUTE - SECOND);
    expect((await get(rule.id)).current_state).toBe('alert');
    expect(await events(rule.id)).toEqual(['alerts.triggered']);
    await at(clearAt + 2 * MINUTE);
    expect(await get(rule.id)).toMatchObject({ current_state: 'ok', keep_firing_since: null });
    expect(await events(rule.id)).toEqual(['alerts.triggered', 'alerts.resolved']);
  });

  it('keeps a hovering value that would flap 100 times in 10 minutes to at most 2 events with pending_duration "1m", and the preview agrees with the live rules', async () => {
    const hovering = { name: 'p50 hovering', project_id: null, metric: 'turn_latency_p50', operator: '>', threshold_value: 2000, window_duration: '10m' };
    const free = await create(hovering);
    const pending = await create({ ...hovering, pending_duration: '1m' });
    // One turn every 6 s, alternately slow and fast: the p50 crosses 2,000 ms at every turn.
    for (let i = 0; i < 100; i++) {
      clock.set(T0 + i * 6 * SECOND);
      await send([{ type: 'turn', latency_ms: i % 2 === 0 ? 3000 : 1000, timestamp: iso(clock.now()) }]);
      await server.service.engine.tick();
    }
    const flapping = await events(free.id);
    expect(flapping.filter((e) => e === 'alerts.triggered')).toHaveLength(50);
    expect(flapping.length).toBeGreaterThanOrEqual(99);
    const held = await events(pending.id);
    expect(held).toEqual([]);
    const range = { from: iso(T0 - SECOND), to: iso(T0 + 99 * 6 * SECOND), step: '1s' };
    for (const [body, live] of [
      [hovering, flapping],
      [{ ...hovering, pending_duration: '1m' }, held],
    ] as const) {
      const res = await server.request('POST', '/v1/alert-rules/preview', { body: { ...ruleBody(body), ...range } });
      expect(res.status, res.text).toBe(200);
      expect(res.body.triggered_count).toBe(live.filter((e) => e === 'alerts.triggered').length);
    }
  });

  it('carries where a rule is in its pending period across a restart', async () => {
    const rule = await create({ ...errorsRule, pending_duration: '1m' });
    await send([{ type: 'api_error' }]);
    await at(T0 + 30 * SECOND);
    expect((await get(rule.id)).pending_since).toBe(iso(T0));
    const dir = server.dir;
    await server.service.close();
    server = await startTestServer({ clock, dir });
    expect(await get(rule.id)).toMatchObject({ current_state: 'ok', pending_since: iso(T0) });
    await at(T0 + 60 * SECOND);
    expect((await get(rule.id)).current_state).toBe('alert');
    expect(await events(rule.id)).toEqual(['alerts.triggered']);
  });
});
