import type { Kysely, Selectable } from 'kysely';
import type { Database, ServerLeaseTable } from './schema.js';

export type LeaseHolder = Omit<Selectable<ServerLeaseTable>, 'id'>;

/** Who asks for the lease. */
export interface LeaseClaimant {
  instance_id: string;
  pid: number;
  hostname: string;
  started_at: string;
}

/**
 * The one row saying which server runs on this database. Every change is a single
 * conditional statement, so two servers starting at once cannot both get it.
 */
export interface ServerLeaseRepository {
  holder(): Promise<LeaseHolder | undefined>;
  /**
   * Takes the lease until `now + ttlMs` if nobody holds it, its holder's lease has expired,
   * or its holder is `replacing` (a holder known to be dead); true when taken.
   */
  take(claimant: LeaseClaimant, now: number, ttlMs: number, replacing?: string): Promise<boolean>;
  /** Extends the lease of its holder; false when `instanceId` no longer holds it. */
  renew(instanceId: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease up, if `instanceId` still holds it. */
  release(instanceId: string): Promise<void>;
}

export function createServerLeaseRepository(db: Kysely<Database>): ServerLeaseRepository {
  return {
    holder: () =>
      db
        .selectFrom('server_lease')
        .select(['instance_id', 'pid', 'hostname', 'started_at', 'heartbeat_at', 'expires_at'])
        .where('id', '=', 1)
        .executeTakeFirst()
        .then((row) => row && { ...row, heartbeat_at: Number(row.heartbeat_at), expires_at: Number(row.expires_at) }),

    async take(claimant, now, ttlMs, replacing) {
      const row = { ...claimant, heartbeat_at: now, expires_at: now + ttlMs };
      const taken = await db
        .insertInto('server_lease')
        .values({ id: 1, ...row })
        .onConflict((oc) =>
          oc
            .column('id')
            .doUpdateSet(row)
            .where((eb) =>
              eb.or([
                eb('server_lease.expires_at', '<=', now),
                ...(replacing === undefined ? [] : [eb('server_lease.instance_id', '=', replacing)]),
              ]),
            ),
        )
        .returning('instance_id')
        .executeTakeFirst();
      return taken?.instance_id === claimant.instance_id;
    },

    async renew(instanceId, now, ttlMs) {
      const result = await db
        .updateTable('server_lease')
        .set({ heartbeat_at: now, expires_at: now + ttlMs })
        .where('id', '=', 1)
        .where('instance_id', '=', instanceId)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async release(instanceId) {
      await db.deleteFrom('server_lease').where('id', '=', 1).where('instance_id', '=', instanceId).execute();
    },
  };
}
