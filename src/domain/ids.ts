import { randomBytes } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random base62 string of `length` characters from a cryptographic source, without modulo bias. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    // 62 * 4 = 248: bytes at or above it are rejected so every character is equally likely.
    for (const byte of randomBytes(Math.ceil((length - out.length) * 1.1) + 4)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export const ID_PREFIX = {
  alertRule: 'ar_',
  webhookEndpoint: 'whe_',
  apiKey: 'key_',
  account: 'acc_',
  event: 'evt_',
  delivery: 'dlv_',
  silence: 'sil_',
} as const;

/** Length of the random part of every public ID (as in the published examples). */
export const ID_RANDOM_LENGTH = 22;

export function newId(prefix: (typeof ID_PREFIX)[keyof typeof ID_PREFIX]): string {
  return prefix + randomBase62(ID_RANDOM_LENGTH);
}
