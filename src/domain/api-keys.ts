import { createHash } from 'node:crypto';
import { randomBase62 } from './ids.js';

export interface ApiKeyRecord {
  id: string;
  account_id: string;
  account_name: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export interface Account {
  id: string;
  name: string;
}

const KEY_PREFIX = 'alk_';

/** A new API key: `alk_` and 43 base62 characters (about 256 bits). */
export function newApiKey(): string {
  return KEY_PREFIX + randomBase62(43);
}

/**
 * Keys are stored only as a SHA-256 digest. They carry 256 bits of randomness, so a fast
 * hash is enough: there is nothing to brute-force, and auth stays cheap per request.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The first characters of a key, kept in clear so `keys list` can show which key is which. */
export function displayPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX.length + 6);
}

/** Keys are plain printable tokens; anything else is not worth a database lookup. */
export function isPlausibleApiKey(key: string): boolean {
  return key.length >= 16 && key.length <= 256 && /^[\x21-\x7e]+$/.test(key);
}
