#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import { AppError } from '../domain/errors.js';
import { backupDatabase } from '../store/backup.js';
import { VERSION } from '../version.js';
import { registerClusterCommand } from './cluster.js';
import { DEMO_DEFAULTS, demoCommand, type DemoCommandOptions, type IncidentKind } from './demo.js';
import { createKey, listKeys, migrateCommand, revokeKey } from './keys.js';
import { registerListenCommand } from './listen.js';
import { serve } from './serve.js';

const out = (line: string) => process.stdout.write(line + '\n');

function fail(error: unknown): never {
  let message = error instanceof ConfigError ? error.message : error instanceof Error ? error.message : String(error);
  // Storage failing (disk full, I/O error): the words of the database itself say what to fix.
  if (error instanceof AppError && error.code === 'unavailable' && error.cause instanceof Error) message += ` (${error.cause.message})`;
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
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the HTTP service (PORT, DATABASE_URL, ...)')
  .action(() => serve(config()).catch(fail));

program
  .command('migrate')
  .description('apply pending database migrations (DATABASE_URL) and exit; for a service run with ALERTS_AUTO_MIGRATE=off')
  .action(() => migrateCommand(config(), out).catch(fail));

program
  .command('backup')
  .description('write a consistent copy of the database (DATABASE_URL) to <file>; safe while the server runs')
  .argument('<file>', 'where to write the copy; must not exist yet')
  .action(async (file: string) => {
    const result = await backupDatabase(config().database, file).catch(fail);
    out(`Backed up ${result.source} to ${result.destination} (${result.bytes} bytes, integrity checked).`);
  });

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

function number(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    return n;
  };
}

program
  .command('demo')
  .description(
    'stream simulated voice-agent telemetry to a running service, create two demo rules, push latency over the threshold and back, ' +
      'and print each state change and each signed webhook received; deletes its rules and endpoint on exit',
  )
  .option('--url <url>', 'base URL of the running service, loopback only unless --allow-remote (default: http://127.0.0.1:$PORT, as npm start)')
  .option('--api-key <key>', 'API key of the account to use (default: ALERTS_API_KEY, else ALERTS_BOOTSTRAP_API_KEY)')
  .option('--allow-remote', 'allow a --url that is not a loopback address', false)
  .option('--duration <seconds>', 'how long to run', number(1, 86_400), DEMO_DEFAULTS.durationS)
  .addOption(new Option('--incident <kind>', 'what the incident degrades').choices(['latency', 'errors', 'both']).default(DEMO_DEFAULTS.incident))
  .option('--incident-at <seconds>', 'when the incident starts', number(0, 86_400), DEMO_DEFAULTS.incidentAtS)
  .option('--incident-for <seconds>', 'how long the incident lasts', number(0, 86_400), DEMO_DEFAULTS.incidentForS)
  .option('--incident-ratio <share>', 'share of turns the latency incident slows down (0 to 1)', number(0.001, 1), DEMO_DEFAULTS.incidentRatio)
  .option('--seed <n>', 'simulator seed', number(0, 2 ** 32 - 1), DEMO_DEFAULTS.seed)
  .option('--no-webhooks', 'do not receive webhooks (by default an HTTPS receiver on 127.0.0.1 shows each one, verified)')
  .option('--tls-dir <dir>', "the receiver's throwaway certificate, shared with alerts listen --tls (default: ~/.cache/alerts/listen-tls)")
  .action(
    (options: {
      url?: string;
      apiKey?: string;
      webhooks: boolean;
      tlsDir?: string;
      allowRemote: boolean;
      duration: number;
      incident: IncidentKind;
      incidentAt: number;
      incidentFor: number;
      incidentRatio: number;
      seed: number;
    }) => {
      const demo: DemoCommandOptions = {
        url: options.url,
        apiKey: options.apiKey,
        webhooks: options.webhooks,
        tlsDir: options.tlsDir,
        allowRemote: options.allowRemote,
        durationS: options.duration,
        seed: options.seed,
        incident: options.incident,
        incidentAtS: options.incidentAt,
        incidentForS: options.incidentFor,
        incidentRatio: options.incidentRatio,
      };
      return demoCommand(demo, out).catch(fail);
    },
  );

registerListenCommand(program, out, fail);
registerClusterCommand(program, out, fail, config);

await program.parseAsync(process.argv);
