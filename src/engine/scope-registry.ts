import type { Logger } from 'pino';
import { MAX_AGE_MS, MAX_FUTURE_MS, SCOPE_KNOWN_FOR_MS } from '../domain/telemetry.js';
import type { StoredBatch, TelemetryRepository } from '../domain/ports/telemetry-repository.js';
import { shardOf } from '../domain/shards.js';
import { decodeDeltas, ScopeAggregates, type SecondDelta } from './aggregates.js';

/** Telemetry kept for replay: the longest window plus the furthest accepted future. */
export const REPLAY_MS = MAX_AGE_MS + MAX_FUTURE_MS;
/** Stored batches read at a time: up to 10,000 deltas each, so a page stays a few MB of text. */
const PAGE = 200;

export const accountScopeKey = (accountId: string) => `${accountId}\u0001`;
export const projectScopeKey = (accountId: string, project: string) => `${accountId}\u0000${project}`;
export const scopeKeyOf = (accountId: string, project: string | null) =>
  project === null ? accountScopeKey(accountId) : projectScopeKey(accountId, project);

/** What a project scope looks like while it is built from storage: not to be evaluated yet. */
export const BUILDING = Symbol('building');

/** A batch that has been committed, with its shard and the number it has there. */
export interface CommittedBatch {
  shard: number;
  /** Dense and in commit order within the shard. */
  seq: number;
  accountId: string;
  receivedAt: number;
  deltas: readonly SecondDelta[];
}

interface ProjectScope {
  readonly accountId: string;
  readonly project: string;
  readonly shard: number;
  /** Enabled rules that refer to the project. */
  refs: number;
  state: 'building' | 'ready' | 'failed';
  aggregates: ScopeAggregates;
  /** Batches up to this shard sequence number are read from storage; later ones are applied as they commit. */
  storedThrough: number;
  /** Settles when the current build has ended (ready or failed); never rejects. */
  built: Promise<void>;
}

/**
 * Which scopes the engine keeps in memory, and their aggregates: those of the accounts of the
 * shards this instance owns (loaded when a shard is taken, dropped when it goes).
 *
 * Every account seen in the last 24 hours has a scope with the totals of all its events.
 * A project has a scope of its own only while at least one enabled rule refers to it (at
 * most 10 per account): built from stored telemetry when the first rule arrives, dropped
 * when the last one goes. Any other project costs no memory: its events count in its
 * account's scope, its batches and its last-seen time are in storage.
 *
 * No batch is lost or counted twice while a scope is built: batches are applied in
 * sequence order as they commit (see telemetry-recorder.ts), a new scope takes every batch
 * applied after it was registered, and reads from storage only those up to the last batch
 * applied before.
 */
export interface ScopeRegistry {
  /**
   * A shard taken: the scopes of its accounts seen in the last 24 hours and of the projects
   * the rules refer to (one reference per rule), from one replay of the shard's stored
   * batches. Returns the last sequence number applied. Batches of the shard must not be
   * applied meanwhile (the shard applier runs this in the shard's turn).
   */
  loadShard(shard: number, now: number, projects: readonly { accountId: string; project: string }[]): Promise<number>;
  /** A shard given up: its accounts' and projects' scopes are dropped. */
  dropShard(shard: number): void;
  /** The last sequence number of the shard applied here (0: none). */
  appliedThrough(shard: number): number;
  /** A rule now refers to the project; resolves once its scope is built (or failed to be, logged). */
  retain(accountId: string, project: string, now: number): Promise<void>;
  /** A rule no longer refers to the project; the last one to go drops its scope. */
  release(accountId: string, project: string): void;
  /** Adds a committed batch to its account and to the project scopes it touches; returns their keys. */
  apply(batch: CommittedBatch, now: number): string[];
  /** The aggregates a rule reads: undefined when nothing is known, BUILDING while being built. */
  lookup(accountId: string, project: string | null): ScopeAggregates | undefined | typeof BUILDING;
  /** Slides every scope's windows to `now`. */
  advance(now: number): void;
  /** Drops seconds past the longest window and accounts silent for 24 hours; builds failed scopes again. */
  prune(now: number): void;
  counts(): { accounts: number; projects: number };
}

