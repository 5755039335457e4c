/**
 * `npm run test:pack`: the package as a user gets it. Packs this repository (`npm pack`, whose
 * `prepack` builds dist/ from scratch), checks the tarball's contents, installs it with
 * `ioredis@5` into a scratch app in a temp dir (from the npm cache when it can), and runs there:
 *
 * - an ESM smoke test: import, a Store against a real Redis (found or started by
 *   scripts/local-redis.ts), put/get/proxy, with a connector of its own and with the app's own
 *   ioredis client, then close; nothing left in Redis;
 * - a CommonJS smoke test: `require('proxystore-redis')` from a .cjs file, put/get/close;
 * - `tsc --noEmit`, strict and without skipLibCheck, under `moduleResolution` node16 and bundler
 *   (and a CommonJS .cts under nodenext);
 * - `npx proxystore-redis --help` and `--version`;
 * - every relative link of the shipped README.md and docs/*.md leads to a file in the package.
 *
 * With `--git`, it also installs the repository from git (`git+file://…#HEAD`, committed state
 * only), as `npm install github:…` would, and checks that the install was built (`prepare`).
 * The temp dir is removed and a started Redis stopped, pass or fail (`--keep` keeps the dir).
 *
 * Usage: tsx scripts/pack-test.ts [--git] [--keep]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findOrStartRedis } from './local-redis.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
const STEP_TIMEOUT_MS = 120_000;

const { values: flags } = parseArgs({ options: { git: { type: 'boolean' }, keep: { type: 'boolean' } } });

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (or kills it after `timeoutMs`); never throws on a non-zero exit. */
function run(command: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\n[pack-test: killed after ${opts.timeoutMs ?? STEP_TIMEOUT_MS} ms]`;
    }, opts.timeoutMs ?? STEP_TIMEOUT_MS);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

class CheckFailed extends Error {}

function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new CheckFailed(message);
}

async function ok(what: string, command: string, args: string[], opts: Parameters<typeof run>[2]): Promise<Run> {
  const r = await run(command, args, opts);
  check(r.code === 0, `${what} failed (exit ${r.code}): ${command} ${args.join(' ')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

const started = Date.now();
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const result = await fn();
  console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return result;
}

interface PackedFile {
  path: string;
  size: number;
  mode: number;
}

/** Checks the tarball's file list: what a consumer needs, nothing else. */
function checkContents(files: PackedFile[]): void {
  const paths = new Set(files.map((f) => f.path));
  for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/generated/lua.js', 'docs/cli.md']) {
    check(paths.has(needed), `the tarball lacks ${needed}`);
  }
  const unwanted = files.filter(
    (f) =>
      f.path.endsWith('.map') ||
      /^(src|test|lua|scripts|bench|demo|examples|docs\/api|node_modules)\//.test(f.path) ||
      // The CLI is a program, not an API: its declarations would only be noise.
      f.path === 'dist/cli.d.ts' ||
      /^dist\/cli\/.*\.d\.ts$/.test(f.path),
  );
  check(unwanted.length === 0, `the tarball holds files a consumer does not need: ${unwanted.map((f) => f.path).join(', ')}`);
  const cli = files.find((f) => f.path === 'dist/cli.js');
  check(cli !== undefined && (cli.mode & 0o111) !== 0, 'dist/cli.js is not executable in the tarball');
  // The generated scripts module's public type names keys and args only, never the sources.
  const luaTypes = files.find((f) => f.path === 'dist/generated/lua.d.ts');
  check(luaTypes !== undefined && luaTypes.size < 20_000, `dist/generated/lua.d.ts is ${luaTypes?.size} bytes: does it repeat the script sources as literal types?`);
}

/** Checks the published package.json: metadata, peers, and no install scripts. */
function checkManifest(pkg: Record<string, unknown>): void {
  const scripts = (pkg.scripts ?? {}) as Record<string, string>;
  for (const hook of ['preinstall', 'install', 'postinstall']) check(!(hook in scripts), `package.json has an install script: ${hook}`);
  check(pkg.license === 'MIT', 'package.json: license is not MIT');
  for (const field of ['repository', 'homepage', 'bugs']) check(pkg[field] !== undefined, `package.json has no ${field}`);
  const peers = (pkg.peerDependencies ?? {}) as Record<string, string>;
  const deps = (pkg.dependencies ?? {}) as Record<string, string>;
  check(peers.ioredis === '^5', `ioredis must be a peerDependency ^5 (is ${peers.ioredis})`);
  check(!('ioredis' in deps), 'ioredis must not be a dependency as well as a peer: two copies break instanceof');
}

