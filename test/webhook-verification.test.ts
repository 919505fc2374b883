import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_TOLERANCE_SECONDS,
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyWebhook,
  type VerifyResult,
  type WebhookEvent,
} from '../packages/webhooks/src/index.js';
import { createDeliveriesService } from '../src/domain/deliveries-service.js';
import { createDeliveryWorker } from '../src/delivery/worker.js';
import type { WebhookClient, WebhookRequest } from '../src/domain/ports/webhook-client.js';
import { webhookHeaders } from '../src/domain/webhook-headers.js';
import { signWebhook } from '../src/domain/webhook-signing.js';
import { createLogger } from '../src/logger.js';
import { validateComponent } from './helpers/published-spec.js';
import { endpointBody, ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

/**
 * The receivers' verification package (packages/webhooks): fixed vectors of the documented
 * algorithm, every rejection reason, robustness on garbage, and payloads signed by the service.
 */

// Vector 1: a triggered event with non-ASCII text in the body.
const SECRET = 'whsec_tEsT-vector_0123456789abcdefghijklmnopqrstuvwxyzABCD';
const TIMESTAMP = 1773570600; // 2026-03-15T10:30:00Z
const BODY =
  '{"id":"evt_7hK2mPq9RsT4vWx6YzA1bC","event_type":"alerts.triggered","created_at":"2026-03-15T10:30:00.000Z",' +
  '"alert":{"id":"ar_0Kx4mNpQ8rWvYb2dFgHjLs","name":"High turn latency (p95) — ünïcödé","project_id":"proj_abc123",' +
  '"metric":"turn_latency_p95","operator":">=","threshold_value":1500,"window_duration":"5m","current_value":1720,' +
  '"previous_state":"ok","triggered_at":"2026-03-15T10:30:00.000Z"}}';
const EVENT_ID = 'evt_7hK2mPq9RsT4vWx6YzA1bC';
const SIGNATURE = 'd5f4b21a070efc84cf2547db4eb66a9e36e6891a43449036956f311aac58a534';

// Vector 2: a resolved event without id/created_at (the published minimum), a non-ASCII secret.
const SECRET_2 = 'clé secrète ✓';
const TIMESTAMP_2 = 1773571200;
const BODY_2 =
  '{"event_type":"alerts.resolved","alert":{"id":"ar_Z9","name":"API errors","project_id":null,"metric":"api_errors",' +
  '"operator":">","threshold_value":5,"current_value":0,"previous_state":"alert","triggered_at":"2026-03-15T10:30:00.000Z",' +
  '"resolved_at":"2026-03-15T10:40:00.000Z"}}';
const SIGNATURE_2 = '744208beae47445df433507883850d13bdc238385d7be3df8ab77259b39b8fd3';

/** The documented algorithm, written here from the spec, independently of src/ and packages/. */
const hmacHex = (secret: string, timestamp: string | number, body: string | Buffer) =>
  createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(`${timestamp}.`, 'utf8')).update(body).digest('hex');

const at = (seconds: number) => () => seconds * 1000;
const NOW = at(TIMESTAMP + 2);

const BASE_HEADERS: Record<string, string> = {
  [TIMESTAMP_HEADER]: String(TIMESTAMP),
  [SIGNATURE_HEADER]: SIGNATURE,
  [EVENT_ID_HEADER]: EVENT_ID,
  'content-type': 'application/json',
};
const headers = (overrides: Record<string, string | string[] | undefined> = {}): Record<string, string | string[] | undefined> => ({
  ...BASE_HEADERS,
  ...overrides,
});

const verify = (body: string | Buffer = BODY, h: Parameters<typeof verifyWebhook>[1] = headers(), secret = SECRET, options = { now: NOW }) =>
  verifyWebhook(body, h, secret, options);

const rejected = (reason: string) => ({ ok: false, reason });

