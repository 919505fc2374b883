/**
 * A throwaway self-signed TLS certificate for local webhook receivers (`alerts listen --tls`,
 * `alerts demo`), made with node:crypto alone: no openssl binary needed.
 *
 * It is a leaf certificate (CA:FALSE, serverAuth only) for loopback names, so trusting it
 * with NODE_EXTRA_CA_CERTS trusts exactly this certificate and nothing it could sign. It is
 * kept in a directory of the user's (mode 0700, key 0600) and reused while valid, so a
 * service started trusting it keeps working when the receiver restarts.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the certificate lives unless told otherwise. */
export function defaultTlsDir(): string {
  return join(homedir(), '.cache', 'alerts', 'listen-tls');
}

/** Names every throwaway certificate covers. */
export const LOOPBACK_NAMES = ['127.0.0.1', '::1', 'localhost'] as const;
const VALID_DAYS = 30;
/** A certificate closer than this to its end is replaced. */
const RENEW_BEFORE_MS = 24 * 3600_000;
const DAY_MS = 24 * 3600_000;

export interface ThrowawayCert {
  dir: string;
  certPath: string;
  keyPath: string;
  cert: Buffer;
  key: Buffer;
  /** Host names and addresses the certificate is valid for. */
  names: string[];
  validTo: Date;
  /** True when made by this call; false when an earlier one was reused. */
  created: boolean;
  /** True when this call replaced an earlier certificate (a service trusting the old one must restart). */
  replaced: boolean;
}

// --- Minimal DER encoding, just what an X.509 v3 certificate needs. -------------------------

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
const seq = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
const octets = (content: Buffer) => der(0x04, content);
const bits = (content: Buffer, unusedBits = 0) => der(0x03, Buffer.concat([Buffer.from([unusedBits]), content]));
const explicit = (n: number, content: Buffer) => der(0xa0 + n, content);
const TRUE = der(0x01, Buffer.from([0xff]));

function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && bytes[start + 1]! < 0x80) start++;
  const trimmed = bytes.subarray(start);
  return der(0x02, trimmed[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(text: string): Buffer {
  const [first = 0, second = 0, ...rest] = text.split('.').map(Number);
  const out = [first * 40 + second];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) chunk.unshift(0x80 | (value & 0x7f));
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280, 4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z'); // YYYYMMDDHHMMSSZ
  return date.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2), 'ascii')) : der(0x18, Buffer.from(iso, 'ascii'));
}

const name = (commonName: string) => seq(set(seq(oid('2.5.4.3'), der(0x0c, Buffer.from(commonName, 'utf8')))));

/** IPv4 or IPv6 text to its 4 or 16 bytes. */
function ipBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  const [head = '', tail] = address.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const start = groups(head);
  const end = tail === undefined ? [] : groups(tail);
  const all = [...start, ...new Array<number>(8 - start.length - end.length).fill(0), ...end];
  const out = Buffer.alloc(16);
  all.forEach((group, i) => out.writeUInt16BE(group, i * 2));
  return out;
}

const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [TRUE] : []), octets(value));

/** A self-signed ECDSA P-256 certificate (DER) for `names` (IP addresses and DNS names). */
export function selfSignedCertificate(options: { names: readonly string[]; privateKey: KeyObject; publicKey: KeyObject; notBefore: Date; notAfter: Date }): Buffer {
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const subject = name('alerts listen (throwaway, local development)');
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, non-zero, 16 bytes
  const altNames = options.names.map((n) => (isIP(n) ? der(0x87, ipBytes(n)) : der(0x82, Buffer.from(n, 'ascii'))));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    ecdsaWithSha256,
    subject,
    seq(time(options.notBefore), time(options.notAfter)),
    subject,
    options.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      seq(
        extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
        extension('2.5.29.15', true, bits(Buffer.from([0x80]), 7)), // keyUsage: digitalSignature
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
        extension('2.5.29.17', false, seq(...altNames)), // subjectAltName
      ),
    ),
  );
  return seq(tbs, ecdsaWithSha256, bits(sign('sha256', tbs, options.privateKey)));
}

