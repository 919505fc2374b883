import { createHmac } from 'node:crypto';

/**
 * The documented signature: lowercase hex HMAC-SHA256, keyed with the signing secret's
 * UTF-8 bytes, over the exact bytes `{timestamp}.{raw body}`.
 */
export function signWebhook(secret: string, timestamp: number, rawBody: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.`, 'utf8').update(rawBody, 'utf8').digest('hex');
}
