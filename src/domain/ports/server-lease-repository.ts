/** Who asks for the lease. */
export interface LeaseClaimant {
  instance_id: string;
  pid: number;
  hostname: string;
  started_at: string;
}

/** The server holding the lease, as stored. */
export interface LeaseHolder extends LeaseClaimant {
  /** Epoch ms of the last renewal. */
  heartbeat_at: number;
  /** Epoch ms after which another server may take over. */
  expires_at: number;
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
