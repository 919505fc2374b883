import type { Command } from 'commander';
import type { Config } from '../config.js';
import { DEAD_INSTANCE_VISIBLE_MS, readClusterStatus, type ClusterStatus, type InstanceStatus } from '../store/cluster-status.js';
import { openStore } from '../store/store.js';

type Out = (line: string) => void;

/** `0-20,42`: ascending shard numbers with runs compressed; `-` for none. */
export function shardRanges(shards: readonly number[]): string {
  const sorted = [...new Set(shards)].sort((a, b) => a - b);
  if (sorted.length === 0) return '-';
  const parts: string[] = [];
  let start = sorted[0]!;
  let previous = start;
  for (const shard of [...sorted.slice(1), Number.NaN]) {
    if (shard === previous + 1) {
      previous = shard;
      continue;
    }
    parts.push(start === previous ? String(start) : `${start}-${previous}`);
    start = shard;
    previous = shard;
  }
  return parts.join(',');
}

/** Milliseconds as seconds with one decimal: `12.3s`. */
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** `3.0s` or `3.0s-41.2s` (youngest to oldest). */
function span(values: readonly number[]): string {
  if (values.length === 0) return '-';
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min === max ? seconds(min) : `${seconds(min)}-${seconds(max)}`;
}

/** Rows of cells as left-aligned columns two spaces apart (no trailing spaces). */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The one-line summary: `2 live instances, 60/64 shards owned, total lag 17`. */
export function summaryLine(status: ClusterStatus): string {
  const { summary } = status;
  const others = [
    summary.stopping_instances > 0 ? `${summary.stopping_instances} stopping` : undefined,
    summary.dead_instances > 0 ? `${summary.dead_instances} dead` : undefined,
  ].filter((part) => part !== undefined);
  return (
    `${plural(summary.live_instances, 'live instance')}${others.length > 0 ? ` (${others.join(', ')})` : ''}, ` +
    `${summary.owned_shards}/${status.shard_count} shards owned, total lag ${summary.total_lag}`
  );
}

/** The snapshot as an operator reads it. */
export function formatClusterStatus(status: ClusterStatus): string[] {
  const lines: string[] = [`Cluster on ${status.location} (${status.database}), database time ${status.now_iso}`, ''];
  const leaseAges = (instance: InstanceStatus) =>
    status.shards.filter((s) => s.state === 'owned' && s.owner === instance.instance_id && s.lease_age_ms !== null).map((s) => s.lease_age_ms!);
  const expiries = (instance: InstanceStatus) =>
    status.shards.filter((s) => s.state === 'owned' && s.owner === instance.instance_id).map((s) => s.expires_in_ms!);

  if (status.instances.length === 0) {
    lines.push('No instances (none has started on this database, or all stopped more than an hour ago).');
  } else {
    lines.push(
      ...table([
        ['INSTANCE', 'STATE', 'PID', 'HOST', 'ADDRESS', 'STARTED', 'HEARTBEAT', 'SHARDS', 'LEASE AGE', 'LEASE EXPIRES IN', 'LAG'],
        ...status.instances.map((i) => {
          const soonest = expiries(i);
          return [
            i.instance_id,
            i.state,
            String(i.pid),
            i.hostname,
            i.address ?? '-',
            i.started_at,
            i.state === 'dead' ? `${seconds(i.heartbeat_age_ms)} ago (expired ${seconds(-i.expires_in_ms)} ago)` : `${seconds(i.heartbeat_age_ms)} ago`,
            shardRanges(i.shards),
            span(leaseAges(i)),
            soonest.length === 0 ? '-' : seconds(Math.min(...soonest)),
            String(i.lag),
          ];
        }),
      ]),
    );
  }
  if (status.hidden_dead_instances > 0) {
    lines.push(`(${plural(status.hidden_dead_instances, 'dead instance')} that expired more than ${DEAD_INSTANCE_VISIBLE_MS / 60_000} minutes ago not shown)`);
  }

  if (status.shards_of_unlisted_owners.length > 0) {
    lines.push('', `Shards leased to instances not listed above: ${shardRanges(status.shards_of_unlisted_owners)}`);
  }

  lines.push('');
  if (status.unowned_shards.length === 0) {
    lines.push('Every shard has a live owner.');
  } else {
    const lag = status.unowned_shards.reduce((sum, s) => sum + s.lag, 0);
    lines.push(`Shards without a live owner: ${shardRanges(status.unowned_shards.map((s) => s.shard))} (lag ${lag})`);
    // Detail for the ones worth a look: an expired lease, or telemetry waiting.
    const notable = status.shards.filter((s) => s.state !== 'owned' && (s.state === 'expired' || s.lag !== 0));
    if (notable.length > 0) {
      lines.push(
        ...table([
          ['SHARD', 'STATE', 'LAST OWNER', 'EXPIRED', 'LAG'],
          ...notable.map((s) => [
            String(s.shard),
            s.state,
            s.owner ?? '-',
            s.expires_in_ms === null ? '-' : `${seconds(-s.expires_in_ms)} ago`,
            String(s.lag),
          ]),
        ]).map((line) => `  ${line}`),
      );
    }
  }
  lines.push('', summaryLine(status));
  return lines;
}

/** `alerts cluster status`: opens the store as the other CLI commands do, prints the snapshot. */
export async function clusterStatusCommand(config: Config, options: { json: boolean }, out: Out): Promise<void> {
  const store = await openStore({ location: config.database, secretKey: config.secretKey, migrations: config.autoMigrate ? 'apply' : 'verify' });
  try {
    const status = await readClusterStatus(store);
    if (options.json) out(JSON.stringify(status, null, 2));
    else for (const line of formatClusterStatus(status)) out(line);
  } finally {
    await store.close();
  }
}

export function registerClusterCommand(program: Command, out: Out, fail: (error: unknown) => never, config: () => Config): void {
  const cluster = program.command('cluster').description('the alerts serve processes sharing the database (DATABASE_URL) and their shards');
  cluster
    .command('status')
    .description(
      'show each instance (live, stopping or dead), the shards it owns, their lease ages and lag (telemetry batches not yet applied), ' +
        'and the shards without a live owner; dead instances that expired more than an hour ago are left out',
    )
    .option('--json', 'print the snapshot as JSON', false)
    .action((options: { json: boolean }) => clusterStatusCommand(config(), options, out).catch(fail));
}