const pem = (label: string, derBytes: Buffer) =>
  `-----BEGIN ${label}-----\n${derBytes.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;

/** `names` that a certificate should cover besides the loopback ones: the listening host, if specific. */
export function certificateNames(host: string): string[] {
  const bare = host.replace(/^\[|\]$/g, '');
  const names: string[] = [...LOOPBACK_NAMES];
  const unspecified = bare === '' || bare === '0.0.0.0' || bare === '::' || bare === '0:0:0:0:0:0:0:0';
  const usable = isIP(bare) === 4 || (isIP(bare) === 6 && !/[.%]/.test(bare)) || /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/i.test(bare);
  if (!unspecified && usable && !names.includes(bare.toLowerCase())) names.push(bare.toLowerCase());
  return names;
}

function covers(cert: X509Certificate, names: readonly string[]): boolean {
  return names.every((n) => (isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n, { wildcards: false }) !== undefined));
}

function readExisting(certPath: string, keyPath: string): { cert: Buffer; key: Buffer; x509: X509Certificate } | undefined {
  try {
    const cert = readFileSync(certPath);
    const key = readFileSync(keyPath);
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) return undefined;
    return { cert, key, x509 };
  } catch {
    return undefined; // missing or unreadable: made anew
  }
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
function writeAtomically(path: string, content: string, mode: number): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode });
  chmodSync(temporary, mode);
  renameSync(temporary, path);
}

/**
 * The certificate in `dir` (cert.pem, key.pem) when it is valid for another day and covers
 * `names`; otherwise a new one, written there.
 */
export function ensureThrowawayCert(dir: string, names: readonly string[] = LOOPBACK_NAMES, now: Date = new Date()): ThrowawayCert {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const existing = readExisting(certPath, keyPath);
  if (existing && Date.parse(existing.x509.validTo) - now.getTime() > RENEW_BEFORE_MS && covers(existing.x509, names)) {
    return { dir, certPath, keyPath, cert: existing.cert, key: existing.key, names: [...names], validTo: new Date(existing.x509.validTo), created: false, replaced: false };
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new Error(`cannot create ${dir} for the throwaway certificate (${(error as NodeJS.ErrnoException).code ?? String(error)}); choose another with --tls-dir`);
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const notBefore = new Date(now.getTime() - 10 * 60_000); // a little clock skew is fine
  const notAfter = new Date(now.getTime() + VALID_DAYS * DAY_MS);
  const certDer = selfSignedCertificate({ names, privateKey, publicKey, notBefore, notAfter });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const certPem = pem('CERTIFICATE', certDer);
  try {
    writeAtomically(keyPath, keyPem, 0o600);
    writeAtomically(certPath, certPem, 0o644);
  } catch (error) {
    throw new Error(`cannot write the throwaway certificate to ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)}); choose another with --tls-dir`);
  }
  const validTo = new Date(new X509Certificate(certPem).validTo);
  return { dir, certPath, keyPath, cert: Buffer.from(certPem), key: Buffer.from(keyPem), names: [...names], validTo, created: true, replaced: existing !== undefined };
}

/** A path as one shell word (quoted only when needed). */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_\-./:@%+=,]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * What the service must be started with to deliver to a receiver using this certificate at
 * `address`: trust the certificate, and open the receiver's loopback/private address.
 */
export function serviceSettings(certPath: string, address: string): string {
  const bare = address.replace(/^\[|\]$/g, '');
  let cidrs: string;
  if (bare.toLowerCase() === 'localhost') cidrs = '127.0.0.1/32,::1/128';
  else if (isIP(bare) === 4) cidrs = `${bare}/32`;
  else if (isIP(bare) === 6) cidrs = `${bare}/128`;
  else cidrs = '<the address of ' + bare + '>/32';
  return `NODE_EXTRA_CA_CERTS=${shellWord(certPath)} ALERTS_WEBHOOK_ALLOWED_CIDRS=${cidrs}`;
}
