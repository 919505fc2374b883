#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import { createKey, listKeys, revokeKey } from './keys.js';
import { serve } from './serve.js';

const out = (line: string) => process.stdout.write(line + '\n');

function fail(error: unknown): never {
  const message = error instanceof ConfigError ? error.message : error instanceof Error ? error.message : String(error);
  process.stderr.write(`alerts: ${message}\n`);
  process.exit(error instanceof ConfigError ? 78 : 1);
}

/** The configuration, or a clean exit with the reason (no stack trace) when it is invalid. */
function config() {
  try {
    return loadConfig();
  } catch (error) {
    fail(error);
  }
}

const program = new Command()
  .name('alerts')
  .description('Self-hosted alerting service, wire-compatible with the PolyAI Alerts API. Settings come from the environment (see README).')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the HTTP service (PORT, DATABASE_URL, ...)')
  .action(() => serve(config()).catch(fail));

const keys = program.command('keys').description('manage API keys (stored only as hashes)');
keys
  .command('create')
  .description('create an API key, creating the account if needed; prints the key once, on the last line')
  .requiredOption('--account <name>', 'account the key belongs to')
  .action((options: { account: string }) => {
    const account = options.account.trim();
    if (account === '' || account.length > 100) fail(new Error('--account must be 1 to 100 characters'));
    return createKey(config(), account, out).catch(fail);
  });
keys
  .command('list')
  .description('list API keys (never the keys themselves)')
  .action(() => listKeys(config(), out).catch(fail));
keys
  .command('revoke')
  .description('revoke an API key; requests with it get 401 from then on')
  .argument('<key-id>', 'the key id, as shown by keys list (key_...)')
  .action(async (id: string) => {
    const revoked = await revokeKey(config(), id, out).catch(fail);
    if (!revoked) fail(new Error(`no active API key with id ${id}`));
  });

await program.parseAsync(process.argv);
