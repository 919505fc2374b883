import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';

/**
 * Answers for what Node's HTTP parser rejects before any request exists (a malformed request
 * line, header fields too large, a bad Content-Length, a request not received in time): the
 * same `{"message"}` JSON, security headers and `x-request-id` as every other answer, written
 * straight to the socket, which is then closed.
 */

interface ClientErrorAnswer {
  status: number;
  reason: string;
  message: string;
}

const ANSWERS: Record<string, ClientErrorAnswer> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', message: 'the request was not received in time' },
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', message: 'request header fields are too large' },
  HPE_INVALID_CONTENT_LENGTH: { status: 400, reason: 'Bad Request', message: 'the Content-Length header is not valid' },
  HPE_UNEXPECTED_CONTENT_LENGTH: {
    status: 400,
    reason: 'Bad Request',
    message: 'the Content-Length header is not valid here (repeated, or beside Transfer-Encoding)',
  },
  HPE_INVALID_TRANSFER_ENCODING: { status: 400, reason: 'Bad Request', message: 'the Transfer-Encoding header is not valid' },
  HPE_INVALID_CHUNK_SIZE: { status: 400, reason: 'Bad Request', message: 'malformed chunked request body' },
  HPE_INVALID_EOF_STATE: { status: 400, reason: 'Bad Request', message: 'the connection ended before the whole request arrived' },
};

const MALFORMED: ClientErrorAnswer = { status: 400, reason: 'Bad Request', message: 'malformed HTTP request' };

/** The raw bytes of a complete HTTP/1.1 answer that closes the connection. */
export function rawErrorResponse(answer: ClientErrorAnswer, headers: Readonly<Record<string, string>>, requestId: string): string {
  const body = JSON.stringify({ message: answer.message });
  const lines = [
    `HTTP/1.1 ${answer.status} ${answer.reason}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    `x-request-id: ${requestId}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** How long a closing socket may take to flush the answer before it is destroyed anyway. */
const FLUSH_GRACE_MS = 1000;

/**
 * Fastify's `clientErrorHandler` (called with the Fastify instance as `this`): answers, when
 * nothing was sent on the socket yet, and closes the connection.
 */
export function createClientErrorHandler(
  headers: Readonly<Record<string, string>>,
): (this: { log: FastifyBaseLogger }, error: Error & { code?: string }, socket: Socket) => void {
  return function handleClientError(error, socket) {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const answer = (error.code !== undefined ? ANSWERS[error.code] : undefined) ?? MALFORMED;
    const requestId = randomUUID();
    this.log.info({ reqId: requestId, status: answer.status, code: error.code }, `client error: ${answer.message}`);
    // As Node does: never write into the middle of a response that has already started.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) socket.end(rawErrorResponse(answer, headers, requestId));
    socket.destroySoon();
    setTimeout(() => socket.destroy(), FLUSH_GRACE_MS).unref();
  };
}

/**
 * A request with an `Expect` header other than `100-continue`: Node would answer a bare 417
 * itself; this gives it our body and headers.
 */
export function answerUnmetExpectation(headers: Readonly<Record<string, string>>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const body = JSON.stringify({ message: 'the Expect header can only be 100-continue' });
    res.writeHead(417, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
      'x-request-id': randomUUID(),
      ...headers,
    });
    res.end(body);
    req.resume();
  };
}
