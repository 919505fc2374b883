/**
 * A seeded simulator of voice-agent telemetry, for the demo, the benchmarks and tests.
 *
 * Calls arrive per project as a Poisson process; each call has a few turns, a few seconds
 * apart, whose latencies are log-normal around ~700 ms with a heavier slow tail; turns now
 * and then hit an API error or a function error, and calls now and then crash. An incident
 * makes a share of turns slower and/or errors more frequent, until it is cleared.
 *
 * Pure: no I/O, no clock of its own and no global randomness. Given the same seed, options
 * and the same sequence of calls (with the same times), it produces the same events.
 */
import { MAX_LATENCY_MS, type TelemetryEventType } from '../domain/telemetry.js';

/** An event as `POST /v1/telemetry/events` accepts it. */
export interface SimulatedEvent {
  type: TelemetryEventType;
  project_id?: string;
  /** RFC 3339 UTC with milliseconds; omitted when the simulator is told to leave it out. */
  timestamp?: string;
  /** Only on turns. */
  latency_ms?: number;
}

/** A log-normal body plus a log-normal slow tail (a mixture), in milliseconds. */
export interface LatencyDistribution {
  medianMs: number;
  /** Standard deviation of ln(latency) of the body. */
  sigma: number;
  /** Share of turns drawn from the slow tail instead (0 to 1). */
  tailShare: number;
  tailMedianMs: number;
  tailSigma: number;
}

export const DEFAULT_LATENCY: LatencyDistribution = Object.freeze({
  medianMs: 700,
  sigma: 0.3,
  tailShare: 0.02,
  tailMedianMs: 1400,
  tailSigma: 0.35,
});

export interface ProjectProfile {
  id: string;
  /** Mean call arrival rate. */
  callsPerSecond: number;
}

export interface SimulatorOptions {
  seed: number;
  projects: readonly ProjectProfile[];
  /** Turns per call, uniform in [min, max] (a crash can end a call earlier). */
  turnsPerCall: { min: number; max: number };
  /** Mean time between a call's turns (exponential around it, at least 1 s). */
  meanTurnGapMs: number;
  latency: LatencyDistribution;
  apiErrorPerTurn: number;
  functionErrorPerTurn: number;
  /** Probability that a call crashes at some turn (spread evenly over its turns). */
  crashPerCall: number;
  /** Include `timestamp` on every event (the event's simulated time); default true. */
  timestamps: boolean;
}

export const DEFAULT_SIMULATOR_OPTIONS: Omit<SimulatorOptions, 'seed'> = Object.freeze({
  projects: [
    { id: 'support-line', callsPerSecond: 2 },
    { id: 'bookings', callsPerSecond: 1 },
  ],
  turnsPerCall: { min: 3, max: 10 },
  meanTurnGapMs: 4000,
  latency: DEFAULT_LATENCY,
  apiErrorPerTurn: 0.004,
  functionErrorPerTurn: 0.008,
  crashPerCall: 0.01,
  timestamps: true,
});

/** What goes wrong, and where, until the incident is cleared. */
export interface Incident {
  /** Projects affected; default all. */
  projects?: readonly string[];
  /** Share of affected turns that are slow (0 to 1); default 1. */
  slowShare?: number;
  /** Latency multiplier of a slow turn; default 1 (no latency effect). */
  latencyMultiplier?: number;
  /** Multiplier of the API error, function error and crash probabilities; default 1. */
  errorMultiplier?: number;
  /** Multiplier of the call arrival rate; default 1. */
  trafficMultiplier?: number;
}

export interface SimulatorStats {
  calls: number;
  turns: number;
  apiErrors: number;
  functionErrors: number;
  crashes: number;
}

