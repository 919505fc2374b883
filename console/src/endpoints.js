/* global setInterval, clearInterval */
// Webhook endpoints: create (the signing secret is shown once), rotate the secret, enable,
// disable, delete, send a test event, and each endpoint's recent deliveries with their
// attempts, refreshed when the stream reports an attempt (or every 5 s without a stream).
import { html } from 'htm/preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, seg } from './api.js';
import { EVENT_TYPES, absoluteTime, excerpt } from './format.js';
import { ConfirmButton, ErrorMessage, RelativeTime, SecretBox, fieldError, useNow } from './ui.js';

const POLL_MS = 5000;

/** "Name: value" lines into a header map; a line without a colon is the operator's mistake to fix. */
function parseHeaders(text) {
  const headers = {};
  const bad = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) bad.push(i + 1);
    else headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return { headers, bad };
}

function EndpointForm({ api, onCreated, onCancel }) {
  const [fields, setFields] = useState({ name: '', url: 'https://', types: [...EVENT_TYPES], timeout: '', headers: '' });
  const [error, setError] = useState(null);
  const [saving, setSaving] = useState(false);
  const firstRef = useRef(null);
  useEffect(() => firstRef.current?.focus(), []);

  const set = (name) => (e) => setFields((f) => ({ ...f, [name]: e.currentTarget.value }));
  const toggleType = (type) => (e) => {
    const on = e.currentTarget.checked;
    setFields((f) => ({ ...f, types: on ? [...f.types, type] : f.types.filter((t) => t !== type) }));
  };

  async function submit(event) {
    event.preventDefault();
    setError(null);
    const { headers, bad } = parseHeaders(fields.headers);
    if (bad.length > 0) {
      setError(new ApiError(`Custom headers: line ${bad.join(', ')} must look like “Name: value”.`, { errors: [{ field: 'headers', message: 'one “Name: value” per line' }] }));
      return;
    }
    const body = { name: fields.name, url: fields.url.trim(), event_types: fields.types };
    if (Object.keys(headers).length > 0) body.headers = headers;
    const timeout = fields.timeout.trim();
    if (timeout !== '') body.timeout_ms = /^\d+$/.test(timeout) ? Number(timeout) : timeout;
    setSaving(true);
    try {
      onCreated(await api.post('/v1/webhook-endpoints', body));
    } catch (e) {
      setError(e);
    } finally {
      setSaving(false);
    }
  }

  const invalid = (field) => (fieldError(error, field) ? 'field invalid' : 'field');
  const problem = (field, id) => {
    const p = fieldError(error, field);
    return p && html`<p class="field-error" id=${id}>${p.message}</p>`;
  };
  return html`<section class="panel" aria-labelledby="endpoint-form-title">
    <h2 id="endpoint-form-title">New endpoint</h2>
    <form class="form" onSubmit=${submit} novalidate>
      <div class=${invalid('name')}>
        <label for="ep-name">Name</label>
        <input id="ep-name" ref=${firstRef} value=${fields.name} onInput=${set('name')} autocomplete="off" />
        ${problem('name', 'ep-name-error')}
      </div>
      <div class=${invalid('url')}>
        <label for="ep-url">URL</label>
        <input id="ep-url" type="url" value=${fields.url} onInput=${set('url')} aria-describedby="ep-url-hint" autocomplete="off" />
        <p class="hint" id="ep-url-hint">HTTPS only. Every webhook is signed with the endpoint's secret.</p>
        ${problem('url', 'ep-url-error')}
      </div>
      <fieldset class=${invalid('event_types')}>
        <legend>Event types</legend>
        ${EVENT_TYPES.map(
          (type) => html`<div class="checkbox">
            <input type="checkbox" id=${`ep-type-${type}`} checked=${fields.types.includes(type)} onChange=${toggleType(type)} />
            <label for=${`ep-type-${type}`}>${type}</label>
          </div>`,
        )}
        ${problem('event_types', 'ep-types-error')}
      </fieldset>
      <div class=${invalid('timeout_ms')}>
        <label for="ep-timeout">Timeout (ms, optional)</label>
        <input id="ep-timeout" inputmode="numeric" value=${fields.timeout} onInput=${set('timeout')} placeholder="5000" aria-describedby="ep-timeout-hint" />
        <p class="hint" id="ep-timeout-hint">1000 to 30000; 5000 when empty.</p>
        ${problem('timeout_ms', 'ep-timeout-error')}
      </div>
      <div class=${invalid('headers')}>
        <label for="ep-headers">Custom headers (optional)</label>
        <textarea id="ep-headers" rows="3" value=${fields.headers} onInput=${set('headers')} aria-describedby="ep-headers-hint"></textarea>
        <p class="hint" id="ep-headers-hint">One “Name: value” per line.</p>
      </div>
      <${ErrorMessage} error=${error} />
      <div class="actions">
        <button type="submit" class="primary" disabled=${saving}>${saving ? 'Creating…' : 'Create endpoint'}</button>
        <button type="button" onClick=${onCancel}>Cancel</button>
      </div>
    </form>
  </section>`;
}

