import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadCliSettings } from '../src/config.js';
import { demoServiceUrl } from '../src/cli/demo.js';
import { killAllChildren, lastLine, runCli, startCliServer, type CliResult } from './helpers/cli-process.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase, onPostgres, testDatabaseKind } from './helpers/database.js';

const KEY_FORMAT = /^alk_[A-Za-z0-9]{43}$/;
/** A line of a Node.js stack trace, or a source location: never shown to an operator. */
const STACK_FRAME = /^\s+at .+|\.(?:js|ts):\d+/m;

let dir: string;
let dbPath: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-cli-test-'));
  // The directory's SQLite file, or its own PostgreSQL schema (TEST_DATABASE_URL).
  dbPath = await databaseUrlFor(dir);
});
afterEach(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
  await dropDatabaseFor(dir);
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd: dir, env: { DATABASE_URL: dbPath, ...env } });
const serve = (env: Record<string, string> = {}) => startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath, ...env } });

async function createKey(account: string, env: Record<string, string> = {}): Promise<string> {
  const result = await cli(['keys', 'create', '--account', account], env);
  expect(result.code, result.stderr).toBe(0);
  return lastLine(result.stdout);
}

interface ListedKey {
  id: string;
  account: string;
  prefix: string;
  status: string;
  line: string;
}

/** `alerts keys list`, parsed; every data line is tab-separated ID, ACCOUNT, PREFIX, CREATED, STATUS. */
async function listKeys(env: Record<string, string> = {}): Promise<{ result: CliResult; keys: ListedKey[] }> {
  const result = await cli(['keys', 'list'], env);
  expect(result.code, result.stderr).toBe(0);
  const keys = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('key_'))
    .map((line) => {
      const [id = '', account = '', prefix = '', , status = ''] = line.split('\t');
      return { id, account, prefix, status, line };
    });
  return { result, keys };
}

const listedFor = (keys: ListedKey[], key: string) => keys.find((k) => key.startsWith(k.prefix.replace(/…$/, '')));

async function status(baseUrl: string, key: string | undefined): Promise<number> {
  const res = await fetch(`${baseUrl}/v1/alert-rules`, { headers: key === undefined ? {} : { 'x-api-key': key } });
  await res.arrayBuffer();
  return res.status;
}

function expectCleanFailure(result: CliResult, message: string | RegExp): void {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).not.toBe(0);
  expect(result.code).not.toBeNull();
  if (typeof message === 'string') expect(result.stderr).toContain(message);
  else expect(result.stderr).toMatch(message);
  expect(result.stderr, 'an operator sees the reason, not a stack trace').not.toMatch(STACK_FRAME);
}

