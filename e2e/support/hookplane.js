// Starts and stops real Hookplane processes for the browser tests. Each test gets its own process, because
// the tests change state (replays, rotations, sign-in throttling) that must not leak into the next one.

import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

/** The binary under test: HOOKPLANE_BIN, else the debug build of this checkout. */
export const BIN = path.resolve(here, '..', process.env.HOOKPLANE_BIN || '../target/debug/hookplane');

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

// Hookplane's log is tracing's plain format on stdout: `… INFO Hookplane is listening addr=127.0.0.1:PORT …`.
// Colours are only used on a terminal, but they are stripped anyway so a change there cannot break start-up.
const LISTENING = /Hookplane is listening\s+addr=(\S+)/;
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * The environment of a child: the caller's, less every HOOKPLANE_ variable (a developer's own configuration
 * must not change what the tests see), with `extra` on top. RUST_LOG is pinned because the listening line is
 * logged at info, and a quieter filter would hide it.
 */
function childEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOOKPLANE_')));
  return { ...env, RUST_LOG: 'info', NO_COLOR: '1', ...extra };
}

/** A running Hookplane: its base URL, its log so far, and `stop()`. */
class Server {
  constructor(child, name) {
    this.child = child;
    this.name = name;
    this.log = '';
    this.url = null;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Waits for the listening line, then for /readyz to answer 200. */
  async ready() {
    const started = Date.now();
    const addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not log its address within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onData = (chunk) => {
        this.log += chunk.toString('utf8').replace(ANSI, '');
        const m = this.log.match(LISTENING);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      this.child.stdout.on('data', onData);
      this.child.stderr.on('data', onData);
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (code ${code}, signal ${signal}) before listening:\n${this.log}`));
      });
    });
    this.url = `http://${addr}`;
    while (Date.now() - started < START_TIMEOUT_MS) {
      try {
        const resp = await fetch(`${this.url}/readyz`);
        if (resp.status === 200) return this;
      } catch {
        // Not accepting yet.
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name} at ${this.url} was not ready within ${START_TIMEOUT_MS} ms:\n${this.log}`);
  }

  /** SIGTERM, then SIGKILL if it has not stopped in time; resolves once the process is gone. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

function start(args, env, name) {
  const child = spawn(BIN, args, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new Server(child, name);
  // Without a listener an unexpected spawn failure (a missing binary) would crash the test runner.
  child.once('error', (e) => {
    server.log += `\ncould not start ${BIN}: ${e.message}\n`;
  });
  return server;
}

/**
 * `hookplane serve --demo <scenario>` on a free port. The browser signs in through the one-time setup link,
 * whose code is chosen here (Hookplane wants at least 32 characters).
 */
export async function startDemo(scenario) {
  const setupCode = randomBytes(24).toString('hex');
  const server = start(['serve', '--demo', scenario, '--listen', '127.0.0.1:0'], { HOOKPLANE_SETUP_CODE: setupCode }, `hookplane demo ${scenario}`);
  try {
    await server.ready();
  } catch (e) {
    await server.stop();
    throw e;
  }
  server.setupUrl = `${server.url}/setup?code=${setupCode}`;
  // The demo prints its throwaway API token in the banner; some checks read the API with it.
  server.apiToken = server.log.match(/API token:\s+(\S+)/)?.[1] ?? null;
  return server;
}

async function hookplane(args, env) {
  return run(BIN, args, { env: childEnv(env), timeout: 30_000 });
}

/**
 * A Hookplane with its own data directory and one admin, made the way an operator would: the store exists
 * only after a first start, and `admin create-user` works only while Hookplane is stopped.
 */
export async function startWithOperator({ username = 'alice', role = 'admin' } = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'hookplane-e2e-'));
  const { stdout } = await hookplane(['master-key'], {});
  const env = { HOOKPLANE_MASTER_KEY: stdout.trim() };
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const serveArgs = ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0'];
  try {
    const first = start(serveArgs, env, 'hookplane (making its store)');
    try {
      await first.ready();
    } finally {
      await first.stop();
    }
    await hookplane(['admin', 'create-user', '--data-dir', dataDir, '--username', username, '--role', role, '--password-env', 'E2E_PASSWORD'], {
      ...env,
      E2E_PASSWORD: password,
    });
    const server = start(serveArgs, env, 'hookplane');
    try {
      await server.ready();
    } catch (e) {
      await server.stop();
      throw e;
    }
    const stop = server.stop.bind(server);
    server.stop = async () => {
      const result = await stop();
      await rm(dataDir, { recursive: true, force: true });
      return result;
    };
    Object.assign(server, { dataDir, username, password });
    return server;
  } catch (e) {
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
}

/** Keeps a server's log with the test's results when the test failed, where it explains most failures. */
export async function attachLog(server, testInfo) {
  if (!server || testInfo.status === testInfo.expectedStatus) return;
  const file = testInfo.outputPath('hookplane.log');
  await writeFile(file, server.log);
  await testInfo.attach('hookplane.log', { path: file, contentType: 'text/plain' });
}
