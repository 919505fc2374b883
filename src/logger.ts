import { pino, type Logger } from 'pino';

/**
 * JSON logs on stdout. Credentials are redacted by path as a second line of defence; the
 * code itself never logs keys, secrets or bodies.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'alerts' },
      timestamp: pino.stdTimeFunctions.isoTime,
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
