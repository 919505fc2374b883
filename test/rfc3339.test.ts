import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from '../src/domain/telemetry.js';

describe('RFC 3339 timestamps of telemetry events', () => {
  it.each([
    ['2026-03-15T10:30:00.000Z', Date.UTC(2026, 2, 15, 10, 30, 0, 0)],
    ['2026-03-15T10:30:00Z', Date.UTC(2026, 2, 15, 10, 30, 0, 0)],
    ['2026-03-15t10:30:00.5z', Date.UTC(2026, 2, 15, 10, 30, 0, 500)],
    ['2026-03-15T10:30:00.123456+02:00', Date.UTC(2026, 2, 15, 8, 30, 0, 123)],
    ['2026-03-15T10:30:00-05:30', Date.UTC(2026, 2, 15, 16, 0, 0, 0)],
    ['2024-02-29T23:59:59.999Z', Date.UTC(2024, 1, 29, 23, 59, 59, 999)],
  ])('reads %s as the instant it names', (text, expected) => {
    expect(parseRfc3339(text)).toBe(expected);
  });

  it.each([
    '2026-02-29T00:00:00Z',
    '2026-02-30T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-03-15 10:30:00Z',
    '2026-03-15T10:30:00',
    '2026-03-15T24:00:00Z',
    '2026-03-15T10:60:00Z',
    '2026-03-15T10:30:00.Z',
    '2026-03-15T10:30:00+0200',
    '2026-03-15T10:30:00Z ',
    '15/03/2026',
    '',
  ])('refuses %j, which lenient Date.parse might accept', (text) => {
    expect(parseRfc3339(text)).toBeNaN();
  });
});
