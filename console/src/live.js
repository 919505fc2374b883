/* global fetch, setTimeout, clearTimeout, setInterval, clearInterval, TextDecoder, AbortController */
// What the console knows of the account's rules, kept current from GET /v1/stream
// (Server-Sent Events read through fetch, since EventSource cannot send x-api-key), or,
// where the server has no stream (404: an older server) or it is down, by polling
// GET /v1/alert-rules every 5 s. Pages subscribe to the state and to stream events.
import { createEventStreamParser } from './sse.js';

const POLL_MS = 5000;
/** Asking again this late a server that has no stream (404) or too many open (429). */
const STREAM_RETRY_LATER_MS = 60_000;
/** The server comments every 15 s: three missed keep-alives mean the connection is dead. */
const SILENCE_MS = 45_000;
const reconnectDelay = () => 1000 + Math.random() * 1000;

/**
 * @param api the client of api.js
 * @param onUnauthorized called when the stream answers 401 (the key was revoked)
 */
export function createLive(api, { onUnauthorized } = {}) {
  let state = { rules: null, rulesError: null, mode: 'connecting' };
  const listeners = new Set();
  const handlers = new Map(); // event type → Set of callbacks
  let stopped = false;
  let lastEventId = null;
  let controller = null;
  let pollTimer = null;
  let refetchPending = null;

  const set = (patch) => {
    state = { ...state, ...patch };
    for (const listener of listeners) listener(state);
  };
  const emit = (type, data) => {
    for (const handler of handlers.get(type) ?? []) handler(data);
  };

  /** Replaces the list; tells pages about rules whose state changed (the polling path has no transition events). */
  function setRules(list, { fromPoll = false } = {}) {
    const before = new Map((state.rules ?? []).map((r) => [r.id, r]));
    set({ rules: list, rulesError: null });
    if (!fromPoll) return;
    for (const rule of list) {
      const old = before.get(rule.id);
      if (old && (old.current_state !== rule.current_state || old.since !== rule.since)) emit('transition', { rule_id: rule.id, polled: true });
    }
  }

  // Stream news of each rule, numbered in the order things happened here: a list asked for
  // before the news came answers with older states, so the news is laid over it; and a list
  // answered after a newer one is dropped.
  const news = new Map(); // rule id → { at, rule } or { at, removed: true }
  let clock = 0;
  let appliedAskedAt = 0;
  const tick = () => (clock += 1);
  function overlay(list, askedAt) {
    let result = list;
    for (const [id, item] of news) {
      if (item.at < askedAt) {
        news.delete(id); // in this list, and in any list applied from now on
        continue;
      }
      if (item.removed) result = result.filter((r) => r.id !== id);
      else result = result.map((r) => (r.id === id ? { ...r, ...item.rule } : r));
    }
    return result;
  }

  async function loadRules({ fromPoll = false } = {}) {
    const askedAt = tick();
    try {
      const body = await api.get('/v1/alert-rules');
      if (askedAt < appliedAskedAt) return;
      appliedAskedAt = askedAt;
      setRules(overlay(body.data, askedAt), { fromPoll });
    } catch (error) {
      if (error.status === 401) return;
      set({ rulesError: error });
    }
  }

  /** One refetch at a time, for events naming a rule the console does not know yet. */
  function refetchRules() {
    refetchPending ??= loadRules().finally(() => {
      refetchPending = null;
    });
    return refetchPending;
  }

  function startPolling() {
    if (pollTimer !== null || stopped) return;
    pollTimer = setInterval(() => void loadRules({ fromPoll: true }), POLL_MS);
  }
  function stopPolling() {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  }

  function onStreamEvent({ event, data }) {
    let payload;
    try {
      payload = data === '' ? {} : JSON.parse(data);
    } catch {
      return; // not ours to guess at
    }
    if (event === 'rule') {
      news.set(payload.id, { at: tick(), rule: payload });
      if (state.rules === null) return; // the first list is on its way
      if (!state.rules.some((r) => r.id === payload.id)) {
        // A rule made elsewhere: its event lacks metric, scope and condition.
        void refetchRules();
        return;
      }
      set({ rules: state.rules.map((r) => (r.id === payload.id ? { ...r, ...payload } : r)) });
    } else if (event === 'rule_removed') {
      news.set(payload.id, { at: tick(), removed: true });
      if (state.rules !== null) set({ rules: state.rules.filter((r) => r.id !== payload.id) });
    } else if (event === 'transition' || event === 'attempt') {
      emit(event, payload);
    } else if (event === 'reset') {
      // The server cannot replay what was missed: reload everything shown.
      void loadRules();
      emit('reset', payload);
    }
  }

  const sleep = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      controller?.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      let silence = null;
      const resetSilence = () => {
        clearTimeout(silence);
        silence = setTimeout(() => controller.abort(), SILENCE_MS);
      };
      try {
        const headers = { 'x-api-key': api.key, accept: 'text/event-stream' };
        if (lastEventId !== null) headers['last-event-id'] = lastEventId;
        resetSilence();
        const response = await fetch('/v1/stream', { headers, signal: controller.signal, cache: 'no-store' });
        if (response.status === 401) {
          clearTimeout(silence);
          onUnauthorized?.();
          return;
        }
        if (!response.ok || !response.body) {
          // No stream on this server (404) or it turns us away: poll, and look again later.
          clearTimeout(silence);
          set({ mode: response.status === 404 ? 'unavailable' : 'reconnecting' });
          startPolling();
          await sleep(response.status === 404 || response.status === 429 ? STREAM_RETRY_LATER_MS : reconnectDelay() * 2);
          continue;
        }
        stopPolling();
        set({ mode: 'live' });
        const parse = createEventStreamParser();
        const decoder = new TextDecoder();
        const reader = response.body.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          resetSilence();
          for (const event of parse(decoder.decode(value, { stream: true }))) {
            if (event.hasId) lastEventId = event.id;
            onStreamEvent(event);
          }
        }
      } catch {
        // The connection failed or went silent: reconnect below.
      }
      clearTimeout(silence);
      if (stopped) return;
      set({ mode: 'reconnecting' });
      startPolling();
      await sleep(reconnectDelay());
    }
  }

  void loadRules();
  void run();

  return {
    get: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Calls `handler` for each `transition`, `attempt` or `reset` event; returns the unsubscribe. */
    on(type, handler) {
      if (!handlers.has(type)) handlers.set(type, new Set());
      handlers.get(type).add(handler);
      return () => handlers.get(type).delete(handler);
    },
    /** After the console itself changed rules: the stream may say so too, but not every server has one. */
    reload: () => loadRules(),
    /** Updates one rule as the API just answered it. */
    upsert(rule) {
      news.set(rule.id, { at: tick(), rule });
      const rules = state.rules ?? [];
      set({ rules: rules.some((r) => r.id === rule.id) ? rules.map((r) => (r.id === rule.id ? rule : r)) : [...rules, rule] });
    },
    remove(id) {
      news.set(id, { at: tick(), removed: true });
      set({ rules: (state.rules ?? []).filter((r) => r.id !== id) });
    },
    stop() {
      stopped = true;
      stopPolling();
      controller?.abort();
    },
  };
}
