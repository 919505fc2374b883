// The rules of the account: a table whose states follow the stream, and the rule form.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { seg } from './api.js';
import { conditionOf, formatValue, scopeOf } from './format.js';
import { RuleForm } from './rule-form.js';
import { ConfirmButton, ErrorMessage, RelativeTime, StateBadge, useNow } from './ui.js';

/** Enable/disable and delete, shared by the table and a rule's own page. */
export function useRuleActions(api, live) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function act(work) {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return {
    error,
    busy,
    toggle: (rule) => act(async () => live.upsert(await api.patch(`/v1/alert-rules/${seg(rule.id)}`, { enabled: !rule.enabled }))),
    remove: (rule, then) =>
      act(async () => {
        await api.del(`/v1/alert-rules/${seg(rule.id)}`);
        live.remove(rule.id);
        then?.();
      }),
  };
}

export function RulesPage({ api, live, state, heading }) {
  const now = useNow();
  const [form, setForm] = useState(null); // null, { rule: undefined } to create, { rule } to edit
  const actions = useRuleActions(api, live);
  const rules = state.rules;

  function saved(rule) {
    live.upsert(rule);
    setForm(null);
  }

  return html`<div>
    <div class="page-head">
      ${heading('Rules')}
      ${!form && html`<button type="button" class="primary" onClick=${() => setForm({ rule: undefined })}>New rule</button>`}
    </div>
    ${form && html`<${RuleForm} key=${form.rule?.id ?? 'new'} api=${api} rule=${form.rule} onSaved=${saved} onCancel=${() => setForm(null)} />`}
    <${ErrorMessage} error=${actions.error} />
    <${ErrorMessage} error=${state.rulesError} />
    ${rules === null && !state.rulesError && html`<p class="muted">Loading rules…</p>`}
    ${rules !== null && rules.length === 0 && html`<p class="empty">No rules yet: create one.</p>`}
    ${rules !== null &&
    rules.length > 0 &&
    html`<div class="table-wrap">
      <table class="rules">
        <caption class="visually-hidden">
          Alert rules and their current state
        </caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Scope</th>
            <th scope="col">Metric</th>
            <th scope="col">Condition</th>
            <th scope="col">Window</th>
            <th scope="col">State</th>
            <th scope="col">Value</th>
            <th scope="col">Since</th>
            <th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${rules.map(
            (rule) => html`<tr key=${rule.id} data-rule-id=${rule.id} class=${rule.enabled ? '' : 'disabled'}>
              <th scope="row">
                <a href=${`#/rules/${seg(rule.id)}`}>${rule.name || rule.id}</a>
                ${!rule.enabled && html` <span class="tag">disabled</span>`}
              </th>
              <td>${scopeOf(rule)}</td>
              <td>${rule.metric}</td>
              <td class="nowrap">${conditionOf(rule)}</td>
              <td>${rule.window_duration}</td>
              <td><${StateBadge} state=${rule.current_state} /></td>
              <td class="num">${formatValue(rule.current_value, rule.metric)}</td>
              <td class="nowrap"><${RelativeTime} iso=${rule.since} now=${now} /></td>
              <td class="row-actions">
                <button type="button" onClick=${() => setForm({ rule })} aria-label=${`Edit ${rule.name}`}>Edit</button>
                <button type="button" disabled=${actions.busy} onClick=${() => actions.toggle(rule)} aria-label=${`${rule.enabled ? 'Disable' : 'Enable'} ${rule.name}`}>
                  ${rule.enabled ? 'Disable' : 'Enable'}
                </button>
                <${ConfirmButton}
                  label="Delete"
                  ariaLabel=${`Delete ${rule.name}`}
                  confirmLabel="Delete rule"
                  question=${`Delete “${rule.name}” and its history?`}
                  disabled=${actions.busy}
                  onConfirm=${() => actions.remove(rule)}
                />
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>`}
  </div>`;
}