/** A small, fast, seedable PRNG (mulberry32): uniform in [0, 1). */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal deviate (Box-Muller). */
export function normal(rng: () => number): number {
  const u = 1 - rng(); // (0, 1]: log(0) is avoided
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** An exponential deviate with the given mean. */
export function exponential(rng: () => number, mean: number): number {
  return -Math.log(1 - rng()) * mean;
}

/** One latency from the distribution, an integer number of ms within the accepted range. */
export function sampleLatency(rng: () => number, dist: LatencyDistribution = DEFAULT_LATENCY, multiplier = 1): number {
  const tail = rng() < dist.tailShare;
  const median = tail ? dist.tailMedianMs : dist.medianMs;
  const sigma = tail ? dist.tailSigma : dist.sigma;
  const value = median * Math.exp(sigma * normal(rng)) * multiplier;
  return Math.min(MAX_LATENCY_MS, Math.max(0, Math.round(value)));
}

/** Splits events into batches of at most `size` (the API takes 1 to 10,000 per request). */
export function batchesOf<T>(events: readonly T[], size: number): T[][] {
  if (!(size >= 1)) throw new RangeError('batch size must be at least 1');
  const out: T[][] = [];
  for (let i = 0; i < events.length; i += size) out.push(events.slice(i, i + size));
  return out;
}

interface Pending {
  time: number;
  seq: number;
  kind: 'call' | 'turn';
  project: string;
  /** Turns still to come after this one (for a turn), or in all (for a call). */
  turnsLeft: number;
  crashPerTurn: number;
}

/** A binary min-heap ordered by (time, seq): ties come out in the order they were scheduled. */
class Queue {
  private readonly items: Pending[] = [];
  get size(): number {
    return this.items.length;
  }
  private less(a: Pending, b: Pending): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }
  peek(): Pending | undefined {
    return this.items[0];
  }
  push(item: Pending): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): Pending | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l]!, items[m]!)) m = l;
        if (r < items.length && this.less(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

export class VoiceAgentSimulator {
  readonly options: SimulatorOptions;
  private readonly rng: () => number;
  private readonly queue = new Queue();
  private readonly nextArrival = new Map<string, number>();
  private seq = 0;
  private now: number;
  private incident: Incident | undefined;
  private readonly totals: SimulatorStats = { calls: 0, turns: 0, apiErrors: 0, functionErrors: 0, crashes: 0 };

  /** `startMs`: the simulated time at which calls start arriving (epoch ms). */
  constructor(options: Partial<SimulatorOptions> & { seed: number }, startMs: number) {
    this.options = { ...DEFAULT_SIMULATOR_OPTIONS, ...options };
    if (this.options.projects.length === 0) throw new RangeError('at least one project is needed');
    const { min, max } = this.options.turnsPerCall;
    if (!(min >= 1 && max >= min)) throw new RangeError('turnsPerCall needs 1 <= min <= max');
    this.rng = createRng(this.options.seed);
    this.now = startMs;
    for (const project of this.options.projects) this.nextArrival.set(project.id, startMs + this.interArrival(project));
  }

  /** Simulated time up to which events have been produced. */
  get time(): number {
    return this.now;
  }

  get stats(): Readonly<SimulatorStats> {
    return { ...this.totals };
  }

  /** Mean turns per call, before crashes. */
  get meanTurnsPerCall(): number {
    const { min, max } = this.options.turnsPerCall;
    return (min + max) / 2;
  }

  /** Starts (or changes) an incident; it applies to arrivals and turns from now on. */
  startIncident(incident: Incident): void {
    this.incident = { ...incident };
  }

  endIncident(): void {
    this.incident = undefined;
  }

  get currentIncident(): Readonly<Incident> | undefined {
    return this.incident;
  }

  /**
   * Moves simulated time to `toMs` and returns the events that happened in (previous, toMs],
   * in time order. Turns of calls that are still going on come out in later calls.
   */
  advanceTo(toMs: number): SimulatedEvent[] {
    const events: SimulatedEvent[] = [];
    if (toMs <= this.now) return events;
    for (const project of this.options.projects) {
      let at = this.nextArrival.get(project.id)!;
      while (at <= toMs) {
        this.queue.push({ time: at, seq: this.seq++, kind: 'call', project: project.id, turnsLeft: 0, crashPerTurn: 0 });
        at += this.interArrival(project);
      }
      this.nextArrival.set(project.id, at);
    }
    for (let next = this.queue.peek(); next && next.time <= toMs; next = this.queue.peek()) {
      this.queue.pop();
      if (next.kind === 'call') this.startCall(next, events);
      else this.turn(next, events);
    }
    this.now = toMs;
    return events;
  }

  /**
   * A batch of exactly `size` events with the stream's mix of types and projects (and the
   * current incident), timestamped uniformly in (atMs - spreadMs, atMs]. For load: it does
   * not follow calls through their turns, so it is fast; it does not move `time`.
   */
  batch(size: number, atMs: number, spreadMs = 1000): SimulatedEvent[] {
    const { projects, apiErrorPerTurn, functionErrorPerTurn, crashPerCall } = this.options;
    const turns = this.meanTurnsPerCall;
    const errors = this.incident?.errorMultiplier ?? 1;
    // Relative frequencies per call.
    const weights: [TelemetryEventType, number][] = [
      ['call', 1],
      ['turn', turns],
      ['api_error', turns * apiErrorPerTurn * errors],
      ['function_error', turns * functionErrorPerTurn * errors],
      ['call_crash', crashPerCall * errors],
    ];
    const totalWeight = weights.reduce((sum, [, w]) => sum + w, 0);
    const totalRate = projects.reduce((sum, p) => sum + p.callsPerSecond, 0);
    const events: SimulatedEvent[] = new Array(size);
    for (let i = 0; i < size; i++) {
      let r = this.rng() * totalRate;
      let project = projects[projects.length - 1]!;
      for (const p of projects) {
        if ((r -= p.callsPerSecond) < 0) {
          project = p;
          break;
        }
      }
      let w = this.rng() * totalWeight;
      let type: TelemetryEventType = 'turn';
      for (const [t, weight] of weights) {
        if ((w -= weight) < 0) {
          type = t;
          break;
        }
      }
      const time = atMs - Math.floor(this.rng() * spreadMs);
      const event: SimulatedEvent = { type, project_id: project.id };
      if (this.options.timestamps) event.timestamp = new Date(time).toISOString();
      if (type === 'turn') event.latency_ms = this.turnLatency(project.id);
      this.count(type);
      events[i] = event;
    }
    return events;
  }

  private affected(project: string): Incident | undefined {
    const incident = this.incident;
    if (!incident) return undefined;
    return incident.projects === undefined || incident.projects.includes(project) ? incident : undefined;
  }

  private interArrival(project: ProjectProfile): number {
    const rate = project.callsPerSecond * (this.affected(project.id)?.trafficMultiplier ?? 1);
    return rate > 0 ? Math.max(1, exponential(this.rng, 1000 / rate)) : Number.POSITIVE_INFINITY;
  }

  private turnLatency(project: string): number {
    const incident = this.affected(project);
    const slow = incident !== undefined && (incident.latencyMultiplier ?? 1) !== 1 && this.rng() < (incident.slowShare ?? 1);
    return sampleLatency(this.rng, this.options.latency, slow ? incident.latencyMultiplier : 1);
  }

  private emit(events: SimulatedEvent[], type: TelemetryEventType, project: string, time: number, latency?: number): void {
    const event: SimulatedEvent = { type, project_id: project };
    if (this.options.timestamps) event.timestamp = new Date(Math.floor(time)).toISOString();
    if (latency !== undefined) event.latency_ms = latency;
    this.count(type);
    events.push(event);
  }

  private count(type: TelemetryEventType): void {
    if (type === 'call') this.totals.calls++;
    else if (type === 'turn') this.totals.turns++;
    else if (type === 'api_error') this.totals.apiErrors++;
    else if (type === 'function_error') this.totals.functionErrors++;
    else this.totals.crashes++;
  }

  private gap(): number {
    return Math.max(1000, exponential(this.rng, this.options.meanTurnGapMs));
  }

  private startCall(call: Pending, events: SimulatedEvent[]): void {
    const { min, max } = this.options.turnsPerCall;
    const turns = min + Math.floor(this.rng() * (max - min + 1));
    this.emit(events, 'call', call.project, call.time);
    this.queue.push({
      time: call.time + this.gap(),
      seq: this.seq++,
      kind: 'turn',
      project: call.project,
      turnsLeft: turns - 1,
      crashPerTurn: this.options.crashPerCall / turns,
    });
  }

  private turn(turn: Pending, events: SimulatedEvent[]): void {
    const errors = this.affected(turn.project)?.errorMultiplier ?? 1;
    const { apiErrorPerTurn, functionErrorPerTurn } = this.options;
    if (this.rng() < apiErrorPerTurn * errors) this.emit(events, 'api_error', turn.project, turn.time);
    if (this.rng() < functionErrorPerTurn * errors) this.emit(events, 'function_error', turn.project, turn.time);
    if (this.rng() < turn.crashPerTurn * errors) {
      this.emit(events, 'call_crash', turn.project, turn.time);
      return;
    }
    this.emit(events, 'turn', turn.project, turn.time, this.turnLatency(turn.project));
    if (turn.turnsLeft > 0) {
      this.queue.push({ ...turn, time: turn.time + this.gap(), seq: this.seq++, turnsLeft: turn.turnsLeft - 1 });
    }
  }
}
