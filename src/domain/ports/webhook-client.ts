/** The port that sends one webhook attempt; src/delivery/webhook-client.ts implements it. */

/** How an attempt ended, for the attempt record and the retry decision. */
export const ERROR_CLASSES = ['timeout', 'dns', 'connect_refused', 'tls', 'reset', 'blocked_address', 'network'] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

export interface AttemptResult {
  statusCode: number | null;
  errorClass: ErrorClass | null;
  /** Human-readable cause when the attempt failed without a status; never carries secrets. */
  error: string | null;
  /** First 1 KiB of the response body (decoded as UTF-8). */
  responseBody: string | null;
  durationMs: number;
}

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export interface WebhookClient {
  /**
   * One attempt. Always settles within `timeoutMs` (plus timer latency), whatever the
   * receiver does, and at once when `signal` aborts; never rejects.
   */
  send(request: WebhookRequest, signal?: AbortSignal): Promise<AttemptResult>;
  close(): Promise<void>;
}
