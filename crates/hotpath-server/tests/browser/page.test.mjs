// The live status page in a real headless Chromium (Debian's, never a
// downloaded one), driven over the DevTools protocol by playwright-core.
// Run by scripts/test-all.sh after it builds `hotpath` and the
// `embedded` example:
//
//   node --test --test-concurrency=1 crates/hotpath-server/tests/browser/page.test.mjs
//
// HOTPATH_BIN, HOTPATH_EMBEDDED_BIN, CHROMIUM and ETCD_BIN override where
// the binaries are (the fleet test needs Debian's etcd-server, which
// test-all.sh installs for the fleet tests). Screenshots for people go to target/browser/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../../../..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
const HOTPATH = process.env.HOTPATH_BIN || path.join(TARGET, 'debug/hotpath');
const EMBEDDED = process.env.HOTPATH_EMBEDDED_BIN || path.join(TARGET, 'debug/examples/embedded');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ETCD = process.env.ETCD_BIN || '/usr/bin/etcd';
const SHOTS = path.join(TARGET, 'browser');
const WAIT = 20_000;

/** The serve tests' config: calibration off, generations move within seconds. */
const FAST_CONFIG = readFileSync(path.join(ROOT, 'crates/hotpath-cli/tests/data/fast_tuning.toml'), 'utf8');

let browser;
const children = [];
const dirs = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir() {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotpath-browser-'));
  dirs.push(dir);
  return dir;
}

/**
 * Spawns `command` and resolves with the first match of `pattern` on its
 * standard output (the rest of which is kept in `lines`).
 */
function start(command, args) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, HOTPATH_LOG: 'warn' } });
  children.push(child);
  const lines = [];
  const reader = createInterface({ input: child.stdout });
  reader.on('line', (line) => lines.push(line));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const first = (pattern) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} printed no ${pattern} in ${WAIT} ms: ${lines.join('\n')}`)), WAIT);
    const look = () => {
      for (const line of lines) {
        const found = line.match(pattern);
        if (found) {
          clearTimeout(timer);
          resolve(found);
          return true;
        }
      }
      return false;
    };
    if (!look()) reader.on('line', look);
    child.on('exit', (code) => reject(new Error(`${command} exited (${code}): ${lines.join('\n')}`)));
  });
  return { child, lines, first, exited };
}

/** A page that fails the test on any script error or policy violation. */
async function open(url, viewport = { width: 1280, height: 1000 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused token is a 401/403 the page handles; the rest is a defect.
    const expected = /status of 40[13] \((Unauthorized|Forbidden)\)/;
    if (message.type() === 'error' && !expected.test(message.text())) {
      problems.push(`console: ${message.text()}`);
    }
  });
  const response = await page.goto(url);
  assert.equal(response.status(), 200);
  const policy = response.headers()['content-security-policy'];
  assert.match(policy, /default-src 'none'; script-src 'self'/);
  return { page, context, problems };
}

async function liveText(page, knob) {
  return page.locator(`#knobs tr[data-knob="${knob}"] td.live`).innerText();
}

