// Words and numbers as the console shows them.

export const METRICS = ['turn_latency_p50', 'turn_latency_p95', 'api_errors', 'function_errors', 'call_crashes', 'call_volume'];
export const OPERATORS = ['>', '>=', '<', '<='];
export const WINDOWS = ['5m', '10m', '60m'];
export const EVENT_TYPES = ['alerts.triggered', 'alerts.resolved'];
export const STATES = ['ok', 'alert', 'no_data', 'unknown'];

export const scopeOf = (rule) => (rule.project_id ? rule.project_id : 'whole account');
export const conditionOf = (rule) => `${rule.operator} ${formatNumber(rule.threshold_value)}`;
export const isLatency = (metric) => metric.startsWith('turn_latency');

export function formatNumber(value) {
  return value === null || value === undefined ? '—' : Number(value).toLocaleString('en-US');
}

/** A rule's value with its unit: latencies are in ms, the other metrics are counts. */
export function formatValue(value, metric) {
  if (value === null || value === undefined) return '—';
  return isLatency(metric ?? '') ? `${formatNumber(value)} ms` : formatNumber(value);
}

/** "12 s ago", "3 min ago", "in 2 min": `now` comes from the caller so the text can tick. */
export function relativeTime(iso, now = Date.now()) {
  if (!iso) return '—';
  const diff = Math.round((Date.parse(iso) - now) / 1000);
  const abs = Math.abs(diff);
  let text;
  if (abs < 5) return 'just now';
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)} min`;
  else if (abs < 86_400) text = `${Math.floor(abs / 3600)} h ${Math.floor((abs % 3600) / 60)} min`;
  else text = `${Math.floor(abs / 86_400)} d`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

/** Local date and time, to the second. */
export function absoluteTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

/** The first bytes of an answer body, on one line. */
export function excerpt(text, length = 120) {
  if (text === null || text === undefined || text === '') return '';
  const flat = String(text).replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length)}…` : flat;
}
