import type { ClaimedDelivery, ClaimRoom } from '../domain/ports/deliveries-repository.js';

export interface SlotLimits {
  /** Deliveries claimed at once by this worker (queued or being sent). */
  total: number;
  /** Attempts in flight at once to one endpoint. */
  perEndpoint: number;
  /** Deliveries one account may hold claimed at once, over all its endpoints. */
  perAccount: number;
  /**
   * The per-account limit over all instances (perAccount when one is configured); undefined:
   * none beyond each worker's own. perEndpoint holds over all instances as it is.
   */
  clusterPerAccount?: number | undefined;
}

const increment = (map: Map<string, number>, key: string, by: number) => {
  const next = (map.get(key) ?? 0) + by;
  if (next === 0) map.delete(key);
  else map.set(key, next);
};

/**
 * The worker's bookkeeping of claimed deliveries. A claimed delivery waits in its endpoint's
 * queue until the endpoint has a free sending slot. Invariants: `held` = queued + sending;
 * an endpoint's queued + sending never exceeds `perEndpoint` (claims ask for no more), and
 * an account's claimed never exceeds `perAccount`, so neither a slow endpoint nor an account
 * of slow endpoints can take the slots of the others.
 */
export class DeliverySlots {
  held = 0;
  private readonly sendingByEndpoint = new Map<string, number>();
  private readonly heldByAccount = new Map<string, number>();
  private readonly queues = new Map<string, ClaimedDelivery[]>();

  constructor(private readonly limits: SlotLimits) {}

  get free(): number {
    return this.limits.total - this.held;
  }

  sending(endpointId: string): number {
    return this.sendingByEndpoint.get(endpointId) ?? 0;
  }

  /**
   * What a claim may take now: this worker's own room, and the configured limits, which the
   * claim also holds against the deliveries in flight on every instance.
   */
  room(): ClaimRoom {
    const forEndpoint = (id: string) => this.limits.perEndpoint - this.sending(id) - (this.queues.get(id)?.length ?? 0);
    const forAccount = (id: string) => this.limits.perAccount - (this.heldByAccount.get(id) ?? 0);
    const endpoints = new Set([...this.sendingByEndpoint.keys(), ...this.queues.keys()]);
    return {
      forEndpoint,
      forAccount,
      fullEndpoints: [...endpoints].filter((id) => forEndpoint(id) <= 0),
      fullAccounts: [...this.heldByAccount.keys()].filter((id) => forAccount(id) <= 0),
      limits: { perEndpoint: this.limits.perEndpoint, perAccount: this.limits.clusterPerAccount },
    };
  }

  /** Claimed deliveries join their endpoints' queues; returns the endpoints to pump. */
  admit(claimed: readonly ClaimedDelivery[]): Set<string> {
    for (const delivery of claimed) {
      this.held += 1;
      increment(this.heldByAccount, delivery.account_id, 1);
      const queue = this.queues.get(delivery.endpoint_id);
      if (queue) queue.push(delivery);
      else this.queues.set(delivery.endpoint_id, [delivery]);
    }
    return new Set(claimed.map((d) => d.endpoint_id));
  }

  /** The next queued delivery of the endpoint if it has a free sending slot; it is then sending. */
  startNext(endpointId: string): ClaimedDelivery | undefined {
    const queue = this.queues.get(endpointId);
    if (!queue || this.sending(endpointId) >= this.limits.perEndpoint) return undefined;
    const delivery = queue.shift()!;
    if (queue.length === 0) this.queues.delete(endpointId);
    increment(this.sendingByEndpoint, endpointId, 1);
    return delivery;
  }

  /** A started delivery's attempt has ended (recorded or released). */
  finished(delivery: ClaimedDelivery): void {
    increment(this.sendingByEndpoint, delivery.endpoint_id, -1);
    this.release(delivery);
  }

  /** Ids of the claimed deliveries waiting for a sending slot. */
  queuedIds(): string[] {
    return [...this.queues.values()].flatMap((queue) => queue.map((d) => d.id));
  }

  /** Removes queued (not started) deliveries, of one endpoint or all, and frees their slots. */
  takeQueued(endpointId?: string): ClaimedDelivery[] {
    const ids = endpointId === undefined ? [...this.queues.keys()] : [endpointId];
    const taken = ids.flatMap((id) => this.queues.get(id) ?? []);
    for (const id of ids) this.queues.delete(id);
    for (const delivery of taken) this.release(delivery);
    return taken;
  }

  private release(delivery: ClaimedDelivery): void {
    this.held -= 1;
    increment(this.heldByAccount, delivery.account_id, -1);
  }
}
