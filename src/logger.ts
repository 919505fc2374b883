import { pino, type Logger } from 'pino';

/** Query parameters of the API, whose values are logged; any other parameter's value is not. */
const LOGGED_QUERY_PARAMETERS = new Set(['enabled', 'metric', 'project_id', 'state', 'event_type', 'status', 'overlap']);
/** Our API keys (`alk_...`) and signing secrets (`whsec_...`), wherever they appear in a URL. */
const CREDENTIAL = /\b(?:alk|whsec)_[A-Za-z0-9_-]+/g;
const REDACTED = '[redacted]';
/** Longest URL written to the log; the rest is cut. */
const MAX_LOGGED_URL_LENGTH = 2048;

/**
 * A request URL as it may be logged: a client that put its API key in the query string
 * (`?api_key=...`, `?token=...`) must not find it in our logs. Values of parameters the API
 * does not know are replaced, and anything shaped like one of our keys or secrets is replaced
 * wherever it is, known parameter or path.
 */
export function redactUrl(url: string): string {
  const mark = url.indexOf('?');
  const path = (mark === -1 ? url : url.slice(0, mark)).replace(CREDENTIAL, REDACTED);
  let redacted = path;
  if (mark !== -1) {
    const query = url
      .slice(mark + 1)
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        const name = eq === -1 ? pair : pair.slice(0, eq);
        if (!LOGGED_QUERY_PARAMETERS.has(name)) return eq === -1 ? (name === '' ? '' : REDACTED) : `${name.replace(CREDENTIAL, REDACTED)}=${REDACTED}`;
        return pair.replace(CREDENTIAL, REDACTED);
      })
      .join('&');
    redacted = `${path}?${query}`;
  }
  return redacted.length <= MAX_LOGGED_URL_LENGTH ? redacted : `${redacted.slice(0, MAX_LOGGED_URL_LENGTH)}…`;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | null;
}

/**
 * JSON logs on stdout. Credentials are redacted by path as a second line of defence; the
 * code itself never logs keys, secrets or bodies. Requests are logged (by Fastify, as `req`)
 * with the fields Fastify logs, the URL redacted.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'alerts' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: {
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: typeof req.url === 'string' ? redactUrl(req.url) : undefined,
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort,
        }),
      },
      redact: {
        paths: [
          'req.headers["x-api-key"]',
          'req.headers.authorization',
          'headers["x-api-key"]',
          'signing_secret',
          '*.signing_secret',
          'secret',
          '*.secret',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/**
 * Standard output as a log destination that can neither throw nor hang the process. Once
 * whatever reads it has gone away (`npm start | head`, a log shipper that exited), writes
 * fail with EPIPE: from then on lines are dropped. (pino's default destination retries such
 * a write for ever while the process exits, so SIGTERM never ended it.)
 */
export function stdoutDestination(stream: NodeJS.WritableStream = process.stdout): pino.DestinationStream {
  let broken = false;
  stream.on('error', () => {
    broken = true;
  });
  return {
    write(line: string) {
      if (!broken) stream.write(line);
    },
  };
}