/** Relative links of the shipped markdown files that lead to nothing inside the package. */
function deadLinks(pkgDir: string): string[] {
  const dead: string[] = [];
  const files = ['README.md', ...readdirSync(join(pkgDir, 'docs')).map((f) => `docs/${f}`)].filter((f) => f.endsWith('.md'));
  for (const file of files) {
    const text = readFileSync(join(pkgDir, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = (m[1] as string).split('#')[0] as string;
      if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // an anchor, or https:, mailto:
      const path = resolvePath(dirname(join(pkgDir, file)), target);
      if (!path.startsWith(pkgDir + sep) || !existsSync(path)) dead.push(`${file}: ${m[1]}`);
    }
  }
  return dead;
}

const ESM_SMOKE = `
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisConnector, Store, isProxy, resolve, toRef, fromRef } from 'proxystore-redis';

const url = process.env.SMOKE_REDIS_URL;
const namespace = process.env.SMOKE_NAMESPACE;

// A connector that makes its own client from a URL.
const store = new Store('smoke', new RedisConnector({ url, namespace }));
const key = await store.put({ hello: 'world', list: [1, 2, 3] });
assert.deepEqual(await store.get(key), { hello: 'world', list: [1, 2, 3] });
await store.evict(key);
assert.equal(await store.exists(key), false);
await store.close();

// The app's own ioredis client: the same ioredis as the library's (a peer dependency).
const client = new Redis(url);
const shared = new Store('smoke-shared', new RedisConnector({ client, namespace }), { register: true });
const p = await shared.proxy([10, 20, 30]);
assert.ok(isProxy(p));
const again = fromRef(JSON.parse(JSON.stringify(toRef(p))));
assert.deepEqual([...(await resolve(again))], [10, 20, 30]);
await shared.evict(toRef(p).key);
await shared.close();

const left = [];
for (const k of await client.keys(namespace + ':*')) if ((await client.pttl(k)) === -1) left.push(k);
assert.deepEqual(left, [], 'keys left without a TTL');
await client.quit();
console.log('esm smoke ok');
`;

const CJS_SMOKE = `
const assert = require('node:assert/strict');
if (!process.features.require_module) {
  // Node before 20.19 / 22.12: require() of an ES module is refused, as the README says.
  assert.throws(() => require('proxystore-redis'), { code: 'ERR_REQUIRE_ESM' });
  console.log('cjs smoke ok (require(esm) unsupported on ' + process.version + ', refused as documented)');
  return;
}
const { RedisConnector, Store, ProxyStoreError } = require('proxystore-redis');
assert.equal(typeof ProxyStoreError, 'function');
assert.equal(require('proxystore-redis/package.json').name, 'proxystore-redis');
(async () => {
  const store = new Store('smoke-cjs', new RedisConnector({ url: process.env.SMOKE_REDIS_URL, namespace: process.env.SMOKE_NAMESPACE }));
  const key = await store.put(new Map([['answer', 42]]));
  assert.deepEqual(await store.get(key), new Map([['answer', 42]]));
  await store.evict(key);
  await store.close();
  console.log('cjs smoke ok');
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
`;

/** Compiled, never run: the published types, used as an application would. */
const TYPED_APP = `
import { Cluster, Redis } from 'ioredis';
import {
  ContextLifetime, LeaseLifetime, ProxyStoreError, RedisConnector, Store, borrow, drop, extract,
  fromRef, isProxy, resolve, toRef, type Proxy, type ProxyRef, type StoreOptions,
} from 'proxystore-redis';

export async function main(client: Redis | Cluster): Promise<number> {
  const options: StoreOptions = {};
  const store = new Store('typed', new RedisConnector({ client, namespace: 'typed' }), options);
  const key: string = await store.put({ a: 1 });
  const value: unknown = await store.get(key);
  const numbers: Proxy<number[]> = await store.proxy([1, 2, 3]);
  const ref: ProxyRef = toRef(numbers);
  const back = fromRef<number[]>(ref);
  const first: number | undefined = (await resolve(back))[0];
  const total = extract(numbers).reduce((a, b) => a + b, 0);
  const owned = await store.ownedProxy(new Float64Array(4));
  const view = await borrow(owned);
  const isIt: boolean = isProxy(view) && value !== undefined;
  await using lifetime = new ContextLifetime(store);
  await store.put('x', { lifetime });
  const lease = new LeaseLifetime(store, { expiry: 10 });
  await lease.close();
  try {
    await drop(owned);
  } catch (err) {
    if (err instanceof ProxyStoreError) return -1;
  }
  await store.close();
  return total + (first ?? 0) + Number(isIt);
}
`;

/** The same, from a CommonJS TypeScript file (require of an ES module: TypeScript 5.8+, nodenext). */
const TYPED_CJS = `
import psr = require('proxystore-redis');
export const store: psr.Store = new psr.Store('typed-cjs', new psr.RedisConnector({ url: 'redis://127.0.0.1:6379', namespace: 'typed' }));
`;

const STRICT = {
  strict: true,
  skipLibCheck: false,
  noEmit: true,
  target: 'ES2022',
  types: ['node'],
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noImplicitOverride: true,
  forceConsistentCasingInFileNames: true,
};

// Every shipped declaration file is a root too, not only those app.ts reaches through index.d.ts.
const SHIPPED_TYPES = ['node_modules/proxystore-redis/dist/**/*.d.ts'];
const TSCONFIGS: Record<string, { compilerOptions: Record<string, unknown>; files: string[]; include?: string[] }> = {
  'tsconfig.node16.json': { compilerOptions: { ...STRICT, module: 'node16', moduleResolution: 'node16' }, files: ['app.ts'], include: SHIPPED_TYPES },
  'tsconfig.bundler.json': { compilerOptions: { ...STRICT, module: 'preserve', moduleResolution: 'bundler' }, files: ['app.ts'], include: SHIPPED_TYPES },
  'tsconfig.cjs.json': { compilerOptions: { ...STRICT, module: 'nodenext', moduleResolution: 'nodenext' }, files: ['app-cjs.cts'] },
};

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'psr-pack-test-'));
  // Started now, used after the install: the two overlap.
  const redisReady = findOrStartRedis();
  redisReady.catch(() => {}); // awaited below, where a failure is reported
  try {

    const packed = await step('npm pack (prepack builds dist/)', async () => {
      const r = await ok('npm pack', 'npm', ['pack', '--json', '--pack-destination', tmp, '--loglevel=error'], { cwd: ROOT });
      // Lifecycle scripts write to stderr under --json; stdout is the JSON alone.
      const [info] = JSON.parse(r.stdout) as [{ filename: string; size: number; unpackedSize: number; files: PackedFile[] }];
      checkContents(info.files);
      return info;
    });
    console.log(`     ${packed.filename}: ${packed.files.length} files, ${(packed.size / 1000).toFixed(1)} kB packed, ${(packed.unpackedSize / 1000).toFixed(1)} kB unpacked`);

    const app = join(tmp, 'app');
    const installed = join(app, 'node_modules', 'proxystore-redis');
    const typesNode = JSON.parse(readFileSync(join(ROOT, 'node_modules/@types/node/package.json'), 'utf8')).version as string;
    await step('npm install <tarball> ioredis@5 into a scratch app', async () => {
      await mkdir(app);
      await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'psr-pack-smoke', private: true, type: 'module' }, null, 2));
      await ok('npm install', 'npm', ['install', join(tmp, packed.filename), 'ioredis@5', `@types/node@${typesNode}`, ...NPM_FLAGS], { cwd: app });
      checkManifest(JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, unknown>);
      const ioredis = JSON.parse(readFileSync(join(app, 'node_modules/ioredis/package.json'), 'utf8')).version as string;
      check(ioredis.startsWith('5.'), `the app got ioredis ${ioredis}, not 5.x`);
      check(!existsSync(join(installed, 'node_modules', 'ioredis')), 'the library has an ioredis copy of its own: a client of the app would not be an instance of it');
      // `prepare` is for git checkouts; in an installed package it must do nothing.
      const before = statSync(join(installed, 'dist/index.js')).mtimeMs;
      await ok('npm run prepare in the installed package', 'npm', ['run', 'prepare', '--loglevel=error'], { cwd: installed });
      check(statSync(join(installed, 'dist/index.js')).mtimeMs === before, 'prepare rebuilt the installed package');
      const dead = deadLinks(installed);
      check(dead.length === 0, `links that lead nowhere in the installed package:\n  ${dead.join('\n  ')}`);
    });

    const redis = await redisReady;
    const env = { ...process.env, SMOKE_REDIS_URL: redis.url, SMOKE_NAMESPACE: `pack-smoke-${randomBytes(4).toString('hex')}` };
    await step('ESM smoke test against Redis', async () => {
      await writeFile(join(app, 'smoke.mjs'), ESM_SMOKE);
      await ok('the ESM smoke test', process.execPath, ['smoke.mjs'], { cwd: app, env, timeoutMs: 30_000 });
    });
    await step(`CommonJS require() smoke test (Node ${process.version})`, async () => {
      await writeFile(join(app, 'smoke.cjs'), CJS_SMOKE);
      const r = await ok('the CommonJS smoke test', process.execPath, ['smoke.cjs'], { cwd: app, env, timeoutMs: 30_000 });
      // Some Node 22 releases still flag require(esm) as experimental: worth seeing, not failing.
      if (r.stderr.trim() !== '') console.log(`     stderr: ${r.stderr.trim()}`);
    });

    await writeFile(join(app, 'app.ts'), TYPED_APP);
    await writeFile(join(app, 'app-cjs.cts'), TYPED_CJS);
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    for (const [file, config] of Object.entries(TSCONFIGS)) {
      await writeFile(join(app, file), JSON.stringify(config, null, 2));
      const { module, moduleResolution } = config.compilerOptions;
      await step(`tsc --noEmit, strict, no skipLibCheck, module ${String(module)}, moduleResolution ${String(moduleResolution)}`, async () => {
        await ok('tsc', process.execPath, [tsc, '-p', file], { cwd: app });
      });
    }

    await step('npx proxystore-redis --help / --version', async () => {
      const help = await ok('--help', 'npx', ['--no-install', 'proxystore-redis', '--help'], { cwd: app });
      check(help.stdout.startsWith('Usage: proxystore-redis'), `unexpected --help output:\n${help.stdout}`);
      const guide = /^Guide: (.+)$/m.exec(help.stdout)?.[1];
      check(guide !== undefined && guide === join(installed, 'docs', 'cli.md') && existsSync(guide), `--help's guide is not the shipped docs/cli.md: ${guide}`);
      const version = await ok('--version', 'npx', ['--no-install', 'proxystore-redis', '--version'], { cwd: app });
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      check(version.stdout.trim() === pkg.version, `--version said ${version.stdout.trim()}`);
    });

    if (flags.git) {
      await step('npm install git+file://…#HEAD (prepare builds dist/)', async () => {
        const head = (await ok('git rev-parse', 'git', ['rev-parse', 'HEAD'], { cwd: ROOT })).stdout.trim();
        const dirty = (await ok('git status', 'git', ['status', '--porcelain'], { cwd: ROOT })).stdout.trim();
        if (dirty !== '') console.log(`     (the git install takes the committed HEAD ${head.slice(0, 8)}, not the uncommitted changes)`);
        const gitApp = join(tmp, 'git-app');
        await mkdir(gitApp);
        await writeFile(join(gitApp, 'package.json'), JSON.stringify({ name: 'psr-git-smoke', private: true, type: 'module' }, null, 2));
        await ok('npm install from git', 'npm', ['install', `git+file://${ROOT}#${head}`, 'ioredis@5', ...NPM_FLAGS], { cwd: gitApp, timeoutMs: 300_000 });
        const fromGit = join(gitApp, 'node_modules', 'proxystore-redis');
        check(existsSync(join(fromGit, 'dist/index.js')), 'the git install has no dist/: prepare did not build it');
        check(!existsSync(join(fromGit, 'src')), 'the git install holds src/: the files list was not applied');
        await ok('import from the git install', process.execPath, ['--input-type=module', '-e', "const m = await import('proxystore-redis'); if (typeof m.Store !== 'function') process.exit(1);"], { cwd: gitApp });
        await ok('npx from the git install', 'npx', ['--no-install', 'proxystore-redis', '--version'], { cwd: gitApp });
      });
    }
    console.log(`pack test passed in ${((Date.now() - started) / 1000).toFixed(1)} s${flags.keep ? ` (kept ${tmp})` : ''}`);
  } finally {
    if (!flags.keep) await rm(tmp, { recursive: true, force: true });
    await (await redisReady.catch(() => undefined))?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof CheckFailed ? `FAIL ${err.message}` : err);
  process.exitCode = 1;
});
