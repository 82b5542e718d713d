// Debian packages: install what is missing, and fetch a source package from another suite
// through private apt lists so that the system's own sources stay untouched.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withLock } from './lock.js';
import { cacheDir } from './paths.js';
import { requireRoot, run, runOk } from './process.js';

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// Another apt-get (a parallel test run, unattended upgrades) may hold dpkg's lock: wait for it.
const WAIT_FOR_LOCK = ['-o', 'DPkg::Lock::Timeout=600'];

/** Which of `packages` are not installed, in one dpkg-query call. */
export async function missingPackages(packages: readonly string[]): Promise<string[]> {
  if (packages.length === 0) return [];
  // Unknown names make dpkg-query exit 1 and print nothing for them: they count as missing.
  const r = await run('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...packages]);
  const installed = new Set(
    r.stdout
      .split('\n')
      .map((line) => line.split(' '))
      .filter(([, status]) => status === 'installed')
      .map(([name]) => name),
  );
  return packages.filter((p) => !installed.has(p.replace(/:.*$/, '')));
}

/**
 * Installs the missing ones among `packages` (without recommends) and returns their names.
 * `apt-get update` runs only when the first try fails, since the lists are usually current
 * enough and updating costs seconds every time.
 */
export async function ensurePackages(packages: readonly string[]): Promise<string[]> {
  const missing = await missingPackages(packages);
  if (missing.length === 0) return [];
  requireRoot(`installing ${missing.join(' ')}`);
  return withLock(join(cacheDir(), 'apt.lock'), async () => {
    const still = await missingPackages(missing);
    if (still.length === 0) return [];
    const args = ['install', '-y', '-q', '--no-install-recommends', ...WAIT_FOR_LOCK, ...still];
    const first = await run('apt-get', args, { env: APT_ENV });
    if (first.code !== 0) {
      await runOk('apt-get update', 'apt-get', ['update', '-q', ...WAIT_FOR_LOCK], {
        env: APT_ENV,
      });
      await runOk(`installing ${still.join(' ')}`, 'apt-get', args, { env: APT_ENV });
    }
    return still;
  });
}

interface DebianSource {
  uri: string;
  signedBy?: string;
}

/** The machine's codename (bookworm, trixie, …) from /etc/os-release. */
export function debianCodename(): string {
  const m = /^VERSION_CODENAME=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'));
  const name = m?.[1]?.replace(/"/g, '').trim();
  if (!name) throw new Error('apt: no VERSION_CODENAME in /etc/os-release');
  return name;
}

async function aptConfigDir(key: string): Promise<string> {
  // `apt-config shell VAR Key/d` prints VAR='/full/path/' with apt's own defaults applied.
  const out = await runOk('apt-config', 'apt-config', ['shell', 'D', `${key}/d`]);
  const m = /^D='(.*)'$/m.exec(out.trim());
  if (!m?.[1]) throw new Error(`apt: apt-config names no folder for ${key}`);
  return m[1];
}

/**
 * The Debian mirror this machine uses for its own release, read from the deb822 `.sources`
 * files in apt's source-parts folder (the `URIs:` of the stanza whose suites include the
 * release's codename), so that no mirror host name is ever written into the repo.
 */
export async function systemDebianSource(): Promise<DebianSource> {
  const codename = debianCodename();
  const dir = await aptConfigDir('Dir::Etc::sourceparts');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.sources')) : [];
  for (const file of files.sort()) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string>();
      for (const line of stanza.split('\n')) {
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m?.[1] && m[2] !== undefined) fields.set(m[1].toLowerCase(), m[2].trim());
      }
      const words = (key: string) => (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
      if (fields.get('enabled') === 'no') continue;
      if (!words('types').some((t) => t === 'deb' || t === 'deb-src')) continue;
      if (!words('suites').includes(codename) || !words('components').includes('main')) continue;
      const uri = words('uris')[0];
      if (uri) return { uri, signedBy: fields.get('signed-by') };
    }
  }
  // Older machines list their sources one per line in sources.list.
  const list = await aptConfigFile('Dir::Etc::sourcelist');
  if (existsSync(list)) {
    for (const line of readFileSync(list, 'utf8').split('\n')) {
      const m = /^deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line.trim());
      if (m?.[1] && m[2] === codename && m[3]?.split(/\s+/).includes('main')) return { uri: m[1] };
    }
  }
  throw new Error(`apt: no Debian source for ${codename} main in ${dir} or ${list}`);
}

async function aptConfigFile(key: string): Promise<string> {
  const out = await runOk('apt-config', 'apt-config', ['shell', 'F', `${key}/f`]);
  const m = /^F='(.*)'$/m.exec(out.trim());
  return m?.[1] ?? '/etc/apt/sources.list';
}

/**
 * Downloads and unpacks source package `name` from Debian suite `suite` into `workDir` and
 * returns the unpacked folder. The deb-src list, the downloaded indexes and apt's caches live
 * in a private folder (Dir::Etc::sourcelist, Dir::Etc::sourceparts, Dir::State::Lists,
 * Dir::Cache), so the machine's package lists never see the other suite.
 */
export async function fetchSourcePackage(
  name: string,
  suite: string,
  workDir: string,
): Promise<string> {
  await ensurePackages(['dpkg-dev']); // dpkg-source unpacks what apt-get source fetched
  const source = await systemDebianSource();
  const aptDir = join(cacheDir(), `apt-${suite}-src`);
  for (const sub of ['sources.list.d', 'lists/partial', 'cache/archives/partial']) {
    mkdirSync(join(aptDir, sub), { recursive: true });
  }
  writeFileSync(join(aptDir, 'sources.list'), '');
  writeFileSync(
    join(aptDir, 'sources.list.d', `debian-${suite}-src.sources`),
    [
      'Types: deb-src',
      `URIs: ${source.uri}`,
      `Suites: ${suite}`,
      'Components: main',
      ...(source.signedBy ? [`Signed-By: ${source.signedBy}`] : []),
      '',
    ].join('\n'),
  );
  const opts = [
    '-o',
    `Dir::Etc::sourcelist=${join(aptDir, 'sources.list')}`,
    '-o',
    `Dir::Etc::sourceparts=${join(aptDir, 'sources.list.d')}`,
    '-o',
    `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o',
    `Dir::Cache=${join(aptDir, 'cache')}`,
    // apt-get source downloads into the current folder, which apt's _apt user can't write.
    '-o',
    'APT::Sandbox::User=root',
  ];
  await runOk(`apt-get update (${suite} sources)`, 'apt-get', ['update', '-q', ...opts], {
    env: APT_ENV,
  });
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  await runOk(`apt-get source ${name} (${suite})`, 'apt-get', ['source', '-q', ...opts, name], {
    cwd: workDir,
    env: APT_ENV,
  });
  const unpacked = readdirSync(workDir, { withFileTypes: true }).find(
    (e) => e.isDirectory() && e.name.startsWith(`${name}-`),
  );
  if (!unpacked) throw new Error(`apt-get source ${name}: no unpacked folder in ${workDir}`);
  return join(workDir, unpacked.name);
}
