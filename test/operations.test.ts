/**
 * What operators run into: backups, the version, shutdown when nobody reads the logs any
 * more, database paths that cannot work, and log lines worth reading.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { databaseUrlFor, dropDatabaseFor, onPostgres, TEST_DATABASE_URL } from './helpers/database.js';
import { killAllChildren, lastLine, runCli, startCliServer } from './helpers/cli-process.js';
import { startHttpsReceiver } from './helpers/https-receiver.js';
import { startTestServer } from './helpers/server.js';
import { createEndpoint, eventually, triggerAlert } from './helpers/webhook-fixtures.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

let dir: string;
let dbPath: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-ops-'));
  dbPath = await databaseUrlFor(dir);
});
afterEach(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
  await dropDatabaseFor(dir);
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd: dir, env: { DATABASE_URL: dbPath, ...env }, timeoutMs: 15_000 });

/** Rows of a table in a SQLite file, read straight from the file (the backup test's copies). */
function count(path: string, table: string): number {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

// `alerts backup` copies a SQLite file (WAL included); on PostgreSQL it refuses and points
// to pg_dump (cli.test.ts), so this runs on SQLite only.
describe.skipIf(onPostgres)('alerts backup', () => {
  it('copies a running database consistently, WAL included, and the copy serves as a restored database', { timeout: 60_000 }, async () => {
    const key = lastLine((await cli(['keys', 'create', '--account', 'acme'])).stdout);
    const server = await startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath } });
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.baseUrl}/v1/alert-rules`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `rule ${i}`, metric: 'call_volume', operator: '>', threshold_value: 100, window_duration: '5m' }),
      });
      expect(res.status).toBe(201);
    }

    // A plain copy of the database file alone misses what is still in its -wal file.
    copyFileSync(dbPath, join(dir, 'plain-copy.db'));
    let plainRules: number;
    try {
      plainRules = count(join(dir, 'plain-copy.db'), 'alert_rules');
    } catch {
      plainRules = 0;
    }
    expect(plainRules).toBeLessThan(5);

    mkdirSync(join(dir, 'backups'));
    const backup = await cli(['backup', 'backups/alerts-copy.db']);
    expect(backup.code, backup.stderr).toBe(0);
    const copy = join(dir, 'backups', 'alerts-copy.db');
    expect(backup.stdout).toContain(`to ${copy}`);
    expect(count(copy, 'alert_rules')).toBe(5);
    expect(count(copy, 'api_keys')).toBe(1);

    // Never over an existing file.
    const again = await cli(['backup', copy]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already exists');

    // Restore: a server on the copy has everything.
    expect((await server.stop()).code).toBe(0);
    const restored = await startCliServer({ cwd: dir, env: { DATABASE_URL: copy } });
    const listed = await fetch(`${restored.baseUrl}/v1/alert-rules`, { headers: { 'x-api-key': key } });
    expect(((await listed.json()) as { data: unknown[] }).data).toHaveLength(5);
  });
});

describe('the version', () => {
  it('is printed by alerts --version and logged when the server starts', async () => {
    const printed = await cli(['--version']);
    expect(printed.code).toBe(0);
    expect(printed.stdout.trim()).toBe(VERSION);
    const server = await startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath } });
    await server.waitForStdout(`"version":"${VERSION}"`);
    expect(server.stdout()).toContain(`alerts ${VERSION} started`);
  });
});

describe('shutdown when nothing reads stdout any more', () => {
  it('still exits on SIGTERM, within the shutdown timeout', { timeout: 30_000 }, async () => {
    const server = await startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath, ALERTS_SHUTDOWN_TIMEOUT_MS: '3000' } });
    // Whatever read our logs has gone away (`npm start | head`): the pipe is closed. The
    // next lines written, the shutdown's own, are the first to meet the broken pipe.
    server.child.stdout!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    server.child.kill('SIGTERM');
    const exit = await Promise.race([server.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 8000))]);
    expect(exit, 'the process must end').not.toBe('hung');
    expect(Date.now() - started).toBeLessThan(3000 + 1500);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

describe('DATABASE_URL that cannot work', () => {
  // File paths that SQLite cannot open: not a question on PostgreSQL, whose counterpart follows.
  it.skipIf(onPostgres)('fails fast, naming the variable, the path and the reason, in serve and in CLI commands', { timeout: 60_000 }, async () => {
    mkdirSync(join(dir, 'a-folder'));
    writeFileSync(join(dir, 'not-a-db.db'), 'this is not a database, just some text that is long enough to have a header\n'.repeat(20));
    const cases: [string, RegExp][] = [
      ['/proc/x/alerts.db', /^alerts: DATABASE_URL=\/proc\/x\/alerts\.db: cannot create the folder \/proc\/x: /m],
      [join(dir, 'a-folder'), new RegExp(`DATABASE_URL=${join(dir, 'a-folder')}: cannot open the database file ${join(dir, 'a-folder')}: it is a folder, not a file`)],
      [join(dir, 'not-a-db.db'), new RegExp(`DATABASE_URL=${join(dir, 'not-a-db.db')}: cannot open the database file .*: file is not a database`)],
    ];
    for (const [url, message] of cases) {
      for (const args of [['keys', 'list'], ['serve']]) {
        const started = Date.now();
        const result = await cli(args, { DATABASE_URL: url, HOST: '127.0.0.1', PORT: '0' });
        expect(result.code, `${url} ${args.join(' ')}: ${result.stderr}`).not.toBe(0);
        expect(result.code).not.toBeNull();
        expect(result.stderr).toMatch(message);
        expect(result.stderr).not.toMatch(/^\s+at /m);
        expect(Date.now() - started).toBeLessThan(5000);
      }
    }
  });

  it.runIf(onPostgres)(
    'fails fast on a PostgreSQL server out of reach or a database that does not exist, naming the variable and the reason, not the password',
    { timeout: 60_000 },
    async () => {
      const base = new URL(TEST_DATABASE_URL!);
      base.password = 'hunter2-not-to-be-shown';
      const unreachable = new URL(base);
      unreachable.port = '1';
      const missing = new URL(base);
      missing.pathname = `/no_such_database_${process.pid}`;
      const cases: [string, string][] = [
        [unreachable.toString(), 'ECONNREFUSED'],
        [missing.toString(), `database "no_such_database_${process.pid}" does not exist`],
      ];
      for (const [url, reason] of cases) {
        for (const args of [['keys', 'list'], ['serve']]) {
          const started = Date.now();
          const result = await cli(args, { DATABASE_URL: url, HOST: '127.0.0.1', PORT: '0' });
          expect(result.code, `${url} ${args.join(' ')}: ${result.stderr}`).not.toBe(0);
          expect(result.code).not.toBeNull();
          expect(result.stderr).toMatch(/^alerts: DATABASE_URL=postgres(ql)?:\/\/\S*:\*\*\*@/m);
          expect(result.stderr).toContain(reason);
          expect(result.stderr).not.toContain('hunter2');
          expect(result.stderr).not.toMatch(/^\s+at /m);
          expect(Date.now() - started).toBeLessThan(5000);
        }
      }
    },
  );
});

describe('log lines', () => {
  it('say each rule state change and each final delivery outcome at info', async () => {
    const lines: Record<string, any>[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, any>) });
    const s = await startTestServer({ logger, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ALERTS_DELIVERY_WORKER: 'on' } });
    const r = await startHttpsReceiver();
    try {
      const endpoint = await createEndpoint(s, { url: r.url });
      const rule = await triggerAlert(s);
      await r.waitFor(1);
      const changes = lines.filter((l) => l.rule_id === rule.id && l.level === 30);
      expect(changes.map((l) => [l.from, l.to])).toEqual([
        ['unknown', 'no_data'],
        ['no_data', 'alert'],
      ]);
      expect(changes[1]).toMatchObject({ account_id: expect.stringMatching(/^acc_/), value: 1, event_id: expect.stringMatching(/^evt_/) });
      const outcome = await eventually(
        async () => lines.find((l) => l.msg === 'webhook delivered'),
        (l) => l !== undefined,
      );
      expect(outcome).toMatchObject({ level: 30, outcome: 'delivered', endpoint_id: endpoint.id, attempts: 1, delivery_id: expect.stringMatching(/^dlv_/) });
    } finally {
      await s.close();
      await r.close();
    }
  });
});