describe('test vectors', () => {
  it('the literal signatures are the documented algorithm, and what the service computes', () => {
    expect(hmacHex(SECRET, TIMESTAMP, BODY)).toBe(SIGNATURE);
    expect(hmacHex(SECRET_2, TIMESTAMP_2, BODY_2)).toBe(SIGNATURE_2);
    expect(signWebhook(SECRET, TIMESTAMP, BODY)).toBe(SIGNATURE);
    expect(signWebhook(SECRET_2, TIMESTAMP_2, BODY_2)).toBe(SIGNATURE_2);
  });

  it('accepts a valid webhook, given as a string or as the raw bytes', () => {
    const expected = { ok: true, event: JSON.parse(BODY), eventId: EVENT_ID, timestamp: TIMESTAMP };
    expect(verify()).toEqual(expected);
    expect(verify(Buffer.from(BODY, 'utf8'))).toEqual(expected);
    expect(verify(new Uint8Array(Buffer.from(BODY, 'utf8')) as Buffer)).toEqual(expected);
    // A Buffer that is a slice of a larger allocation.
    const padded = Buffer.from(`xx${BODY}yy`, 'utf8');
    expect(verify(padded.subarray(2, padded.length - 2))).toEqual(expected);

    const second = verifyWebhook(
      BODY_2,
      { [TIMESTAMP_HEADER]: String(TIMESTAMP_2), [SIGNATURE_HEADER]: SIGNATURE_2, [EVENT_ID_HEADER]: 'evt_any' },
      SECRET_2,
      { now: at(TIMESTAMP_2) },
    );
    expect(second).toEqual({ ok: true, event: JSON.parse(BODY_2), eventId: 'evt_any', timestamp: TIMESTAMP_2 });
  });

  it('narrows the event type on event_type', () => {
    const result = verify();
    if (!result.ok) throw new Error(result.reason);
    const event: WebhookEvent = result.event;
    expect(event.event_type === 'alerts.triggered' ? event.alert.triggered_at : event.alert.resolved_at).toBe('2026-03-15T10:30:00.000Z');
  });

  it('matches header names case-insensitively, in a plain object or a fetch Headers', () => {
    const mixed = { 'X-PolyAI-Timestamp': String(TIMESTAMP), 'X-POLYAI-SIGNATURE': SIGNATURE, 'x-PolyAI-Event-Id': EVENT_ID };
    expect(verify(BODY, mixed)).toMatchObject({ ok: true });
    expect(verify(BODY, new Headers(mixed))).toMatchObject({ ok: true });
    expect(verify(BODY, new Headers(BASE_HEADERS))).toMatchObject({ ok: true });
  });

  it('accepts a header given as an array of one value, and surrounding whitespace', () => {
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: [SIGNATURE], [TIMESTAMP_HEADER]: [String(TIMESTAMP)] }))).toMatchObject({ ok: true });
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: ` ${SIGNATURE}\t` }))).toMatchObject({ ok: true });
  });
});

