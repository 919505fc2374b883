import { sql, type Expression, type ExpressionBuilder, type RawBuilder, type Selectable, type SqlBool } from 'kysely';
import type { Delivery, DeliveryStatus } from '../../../domain/ports/deliveries-repository.js';
import type { StoreAdapter } from '../../dialect/adapter.js';
import type { Database, WebhookDeliveriesTable } from '../../schema.js';

/**
 * What the deliveries queue asks of the database beyond portable SQL (see StoreAdapter):
 * row locks, the database's clock, and wake-ups sent with a commit.
 */
export type QueueCapabilities = Pick<StoreAdapter, 'rowLocks' | 'now' | 'notifyWithin'>;

/** The queue's statements name the deliveries table `d`. */
export type DeliveriesAs<A extends string = 'd'> = ExpressionBuilder<Database & Record<A, WebhookDeliveriesTable>, A>;

/**
 * The owner of the claim on `d` is a live instance: it has a cluster_instances row whose
 * `expires_at` (database time) has not passed. An instance renews its row with a heartbeat;
 * a dead one stops renewing, or has its row deleted.
 */
export function ownerIsLive(now: RawBuilder<number>): RawBuilder<SqlBool> {
  return sql<SqlBool>`exists (select 1 from cluster_instances i where i.instance_id = d.locked_by and i.expires_at > ${now})`;
}

/**
 * The claim on in-flight `d` still holds: its lease has not passed by `now`, and its owner is
 * `self` (which knows it is alive) or a live instance.
 */
export function claimIsLive(eb: DeliveriesAs, capabilities: QueueCapabilities, self: string, now: number): Expression<SqlBool> {
  return eb.and([eb('d.locked_until', '>=', now), eb.or([eb('d.locked_by', '=', self), ownerIsLive(capabilities.now)])]);
}

export function toDelivery(row: Selectable<WebhookDeliveriesTable>): Delivery {
  return {
    id: row.id,
    account_id: row.account_id,
    endpoint_id: row.endpoint_id,
    event_id: row.event_id,
    event_type: row.event_type,
    status: row.status as DeliveryStatus,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    next_attempt_at: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
    last_error: row.last_error,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
