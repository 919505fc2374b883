/** Source of the current time, injected so tests can drive it. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export const toIso = (epochMs: number): string => new Date(epochMs).toISOString();
