import { pino } from 'pino';

/** The one logger. Components take a child: `log.child({ component: 'rtmp' })`. */
export const log = pino({
  level: process.env.SUBSECOND_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info',
  base: undefined,
  timestamp: pino.stdTimeFunctions.isoTime,
});

export type Logger = typeof log;

export function setLogLevel(level: string): void {
  log.level = level;
}
