import { MAX_PROJECT_ID_LENGTH, MAX_RULE_NAME_LENGTH } from '../domain/alert-rules.js';
import {
  FORBIDDEN_HEADER_NAMES,
  MAX_CUSTOM_HEADERS,
  MAX_ENDPOINT_URL_LENGTH,
  MAX_EVENT_TYPES_LISTED,
  MAX_HEADER_NAME_LENGTH,
  MAX_HEADER_VALUE_LENGTH,
} from '../domain/webhook-endpoints.js';

/**
 * Where we are deliberately stricter than the published contract. Stated in /openapi.json
 * (info.description, and each field's own description) and, word for word, in the README's
 * "Deviations from the published contract"; test/openapi.test.ts checks both and allows
 * exactly these differences from the published schemas.
 */

const thousands = (n: number) => n.toLocaleString('en-US');

/** How a header name is usually written: Content-Length, Keep-Alive, TE. */
const displayHeaderName = (name: string) => (name === 'te' ? 'TE' : name.replace(/(^|-)[a-z]/g, (start) => start.toUpperCase()));

/** The connection-level header names that are refused, as usually written. */
export const FORBIDDEN_HEADER_DISPLAY_NAMES = FORBIDDEN_HEADER_NAMES.map(displayHeaderName);

export const THRESHOLD_RULE =
  `at most 2^53 − 1 (${Number.MAX_SAFE_INTEGER}); a larger JSON number does not round-trip exactly`;

export const URL_RULE =
  `must name a host (\`https://\`, \`https:///path\` and \`https://:443/\` are refused); at most ` +
  `${thousands(MAX_ENDPOINT_URL_LENGTH)} characters; a port, if given, from 1 to 65535 (\`:0\` would silently mean 443); ` +
  'no user information (`https://user:password@…`), which would never be sent';

export const CUSTOM_HEADER_RULES =
  `at most ${MAX_CUSTOM_HEADERS} headers; names are HTTP tokens (RFC 9110) of at most ${MAX_HEADER_NAME_LENGTH} characters, ` +
  `unique ignoring case; values are printable ASCII (no CR, LF or NUL) of at most ${thousands(MAX_HEADER_VALUE_LENGTH)} ` +
  `characters. Connection-level headers are refused: ${FORBIDDEN_HEADER_DISPLAY_NAMES.map((n) => `\`${n}\``).join(', ')}`;

/** One Markdown bullet each (without the leading "- "). */
export const DEVIATIONS: readonly string[] = [
  `\`threshold_value\`: ${THRESHOLD_RULE}.`,
  `Alert rule \`name\` and \`project_id\`: at most ${Math.max(MAX_RULE_NAME_LENGTH, MAX_PROJECT_ID_LENGTH)} characters ` +
    "(the published limit of endpoint names; telemetry's `project_id` has the same limit).",
  `Webhook endpoint \`url\`: ${URL_RULE}.`,
  `Custom \`headers\`: ${CUSTOM_HEADER_RULES}.`,
  `Webhook endpoint \`event_types\`: at most ${MAX_EVENT_TYPES_LISTED} entries (repeats are still accepted, and dropped).`,
  'Error bodies always carry `message`, and validation errors add `errors`.',
  'Alert rule create and PATCH also take `pending_duration` and `keep_firing_duration` (ours, optional: at most 1 hour; ' +
    'absent or `"0s"` is the published behaviour), and rules answer them with `pending_since` and `keep_firing_since`.',
];

/** The paragraph of the OpenAPI document's info.description that lists the deviations. */
export function deviationsMarkdown(): string {
  return (
    '**Deviations from the published contract**: where this service is stricter, on purpose. ' +
    'Past a limit the answer is `400` naming the field, and nothing changes.\n\n' +
    DEVIATIONS.map((d) => `- ${d}`).join('\n')
  );
}
