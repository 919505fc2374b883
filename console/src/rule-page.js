/* global location */
// One rule: its details, its metric over the last hour or day with the threshold and the
// alert periods, and its history of state changes. Both refresh when the stream (or the
// polling fallback) reports a transition of this rule.
import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { seg } from './api.js';
import { SeriesChart } from './chart.js';
import { absoluteTime, conditionOf, formatValue, scopeOf } from './format.js';
import { RuleForm } from './rule-form.js';
import { useRuleActions } from './rules.js';
import { ConfirmButton, ErrorMessage, RelativeTime, StateBadge, useNow } from './ui.js';

const RANGES = {
  hour: { label: 'Last hour', spanMs: 3_600_000, step: '10s' },
  day: { label: 'Last day', spanMs: 86_400_000, step: '1m' },
};

/**
 * The last hour is the server's default range (up to its own now, so the newest telemetry
 * shows). A day is asked up to this browser's now: the server takes a `to` at most a minute
 * ahead of its clock as now, and a day at one minute is exactly its limit of 1,440 points.
 */
function seriesPath(id, range) {
  const { spanMs, step } = RANGES[range];
  const path = `/v1/alert-rules/${seg(id)}/series?step=${step}`;
  if (range === 'hour') return path;
  const to = Date.now();
  const iso = (ms) => encodeURIComponent(new Date(ms).toISOString());
  return `${path}&from=${iso(to - spanMs)}&to=${iso(to)}`;
}

function Timeline({ items, now, metric }) {
  if (items.length === 0) return html`<p class="empty">No state changes yet.</p>`;
  return html`<ol class="timeline">
    ${items.map(
      (t) => html`<li key=${`${t.at}-${t.to_state}-${t.event_id}`}>
        <div class="timeline-when">
          <time datetime=${t.at}>${absoluteTime(t.at)}</time>
          <span class="muted"> (<${RelativeTime} iso=${t.at} now=${now} />)</span>
        </div>
        <div class="timeline-what">
          <${StateBadge} state=${t.from_state} /> <span aria-label="to">→</span> <${StateBadge} state=${t.to_state} />
          <span> value ${formatValue(t.value, metric)}</span>
          <span class="muted"> · condition then ${t.operator} ${t.threshold_value} over ${t.window_duration}</span>
          <span class="muted"> · ${t.event_type ? html`sent <code>${t.event_type}</code>` : 'no event sent'}</span>
        </div>
      </li>`,
    )}
  </ol>`;
}

