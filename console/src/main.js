/* global document, window, location */
// The operator console: a login page, then the rules and the webhook endpoints of the
// account of the API key, with hash routes (#/rules, #/rules/<id>, #/endpoints).
import { html, render } from 'htm/preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, createApi, forgetKey, savedKey, saveKey } from './api.js';
import { EndpointsPage } from './endpoints.js';
import { createLive } from './live.js';
import { RulePage } from './rule-page.js';
import { RulesPage } from './rules.js';
import { ErrorMessage } from './ui.js';
import './styles.css';

function parseRoute(hash) {
  let parts;
  try {
    parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = [];
  }
  if (parts[0] === 'endpoints') return { page: 'endpoints', path: '#/endpoints' };
  if (parts[0] === 'rules' && parts[1]) return { page: 'rule', id: parts[1], path: `#/rules/${parts[1]}` };
  return { page: 'rules', path: '#/rules' };
}

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return useMemo(() => parseRoute(hash), [hash]);
}

function LoginPage({ onLogin, notice }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const inputRef = useRef(null);
  useEffect(() => inputRef.current?.focus(), []);

  async function submit(event) {
    event.preventDefault();
    const k = key.trim();
    setError(null);
    if (k === '') {
      setError(new ApiError('Enter your API key.'));
      return;
    }
    setBusy(true);
    try {
      // Any authenticated read proves the key; the list is loaded again once logged in.
      await createApi(k).get('/v1/alert-rules');
      onLogin(k);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  }

  return html`<main class="login" id="main">
    <h1>Alerts console</h1>
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    <form onSubmit=${submit} class="form" novalidate>
      <div class="field">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          ref=${inputRef}
          type="password"
          autocomplete="off"
          spellcheck="false"
          value=${key}
          onInput=${(e) => setKey(e.currentTarget.value)}
          aria-describedby=${error ? 'login-error api-key-hint' : 'api-key-hint'}
        />
        <p class="hint" id="api-key-hint">Kept in this tab only, until you log out or close it.</p>
      </div>
      <${ErrorMessage} error=${error} id="login-error" />
      <div class="actions"><button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Log in'}</button></div>
    </form>
  </main>`;
}

const MODE_TEXT = {
  connecting: 'Connecting to live updates…',
  live: 'Live',
  reconnecting: 'Live updates interrupted: reconnecting (refreshing every 5 s meanwhile)',
  unavailable: 'Live updates unavailable: refreshing every 5 s',
};

function Console({ apiKey, onLogout }) {
  const session = useMemo(() => {
    const expired = () => onLogout('The API key is no longer accepted: log in again.');
    const api = createApi(apiKey, { onUnauthorized: expired });
    return { api, live: createLive(api, { onUnauthorized: expired }) };
  }, [apiKey]);
  useEffect(() => () => session.live.stop(), [session]);
  const [state, setState] = useState(() => session.live.get());
  useEffect(() => {
    setState(session.live.get());
    return session.live.subscribe(setState);
  }, [session]);

  const route = useRoute();
  const first = useRef(true);
  // A new page moves focus to its heading, so that keyboard and screen reader users start
  // there (before the next paint, so nothing typed meanwhile goes to the old page).
  useLayoutEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('page-title')?.focus();
  }, [route.path]);

  const heading = (text) => html`<h1 id="page-title" tabindex="-1">${text}</h1>`;
  const props = { api: session.api, live: session.live, state, heading };
  const section = route.page === 'endpoints' ? 'endpoints' : 'rules';
  const skip = (e) => {
    e.preventDefault();
    document.getElementById('main')?.focus();
  };

  return html`<div class="shell">
    <a class="skip-link" href="#main" onClick=${skip}>Skip to content</a>
    <header class="topbar">
      <span class="brand">Alerts console</span>
      <nav aria-label="Main">
        <a href="#/rules" aria-current=${section === 'rules' ? 'page' : undefined}>Rules</a>
        <a href="#/endpoints" aria-current=${section === 'endpoints' ? 'page' : undefined}>Endpoints</a>
      </nav>
      <span class=${`live live-${state.mode}`} role="status">${MODE_TEXT[state.mode]}</span>
      <button type="button" class="logout" onClick=${() => onLogout('You are logged out.')}>Log out</button>
    </header>
    <main id="main" tabindex="-1">
      ${route.page === 'rules' && html`<${RulesPage} ...${props} />`}
      ${route.page === 'rule' && html`<${RulePage} key=${route.id} id=${route.id} ...${props} />`}
      ${route.page === 'endpoints' && html`<${EndpointsPage} ...${props} />`}
    </main>
  </div>`;
}

function App() {
  const [key, setKey] = useState(() => savedKey());
  const [notice, setNotice] = useState(null);
  const login = (k) => {
    saveKey(k);
    setNotice(null);
    setKey(k);
  };
  const logout = (message) => {
    forgetKey();
    setNotice(message);
    setKey(null);
  };
  return key ? html`<${Console} key=${key} apiKey=${key} onLogout=${logout} />` : html`<${LoginPage} onLogin=${login} notice=${notice} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
