import { execFileSync } from 'node:child_process';

/** Compiles once so tests that start the real CLI as a child process run current code. */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