export function createScopeRegistry({ telemetry, logger }: { telemetry: TelemetryRepository; logger: Logger }): ScopeRegistry {
  const accounts = new Map<string, ScopeAggregates>();
  const projects = new Map<string, Map<string, ProjectScope>>();
  /** Per shard, the highest sequence number applied: every batch of the shard up to it has been. */
  const applied = new Map<number, number>();

  const projectScope = (accountId: string, project: string) => projects.get(accountId)?.get(project);

  function newScope(accountId: string, project: string, now: number): ProjectScope {
    const scope: ProjectScope = {
      accountId,
      project,
      shard: shardOf(accountId),
      refs: 1,
      state: 'building',
      aggregates: new ScopeAggregates(Math.floor(now / 1000), 0),
      storedThrough: 0,
      built: Promise.resolve(),
    };
    let ofAccount = projects.get(accountId);
    if (!ofAccount) projects.set(accountId, (ofAccount = new Map()));
    ofAccount.set(project, scope);
    return scope;
  }

  /** Reads stored batches page by page, in sequence order, until the end or until `wanted` says no. */
  async function readAll(
    read: (afterSeq: number) => Promise<StoredBatch[]>,
    visit: (batch: StoredBatch) => void,
    wanted: () => boolean = () => true,
  ): Promise<void> {
    for (let afterSeq = 0; wanted(); ) {
      const page = await read(afterSeq);
      for (const batch of page) visit(batch);
      if (page.length < PAGE) return;
      afterSeq = page[page.length - 1]!.shard_seq;
    }
  }

  /** Builds a project's scope from storage: its last-seen time and its stored batches' seconds. */
  async function build(scope: ProjectScope, now: number): Promise<void> {
    scope.state = 'building';
    scope.aggregates = new ScopeAggregates(Math.floor(now / 1000), 0);
    scope.storedThrough = applied.get(scope.shard) ?? 0;
    const { accountId, project } = scope;
    try {
      for (const seen of await telemetry.lastSeen([{ account_id: accountId, project_key: project }])) {
        scope.aggregates.lastSeenAt = Math.max(scope.aggregates.lastSeenAt, Number(seen.last_seen_at));
      }
      const quoted = JSON.stringify(project);
      await readAll(
        (afterSeq) => telemetry.accountBatchesSince(accountId, now - REPLAY_MS, afterSeq, scope.storedThrough, PAGE),
        (batch) => {
          // Most batches of a busy account are about other projects: skip them undecoded.
          if (!batch.deltas.includes(quoted)) return;
          for (const delta of decodeDeltas(batch.deltas)) if (delta.project === project) scope.aggregates.add(delta);
        },
        // Released meanwhile (its rule deleted, say): nobody will read it.
        () => scope.refs > 0,
      );
      scope.state = 'ready';
    } catch (error) {
      scope.state = 'failed';
      logger.error({ err: error, account_id: accountId, project_id: project }, 'building a project scope from storage failed; retried within a minute');
    }
  }

  function startBuild(scope: ProjectScope, now: number): Promise<void> {
    scope.built = build(scope, now);
    return scope.built;
  }

  const registry: ScopeRegistry = {
    async loadShard(shard, now, wanted) {
      registry.dropShard(shard);
      const second = Math.floor(now / 1000);
      for (const row of await telemetry.accountsSeenSince(shard, now - SCOPE_KNOWN_FOR_MS)) {
        accounts.set(row.account_id, new ScopeAggregates(second, Number(row.last_seen_at)));
      }
      const created: ProjectScope[] = [];
      for (const { accountId, project } of wanted) {
        const scope = projectScope(accountId, project);
        if (scope) scope.refs++;
        else created.push(newScope(accountId, project, now));
      }
      for (const seen of await telemetry.lastSeen(created.map((s) => ({ account_id: s.accountId, project_key: s.project })))) {
        projectScope(seen.account_id, seen.project_key)!.aggregates.lastSeenAt = Number(seen.last_seen_at);
      }
      // The counter first: a shard whose stored batches are all older than the replay window
      // (or were pruned) goes on from its last number, not from 0.
      const last = (await telemetry.lastSequences()).get(shard) ?? 0;
      applied.set(shard, 0);
      // New scopes have storedThrough 0: every stored batch reaches them through apply.
      await readAll(
        (afterSeq) => telemetry.shardBatchesSince(shard, now - REPLAY_MS, afterSeq, PAGE),
        (batch) =>
          registry.apply(
            { shard, seq: batch.shard_seq, accountId: batch.account_id, receivedAt: Number(batch.received_at), deltas: decodeDeltas(batch.deltas) },
            now,
          ),
      );
      // Batches up to `last` that were not read were older than the window: nothing to apply.
      if ((applied.get(shard) ?? 0) < last) applied.set(shard, last);
      for (const scope of created) if (scope.state === 'building') scope.state = 'ready';
      return applied.get(shard)!;
    },

    dropShard(shard) {
      applied.delete(shard);
      for (const accountId of accounts.keys()) if (shardOf(accountId) === shard) accounts.delete(accountId);
      for (const accountId of projects.keys()) if (shardOf(accountId) === shard) projects.delete(accountId);
    },

    appliedThrough: (shard) => applied.get(shard) ?? 0,

    retain(accountId, project, now) {
      const scope = projectScope(accountId, project);
      if (!scope) return startBuild(newScope(accountId, project, now), now);
      scope.refs++;
      return scope.state === 'failed' ? startBuild(scope, now) : scope.built;
    },

    release(accountId, project) {
      const ofAccount = projects.get(accountId);
      const scope = ofAccount?.get(project);
      if (!ofAccount || !scope || --scope.refs > 0) return;
      // A build still running goes on with a scope nobody reads any more.
      ofAccount.delete(project);
      if (ofAccount.size === 0) projects.delete(accountId);
    },

    apply({ shard, seq, accountId, receivedAt, deltas }, now) {
      applied.set(shard, Math.max(applied.get(shard) ?? 0, seq));
      const second = Math.floor(now / 1000);
      let account = accounts.get(accountId);
      if (!account) accounts.set(accountId, (account = new ScopeAggregates(second, receivedAt)));
      account.advance(second);
      account.lastSeenAt = Math.max(account.lastSeenAt, receivedAt);
      const touched = [accountScopeKey(accountId)];
      const ofAccount = projects.get(accountId);
      const reached = new Set<ProjectScope>();
      for (const delta of deltas) {
        account.add(delta);
        if (!ofAccount || delta.project === null) continue;
        const scope = ofAccount.get(delta.project);
        if (!scope || scope.state === 'failed' || seq <= scope.storedThrough) continue;
        if (!reached.has(scope)) {
          reached.add(scope);
          scope.aggregates.advance(second);
          scope.aggregates.lastSeenAt = Math.max(scope.aggregates.lastSeenAt, receivedAt);
          touched.push(projectScopeKey(accountId, scope.project));
        }
        scope.aggregates.add(delta);
      }
      return touched;
    },

    lookup(accountId, project) {
      if (project === null) return accounts.get(accountId);
      const scope = projectScope(accountId, project);
      if (!scope) return undefined;
      return scope.state === 'ready' ? scope.aggregates : BUILDING;
    },

    advance(now) {
      const second = Math.floor(now / 1000);
      for (const account of accounts.values()) account.advance(second);
      for (const ofAccount of projects.values()) for (const scope of ofAccount.values()) scope.aggregates.advance(second);
    },

    prune(now) {
      const second = Math.floor(now / 1000);
      for (const [accountId, account] of accounts) {
        account.prune(second);
        if (account.isEmpty && account.lastSeenAt <= now - SCOPE_KNOWN_FOR_MS) accounts.delete(accountId);
      }
      for (const ofAccount of projects.values()) {
        for (const scope of ofAccount.values()) {
          scope.aggregates.prune(second);
          if (scope.state === 'failed') void startBuild(scope, now);
        }
      }
    },

    counts() {
      let count = 0;
      for (const ofAccount of projects.values()) count += ofAccount.size;
      return { accounts: accounts.size, projects: count };
    },
  };
  return registry;
}