describe('rejections', () => {
  it('a tampered body, one byte or one character at a time', () => {
    expect(verify(BODY.replace('1720', '1721'))).toEqual(rejected('invalid_signature'));
    expect(verify(BODY + ' ')).toEqual(rejected('invalid_signature'));
    expect(verify(' ' + BODY)).toEqual(rejected('invalid_signature'));
    expect(verify(BODY.replace('ü', 'u'))).toEqual(rejected('invalid_signature'));
    // Re-serializing the parsed body is a classic mistake: it changes the bytes.
    expect(verify(JSON.stringify(JSON.parse(BODY), null, 2))).toEqual(rejected('invalid_signature'));
    const bytes = Buffer.from(BODY, 'utf8');
    for (let i = 0; i < bytes.length; i += 7) {
      const copy = Buffer.from(bytes);
      copy[i] = copy[i]! ^ 0x01;
      expect(verify(copy).ok, `byte ${i}`).toBe(false);
    }
  });

  it('a wrong, empty or differently encoded secret', () => {
    expect(verify(BODY, headers(), SECRET + 'x')).toEqual(rejected('invalid_signature'));
    expect(verify(BODY, headers(), SECRET.slice(0, -1))).toEqual(rejected('invalid_signature'));
    expect(verify(BODY, headers(), '')).toEqual(rejected('invalid_signature'));
    expect(verifyWebhook(BODY_2, { [TIMESTAMP_HEADER]: String(TIMESTAMP_2), [SIGNATURE_HEADER]: SIGNATURE_2, [EVENT_ID_HEADER]: 'e' }, 'cle secrete ✓', { now: at(TIMESTAMP_2) })).toEqual(
      rejected('invalid_signature'),
    );
  });

  it('a signed timestamp that was changed', () => {
    const h = headers({ [TIMESTAMP_HEADER]: String(TIMESTAMP + 1) });
    expect(verify(BODY, h)).toEqual(rejected('invalid_signature'));
    // Same number, different text: the signature covers the header's exact text.
    expect(verify(BODY, headers({ [TIMESTAMP_HEADER]: `0${TIMESTAMP}` }))).toEqual(rejected('invalid_signature'));
  });

  it.each([TIMESTAMP_HEADER, SIGNATURE_HEADER, EVENT_ID_HEADER])('a missing, empty or repeated %s', (name) => {
    const without = headers();
    delete without[name];
    expect(verify(BODY, without)).toEqual(rejected('missing_headers'));
    const fetchHeaders = new Headers(BASE_HEADERS);
    fetchHeaders.delete(name);
    expect(verify(BODY, fetchHeaders)).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [name]: undefined }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [name]: '' }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [name]: '   ' }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [name]: [] }))).toEqual(rejected('missing_headers'));
    // Several values (an array, or the same name twice in different case) are ambiguous.
    const value = headers()[name] as string;
    expect(verify(BODY, headers({ [name]: [value, value] }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, { ...headers(), [name.toUpperCase()]: value })).toEqual(rejected('missing_headers'));
  });

  it('no headers at all', () => {
    expect(verify(BODY, {})).toEqual(rejected('missing_headers'));
    expect(verify(BODY, new Headers())).toEqual(rejected('missing_headers'));
  });

  it.each(['abc', '1773570600.5', '-1773570600', '+1773570600', '1e9', '0x69b6894', '17735706OO', '1773570600 1', '１７７３５７０６００', '9'.repeat(16)])(
    'a timestamp that is not decimal seconds: %j',
    (value) => {
      // Signed correctly over the bad value, so only the format can reject it.
      const h = headers({ [TIMESTAMP_HEADER]: value, [SIGNATURE_HEADER]: hmacHex(SECRET, value, BODY) });
      expect(verify(BODY, h)).toEqual(rejected('invalid_timestamp'));
    },
  );

  it('a stale or future timestamp, with an injected clock; 300 s either way is still fine', () => {
    expect(DEFAULT_TOLERANCE_SECONDS).toBe(300);
    const ok = { ok: true };
    expect(verify(BODY, headers(), SECRET, { now: at(TIMESTAMP + 300) })).toMatchObject(ok);
    expect(verify(BODY, headers(), SECRET, { now: () => (TIMESTAMP + 300) * 1000 + 999 })).toMatchObject(ok);
    expect(verify(BODY, headers(), SECRET, { now: at(TIMESTAMP + 301) })).toEqual(rejected('timestamp_too_old'));
    expect(verify(BODY, headers(), SECRET, { now: at(TIMESTAMP + 86_400) })).toEqual(rejected('timestamp_too_old'));
    expect(verify(BODY, headers(), SECRET, { now: at(TIMESTAMP - 300) })).toMatchObject(ok);
    expect(verify(BODY, headers(), SECRET, { now: at(TIMESTAMP - 301) })).toEqual(rejected('timestamp_in_future'));
    expect(verify(BODY, headers(), SECRET, { now: at(0) })).toEqual(rejected('timestamp_in_future'));
  });

  it('toleranceSeconds changes the window; an unusable value falls back to 300', () => {
    const tolerance = (toleranceSeconds: number, offset: number) => verify(BODY, headers(), SECRET, { toleranceSeconds, now: at(TIMESTAMP + offset) } as never);
    expect(tolerance(10, 10)).toMatchObject({ ok: true });
    expect(tolerance(10, 11)).toEqual(rejected('timestamp_too_old'));
    expect(tolerance(10, -11)).toEqual(rejected('timestamp_in_future'));
    expect(tolerance(0, 0)).toMatchObject({ ok: true });
    expect(tolerance(0, 1)).toEqual(rejected('timestamp_too_old'));
    for (const bad of [Number.NaN, -5, Number.POSITIVE_INFINITY]) {
      expect(tolerance(bad, 300)).toMatchObject({ ok: true });
      expect(tolerance(bad, 301)).toEqual(rejected('timestamp_too_old'));
    }
  });

  it('uses the real clock by default', () => {
    const now = Math.floor(Date.now() / 1000);
    const h = { [TIMESTAMP_HEADER]: String(now), [SIGNATURE_HEADER]: hmacHex(SECRET, now, BODY), [EVENT_ID_HEADER]: EVENT_ID };
    expect(verifyWebhook(BODY, h, SECRET)).toMatchObject({ ok: true, timestamp: now });
    const old = now - 3600;
    const stale = { ...h, [TIMESTAMP_HEADER]: String(old), [SIGNATURE_HEADER]: hmacHex(SECRET, old, BODY) };
    expect(verifyWebhook(BODY, stale, SECRET)).toEqual(rejected('timestamp_too_old'));
  });

  it('checks the signature before the clock: an unsigned stale request is invalid_signature', () => {
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: '0'.repeat(64) }), SECRET, { now: at(TIMESTAMP + 10_000) })).toEqual(rejected('invalid_signature'));
  });

  it('signatures of the wrong length or not hex, without throwing', () => {
    for (const signature of [
      SIGNATURE.slice(0, -1),
      SIGNATURE.slice(0, -2),
      SIGNATURE + '0',
      SIGNATURE + '00',
      SIGNATURE.slice(0, 32),
      SIGNATURE + SIGNATURE,
      'a',
      SIGNATURE.slice(0, -1) + 'g',
      SIGNATURE.slice(0, -1) + ' ',
      'sha256=' + SIGNATURE,
      'v1,' + SIGNATURE,
      Buffer.from(SIGNATURE, 'hex').toString('base64'),
      Buffer.from(SIGNATURE, 'hex').toString('latin1'),
      `${SIGNATURE}, ${SIGNATURE}`,
    ]) {
      expect(verify(BODY, headers({ [SIGNATURE_HEADER]: signature })), signature).toEqual(rejected('invalid_signature'));
    }
  });

  it('hex case: accepted case-insensitively (the 32 bytes are compared, not the text)', () => {
    // Documented output is lowercase; a proxy or framework changing the case changes no byte.
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: SIGNATURE.toUpperCase() }))).toMatchObject({ ok: true });
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: SIGNATURE.slice(0, 10).toUpperCase() + SIGNATURE.slice(10) }))).toMatchObject({ ok: true });
  });

  it('array header values: several values are rejected, one value is that value', () => {
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: [SIGNATURE, '0'.repeat(64)] }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: ['0'.repeat(64), SIGNATURE] }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [TIMESTAMP_HEADER]: [String(TIMESTAMP), String(TIMESTAMP)] }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [EVENT_ID_HEADER]: [EVENT_ID, 'evt_other'] }))).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers({ [SIGNATURE_HEADER]: [SIGNATURE.slice(1)] }))).toEqual(rejected('invalid_signature'));
    // fetch Headers joins repeated values with ", ": that is not one signature or one timestamp.
    const joined = new Headers(BASE_HEADERS);
    joined.append(SIGNATURE_HEADER, SIGNATURE);
    expect(verify(BODY, joined)).toEqual(rejected('invalid_signature'));
    const joinedTs = new Headers(BASE_HEADERS);
    joinedTs.append(TIMESTAMP_HEADER, String(TIMESTAMP));
    expect(verify(BODY, joinedTs)).toEqual(rejected('invalid_timestamp'));
  });

  it('a correctly signed body that is not a webhook event is invalid_body', () => {
    const signed = (body: string | Buffer, eventId = EVENT_ID) =>
      verify(body, headers({ [SIGNATURE_HEADER]: hmacHex(SECRET, TIMESTAMP, body), [EVENT_ID_HEADER]: eventId }));
    expect(signed('')).toEqual(rejected('invalid_body'));
    expect(signed('not json')).toEqual(rejected('invalid_body'));
    expect(signed('null')).toEqual(rejected('invalid_body'));
    expect(signed('[]')).toEqual(rejected('invalid_body'));
    expect(signed('{}')).toEqual(rejected('invalid_body'));
    expect(signed(BODY.replace('alerts.triggered', 'alerts.exploded'))).toEqual(rejected('invalid_body'));
    expect(signed(JSON.stringify({ event_type: 'alerts.triggered', alert: null }))).toEqual(rejected('invalid_body'));
    expect(signed(JSON.stringify({ event_type: 'alerts.triggered', alert: { id: 'ar_1' } }))).toEqual(rejected('invalid_body'));
    expect(signed(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toEqual(rejected('invalid_body')); // not UTF-8
    // The header id is not signed; the body's is, and they must agree.
    expect(signed(BODY, 'evt_somethingElse')).toEqual(rejected('invalid_body'));
    expect(signed(BODY.replace(`"id":"${EVENT_ID}"`, '"id":42'))).toEqual(rejected('invalid_body'));
    // Fields beyond the known shape are passed through (forward compatible).
    const extra = BODY.replace('"created_at"', '"future_field":{"x":1},"created_at"');
    expect(signed(extra)).toMatchObject({ ok: true, event: { future_field: { x: 1 } } });
  });
});

