/**
 * A cheap bound on what parsing a JSON text will cost, checked before `JSON.parse`.
 *
 * Parsing time and memory grow with the number of values, not with bytes: 8 MiB of
 * `{},{},...` are 2.7 million objects, about a second of blocked event loop and gigabytes of
 * heap. Every member and element of an object or array is preceded by exactly one `{`, `[`
 * or `,` outside strings, so counting those bounds the number of values from above.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Most values (counted as in exceedsJsonValueBudget) a JSON body of the route may hold. */
    maxJsonValues?: number;
  }
}

/** Values a body may hold on routes that do not say otherwise (a valid rule or endpoint has a few dozen). */
export const DEFAULT_MAX_JSON_VALUES = 10_000;

const BACKSLASH = 92;

/** Occurrences of `char` in `text`, counting no further than `limit + 1`. */
function countUpTo(text: string, char: string, limit: number): number {
  let count = 0;
  for (let at = text.indexOf(char); at !== -1 && count <= limit; at = text.indexOf(char, at + 1)) count += 1;
  return count;
}

/**
 * True when `text` has more than `max` object members and array elements. Fast path: the
 * structural characters are counted with `indexOf` (native, no per-character JavaScript),
 * inside strings or not; only when that crude count is over the budget are strings skipped
 * exactly, and both scans stop as soon as the budget is exceeded.
 */
export function exceedsJsonValueBudget(text: string, max: number): boolean {
  let crude = countUpTo(text, ',', max);
  if (crude <= max) crude += countUpTo(text, '{', max - crude);
  if (crude <= max) crude += countUpTo(text, '[', max - crude);
  if (crude <= max) return false;

  // Exactly: the next structural character or quote is found by a native regular expression
  // scan, strings are skipped with indexOf.
  const next = /[",[{]/g;
  let count = 0;
  for (let match = next.exec(text); match !== null; match = next.exec(text)) {
    if (match[0] !== '"') {
      count += 1;
      if (count > max) return true;
      continue;
    }
    // Skip the string: to the next quote not escaped by an odd run of backslashes.
    let end = match.index;
    for (;;) {
      end = text.indexOf('"', end + 1);
      if (end === -1) return false; // unterminated: JSON.parse fails on it soon enough
      let escapes = 0;
      while (text.charCodeAt(end - 1 - escapes) === BACKSLASH) escapes += 1;
      if (escapes % 2 === 0) break;
    }
    next.lastIndex = end + 1;
  }
  return false;
}
