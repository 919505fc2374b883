/**
 * Pending and keep-firing periods (ours): the state machine on its own, with every run of
 * conditions a rule can see; the API, the live engine, history and preview in the same file
 * below (added with the fields).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AlertState } from '../src/domain/alert-rules.js';
import { hold, type HoldState } from '../src/engine/hold.js';

const START: HoldState = { state: 'unknown', pendingSince: null, clearSince: null };
const SECOND = 1000;

/** Runs conditions one per second from t = 0; returns the states. */
function run(conditions: AlertState[], pendingMs: number, keepFiringMs: number): AlertState[] {
  let at = START;
  return conditions.map((condition, i) => {
    at = hold(at, condition, i * SECOND, { pendingMs, keepFiringMs });
    return at.state;
  });
}

const condition = fc.constantFrom<AlertState>('ok', 'alert', 'no_data');

describe('the pending and keep-firing state machine', () => {
  it('with both periods 0 is the condition itself, at once: the published behaviour', () => {
    fc.assert(
      fc.property(fc.array(condition, { maxLength: 200 }), (conditions) => {
        expect(run(conditions, 0, 0)).toEqual(conditions);
      }),
    );
  });

  it('goes to alert only once the condition has held for the pending period, staying ok meanwhile', () => {
    const states = run(['ok', 'alert', 'alert', 'alert', 'alert', 'ok'], 3 * SECOND, 0);
    expect(states).toEqual(['ok', 'ok', 'ok', 'ok', 'alert', 'ok']);
    // From a new rule (unknown) or no data, pending shows ok: the data is there.
    expect(run(['alert', 'alert'], 5 * SECOND, 0)).toEqual(['ok', 'ok']);
    expect(run(['no_data', 'alert', 'no_data', 'alert'], 5 * SECOND, 0)).toEqual(['no_data', 'ok', 'no_data', 'ok']);
  });

  it('starts the pending period again whenever the condition breaks, so a hovering value never fires', () => {
    const hovering = Array.from({ length: 600 }, (_, i) => (Math.floor(i / 6) % 2 === 0 ? 'alert' : 'ok') as AlertState);
    const free = run(hovering, 0, 0);
    const flaps = free.filter((s, i) => i > 0 && s !== free[i - 1]).length;
    expect(flaps).toBeGreaterThanOrEqual(99);
    expect(run(hovering, 60 * SECOND, 0).filter((s) => s === 'alert')).toEqual([]);
  });

  it('leaves alert only once the condition has been clear for the keep-firing period, whatever clears it', () => {
    // Clear from 1 s: kept until 4 s. Clear again from 6 s (no data counts as clear): kept until 9 s.
    const conditions: AlertState[] = ['alert', 'ok', 'ok', 'ok', 'ok', 'alert', 'ok', 'no_data', 'ok', 'ok'];
    expect(run(conditions, 0, 3 * SECOND)).toEqual(['alert', 'alert', 'alert', 'alert', 'ok', 'alert', 'alert', 'alert', 'alert', 'ok']);
  });

  it('never fires before the condition held for the pending period nor resolves before it was clear for the keep-firing period', () => {
    fc.assert(
      fc.property(fc.array(condition, { maxLength: 300 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 }), (conditions, p, k) => {
        const states = run(conditions, p * SECOND, k * SECOND);
        for (let i = 0; i < states.length; i++) {
          const entered = states[i] === 'alert' && (i === 0 || states[i - 1] !== 'alert');
          if (entered) for (let j = Math.max(0, i - p); j <= i; j++) expect(conditions[j]).toBe('alert');
          if (entered && i < p) throw new Error(`fired at ${i} s before ${p} s of condition`);
          const left = i > 0 && states[i - 1] === 'alert' && states[i] !== 'alert';
          if (left) {
            expect(states[i]).toBe(conditions[i]);
            for (let j = Math.max(0, i - k); j <= i; j++) expect(conditions[j]).not.toBe('alert');
          }
          // In alert while the condition is clear only within the keep-firing period; never alert otherwise.
          if (states[i] === 'alert' && conditions[i] !== 'alert') expect(k).toBeGreaterThan(0);
          if (states[i] !== 'alert' && states[i] !== conditions[i]) expect([conditions[i], states[i]]).toEqual(['alert', 'ok']);
        }
      }),
    );
  });
});
