import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddressGuard } from '../src/delivery/address-guard.js';
import { createWebhookClient } from '../src/delivery/webhook-client.js';
import type { WebhookClient } from '../src/domain/ports/webhook-client.js';
import { TEST_TLS_DIR_ENV } from './global-setup.js';

/** A certificate from the test CA naming only `subjectAltName`, and a server presenting it. */
function serverWith(subjectAltName: string, dir: string, name: string): Promise<Server> {
  const caDir = process.env[TEST_TLS_DIR_ENV]!;
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${subjectAltName}\nbasicConstraints=CA:FALSE\n`);
  run('x509', '-req', '-in', `${name}.csr`, '-CA', join(caDir, 'ca.crt'), '-CAkey', join(caDir, 'ca.key'), '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  const server = createServer({ key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.crt`)) }, (_req, res) => {
    res.writeHead(200).end('ok');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('TLS checks of webhook attempts to an IP-literal URL', () => {
  let dir: string;
  let ipOnly: Server;
  let nameOnly: Server;
  let client: WebhookClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-tls-'));
    ipOnly = await serverWith('IP:127.0.0.1', dir, 'ip-only');
    nameOnly = await serverWith('DNS:localhost', dir, 'name-only');
    client = createWebhookClient({ guard: createAddressGuard(['127.0.0.1/32']) });
  });
  afterAll(async () => {
    await client.close();
    ipOnly.close();
    nameOnly.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = (server: Server) =>
    client.send({ url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, headers: {}, body: '{}', timeoutMs: 5000 });

  it('accepts a certificate issued for that IP address', async () => {
    const result = await send(ipOnly);
    expect(result.errorClass).toBeNull();
    expect(result.statusCode).toBe(200);
  });

  it('refuses a certificate that names only another host, even one that resolves to that IP', async () => {
    const result = await send(nameOnly);
    expect(result.statusCode).toBeNull();
    expect(result.errorClass).toBe('tls');
  });
});
