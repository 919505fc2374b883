import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { LeaseHolder, ServerLeaseRepository } from './domain/ports/server-lease-repository.js';

/**
 * One SQLite database, one server (PostgreSQL takes several: src/cluster/): two servers on the same file would each evaluate only the
 * telemetry they received (missing alerts), and each one's start-up would take back the
 * other's webhook deliveries in flight. So a server holds a lease, a row in the database,
 * for as long as it runs: renewed every few seconds, released on shutdown, and expiring on
 * its own when the process dies without releasing it (kill -9, power loss). CLI commands
 * do not take it.
 */

/** A lease not renewed for this long is free to take. */
export const LEASE_TTL_MS = 15_000;
/** How often the holder renews it: several renewals fit in one TTL. */
export const LEASE_RENEW_MS = 3_000;

export interface ServerLease {
  readonly instanceId: string;
  /** Stops renewing and gives the lease up. Never throws. */
  release(): Promise<void>;
}

/** Start-up refused: another server holds the lease. */
export class DatabaseInUseError extends Error {
  constructor(
    readonly holder: LeaseHolder,
    databasePath: string,
  ) {
    super(
      `another alerts server (pid ${holder.pid} on host ${holder.hostname}) is using ${databasePath}; stop it first. ` +
        'Only one server may run on a SQLite database (CLI commands such as "alerts keys" and "alerts backup" may run beside it); ' +
        'to run several instances, use PostgreSQL (DATABASE_URL=postgres://...: see "Running several instances" in the README).',
    );
    this.name = 'DatabaseInUseError';
  }
}

export interface ServerLeaseDeps {
  repository: ServerLeaseRepository;
  /** Named in the refusal message. */
  databasePath: string;
  logger: Logger;
  /** The lease was taken over by another server (this one stalled past the TTL): stop now. */
  onLost: () => void;
  ttlMs?: number;
  renewMs?: number;
  /** Whether a process of this host is alive; replaced in tests. */
  processAlive?: (pid: number) => boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `kill -0`: true while the process exists (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * What can be known of a holder right now. Only a process of this host can be asked
 * directly; a holder with our own pid is another PID namespace (a container) or this very
 * process, so it is not asked either.
 */
function livenessOf(holder: LeaseHolder, alive: (pid: number) => boolean): 'alive' | 'dead' | 'unknown' {
  if (holder.hostname !== hostname() || holder.pid === process.pid) return 'unknown';
  return alive(holder.pid) ? 'alive' : 'dead';
}

/**
 * Takes the lease, or throws DatabaseInUseError. A free or expired lease is taken at once,
 * and so is one whose holder is a dead process of this host (kill -9 and restart). A holder
 * that cannot be asked (another host) is watched: a renewal proves it alive (refused);
 * otherwise its lease runs out within the TTL and is taken.
 */
export async function acquireServerLease(deps: ServerLeaseDeps): Promise<ServerLease> {
  const { repository, logger } = deps;
  const ttlMs = deps.ttlMs ?? LEASE_TTL_MS;
  const renewMs = deps.renewMs ?? LEASE_RENEW_MS;
  const alive = deps.processAlive ?? processAlive;
  const me = { instance_id: randomUUID(), pid: process.pid, hostname: hostname(), started_at: new Date().toISOString() };

  let watched: LeaseHolder | undefined;
  for (;;) {
    const now = Date.now();
    if (await repository.take(me, now, ttlMs)) break;
    const holder = await repository.holder();
    // Released or expired in between: try again.
    if (holder === undefined || holder.expires_at <= Date.now()) continue;
    const liveness = livenessOf(holder, alive);
    if (liveness === 'alive') throw new DatabaseInUseError(holder, deps.databasePath);
    if (liveness === 'dead') {
      if (await repository.take(me, Date.now(), ttlMs, holder.instance_id)) {
        logger.warn({ previous_pid: holder.pid, previous_heartbeat_at: new Date(holder.heartbeat_at).toISOString() }, 'the previous server on this database died; taking over');
        break;
      }
      continue;
    }
    if (watched?.instance_id === holder.instance_id && holder.heartbeat_at > watched.heartbeat_at) {
      throw new DatabaseInUseError(holder, deps.databasePath);
    }
    if (watched?.instance_id !== holder.instance_id) {
      watched = holder;
      logger.warn(
        { holder_pid: holder.pid, holder_host: holder.hostname, expires_at: new Date(holder.expires_at).toISOString() },
        'another server held this database recently; waiting for its lease to be renewed (refused) or to run out (taken)',
      );
    }
    await sleep(Math.max(10, Math.min(250, holder.expires_at - Date.now() + 1)));
  }

  let renewing: Promise<void> | undefined;
  let released = false;
  const timer = setInterval(() => {
    if (renewing || released) return;
    renewing = repository
      .renew(me.instance_id, Date.now(), ttlMs)
      .then(
        (held) => {
          if (held || released) return;
          clearInterval(timer);
          released = true;
          logger.fatal('another server took over this database (this one did not renew its lease in time); stopping');
          deps.onLost();
        },
        (error: unknown) => logger.error({ err: error }, 'renewing the server lease failed; retrying'),
      )
      .finally(() => {
        renewing = undefined;
      });
  }, renewMs);
  timer.unref();

  return {
    instanceId: me.instance_id,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await renewing;
      await repository.release(me.instance_id).catch((error: unknown) => logger.error({ err: error }, 'releasing the server lease failed; it expires by itself'));
    },
  };
}
