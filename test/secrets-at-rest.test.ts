import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createService, type Service } from '../src/service.js';
import { SecretCipherError } from '../src/store/secret-cipher.js';
import { openStore } from '../src/store/store.js';
import { dropDatabaseFor, inspectDatabase, locationOf, onPostgres, tableRows } from './helpers/database.js';
import { endpointBody, startTestServer, type TestServer } from './helpers/server.js';

const SECRET_KEY = 'test-only-secret-key-0123456789-abcdefgh';
const OTHER_KEY = 'another-test-secret-key-9876543210-zyxwv';

let server: TestServer | undefined;
let serverClosedEarly = false;
const extraServices: Service[] = [];

afterEach(async () => {
  for (const service of extraServices.splice(0)) await service.close();
  if (server) {
    if (serverClosedEarly) {
      rmSync(server.dir, { recursive: true, force: true });
      await dropDatabaseFor(server.dir);
    } else await server.close();
  }
  server = undefined;
  serverClosedEarly = false;
});

async function start(secretKey?: string): Promise<TestServer> {
  server = await startTestServer({ env: secretKey === undefined ? {} : { ALERTS_SECRET_KEY: secretKey } });
  return server;
}

/** Stops the test server's service but keeps its database for another service to open. */
async function stopKeepingFiles(s: TestServer): Promise<void> {
  await s.service.close();
  serverClosedEarly = true;
}

