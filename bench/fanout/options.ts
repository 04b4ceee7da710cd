import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

/**
 * Command-line flags for the benchmarks: node:util parseArgs (strict, so a mistyped flag is an error) with
 * `--help`/`-h` printing `usage` and exiting, and checks that name the flag and the value they refuse.
 */
export function parseFlags<const O extends ParseArgsOptionsConfig>(
  usage: string,
  options: O,
  args = process.argv.slice(2),
) {
  const { values } = parseArgs<{
    args: string[];
    options: O & { help: { type: 'boolean'; short: 'h' } };
    strict: true;
  }>({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true });
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  return values;
}

const range = (min: number, max: number) =>
  max === Number.POSITIVE_INFINITY ? `of at least ${min}` : `from ${min} to ${max}`;

/** `text` as a number from `min` to `max` (a whole one when `integer`). */
export function numberFlag(name: string, text: string, min: number, max: number, integer = false): number {
  const n = Number(text);
  if (!(n >= min && n <= max) || (integer && !Number.isInteger(n)))
    throw new Error(`--${name} must be a ${integer ? 'whole ' : ''}number ${range(min, max)}, not "${text}"`);
  return n;
}

/** Comma-separated whole numbers from `min` to `max`; `increasing`: each larger than the one before. */
export function countsFlag(
  name: string,
  text: string,
  min: number,
  max: number,
  increasing = false,
): number[] {
  const counts = text.split(',').map(Number);
  if (
    counts.some(
      (n, i) => !Number.isInteger(n) || n < min || n > max || (increasing && i > 0 && n <= counts[i - 1]),
    )
  )
    throw new Error(
      `--${name} takes ${increasing ? 'increasing ' : ''}whole numbers ${range(min, max)} separated by commas, not "${text}"`,
    );
  return counts;
}

/** `text` if it is one of `choices`. */
export function choiceFlag<const C extends string>(name: string, text: string, choices: readonly C[]): C {
  if (!(choices as readonly string[]).includes(text))
    throw new Error(`--${name} is ${choices.join(', ')}, not "${text}"`);
  return text as C;
}
