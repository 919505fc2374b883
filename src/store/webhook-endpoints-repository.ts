import { sql, type Kysely, type Selectable } from 'kysely';
import { CHANNELS, type Change, type Notifications } from '../domain/ports/notifications.js';
import type { WebhookEndpointsRepository } from '../domain/ports/webhook-endpoints-repository.js';
import type { EndpointSecrets, WebhookEndpoint, WebhookEventType } from '../domain/webhook-endpoints.js';
import { lockAccount } from './alert-rules-repository.js';
import { cancelPendingDeliveries } from './deliveries-repository.js';
import type { StoreAdapter } from './dialect/index.js';
import type { Database, WebhookEndpointsTable } from './schema.js';
import type { SecretCipher } from './secret-cipher.js';
import { createWriteInvalidatedCache } from './write-invalidated-cache.js';

type Row = Selectable<WebhookEndpointsTable>;

function toEndpoint(row: Row): WebhookEndpoint {
  return {
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    url: row.url,
    enabled: row.enabled === 1,
    event_types: JSON.parse(row.event_types) as WebhookEventType[],
    headers: JSON.parse(row.headers) as Record<string, string>,
    timeout_ms: row.timeout_ms,
    created_at: row.created_at,
    updated_at: row.updated_at,
    previous_secret_expires_at: row.previous_secret_expires_at === null ? null : new Date(Number(row.previous_secret_expires_at)).toISOString(),
    disabled_reason: row.disabled_reason,
    disabled_at: row.disabled_at,
  };
}

/** How other processes learn that a secret changed (rotation, deletion). */
export interface SecretSharing {
  notifyWithin: StoreAdapter['notifyWithin'];
  notifications: Notifications;
}

export function createWebhookEndpointsRepository(db: Kysely<Database>, cipher: SecretCipher, sharing: SecretSharing): WebhookEndpointsRepository {
  const byAccount = (accountId: string) =>
    db.selectFrom('webhook_endpoints').selectAll().where('account_id', '=', accountId);
  // Every delivery attempt signs with the current secret (and the previous one during an
  // overlap); reading and decrypting them per attempt was a third of the worker's time.
  // Rotation and deletion here go through the cache; those of other processes notify
  // (within their transaction) and invalidate it.
  const secrets = createWriteInvalidatedCache<EndpointSecrets>(() => sharing.notifications.live);
  const signingSecrets = (id: string) =>
    secrets.read(id, async () => {
      const row = await db
        .selectFrom('webhook_endpoints')
        .select(['signing_secret', 'previous_signing_secret', 'previous_secret_expires_at'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) return undefined;
      const previous =
        row.previous_signing_secret === null || row.previous_secret_expires_at === null
          ? null
          : { secret: cipher.open(row.previous_signing_secret, id), expiresAt: Number(row.previous_secret_expires_at) };
      return { current: cipher.open(row.signing_secret, id), previous };
    });
  const changed = (trx: Kysely<Database>, id: string) =>
    sharing.notifyWithin(trx, CHANNELS.changes, JSON.stringify({ kind: 'endpoint', endpoint_id: id } satisfies Change));
  sharing.notifications.listen(CHANNELS.changes, (payload) => {
    const change = JSON.parse(payload) as Change;
    if (change.kind === 'endpoint') secrets.invalidate([change.endpoint_id]);
  });
  sharing.notifications.onResync(() => secrets.invalidate());

  return {
    insertWithinLimit(accountId, endpoint, signingSecret, limit) {
      return db.transaction().execute(async (trx) => {
        await lockAccount(trx, accountId);
        const { count } = await trx
          .selectFrom('webhook_endpoints')
          .select((eb) => eb.fn.countAll<number>().as('count'))
          .where('account_id', '=', accountId)
          .executeTakeFirstOrThrow();
        if (Number(count) >= limit) return 'limit_exceeded' as const;
        const row = await trx
          .insertInto('webhook_endpoints')
          .values({
            id: endpoint.id,
            account_id: accountId,
            name: endpoint.name,
            url: endpoint.url,
            enabled: endpoint.enabled ? 1 : 0,
            event_types: JSON.stringify(endpoint.event_types),
            headers: JSON.stringify(endpoint.headers),
            timeout_ms: endpoint.timeout_ms,
            signing_secret: cipher.seal(signingSecret, endpoint.id),
            created_at: endpoint.created_at,
            updated_at: endpoint.created_at,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toEndpoint(row);
      });
    },

    async list(accountId, filter) {
      let query = byAccount(accountId);
      if (filter.enabled !== undefined) query = query.where('enabled', '=', filter.enabled ? 1 : 0);
      const rows = await query.orderBy('seq').execute();
      // At most ten rows per account: filtering the JSON list here keeps the SQL portable.
      const endpoints = rows.map(toEndpoint);
      const eventType = filter.event_type;
      return eventType === undefined ? endpoints : endpoints.filter((e) => e.event_types.includes(eventType));
    },

    async get(accountId, id) {
      const row = await byAccount(accountId).where('id', '=', id).executeTakeFirst();
      return row && toEndpoint(row);
    },

    async update(accountId, id, patch, nowIso) {
      const { enabled, event_types, headers, ...rest } = patch;
      // Enabling a disabled endpoint starts afresh: why the service disabled it (if it did) is
      // history, and failures before it was disabled no longer count towards disabling it again.
      const reenabling =
        enabled === true
          ? { disabled_reason: null, disabled_at: null, failing_since: sql<number | null>`case when enabled = 0 then null else failing_since end` }
          : {};
      const row = await db
        .updateTable('webhook_endpoints')
        .set({
          ...rest,
          ...reenabling,
          ...(enabled === undefined ? {} : { enabled: enabled ? 1 : 0 }),
          ...(event_types === undefined ? {} : { event_types: JSON.stringify(event_types) }),
          ...(headers === undefined ? {} : { headers: JSON.stringify(headers) }),
          updated_at: nowIso,
        })
        .where('account_id', '=', accountId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row && toEndpoint(row);
    },

    delete(accountId, id, nowIso) {
      return secrets.writing(id, () =>
        db.transaction().execute(async (trx) => {
          const result = await trx
            .deleteFrom('webhook_endpoints')
            .where('account_id', '=', accountId)
            .where('id', '=', id)
            .executeTakeFirst();
          if (result.numDeletedRows === 0n) return false;
          await cancelPendingDeliveries(trx, id, nowIso);
          await changed(trx, id);
          return true;
        }),
      );
    },

    replaceSecret(accountId, id, signingSecret, nowIso, previousSignsUntil) {
      return secrets.writing(id, () =>
        db.transaction().execute(async (trx) => {
          const result = await trx
            .updateTable('webhook_endpoints')
            .set((eb) => ({
              signing_secret: cipher.seal(signingSecret, id),
              // The replaced secret moves as it is stored (sealed, bound to this endpoint like
              // the current one): one statement, never decrypted. The right-hand side reads the
              // row as it was before this update.
              previous_signing_secret: previousSignsUntil === undefined ? null : eb.ref('signing_secret'),
              previous_secret_expires_at: previousSignsUntil ?? null,
              updated_at: nowIso,
            }))
            .where('account_id', '=', accountId)
            .where('id', '=', id)
            .executeTakeFirst();
          if (result.numUpdatedRows === 0n) return false;
          await changed(trx, id);
          return true;
        }),
      );
    },

    signingSecret: async (id) => (await signingSecrets(id))?.current,
    signingSecrets,

  };
}
