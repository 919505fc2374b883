import type { RollupTable } from '../../../domain/ports/telemetry-rollup-repository.js';

/** The table of each roll-up resolution; both have the shape TelemetryRollupTable. */
export const ROLLUP_TABLES = { seconds: 'telemetry_seconds', minutes: 'telemetry_minutes' } as const satisfies Record<RollupTable, string>;
export type RollupTableName = (typeof ROLLUP_TABLES)[RollupTable];
