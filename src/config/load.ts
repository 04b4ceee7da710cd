import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Config, type ConfigInput, DEFAULTS, MOVED_SETTINGS } from './schema.ts';

export class ConfigError extends Error {}

type Source = { name: string; values: Record<string, Record<string, unknown>> };

/** `publishKey` → `PUBLISH_KEY`; the environment variable for http.port is SUBSECOND_HTTP_PORT. */
export function envName(section: string, key: string): string {
  return `SUBSECOND_${section.toUpperCase()}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Every known `section.key` with its default value. */
export function knownKeys(): { key: string; section: string; name: string; def: unknown }[] {
  const out = [];
  for (const [section, values] of Object.entries(DEFAULTS)) {
    for (const [name, def] of Object.entries(values as Record<string, unknown>)) {
      out.push({ key: `${section}.${name}`, section, name, def });
    }
  }
  return out;
}

/** Turns a string from the environment or a flag into the type the default has. */
function coerce(key: string, raw: string, def: unknown, origin: string): unknown {
  if (typeof def === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) {
      throw new ConfigError(`${key}: expected a number, got ${JSON.stringify(raw)} (from ${origin})`);
    }
    return n;
  }
  if (typeof def === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    throw new ConfigError(`${key}: expected true or false, got ${JSON.stringify(raw)} (from ${origin})`);
  }
  return raw;
}

function set(target: Source['values'], section: string, name: string, value: unknown): void {
  target[section] ??= {};
  target[section][name] = value;
}

/** The refusal for a setting that moved (MOVED_SETTINGS), in the form it was given, or null. */
function movedSetting(key: string, origin: 'file' | 'environment' | 'flag'): string | null {
  const moved = MOVED_SETTINGS[key];
  if (!moved) return null;
  const [oldSection, oldName] = key.split('.');
  const [section, name] = moved.split('.');
  const given =
    origin === 'environment'
      ? [envName(oldSection, oldName), envName(section, name)]
      : origin === 'flag'
        ? [`--${key}`, `--${moved}`]
        : [key, moved];
  return `${given[0]} has moved: use ${given[1]} instead`;
}

export function fromEnvironment(env: NodeJS.ProcessEnv): Source {
  for (const key of Object.keys(MOVED_SETTINGS)) {
    const [section, name] = key.split('.');
    if (env[envName(section, name)] !== undefined) throw new ConfigError(movedSetting(key, 'environment')!);
  }
  const values: Source['values'] = {};
  for (const { key, section, name, def } of knownKeys()) {
    const variable = envName(section, name);
    const raw = env[variable];
    if (raw !== undefined) set(values, section, name, coerce(key, raw, def, `environment ${variable}`));
  }
  return { name: 'the environment', values };
}

export interface ParsedFlags {
  configFile?: string;
  help: boolean;
  source: Source;
  positionals: string[];
}

/** `--http.port 8081`, `--http.port=8081`, `--auth.loopbackPublish=false`, `--config file.yaml`, `--help`. */
export function parseFlags(argv: readonly string[]): ParsedFlags {
  const known = new Map(knownKeys().map((k) => [k.key, k]));
  const values: Source['values'] = {};
  const positionals: string[] = [];
  let configFile: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const takeValue = (): string => {
      if (eq !== -1) return arg.slice(eq + 1);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`flag --${flag} needs a value`);
      i++;
      return next;
    };
    if (flag === 'config') {
      configFile = takeValue();
      continue;
    }
    const entry = known.get(flag);
    const moved = movedSetting(flag, 'flag');
    if (moved) throw new ConfigError(moved);
    if (!entry) {
      throw new ConfigError(`unknown flag --${flag}; run with --help to list the settings`);
    }
    set(values, entry.section, entry.name, coerce(flag, takeValue(), entry.def, `flag --${flag}`));
  }
  return { configFile, help, source: { name: 'the command line', values }, positionals };
}

export function fromFile(path: string): Source {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`config file ${path} must be a mapping of sections (http:, rtmp:, …)`);
  }
  return { name: `config file ${path}`, values: doc as Source['values'] };
}

/** Merges sources, later ones winning, and validates: unknown keys and bad values name the key. */
export function resolveConfig(...sources: (Source | ConfigInput)[]): Config {
  const merged: Record<string, Record<string, unknown>> = {};
  for (const source of sources) {
    const named = 'values' in source && 'name' in source;
    const values = named ? (source as Source).values : (source as ConfigInput);
    for (const [section, sectionValues] of Object.entries(values)) {
      for (const key of Object.keys(sectionValues ?? {})) {
        const moved = movedSetting(`${section}.${key}`, 'file');
        if (moved) throw new ConfigError(named ? `${moved} (in ${(source as Source).name})` : moved);
      }
      if (sectionValues === null || typeof sectionValues !== 'object' || Array.isArray(sectionValues)) {
        merged[section] = sectionValues as Record<string, unknown>;
        continue;
      }
      merged[section] = { ...merged[section], ...(sectionValues as Record<string, unknown>) };
    }
  }
  const result = Config.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const where = issue.path.join('.') || '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const prefix = issue.path.length ? `${where}.` : '';
        return `unknown setting ${issue.keys.map((k) => prefix + k).join(', ')}`;
      }
      const value = issue.path.reduce<unknown>(
        (v, k) => (v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined),
        merged,
      );
      return `${where}: ${issue.message} (got ${JSON.stringify(value)})`;
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return result.data;
}

/** Defaults < config file < environment < flags. */
export function loadConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): {
  config: Config;
  flags: ParsedFlags;
} {
  const flags = parseFlags(argv);
  const file = flags.configFile ?? env.SUBSECOND_CONFIG;
  const sources: Source[] = [];
  if (file) sources.push(fromFile(file));
  sources.push(fromEnvironment(env), flags.source);
  return { config: resolveConfig(...sources), flags };
}
