import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropRunSchemas, TEST_SCHEMA_PREFIX_ENV } from './helpers/database.js';

/** Where the test TLS material lives; read by test/helpers/https-receiver.ts. */
export const TEST_TLS_DIR_ENV = 'ALERTS_TEST_TLS_DIR';

/**
 * A throwaway certificate authority and a server certificate signed by it, made with the
 * openssl CLI for this run only. The server certificate names every loopback receiver the
 * tests use: localhost, a few .test names (mapped to loopback by the tests' own lookup;
 * Node does not accept the *.test wildcard, so they are also listed one by one), 127.0.0.1,
 * 127.0.0.2 and ::1.
 */
function makeTestCertificates(): string {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-test-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=alerts test CA (throwaway)',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(
    join(dir, 'server.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,DNS:rebind.test,DNS:receiver.test,DNS:mixed.test,DNS:*.test,IP:127.0.0.1,IP:127.0.0.2,IP:::1',
      '',
    ].join('\n'),
  );
  openssl(
    'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-sha256', '-extfile', 'server.ext',
  );
  return dir;
}

/**
 * Compiles once (and builds the console) so tests that start the real CLI as a child process run current code, and
 * makes the test CA. NODE_EXTRA_CA_CERTS is only read when a Node process starts, so it is
 * set here, before vitest forks its workers (and before tests spawn the CLI): every worker
 * then trusts the CA through Node's standard mechanism, with no option that turns
 * certificate checks off.
 */
export default function setup(): () => Promise<void> {
  // .ci/run builds once (npm ci's prepare) and runs both databases' suites at once: two builds
  // writing dist/ together would trip each other.
  if (process.env.ALERTS_TEST_PREBUILT !== '1') {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
    // The console the server serves at /console, from the current source (test/console.test.ts).
    execFileSync('npx', ['vite', 'build', '--config', 'console/vite.config.mjs', '--logLevel', 'warn'], { stdio: 'inherit' });
  }
  const dir = makeTestCertificates();
  process.env.NODE_EXTRA_CA_CERTS = join(dir, 'ca.crt');
  process.env[TEST_TLS_DIR_ENV] = dir;
  // On PostgreSQL, every schema of this run starts with this prefix, and goes at the end.
  const prefix = `t${process.pid}_${Date.now().toString(36)}_`;
  process.env[TEST_SCHEMA_PREFIX_ENV] = prefix;
  return async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropRunSchemas(prefix);
  };
}