export function RulePage({ api, live, state, id, heading }) {
  const now = useNow();
  const rule = state.rules?.find((r) => r.id === id) ?? null;
  const [missing, setMissing] = useState(null);
  const [range, setRange] = useState('hour');
  const [series, setSeries] = useState({ data: null, error: null });
  const [history, setHistory] = useState({ items: [], next: null, error: null, loaded: false });
  const [editing, setEditing] = useState(false);
  const actions = useRuleActions(api, live);

  // A rule the list does not hold (yet): ask for it, to tell "loading" from "no such rule".
  useEffect(() => {
    if (rule || state.rules === null) return;
    api.get(`/v1/alert-rules/${seg(id)}`).then(
      (r) => live.upsert(r),
      (e) => setMissing(e),
    );
  }, [api, live, id, rule === null, state.rules === null]);

  const loadSeries = useCallback(async () => {
    try {
      setSeries({ data: await api.get(seriesPath(id, range)), error: null });
    } catch (e) {
      setSeries((s) => ({ data: s.data, error: e }));
    }
  }, [api, id, range]);

  const loadHistory = useCallback(async () => {
    try {
      const page = await api.get(`/v1/alert-rules/${seg(id)}/history?limit=50`);
      setHistory({ items: page.data, next: page.next_cursor, error: null, loaded: true });
    } catch (e) {
      setHistory((h) => ({ ...h, error: e, loaded: true }));
    }
  }, [api, id]);

  async function older() {
    try {
      const page = await api.get(`/v1/alert-rules/${seg(id)}/history?limit=50&cursor=${encodeURIComponent(history.next)}`);
      setHistory((h) => ({ items: [...h.items, ...page.data], next: page.next_cursor, error: null, loaded: true }));
    } catch (e) {
      setHistory((h) => ({ ...h, error: e }));
    }
  }

  useEffect(() => void loadSeries(), [loadSeries]);
  useEffect(() => void loadHistory(), [loadHistory]);
  useEffect(() => {
    const refresh = (event) => {
      if (event && event.rule_id !== undefined && event.rule_id !== id) return;
      void loadSeries();
      void loadHistory();
    };
    const offTransition = live.on('transition', refresh);
    const offReset = live.on('reset', () => refresh());
    return () => {
      offTransition();
      offReset();
    };
  }, [live, id, loadSeries, loadHistory]);

  if (!rule) {
    return html`<div>
      ${heading('Rule')}
      ${missing ? html`<${ErrorMessage} error=${missing} />` : html`<p class="muted">Loading the rule…</p>`}
      <p><a href="#/rules">Back to the rules</a></p>
    </div>`;
  }

  return html`<div>
    <p class="crumbs"><a href="#/rules">Rules</a> <span aria-hidden="true">›</span> ${rule.name}</p>
    <div class="page-head">
      ${heading(rule.name || rule.id)}
      <${StateBadge} state=${rule.current_state} />
    </div>
    <dl class="facts">
      <div><dt>Scope</dt><dd>${scopeOf(rule)}</dd></div>
      <div><dt>Metric</dt><dd>${rule.metric}</dd></div>
      <div><dt>Condition</dt><dd>${conditionOf(rule)} over ${rule.window_duration}</dd></div>
      <div><dt>Current value</dt><dd>${formatValue(rule.current_value, rule.metric)}</dd></div>
      <div><dt>Since</dt><dd><${RelativeTime} iso=${rule.since} now=${now} /></dd></div>
      <div><dt>Last evaluated</dt><dd><${RelativeTime} iso=${rule.last_evaluated_at} now=${now} /></dd></div>
      <div><dt>Enabled</dt><dd>${rule.enabled ? 'yes' : 'no'}</dd></div>
    </dl>
    <div class="actions">
      <button type="button" onClick=${() => setEditing(true)} disabled=${editing}>Edit</button>
      <button type="button" disabled=${actions.busy} onClick=${() => actions.toggle(rule)}>${rule.enabled ? 'Disable' : 'Enable'}</button>
      <${ConfirmButton}
        label="Delete"
        confirmLabel="Delete rule"
        question=${`Delete “${rule.name}” and its history?`}
        disabled=${actions.busy}
        onConfirm=${() => actions.remove(rule, () => (location.hash = '#/rules'))}
      />
    </div>
    <${ErrorMessage} error=${actions.error} />
    ${editing &&
    html`<${RuleForm}
      api=${api}
      rule=${rule}
      onSaved=${(saved) => {
        live.upsert(saved);
        setEditing(false);
        void loadSeries();
        void loadHistory();
      }}
      onCancel=${() => setEditing(false)}
    />`}

    <section class="panel" aria-labelledby="chart-title">
      <div class="section-head">
        <h2 id="chart-title">${rule.metric} over time</h2>
        <div class="toggle" role="group" aria-label="Range">
          ${Object.entries(RANGES).map(
            ([name, r]) => html`<button type="button" aria-pressed=${range === name ? 'true' : 'false'} onClick=${() => setRange(name)}>${r.label}</button>`,
          )}
          <button type="button" onClick=${() => void loadSeries()}>Refresh</button>
        </div>
      </div>
      <${ErrorMessage} error=${series.error} />
      ${series.data
        ? html`<${SeriesChart}
            points=${series.data.points}
            threshold=${series.data.threshold_value}
            operator=${series.data.operator}
            metric=${series.data.metric}
            title=${`${rule.name}, ${RANGES[range].label.toLowerCase()}`}
          />`
        : !series.error && html`<p class="muted">Loading the chart…</p>`}
    </section>

    <section class="panel" aria-labelledby="timeline-title">
      <h2 id="timeline-title">History</h2>
      <${ErrorMessage} error=${history.error} />
      ${history.loaded ? html`<${Timeline} items=${history.items} now=${now} metric=${rule.metric} />` : html`<p class="muted">Loading the history…</p>`}
      ${history.next && html`<button type="button" onClick=${older}>Older</button>`}
    </section>
  </div>`;
}