/** A second service on the same database, the way the server itself is wired. */
async function openService(dbPath: string, secretKey?: string): Promise<Service> {
  const env: Record<string, string> = { DATABASE_URL: dbPath, LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0' };
  if (secretKey !== undefined) env.ALERTS_SECRET_KEY = secretKey;
  const service = await createService({ config: loadConfig(env), logger: createLogger('silent') });
  extraServices.push(service);
  return service;
}

/** Every byte SQLite keeps on disk for the database: the main file, its WAL and shared memory. */
function databaseBytes(dbPath: string): Buffer {
  const files = [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}-journal`].filter((file) => existsSync(file));
  expect(files).toContain(dbPath);
  return Buffer.concat(files.map((file) => readFileSync(file)));
}

/** The secret and its random part (without the whsec_ prefix), as they would appear on disk. */
function needles(secret: string): Buffer[] {
  return [Buffer.from(secret, 'utf8'), Buffer.from(secret.replace(/^whsec_/, ''), 'utf8')];
}

function expectNotOnDisk(dbPath: string, secrets: string[]): void {
  const bytes = databaseBytes(dbPath);
  for (const secret of secrets) {
    for (const needle of needles(secret)) {
      expect(bytes.includes(needle), `the database files contain ${needle.toString()}`).toBe(false);
    }
  }
}

/**
 * Every row of every table of the test's database, as text: what the database hands to
 * anyone who can read it (a dump, a replica, a stolen backup).
 */
async function storedRows(dbPath: string): Promise<string> {
  const db = inspectDatabase(dbPath);
  try {
    const rows = await tableRows(db);
    expect(Object.keys(rows)).toContain('webhook_endpoints');
    return JSON.stringify(rows);
  } finally {
    await db.destroy();
  }
}

async function expectNotInRows(dbPath: string, secrets: string[]): Promise<void> {
  const rows = await storedRows(dbPath);
  for (const secret of secrets) {
    for (const needle of needles(secret)) expect(rows.includes(needle.toString()), `a stored row contains ${needle.toString()}`).toBe(false);
  }
}

async function storedValue(service: Service, id: string): Promise<string> {
  const row = await service.store.db.selectFrom('webhook_endpoints').select('signing_secret').where('id', '=', id).executeTakeFirstOrThrow();
  return row.signing_secret;
}

async function createEndpoint(s: TestServer, overrides: Record<string, unknown> = {}) {
  const res = await s.request('POST', '/v1/webhook-endpoints', { body: endpointBody(overrides) });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; signing_secret: string };
}

// Tests named for "the database files" read the bytes SQLite keeps on disk (main file, WAL):
// SQLite only. Their PostgreSQL counterparts, which read every stored row, follow.
describe('signing secrets at rest', () => {
  it.skipIf(onPostgres)('with ALERTS_SECRET_KEY, keeps the signing secret out of the database files while still signing with it', async () => {
    const s = await start(SECRET_KEY);
    const a = await createEndpoint(s, { name: 'a' });
    const b = await createEndpoint(s, { name: 'b' });

    expectNotOnDisk(s.dbPath, [a.signing_secret, b.signing_secret]);
    expect(await storedValue(s.service, a.id)).toMatch(/^v1:/);
    expect(await storedValue(s.service, a.id)).not.toContain(a.signing_secret);
    expect(await s.service.store.webhookEndpoints.signingSecret(a.id)).toBe(a.signing_secret);
    expect(await s.service.store.webhookEndpoints.signingSecret(b.id)).toBe(b.signing_secret);
  });

  it.skipIf(onPostgres)('with ALERTS_SECRET_KEY, keeps a rotated secret out of the database files too', async () => {
    const s = await start(SECRET_KEY);
    const created = await createEndpoint(s);
    const rotated = await s.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`);
    expect(rotated.status).toBe(200);

    expectNotOnDisk(s.dbPath, [created.signing_secret, rotated.body.signing_secret]);
    expect(await storedValue(s.service, created.id)).toMatch(/^v1:/);
    expect(await s.service.store.webhookEndpoints.signingSecret(created.id)).toBe(rotated.body.signing_secret);
  });

  it('seals each secret with a fresh nonce, so equal secrets would not look equal on disk', async () => {
    const s = await start(SECRET_KEY);
    const created = await createEndpoint(s);
    const first = await storedValue(s.service, created.id);
    // Re-sealing the same plaintext must give a different ciphertext.
    await s.service.store.db.updateTable('webhook_endpoints').set({ signing_secret: `plain:${created.signing_secret}` }).where('id', '=', created.id).execute();
    const reopened = await openStore({ location: locationOf(s.dbPath), secretKey: SECRET_KEY, sealSecrets: true });
    expect(reopened.schema.sealedSecrets).toBe(1);
    await reopened.close();
    const second = await storedValue(s.service, created.id);
    expect(second).toMatch(/^v1:/);
    expect(second).not.toBe(first);
    expect(await s.service.store.webhookEndpoints.signingSecret(created.id)).toBe(created.signing_secret);
  });

  it.skipIf(onPostgres)('without ALERTS_SECRET_KEY, stores the secret marked plain: and signs with it', async () => {
    const s = await start();
    const created = await createEndpoint(s);
    expect(await storedValue(s.service, created.id)).toBe(`plain:${created.signing_secret}`);
    expect(await s.service.store.webhookEndpoints.signingSecret(created.id)).toBe(created.signing_secret);
    // The same file check that proves absence above does find a secret stored in the clear.
    expect(databaseBytes(s.dbPath).includes(Buffer.from(created.signing_secret))).toBe(true);
  });

  it('seals secrets written without a key when the database is next opened with one, and keeps them usable', async () => {
    const s = await start();
    const a = await createEndpoint(s, { name: 'a' });
    const b = await createEndpoint(s, { name: 'b' });
    const rotatedB = (await s.request('POST', `/v1/webhook-endpoints/${b.id}/rotate-secret`)).body.signing_secret as string;
    await stopKeepingFiles(s);

    const sealed = await openService(s.dbPath, SECRET_KEY);
    expect(sealed.store.schema.sealedSecrets).toBe(2);
    expect(await storedValue(sealed, a.id)).toMatch(/^v1:/);
    expect(await storedValue(sealed, b.id)).toMatch(/^v1:/);
    expect(await sealed.store.webhookEndpoints.signingSecret(a.id)).toBe(a.signing_secret);
    expect(await sealed.store.webhookEndpoints.signingSecret(b.id)).toBe(rotatedB);
    // Nothing left to seal: a second pass does no work.
    const second = await openStore({ location: locationOf(s.dbPath), secretKey: SECRET_KEY, sealSecrets: true });
    expect(second.schema.sealedSecrets).toBe(0);
    await second.close();

    // No row holds a current secret in the clear; on SQLite, neither do the files (the old
    // values' bytes included), while running or after a stop.
    await expectNotInRows(s.dbPath, [a.signing_secret, rotatedB]);
    if (!onPostgres) expectNotOnDisk(s.dbPath, [a.signing_secret, rotatedB]);
    await sealed.close();
    extraServices.splice(extraServices.indexOf(sealed), 1);
    if (!onPostgres) expectNotOnDisk(s.dbPath, [a.signing_secret, rotatedB]);

    // And a later start with the same key reads them unchanged.
    const again = await openService(s.dbPath, SECRET_KEY);
    expect(await again.store.webhookEndpoints.signingSecret(a.id)).toBe(a.signing_secret);
    expect(await again.store.webhookEndpoints.signingSecret(b.id)).toBe(rotatedB);
  });

  it('fails clearly, without changing anything, when the database is opened with a different key', async () => {
    const s = await start(SECRET_KEY);
    const created = await createEndpoint(s);
    const sealedValue = await storedValue(s.service, created.id);
    await stopKeepingFiles(s);

    const wrong = await openService(s.dbPath, OTHER_KEY);
    const attempt = wrong.store.webhookEndpoints.signingSecret(created.id);
    await expect(attempt).rejects.toThrow(SecretCipherError);
    await expect(wrong.store.webhookEndpoints.signingSecret(created.id)).rejects.toThrow(/ALERTS_SECRET_KEY/);
    expect(await storedValue(wrong, created.id)).toBe(sealedValue);
    await wrong.close();
    extraServices.splice(extraServices.indexOf(wrong), 1);

    const right = await openService(s.dbPath, SECRET_KEY);
    expect(await right.store.webhookEndpoints.signingSecret(created.id)).toBe(created.signing_secret);
  });

  it('fails clearly when sealed secrets are opened with no key configured', async () => {
    const s = await start(SECRET_KEY);
    const created = await createEndpoint(s);
    await stopKeepingFiles(s);

    const keyless = await openService(s.dbPath);
    await expect(keyless.store.webhookEndpoints.signingSecret(created.id)).rejects.toThrow(SecretCipherError);
    await expect(keyless.store.webhookEndpoints.signingSecret(created.id)).rejects.toThrow(/ALERTS_SECRET_KEY is not set/);
    expect(await storedValue(keyless, created.id)).toMatch(/^v1:/);
  });

  it('binds a sealed secret to its endpoint: copied onto another endpoint it does not open', async () => {
    const s = await start(SECRET_KEY);
    const a = await createEndpoint(s, { name: 'a' });
    const b = await createEndpoint(s, { name: 'b' });
    const sealedA = await storedValue(s.service, a.id);
    await s.service.store.db.updateTable('webhook_endpoints').set({ signing_secret: sealedA }).where('id', '=', b.id).execute();
    await expect(s.service.store.webhookEndpoints.signingSecret(b.id)).rejects.toThrow(SecretCipherError);
    expect(await s.service.store.webhookEndpoints.signingSecret(a.id)).toBe(a.signing_secret);
  });

  it.runIf(onPostgres)('with ALERTS_SECRET_KEY, keeps created and rotated secrets out of every stored row while signing with the current one', async () => {
    const s = await start(SECRET_KEY);
    const a = await createEndpoint(s, { name: 'a' });
    const b = await createEndpoint(s, { name: 'b' });
    const rotated = await s.request('POST', `/v1/webhook-endpoints/${b.id}/rotate-secret`);
    expect(rotated.status).toBe(200);

    await expectNotInRows(s.dbPath, [a.signing_secret, b.signing_secret, rotated.body.signing_secret]);
    expect(await storedValue(s.service, a.id)).toMatch(/^v1:/);
    expect(await storedValue(s.service, b.id)).toMatch(/^v1:/);
    expect(await s.service.store.webhookEndpoints.signingSecret(a.id)).toBe(a.signing_secret);
    expect(await s.service.store.webhookEndpoints.signingSecret(b.id)).toBe(rotated.body.signing_secret);
  });

  it.runIf(onPostgres)('without ALERTS_SECRET_KEY, stores the secret marked plain: in its row, and signs with it', async () => {
    const s = await start();
    const created = await createEndpoint(s);
    expect(await storedValue(s.service, created.id)).toBe(`plain:${created.signing_secret}`);
    expect(await s.service.store.webhookEndpoints.signingSecret(created.id)).toBe(created.signing_secret);
    // The same row check that proves absence above does find a secret stored in the clear.
    expect((await storedRows(s.dbPath)).includes(created.signing_secret)).toBe(true);
  });

  it('with ALERTS_SECRET_KEY, seals the previous secret a rotation with overlap keeps, like the current one', async () => {
    const s = await start(SECRET_KEY);
    const created = await createEndpoint(s);
    const rotated = await s.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret?overlap=1h`);
    expect(rotated.status, rotated.text).toBe(200);
    const fresh = rotated.body.signing_secret as string;

    const row = await s.service.store.db
      .selectFrom('webhook_endpoints')
      .select(['signing_secret', 'previous_signing_secret'])
      .where('id', '=', created.id)
      .executeTakeFirstOrThrow();
    expect(row.signing_secret).toMatch(/^v1:/);
    expect(row.previous_signing_secret).toMatch(/^v1:/);
    await expectNotInRows(s.dbPath, [created.signing_secret, fresh]);
    if (!onPostgres) expectNotOnDisk(s.dbPath, [created.signing_secret, fresh]);
    expect(await s.service.store.webhookEndpoints.signingSecrets(created.id)).toEqual({
      current: fresh,
      previous: { secret: created.signing_secret, expiresAt: expect.any(Number) },
    });
  });

  it('seals a previous secret kept in plain text when the database is next opened with a key', async () => {
    const s = await start();
    const created = await createEndpoint(s);
    const fresh = (await s.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret?overlap=24h`)).body.signing_secret as string;
    await stopKeepingFiles(s);

    const sealed = await openService(s.dbPath, SECRET_KEY);
    expect(sealed.store.schema.sealedSecrets).toBe(1);
    const row = await sealed.store.db
      .selectFrom('webhook_endpoints')
      .select(['signing_secret', 'previous_signing_secret'])
      .where('id', '=', created.id)
      .executeTakeFirstOrThrow();
    expect(row.signing_secret).toMatch(/^v1:/);
    expect(row.previous_signing_secret).toMatch(/^v1:/);
    expect((await sealed.store.webhookEndpoints.signingSecrets(created.id))?.previous?.secret).toBe(created.signing_secret);
    expect(await sealed.store.webhookEndpoints.signingSecret(created.id)).toBe(fresh);
    await expectNotInRows(s.dbPath, [created.signing_secret, fresh]);
    if (!onPostgres) expectNotOnDisk(s.dbPath, [created.signing_secret, fresh]);
  });

  it('rejects an ALERTS_SECRET_KEY shorter than 32 characters at startup', () => {
    expect(() => loadConfig({ DATABASE_URL: ':memory:', ALERTS_SECRET_KEY: 'x'.repeat(31) })).toThrow(ConfigError);
    expect(loadConfig({ DATABASE_URL: ':memory:', ALERTS_SECRET_KEY: 'x'.repeat(32) }).secretKey).toBe('x'.repeat(32));
  });
});
