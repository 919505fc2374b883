import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Seals webhook signing secrets for storage. With a key (ALERTS_SECRET_KEY) they are
 * encrypted with AES-256-GCM, bound to their row by the associated data, so a copied
 * database file reveals nothing and a ciphertext cannot be moved to another endpoint.
 * Without a key they are stored as they are, marked so a later key can re-seal them.
 */
export interface SecretCipher {
  readonly encrypting: boolean;
  seal(plaintext: string, boundTo: string): string;
  open(sealed: string, boundTo: string): string;
}

const PLAIN = 'plain:';
const AES_V1 = 'v1:';

export class SecretCipherError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretCipherError';
  }
}

export function createSecretCipher(secretKey: string | undefined): SecretCipher {
  const key = secretKey
    ? Buffer.from(hkdfSync('sha256', Buffer.from(secretKey, 'utf8'), Buffer.alloc(0), 'alerts/signing-secrets/v1', 32))
    : undefined;

  return {
    encrypting: key !== undefined,
    seal(plaintext, boundTo) {
      if (!key) return PLAIN + plaintext;
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(boundTo, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return AES_V1 + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
    },
    open(sealed, boundTo) {
      if (sealed.startsWith(PLAIN)) return sealed.slice(PLAIN.length);
      if (!sealed.startsWith(AES_V1)) throw new SecretCipherError('unknown signing secret format');
      if (!key) throw new SecretCipherError('signing secrets are encrypted but ALERTS_SECRET_KEY is not set');
      const raw = Buffer.from(sealed.slice(AES_V1.length), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(boundTo, 'utf8'));
      decipher.setAuthTag(raw.subarray(12, 28));
      try {
        return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretCipherError('a signing secret cannot be decrypted: ALERTS_SECRET_KEY differs from the one it was sealed with');
      }
    },
  };
}

/** True when a stored value is not yet encrypted. */
export const isPlainSealed = (sealed: string): boolean => sealed.startsWith(PLAIN);
