/**
 * GET /v1/stream (Server-Sent Events): the account's rules at the start and on every change,
 * transitions and webhook attempts as they are committed, resumption with Last-Event-ID
 * (what was missed, exactly once), reset on an id that is not ours, isolation of accounts,
 * the per-account limit, and shutdown with streams open. Real HTTP on loopback, a real
 * HTTPS receiver, the real engine and worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_STREAMS_PER_ACCOUNT } from '../src/http/routes/stream.js';
import { dropDatabaseFor, onPostgres } from './helpers/database.js';
import { useCleanups } from './helpers/cleanups.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, createErrorRule, eventually, resolveAlerts, sendApiError } from './helpers/webhook-fixtures.js';

const START = Date.parse('2026-03-15T10:30:00.000Z');

const { defer, receiver } = useCleanups();

async function server(clock = testClock(START), env: Record<string, string> = {}): Promise<TestServer> {
  const s = await startTestServer({ clock, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ALERTS_DELIVERY_WORKER: 'on', ...env } });
  defer(() => s.close());
  return s;
}


interface Message {
  id: string | undefined;
  event: string;
  data: any;
}

interface Stream {
  status: number;
  headers: Headers;
  messages: Message[];
  /** Waits until a message satisfies `match`; returns it. */
  next(match: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  close(): void;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
}