describe('alerts keys create', () => {
  it('prints the new key alone on the last stdout line, and that key authenticates against a server on the same database', async () => {
    const result = await cli(['keys', 'create', '--account', 'acme']);
    expect(result.code, result.stderr).toBe(0);
    const key = lastLine(result.stdout);
    expect(key).toMatch(KEY_FORMAT);
    expect(result.stdout.endsWith(key + '\n')).toBe(true);

    const server = await serve();
    expect(await status(server.baseUrl, key)).toBe(200);
    expect(await status(server.baseUrl, undefined)).toBe(401);
    expect(await status(server.baseUrl, key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'))).toBe(401);
  });

  it('gives every key a fresh random value, even for the same account', async () => {
    const a = await createKey('acme');
    const b = await createKey('acme');
    expect(a).toMatch(KEY_FORMAT);
    expect(b).toMatch(KEY_FORMAT);
    expect(a).not.toBe(b);
  });

  it('exits non-zero without printing a key when --account is missing or blank', async () => {
    const missing = await cli(['keys', 'create']);
    expect(missing.code).not.toBe(0);
    expect(missing.code).not.toBeNull();
    expect(missing.stderr).toContain('--account');
    expect(missing.stdout).not.toMatch(/alk_/);

    const blank = await cli(['keys', 'create', '--account', '   ']);
    expectCleanFailure(blank, '--account');
    expect(blank.stdout).not.toMatch(/alk_/);

    expect((await listKeys()).keys).toEqual([]);
  });
});

describe('alerts keys list', () => {
  it('shows the id, account and prefix of every key but never a full key', async () => {
    const acme = await createKey('acme');
    const globex = await createKey('globex');
    const { result, keys } = await listKeys();

    expect(keys).toHaveLength(2);
    const acmeRow = listedFor(keys, acme);
    const globexRow = listedFor(keys, globex);
    expect(acmeRow).toMatchObject({ account: 'acme', status: 'active' });
    expect(globexRow).toMatchObject({ account: 'globex', status: 'active' });
    expect(acmeRow!.id).toMatch(/^key_[A-Za-z0-9]+$/);
    expect(globexRow!.id).toMatch(/^key_[A-Za-z0-9]+$/);
    expect(acmeRow!.id).not.toBe(globexRow!.id);
    expect(acmeRow!.prefix).toMatch(/^alk_/);

    expect(result.stdout).not.toContain(acme);
    expect(result.stdout).not.toContain(globex);
    // Not even most of it: the shown prefix is short.
    expect(result.stdout).not.toContain(acme.slice(0, 20));
    expect(result.stderr).toBe('');
  });

  it('says there are no keys yet on an empty database, and exits 0', async () => {
    const result = await cli(['keys', 'list']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/no api keys/i);
  });
});

describe('alerts keys revoke', () => {
  it('makes the key get 401 from the running server at once when the auth cache is off, while other keys keep working', async () => {
    const revoked = await createKey('acme');
    const kept = await createKey('acme');
    const server = await serve({ ALERTS_AUTH_CACHE_TTL_MS: '0' });
    expect(await status(server.baseUrl, revoked)).toBe(200);

    const id = listedFor((await listKeys()).keys, revoked)!.id;
    const result = await cli(['keys', 'revoke', id]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(id);

    expect(await status(server.baseUrl, revoked)).toBe(401);
    expect(await status(server.baseUrl, kept)).toBe(200);
    const listed = (await listKeys()).keys;
    expect(listedFor(listed, revoked)!.status).toMatch(/^revoked /);
    expect(listedFor(listed, kept)!.status).toBe('active');
  });

  it('reaches a server with the default auth cache within its 5 s TTL, and the key stays rejected', async () => {
    const revoked = await createKey('acme');
    const server = await serve();
    // The key is now in the server's cache of live keys.
    expect(await status(server.baseUrl, revoked)).toBe(200);

    const id = listedFor((await listKeys()).keys, revoked)!.id;
    expect((await cli(['keys', 'revoke', id])).code).toBe(0);
    const revokedAt = Date.now();
    let rejectedAfter: number | undefined;
    while (Date.now() - revokedAt < 8_000) {
      if ((await status(server.baseUrl, revoked)) === 401) {
        rejectedAfter = Date.now() - revokedAt;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rejectedAfter, 'the revoked key is rejected within the TTL (plus scheduling slack)').toBeDefined();
    expect(rejectedAfter!).toBeLessThanOrEqual(5_000 + 1_000);
    for (let i = 0; i < 3; i++) expect(await status(server.baseUrl, revoked)).toBe(401);
  });

  it('exits non-zero with a message on stderr for an unknown id, and for a key already revoked', async () => {
    const unknown = await cli(['keys', 'revoke', 'key_doesnotexist0000000000']);
    expectCleanFailure(unknown, 'key_doesnotexist0000000000');
    expect(unknown.stdout).toBe('');

    const key = await createKey('acme');
    const id = listedFor((await listKeys()).keys, key)!.id;
    expect((await cli(['keys', 'revoke', id])).code).toBe(0);
    const again = await cli(['keys', 'revoke', id]);
    expectCleanFailure(again, id);
  });
});

describe('DATABASE_URL', () => {
  // SQLite file paths and their URL forms: PostgreSQL has its own URLs (the test after these).
  it.skipIf(onPostgres)('accepts sqlite:<path>, sqlite://<path> and file:<path> for the same file as a plain path', async () => {
    const key = await createKey('acme', { DATABASE_URL: `sqlite:${dbPath}` });
    expect(existsSync(dbPath)).toBe(true);
    await createKey('globex', { DATABASE_URL: `sqlite://${dbPath}` });
    await createKey('initech', { DATABASE_URL: `file:${dbPath}` });

    const { keys } = await listKeys({ DATABASE_URL: dbPath });
    expect(keys.map((k) => k.account).sort()).toEqual(['acme', 'globex', 'initech']);

    const server = await serve({ DATABASE_URL: `sqlite:${dbPath}` });
    expect(await status(server.baseUrl, key)).toBe(200);
  });

  it.skipIf(onPostgres)('resolves a relative sqlite: path from the working directory', async () => {
    await createKey('acme', { DATABASE_URL: 'sqlite:./nested/rel.db' });
    expect(existsSync(join(dir, 'nested', 'rel.db'))).toBe(true);
    expect((await listKeys({ DATABASE_URL: join(dir, 'nested', 'rel.db') })).keys).toHaveLength(1);
  });

  it.runIf(onPostgres)('accepts postgres:// and postgresql:// URLs for the same database', async () => {
    const postgresql = dbPath.replace(/^postgres:\/\//, 'postgresql://');
    expect(postgresql).not.toBe(dbPath);
    const key = await createKey('acme', { DATABASE_URL: postgresql });
    await createKey('globex', { DATABASE_URL: dbPath });

    const { keys } = await listKeys({ DATABASE_URL: postgresql });
    expect(keys.map((k) => k.account).sort()).toEqual(['acme', 'globex']);

    const server = await serve({ DATABASE_URL: postgresql });
    expect(await status(server.baseUrl, key)).toBe(200);
  });

  it('refuses an unknown scheme with a message naming DATABASE_URL', async () => {
    const result = await cli(['keys', 'list'], { DATABASE_URL: 'mysql://127.0.0.1/alerts' });
    expectCleanFailure(result, 'DATABASE_URL');
  });
});

describe('alerts migrate', () => {
  it(`applies every migration to a new database, then says it is up to date (${testDatabaseKind})`, async () => {
    const first = await cli(['migrate']);
    expect(first.code, first.stderr).toBe(0);
    const applied = new RegExp(`^Applied (\\d+) migration\\(s\\) to .* \\(${testDatabaseKind}\\): 0001-initial, .*\\. Now at (\\S+)\\.$`, 'm').exec(first.stdout);
    expect(applied, first.stdout).not.toBeNull();
    expect(Number(applied![1])).toBeGreaterThan(1);
    const version = applied![2]!;

    const second = await cli(['migrate']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`is up to date at ${version}\\.`));
    expect(second.stdout).not.toContain('Applied');
  });

  it('is what a server started with ALERTS_AUTO_MIGRATE=off waits for: refused before, serving after', async () => {
    const refused = await cli(['serve'], { ALERTS_AUTO_MIGRATE: 'off', HOST: '127.0.0.1', PORT: '0' });
    expectCleanFailure(refused, /the database schema is behind this version \(pending: 0001-initial, .*\); run `alerts migrate`/);

    expect((await cli(['migrate'])).code).toBe(0);
    const key = await createKey('acme', { ALERTS_AUTO_MIGRATE: 'off' });
    const server = await serve({ ALERTS_AUTO_MIGRATE: 'off' });
    expect(await status(server.baseUrl, key)).toBe(200);
  });
});

describe('alerts backup', () => {
  // Copying the file is the SQLite backup, tested in operations.test.ts; PostgreSQL has its own tools.
  it.runIf(onPostgres)('refuses a PostgreSQL database, pointing to pg_dump, and writes no file', async () => {
    const result = await cli(['backup', 'copy.db']);
    expectCleanFailure(result, /alerts backup copies a SQLite file; back up PostgreSQL with its own tools \(pg_dump/);
    expect(result.stdout).toBe('');
    expect(existsSync(join(dir, 'copy.db'))).toBe(false);
  });
});

describe('alerts serve configuration', () => {
  it('exits non-zero with a message naming PORT when PORT is not a valid port', async () => {
    for (const port of ['http', '70000', '-1', '80.5']) {
      const result = await cli(['serve'], { PORT: port, HOST: '127.0.0.1' });
      expectCleanFailure(result, 'PORT');
    }
  });

  it('creates ALERTS_BOOTSTRAP_API_KEY under account "default" at start-up, once, across restarts', async () => {
    const bootstrapKey = 'bootstrap_' + randomBytes(24).toString('hex');
    const first = await serve({ ALERTS_BOOTSTRAP_API_KEY: bootstrapKey });
    expect(await status(first.baseUrl, bootstrapKey)).toBe(200);
    // A rule made with it survives the restart, so the restart reuses the same account.
    const created = await fetch(`${first.baseUrl}/v1/alert-rules`, {
      method: 'POST',
      headers: { 'x-api-key': bootstrapKey, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'volume', metric: 'call_volume', operator: '<', threshold_value: 5, window_duration: '5m' }),
    });
    expect(created.status).toBe(201);
    const rule = (await created.json()) as { id: string };
    expect((await first.stop()).code).toBe(0);

    const second = await serve({ ALERTS_BOOTSTRAP_API_KEY: bootstrapKey });
    expect(await status(second.baseUrl, bootstrapKey)).toBe(200);
    const got = await fetch(`${second.baseUrl}/v1/alert-rules/${rule.id}`, { headers: { 'x-api-key': bootstrapKey } });
    expect(got.status).toBe(200);
    expect((await second.stop()).code).toBe(0);

    const { result, keys } = await listKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ account: 'default', status: 'active' });
    expect(result.stdout).not.toContain(bootstrapKey);
    expect(first.stdout() + first.stderr() + second.stdout() + second.stderr()).not.toContain(bootstrapKey);
  });

  it('does not bring a revoked bootstrap key back to life on restart', async () => {
    const bootstrapKey = 'bootstrap_' + randomBytes(24).toString('hex');
    const first = await serve({ ALERTS_BOOTSTRAP_API_KEY: bootstrapKey });
    expect((await first.stop()).code).toBe(0);
    const { keys } = await listKeys();
    expect((await cli(['keys', 'revoke', keys[0]!.id])).code).toBe(0);

    const second = await serve({ ALERTS_BOOTSTRAP_API_KEY: bootstrapKey });
    expect(await status(second.baseUrl, bootstrapKey)).toBe(401);
    expect((await listKeys()).keys).toHaveLength(1);
  });

  it('refuses a bootstrap key shorter than 32 characters at start-up', async () => {
    const result = await cli(['serve'], { ALERTS_BOOTSTRAP_API_KEY: 'too-short-key', PORT: '0', HOST: '127.0.0.1' });
    expectCleanFailure(result, 'ALERTS_BOOTSTRAP_API_KEY');
    expect(result.stderr).not.toContain('too-short-key');
  });
});

describe('key storage', () => {
  async function keysAndServer() {
    const cliKey = await createKey('acme');
    const bootstrapKey = 'bootstrap_' + randomBytes(24).toString('hex');
    const server = await serve({ ALERTS_BOOTSTRAP_API_KEY: bootstrapKey });
    expect(await status(server.baseUrl, cliKey)).toBe(200);
    expect(await status(server.baseUrl, bootstrapKey)).toBe(200);
    return { cliKey, bootstrapKey, server };
  }

  // The bytes of the database files (the WAL among them) are SQLite's; on PostgreSQL the
  // stored rows are checked instead (the next test, which runs on both).
  it.skipIf(onPostgres)('keeps only hashes of keys in the database files: no raw key appears in their bytes', async () => {
    const { cliKey, bootstrapKey, server } = await keysAndServer();
    const readAll = () =>
      Buffer.concat(
        readdirSync(dir)
          .filter((name) => name.startsWith('alerts.db'))
          .map((name) => readFileSync(join(dir, name))),
      );
    // While the server runs (data may sit in the WAL) and after it has shut down.
    for (const bytes of [readAll(), await server.stop().then(readAll)]) {
      expect(bytes.includes('acme'), 'positive control: the account name is stored').toBe(true);
      expect(bytes.includes(cliKey)).toBe(false);
      expect(bytes.includes(bootstrapKey)).toBe(false);
      // Nor the random part of a key on its own.
      expect(bytes.includes(cliKey.slice(4))).toBe(false);
    }
  });

  it('keeps only hashes of keys in the database: no raw key appears in any row of any table', async () => {
    const { cliKey, bootstrapKey, server } = await keysAndServer();
    expect((await server.stop()).code).toBe(0);
    const db = inspectDatabase(dbPath);
    let stored: string;
    try {
      // PostgreSQL: only this test's schema (others live beside it in the same database).
      const schema = onPostgres ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]!.schema : undefined;
      const tables = (await db.introspection.getTables()).filter((t) => schema === undefined || t.schema === schema).map((t) => t.name);
      expect(tables).toContain('api_keys');
      const rows: unknown[] = [];
      for (const table of tables) rows.push(...(await sql`select * from ${sql.table(table)}`.execute(db)).rows);
      stored = JSON.stringify(rows);
    } finally {
      await db.destroy();
    }
    expect(stored.includes('"acme"'), 'positive control: the account name is stored').toBe(true);
    expect(stored).not.toContain(cliKey);
    expect(stored).not.toContain(bootstrapKey);
    expect(stored).not.toContain(cliKey.slice(4));
    expect(stored).not.toContain(bootstrapKey.slice(10));
  });
});

describe('alerts demo', () => {
  const BOOTSTRAP = 'demo-bootstrap-key-0123456789abcdefghijklmnop';

  /** The settings `alerts listen --tls` prints for a receiver using `home`'s throwaway certificate. */
  async function listenSettings(home: string): Promise<Record<string, string>> {
    const printed = await runCli(['listen', '--tls'], { cwd: dir, env: { HOME: home } });
    expect(printed.code, printed.stderr).toBe(0);
    const [, ca, cidrs] = /^ {2}NODE_EXTRA_CA_CERTS=(\S+) ALERTS_WEBHOOK_ALLOWED_CIDRS=(\S+)$/m.exec(printed.stdout)!;
    return { NODE_EXTRA_CA_CERTS: ca!, ALERTS_WEBHOOK_ALLOWED_CIDRS: cidrs! };
  }

  it('without a key says how to get one, and exits non-zero', async () => {
    const result = await cli(['demo', '--duration', '1'], { HOME: dir });
    expectCleanFailure(result, /no API key\. The demo uses ALERTS_API_KEY, else ALERTS_BOOTSTRAP_API_KEY/);
    expect(result.stderr).toContain('ALERTS_API_KEY=$(npx alerts keys create --account demo | tail -n1) npm run demo');
  });

  it('with no arguments finds the service by PORT and its key by ALERTS_BOOTSTRAP_API_KEY, and shows signed webhooks arriving', { timeout: 60_000 }, async () => {
    const home = join(dir, 'home');
    const server = await serve({ HOME: home, LOG_LEVEL: 'warn', ALERTS_BOOTSTRAP_API_KEY: BOOTSTRAP, ...(await listenSettings(home)) });
    const result = await runCli(['demo', '--duration', '6', '--incident-at', '1', '--incident-for', '3', '--incident-ratio', '1'], {
      cwd: dir,
      env: { HOME: home, PORT: String(server.port), HOST: '0.0.0.0', ALERTS_BOOTSTRAP_API_KEY: BOOTSTRAP },
      timeoutMs: 40_000,
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain(`alerts demo: http://127.0.0.1:${server.port}, 6 s`);
    expect(result.stdout).toMatch(/webhook {2}verified evt_\w+ alerts\.triggered rule="Test alert [^"]*" .*\[test\]\n/);
    expect(result.stdout).toContain('the signed test webhook arrived and verified');
    expect(result.stdout).toMatch(/FIRING {3}demo: p95 turn latency/);
    expect(result.stdout).toMatch(/webhook {2}verified evt_\w+ alerts\.triggered rule="demo: p95 turn latency \([^)]*\)" current_value=\d+ \(> 2000\)\n/);
    expect(result.stdout).not.toContain('REJECTED');
    expect(result.stdout).toMatch(/Received [2-9]\d* signed webhook\(s\) that verified/);
    // Its rules and its endpoint are gone.
    for (const path of ['/v1/alert-rules', '/v1/webhook-endpoints']) {
      const res = await fetch(`${server.baseUrl}${path}`, { headers: { 'x-api-key': BOOTSTRAP } });
      expect(((await res.json()) as { data: unknown[] }).data, path).toEqual([]);
    }
  });

  it('against a service started without the receiver settings, prints the exact line to start it with and carries on', { timeout: 60_000 }, async () => {
    const home = join(dir, 'home');
    const settings = await listenSettings(home);
    const server = await serve({ HOME: home, LOG_LEVEL: 'warn' });
    const key = await createKey('demo');
    const result = await runCli(['demo', '--duration', '2'], {
      cwd: dir,
      env: { HOME: home, PORT: String(server.port), ALERTS_API_KEY: key },
      timeoutMs: 40_000,
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toMatch(/could not deliver the test webhook \(blocked_address: .*ALERTS_WEBHOOK_ALLOWED_CIDRS opens ranges/);
    expect(result.stdout).toContain(
      `\n  NODE_EXTRA_CA_CERTS=${settings.NODE_EXTRA_CA_CERTS} ALERTS_WEBHOOK_ALLOWED_CIDRS=${settings.ALERTS_WEBHOOK_ALLOWED_CIDRS} npm start\n`,
    );
    expect(result.stdout).toContain('Carrying on with state changes only.');
    const res = await fetch(`${server.baseUrl}/v1/webhook-endpoints`, { headers: { 'x-api-key': key } });
    expect(((await res.json()) as { data: unknown[] }).data).toEqual([]);
  });
});

describe('CLI settings from the environment', () => {
  it('takes ALERTS_API_KEY before ALERTS_BOOTSTRAP_API_KEY, the service address from HOST and PORT, and comma-separated webhook secrets', () => {
    expect(loadCliSettings({})).toEqual({ apiKey: undefined, apiKeySource: undefined, serviceHost: '0.0.0.0', servicePort: 8080, webhookSecrets: [] });
    expect(loadCliSettings({ ALERTS_BOOTSTRAP_API_KEY: 'b', ALERTS_API_KEY: ' a ', HOST: '::1', PORT: '9090', ALERTS_WEBHOOK_SECRET: 'whsec_a, whsec_b,,' })).toEqual({
      apiKey: 'a',
      apiKeySource: 'ALERTS_API_KEY',
      serviceHost: '::1',
      servicePort: 9090,
      webhookSecrets: ['whsec_a', 'whsec_b'],
    });
    expect(loadCliSettings({ ALERTS_BOOTSTRAP_API_KEY: 'b', ALERTS_API_KEY: '' })).toMatchObject({ apiKey: 'b', apiKeySource: 'ALERTS_BOOTSTRAP_API_KEY' });
    expect(() => loadCliSettings({ PORT: 'eighty' })).toThrow(/PORT must be an integer from 0 to 65535/);
    expect(() => loadCliSettings({ PORT: '70000' })).toThrow(ConfigError);
  });

  it('points the demo at the address npm start listens on', () => {
    expect(demoServiceUrl({ serviceHost: '0.0.0.0', servicePort: 8080 })).toBe('http://127.0.0.1:8080');
    expect(demoServiceUrl({ serviceHost: '::', servicePort: 8081 })).toBe('http://127.0.0.1:8081');
    expect(demoServiceUrl({ serviceHost: '::1', servicePort: 8082 })).toBe('http://[::1]:8082');
    expect(demoServiceUrl({ serviceHost: 'localhost', servicePort: 8083 })).toBe('http://localhost:8083');
  });

  it('makes alerts demo exit 78 naming PORT when it is malformed', async () => {
    const result = await cli(['demo'], { HOME: dir, PORT: 'eighty', ALERTS_API_KEY: 'x' });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('PORT must be an integer');
  });
});
