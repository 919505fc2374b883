/**
 * `alerts serve` instances (the compiled CLI, dist/src/cli/main.js) as child processes, for
 * bench/cluster.ts. Each listens on its own free loopback port and is ready once /healthz
 * answers 200. Every child is tracked: all are SIGKILLed when this process exits, whether
 * normally, on an uncaught error or on SIGINT/SIGTERM, so no instance outlives the bench.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** The compiled CLI, next to this module in dist/. */
export const CLI_PATH = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** Output kept per instance (LOG_LEVEL=warn: only warnings and errors, normally little). */
const MAX_LOG_CHARS = 1024 * 1024;

export interface InstanceSpec {
  databaseUrl: string;
  /** ALERTS_BOOTSTRAP_API_KEY, 32+ printable characters. */
  apiKey: string;
  /** ALERTS_LEASE_TTL, e.g. "2s". */
  leaseTtl: string;
  /** More environment (over the defaults, under HOST and PORT). */
  env?: Record<string, string>;
}

export interface Instance {
  /** A label for the output: "#0", "#1", ... (a restarted instance keeps its label). */
  readonly label: string;
  readonly port: number;
  readonly pid: number;
  /** http://127.0.0.1:port */
  readonly baseUrl: string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM (SIGKILL after `graceMs`), then waits for the exit. */
  stop(graceMs?: number): Promise<void>;
  /** Everything it wrote on stdout and stderr (first MiB). */
  output(): string;
}

const running = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Kill every child on exit and on SIGINT/SIGTERM (other handlers, e.g. the schema drop, still run). */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      // Without another handler (bench/helpers.ts registers one once a schema exists), exit as the default would.
      if (process.listenerCount(signal) === 0) process.exit(130);
    });
  }
}

/** A port that was free on 127.0.0.1 a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (!address || typeof address === 'string') return reject(new Error('no address'));
      server.close(() => resolve(address.port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function launch(spec: InstanceSpec, label: string, port: number): Promise<Instance> {
  const env: NodeJS.ProcessEnv = {
    ...(process.env.PATH ? { PATH: process.env.PATH } : {}),
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    DATABASE_URL: spec.databaseUrl,
    ALERTS_BOOTSTRAP_API_KEY: spec.apiKey,
    ALERTS_LEASE_TTL: spec.leaseTtl,
    LOG_LEVEL: 'warn',
    ...spec.env,
    HOST: '127.0.0.1',
    PORT: String(port),
  };
  const proc = spawn(process.execPath, [CLI_PATH, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let output = '';
  const keep = (chunk: string) => {
    if (output.length < MAX_LOG_CHARS) output += chunk;
  };
  proc.stdout!.setEncoding('utf8').on('data', keep);
  proc.stderr!.setEncoding('utf8').on('data', keep);
  let hasExited = false;
  const exited = new Promise<void>((resolve) => {
    proc.once('error', (error) => {
      keep(`spawn error: ${error.message}\n`);
      hasExited = true;
      running.delete(proc);
      resolve();
    });
    proc.once('close', () => {
      hasExited = true;
      running.delete(proc);
      resolve();
    });
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (hasExited) throw new Error(`instance ${label} exited before it was ready (port ${port}): ${output.slice(-2000)}`);
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`instance ${label} was not ready within 30 s: ${output.slice(-2000)}`);
    }
    await sleep(25);
  }
  return {
    label,
    port,
    pid: proc.pid!,
    baseUrl,
    alive: () => !hasExited,
    exited,
    async kill9() {
      if (!hasExited) proc.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (!hasExited) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    output: () => output,
  };
}

/** Starts one `alerts serve`; resolves once /healthz answers 200 (retries on a port taken meanwhile). */
export async function startInstance(spec: InstanceSpec, label: string): Promise<Instance> {
  hookExit();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(spec, label, await freePort());
    } catch (error) {
      lastError = error;
      if (!/EADDRINUSE/.test(String(error))) throw error;
    }
  }
  throw lastError;
}

/** The warn/error log records of an instance's output, as "level msg" lines counted. */
export function logSummary(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  const names: Record<number, string> = { 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    let key: string;
    try {
      const record = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      key = `${names[record.level ?? 0] ?? `level ${record.level}`} ${record.msg ?? ''}${record.err?.message ? ` (${record.err.message})` : ''}`;
    } catch {
      key = `raw: ${line.slice(0, 200)}`;
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

// ---------------------------------------------------------------- CPU use (Linux /proc; NaN elsewhere)

const TICKS_PER_S = 100; // USER_HZ: 100 on Linux

/** CPU seconds (user + system) a process has used so far, NaN when unreadable. */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return NaN;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineSeconds(): { busy: number; total: number } {
  try {
    const values = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = values.reduce((sum, v) => sum + v, 0);
    const idle = (values[3] ?? 0) + (values[4] ?? 0);
    return { busy: (total - idle) / TICKS_PER_S, total: total / TICKS_PER_S };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

export interface CpuUse {
  /** Cores used on average by the given server processes together. */
  servers: number;
  /** By this process (the load generator). */
  self: number;
  /** By the whole machine (PostgreSQL and anything else running included). */
  machine: number;
}

/** Starts measuring; the function returned gives the average cores used since. */
export function cpuMeter(pids: readonly number[]): () => CpuUse {
  const t0 = performance.now();
  const servers0 = pids.map(cpuSecondsOf);
  const self0 = process.cpuUsage();
  const machine0 = machineSeconds();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const servers = pids.map(cpuSecondsOf).reduce((sum, s, i) => sum + (s - servers0[i]!), 0);
    const self = process.cpuUsage(self0);
    const machine = machineSeconds();
    return { servers: servers / seconds, self: (self.user + self.system) / 1e6 / seconds, machine: (machine.busy - machine0.busy) / seconds };
  };
}
