/**
 * GET /readyz: whether a load balancer should send this instance traffic. Not before it has
 * taken its first share of the shards and replayed their rules and telemetry (an instance
 * still replaying would answer with states it has not computed yet), nor while its delivery
 * worker is not running, nor once it shuts down (app.ts). Once ready, it stays ready through
 * later rebalancing: when an instance dies every survivor takes shards at the same moment,
 * and turning them all away together would leave the balancer with no one to send to;
 * requests are answered from the database meanwhile, whoever owns the shard.
 */
export interface ReadinessDeps {
  share(): { held: number; quota: number | undefined };
  /** Shards held whose load is still running. */
  loading(): readonly number[];
  /** Whether the delivery worker runs (when it is enabled). */
  workerRunning(): boolean;
  workerEnabled: boolean;
}

export function createReadiness(deps: ReadinessDeps): () => Promise<string[]> {
  let replayed = false;
  return async () => {
    const reasons: string[] = [];
    if (!replayed) {
      const { held, quota } = deps.share();
      if (quota === undefined) reasons.push('joining the cluster');
      else if (held < quota) reasons.push(`taking its share of the shards (${held} of ${quota} held)`);
      const loading = deps.loading().length;
      if (loading > 0) reasons.push(`replaying the rules and telemetry of ${loading} shard(s)`);
      if (reasons.length === 0) replayed = true;
    }
    if (deps.workerEnabled && !deps.workerRunning()) reasons.push('the webhook delivery worker is not running');
    return reasons;
  };
}
