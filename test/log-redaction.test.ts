import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../src/logger.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** API keys sent where they do not belong (the query string) never reach the log. */

let server: TestServer;
let lines: string[];

beforeEach(async () => {
  lines = [];
  const logger = createLogger('trace', { write: (line: string) => void lines.push(line) });
  server = await startTestServer({ logger });
});
afterEach(async () => {
  await server.close();
});

const logged = () => lines.join('');
const requestUrls = () =>
  lines
    .map((line) => JSON.parse(line) as { req?: { url?: string } })
    .map((line) => line.req?.url)
    .filter((url): url is string => url !== undefined);

describe('the request log', () => {
  it('never holds an API key sent in the query string, whatever the parameter is called, nor the x-api-key header', async () => {
    const key = server.key;
    const bootstrapLike = 'my-own-chosen-key-0123456789abcdefghijkl';
    for (const path of [
      `/v1/alert-rules?api_key=${key}`,
      `/v1/alert-rules?apikey=${encodeURIComponent(key)}&state=ok`,
      `/v1/alert-rules?x-api-key=${key}`,
      `/v1/alert-rules?project_id=${key}`,
      `/v1/alert-rules?${key}`,
      `/v1/alert-rules?token=${bootstrapLike}`,
      `/v1/nowhere/${key}?key=${key}`,
    ]) {
      await fetch(server.baseUrl + path, { headers: { 'x-api-key': key } }).then((res) => res.text());
    }
    await fetch(`${server.baseUrl}/v1/alert-rules?api_key=${key}`).then((res) => res.text());

    const text = logged();
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.slice(4));
    expect(text).not.toContain(bootstrapLike);
    const urls = requestUrls();
    expect(urls).toContain('/v1/alert-rules?api_key=[redacted]');
    expect(urls).toContain('/v1/alert-rules?apikey=[redacted]&state=ok');
    expect(urls).toContain('/v1/alert-rules?project_id=[redacted]');
    expect(urls).toContain('/v1/alert-rules?[redacted]');
    expect(urls).toContain('/v1/alert-rules?token=[redacted]');
    expect(urls).toContain('/v1/nowhere/[redacted]?key=[redacted]');
  });

  it('keeps the path and the API filters readable', async () => {
    await fetch(`${server.baseUrl}/v1/alert-rules?enabled=true&metric=call_volume&project_id=proj_abc&state=ok`, {
      headers: { 'x-api-key': server.key },
    }).then((res) => res.text());
    expect(requestUrls()).toContain('/v1/alert-rules?enabled=true&metric=call_volume&project_id=proj_abc&state=ok');
  });
});

describe('redactUrl', () => {
  it.each([
    ['/v1/alert-rules', '/v1/alert-rules'],
    ['/v1/alert-rules?', '/v1/alert-rules?'],
    ['/v1/alert-rules?state=ok&&enabled', '/v1/alert-rules?state=ok&&enabled'],
    ['/v1/x?access_token=abc&status=failed', '/v1/x?access_token=[redacted]&status=failed'],
    ['/v1/x?event_type=whsec_abc', '/v1/x?event_type=[redacted]'],
    ['/v1/x?alk_123=1', '/v1/x?[redacted]=[redacted]'],
  ])('turns %s into %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it('cuts a huge URL', () => {
    expect(redactUrl(`/v1/${'a'.repeat(10_000)}`).length).toBeLessThanOrEqual(2049);
  });
});
