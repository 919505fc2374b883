import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The compiled CLI; test/global-setup.ts builds it before any test runs. */
export const CLI_PATH = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcess>();

/**
 * A clean environment for a child: only PATH and HOME are inherited, so settings of the
 * test runner (DATABASE_URL, PORT, ...) never leak into the CLI under test.
 */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  if (process.env.PATH) base.PATH = process.env.PATH;
  if (process.env.HOME) base.HOME = process.env.HOME;
  return { ...base, ...env };
}

function track(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  running.add(child);
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      running.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
}

/** Runs `alerts <args>` to completion. */
export async function runCli(args: string[], options: { env: Record<string, string>; cwd: string; timeoutMs?: number }): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: options.cwd, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  try {
    const { code, signal } = await track(child);
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
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

export interface CliServer {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stdout contains `text` (or rejects when the process exits or time runs out). */
  waitForStdout(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `alerts serve` as a child process on a free loopback port and waits until
 * /healthz answers 200. Retries with another port if the chosen one was taken meanwhile.
 */
export async function startCliServer(options: { env: Record<string, string>; cwd: string }): Promise<CliServer> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI_PATH, 'serve'], {
      cwd: options.cwd,
      env: childEnv({ LOG_LEVEL: 'info', ...options.env, HOST: '127.0.0.1', PORT: String(port) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hasExited = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = track(child);
    void exited.then(
      () => (hasExited = true),
      () => (hasExited = true),
    );
    const baseUrl = `http://127.0.0.1:${port}`;

    const waitForStdout = async (text: string | RegExp, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      const found = () => (typeof text === 'string' ? stdout.includes(text) : text.test(stdout));
      while (!found()) {
        if (hasExited) throw new Error(`server exited before printing ${String(text)}; stderr: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(text)} on stdout`);
        await sleep(20);
      }
    };

    const server: CliServer = {
      child,
      port,
      baseUrl,
      stdout: () => stdout,
      stderr: () => stderr,
      exited,
      waitForStdout,
      async stop(signal = 'SIGTERM') {
        if (!hasExited) child.kill(signal);
        return exited;
      },
    };

    const deadline = Date.now() + 15_000;
    while (!hasExited && Date.now() < deadline) {
      try {
        const res = await fetch(`${baseUrl}/healthz`);
        if (res.status === 200) return server;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    if (!hasExited) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`server did not become healthy; stderr: ${stderr}`);
    }
    await exited;
    lastError = new Error(`server exited during start-up; stdout: ${stdout}; stderr: ${stderr}`);
    if (!/EADDRINUSE/.test(stdout + stderr)) throw lastError;
  }
  throw lastError ?? new Error('server did not start');
}

/** Kills every child process a test left running and waits for them to exit. */
export async function killAllChildren(): Promise<void> {
  const children = [...running];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('close', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** The key printed alone on the last line of `alerts keys create`. */
export function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}
