// Connection quality from round-trip time and packet loss, as a hint on each tile. Pure.

/**
 * @param {{ rtt: number, loss: number } | null} sample rtt in ms, loss in percent
 * @returns {'good' | 'fair' | 'poor' | null}
 */
export function classifyQuality(sample) {
  if (!sample) return null;
  if (sample.rtt > 400 || sample.loss > 8) return 'poor';
  if (sample.rtt > 200 || sample.loss > 2) return 'fair';
  return 'good';
}