test('serve: the page shows the knobs and follows the config as it changes', { timeout: 90_000 }, async () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'tuning.toml'), FAST_CONFIG);
  const data = path.join(dir, 'data');
  const serve = start(HOTPATH, ['serve', '--config', path.join(dir, 'tuning.toml'), '--data', data,
    '--listen', '127.0.0.1:0', '--window-ms', '20']);
  const [, addr] = await serve.first(/listening on (http:\/\/[^ ]+)/);
  const token = readFileSync(path.join(data, 'token'), 'utf8').trim();
  const { page, context, problems } = await open(`${addr}/`);

  await page.locator('#knobs tbody tr').nth(1).waitFor();
  assert.equal(await page.locator('#knobs tbody tr').count(), 2);
  const batch = page.locator('#knobs tr[data-knob="batch_size"]');
  assert.equal(await batch.locator('td.bounds').innerText(), '1 … 512');
  assert.equal(await batch.locator('td.kind').innerText(), 'real');
  assert.equal(await liveText(page, 'batch_size'), '64');
  assert.match(await page.locator('#connection').innerText(), /live/);

  // Replicas report until the engine has moved the config away from
  // where it started; then the page shows what the API says.
  const shown = (x) => String(Number(x.toPrecision(4)));
  let config = { generation: 0, values: { batch_size: 64, linger_ms: 10 } };
  const deadline = Date.now() + WAIT;
  while ((config.values.batch_size === 64 && config.values.linger_ms === 10) && Date.now() < deadline) {
    const b = config.values.batch_size;
    const l = config.values.linger_ms;
    const objective = ((b - 200) / 100) ** 2 + ((l - 5) / 10) ** 2;
    const body = `{"objective":${objective},"samples":50,"generation":${config.generation},"instance":"r1"}\n`;
    const posted = await fetch(`${addr}/v1/telemetry`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-ndjson' },
      body,
    });
    assert.equal(posted.status, 202);
    await new Promise((resolve) => setTimeout(resolve, 10));
    config = await (await fetch(`${addr}/v1/config`)).json();
  }
  assert.ok(config.generation > 0, 'the config did not move');
  await new Promise((resolve) => setTimeout(resolve, 300));
  config = await (await fetch(`${addr}/v1/config`)).json();
  await page.waitForFunction((g) => document.getElementById('generation').textContent === String(g), config.generation, { timeout: WAIT });
  assert.equal(await liveText(page, 'batch_size'), shown(config.values.batch_size));
  assert.equal(await liveText(page, 'linger_ms'), shown(config.values.linger_ms));
  await page.locator('#decisions li.kind-applied').first().waitFor({ timeout: WAIT });
  await page.waitForFunction(() => /measurements over the last/.test(document.getElementById('chart-caption').textContent), null, { timeout: WAIT });
  assert.ok(await page.locator('#chart polyline.line').count() === 1);
  await page.screenshot({ path: path.join(SHOTS, 'serve.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0);
});

test('serve: freeze asks for the token, refuses a wrong one and works with the right one', { timeout: 90_000 }, async () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'tuning.toml'), FAST_CONFIG);
  const data = path.join(dir, 'data');
  const serve = start(HOTPATH, ['serve', '--config', path.join(dir, 'tuning.toml'), '--data', data,
    '--listen', '127.0.0.1:0']);
  const [, addr] = await serve.first(/listening on (http:\/\/[^ ]+)/);
  const token = readFileSync(path.join(data, 'token'), 'utf8').trim();
  const { page, context, problems } = await open(`${addr}/`);
  const frozen = async () => (await (await fetch(`${addr}/v1/status`)).json()).safe_mode.active;
  await page.waitForFunction(() => /off/.test(document.getElementById('safe-state').textContent));

  // No token yet: the button asks for one; cancelling does nothing.
  await page.getByRole('button', { name: 'Freeze' }).click();
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible' });
  await page.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.match(await page.locator('#action-result').innerText(), /Nothing was done/);
  assert.equal(await frozen(), false);

  // A wrong token: refused (403), nothing frozen, the token forgotten.
  await page.getByRole('button', { name: 'Freeze' }).click();
  await page.getByLabel('Token', { exact: true }).fill('not-the-token-at-all');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForFunction(() => /refused the token \(403/.test(document.getElementById('action-result').textContent), null, { timeout: WAIT });
  assert.equal(await frozen(), false);
  assert.match(await page.locator('#safe-state').innerText(), /^off/);

  // The right one: frozen, shown with its reason.
  await page.getByRole('button', { name: 'Freeze' }).click();
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#reasons li[data-reason="Manual"]').waitFor({ timeout: WAIT });
  assert.match(await page.locator('#safe-state').innerText(), /^ON/);
  assert.equal(await frozen(), true);
  await page.locator('#decisions li.kind-safe-mode-entered').first().waitFor({ timeout: WAIT });
  await page.screenshot({ path: path.join(SHOTS, 'frozen.png'), fullPage: true });

  // Kept in memory only: not in the URL, not in storage, not asked again.
  assert.ok(!page.url().includes(token));
  assert.equal(await page.evaluate(() => window.sessionStorage.length), 0);
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.waitForFunction(() => /^off/.test(document.getElementById('safe-state').textContent), null, { timeout: WAIT });
  assert.equal(await frozen(), false);
  assert.match(await page.locator('#action-result').innerText(), /Resumed: cleared Manual/);
  assert.deepEqual(problems, []);
  await context.close();
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0);
});

