import { createHmac } from 'node:crypto';

/**
 * The documented signature: lowercase hex HMAC-SHA256, keyed with the signing secret's
 * UTF-8 bytes, over the exact bytes `{timestamp}.{raw body}`.
 */
export function signWebhook(secret: string, timestamp: number, rawBody: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.`, 'utf8').update(rawBody, 'utf8').digest('hex');
}

/**
 * The Standard Webhooks key of a secret: the bytes its text after `whsec_` encodes. Read as
 * base64url, which Node also reads from standard base64: secrets issued now are letters and
 * digits only (the same bytes either way, what Standard Webhooks libraries decode), older
 * ones may hold `-` or `_`, whose bytes a receiver gets by passing the secret with `+` and
 * `/` in their place. Never throws: any text gives some key.
 */
export function standardWebhookKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64url');
}

/**
 * The Standard Webhooks `webhook-signature` value: `v1,` and the base64 HMAC-SHA256 over
 * `{id}.{timestamp}.{body}`, one per secret that signs (the current first), space-separated.
 */
export function signStandardWebhook(secrets: readonly string[], id: string, timestamp: number, rawBody: string): string {
  return secrets
    .map((secret) => `v1,${createHmac('sha256', standardWebhookKey(secret)).update(`${id}.${timestamp}.`, 'utf8').update(rawBody, 'utf8').digest('base64')}`)
    .join(' ');
}
