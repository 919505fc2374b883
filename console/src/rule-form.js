/* global setTimeout, clearTimeout, AbortController */
// The form that creates or edits a rule, with a preview of what the rule would have done
// over the last hour (POST /v1/alert-rules/preview) drawn before anything is saved.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { seg } from './api.js';
import { SeriesChart } from './chart.js';
import { METRICS, OPERATORS, WINDOWS } from './format.js';
import { ErrorMessage, fieldError } from './ui.js';

const PREVIEW_DELAY_MS = 500;

/** The threshold as typed: a number when it reads as one, else the text, for the API to judge. */
function threshold(text) {
  const t = text.trim();
  if (t === '') return undefined;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

function bodyOf(fields) {
  const project = fields.project_id.trim();
  return {
    name: fields.name,
    project_id: project === '' ? null : project,
    metric: fields.metric,
    operator: fields.operator,
    threshold_value: threshold(fields.threshold_value),
    window_duration: fields.window_duration,
  };
}

function Field({ id, label, error, hint, children }) {
  const problem = fieldError(error, id.replace(/^rule-/, ''));
  return html`<div class=${`field${problem ? ' invalid' : ''}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
    ${problem && html`<p class="field-error" id=${`${id}-error`}>${problem.message}</p>`}
  </div>`;
}

/**
 * @param {{api: object, rule?: object, onSaved: (rule: object) => void, onCancel: () => void}} props
 *   `rule` edits that rule (PATCH); without it the form creates one (POST).
 */
export function RuleForm({ api, rule, onSaved, onCancel }) {
  const [fields, setFields] = useState(() => ({
    name: rule?.name ?? '',
    project_id: rule?.project_id ?? '',
    metric: rule?.metric ?? 'api_errors',
    operator: rule?.operator ?? '>',
    threshold_value: rule ? String(rule.threshold_value) : '',
    window_duration: rule?.window_duration ?? '5m',
    enabled: rule?.enabled ?? true,
  }));
  const [error, setError] = useState(null);
  const [saving, setSaving] = useState(false);
  const [preview, setPreview] = useState({ result: null, error: null, loading: false });
  const firstRef = useRef(null);

  useEffect(() => firstRef.current?.focus(), []);

  // Previews the fields as typed, once typing pauses; a newer preview cancels the older one.
  const incomplete = fields.threshold_value.trim() === '';
  useEffect(() => {
    if (incomplete) {
      setPreview({ result: null, error: null, loading: false });
      return undefined;
    }
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      setPreview((p) => ({ ...p, loading: true }));
      try {
        const result = await api.post('/v1/alert-rules/preview', bodyOf(fields), { signal: controller.signal });
        setPreview({ result, error: null, loading: false });
      } catch (e) {
        if (e.name !== 'AbortError') setPreview({ result: null, error: e, loading: false });
      }
    }, PREVIEW_DELAY_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [api, fields.name, fields.project_id, fields.metric, fields.operator, fields.threshold_value, fields.window_duration]);

  const update = (name) => (event) => {
    const { value, checked, type } = event.currentTarget;
    setFields((f) => ({ ...f, [name]: type === 'checkbox' ? checked : value }));
  };

  async function submit(event) {
    event.preventDefault();
    setSaving(true);
    setError(null);
    try {
      const saved = rule
        ? await api.patch(`/v1/alert-rules/${seg(rule.id)}`, bodyOf(fields))
        : await api.post('/v1/alert-rules', { ...bodyOf(fields), enabled: fields.enabled });
      onSaved(saved);
    } catch (e) {
      setError(e);
    } finally {
      setSaving(false);
    }
  }

  const described = (id) => [fieldError(error, id.replace(/^rule-/, '')) ? `${id}-error` : '', error ? 'rule-form-error' : ''].filter(Boolean).join(' ') || undefined;
  const title = rule ? `Edit rule “${rule.name}”` : 'New rule';

  return html`<section class="panel" aria-labelledby="rule-form-title">
    <h2 id="rule-form-title">${title}</h2>
    <div class="form-and-preview">
      <form onSubmit=${submit} novalidate class="form">
        <${Field} id="rule-name" label="Name" error=${error}>
          <input id="rule-name" ref=${firstRef} value=${fields.name} onInput=${update('name')} aria-describedby=${described('rule-name')} autocomplete="off" />
        <//>
        <${Field} id="rule-project_id" label="Project ID" hint="Leave empty to watch the whole account." error=${error}>
          <input
            id="rule-project_id"
            value=${fields.project_id}
            onInput=${update('project_id')}
            aria-describedby=${['rule-project_id-hint', described('rule-project_id')].filter(Boolean).join(' ')}
            autocomplete="off"
          />
        <//>
        <${Field} id="rule-metric" label="Metric" error=${error}>
          <select id="rule-metric" value=${fields.metric} onChange=${update('metric')} aria-describedby=${described('rule-metric')}>
            ${METRICS.map((m) => html`<option value=${m}>${m}</option>`)}
          </select>
        <//>
        <div class="field-row">
          <${Field} id="rule-operator" label="Operator" error=${error}>
            <select id="rule-operator" value=${fields.operator} onChange=${update('operator')} aria-describedby=${described('rule-operator')}>
              ${OPERATORS.map((o) => html`<option value=${o}>${o}</option>`)}
            </select>
          <//>
          <${Field} id="rule-threshold_value" label="Threshold" error=${error}>
            <input
              id="rule-threshold_value"
              inputmode="numeric"
              value=${fields.threshold_value}
              onInput=${update('threshold_value')}
              aria-describedby=${described('rule-threshold_value')}
              autocomplete="off"
            />
          <//>
          <${Field} id="rule-window_duration" label="Window" error=${error}>
            <select id="rule-window_duration" value=${fields.window_duration} onChange=${update('window_duration')} aria-describedby=${described('rule-window_duration')}>
              ${WINDOWS.map((w) => html`<option value=${w}>${w}</option>`)}
            </select>
          <//>
        </div>
        ${!rule &&
        html`<div class="field checkbox">
          <input type="checkbox" id="rule-enabled" checked=${fields.enabled} onChange=${update('enabled')} />
          <label for="rule-enabled">Enabled (evaluated as telemetry arrives)</label>
        </div>`}
        <${ErrorMessage} error=${error} id="rule-form-error" />
        <div class="actions">
          <button type="submit" class="primary" disabled=${saving}>${saving ? 'Saving…' : rule ? 'Save changes' : 'Create rule'}</button>
          <button type="button" onClick=${onCancel}>Cancel</button>
        </div>
      </form>
      <section class="preview" aria-labelledby="preview-title" aria-busy=${preview.loading ? 'true' : 'false'}>
        <h3 id="preview-title">Preview: the last hour</h3>
        ${preview.error && html`<p class="muted">No preview: ${preview.error.message}</p>`}
        ${preview.result &&
        html`<p>
            ${`Would have sent ${preview.result.triggered_count} alerts.triggered event${preview.result.triggered_count === 1 ? '' : 's'} `}
            ${`(${preview.result.transitions.length} state change${preview.result.transitions.length === 1 ? '' : 's'}).`}
          </p>
          <${SeriesChart}
            points=${preview.result.points}
            threshold=${preview.result.threshold_value}
            operator=${preview.result.operator}
            metric=${preview.result.metric}
            title="Preview"
            height=${200}
          />`}
        ${incomplete && html`<p class="muted">Enter a threshold to see what the rule would have done.</p>`}
        ${!incomplete && !preview.result && !preview.error && html`<p class="muted">Computing…</p>`}
      </section>
    </div>
  </section>`;
}
