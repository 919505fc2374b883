import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

export interface ConsolePluginOptions {
  /** The built console (index.html and assets/); default: the one found by findConsoleDir(). */
  dir?: string;
}

/** Looser than the API's `default-src 'none'`: the console loads its own script, style and data. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Where the built console is. Compiled, this module is dist/src/http/console.js and the build
 * is ../../console/; run from source (vitest), it is src/http/console.ts and the build is
 * ../../dist/console/. The source folder console/ also holds an index.html, so only one that
 * vite wrote (it points at /console/assets/) counts.
 */
export function findConsoleDir(moduleUrl: string = import.meta.url): string | null {
  for (const candidate of ['../../dist/console/', '../../console/']) {
    const dir = fileURLToPath(new URL(candidate, moduleUrl));
    const index = join(dir, 'index.html');
    if (existsSync(index) && readFileSync(index, 'utf8').includes('/console/assets/')) return dir;
  }
  return null;
}

interface ConsoleFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every file of the build, by its path relative to the build ('index.html', 'assets/x.js'). */
function readBuild(dir: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    const type = CONTENT_TYPES[extname(entry.name).toLowerCase()] ?? 'application/octet-stream';
    files.set(relative(dir, path).split(sep).join('/'), { body, type, etag });
  }
  return files;
}

/** True when the request's If-None-Match names this ETag (weak or strong, or `*`). */
function notModified(request: FastifyRequest, etag: string): boolean {
  const header = request.headers['if-none-match'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}

/**
 * Serves the operator console built by vite (npm run build) under /console. Files are read
 * once, here: a request never touches the disk and cannot name a path outside the build.
 */
export const consolePlugin: FastifyPluginAsync<ConsolePluginOptions> = async (app, options) => {
  let files = new Map<string, ConsoleFile>();
  try {
    const dir = options.dir ?? findConsoleDir();
    if (dir !== null) files = readBuild(dir);
  } catch (error) {
    // A build being rewritten meanwhile (vite empties its folder first) must not stop the API.
    app.log.warn({ err: error }, 'could not read the console build; /console answers 503');
    files = new Map();
  }
  const index = files.get('index.html');

  function send(reply: FastifyReply, request: FastifyRequest, file: ConsoleFile, cacheControl: string) {
    // These replace the API's `no-store` and `default-src 'none'` set by the app's onRequest hook.
    reply.header('content-security-policy', CONSOLE_CSP).header('cache-control', cacheControl).header('etag', file.etag);
    if (notModified(request, file.etag)) return reply.status(304).send();
    return reply.type(file.type).send(file.body);
  }

  function fail(reply: FastifyReply, status: number, message: string) {
    return reply.status(status).header('content-security-policy', CONSOLE_CSP).send({ message });
  }

  async function serve(request: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) {
    if (!index) return fail(reply, 503, 'the console was not built: run npm run build');
    const path = request.params['*'] ?? '';
    if (path.startsWith('assets/')) {
      const asset = files.get(path);
      // Asset names carry a hash of their content, so a browser may keep them for good.
      if (asset) return send(reply, request, asset, 'public, max-age=31536000, immutable');
      return fail(reply, 404, `no console asset ${path.slice('assets/'.length)}`);
    }
    const other = files.get(path);
    if (other && path !== '') return send(reply, request, other, 'no-cache');
    // A path without an extension is one of the console's own pages: the app routes it.
    if (extname(path) === '') return send(reply, request, index, 'no-cache');
    return fail(reply, 404, `no console file ${path}`);
  }

  const route = { schema: { hide: true } };
  app.get('/console', route, serve);
  app.get('/console/', route, serve);
  app.get('/console/*', route, serve);
};
