/**
 * Child process of `npm run bench:api`: serves either our API (real auth, on the database
 * DATABASE_URL the parent made and will drop: a SQLite file or a PostgreSQL schema) or a bare
 * Fastify app answering constants of the same size, and reports its port on stdout.
 */
import Fastify from 'fastify';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createService } from '../src/service.js';
import { pino } from 'pino';

const mode = process.argv[2];
// Request logs go to /dev/null on both sides: their cost is part of serving, the output is not.
const logSink = pino.destination({ dest: '/dev/null', sync: false });

const RULE = {
  name: 'High turn latency (p95)',
  project_id: 'proj_abc123',
  metric: 'turn_latency_p95',
  operator: '>=',
  threshold_value: 1500,
  window_duration: '5m',
};

async function ours(databaseUrl: string): Promise<void> {
  const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0' });
  const service = await createService({ config, logger: createLogger('info', logSink) });
  const reader = await service.apiKeys.create('reader');
  const writer = await service.apiKeys.create('writer');
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  const address = service.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  const base = `http://127.0.0.1:${address.port}`;
  const ruleIds: string[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${base}/v1/alert-rules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': reader.key },
      body: JSON.stringify({ ...RULE, name: `${RULE.name} #${i}` }),
    });
    ruleIds.push(((await res.json()) as { id: string }).id);
  }
  process.on('SIGTERM', () => {
    service.close().finally(() => process.exit(0));
  });
  process.stdout.write(JSON.stringify({ port: address.port, readerKey: reader.key, writerKey: writer.key, ruleId: ruleIds[3], rule: RULE }) + '\n');
}

/** The same framework and logger, answering pre-serialized bodies of the sizes ours returns. */
async function bare(sizes: { list: string; get: string; create: string; metrics: string }): Promise<void> {
  const app = Fastify({ loggerInstance: createLogger('info', logSink) as never, bodyLimit: 1024 * 1024 });
  app.get('/list', (_req, reply) => reply.type('application/json').send(sizes.list));
  app.get('/get', (_req, reply) => reply.type('application/json').send(sizes.get));
  app.post('/create', (_req, reply) => reply.status(201).type('application/json').send(sizes.create));
  app.delete('/create/:id', (_req, reply) => reply.status(204).send());
  app.get('/metrics', (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(sizes.metrics));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  process.on('SIGTERM', () => void app.close().finally(() => process.exit(0)));
  process.stdout.write(JSON.stringify({ port: address.port }) + '\n');
}

if (mode === 'ours') await ours(process.argv[3] ?? '');
else if (mode === 'bare') await bare(JSON.parse(process.argv[3] ?? '{}'));
else throw new Error('usage: api-server.js ours <database-url> | bare <bodies-json>');