describe('several secrets', () => {
  const OTHER = 'whsec_other0123456789abcdefghijklmnopqrstuvwxyzAB';

  it('verifies when any secret of a list signed it, wherever it stands in the list', () => {
    const expected = { ok: true, event: JSON.parse(BODY), eventId: EVENT_ID, timestamp: TIMESTAMP };
    expect(verify(BODY, headers(), [SECRET] as never)).toEqual(expected);
    expect(verifyWebhook(BODY, headers(), [OTHER, SECRET], { now: NOW })).toEqual(expected);
    expect(verifyWebhook(BODY, headers(), [SECRET, OTHER, SECRET_2], { now: NOW })).toEqual(expected);
    expect(verifyWebhook(BODY, new Headers(BASE_HEADERS), Object.freeze([OTHER, SECRET]), { now: NOW })).toEqual(expected);
  });

  it('rejects as invalid_signature when none signed it, the list is empty or holds no usable secret', () => {
    expect(verifyWebhook(BODY, headers(), [OTHER, SECRET_2], { now: NOW })).toEqual(rejected('invalid_signature'));
    expect(verifyWebhook(BODY, headers(), [], { now: NOW })).toEqual(rejected('invalid_signature'));
    expect(verifyWebhook(BODY, headers(), ['', ''], { now: NOW })).toEqual(rejected('invalid_signature'));
    expect(verifyWebhook(BODY, headers(), [null, 42, { SECRET }, [SECRET]] as never, { now: NOW })).toEqual(rejected('invalid_signature'));
    // Usable ones among unusable ones still count.
    expect(verifyWebhook(BODY, headers(), [null, '', SECRET] as never, { now: NOW })).toMatchObject({ ok: true });
  });

  it('gives the reasons of the secret that signed it: its timestamp, its body', () => {
    expect(verifyWebhook(BODY, headers(), [OTHER, SECRET], { now: at(TIMESTAMP + 301) })).toEqual(rejected('timestamp_too_old'));
    expect(verifyWebhook(BODY, headers(), [OTHER, SECRET], { now: at(TIMESTAMP - 301) })).toEqual(rejected('timestamp_in_future'));
    const notAnEvent = '{"hello":"world"}';
    const h = headers({ [SIGNATURE_HEADER]: hmacHex(SECRET, TIMESTAMP, notAnEvent) });
    expect(verifyWebhook(notAnEvent, h, [OTHER, SECRET], { now: NOW })).toEqual(rejected('invalid_body'));
    // Header problems come first, whatever the secrets.
    expect(verifyWebhook(BODY, headers({ [EVENT_ID_HEADER]: undefined }), [SECRET], { now: NOW })).toEqual(rejected('missing_headers'));
  });
});