function attemptOutcome(a) {
  if (a.status_code !== null && a.status_code !== undefined) return `HTTP ${a.status_code}`;
  return a.error_class ? `no answer: ${a.error_class}` : 'no answer';
}

function AttemptRow({ attempt, label }) {
  const ok = attempt.status_code >= 200 && attempt.status_code < 300;
  return html`<tr>
    <td>${label ?? `#${attempt.attempt}`}</td>
    <td><time datetime=${attempt.started_at}>${absoluteTime(attempt.started_at)}</time></td>
    <td><span class=${`outcome ${ok ? 'outcome-ok' : 'outcome-bad'}`}>${attemptOutcome(attempt)}</span></td>
    <td class="num">${attempt.duration_ms} ms</td>
    <td>${attempt.error_class ?? '—'}${attempt.error ? html`: <span class="muted">${excerpt(attempt.error, 160)}</span>` : ''}</td>
    <td><code class="body-excerpt">${excerpt(attempt.response_body) || '—'}</code></td>
  </tr>`;
}

function AttemptsTable({ children, caption }) {
  return html`<div class="table-wrap"><table class="attempts">
    <caption class="visually-hidden">${caption}</caption>
    <thead>
      <tr><th scope="col">Attempt</th><th scope="col">Started</th><th scope="col">Outcome</th><th scope="col">Duration</th><th scope="col">Error</th><th scope="col">Answer (first bytes)</th></tr>
    </thead>
    <tbody>${children}</tbody>
  </table></div>`;
}

function Deliveries({ api, endpoint, live, mode, testResult }) {
  const now = useNow();
  const [list, setList] = useState({ data: null, error: null });
  const [retryError, setRetryError] = useState(null);
  const base = `/v1/webhook-endpoints/${seg(endpoint.id)}`;

  const load = useCallback(async () => {
    try {
      setList({ data: (await api.get(`${base}/deliveries`)).data, error: null });
    } catch (e) {
      setList((l) => ({ ...l, error: e }));
    }
  }, [api, base]);

  useEffect(() => void load(), [load]);
  useEffect(() => {
    const offAttempt = live.on('attempt', (a) => a.endpoint_id === endpoint.id && void load());
    const offReset = live.on('reset', () => void load());
    // Without a stream nothing reports attempts: look every few seconds instead.
    const timer = mode === 'live' ? null : setInterval(() => void load(), POLL_MS);
    return () => {
      offAttempt();
      offReset();
      if (timer !== null) clearInterval(timer);
    };
  }, [live, endpoint.id, load, mode]);

  async function retry(delivery) {
    setRetryError(null);
    try {
      await api.post(`${base}/deliveries/${seg(delivery.id)}/retry`);
      await load();
    } catch (e) {
      setRetryError(e);
    }
  }

  return html`<section class="deliveries" aria-label=${`Deliveries of ${endpoint.name}`}>
    ${testResult &&
    html`<div class="test-result" role="status">
      <h4>Latest attempt: test event <code>${testResult.event_id}</code></h4>
      <p>
        <span class=${`outcome ${testResult.delivered ? 'outcome-ok' : 'outcome-bad'}`}>${testResult.delivered ? 'delivered' : 'not delivered'}</span>
        ${' '}${attemptOutcome(testResult)} in ${testResult.duration_ms} ms${testResult.error ? html` · <span class="muted">${testResult.error}</span>` : ''}
      </p>
      ${testResult.response_body && html`<p>Answer: <code class="body-excerpt">${excerpt(testResult.response_body, 300)}</code></p>`}
    </div>`}
    <h4>Recent deliveries</h4>
    <${ErrorMessage} error=${list.error} />
    <${ErrorMessage} error=${retryError} />
    ${list.data === null && !list.error && html`<p class="muted">Loading deliveries…</p>`}
    ${list.data?.length === 0 && html`<p class="muted">No deliveries yet.</p>`}
    ${list.data?.length > 0 &&
    html`<ul class="delivery-list">
      ${list.data.map(
        (d) => html`<li key=${d.id} class="delivery">
          <div class="delivery-head">
            <span class=${`delivery-status status-${d.status}`}>${d.status}</span>
            <code>${d.event_type}</code>
            <span class="muted">${d.attempt_count} attempt${d.attempt_count === 1 ? '' : 's'} · created <${RelativeTime} iso=${d.created_at} now=${now} /></span>
            ${d.next_attempt_at && html`<span class="muted">· next attempt <${RelativeTime} iso=${d.next_attempt_at} now=${now} /></span>`}
            <button type="button" onClick=${() => retry(d)} aria-label=${`Retry delivery ${d.id} now`}>Retry now</button>
          </div>
          ${d.last_error && html`<p class="muted">Last error: ${excerpt(d.last_error, 200)}</p>`}
          ${d.attempts.length > 0 &&
          html`<${AttemptsTable} caption=${`Attempts of delivery ${d.id}`}>
            ${d.attempts.map((a) => html`<${AttemptRow} key=${a.attempt} attempt=${a} />`)}
          <//>`}
        </li>`,
      )}
    </ul>`}
  </section>`;
}

function EndpointCard({ api, live, mode, endpoint, onChanged, onRemoved }) {
  const [secret, setSecret] = useState(null);
  const [testResult, setTestResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState('');
  const base = `/v1/webhook-endpoints/${seg(endpoint.id)}`;

  async function act(name, work) {
    setBusy(name);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy('');
    }
  }
  const test = () =>
    act('test', async () => {
      const r = await api.post(`${base}/test`);
      // The test's single attempt, shaped like the attempts of a delivery.
      setTestResult({ ...r, started_at: new Date().toISOString() });
    });
  const rotate = () => act('rotate', async () => setSecret((await api.post(`${base}/rotate-secret`)).signing_secret));
  const toggle = () => act('toggle', async () => onChanged(await api.patch(base, { enabled: !endpoint.enabled })));
  const remove = () =>
    act('delete', async () => {
      await api.del(base);
      onRemoved(endpoint.id);
    });

  return html`<li class="card" data-endpoint-id=${endpoint.id}>
    <div class="card-head">
      <h3>${endpoint.name}${!endpoint.enabled && html` <span class="tag">disabled</span>`}</h3>
      <code class="url">${endpoint.url}</code>
    </div>
    <p class="muted">Events: ${endpoint.event_types.join(', ')} · timeout ${endpoint.timeout_ms} ms${Object.keys(endpoint.headers ?? {}).length > 0 ? ` · headers: ${Object.keys(endpoint.headers).join(', ')}` : ''}</p>
    <div class="actions">
      <button type="button" class="primary" onClick=${test} disabled=${busy !== ''}>${busy === 'test' ? 'Sending…' : 'Send test event'}</button>
      <${ConfirmButton}
        label="Rotate secret"
        confirmLabel="Rotate now"
        question="The current secret stops signing at once. Rotate?"
        disabled=${busy !== ''}
        onConfirm=${rotate}
      />
      <button type="button" onClick=${toggle} disabled=${busy !== ''}>${endpoint.enabled ? 'Disable' : 'Enable'}</button>
      <${ConfirmButton} label="Delete" confirmLabel="Delete endpoint" question=${`Delete “${endpoint.name}”? Pending deliveries are cancelled.`} disabled=${busy !== ''} onConfirm=${remove} />
    </div>
    <${ErrorMessage} error=${error} />
    ${secret && html`<${SecretBox} title=${`New signing secret of “${endpoint.name}”`} secret=${secret} onDone=${() => setSecret(null)} />`}
    <${Deliveries} api=${api} endpoint=${endpoint} live=${live} mode=${mode} testResult=${testResult} />
  </li>`;
}

export function EndpointsPage({ api, live, state, heading }) {
  const [list, setList] = useState({ data: null, error: null });
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState(null); // { name, signing_secret } until dismissed

  const load = useCallback(async () => {
    try {
      setList({ data: (await api.get('/v1/webhook-endpoints')).data, error: null });
    } catch (e) {
      setList((l) => ({ ...l, error: e }));
    }
  }, [api]);
  useEffect(() => void load(), [load]);
  useEffect(() => live.on('reset', () => void load()), [live, load]);

  const replace = (endpoint) => setList((l) => ({ ...l, data: l.data.map((e) => (e.id === endpoint.id ? endpoint : e)) }));
  const drop = (id) => setList((l) => ({ ...l, data: l.data.filter((e) => e.id !== id) }));

  return html`<div>
    <div class="page-head">
      ${heading('Endpoints')}
      ${!creating && html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New endpoint</button>`}
    </div>
    ${creating &&
    html`<${EndpointForm}
      api=${api}
      onCreated=${(endpoint) => {
        const { signing_secret: secret, ...rest } = endpoint;
        setCreated({ name: rest.name, secret });
        setCreating(false);
        setList((l) => ({ ...l, data: [...(l.data ?? []), rest] }));
      }}
      onCancel=${() => setCreating(false)}
    />`}
    ${created && html`<${SecretBox} title=${`Signing secret of “${created.name}”`} secret=${created.secret} onDone=${() => setCreated(null)} />`}
    <${ErrorMessage} error=${list.error} />
    ${list.data === null && !list.error && html`<p class="muted">Loading endpoints…</p>`}
    ${list.data?.length === 0 && html`<p class="empty">No endpoints yet: create one.</p>`}
    ${list.data?.length > 0 &&
    html`<ul class="cards">
      ${list.data.map(
        (endpoint) => html`<${EndpointCard}
          key=${endpoint.id}
          api=${api}
          live=${live}
          mode=${state.mode}
          endpoint=${endpoint}
          onChanged=${replace}
          onRemoved=${drop}
        />`,
      )}
    </ul>`}
  </div>`;
}