test('demo: the same page shows the demo tuning its workload', { timeout: 90_000 }, async () => {
  const out = path.join(tempDir(), 'demo');
  const demo = start(HOTPATH, ['demo', '--duration', '10', '--plain', '--out', out]);
  const [, addr] = await demo.first(/^status page: (http:\/\/[^ ]+\/) /);
  const { page, context, problems } = await open(addr);
  await page.locator('#knobs tr[data-knob="linger_ms"]').waitFor();
  assert.equal(await page.locator('#knobs tr[data-knob="batch_size"] td.bounds').innerText(), '1 … 64');
  await page.waitForFunction(() => /measurements over the last/.test(document.getElementById('chart-caption').textContent), null, { timeout: WAIT });
  await page.locator('#decisions li.kind-applied').first().waitFor({ timeout: WAIT });
  await page.screenshot({ path: path.join(SHOTS, 'demo.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
  assert.equal(await demo.exited, 0);
  assert.ok(demo.lines.some((line) => line.includes('chain verified')), demo.lines.join('\n'));
});

test('typed knobs: integers, log scales and choices; readable at a narrow width', { timeout: 90_000 }, async () => {
  const embedded = start(EMBEDDED, ['--seconds', '60']);
  const [, addr] = await embedded.first(/listening on (http:\/\/[^ ]+)/);
  const { page, context, problems } = await open(`${addr}/`, { width: 360, height: 800 });
  const row = (name) => page.locator(`#knobs tr[data-knob="${name}"]`);
  await row('codec').waitFor();
  assert.equal(await row('workers').locator('td.kind').innerText(), 'integer');
  assert.equal(await row('workers').locator('td.bounds').innerText(), '1 … 64');
  assert.equal(await row('cache_ttl_s').locator('td.kind').innerText(), 'real, log scale');
  assert.deepEqual(await row('codec').locator('td.bounds li').allInnerTexts(), ['none', 'lz4', 'zstd']);
  await row('codec').locator('td.bounds li.current').waitFor();
  assert.equal(await row('codec').locator('li[aria-current="true"]').count(), 1);
  assert.match(await row('workers').locator('td.live').innerText(), /^\d+$/);
  // The page fits the width (tables scroll inside their card).
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
  // Every control is named for assistive technology.
  for (const name of ['Freeze', 'Resume']) assert.equal(await page.getByRole('button', { name }).count(), 1);
  assert.equal(await page.getByRole('meter').count(), 3);
  assert.equal(await page.getByRole('checkbox', { name: /engine's events/ }).count(), 1);
  await page.screenshot({ path: path.join(SHOTS, 'narrow.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
  embedded.child.stdin.end();
  assert.equal(await embedded.exited, 0);
});

/** A loopback port nothing listens on (the kernel's pick, released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `probe` every 50 ms until it returns a truthy value, within WAIT. */
async function until(what, probe) {
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    const found = await probe().catch(() => null);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${what} within ${WAIT} ms`);
}

test("fleet: a standby's page names the leader, shows its decisions and freezes the fleet", { timeout: 90_000 }, async () => {
  const dir = tempDir();
  const [client, peer, leaderPort, standbyPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${client}`;
  const etcd = spawn(ETCD, ['--name=browser', `--data-dir=${path.join(dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=http://127.0.0.1:${peer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
    `--initial-cluster=browser=http://127.0.0.1:${peer}`, '--log-level=error'], { stdio: 'ignore' });
  children.push(etcd);
  await until('etcd', async () => (await fetch(`${etcdUrl}/health`)).ok);
  writeFileSync(path.join(dir, 'tuning.toml'), FAST_CONFIG);
  const token = 'browser-fleet-token-0123456789';
  writeFileSync(path.join(dir, 'token'), `${token}\n`);
  const instance = (name, port) => start(HOTPATH, ['serve', '--config', path.join(dir, 'tuning.toml'),
    '--data', path.join(dir, name), '--listen', `127.0.0.1:${port}`, '--token-file', path.join(dir, 'token'),
    '--fleet', 'browser', '--etcd', etcdUrl, '--lease-ttl', '2', '--instance', name]);
  const status = async (port) => (await fetch(`http://127.0.0.1:${port}/v1/status`)).json();
  const leader = instance('i0', leaderPort);
  await leader.first(/listening on/);
  await until('a leader', async () => (await status(leaderPort)).fleet.role === 'leader');
  const standby = instance('i1', standbyPort);
  await standby.first(/listening on/);
  await until('a standby that knows the leader', async () => {
    const fleet = (await status(standbyPort)).fleet;
    return fleet.role === 'standby' && fleet.leader && fleet.leader.instance === 'i0';
  });

  const { page, context, problems } = await open(`http://127.0.0.1:${standbyPort}/`);
  await page.locator('#fleet').waitFor({ state: 'visible', timeout: WAIT });
  assert.equal(await page.locator('#role').innerText(), `i1: standby, leader i0 at 127.0.0.1:${leaderPort}`);
  await page.locator('#counts-standby').waitFor({ state: 'visible', timeout: WAIT });
  // The leader's trail, relayed: its start is on the standby's page.
  await page.locator('#decisions li.kind-started').first().waitFor({ timeout: WAIT });

  // Freeze from the standby's page: forwarded to the leader, published,
  // and shown from the relayed feed and the standby's own status.
  await page.getByRole('button', { name: 'Freeze' }).click();
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#decisions li.kind-safe-mode-entered').first().waitFor({ timeout: WAIT });
  await page.locator('#reasons li[data-reason="Manual"]').waitFor({ timeout: WAIT });
  assert.equal((await status(leaderPort)).safe_mode.active, true);
  await page.screenshot({ path: path.join(SHOTS, 'fleet-standby.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
  for (const served of [standby, leader]) {
    served.child.kill('SIGTERM');
    assert.equal(await served.exited, 0);
  }
  etcd.kill('SIGKILL');
});
