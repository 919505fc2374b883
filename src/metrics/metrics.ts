import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * What one process reports at GET /metrics (Prometheus text format). Every service has its
 * own registry, never prom-client's global one: tests and tools run several services in one
 * process, and in the multi-instance mode each instance reports what it did itself.
 *
 * The instruments are recorded where the work happens (ingestion, the evaluation writer, the
 * delivery worker); figures that are state rather than events (rules by state, queue depth,
 * shards held, apply lag) are read when scraped, through the `gauges` callbacks.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Telemetry events accepted (each event of an accepted batch). */
  readonly telemetryEvents: Counter<never>;
  /** Telemetry batches by outcome: accepted, replayed (idempotency key seen), rejected (4xx), failed (5xx). */
  readonly telemetryBatches: Counter<'outcome'>;
  /** Committed state changes of rules. */
  readonly ruleTransitions: Counter<'from' | 'to'>;
  /** Duration of one evaluation pass over every rule held. */
  readonly evaluationPass: Histogram<never>;
  /** From a telemetry batch received to the event its evaluation emitted, committed. */
  readonly detection: Histogram<never>;
  /** Webhook attempts by outcome: delivered, rejected (a non-2xx answer) or the error class. */
  readonly webhookAttempts: Counter<'outcome'>;
  readonly webhookAttemptSeconds: Histogram<'outcome'>;
  /** Webhook endpoints this instance disabled because all their attempts failed for ALERTS_ENDPOINT_DISABLE_AFTER. */
  readonly endpointsDisabled: Counter<never>;
  /** Registers the readers of the state gauges (called once the service is wired). */
  readGauges(readers: GaugeReaders): void;
}

export interface GaugeReaders {
  /** Enabled rules evaluated by this instance, by state. */
  rulesByState(): Record<string, number>;
  /** Deliveries waiting (pending or in flight) and when the oldest was created (epoch ms). */
  queue(): Promise<{ depth: number; oldestCreatedAt: number | null }>;
  /** Shards this instance holds. */
  shardsHeld(): number;
  /** Committed telemetry batches of the held shards not yet applied here. */
  applyLag(): Promise<number>;
  /** Epoch ms now, from the service's clock. */
  now(): number;
}

const STATES = ['ok', 'alert', 'no_data', 'unknown'] as const;

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let readers: GaugeReaders | undefined;
  // One scrape reads the queue once, for both gauges.
  let queueRead: Promise<{ depth: number; oldestCreatedAt: number | null }> | undefined;
  const queue = () => {
    queueRead ??= (readers?.queue() ?? Promise.resolve({ depth: 0, oldestCreatedAt: null })).finally(() => {
      queueRead = undefined;
    });
    return queueRead;
  };

  const metrics: Metrics = {
    registry,
    telemetryEvents: new Counter({ name: 'alerts_telemetry_events_total', help: 'Telemetry events accepted.', registers: [registry] }),
    telemetryBatches: new Counter({
      name: 'alerts_telemetry_batches_total',
      help: 'Telemetry batches received, by outcome (accepted, replayed, rejected, failed).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    ruleTransitions: new Counter({
      name: 'alerts_rule_transitions_total',
      help: 'Committed state changes of alert rules, by the states left and entered.',
      labelNames: ['from', 'to'],
      registers: [registry],
    }),
    evaluationPass: new Histogram({
      name: 'alerts_evaluation_pass_seconds',
      help: 'Duration of one evaluation pass over every rule this instance holds.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    detection: new Histogram({
      name: 'alerts_detection_seconds',
      help: 'From a telemetry batch received to the alert event its evaluation emitted, committed.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    webhookAttempts: new Counter({
      name: 'alerts_webhook_attempts_total',
      help: 'Webhook attempts, by outcome (delivered, rejected for a non-2xx answer, or the error class).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    webhookAttemptSeconds: new Histogram({
      name: 'alerts_webhook_attempt_seconds',
      help: 'Duration of webhook attempts, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    endpointsDisabled: new Counter({
      name: 'alerts_endpoints_disabled_total',
      help: 'Webhook endpoints disabled by this instance because every delivery attempt failed for ALERTS_ENDPOINT_DISABLE_AFTER.',
      registers: [registry],
    }),
    readGauges(given) {
      readers = given;
    },
  };

  new Gauge({
    name: 'alerts_rules',
    help: 'Enabled alert rules evaluated by this instance, by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = readers?.rulesByState() ?? {};
      for (const state of STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'alerts_webhook_queue_depth',
    help: 'Webhook deliveries waiting for an attempt or in flight (the whole database).',
    registers: [registry],
    async collect() {
      this.set((await queue()).depth);
    },
  });
  new Gauge({
    name: 'alerts_webhook_oldest_pending_seconds',
    help: 'Age of the oldest webhook delivery still waiting or in flight; 0 when none is.',
    registers: [registry],
    async collect() {
      const { oldestCreatedAt } = await queue();
      const now = readers?.now() ?? Date.now();
      this.set(oldestCreatedAt === null ? 0 : Math.max(0, (now - oldestCreatedAt) / 1000));
    },
  });
  new Gauge({
    name: 'alerts_shards_owned',
    help: 'Shards (of 64) whose rules this instance evaluates.',
    registers: [registry],
    collect() {
      this.set(readers?.shardsHeld() ?? 0);
    },
  });
  new Gauge({
    name: 'alerts_shard_apply_lag_batches',
    help: 'Committed telemetry batches of the shards this instance holds that it has not applied yet.',
    registers: [registry],
    async collect() {
      this.set((await readers?.applyLag()) ?? 0);
    },
  });
  return metrics;
}