/** A Server-Sent Events client over fetch (EventSource cannot send x-api-key), parsing the text format. */
async function openStream(s: TestServer, options: { key?: string; lastEventId?: string } = {}): Promise<Stream> {
  const abort = new AbortController();
  const headers: Record<string, string> = { 'x-api-key': options.key ?? s.key, accept: 'text/event-stream' };
  if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
  const response = await fetch(`${s.baseUrl}/v1/stream`, { headers, signal: abort.signal });
  const messages: Message[] = [];
  const waiters = new Set<() => void>();
  let ended: Promise<void> = Promise.resolve();
  if (response.ok && response.body) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    ended = (async () => {
      let buffer = '';
      let current: Partial<Message> & { data?: string } = {};
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += value;
          let newline: number;
          while ((newline = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + 1);
            if (line === '') {
              if (current.event !== undefined || current.data !== undefined) {
                messages.push({ id: current.id, event: current.event ?? 'message', data: current.data === undefined ? undefined : JSON.parse(current.data) });
                for (const wake of waiters) wake();
              }
              current = {};
            } else if (!line.startsWith(':')) {
              const colon = line.indexOf(':');
              const field = line.slice(0, colon);
              const text = line.slice(colon + 1).replace(/^ /, '');
              if (field === 'id') current.id = text;
              else if (field === 'event') current.event = text;
              else if (field === 'data') current.data = current.data === undefined ? text : `${current.data}\n${text}`;
            }
          }
        }
      } catch {
        // aborted by the test
      }
    })();
  }
  const stream: Stream = {
    status: response.status,
    headers: response.headers,
    messages,
    ended,
    async next(match, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages.map((m) => m.event))}`);
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
          setTimeout(wake, 100);
        });
      }
    },
    close: () => abort.abort(),
  };
  defer(async () => {
    stream.close();
    await stream.ended;
  });
  if (!response.ok) stream.messages.push({ id: undefined, event: 'error', data: await response.json() });
  return stream;
}

describe('GET /v1/stream', () => {
  it("sends every rule at the start, then each change of state or value, each transition and each webhook attempt, every event with an id", async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    await createEndpoint(s, { url: r.url });
    const rule = await createErrorRule(s);
    const other = await createErrorRule(s, { name: 'other project', project_id: 'proj_other' });
    const stream = await openStream(s);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers.get('cache-control')).toBe('no-store');
    const first = await stream.next((m) => m.event === 'rule' && m.data.id === other.id);
    expect(stream.messages.filter((m) => m.event === 'rule').map((m) => m.data.id).sort()).toEqual([rule.id, other.id].sort());
    expect(first.data).toMatchObject({ name: 'other project', enabled: true, current_state: 'no_data', current_value: null });
    // Nothing from before the stream started: no old transitions replayed.
    expect(stream.messages.filter((m) => m.event === 'transition')).toEqual([]);

    await sendApiError(s);
    const fired = await stream.next((m) => m.event === 'transition' && m.data.to_state === 'alert');
    expect(fired.data).toMatchObject({ rule_id: rule.id, from_state: 'no_data', to_state: 'alert', value: 1, event_type: 'alerts.triggered', threshold_value: 1, operator: '>=', window_duration: '5m' });
    expect(fired.data.event_id).toMatch(/^evt_/);
    const state = await stream.next((m) => m.event === 'rule' && m.data.id === rule.id && m.data.current_state === 'alert');
    expect(state.data.current_value).toBe(1);
    const attempt = await stream.next((m) => m.event === 'attempt');
    expect(attempt.data).toMatchObject({ event_id: fired.data.event_id, event_type: 'alerts.triggered', attempt: 1, status_code: 200, error_class: null });
    expect(attempt.data.delivery_id).toMatch(/^dlv_/);
    expect(attempt.data.endpoint_id).toMatch(/^whe_/);
    expect(stream.messages.every((m) => /^\d+-\d+$/.test(m.id ?? ''))).toBe(true);

    await s.request('DELETE', `/v1/alert-rules/${other.id}`);
    await stream.next((m) => m.event === 'rule_removed' && m.data.id === other.id);
    // Each transition once.
    expect(stream.messages.filter((m) => m.event === 'transition' && m.data.to_state === 'alert')).toHaveLength(1);
    expect(stream.messages.filter((m) => m.event === 'attempt')).toHaveLength(1);
  });

  it('says in each rule event whether a silence matches the rule, and sends the rule again when one starts or ends', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const rule = await createErrorRule(s);
    const stream = await openStream(s);
    const ruleEvents = () => stream.messages.filter((m) => m.event === 'rule' && m.data.id === rule.id).map((m) => m.data.silenced);
    await stream.next(() => ruleEvents().length === 1);
    const silence = await s.request('POST', '/v1/silences', { body: { rule_id: rule.id, ends_at: new Date(START + 60_000).toISOString(), comment: 'deploy' } });
    expect(silence.status, silence.text).toBe(201);
    await stream.next(() => ruleEvents().length === 2);
    clock.advance(60_000); // the silence ends
    await stream.next(() => ruleEvents().length === 3);
    expect(ruleEvents()).toEqual([false, true, false]);
  });

  it('resumes from Last-Event-ID: every transition and attempt missed while disconnected, once, none from before, then the rules as they are', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    await createEndpoint(s, { url: r.url });
    const rule = await createErrorRule(s);
    const before = await openStream(s);
    await sendApiError(s);
    await before.next((m) => m.event === 'attempt');
    const lastId = before.messages.at(-1)!.id!;
    const seenTransitions = before.messages.filter((m) => m.event === 'transition').length;
    before.close();
    await before.ended;

    // While nobody listens: resolved (and delivered), then fired again (and delivered).
    await resolveAlerts(s, clock);
    await eventually(() => Promise.resolve(r.requests.length), (n) => n === 2);
    await sendApiError(s);
    await eventually(() => Promise.resolve(r.requests.length), (n) => n === 3);

    const after = await openStream(s, { lastEventId: lastId });
    await after.next((m) => m.event === 'rule' && m.data.current_state === 'alert');
    await eventually(() => Promise.resolve(after.messages.filter((m) => m.event === 'attempt').length), (n) => n === 2);
    const transitions = after.messages.filter((m) => m.event === 'transition').map((m) => `${m.data.from_state}->${m.data.to_state}`);
    expect(transitions).toEqual(['alert->ok', 'ok->alert']);
    expect(after.messages.filter((m) => m.event === 'attempt').map((m) => m.data.event_type)).toEqual(['alerts.resolved', 'alerts.triggered']);
    expect(after.messages.some((m) => m.event === 'reset')).toBe(false);
    expect(seenTransitions).toBeGreaterThan(0);
    // A fresh stream (no id) sends none of that history.
    const fresh = await openStream(s);
    await fresh.next((m) => m.event === 'rule' && m.data.id === rule.id);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(fresh.messages.filter((m) => m.event !== 'rule')).toEqual([]);
  });

  it('says reset, then streams from now, when the Last-Event-ID is not one it gave', async () => {
    const s = await server();
    await createErrorRule(s);
    for (const id of ['garbage', '999999-0', '-1-2', '1.5-2']) {
      const stream = await openStream(s, { lastEventId: id });
      expect(stream.status).toBe(200);
      const reset = await stream.next(() => true);
      expect(reset.event).toBe('reset');
      expect(reset.data.message).toMatch(/Last-Event-ID/);
      await stream.next((m) => m.event === 'rule');
      stream.close();
    }
  });

  it("shows an account nothing of another account's rules, transitions or attempts", async () => {
    const s = await server();
    const otherKey = await s.newKey('globex');
    const theirs = await createErrorRule(s, {}, otherKey);
    const mine = await createErrorRule(s);
    const stream = await openStream(s);
    await stream.next((m) => m.event === 'rule' && m.data.id === mine.id);
    await sendApiError(s, otherKey);
    expect((await s.request('GET', `/v1/alert-rules/${theirs.id}`, { key: otherKey })).body.current_state).toBe('alert');
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(stream.messages.filter((m) => m.data?.id === theirs.id || m.data?.rule_id === theirs.id)).toEqual([]);
    expect(stream.messages.filter((m) => m.event === 'transition')).toEqual([]);
  });

  it(`needs an API key, and refuses more than ${MAX_STREAMS_PER_ACCOUNT} open streams of one account with a 429 that names the limit`, async () => {
    const s = await server();
    const anonymous = await fetch(`${s.baseUrl}/v1/stream`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { message: string }).message).toMatch(/API key/);
    const open = await Promise.all(Array.from({ length: MAX_STREAMS_PER_ACCOUNT }, () => openStream(s)));
    expect(open.every((o) => o.status === 200)).toBe(true);
    const refused = await openStream(s);
    expect(refused.status).toBe(429);
    expect(refused.messages[0]!.data.message).toContain(String(MAX_STREAMS_PER_ACCOUNT));
    // Another account is not held up by this one's streams.
    expect((await openStream(s, { key: await s.newKey('globex') })).status).toBe(200);
    open[0]!.close();
    await eventually(async () => (await openStream(s)).status, (status) => status === 200, 5_000);
  });

  it.runIf(onPostgres)("is served by any instance: a stream on one that does not own the account shows what its owner commits, and resumes on the other", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-stream-cluster-'));
    defer(async () => {
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const env = { ALERTS_LEASE_TTL: '2s', ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ALERTS_DELIVERY_WORKER: 'on' };
    const clock = testClock(START);
    const first = await startTestServer({ dir, clock, env });
    defer(() => first.close());
    const second = await startTestServer({ dir, clock, env });
    defer(() => second.close());
    await first.service.coordinator.rebalance();
    await second.service.coordinator.rebalance();
    await eventually(async () => first.service.coordinator.held().length + second.service.coordinator.held().length, (n) => n === 64);
    const accountId = (await first.service.apiKeys.authenticate(first.key))!;
    const owner = first.service.engine.owns(accountId) ? first : second;
    const viewer = owner === first ? second : first;
    expect(viewer.service.engine.owns(accountId)).toBe(false);
    const r = await receiver();
    await createEndpoint(owner, { url: r.url });
    const rule = await createErrorRule(owner);
    const stream = await openStream(viewer, { key: viewer.key });
    await stream.next((m) => m.event === 'rule' && m.data.id === rule.id);
    await sendApiError(viewer, viewer.key);
    const fired = await stream.next((m) => m.event === 'transition' && m.data.to_state === 'alert');
    expect(fired.data.rule_id).toBe(rule.id);
    await stream.next((m) => m.event === 'rule' && m.data.current_state === 'alert');
    await stream.next((m) => m.event === 'attempt' && m.data.event_id === fired.data.event_id);
    const position = stream.messages.at(-1)!.id!;
    stream.close();
    await stream.ended;
    await resolveAlerts(owner, clock);
    const resumed = await openStream(owner, { lastEventId: position });
    const resolved = await resumed.next((m) => m.event === 'transition');
    expect(resolved.data).toMatchObject({ rule_id: rule.id, from_state: 'alert', to_state: 'ok', event_type: 'alerts.resolved' });
    expect(resumed.messages.some((m) => m.event === 'reset')).toBe(false);
  });

  it('ends its open streams when the server shuts down, which then closes at once', async () => {
    const s = await startTestServer({ clock: testClock(START) });
    const stream = await openStream(s);
    expect(stream.status).toBe(200);
    const started = Date.now();
    await s.close();
    await stream.ended;
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
