import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * This node's id in the cluster: `cluster.nodeId`, or the host name with a random suffix so two processes on one
 * machine (and a restarted process, whose old entries may still be expiring) never share an id.
 */
export function resolveNodeId(configured: string): string {
  if (configured) return configured;
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 40) || 'node';
  return `${host}-${randomBytes(3).toString('hex')}`;
}