describe('never throws', () => {
  const anyHeaders = fc.oneof(
    fc.anything(),
    fc.dictionary(fc.constantFrom(TIMESTAMP_HEADER, SIGNATURE_HEADER, EVENT_ID_HEADER, 'X-PolyAI-Signature', 'content-type'), fc.anything()),
    fc.record({
      [TIMESTAMP_HEADER]: fc.oneof(fc.string(), fc.integer().map(String), fc.constant(String(TIMESTAMP)), fc.array(fc.string())),
      [SIGNATURE_HEADER]: fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-fA-F]{0,80}$/), fc.constant(SIGNATURE), fc.array(fc.string())),
      [EVENT_ID_HEADER]: fc.oneof(fc.string(), fc.constant(EVENT_ID)),
    }),
  );
  const anyBody = fc.oneof(fc.string(), fc.uint8Array().map((u) => Buffer.from(u)), fc.constant(BODY), fc.anything());
  const anyOptions = fc.oneof(
    fc.anything(),
    fc.record({ toleranceSeconds: fc.oneof(fc.double(), fc.anything()), now: fc.oneof(fc.constant(NOW), fc.constant(() => Number.NaN), fc.anything()) }, { requiredKeys: [] }),
  );

  it('on garbage of any type it answers { ok: false, reason }, accepting only the genuinely signed vector', () => {
    const reasons = new Set(['missing_headers', 'invalid_timestamp', 'timestamp_too_old', 'timestamp_in_future', 'invalid_signature', 'invalid_body']);
    fc.assert(
      fc.property(anyBody, anyHeaders, fc.oneof(fc.string(), fc.constant(SECRET), fc.anything(), fc.array(fc.oneof(fc.constant(SECRET), fc.anything()))), anyOptions, (body, h, secret, options) => {
        let result: VerifyResult | undefined;
        expect(() => (result = verifyWebhook(body as never, h as never, secret as never, options as never))).not.toThrow();
        // The generators can (rarely) pick every part of the real test vector at once: that,
        // and only that, may verify.
        const given = h as Record<string, unknown> | null | undefined;
        const genuine =
          body === BODY &&
          (secret === SECRET || (Array.isArray(secret) && secret.includes(SECRET))) &&
          given?.[SIGNATURE_HEADER] === SIGNATURE &&
          given?.[TIMESTAMP_HEADER] === String(TIMESTAMP) &&
          given?.[EVENT_ID_HEADER] === EVENT_ID;
        if (result!.ok) expect(genuine).toBe(true);
        else expect(reasons.has(result!.reason)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('on hostile objects: throwing getters, proxies, a clock that throws', () => {
    const throwing = new Proxy({}, { ownKeys: () => { throw new Error('boom'); } });
    expect(verifyWebhook(BODY, throwing as never, SECRET)).toEqual(rejected('missing_headers'));
    const getter = Object.defineProperty({}, SIGNATURE_HEADER, { enumerable: true, get: () => { throw new Error('boom'); } });
    expect(verifyWebhook(BODY, getter as never, SECRET)).toEqual(rejected('missing_headers'));
    const badGet = { get: () => { throw new Error('boom'); } };
    expect(verifyWebhook(BODY, badGet as never, SECRET)).toEqual(rejected('missing_headers'));
    expect(verify(BODY, headers(), SECRET, { now: () => { throw new Error('boom'); } })).toEqual(rejected('invalid_signature'));
    expect(verifyWebhook(BODY, null as never, SECRET)).toEqual(rejected('missing_headers'));
    expect(verifyWebhook(null as never, headers(), SECRET, { now: NOW })).toEqual(rejected('invalid_body'));
    expect(verifyWebhook(BODY, headers(), null as never, { now: NOW })).toEqual(rejected('invalid_signature'));
  });

  it('a correct signature over any body verifies exactly when the body is an event; any change breaks it', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.constant(BODY)), fc.string({ minLength: 1 }), fc.integer({ min: 0, max: 2 ** 40 }), (body, secret, timestamp) => {
        const h = { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: hmacHex(secret, timestamp, body), [EVENT_ID_HEADER]: EVENT_ID };
        const result = verifyWebhook(body, h, secret, { now: at(timestamp) });
        expect(result.ok || result.reason === 'invalid_body').toBe(true);
        expect(verifyWebhook(body + 'x', h, secret, { now: at(timestamp) })).toEqual(rejected('invalid_signature'));
      }),
      { numRuns: 300 },
    );
  });
});

