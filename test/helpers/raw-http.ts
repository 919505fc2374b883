import { connect, type Socket } from 'node:net';

/** What a raw connection received, and whether and when the server closed it. */
export interface RawOutcome {
  /** Everything received, as text. */
  text: string;
  /** True when the server ended or reset the connection before `timeoutMs`. */
  closed: boolean;
  /** Milliseconds from connecting to the close (or to the timeout). */
  ms: number;
  /** The status of the first answer, if any. */
  status: number | undefined;
  /** Header fields of the first answer, names in lower case. */
  headers: Record<string, string>;
  /** The body of the first answer (what follows its header block). */
  body: string;
}

/** An open TCP connection to a test server, read until it closes. */
export interface RawConnection {
  socket: Socket;
  write(data: string | Buffer): void;
  /** Resolves when the server closes the connection, or after `timeoutMs` (then `closed` is false). */
  outcome(timeoutMs: number): Promise<RawOutcome>;
  destroy(): void;
}

export async function openRaw(port: number): Promise<RawConnection> {
  const started = performance.now();
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  let closedAt: number | undefined;
  const closed = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      closedAt = performance.now();
      resolve();
    });
  });
  return {
    socket,
    write(data) {
      if (!socket.destroyed) socket.write(data);
    },
    async outcome(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      return { text, closed: closedAt !== undefined, ms: (closedAt ?? performance.now()) - started, ...parseAnswer(text) };
    },
    destroy() {
      socket.destroy();
    },
  };
}

/** Sends `data` on a new connection and reads until the server closes it (or `timeoutMs`). */
export async function rawExchange(port: number, data: string | Buffer, timeoutMs = 3000): Promise<RawOutcome> {
  const connection = await openRaw(port);
  connection.write(data);
  const outcome = await connection.outcome(timeoutMs);
  connection.destroy();
  return outcome;
}

function parseAnswer(text: string): Pick<RawOutcome, 'status' | 'headers' | 'body'> {
  const end = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.1 ') || end === -1) return { status: undefined, headers: {}, body: '' };
  const [statusLine, ...fields] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const colon = field.indexOf(':');
    headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? NaN);
  const rest = text.slice(end + 4);
  return { status: Number(statusLine!.split(' ')[1]), headers, body: Number.isNaN(length) ? rest : rest.slice(0, length) };
}
