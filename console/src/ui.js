/* global setInterval, clearInterval, navigator, document */
// Small pieces shared by the pages.
import { html } from 'htm/preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { absoluteTime, relativeTime } from './format.js';

/** The API's message and its per-field problems, announced to screen readers. */
export function ErrorMessage({ error, id }) {
  if (!error) return null;
  const errors = Array.isArray(error.errors) ? error.errors : [];
  return html`<div class="error" role="alert" id=${id}>
    <p>${error.message}</p>
    ${errors.length > 0 &&
    html`<ul>
      ${errors.map((e) => html`<li><code>${e.field}</code> ${e.message}</li>`)}
    </ul>`}
  </div>`;
}

/** The problem the API found with one field, if any. */
export const fieldError = (error, field) => error?.errors?.find((e) => e.field === field || e.field.startsWith(`${field}.`));

export function StateBadge({ state }) {
  const s = state ?? 'unknown';
  return html`<span class=${`badge badge-${s}`} data-state=${s}>${s}</span>`;
}

/** Re-renders every `ms`, for texts such as "3 min ago". */
export function useNow(ms = 10_000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

export function RelativeTime({ iso, now }) {
  if (!iso) return html`<span>—</span>`;
  return html`<time datetime=${iso} title=${absoluteTime(iso)}>${relativeTime(iso, now)}</time>`;
}

/**
 * A button that asks before doing something that cannot be undone: the first press shows
 * "Confirm" and "Cancel" in its place, and focus moves to the confirmation.
 */
export function ConfirmButton({ label, ariaLabel, confirmLabel, question, onConfirm, disabled }) {
  const [asking, setAsking] = useState(false);
  const confirmRef = useRef(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking) {
    return html`<button type="button" class="danger" aria-label=${ariaLabel} disabled=${disabled} onClick=${() => setAsking(true)}>${label}</button>`;
  }
  return html`<span class="confirm" role="group" aria-label=${question}>
    <span class="confirm-question">${question}</span>
    <button
      type="button"
      class="danger solid"
      ref=${confirmRef}
      onClick=${() => {
        setAsking(false);
        onConfirm();
      }}
    >
      ${confirmLabel}
    </button>
    <button type="button" onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

/**
 * A signing secret, shown once: the API never returns it again. "Copy" uses the clipboard
 * API where the page may (HTTPS or loopback), else selects the text for Ctrl+C.
 */
export function SecretBox({ title, secret, onDone }) {
  const [copied, setCopied] = useState('');
  const inputRef = useRef(null);
  const boxRef = useRef(null);
  const id = useId();
  useEffect(() => {
    boxRef.current?.focus();
  }, [secret]);
  async function copy() {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied('Copied to the clipboard.');
    } catch {
      inputRef.current?.select();
      const ok = document.execCommand?.('copy');
      setCopied(ok ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (⌘C) to copy it.');
    }
  }
  return html`<section class="secret" tabindex="-1" ref=${boxRef} aria-labelledby=${`${id}-title`}>
    <h3 id=${`${id}-title`}>${title}</h3>
    <p class="secret-note"><strong>Copy it now: it will not be shown again.</strong> Receivers use it to verify the X-PolyAI-Signature header.</p>
    <div class="secret-row">
      <label class="visually-hidden" for=${`${id}-value`}>Signing secret</label>
      <input id=${`${id}-value`} class="secret-value" readonly value=${secret} ref=${inputRef} onFocus=${(e) => e.currentTarget.select()} />
      <button type="button" onClick=${copy}>Copy</button>
      <button type="button" onClick=${onDone}>Done</button>
    </div>
    <p class="status-text" role="status">${copied}</p>
  </section>`;
}