describe('payloads signed by the service', () => {
  const START = Date.parse('2026-03-15T10:30:00.000Z');
  const clock = testClock(START);
  let server: TestServer;

  beforeEach(async () => {
    clock.set(START);
    server = await startTestServer({ clock });
  });
  afterEach(async () => {
    await server.close();
  });

  const KNOWN_EVENT_KEYS = ['id', 'event_type', 'created_at', 'test', 'alert'];
  const KNOWN_ALERT_KEYS = ['id', 'name', 'project_id', 'metric', 'operator', 'threshold_value', 'window_duration', 'current_value', 'previous_state', 'triggered_at', 'resolved_at'];

  /** Everything a receiver can rely on for one verified event. */
  function expectWellFormed(result: VerifyResult, body: string): WebhookEvent {
    expect(result).toMatchObject({ ok: true });
    if (!result.ok) throw new Error(result.reason);
    expect(result.event).toEqual(JSON.parse(body));
    expect(result.event.id).toBe(result.eventId);
    expect(validateComponent('WebhookEvent', result.event)).toEqual([]);
    // The package's types describe every field the service sends.
    for (const key of Object.keys(result.event)) expect(KNOWN_EVENT_KEYS).toContain(key);
    for (const key of Object.keys(result.event.alert)) expect(KNOWN_ALERT_KEYS).toContain(key);
    return result.event;
  }

  async function send(events: Record<string, unknown>[]) {
    const res = await server.request('POST', '/v1/telemetry/events', { body: { events } });
    expect(res.status, res.text).toBe(202);
  }

  it('engine events signed with webhookHeaders verify, and validate against the published WebhookEvent', async () => {
    const latency = await server.request('POST', '/v1/alert-rules', { body: ruleBody() });
    const errors = await server.request('POST', '/v1/alert-rules', {
      body: ruleBody({ name: 'API errors', project_id: null, metric: 'api_errors', operator: '>=', threshold_value: 2 }),
    });
    expect([latency.status, errors.status]).toEqual([201, 201]);
    await send([
      ...Array.from({ length: 20 }, () => ({ type: 'turn', project_id: 'proj_abc123', latency_ms: 1875 })),
      { type: 'api_error' },
      { type: 'api_error', project_id: 'proj_abc123' },
    ]);
    // The errors leave the window: that rule resolves (the latency rule goes to no_data, silently).
    clock.advance(5 * 60_000);
    await server.service.engine.tick();

    const outbox = await server.service.store.alertEvents.list();
    expect(outbox.map((e) => `${e.event_type} ${e.rule_id}`).sort()).toEqual(
      [`alerts.triggered ${latency.body.id}`, `alerts.triggered ${errors.body.id}`, `alerts.resolved ${errors.body.id}`].sort(),
    );
    const secret = 'whsec_' + 'k'.repeat(43);
    const timestamp = Math.floor(clock.now() / 1000);
    for (const row of outbox) {
      const h = webhookHeaders({ 'X-Team': 'voice' }, [secret], row.id, timestamp, row.payload);
      expect(h[SIGNATURE_HEADER]).toBe(hmacHex(secret, timestamp, row.payload));
      const event = expectWellFormed(verifyWebhook(row.payload, h, secret, { now: clock.now }), row.payload);
      expect(event.event_type).toBe(row.event_type);
      expect(event.alert.id).toBe(row.rule_id);
      if (event.event_type === 'alerts.resolved') {
        expect(event.alert).toMatchObject({ previous_state: 'alert', current_value: 0, resolved_at: new Date(clock.now()).toISOString() });
      }
      // Bytes on the wire are what the receiver gets: Buffer in, same answer.
      expect(verifyWebhook(Buffer.from(row.payload, 'utf8'), new Headers(h), secret, { now: clock.now })).toMatchObject({ ok: true });
      // Another endpoint's secret does not verify it; neither does a replay six minutes later.
      expect(verifyWebhook(row.payload, h, secret + 'x', { now: clock.now })).toEqual(rejected('invalid_signature'));
      expect(verifyWebhook(row.payload, h, secret, { now: () => clock.now() + 360_000 })).toEqual(rejected('timestamp_too_old'));
    }
  });

  it('what the delivery worker puts on the wire verifies with the endpoint secret', async () => {
    const endpoint = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ headers: { 'X-Team': 'voice' } }) });
    expect(endpoint.status, endpoint.text).toBe(201);
    const rule = await server.request('POST', '/v1/alert-rules', { body: ruleBody() });
    expect(rule.status, rule.text).toBe(201);
    clock.advance(1234);
    await send(Array.from({ length: 20 }, () => ({ type: 'turn', project_id: 'proj_abc123', latency_ms: 1875 })));

    const sent: WebhookRequest[] = [];
    const client: WebhookClient = {
      async send(request) {
        sent.push(request);
        return { statusCode: 200, errorClass: null, error: null, responseBody: '', durationMs: 1 };
      },
      async close() {},
    };
    const worker = createDeliveryWorker({
      instanceId: server.service.coordinator.instanceId,
      store: server.service.store,
      clock,
      logger: createLogger('silent'),
      client,
      retrySchedule: [0],
      concurrency: 4,
      perEndpointConcurrency: 4,
      pollIntervalMs: 1000,
      stopGraceMs: 100,
      autoStart: false,
    });
    await worker.drain();
    await worker.stop();

    expect(sent).toHaveLength(1);
    const request = sent[0]!;
    expect(request.headers['x-team']).toBeUndefined();
    expect(request.headers['X-Team']).toBe('voice');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers[TIMESTAMP_HEADER]).toBe(String(Math.floor(clock.now() / 1000)));
    const event = expectWellFormed(verifyWebhook(request.body, request.headers, endpoint.body.signing_secret, { now: clock.now }), request.body);
    expect(event).toMatchObject({ event_type: 'alerts.triggered', alert: { id: rule.body.id, name: rule.body.name, previous_state: 'no_data' } });
    expect(verifyWebhook(request.body, request.headers, 'whsec_wrong', { now: clock.now })).toEqual(rejected('invalid_signature'));

  });

  it('the test webhook (POST .../test) verifies and carries test: true', async () => {
    const endpoint = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody() });
    expect(endpoint.status, endpoint.text).toBe(201);
    const sent: WebhookRequest[] = [];
    const deliveries = createDeliveriesService({
      deliveries: server.service.store.deliveries,
      endpoints: server.service.store.webhookEndpoints,
      client: {
        async send(request) {
          sent.push(request);
          return { statusCode: 204, errorClass: null, error: null, responseBody: null, durationMs: 1 };
        },
        async close() {},
      },
      clock,
      onQueued: () => {},
    });
    const accountId = await accountOf(endpoint.body.id);
    const outcome = await deliveries.sendTest(accountId, endpoint.body.id);
    expect(outcome.delivered).toBe(true);
    const request = sent[0]!;
    const event = expectWellFormed(verifyWebhook(request.body, request.headers, endpoint.body.signing_secret, { now: clock.now }), request.body);
    expect(event.test).toBe(true);
    expect(outcome.eventId).toBe(event.id);
  });

  async function accountOf(endpointId: string): Promise<string> {
    const row = await server.service.store.db.selectFrom('webhook_endpoints').select('account_id').where('id', '=', endpointId).executeTakeFirstOrThrow();
    return row.account_id;
  }
});
