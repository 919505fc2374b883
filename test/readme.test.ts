import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAllChildren, startCliServer } from './helpers/cli-process.js';
import { databaseUrlFor, dropDatabaseFor } from './helpers/database.js';

/**
 * The README's walk-through, run as printed: the blocks marked `<!-- readme-test -->` in one
 * bash with -euo pipefail, against a real server on a loopback port started the way the
 * `<!-- readme-test: setup -->` block says. Only the service's base URL and the receiver's
 * port are replaced. Every call the walk-through makes fails the script on a non-2xx answer
 * (curl --fail-with-body), so a passing run means every status was the expected one.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

interface Block {
  kind: 'setup' | 'run';
  code: string;
}

/** The fenced sh blocks right after a readme-test marker, in order. */
function markedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const pattern = /^<!-- readme-test(: setup)? -->\n```sh\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(pattern)) blocks.push({ kind: match[1] ? 'setup' : 'run', code: match[2]! });
  return blocks;
}

let dir: string | undefined;
const groups: number[] = [];

afterEach(async () => {
  // The script's process group (npx and its children), then anything still running from the
  // test's own HOME (the receiver runs in a process group of its own).
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (dir) killProcessesMentioning(dir);
  await killAllChildren();
  if (dir) {
    rmSync(dir, { recursive: true, force: true });
    await dropDatabaseFor(dir);
  }
  dir = undefined;
});

/** Kills the processes whose command line names `path` (only ever ones this test started: `path` is its own temp dir). */
function killProcessesMentioning(path: string): void {
  if (!existsSync('/proc')) return;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.includes(path)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/** Runs a bash script with -euo pipefail in its own process group; resolves with its outcome. */
function bash(script: string, options: { cwd: string; env: Record<string, string>; timeoutMs: number }) {
  const file = join(dir!, `script-${groups.length}.sh`);
  writeFileSync(file, script);
  const child = spawn('bash', ['-euo', 'pipefail', file], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  groups.push(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, options.timeoutMs);
    child.once('error', reject);
    // 'exit', not 'close': a receiver started by the script may hold stdout open a moment longer.
    child.once('exit', (code) => {
      clearTimeout(timer);
      // Let the pipes deliver what was already written.
      setTimeout(() => resolve({ code, stdout, stderr }), 200);
    });
  });
}

describe('README walk-through', () => {
  const blocks = markedBlocks(README);

  it('marks a setup block and the walk-through blocks', () => {
    expect(blocks.filter((b) => b.kind === 'setup')).toHaveLength(1);
    expect(blocks.filter((b) => b.kind === 'run').length).toBeGreaterThanOrEqual(1);
    expect(blocks[0]!.kind).toBe('setup');
  });

  it('runs top to bottom against a real server and ends with a verified webhook at alerts listen', { timeout: 120_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-readme-test-'));
    const home = join(dir, 'home');
    mkdirSync(home);
    // The SQLite file of the test's directory, or its own PostgreSQL schema (TEST_DATABASE_URL).
    const dbPath = await databaseUrlFor(dir);
    // npx runs the repository's own bin: no registry traffic (offline, no update check), and no
    // rebuild (the test setup built dist/ already; a build here would race other test files).
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      DATABASE_URL: dbPath,
      npm_config_offline: 'true',
      npm_config_update_notifier: 'false',
      npm_config_ignore_scripts: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
    };

    // Setup, as the README says: `npx alerts listen --tls` prints the settings, then the service starts with them.
    const setup = blocks.find((b) => b.kind === 'setup')!.code;
    const setupLines = setup.split('\n').filter((line) => line.trim() !== '');
    expect(setupLines[0]).toMatch(/^npx alerts listen --tls(\s+#.*)?$/);
    const startLine = /^(NODE_EXTRA_CA_CERTS=(\S+) ALERTS_WEBHOOK_ALLOWED_CIDRS=(\S+)) npm start$/.exec(setupLines[1] ?? '');
    expect(startLine, setupLines[1]).not.toBeNull();
    const printed = await bash(setupLines[0]!.replace(/#.*$/, ''), { cwd: ROOT, env, timeoutMs: 60_000 });
    expect(printed.code, printed.stderr).toBe(0);
    const settings = /^ {2}(NODE_EXTRA_CA_CERTS=(\S+) ALERTS_WEBHOOK_ALLOWED_CIDRS=(\S+))$/m.exec(printed.stdout);
    expect(settings, printed.stdout).not.toBeNull();
    // What the README shows is what it prints (with ~ for the home directory).
    expect(startLine![1]!.replace('=~/', `=${home}/`)).toBe(settings![1]);

    const server = await startCliServer({
      cwd: dir,
      env: { DATABASE_URL: dbPath, HOME: home, LOG_LEVEL: 'warn', NODE_EXTRA_CA_CERTS: settings![2]!, ALERTS_WEBHOOK_ALLOWED_CIDRS: settings![3]! },
    });

    // The walk-through: only the base URL and the receiver's port change.
    let script = blocks
      .filter((b) => b.kind === 'run')
      .map((b) => b.code)
      .join('\n');
    expect(script.match(/^API=http:\/\/localhost:8080$/gm)).toHaveLength(1);
    script = script.replace(/^API=http:\/\/localhost:8080$/m, `API=${server.baseUrl}`);
    const receiverPort = await freePort();
    expect((script.match(/\b9000\b/g) ?? []).length).toBeGreaterThanOrEqual(3);
    script = script.replace(/\b9000\b/g, String(receiverPort));
    // Should the script stop half-way, its receiver (in a process group of its own) goes too.
    const cleanup = "trap 'for job in $(jobs -p); do kill -- -$job 2>/dev/null || true; done' EXIT\n";

    const run = await bash(cleanup + script, { cwd: ROOT, env, timeoutMs: 90_000 });
    const output = `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    expect(run.code, output).toBe(0);

    // The one error the walk-through shows on purpose.
    expect(run.stdout, output).toMatch(/"field":"threshold_value".* 400$/m);
    // Both deletes answered 204.
    expect(run.stdout.match(/^204$/gm), output).toHaveLength(2);
    expect(run.stdout, output).toMatch(/^\{"status":"ok"\}$/m);
    expect(run.stdout, output).toMatch(/^3\.1\.\d+$/m);
    // The rule was in "alert" and listed as an active alert.
    expect(run.stdout, output).toMatch(/"current_state":"alert"/);
    // The receiver verified the real alert and the test event; nothing was rejected.
    expect(run.stdout, output).toMatch(/ verified evt_\w+ alerts\.triggered rule="High turn latency \(p95\)" current_value=\d+ \(>= 2000\)\n/);
    expect(run.stdout, output).toMatch(/ verified evt_\w+ alerts\.triggered rule="Test alert [^"]*" current_value=1720 \(>= 1500\) \[test\]\n/);
    expect(run.stdout, output).toMatch(/"delivered":true/);
    expect(run.stdout, output).not.toContain('REJECTED');
    expect(run.stderr, output).not.toMatch(/curl: \(\d+\)/);
    await server.stop();
  });
});
