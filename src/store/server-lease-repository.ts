import type { Kysely } from 'kysely';
import type { ServerLeaseRepository } from '../domain/ports/server-lease-repository.js';
import type { Database } from './schema.js';

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
